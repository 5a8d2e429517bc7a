"""Side by side on the committed split files: the original seed-cnn, emo-cnn (and the emo-tdnn
experiment), the encoder model emo-whisper, and a classical baseline (eGeMAPS functionals from
openSMILE + RBF SVM, trained here on the same train split, C chosen on validation). Sections:

- `test`: test clips of each protocol; per corpus; size and latency.
- `baseline`: the eGeMAPS + SVM row of each protocol's table (openSMILE over every clip: about 20
  CPU-minutes the first time, cached after).
- `loco`: leave one corpus out: for each corpus, the model's recipe trained on the other four (their
  speaker-protocol train and test speakers; validation speakers for early stopping and calibration)
  and tested on every clip of the held-out one. UAR over the classes that corpus has. Each fold's
  results name its recipe (`recipe_id`), and a run over some corpora keeps the stored folds of the same
  recipe, so a long run can be done in parts, on machines that do not share a cache. Fold models stay
  in the cache; `--reuse-folds` keeps those of the same recipe instead of training them again.
- `perturb`: the speaker-protocol test clips under gain, noise, phone band, codecs and reverb
  (`ser_core.training.augment.PERTURBATIONS`), the same noise and room per clip for every model.

    python bench/compare_models.py --sections test loco perturb
updates bench/results/compare_models.json (sections not run are kept) and rewrites compare_models.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))  # provenance.py beside it, however this file is loaded
from provenance import provenance  # noqa: E402
from report import write_results
from ser_core.frontend.features import default_cache_dir
from ser_core.labels import LABELS
from ser_core.serving.inference import SerModel, load_model
from ser_core.training.corpora import find_clips
from ser_core.training.evaluate import CLEAN, evaluate, evaluate_perturbed
from ser_core.training.metrics import compute_metrics
from ser_core.training.splits import assign
from ser_core.training.train import RECIPES, cached_inputs, train

ROOT = Path(__file__).resolve().parent.parent
NEURAL = ("seed-cnn", "emo-cnn", "emo-tdnn", "emo-whisper", "emo-whisper-linear")
PROTOCOLS = ("random", "speaker")
CORPORA = ("ravdess", "cremad", "savee", "tess", "ased")
SVM_C = (0.3, 1.0, 3.0, 10.0)
BASELINE = "egemaps-svm"
SECTIONS = ("test", "baseline", "loco", "perturb", "adapt")
ADAPT_GRID = {"prior_windows": (1.0, 4.0, 16.0), "strength": (0.5, 0.75, 1.0)}


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

    from ser_core.errors import SerError
    from ser_core.io.audio import load_audio

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


def test_section(clips, args) -> dict:
    section = {}
    for protocol in PROTOCOLS:
        parts = assign(clips, ROOT / "models" / "splits" / f"{protocol}.csv")
        rows = {}
        for name in NEURAL:
            directory = ROOT / "models" / f"{name}-{protocol}"
            if not (directory / "metadata.json").is_file():
                continue
            model = load_model(directory)
            data = cached_inputs(model, parts["test"])
            metrics, _, _ = evaluate(model, data, protocol)
            rows[name] = {
                **summary(metrics),
                "parameters": model.metadata["param_count"],
                "litert_bytes": (directory / "model.tflite").stat().st_size,
                "keras_bytes": (directory / "model.keras").stat().st_size,
                "latency_ms_3s_clip": latency_ms(model),
                "training_seconds": model.metadata["training"]["seconds"],
            }
        section[protocol] = rows
    return section


def baseline_section(clips, args) -> dict:
    """The eGeMAPS + SVM row of each protocol, merged into the test section's tables."""
    table = egemaps(clips, default_cache_dir().parent / "egemaps.npz")
    section = {}
    for protocol in PROTOCOLS:
        metrics, best_c = classical_baseline(assign(clips, ROOT / "models" / "splits" / f"{protocol}.csv"), table)
        section[protocol] = {BASELINE: {**summary(metrics, calibrated=False), "parameters": None, "svm_c": best_c}}
    return section


