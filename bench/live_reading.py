"""Which heads read the Live page's window: the default, or the utterance reader it names for speech cut
out of a longer recording (`inference.UTTERANCES_FIELD`)?

The Live page classifies the latest window (one model window, 4 s) twice a second, and only the
speech the voice activity detector hears in it, its regions joined: speech cut out of a stream, as a
recording's utterances are. Each clip of the speaker protocol (at most 25 per emotion, drawn as
bench/segments.py draws them) is streamed through the product's own `LiveClassifier` as it was
recorded, between 0.5 s of room noise before and 1 s after, in 20 ms frames, and classified after
every 0.5 s of audio (a simulated clock: what the page's worker does in real time). Scored: every
reading that heard speech, against its clip's label (UAR over readings: how often the bars name the
emotion), and per clip the mean of its readings. Chosen on validation clips, then measured once on test.

    python bench/live_reading.py     writes bench/results/live_reading.json and .md
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from provenance import provenance
from report import write_results
from segments import noise, pick_clips
from ser_core.io.audio import load_audio
from ser_core.labels import LABELS
from ser_core.serving.inference import load_model
from ser_core.serving.live import LiveClassifier
from ser_core.training.corpora import read_manifest
from ser_core.training.splits import assign

ROOT = Path(__file__).resolve().parent.parent
SR = 16000
FRAME_S, INTERVAL_S = 0.02, 0.5
BEFORE_S, AFTER_S = 0.5, 1.0


def readings(model, samples: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """The probabilities of every reading that heard speech while `samples` streamed in."""
    t = [0.0]
    live = LiveClassifier(model, clock=lambda: t[0], background=False)  # read on this clock
    stream = np.concatenate([noise(BEFORE_S, rng, -60.0), samples, noise(AFTER_S, rng, -60.0)])
    frame, every = round(FRAME_S * SR), round(INTERVAL_S / FRAME_S)
    out = []
    for i, start in enumerate(range(0, len(stream), frame)):
        live.push(stream[start : start + frame], SR)
        t[0] = (start + frame) / SR
        if (i + 1) % every == 0:
            reading = live.classify()
            if reading is not None and not reading.pause:
                out.append(np.array([reading.probabilities[label] for label in LABELS]))
    return out


def score(model, clips, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    per_reading_true, per_reading, per_clip = [], [], []
    for clip in clips:
        found = readings(model, load_audio(clip.path, SR).samples, rng)
        per_reading_true += [clip.emotion] * len(found)
        per_reading += [LABELS[int(np.argmax(p))] for p in found]
        per_clip.append(LABELS[int(np.argmax(np.mean(found, axis=0)))] if found else "missed")
    truth = [clip.emotion for clip in clips]
    return {"uar_per_reading": float(balanced_accuracy_score(per_reading_true, per_reading)),
            "uar_per_clip": float(balanced_accuracy_score(truth, per_clip)), "readings": len(per_reading),
            "clips_without_reading": per_clip.count("missed")}


def main() -> None:
    model = load_model(ROOT / "models" / "default")
    if model.utterance_reader is None:
        raise SystemExit("the default names no utterance reader: nothing to choose")
    # LiveClassifier reads with the reader a model names: the default alone is a copy that names none.
    alone = copy.copy(model)
    alone.utterance_reader = None
    candidates = {"the default itself": alone, "its utterance reader": model.utterance_reader}
    parts = assign(read_manifest(ROOT.parent / "shared" / "corpora" / "manifest.csv"), ROOT / model.metadata["split_file"])
    results = {"provenance": provenance(ROOT / "models" / "default"), "model": model.metadata["name"],
               "reader": model.utterance_reader.metadata["name"], "clips": {}, "validation": {}, "test": {}}
    for split, seed in (("validation", 1), ("test", 0)):
        clips = pick_clips(parts["val" if split == "validation" else "test"], np.random.default_rng(seed))
        results["clips"][split] = len(clips)
        for name, candidate in candidates.items():
            results[split][name] = score(candidate, clips, seed)
            print(split, name, results[split][name], flush=True)
        if split == "validation":
            results["chosen"] = max(candidates, key=lambda n: round(results["validation"][n]["uar_per_reading"], 3))
    out = ROOT / "bench" / "results" / "live_reading"
    write_results(out, results, markdown(results), echo=False)


def markdown(r: dict) -> str:
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    lines = ["# The Live page's readings (`python bench/live_reading.py`)", "",
             f"Model `{r['model']}`, its utterance reader `{r['reader']}`. Speaker-protocol clips streamed one at a time "
             f"through `LiveClassifier` as recorded, room noise around them, a reading every {INTERVAL_S} s "
             f"({r['clips']['validation']} validation clips, {r['clips']['test']} test clips, at most 25 per emotion).", "",
             "| reads the live window | validation: UAR per reading | per clip | test: UAR per reading | per clip | test readings |",
             "|---|---|---|---|---|---|"]
    for name in r["validation"]:
        v, t = r["validation"][name], r["test"][name]
        lines.append(f"| {name}{' (chosen)' if name == r['chosen'] else ''} | {pct(v['uar_per_reading'])} | "
                     f"{pct(v['uar_per_clip'])} | {pct(t['uar_per_reading'])} | {pct(t['uar_per_clip'])} | {t['readings']} |")
    lines += ["", "Chosen on validation by UAR per reading; the test columns were measured once, after the choice."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
