"""No module of ferry/ is over about 450 lines (issue 10): a longer one holds more than one
concept and is split along a seam, as ferry/agent/host_side.py or ferry/lab/agents.py were."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 450


def test_every_module_of_the_package_stays_under_the_limit():
    modules = sorted((ROOT / "ferry").rglob("*.py"))
    assert len(modules) > 150   # the walk really covers the package (all of ferry/, every subpackage)
    too_long = {str(p.relative_to(ROOT)): n for p in modules
                if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert too_long == {}, f"modules over {MAX_LINES} lines (split them along a concept): {too_long}"