def trained_fold(out: Path, protocol: str, features, recipe) -> dict | None:
    """The metrics of a fold model already in `out` from the same recipe and features, else None."""
    import dataclasses

    from ser_core.training.train import recorded_train_params

    model, metadata, metrics = out / "model.keras", out / "metadata.json", out / "metrics.json"
    if not (model.is_file() and metadata.is_file() and metrics.is_file()):
        return None
    if metrics.stat().st_mtime_ns < max(model.stat().st_mtime_ns, metadata.stat().st_mtime_ns):
        return None  # train() writes the metrics last: these are an earlier, interrupted run's
    stored = json.loads(metadata.read_text())
    same = (stored["protocol"], recorded_train_params(stored), stored["feature_params"]) == (
        protocol, dataclasses.asdict(recipe), features.to_dict())
    return json.loads(metrics.read_text()) if same else None


def recipe_id(features, recipe) -> str:
    """A short fingerprint of a recipe's feature and training parameters: folds that share it can be
    pooled into one LOCO row, whichever run measured them."""
    import dataclasses
    import hashlib

    params = {"features": features.to_dict(), "train": dataclasses.asdict(recipe)}
    return hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def recipe_loco_folds(clips, name: str, epochs: int | None, reuse: bool, corpora: list[str]) -> dict:
    """A model recipe trained once per held-out corpus (fold models under the cache, not shipped).
    With `reuse`, a fold whose model an earlier run left there, from the same recipe, is not retrained:
    a long run can be finished in parts."""
    import dataclasses

    features, recipe = RECIPES[name]
    if epochs:
        recipe = dataclasses.replace(recipe, epochs=epochs)
    folds = {}
    for corpus in corpora:
        out = default_cache_dir().parent / "loco" / f"{name}-{corpus}"
        protocol = f"loco:{corpus}"
        metrics = (reuse and trained_fold(out, protocol, features, recipe)) or train(
            clips, ROOT / "models" / "splits" / "speaker.csv", protocol, out, features, recipe, held_out=corpus, verbose=0)
        folds[corpus] = {"n_test": metrics["n_test"], "accuracy": metrics["accuracy"],
                         "balanced_accuracy": metrics["balanced_accuracy"], "macro_f1": metrics["macro_f1"],
                         "ece": metrics.get("ece"), "epochs": recipe.epochs, "recipe_id": recipe_id(features, recipe)}
    return folds


def baseline_loco_folds(clips, corpora: list[str]) -> dict:
    """The eGeMAPS + SVM baseline on the same folds: C chosen on the other corpora's validation speakers."""
    table = egemaps(clips, default_cache_dir().parent / "egemaps.npz")
    folds = {}
    for corpus in corpora:
        metrics, best_c = classical_baseline(assign(clips, ROOT / "models" / "splits" / "speaker.csv", held_out=corpus), table)
        folds[corpus] = {**{key: metrics[key] for key in ("n_test", "accuracy", "balanced_accuracy", "macro_f1")},
                         "svm_c": best_c}
    return folds


def loco_row(folds: dict) -> dict:
    """One model's LOCO row: its folds, and the mean and lowest UAR over them."""
    uars = [fold["balanced_accuracy"] for fold in folds.values()]
    return {"folds": folds, "mean_uar": float(np.mean(uars)), "min_uar": float(np.min(uars))}


def with_earlier_folds(stored: dict | None, made: dict) -> dict:
    """A model's new LOCO row, completed with the stored folds of the same recipe that this run did not
    remake (a run done in parts). Rows without a recipe id (baseline, shipped models) are replaced."""
    ids = {fold.get("recipe_id") for fold in made["folds"].values()}
    if stored is None or len(ids) != 1 or None in ids:
        return made
    earlier = {corpus: fold for corpus, fold in stored["folds"].items() if fold.get("recipe_id") in ids}
    both = {**earlier, **made["folds"]}
    return {**made, **loco_row({corpus: both[corpus] for corpus in CORPORA if corpus in both})}


