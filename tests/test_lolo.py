"""bench/lolo.py: a recipe's row has a mean and a lowest only once every language has a fold; the
committed results name every language, and the Metrics page reads them."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from ser_core.training.corpora import LANGUAGES, LANGUAGE_NAMES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lolo():
    sys.path.insert(0, str(ROOT / "bench"))  # lolo.py imports compare_models beside it
    try:
        spec = importlib.util.spec_from_file_location("lolo", ROOT / "bench" / "lolo.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(ROOT / "bench"))


def fold(uar: float) -> dict:
    return {"uar": uar, "batch_uar": uar + 0.05, "speaker_uar": uar + 0.1, "per_corpus": {}, "n_test": 10}


def test_a_row_has_its_mean_and_lowest_only_with_every_language(lolo):
    partial = lolo.row({"english": fold(0.3), "amharic": fold(0.5)})
    assert partial["mean_uar"] is None and partial["min_uar"] is None
    complete = lolo.row({language: fold(0.2 + 0.1 * i) for i, language in enumerate(LANGUAGES)})
    assert complete["mean_uar"] == pytest.approx(0.2 + 0.1 * (len(LANGUAGES) - 1) / 2)
    assert complete["min_uar"] == pytest.approx(0.2)
    assert complete["min_batch_uar"] == pytest.approx(0.25)


def test_markdown_names_every_language_and_both_readings(lolo):
    results = {"rows": {"r": lolo.row({language: fold(0.4) for language in LANGUAGES})}}
    text = lolo.markdown(results)
    assert all(name in text for name in LANGUAGE_NAMES.values())
    assert "| r | one clip |" in text and "| r | batch |" in text and "| r | voice profile |" in text
    assert "40.0" in text and "45.0" in text and "50.0" in text


def test_the_known_classes_readings_are_shown_only_for_rows_that_measured_them(lolo):
    measured = lolo.row({language: {**fold(0.4), "known_uar": 0.6, "known_batch_uar": 0.7} for language in LANGUAGES})
    assert measured["mean_known_uar"] == pytest.approx(0.6)
    assert measured["mean_known_batch_uar"] == pytest.approx(0.7)
    text = lolo.markdown({"rows": {"new": measured, "old": lolo.row({language: fold(0.4) for language in LANGUAGES})}})
    assert "| new | known classes | 60.0 |" in text and "| new | known classes, batch | 70.0 |" in text
    assert "| old | known classes |" not in text and "| old | known classes, batch |" not in text
    assert "| old | one clip |" in text


RESULTS = ROOT / "bench" / "results" / "lolo.json"


@pytest.mark.skipif(not RESULTS.is_file(), reason="no committed leave-one-language-out results")
def test_seed_replicates_are_averaged_per_language_before_the_mean_and_lowest(lolo):
    """A recipe with rows `NAME-seedN` gets one line per reading all its replicates have: the seeds, each
    seed's mean / lowest, then each language's UAR averaged over the seeds, and the mean and lowest of
    those averages (not the mean of the lowests). Each row's seed is the one its recipes record."""
    base = {language: fold(0.3) for language in LANGUAGES}
    other = {language: fold(0.5 if i == 0 else 0.3) for i, language in enumerate(LANGUAGES)}
    trained = lambda folds, seed: {**lolo.row(folds), "train_params": {"a": {"seed": seed}, "b": {"seed": seed}}}  # noqa: E731
    rows = {"r": trained(base, 42), f"r-seed{lolo.SEED_REPLICATES[0]}": trained(other, lolo.SEED_REPLICATES[0]),
            "alone": lolo.row(base), "partial": lolo.row({"english": fold(0.3)}),
            f"partial-seed{lolo.SEED_REPLICATES[0]}": lolo.row(base)}
    lines = lolo.seed_summary(rows, lambda v: f"{100 * v:.1f}")
    [line] = [line for line in lines if line.startswith("| r |")]  # fold() has no cut reading: one clip only
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1:3] == ["one clip", f"42, {lolo.SEED_REPLICATES[0]}"]
    assert cells[3] == f"30.0 / 30.0, {100 * (0.5 + 0.3 * (len(LANGUAGES) - 1)) / len(LANGUAGES):.1f} / 30.0"
    assert cells[4] == "40.0" and cells[5:-2] == ["30.0"] * (len(LANGUAGES) - 1)
    assert cells[-1] == "30.0"
    assert not any(line.startswith(("| alone |", "| partial |")) for line in lines)
    cut = {language: {**fold(0.3), "cut_uar": 0.2} for language in LANGUAGES}
    cut_lines = lolo.seed_summary({"c": lolo.row(cut), f"c-seed{lolo.SEED_REPLICATES[0]}": lolo.row(cut)}, str)
    assert [line.split(" | ")[1] for line in cut_lines if line.startswith("| c |")] == ["one clip", "cut at speech"]
    assert lolo.seed_summary({"alone": lolo.row(base)}, str) == []
    assert lolo.row_seed({"train_params": {"architecture": "whisper-head", "seed": 3}}) == 3  # a single recipe's
    assert lolo.row_seed({"train_params": {"a": {"seed": 1}, "b": {"seed": 2}}}) == "?"  # members disagree


