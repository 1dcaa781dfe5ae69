"""Per-module figures of the last `make mutation` run, in the form mutmut-equivalent.md records.

Run from the repository root after `mutmut run` (it reads mutants/ with mutmut's own readers).
For each mutated module: mutants, killed (timeouts count as killed, as mutmut counts them),
survived, equivalent (the survivors named in mutmut-equivalent.md), text-only and the
logic-mutant score = logic mutants killed / (all - equivalent - text-only).

A mutant is text-only when all it changes lies inside one string literal (an f-string counts
with its replacement fields, e.g. `{', '.join(ACTIONS)}`), or replaces that literal whole, and
the literal is prose -- it has a space between its quotes: an error reason, a note, a warning, a
verdict's reason. Field names, keys, flag names and URIs have no space, so a mutant of those is
logic. `--list-text-only` prints the mutants so classified, to check the rule by eye.
"""
from __future__ import annotations

import io
import re
import sys
import tokenize
from collections import Counter, defaultdict
from pathlib import Path

from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import (
    read_functions_from_index,
    read_mutant_function,
    read_mutants_module,
    read_original_function,
)
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

EQUIVALENT_FILE = Path("mutmut-equivalent.md")
_NAME = re.compile(r"`(ferry\.[\w.ǁ]+__mutmut_\d+)`")


def module_of(mutant: str) -> str:
    return re.split(r"\.x[_ǁ]", mutant, maxsplit=1)[0]


def _string_pieces(token: str, at: int) -> tuple[str, list[tuple[int, int]]]:
    """A string token's text and the spans of its text pieces. Before Python 3.12 an f-string
    is one token: its replacement fields are found here, and are not text."""
    prefix = re.match(r"[rbfuRBFU]*", token).group()
    quote = 3 if token[len(prefix):len(prefix) + 3] in ('"""', "'''") else 1
    i, end = len(prefix) + quote, len(token) - quote
    if "f" not in prefix.lower():
        return token[i:end], [(at, at + len(token))]
    text, pieces, begin = "", [], i
    while i < end:
        if token.startswith(("{{", "}}"), i):
            i += 2
        elif token[i] == "{":
            pieces.append((at + begin, at + i))
            text += token[begin:i]
            depth, i = 1, i + 1
            while i < end and depth:
                depth += {"{": 1, "}": -1}.get(token[i], 0)
                i += 1
            begin = i
        else:
            i += 1
    pieces.append((at + begin, at + end))
    return text + token[begin:end], pieces


def literals(code: str) -> list[tuple[int, int, bool, list[tuple[int, int]]]]:
    """Each string literal of `code`: (start, end, is prose, spans of its text pieces). Adjacent
    literals are one; the text pieces are a plain string token or the text between an
    f-string's replacement fields (the fields' expressions are code, not text)."""
    starts = [0]
    for line in code.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(pos):
        return starts[pos[0] - 1] + pos[1]

    found: list[list] = []   # [start, end, text, pieces]
    depth = 0
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        kind = tokenize.tok_name[tok.type]
        a, b = offset(tok.start), offset(tok.end)
        if kind == "FSTRING_START":
            if depth == 0:
                found.append([a, a, "", []])
            depth += 1
        elif kind == "FSTRING_END":
            depth -= 1
            if depth == 0:
                found[-1][1] = b
        elif kind == "FSTRING_MIDDLE" and depth == 1:
            found[-1][2] += tok.string
            found[-1][3].append((a, b))
        elif kind == "STRING" and depth == 0:
            found.append([a, b, *_string_pieces(tok.string, a)])
    merged: list[list] = []
    for lit in found:   # implicit concatenation: only whitespace between two literals
        if merged and code[merged[-1][1]:lit[0]].strip() == "":
            merged[-1][1] = lit[1]
            merged[-1][2] += lit[2]
            merged[-1][3] += lit[3]
        else:
            merged.append(lit)
    return [(a, b, " " in text, pieces) for a, b, text, pieces in merged]


def text_only(orig: str, mutant: str) -> bool:
    """See the module docstring. A mutant that drops the literal (an argument gone) is logic."""
    p = 0
    while p < min(len(orig), len(mutant)) and orig[p] == mutant[p]:
        p += 1
    s = 0
    while s < min(len(orig), len(mutant)) - p and orig[-1 - s] == mutant[-1 - s]:
        s += 1
    lo, hi = p, len(orig) - s
    if len(mutant) - s == p:
        return False
    for start, end, prose, pieces in literals(orig):
        if not prose or not (start <= lo and hi <= end):
            continue
        if (lo, hi) == (start, end) or any(a <= lo and hi <= b for a, b in pieces):
            return True
    return False


def functions(name: str, path) -> tuple[str, str]:
    import libcst as cst
    found = read_functions_from_index(name, path)
    if found is None:
        module = read_mutants_module(path)
        found = (read_original_function(module, name), read_mutant_function(module, name))
    return tuple(cst.Module([f]).code for f in found)


def main(argv: list[str]) -> int:
    listed = set(_NAME.findall(EQUIVALENT_FILE.read_text())) if EQUIVALENT_FILE.exists() else set()
    rows: dict[str, Counter] = defaultdict(Counter)
    text_names, stale = [], []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in data.exit_code_by_key.items():
            status = status_by_exit_code[code]
            row = rows[module_of(name)]
            row["mutants"] += 1
            if status == "not checked":
                row["not checked"] += 1
                continue
            killed = status in ("killed", "timeout")
            row["killed" if killed else "survived"] += 1
            if name in listed:
                if killed:
                    stale.append(name)
                else:
                    row["equivalent"] += 1
                    continue
            if text_only(*functions(name, path)):
                row["text-only"] += 1
                row["text-only survived"] += not killed
                text_names.append(f"{name} ({status})")
            elif killed:
                row["logic killed"] += 1
    print("| module | mutants | killed | survived | equivalent | text-only (survived) | logic score |")
    print("|---|---|---|---|---|---|---|")
    for module, r in sorted(rows.items()):
        if r["not checked"] == r["mutants"]:
            continue
        logic = r["mutants"] - r["equivalent"] - r["text-only"]
        score = f"{r['logic killed']}/{logic} = {100 * r['logic killed'] / logic:.1f}%" if logic else "-"
        partial = f" ({r['not checked']} not checked)" if r["not checked"] else ""
        print(f"| {module.removeprefix('ferry.').replace('.', '/')}.py | {r['mutants']}{partial} | {r['killed']} | "
              f"{r['survived']} | {r['equivalent']} | {r['text-only']} ({r['text-only survived']}) | {score} |")
    for name in stale:
        print(f"warning: {name} is listed as equivalent but was killed; take it off the list", file=sys.stderr)
    if "--list-text-only" in argv:
        print("\n".join(["", "text-only:"] + text_names))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