def loco_section(clips, args) -> dict:
    """Per model, per held-out corpus: trained on the other four, scored on every clip of that one."""
    section = {}
    for name in args.loco_models:
        folds = (baseline_loco_folds(clips, args.loco_corpora) if name == BASELINE else
                 recipe_loco_folds(clips, name, args.loco_epochs, args.reuse_folds, args.loco_corpora))
        section[name] = loco_row(folds)
    for name in args.loco_shipped:
        # A shipped speaker-protocol model that never saw a corpus is a leave-that-corpus-out model
        # already (trained on the other corpora's speaker-train split only): scored on all its clips.
        model = load_model(ROOT / "models" / f"{name}-speaker")
        seen = set(model.metadata["data"]["train"]["per_corpus"])
        folds = {}
        for corpus in CORPORA:
            if corpus not in seen:
                metrics, _, _ = evaluate(model, cached_inputs(model, [c for c in clips if c.corpus == corpus]), f"unseen:{corpus}")
                folds[corpus] = {key: metrics.get(key) for key in ("n_test", "accuracy", "balanced_accuracy", "macro_f1", "ece")}
        section[f"{name} (shipped)"] = {**loco_row(folds),
                                        "note": "the shipped speaker-protocol model, scored on the corpora it never saw"}
    return section


def perturb_section(clips, args) -> dict:
    """Every shipped speaker-protocol model on the same (sampled) test clips under each perturbation."""
    from ser_core.training.augment import PERTURBATIONS

    test = assign(clips, ROOT / "models" / "splits" / "speaker.csv")["test"]
    if args.perturb_clips and args.perturb_clips < len(test):
        rng = np.random.default_rng(0)
        test = [test[i] for i in sorted(rng.choice(len(test), args.perturb_clips, replace=False))]
    section = {"clips": len(test), "per_corpus_clips": {c: sum(x.corpus == c for x in test) for c in CORPORA}, "models": {}}
    for name in NEURAL:
        directory = ROOT / "models" / f"{name}-speaker"
        if name in args.perturb_models and (directory / "metadata.json").is_file():
            results = evaluate_perturbed(directory, test, [CLEAN, *PERTURBATIONS], "speaker")
            section["models"][name] = {condition: {"balanced_accuracy": m["balanced_accuracy"], "accuracy": m["accuracy"],
                                                   "n_test": m["n_test"], "below_speech_gate": m["below_speech_gate"]}
                                       for condition, m in results.items()}
    return section


def adapt_section(clips, args) -> dict:
    """Voice profiles: settings chosen on validation speakers (best gain with 10-clip profiles among
    the settings whose one-sided profile costs at most 2 points), then measured on test speakers of
    the speaker protocol and on the held-out corpora of the LOCO folds."""
    import itertools

    from ser_core.training.evaluate import evaluate_adaptation

    section = {"grid": {}, "speaker": {}, "loco": {}}
    parts = assign(clips, ROOT / "models" / "splits" / "speaker.csv")
    stored = Path(args.out).with_suffix(".json")
    if args.adapt_keep_grid and stored.is_file():
        # The selector is an int8 model: on another CPU vendor its embeddings, and so the grid, differ
        # (encoder.cpu_vendor); the settings stay those chosen where it was trained, as shipped.
        kept = json.loads(stored.read_text())["adapt"]
        section["grid"], section["chosen"] = kept["grid"], kept["chosen"]
    else:
        selector = load_model(ROOT / "models" / "emo-whisper-speaker")
        val = cached_inputs(selector, parts["val"])
        for prior, strength in itertools.product(*ADAPT_GRID.values()):
            r = evaluate_adaptation(selector, val, ks=(10,), prior_windows=prior, strength=strength)
            section["grid"][f"{prior:g}/{strength:g}"] = {"gain_10": r["10"]["adapted"] - r["10"]["unadapted"],
                                                        "one_emotion_cost": r["one_emotion"]["unadapted"] - r["one_emotion"]["adapted"]}
        allowed = {k: v for k, v in section["grid"].items() if v["one_emotion_cost"] <= 0.02} or section["grid"]
        prior, strength = map(float, max(allowed, key=lambda k: allowed[k]["gain_10"]).split("/"))
        section["chosen"] = {"prior_windows": prior, "strength": strength}
    prior, strength = section["chosen"]["prior_windows"], section["chosen"]["strength"]
    for name in args.adapt_models:
        directory = ROOT / "models" / f"{name}-speaker"
        model = load_model(directory)
        test = cached_inputs(model, parts["test"])
        section["speaker"][name] = evaluate_adaptation(model, test, prior_windows=prior, strength=strength)
        folds = {}
        for corpus in CORPORA:
            fold_dir = default_cache_dir().parent / "loco" / f"{name}-{corpus}"
            if (fold_dir / "metadata.json").is_file():
                fold = load_model(fold_dir)
                held_out = cached_inputs(fold, [c for c in clips if c.corpus == corpus])
                folds[corpus] = evaluate_adaptation(fold, held_out, prior_windows=prior, strength=strength)
        if folds:
            section["loco"][name] = folds
    return section


