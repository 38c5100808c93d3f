"""RESULTS.md sections: each command replaces its own and keeps the others."""

from __future__ import annotations

from snapseal.eval.report import replace_section


def test_sections_are_replaced_independently(tmp_path) -> None:
    results = tmp_path / "docs" / "RESULTS.md"
    replace_section(results, "bench", "## Benchmarks\nfirst bench\n")
    replace_section(results, "eval", "## ERC\nerc one\n")
    replace_section(results, "bench", "## Benchmarks\nsecond bench\n")
    text = results.read_text()
    assert "erc one" in text and "second bench" in text and "first bench" not in text
    assert text.index("## ERC") < text.index("## Benchmarks")  # fixed section order
    assert text.count("<!-- begin:bench -->") == 1
