"""Which package of ferry/ may import which: every import of every module, walked with ast
(also the ones inside functions, which a grep for top-level imports would miss).

The engine and the agent are peers that meet only in ferry.protocol, the contract between them;
the protocol imports neither (nor the tools built on top: cli, lab, bench). Add a rule as one
row of RULES: (importing package, forbidden package, why).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ferry"

RULES = (
    ("ferry.engine", "ferry.agent", "the engine reaches the agent only through ferry.protocol and JSON-RPC"),
    ("ferry.agent", "ferry.engine", "the agent knows nothing of the engine beyond ferry.protocol"),
    ("ferry.protocol", "ferry.engine", "the contract stands on neither side"),
    ("ferry.protocol", "ferry.agent", "the contract stands on neither side"),
    ("ferry.protocol", "ferry.cli", "the contract stands below the tools"),
    ("ferry.protocol", "ferry.lab", "the contract stands below the tools"),
    ("ferry.protocol", "ferry.bench", "the contract stands below the tools"),
) + tuple(
    # The pure shared packages stand on ferry.common alone, so both peers (and the tools) can use them.
    (pure, other, f"{pure} is pure and shared: it stands on ferry.common alone")
    for pure in ("ferry.forecast", "ferry.pki", "ferry.client")
    for other in ("ferry.engine", "ferry.agent", "ferry.protocol", "ferry.cli", "ferry.lab", "ferry.bench")
    if other != pure
)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module `path` imports, anywhere in it, with relative imports resolved."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)   # `from ferry import agent`
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


MODULES = sorted(PACKAGE.rglob("*.py"))


def violations(rules=RULES, modules=MODULES, root: Path = ROOT) -> list[str]:
    found = []
    for path in modules:
        name = module_name(path, root)
        for importer, forbidden, why in rules:
            if not within(name, importer):
                continue
            for imported in sorted(imported_modules(path, root)):
                if within(imported, forbidden):
                    found.append(f"{name} imports {imported}: {why}")
    return found


def test_the_walk_sees_every_module_and_the_imports_inside_functions(tmp_path):
    assert len(MODULES) > 50 and any(module_name(p) == "ferry.protocol.migrate_params" for p in MODULES)
    pkg = tmp_path / "ferry" / "engine"
    pkg.mkdir(parents=True)
    bad = pkg / "late.py"
    bad.write_text("def f():\n    from ferry.agent import flags\n    import ferry.agent.api\n"
                   "from .. import agent\n")
    assert imported_modules(bad, tmp_path) >= {"ferry.agent", "ferry.agent.flags", "ferry.agent.api"}
    assert len(violations(modules=[bad], root=tmp_path)) == 3


@pytest.mark.parametrize("importer, forbidden, why", RULES, ids=[f"{i}-not-{f}" for i, f, _ in RULES])
def test_import_rule(importer, forbidden, why):
    assert violations([(importer, forbidden, why)]) == []