def merge_section(results: dict, section: str, made: dict) -> None:
    """Store a section's new results over the stored ones, keeping what this run did not remake."""
    key = "protocols" if section in ("test", "baseline") else section
    stored = results.get(key, {})
    if key == "protocols":  # the neural rows and the baseline's are made apart: each keeps the other's
        made = {**stored, **{protocol: {**stored.get(protocol, {}), **rows} for protocol, rows in made.items()}}
    elif section == "loco":  # one model's folds at a time: the others' stay
        made = {**stored, **{name: with_earlier_folds(stored.get(name), row) for name, row in made.items()}}
    elif section == "perturb" and stored.get("clips") == made["clips"]:  # the same clips
        made["models"] = {**stored["models"], **made["models"]}
    elif section == "adapt" and stored.get("chosen") == made["chosen"]:  # the same settings: models not re-run stay
        made["speaker"] = {**stored.get("speaker", {}), **made["speaker"]}
        made["loco"] = {**stored.get("loco", {}), **made["loco"]}
    results[key] = made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=[str(ROOT.parent / "shared" / "corpora")])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "compare_models"))
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--loco-models", nargs="*", default=["emo-whisper"], choices=[*RECIPES, BASELINE])
    parser.add_argument("--loco-epochs", type=int, help="fewer epochs than the recipe's (reported per fold)")
    parser.add_argument("--loco-corpora", nargs="+", choices=CORPORA, default=list(CORPORA),
                        help="held-out corpora to run (fewer than five: no LOCO mean is reported)")
    parser.add_argument("--reuse-folds", action="store_true",
                        help="keep LOCO fold models an earlier run of the same recipe left in the cache")
    parser.add_argument("--loco-shipped", nargs="*", default=[], help="shipped speaker models scored on corpora they never saw")
    parser.add_argument("--perturb-models", nargs="+", default=["emo-cnn", "emo-whisper"])
    parser.add_argument("--perturb-clips", type=int, default=0, help="a seeded sample of the test clips (0: all)")
    parser.add_argument("--adapt-models", nargs="+", default=["emo-whisper"])
    parser.add_argument("--adapt-keep-grid", action="store_true",
                        help="keep the stored voice-profile settings grid and choice; measure --adapt-models with them")
    args = parser.parse_args()
    clips = list(find_clips(args.data))
    out = Path(args.out)
    results = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {}
    shipped = [ROOT / "models" / f"{name}-{protocol}" for protocol in PROTOCOLS for name in NEURAL]
    run = provenance(*(d for d in shipped if (d / "metadata.json").is_file()))
    make = {"test": test_section, "baseline": baseline_section, "loco": loco_section, "perturb": perturb_section,
            "adapt": adapt_section}
    if set(args.sections) == set(make):
        results.update({"provenance": run, "data": args.data, "clips_found": len(clips)})
    else:  # the file's provenance stays that of its full run; each partial run is listed after it
        results.setdefault("partial_runs", []).append({"sections": args.sections, "data": args.data, "provenance": run})
    for section in args.sections:
        merge_section(results, section, make[section](clips, args))
    write_results(out, results, markdown(results))


