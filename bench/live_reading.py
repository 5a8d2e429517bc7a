"""How the Live page reads its window: which heads (the default, or the utterance reader it names for
speech cut out of a longer recording, `inference.UTTERANCES_FIELD`), and what of a window that holds
speech (all of it, its pauses included, or its speech regions joined: `live.WINDOW_READINGS`)?

The Live page (and the API's stream) classifies the latest window (one model window, 4 s) twice a
second; a window in which the voice activity detector hears no speech is a pause either way. Each clip
of the speaker protocol (at most 25 per emotion, drawn as bench/segments.py draws them) is streamed
through the product's own `LiveClassifier` as it was recorded, between 0.5 s of room noise before and
1 s after, in 20 ms frames, and classified after every 0.5 s of audio (a simulated clock: what the
page's worker does in real time). Scored: every reading that heard speech, against its clip's label
(UAR over readings: how often the bars name the emotion), and per clip the mean of its readings. The
same clips are streamed again cut at their speech (`augment.cut_at_speech`, no margin), so that the
only quiet around them is the stream's own, not the acted corpora's (which can carry the emotion:
docs/evaluation.md, the quiet cue). Chosen on validation clips as recorded, then measured once on test.

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
from ser_core.serving.live import WINDOW_READING, LiveClassifier
from ser_core.training.augment import cut_at_speech
from ser_core.training.corpora import read_manifest
from ser_core.training.splits import assign

ROOT = Path(__file__).resolve().parent.parent
SR = 16000
FRAME_S, INTERVAL_S = 0.02, 0.5
BEFORE_S, AFTER_S = 0.5, 1.0


def readings(model, window_reading: str, samples: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """The probabilities of every reading that heard speech while `samples` streamed in."""
    t = [0.0]
    live = LiveClassifier(model, clock=lambda: t[0], background=False, window_reading=window_reading)  # this clock
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


def score(model, window_reading: str, clips, seed: int, cut: bool = False) -> dict:
    """UAR per reading and per clip; with `cut`, each clip cut at its speech before it is streamed."""
    rng = np.random.default_rng(seed)
    per_reading_true, per_reading, per_clip = [], [], []
    for clip in clips:
        samples = load_audio(clip.path, SR).samples
        if cut:
            samples = cut_at_speech(samples, SR, np.random.default_rng(seed), max_margin_s=0.0)
        found = readings(model, window_reading, samples, rng)
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
    candidates = {f"{name}, {what}": (candidate, reading)
                  for reading, what in (("speech", "its speech joined"), ("window", "the whole window"))
                  for name, candidate in (("the default itself", alone), ("its utterance reader", model.utterance_reader))}
    parts = assign(read_manifest(ROOT.parent / "shared" / "corpora" / "manifest.csv"), ROOT / model.metadata["split_file"])
    results = {"provenance": provenance(ROOT / "models" / "default"), "model": model.metadata["name"],
               "reader": model.utterance_reader.metadata["name"], "clips": {}, "validation": {}, "test": {}}
    for split, seed in (("validation", 1), ("test", 0)):
        clips = pick_clips(parts["val" if split == "validation" else "test"], np.random.default_rng(seed))
        results["clips"][split] = len(clips)
        for name, (candidate, reading) in candidates.items():
            results[split][name] = {"as recorded": score(candidate, reading, clips, seed),
                                    "cut at speech": score(candidate, reading, clips, seed, cut=True)}
            print(split, name, results[split][name], flush=True)
        if split == "validation":
            results["chosen"] = max(candidates, key=lambda n: round(
                results["validation"][n]["as recorded"]["uar_per_reading"], 3))
    what = {"window": "the whole window", "speech": "its speech joined"}[WINDOW_READING]
    results["served"] = f"its utterance reader, {what}"
    out = ROOT / "bench" / "results" / "live_reading"
    write_results(out, results, markdown(results), echo=False)


def markdown(r: dict) -> str:
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    lines = ["# The Live page's readings (`python bench/live_reading.py`)", "",
             f"Model `{r['model']}`, its utterance reader `{r['reader']}`. Speaker-protocol clips streamed one at a time "
             f"through `LiveClassifier`, room noise around them, a reading every {INTERVAL_S} s "
             f"({r['clips']['validation']} validation clips, {r['clips']['test']} test clips, at most 25 per emotion): "
             "as recorded, and cut at their speech (no acted quiet around them).", "",
             "| reads the live window | validation: UAR per reading | per clip | cut at speech: per reading | per clip "
             "| test: UAR per reading | per clip | cut at speech: per reading | per clip | test readings |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in r["validation"]:
        cells = [pct(part[key]) for split in ("validation", "test") for part in r[split][name].values()
                 for key in ("uar_per_reading", "uar_per_clip")]
        lines.append(f"| {name}{' (chosen)' if name == r['chosen'] else ''} | {' | '.join(cells)} | "
                     f"{r['test'][name]['as recorded']['readings']} |")
    lines += ["", "Chosen on validation clips as recorded, by UAR per reading; the test columns were measured once, "
              f"after the choice. Served (`live.WINDOW_READING`, the reader a model names): {r['served']} "
              f"(matches the choice: {r['served'] == r['chosen']})."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
