"""ferry.sim is a test double: no real code path may import it (issue 18: never on a real path)."""
import ast
from pathlib import Path

import ferry

ALLOWED = ("ferry/sim/", "ferry/cli/sim.py", "ferry/bench/scale")


def test_only_the_simulator_its_command_and_the_scale_bench_import_ferry_sim():
    root = Path(ferry.__file__).parent.parent
    offenders = []
    for path in (root / "ferry").rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(ALLOWED):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == "ferry.sim" or n.startswith("ferry.sim.") for n in names):
                offenders.append(rel)
    assert offenders == []