def test_committed_lolo_results_hold_whole_rows_of_one_recipe_each():
    from ser_core.training.train import ENSEMBLES, RECIPES

    results = json.loads(RESULTS.read_text())
    for name, row in results["rows"].items():
        reference = row.get("reference")  # a row read with a reference head names what it reads
        recipe = reference["of"] if reference else row.get("recipe", name)  # as does a row read another way
        assert recipe in RECIPES or recipe in ENSEMBLES
        assert reference is None or reference["recipe"] in RECIPES
        assert len({f["recipe_id"] for f in row["folds"].values()}) == 1, name
        assert all(0.0 <= f["uar"] <= 1.0 and 0.0 <= f["batch_uar"] <= 1.0 for f in row["folds"].values())
        if set(row["folds"]) == set(LANGUAGES):
            assert row["min_uar"] == min(f["uar"] for f in row["folds"].values())


def test_the_metrics_page_reads_lolo_rows():
    from ser_core.ui.metrics import lolo_uars

    rows = {"r": {"folds": {"english": fold(0.3), "bengali": fold(0.5)}, "mean_uar": None}}
    assert lolo_uars(rows) == {"r": {"English": 0.3, "Bengali": 0.5}}
    rows["r"]["mean_batch_uar"] = 0.45
    assert lolo_uars(rows, "batch_uar")["r"] == {"English": 0.35, "Bengali": 0.55, "mean": 0.45}
    # a row measured before the known-classes readings existed is not drawn under them
    rows["new"] = {"folds": {"english": {**fold(0.3), "known_batch_uar": 0.6}}}
    assert lolo_uars(rows, "known_batch_uar") == {"new": {"English": 0.6}}


def test_a_benchmark_writes_its_json_and_table_side_by_side(tmp_path, capsys):
    """bench/report.write_results, which every benchmark ends with: NAME.json (one trailing newline) and
    NAME.md beside it, the table printed unless told not to."""
    spec = importlib.util.spec_from_file_location("report", ROOT / "bench" / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    report.write_results(tmp_path / "bench_x", {"uar": 0.5}, "| a |\n|---|\n| 1 |")
    assert json.loads((tmp_path / "bench_x.json").read_text()) == {"uar": 0.5}
    assert (tmp_path / "bench_x.json").read_text().endswith("}\n")
    assert (tmp_path / "bench_x.md").read_text() == "| a |\n|---|\n| 1 |\n"
    assert "| 1 |" in capsys.readouterr().out
    report.write_results(tmp_path / "quiet.json", {}, "table\n", echo=False)
    assert (tmp_path / "quiet.md").read_text() == "table\n" and capsys.readouterr().out == ""
