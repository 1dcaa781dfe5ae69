"""Each benchmark writes only its own marked block of a shared report (ferry.bench.doc_blocks)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ferry.bench.doc_blocks import markers, put_block, write_block

DOCS = Path(__file__).resolve().parents[3] / "docs"
HAND = "# Ferry benchmarks\n\nA note  written by hand,\ttabs and all.\n\n"


def block(name: str, body: str) -> str:
    begin, end = markers(name)
    return f"{begin}\n{body}\n{end}"


def test_an_existing_block_is_replaced_and_everything_around_it_kept_byte_for_byte():
    before, after = HAND + "<!-- other -->\n", "\n\n## Later\nkept\n\n\n"
    text = before + block("scale", "old\nlines") + after
    out = put_block(text, "scale", "\n\nnew body\n\n")
    assert out == before + block("scale", "new body") + after


def test_a_missing_block_is_appended_and_the_text_before_it_left_as_it_was():
    assert put_block(HAND, "migrate", "body") == HAND + "\n" + block("migrate", "body") + "\n"
    assert put_block("no newline", "migrate", "body") == "no newline\n\n" + block("migrate", "body") + "\n"
    assert put_block("", "migrate", "body") == block("migrate", "body") + "\n"


def test_other_blocks_are_untouched_and_a_second_write_replaces_the_first():
    text = put_block(put_block(HAND, "forecast", "f1"), "evacuate", "e1")
    text = put_block(text, "forecast", "f2")
    assert text == HAND + "\n" + block("forecast", "f2") + "\n\n" + block("evacuate", "e1") + "\n"


def test_an_unmarked_section_with_the_heading_is_taken_as_the_block():
    text = "# B\n\n## Other\nkeep\n\n## Forecast\nold\n\n## Later\nkeep too\n"
    out = put_block(text, "forecast", "## Forecast\nnew", adopt_heading="## Forecast")
    assert out == "# B\n\n## Other\nkeep\n\n" + block("forecast", "## Forecast\nnew") + "\n\n## Later\nkeep too\n"
    last = put_block("# B\n\n## Forecast\nold\n", "forecast", "## Forecast\nnew", adopt_heading="## Forecast")
    assert last == "# B\n\n" + block("forecast", "## Forecast\nnew") + "\n"
    # Once marked, the heading is not looked for: the block's markers decide.
    assert put_block(out, "forecast", "x", adopt_heading="## Other") == out.replace("## Forecast\nnew", "x")


@pytest.mark.parametrize("text", [
    "<!-- ferry-bench:scale begin -->\nhalf\n",
    "half\n<!-- ferry-bench:scale end -->\n",
    "<!-- ferry-bench:scale end -->\n<!-- ferry-bench:scale begin -->\n",
    block("scale", "a") + "\n" + block("scale", "b") + "\n",
])
def test_broken_markers_are_refused_not_guessed_at(text):
    with pytest.raises(ValueError, match="scale"):
        put_block(text, "scale", "new")


def test_block_names_are_checked():
    with pytest.raises(ValueError, match="block name"):
        markers("Scale -->")


def test_write_block_starts_a_new_report_with_its_head(tmp_path):
    report = tmp_path / "reliability.md"
    write_block(report, "faults", "matrix", head="# Reliability\n")
    write_block(report, "faults", "matrix 2", head="# ignored once the file exists\n")
    assert report.read_text() == "# Reliability\n\n" + block("faults", "matrix 2") + "\n"


@pytest.mark.parametrize("doc, names", [
    ("benchmarks.md", ("migrate", "policies", "forecast", "evacuate", "scale")),
    ("reliability.md", ("faults",)),
])
def test_the_committed_reports_have_one_well_formed_block_per_benchmark(doc, names):
    text = (DOCS / doc).read_text()
    found = re.findall(r"<!-- ferry-bench:([a-z0-9-]+) (begin|end) -->", text)
    assert found == [(n, side) for n in names for side in ("begin", "end")]
    assert "<!-- bench scale" not in text and "<!-- ferry bench " not in text   # the old markers are gone
    for name in names:
        begin, end = markers(name)
        body = text[text.index(begin) + len(begin):text.index(end)]
        assert put_block(text, name, body) == text   # writing a block's own text back changes nothing
