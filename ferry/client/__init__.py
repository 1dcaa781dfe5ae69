"""The engine's REST client, shared by everything that talks to a running engine from outside:
the CLI (`ferry ...`) and the benchmarks. It imports neither of them."""
