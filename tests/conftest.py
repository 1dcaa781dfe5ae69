"""Shared pytest set-up: each area's fixtures live in tests/fixtures/<area>.py.

Modules are picked up by name so that every area owns its own fixture file.
"""
import pathlib

_FIXTURES = pathlib.Path(__file__).parent / "fixtures"

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in _FIXTURES.glob("*.py") if p.stem != "__init__"
)
