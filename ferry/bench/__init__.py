"""Benchmarks: real migrations measured side by side with their baselines."""