def markdown(results: dict) -> str:
    pct = lambda v: f"{100 * v:.1f}"
    lines = ["| protocol | model | accuracy | UAR | macro-F1 | UAR RAVDESS | UAR CREMA-D | UAR SAVEE | UAR TESS | UAR ASED | ECE | params | LiteRT size | p50 ms / 3 s clip |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for protocol, rows in results.get("protocols", {}).items():
        for name, r in rows.items():
            corpus = lambda c: pct(r["per_corpus"][c]["balanced_accuracy"]) if c in r["per_corpus"] else "–"
            lines.append(" | ".join([
                f"| {protocol}", name, pct(r["accuracy"]), pct(r["balanced_accuracy"]), pct(r["macro_f1"]),
                *(corpus(c) for c in CORPORA),
                f"{r['ece']:.3f}" if "ece" in r else "–",
                f"{r['parameters']:,}" if r.get("parameters") else "–",
                f"{r['litert_bytes'] / 1024:.0f} KB" if "litert_bytes" in r else "–",
                f"{r['latency_ms_3s_clip']['p50']:.1f}" if "latency_ms_3s_clip" in r else "–",
            ]) + " |")
    if results.get("loco"):
        lines += ["", "Leave one corpus out (UAR %, trained on the other four, tested on every clip of the named one):", "",
                  "| model | RAVDESS | CREMA-D | SAVEE | TESS | ASED | mean | lowest |", "|---|---|---|---|---|---|---|---|"]
        for name, r in results["loco"].items():
            complete = len(r["folds"]) == len(CORPORA)  # a mean over fewer corpora is not the LOCO mean
            lines.append(" | ".join([f"| {name}", *(pct(r["folds"][c]["balanced_accuracy"]) if c in r["folds"] else "–"
                                                     for c in CORPORA), pct(r["mean_uar"]) if complete else "–",
                                     pct(r["min_uar"]) if complete else "–"]) + " |")
    if results.get("perturb", {}).get("models"):
        perturb = results["perturb"]
        conditions = list(next(iter(perturb["models"].values())))
        lines += ["", f"Perturbed speaker-protocol test clips ({perturb['clips']:,} clips; UAR %; "
                      "in brackets: clips the app's speech gate would refuse, scored here anyway):", "",
                  "| model | " + " | ".join(conditions) + " |", "|---|" + "---|" * len(conditions)]
        for name, rows in perturb["models"].items():
            cells = [pct(rows[c]["balanced_accuracy"]) + (f" ({rows[c]['below_speech_gate']})" if rows[c]["below_speech_gate"] else "")
                     for c in conditions]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if results.get("adapt", {}).get("speaker"):
        adapt = results["adapt"]
        lines += ["", f"Voice profiles (UAR %, adapted / unadapted on the same clips; settings chosen on validation: "
                      f"prior {adapt['chosen']['prior_windows']:g} windows, strength {adapt['chosen']['strength']:g}):", "",
                  "| model | data | 1 clip | 3 clips | 10 clips | all clips | one-sided (angry) profile |", "|---|---|---|---|---|---|---|"]
        cell = lambda r: f"{pct(r['adapted'])} / {pct(r['unadapted'])}"
        for name, r in adapt["speaker"].items():
            lines.append(f"| {name} | speaker-protocol test | " + " | ".join(cell(r[k]) for k in ("1", "3", "10", "all", "one_emotion")) + " |")
            for corpus, f in adapt.get("loco", {}).get(name, {}).items():
                lines.append(f"| {name} | LOCO {corpus} | " + " | ".join(cell(f[k]) for k in ("1", "3", "10", "all", "one_emotion")) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
