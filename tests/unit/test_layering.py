"""Which ferry package may import which (docs/architecture.md): imports run down the house.

Every module under ferry/ is parsed (ast, so imports inside functions count too) and each rule
is checked edge by edge; a failure names the importing module and what it imported. The
engine/agent/protocol rules are in test_import_rules.py.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ferry"



def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every module name an import statement anywhere in the tree names (relative ones resolved)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names.add(target)
            # `from ferry import cli` / `from ferry.lab import qemu_monitor` name a submodule
            names.update(f"{target}.{alias.name}" for alias in node.names if _is_module(f"{target}.{alias.name}"))
    return names


def _edges() -> list[tuple[str, str]]:
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        for name in _imported(tree, module, path.name == "__init__.py"):
            edges.append((module, name))
    return edges


EDGES = _edges()


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _violations(target: str, allowed_importers: tuple[str, ...]) -> list[str]:
    return sorted({f"{src} imports {dst}" for src, dst in EDGES
                   if _within(dst, target) and not any(_within(src, a) for a in allowed_importers)})


def test_the_walk_sees_every_module_and_imports_inside_functions():
    modules = {src for src, _ in EDGES}
    assert "ferry.cli.main" in modules and "ferry.agent.__main__" in modules
    # ferry.cli.demo imports the engine client inside a function only
    assert ("ferry.cli.demo", "ferry.client.engine_client") in EDGES


def test_the_cli_is_imported_only_by_itself_and_the_ferry_entry_point():
    assert _violations("ferry.cli", ("ferry.cli", "ferry.__main__")) == []


def test_bench_is_imported_only_by_bench_and_the_cli():
    assert _violations("ferry.bench", ("ferry.bench", "ferry.cli")) == []


def test_common_imports_nothing_from_ferry_but_common_except_the_one_known_edge():
    out = {(src, dst) for src, dst in EDGES
           if _within(src, "ferry.common") and _within(dst, "ferry") and dst != "ferry"
           and not _within(dst, "ferry.common")}
    assert out == set(), "ferry.common imports only ferry.common"


@pytest.mark.parametrize("binding", ["libvirt", "libvirt_qemu"])
def test_libvirt_is_imported_only_by_the_agent_and_the_lab(binding):
    # ferry.sim stands in for libvirt under the real agent (scale tests): its constants and errors
    assert _violations(binding, ("ferry.agent", "ferry.lab", "ferry.sim")) == []
