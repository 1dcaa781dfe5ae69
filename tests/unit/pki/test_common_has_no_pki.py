"""ferry.common knows nothing of Ferry's PKI: its JSON-RPC client uses the TLS settings its
caller passes (issue 10 item 6), so which certificate is presented is always the caller's choice."""
from __future__ import annotations

import ast
from pathlib import Path

import ferry.common


def test_no_module_of_ferry_common_imports_ferry_pki():
    offenders = []
    for path in Path(ferry.common.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n == "ferry.pki" or n.startswith("ferry.pki.")]
    assert offenders == []
