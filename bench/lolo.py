"""Leave one language out: each recipe trained once per language without any corpus of that language
(speaker-protocol train and test speakers of the others; their validation speakers for early stopping
and calibration) and tested on every clip of the held-out language. What the default is chosen on.

Score: UAR over the labels the held-out corpora have (`label_set_uar`: BAVED's arousal levels count
a prediction right when the level allows it), per language; the row's mean and lowest over languages.
Fold models stay in the cache (`~/.cache/ser/lolo`); `--reuse-folds` keeps those of the same recipe.

    python bench/lolo.py --recipes emo-whisper emo-whisper-lolo --data ../shared/corpora ../corpora-more
updates bench/results/lolo.json (rows and folds not run are kept) and rewrites lolo.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
from pathlib import Path

import numpy as np

from compare_models import recipe_id, trained_fold
from ser_core.corpora import CORPUS_NAMES, LANGUAGES, find_clips
from ser_core.features import default_cache_dir
from ser_core.train import RECIPES, train

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE_NAMES = {"english": "English", "amharic": "Amharic", "polish": "Polish", "turkish": "Turkish",
                  "arabic": "Arabic", "hindi-english": "Hindi/English", "bengali": "Bengali"}


def fold(clips, name: str, language: str, reuse: bool) -> dict:
    features, recipe = RECIPES[name]
    out = default_cache_dir().parent / "lolo" / f"{name}-{language}"
    protocol = f"lolo:{language}"
    metrics = (reuse and trained_fold(out, protocol, features, recipe)) or train(
        clips, ROOT / "models" / "splits" / "speaker.csv", protocol, out, features, recipe, held_out=language, verbose=0)
    val_uar = json.loads((out / "metadata.json").read_text()).get("validation", {}).get("label_set_uar")
    return {"uar": metrics["label_set_uar"], "n_test": metrics["n_scored"], "val_uar": val_uar,
            "per_corpus": {c: m["label_set_uar"] for c, m in metrics["per_corpus"].items()},
            "recipe_id": recipe_id(features, recipe)}


def row(folds: dict) -> dict:
    uars = [f["uar"] for f in folds.values()]
    complete = set(folds) == set(LANGUAGES)
    return {"folds": folds, "mean_uar": float(np.mean(uars)) if complete else None,
            "min_uar": float(np.min(uars)) if complete else None}


def provenance() -> dict:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"commit": commit, "cpu": cpu, "load_average_1m": round(os.getloadavg()[0], 2)}


def markdown(results: dict) -> str:
    pct = lambda v: "–" if v is None else f"{100 * v:.1f}"
    head = ["model", *(LANGUAGE_NAMES[language] for language in LANGUAGES), "mean", "lowest"]
    lines = ["Leave one language out (UAR %, trained without any corpus of the language, tested on all its clips):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results["rows"].items():
        cells = [pct(r["folds"][language]["uar"]) if language in r["folds"] else "–" for language in LANGUAGES]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {pct(r['mean_uar'])} | {pct(r['min_uar'])} |")
    lines += ["", "English fold per corpus: " + "; ".join(
        f"{name}: " + ", ".join(f"{CORPUS_NAMES[c]} {pct(v)}" for c, v in r["folds"]["english"]["per_corpus"].items())
        for name, r in results["rows"].items() if "english" in r["folds"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=[str(ROOT.parent / "shared" / "corpora"), str(ROOT.parent / "corpora-more")])
    parser.add_argument("--recipes", nargs="+", default=["emo-whisper"], choices=list(RECIPES))
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES), choices=list(LANGUAGES))
    parser.add_argument("--reuse-folds", action="store_true", help="keep fold models of the same recipe from an earlier run")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "lolo"))
    args = parser.parse_args()
    clips = list(find_clips(args.data))
    out = Path(args.out)
    results = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {"rows": {}}
    for name in args.recipes:
        features, recipe = RECIPES[name]
        stored = results["rows"].get(name, {"folds": {}})
        folds = {lang: f for lang, f in stored["folds"].items() if f.get("recipe_id") == recipe_id(features, recipe)}
        for language in args.languages:
            folds[language] = fold(clips, name, language, args.reuse_folds)
            results["rows"][name] = {**row(folds), "train_params": dataclasses.asdict(recipe), **provenance()}
            out.with_suffix(".json").write_text(json.dumps(results, indent=2))
            print(name, language, f"{100 * folds[language]['uar']:.1f}", flush=True)
    results["clips_found"] = len(clips)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
