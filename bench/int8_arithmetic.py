"""int8 encoder models read with each of CTranslate2's int8 arithmetics (`encoder.INT8_ARITHMETICS`).

CTranslate2 computes int8 products one of two ways, depending on the CPU and its back end (MKL or
oneDNN, `encoder.CT2_BACKENDS`): "precise" or "coarse", by how far each lands from float32 on a fixed
input (`encoder.int8_probe_error`, recorded as `probe_errors`). A head trained on one arithmetic's embeddings sees the other's on a CPU that
computes the other. On a CPU whose two back ends compute the two arithmetics (an AMD EPYC without
AVX-512: oneDNN coarse, MKL precise), every model given is read on the speaker protocol's
validation and test clips (all corpora found) through each back end: UAR over each corpus's labels
(`label_set_uar`, as training scores), accuracy, and on test how many clips' top emotion matches
the model's recorded `predictions.csv`. Models are chosen on validation; test is read once.

    python bench/int8_arithmetic.py --models models/emo-whisper-fast-speaker OTHER_DIR=LABEL ...
writes bench/results/int8_arithmetic.json and .md.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from provenance import provenance
from report import write_results
from ser_core.frontend.encoder import CT2_BACKENDS, arithmetic_of, backend_probe_error, trained_int8_arithmetics
from ser_core.serving.inference import load_model
from ser_core.training.corpora import find_clips
from ser_core.training.evaluate import evaluate
from ser_core.training.splits import assign
from ser_core.training.train import cached_inputs

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("val", "test")


def recorded_top(model_dir: Path) -> dict[tuple[str, str], str]:
    with (model_dir / "predictions.csv").open() as f:
        return {(row["corpus"], row["clip_id"]): row["predicted"] for row in csv.DictReader(f)}


def measure(model_dir: Path, label: str, parts: dict, arithmetics: dict[str, str]) -> list[dict]:
    model = load_model(model_dir)
    if model.front_end.get("compute_type") != "int8":
        raise SystemExit(f"{model_dir} is not an int8 encoder model")
    recorded = recorded_top(model_dir)
    rows = []
    for backend, arithmetic in arithmetics.items():
        for part in PARTS:
            data = cached_inputs(model, parts[part], int8_backend=backend)
            metrics, clips, probabilities = evaluate(model, data, "speaker")
            row = {"model": label, "trained_on": trained_int8_arithmetics(model.front_end), "part": part,
                   "arithmetic": arithmetic, "backend": backend, "clips": len(clips),
                   "uar": round(100 * metrics["label_set_uar"], 2), "accuracy": round(100 * metrics["accuracy"], 2)}
            if part == "test":
                tops = [model.labels[i] for i in probabilities.argmax(axis=1)]
                row["top_as_recorded"] = round(100 * sum(
                    recorded.get((c.corpus, c.clip_id)) == top for c, top in zip(clips, tops)) / len(clips), 1)
            rows.append(row)
            print(row, flush=True)
    return rows


def markdown(results: dict) -> str:
    lines = ["**int8 arithmetics (`python bench/int8_arithmetic.py`)**", "",
             "Each int8 model read through both of CTranslate2's int8 arithmetics on "
             f"{results['provenance']['cpu']} ("
             + ", ".join(f"{b}: {a}, {100 * results['probe_errors'][b]:.1f}% from float32 on the probe"
                         for b, a in results["arithmetics"].items()) + "); "
             "UAR % over each corpus's labels and accuracy %, speaker protocol, every corpus; on test, the share of "
             "clips whose top emotion is the one recorded in the model's predictions.csv:", "",
             "| model | trained on | arithmetic | validation UAR | test UAR | test accuracy | top emotion as recorded |",
             "|---|---|---|---|---|---|---|"]
    by = {(r["model"], r["arithmetic"], r["part"]): r for r in results["rows"]}
    for model in dict.fromkeys(r["model"] for r in results["rows"]):
        for arithmetic in results["arithmetics"].values():
            val, test = by[model, arithmetic, "val"], by[model, arithmetic, "test"]
            lines.append(f"| {model} | {', '.join(val['trained_on'])} | {arithmetic} | {val['uar']:.1f} | "
                         f"{test['uar']:.1f} | {test['accuracy']:.1f} | {test['top_as_recorded']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=[str(ROOT.parent / "shared" / "corpora"), str(ROOT.parent / "corpora-more")])
    parser.add_argument("--models", nargs="+", default=[str(ROOT / "models" / "emo-whisper-fast-speaker")],
                        help="model directories, each optionally DIR=LABEL (default label: its name)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "int8_arithmetic"))
    args = parser.parse_args()
    probe_errors = {backend: backend_probe_error(backend) for backend in CT2_BACKENDS}
    arithmetics = {backend: arithmetic_of(error) for backend, error in probe_errors.items()}
    if len(set(arithmetics.values())) < 2:
        raise SystemExit(f"this CPU computes one int8 arithmetic on both back ends ({arithmetics}): "
                         "run on one whose back ends differ (an AMD EPYC without AVX-512)")
    models = [(Path(d), label or Path(d).name) for d, _, label in (m.partition("=") for m in args.models)]
    results = {"provenance": provenance(*(d for d, _ in models)), "arithmetics": arithmetics,
               "probe_errors": {backend: round(error, 4) for backend, error in probe_errors.items()}, "rows": []}
    parts = assign(list(find_clips(args.data)), ROOT / "models" / "splits" / "speaker.csv", None)
    for model_dir, label in models:
        results["rows"] += measure(model_dir, label, parts, arithmetics)
    write_results(Path(args.out), results, markdown(results))


if __name__ == "__main__":
    main()
