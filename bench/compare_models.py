"""Side by side, in one run, on the committed split files: the original seed-cnn, the new emo-cnn (and
the emo-tdnn experiment) and a classical baseline (eGeMAPS functionals from openSMILE + RBF SVM, trained here on the same train
split, C chosen on validation). Test clips only; per protocol and per corpus; size and latency.

    python bench/compare_models.py --data ../shared/corpora
writes bench/results/compare_models.json and bench/results/compare_models.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ser_core.corpora import LABELS, find_clips
from ser_core.dataset import extract_clips
from ser_core.evaluate import evaluate
from ser_core.features import default_cache_dir
from ser_core.inference import SerModel
from ser_core.metrics import compute_metrics
from ser_core.splits import PROTOCOLS, assign

ROOT = Path(__file__).resolve().parent.parent
NEURAL = ("seed-cnn", "emo-cnn", "emo-tdnn")
SVM_C = (0.3, 1.0, 3.0, 10.0)


def latency_ms(model: SerModel, runs: int = 50) -> dict:
    """End to end for a 3 s clip already in memory: features + model, one thread."""
    clip = (0.1 * np.sin(2 * np.pi * 150 * np.arange(48000) / 16000)).astype(np.float32)
    model.analyze(clip, sr=16000, segmented=False)  # a tone: fixed windows, no voice activity detection
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        model.analyze(clip, sr=16000, segmented=False)
        times.append(1000 * (time.perf_counter() - started))
    return {"p50": float(np.percentile(times, 50)), "p95": float(np.percentile(times, 95))}


def egemaps(clips, cache_file: Path) -> dict[tuple[str, str], np.ndarray]:
    import opensmile

    from ser_core.audio import load_audio
    from ser_core.errors import SerError

    cache = dict(np.load(cache_file, allow_pickle=True)["table"].item()) if cache_file.exists() else {}
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    missing = [c for c in clips if (c.corpus, c.clip_id) not in cache]
    for clip in tqdm(missing, desc="eGeMAPS"):
        try:
            audio = load_audio(clip.path)
        except SerError:
            continue
        cache[clip.corpus, clip.clip_id] = smile.process_signal(audio.samples, audio.sample_rate).to_numpy()[0]
    if missing:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache_file, table=np.array(cache, dtype=object))
    return cache


def classical_baseline(parts, table) -> tuple[dict, float]:
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    def xy(clips):
        kept = [c for c in clips if (c.corpus, c.clip_id) in table]
        return kept, np.stack([table[c.corpus, c.clip_id] for c in kept]), np.array([LABELS.index(c.emotion) for c in kept])

    _, x_train, y_train = xy(parts["train"])
    _, x_val, y_val = xy(parts["val"])
    test_clips, x_test, y_test = xy(parts["test"])
    fit = lambda c: make_pipeline(StandardScaler(), SVC(C=c, class_weight="balanced")).fit(x_train, y_train)
    best_c = max(SVM_C, key=lambda c: balanced_accuracy_score(y_val, fit(c).predict(x_val)))
    predicted = fit(best_c).predict(x_test)
    one_hot = np.eye(len(LABELS))[predicted]  # an SVM gives labels: probability-based scores do not apply
    metrics = compute_metrics(y_test, one_hot, LABELS, [c.corpus for c in test_clips])
    return metrics, best_c


def summary(metrics: dict, calibrated: bool = True) -> dict:
    keep = ("n_test", "accuracy", "balanced_accuracy", "macro_f1")
    return {**{k: metrics[k] for k in keep}, "per_corpus": metrics["per_corpus"],
            **({"ece": metrics["ece"]} if calibrated else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=[str(ROOT.parent / "shared" / "corpora")])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "compare_models"))
    args = parser.parse_args()
    clips = list(find_clips(args.data))
    table = egemaps(clips, default_cache_dir().parent / "egemaps.npz")
    results = {"data": args.data, "clips_found": len(clips), "protocols": {}}
    for protocol in PROTOCOLS:
        parts = assign(clips, ROOT / "models" / "splits" / f"{protocol}.csv")
        rows = {}
        for name in NEURAL:
            directory = ROOT / "models" / f"{name}-{protocol}"
            if not (directory / "metadata.json").is_file():
                continue
            model = SerModel(directory)
            data = extract_clips(parts["test"], model.params, desc=f"{name} test features")
            metrics, _, _ = evaluate(model, data, protocol)
            rows[name] = {
                **summary(metrics),
                "parameters": model.metadata["param_count"],
                "litert_bytes": (directory / "model.tflite").stat().st_size,
                "keras_bytes": (directory / "model.keras").stat().st_size,
                "latency_ms_3s_clip": latency_ms(model),
                "training_seconds": model.metadata["training"]["seconds"],
            }
        metrics, best_c = classical_baseline(parts, table)
        rows["egemaps-svm"] = {**summary(metrics, calibrated=False), "parameters": None, "svm_c": best_c}
        results["protocols"][protocol] = rows
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


def markdown(results: dict) -> str:
    lines = ["| protocol | model | accuracy | UAR | macro-F1 | UAR RAVDESS | UAR CREMA-D | UAR SAVEE | UAR TESS | ECE | params | LiteRT size | p50 ms / 3 s clip |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    pct = lambda v: f"{100 * v:.1f}"
    for protocol, rows in results["protocols"].items():
        for name, r in rows.items():
            corpus = lambda c: pct(r["per_corpus"][c]["balanced_accuracy"]) if c in r["per_corpus"] else "–"
            lines.append(" | ".join([
                f"| {protocol}", name, pct(r["accuracy"]), pct(r["balanced_accuracy"]), pct(r["macro_f1"]),
                corpus("ravdess"), corpus("cremad"), corpus("savee"), corpus("tess"),
                f"{r['ece']:.3f}" if "ece" in r else "–",
                f"{r['parameters']:,}" if r.get("parameters") else "–",
                f"{r['litert_bytes'] / 1024:.0f} KB" if "litert_bytes" in r else "–",
                f"{r['latency_ms_3s_clip']['p50']:.1f}" if "latency_ms_3s_clip" in r else "–",
            ]) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
