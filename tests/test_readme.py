"""The README opens with the two set-up commands and a results table, stays short, and every number of
README.md and docs/*.md comes from a committed result (bench/readme_tables.py's two rules)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def readme_tables():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "bench" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tables = readme_tables()
DOCUMENTS = tables.documents()


def test_readme_opens_with_the_two_commands():
    block = README.read_text().split("```")[1]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make run", "make test"]


def test_readme_is_short_and_shows_its_results_first():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150
    table_start = lines.index("<!-- summary-table -->")
    assert table_start < 40 and lines[table_start + 1].startswith("| ")


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_generated_blocks_match_the_committed_results(path):
    text = path.read_text()
    assert tables.updated(text) == text, "run: python bench/readme_tables.py"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_measured_number_comes_from_a_generated_block(path):
    assert tables.unsourced_numbers(path.read_text()) == []


def test_every_generated_block_is_known():
    for path in DOCUMENTS:
        for match in tables.BLOCK.finditer(path.read_text()):
            assert match[1] in tables.BLOCKS, f"{path.name}: unknown block {match[1]}"


def test_a_stale_figure_fails():
    """A number typed into the prose, or a block edited by hand, is caught."""
    text = README.read_text()
    assert tables.unsourced_numbers(text + "\nThe default does 330 clips/s, 6.8 s per hour, 87.3% on validation.\n") == [
        "330 clips/s", "6.8 s", "87.3%"]
    start = text.index("<!-- summary-table -->\n") + len("<!-- summary-table -->\n")
    edited = text[:start] + "| stale |\n" + text[start:]
    assert tables.updated(edited) == text
    # the same numbers in code, link targets and generated blocks are not prose
    assert tables.unsourced_numbers("`ser predict --workers 330.5`\n[x](bench/results/6.8.md)\n") == []
