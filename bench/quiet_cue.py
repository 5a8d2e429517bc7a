"""What the quiet around an acted sentence says about its emotion, with no voice at all.

A corpus file holds one sentence with the studio's quiet before and after it. If how long that quiet
lasts differs by emotion (the actor waited longer before a sad line, the file was cut later after a
fearful one), a head can learn it, and it is lost the moment the sentence is cut at its speech, as a
long recording's utterance or a conversation's turn is (bench/results/segments.md: the test clips
read as files 76.0, the same clips cut at their speech 68.0). This probe measures the cue alone:
per corpus, the served voice activity detector's regions give each clip its quiet before the first
and after the last speech, its speech time, its length and its number of regions; a logistic
regression (standardised, classes balanced) learns the emotion from the two quiet spans only, and
from all five timings, on the corpus's speaker-protocol train clips, scored (UAR) on its validation
clips. Chance is one over the corpus's classes. No encoder, no model of ours: the corpora's own
timing.

    python bench/quiet_cue.py [--data DIR ...]     writes bench/results/quiet_cue.json and .md
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from provenance import provenance
from report import write_results
from ser_core.errors import SerError
from ser_core.io.audio import load_audio
from ser_core.frontend.vad import find_regions
from ser_core.training.corpora import CORPUS_NAMES, find_clips
from ser_core.training.splits import assign

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RATE = 16000
TIMINGS = ("quiet before (s)", "quiet after (s)", "speech (s)", "length (s)", "regions")
FEATURE_SETS = {"quiet only": [0, 1], "all five timings": [0, 1, 2, 3, 4]}


def timings(path: str) -> list[float] | None:
    """A clip's five timings from the served detector's regions; None where it holds no speech or
    cannot be read (left out, as training leaves them out)."""
    try:
        audio = load_audio(path, SAMPLE_RATE)
    except SerError:
        return None
    [regions] = find_regions([audio])
    if not regions:
        return None
    length = len(audio.samples) / SAMPLE_RATE
    return [regions[0][0], length - regions[-1][1], sum(end - start for start, end in regions), length, len(regions)]


def corpus_probe(parts: dict, corpus: str, pool: ProcessPoolExecutor) -> dict | None:
    sets = {}
    for split in ("train", "val"):
        clips = [c for c in parts[split] if c.corpus == corpus]
        rows = list(tqdm(pool.map(timings, [str(c.path) for c in clips], chunksize=32), total=len(clips),
                         desc=f"{corpus} {split}", leave=False))
        kept = [(r, c.emotion) for r, c in zip(rows, clips) if r is not None]
        sets[split] = (np.array([r for r, _ in kept]), [e for _, e in kept])
    (x_train, y_train), (x_val, y_val) = sets["train"], sets["val"]
    if not y_val or len(set(y_train)) < 2:
        return None  # a corpus with no validation speakers (SAVEE) cannot be scored this way
    classes = sorted(set(y_train))
    result = {"classes": len(classes), "train_clips": len(y_train), "val_clips": len(y_val), "uar": {},
              "mean_by_emotion": {e: [round(float(v), 3) for v in x_train[np.array(y_train) == e][:, :2].mean(axis=0)]
                                  for e in classes}}
    for name, columns in FEATURE_SETS.items():
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced"))
        probe.fit(x_train[:, columns], y_train)
        result["uar"][name] = float(balanced_accuracy_score(y_val, probe.predict(x_val[:, columns])))
    return result


def markdown(results: dict) -> str:
    lines = ["# The quiet around acted sentences (`python bench/quiet_cue.py`)", "",
             "Emotion read from a clip's timing alone (the served voice activity detector's regions; a logistic "
             "regression trained on the corpus's speaker-protocol train clips), UAR % on its validation clips:", "",
             "| corpus | classes | chance | quiet before and after only | all five timings | validation clips |",
             "|---|---|---|---|---|---|"]
    for corpus, r in results["corpora"].items():
        lines.append(f"| {CORPUS_NAMES[corpus]} | {r['classes']} | {100 / r['classes']:.1f} | "
                     f"{100 * r['uar']['quiet only']:.1f} | {100 * r['uar']['all five timings']:.1f} | {r['val_clips']} |")
    lines += ["", "Mean quiet before / after the speech, seconds, on the train clips:", ""]
    for corpus, r in results["corpora"].items():
        lines.append(f"- {CORPUS_NAMES[corpus]}: " + ", ".join(
            f"{emotion} {before:.2f} / {after:.2f}" for emotion, (before, after) in r["mean_by_emotion"].items()))
    lines += ["", "The five timings: " + ", ".join(TIMINGS) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=[str(ROOT.parent / "shared" / "corpora"), str(ROOT.parent / "corpora-more")])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "quiet_cue"))
    args = parser.parse_args()
    run = provenance()
    clips = list(find_clips(args.data))
    parts = assign(clips, ROOT / "models" / "splits" / "speaker.csv", None)
    corpora = sorted({c.corpus for c in clips})
    with ProcessPoolExecutor(2) as pool:
        probes = {corpus: corpus_probe(parts, corpus, pool) for corpus in tqdm(corpora, desc="corpora")}
    results = {"provenance": run, "probe": "logistic regression (standardised, balanced) on VAD timings",
               "corpora": {c: r for c, r in probes.items() if r is not None}}
    out = Path(args.out)
    write_results(out, results, markdown(results))


if __name__ == "__main__":
    main()
