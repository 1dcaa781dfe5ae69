"""One benchmark's own part of a shared Markdown report, between its markers.

Why: several benchmarks write into docs/benchmarks.md (migrate, policies, forecast, evacuate,
scale), `ferry bench faults` into docs/reliability.md, and people add notes by hand beside
them. A benchmark that rewrote the whole file would drop the others' sections and the notes.
So each one owns only the lines between `<!-- ferry-bench:NAME begin -->` and
`<!-- ferry-bench:NAME end -->`: those are replaced, everything outside them stays byte for
byte, and a report without the block gets it appended at the end. `put_block` is pure;
`write_block` reads the file, puts the block in and writes it back.
"""
from __future__ import annotations

import re
from pathlib import Path

DEFAULT_HEAD = "# Ferry benchmarks\n"
_NAME = re.compile(r"[a-z][a-z0-9-]*")


def markers(name: str) -> tuple[str, str]:
    """The begin and end marker lines of block `name` (lower case, digits and dashes)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"a block name is lower case letters, digits and dashes, got {name!r}")
    return f"<!-- ferry-bench:{name} begin -->", f"<!-- ferry-bench:{name} end -->"


def _heading_span(text: str, heading: str) -> tuple[int, int] | None:
    """Where an unmarked section titled `heading` runs: from its line to the next `## ` line
    or the next block's begin marker, whichever comes first (never into another block)."""
    at = 0 if text.startswith(heading + "\n") else text.find("\n" + heading + "\n")
    if at < 0:
        return None
    start = at if at == 0 else at + 1
    ends = [i for i in (text.find("\n## ", start + len(heading)), text.find("\n<!-- ferry-bench:", start))
            if i >= 0]
    return start, len(text) if not ends else min(ends) + 1


def put_block(text: str, name: str, body: str, *, adopt_heading: str | None = None) -> str:
    """`text` with block `name` holding `body`: the old block replaced in place, or the block
    appended. `adopt_heading`: a section with this heading and no markers (a report written
    before there were markers) is taken to be the block and replaced. Markers out of order or
    only half there are refused rather than guessed at."""
    begin, end = markers(name)
    block = f"{begin}\n{body.strip(chr(10))}\n{end}"
    b, e = text.find(begin), text.find(end)
    if b >= 0 and e > b:
        if text.count(begin) > 1 or text.count(end) > 1:
            raise ValueError(f"the report holds block {name!r} more than once")
        return text[:b] + block + text[e + len(end):]
    if b >= 0 or e >= 0:
        raise ValueError(f"the report's markers of block {name!r} are broken (one missing or out of order)")
    span = _heading_span(text, adopt_heading) if adopt_heading else None
    if span is not None:
        start, stop = span
        return text[:start] + block + ("\n\n" if stop < len(text) else "\n") + text[stop:]
    if not text:
        return block + "\n"
    return text + ("\n" if text.endswith("\n") else "\n\n") + block + "\n"


def write_block(path: str | Path, name: str, body: str, *, head: str = DEFAULT_HEAD,
                adopt_heading: str | None = None) -> Path:
    """Put block `name` into the report at `path` (a new report starts with `head`)."""
    path = Path(path)
    text = path.read_text() if path.exists() else head
    path.write_text(put_block(text, name, body, adopt_heading=adopt_heading))
    return path
