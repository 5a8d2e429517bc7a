"""The numbers of README.md and docs/*.md, made from what was measured and committed.

Two rules, checked by tests/test_readme.py:

1. Generated blocks. Between `<!-- name -->` and `<!-- /name -->` a document holds what `BLOCKS[name]`
   makes from committed results (bench/results/*, models/*/metadata.json and metrics.json).
   `python bench/readme_tables.py` remakes every block of every document in place.
2. Nothing measured outside them. In the prose around the blocks, a measured-looking number (one
   with a decimal point, a percentage, or a count of time, rate or size: `49.1`, `74%`, `95 s`,
   `330 clips/s`) must also appear in a generated block of the same document, or be one of `FIXED`:
   settings and facts of design, which are not measured. So a figure that a re-run changes, or that
   was never committed, fails the test instead of going stale. Code (fenced or in backticks) and
   link targets are not prose.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from ser_core.serving.shipped import follow_pointer
from ser_core.training.corpora import LANGUAGE_NAMES, LANGUAGES

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCUMENTS = ("README.md", "docs/*.md")
PROTOCOL_NAMES = {"random": "random 80/20 by file", "speaker": "speaker-independent"}
OLD_CORPORA = ("ravdess", "cremad", "savee", "tess", "ased")
NEW_CORPORA = ("nemo", "turev", "baved", "emospeech", "banglaser")
# Models whose test (and validation) predictions read each speaker against a profile built from all
# of that speaker's clips of the same split, the scored ones included: transductive.
TRANSDUCTIVE = {"emo-whisper-adapt-speaker", "emo-whisper-f32-adapt-speaker"}
# Settings, limits and facts of design in the prose (number and unit as written), not measurements.
FIXED = {
    "3.11", "4.0", "680,000 hours",  # Python, licence versions; Whisper's pretraining
    "200 MiB", "2 h", "50 MiB", "600 s", "1 MiB", "768 kHz", "48 kHz", "1.4 GB", "460 MB",  # input limits, their arithmetic
    "120 s", "60 s", "0.25 s", "20 ms", "16 kHz", "0.2",  # time limits, frame and sample rates, mixup
}

pct = lambda v: f"{100 * v:.1f}"


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def shipped_models(root: Path = ROOT) -> list[Path]:
    return sorted(p.parent for p in (root / "models").glob("*/metrics.json") if not p.parent.is_symlink())


def default_model(root: Path = ROOT) -> Path:
    """The directory `models/default` names."""
    return follow_pointer(root / "models" / "default")


def protocol_name(directory: Path, protocol: str) -> str:
    name = PROTOCOL_NAMES.get(protocol, protocol)
    return "held-out speakers, transductive" if directory.name in TRANSDUCTIVE else name


def validation_uar(metadata: dict) -> str:
    v = metadata.get("validation")
    return pct(v["label_set_uar"]) if v else "not stored"


def summary_table(root: Path = ROOT) -> str:
    """README's first screen: what the default achieves, each number linked to where it comes from."""
    model = default_model(root)
    m, meta = _json(model / "metrics.json"), _json(model / "metadata.json")
    rows = _json(root / "bench" / "results" / "lolo.json")["rows"]
    lolo = rows[meta["recipe"]]
    lowest = min(lolo["folds"], key=lambda language: lolo["folds"][language]["uar"])
    replicates = [r for name, r in rows.items()
                  if re.fullmatch(rf"{re.escape(meta['recipe'])}-seed\d+", name) and r["mean_uar"] is not None]
    seeds = (f"; the same recipe from {len(replicates) + 1} training seeds: "
             f"{pct(sum(r['mean_uar'] for r in [lolo, *replicates]) / (len(replicates) + 1))}%") if replicates else ""
    arousal, arousal_batch = arousal_by_language(root), arousal_by_language(root, "batch_arousal_uar")
    latency = _json(root / "bench" / "results" / "speed.json")["latency_only"]
    scaling = _json(root / "bench" / "results" / "scaling.json")
    languages = len(lolo["folds"])
    return "\n".join([
        f"| `{model.name}` (the default) | measured | details |",
        "|---|---|---|",
        f"| speakers it never heard: UAR over 8 emotions, {m['n_test']:,} test clips of {len(m['per_corpus'])} corpora "
        f"(speaker-independent split) | **{pct(m['balanced_accuracy'])}%** (accuracy {pct(m['accuracy'])}%; validation "
        f"{validation_uar(meta)}%) | [models](docs/models.md) |",
        f"| languages it never heard: leave one language out, mean UAR over {languages} languages, one clip at a time "
        f"| **{pct(lolo['mean_uar'])}%** (lowest {pct(lolo['min_uar'])}%, {lowest.title()}; "
        f"{pct(lolo['mean_batch_uar'])}% reading a batch of files together{seeds}"
        + (f"; {pct(lolo['mean_known_batch_uar'])}% (lowest {pct(lolo['min_known_batch_uar'])}%) read together among only "
           "the emotions each corpus holds, as `--adapt batch --classes`" if lolo.get("mean_known_batch_uar") else "") + ") "
        "| [evaluation](docs/evaluation.md), [lolo.md](bench/results/lolo.md) |",
        f"| the same, how aroused the voice sounds (high or low, chance 50%), mean UAR over the {len(arousal)} of them "
        f"with both levels | **{pct(sum(arousal.values()) / len(arousal))}%** (lowest {pct(min(arousal.values()))}%, "
        f"{LANGUAGE_NAMES[min(arousal, key=arousal.get)]}; {pct(sum(arousal_batch.values()) / len(arousal_batch))}% "
        "reading a batch of files together) | [evaluation](docs/evaluation.md#arousal), "
        "[arousal.md](bench/results/arousal.md) |",
        f"| latency: one 3 s clip, file bytes to 8 probabilities, p50, on a {latency.get('cores', 2)}-core {latency['cpu']} "
        f"| **{served_latency(latency['models'][meta['recipe']])['p50_ms']:.1f} ms** "
        f"(the original pipeline {latency['original_latency_3s_clip']['p50_ms']:.1f} ms) | [benchmarks](docs/benchmarks.md) |",
        f"| throughput of one core (CPU time, which load does not stretch): corpus clips; a 1 h recording to a timeline "
        f"| {scaling['one_core']['clips_per_cpu_s']:.1f} clips per second; {scaling['long_audio']['cpu_s']:.0f} s "
        "| [scaling](docs/scaling.md) |",
    ])


def arousal_by_language(root: Path = ROOT, reading: str = "arousal_uar") -> dict[str, float]:
    """bench/arousal.py's UAR (one clip, or `batch_arousal_uar`) in each language never heard that has
    both levels (the mean of its corpora)."""
    per_language: dict[str, list[float]] = {}
    for r in _json(root / "bench" / "results" / "arousal.json")["never_heard"].values():
        if r[reading] is not None:
            per_language.setdefault(r["language"], []).append(r[reading])
    return {language: sum(values) / len(values) for language, values in per_language.items()}


def shipped_table(root: Path = ROOT) -> str:
    """README's short list of the shipped models: which to pick, and their headline numbers."""
    lines = ["| model | protocol | corpora | validation UAR | test UAR | parameters |", "|---|---|---|---|---|---|"]
    default = default_model(root).name
    reader = _json(default_model(root) / "metadata.json").get("utterances", {}).get("model")
    for directory in shipped_models(root):
        meta, m = _json(directory / "metadata.json"), _json(directory / "metrics.json")
        note = (" (default)" if directory.name == default
                else " (the default's utterance reader: a recording's utterances)" if directory.name == reader
                else " (a voice profile from every test clip of the speaker)" if directory.name in TRANSDUCTIVE else "")
        lines.append(f"| `{directory.name}`{note} | {protocol_name(directory, m['protocol'])} | "
                     f"{len(m['per_corpus'])} | {validation_uar(meta)} | {pct(m['balanced_accuracy'])} | "
                     f"{meta['param_count']:,} |")
    return "\n".join(lines)


def old_five_uar(directory: Path) -> str:
    """Test UAR on the clips of the five corpora every encoder model has, from its committed predictions."""
    from sklearn.metrics import balanced_accuracy_score

    with (directory / "predictions.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["corpus"] in OLD_CORPORA]
    return pct(balanced_accuracy_score([r["true"] for r in rows], [r["predicted"] for r in rows]))


def models_table(root: Path = ROOT) -> str:
    lines = [
        "| model | protocol | validation UAR (clips) | test clips | accuracy | UAR | UAR on the five corpora "
        "| macro-F1 | UAR RAVDESS / CREMA-D / SAVEE / TESS / ASED | UAR nEMO / TurEV-DB / BAVED / EmoSpeech / BanglaSER "
        "| ECE | params | training |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        "| original notebook (published, accuracy only) | random 80/20 by file, 12,162 clips | – | 20% (≈2,430) | 69.5 "
        "| – | – | – | – | – | – | 56,040 | – |",
    ]
    for directory in shipped_models(root):
        meta, m = _json(directory / "metadata.json"), _json(directory / "metrics.json")
        corpus = lambda c: pct(m["per_corpus"][c].get("label_set_uar", m["per_corpus"][c]["balanced_accuracy"])) \
            if c in m["per_corpus"] else "–"
        training = meta["training"]
        name = f"`{directory.name}`" + (" (transductive)" if directory.name in TRANSDUCTIVE else "")
        lines.append(" | ".join([
            f"| {name}", protocol_name(directory, m["protocol"]),
            f"{validation_uar(meta)} ({meta['validation']['n_scored']:,})" if "validation" in meta else "not stored",
            f"{m['n_test']:,}", pct(m["accuracy"]), pct(m["balanced_accuracy"]),
            old_five_uar(directory) if any(c in m["per_corpus"] for c in NEW_CORPORA) else "–",
            pct(m["macro_f1"]), " / ".join(map(corpus, OLD_CORPORA)), " / ".join(map(corpus, NEW_CORPORA)),
            f"{m['ece']:.3f}", f"{meta['param_count']:,}",
            f"{training['epochs_run']} epochs, {training['seconds'] / 60:.0f} min",
        ]) + " |")
    lines += ["", f"`models/default` is `{default_model(root).name}`. UAR: unweighted average recall. Validation: "
              "the split's validation speakers, on which the model was chosen (`validation` in its metadata.json; "
              "BAVED's arousal-level clips count, right when the level allows the emotion). Test: measured once, "
              "on the clips with one emotion (per corpus: BAVED's levels counted as in validation)."]
    return "\n".join(lines)


def validation_table(root: Path = ROOT) -> str:
    """The validation numbers each model was chosen on, as its metadata.json stores them."""
    lines = ["| model | validation clips | UAR | RAVDESS / CREMA-D / TESS / ASED | reading |", "|---|---|---|---|---|"]
    for directory in shipped_models(root):
        v = _json(directory / "metadata.json")["validation"]
        readings = [("as served" + (", each speaker against all of their clips (transductive)" if v.get("transductive") else ""), v)]
        readings += [("one clip at a time, no profile", v["one_clip_without_profile"])] if "one_clip_without_profile" in v else []
        readings += [("the five corpora's validation clips only", v["five_corpora"])] if "five_corpora" in v else []
        for reading, r in readings:
            corpora = " / ".join(pct(r["per_corpus"][c]) if c in r.get("per_corpus", {}) else "–" for c in ("ravdess", "cremad", "tess", "ased"))
            lines.append(f"| `{directory.name}` | {r.get('n_scored', v['n_scored']):,} | {pct(r.get('label_set_uar', r['balanced_accuracy']))} "
                         f"| {corpora} | {reading} |")
    return "\n".join(lines)


def speed_table(root: Path = ROOT) -> str:
    s = _json(root / "bench" / "results" / "speed.json")
    ms = lambda r: f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} ms"
    names = list(s["models"])
    rows = [("one 3 s clip end to end (WAV bytes → decode → VAD → features → model), p50 / p95",
             [ms(s["models"][n]["latency_3s_clip"]) for n in names], "≤ 60 ms")]
    for i, requesters in enumerate((1, 4)):
        rows.append((f"the same with {requesters} concurrent requester(s) sharing one model, p50 / p95 per request",
                     [ms(s["models"][n]["concurrent"][i]) for n in names], ""))
    batch = s["models"][names[0]]["batch_throughput"]
    formats = ", ".join(f"{n:,} {suffix.lstrip('.')}" for suffix, n in sorted(batch["formats"].items()))
    rows += [
        (f"batch, `predict_files` with {batch['workers']} workers over {batch['files']:,} corpus files as stored ({formats})",
         [f"{s['models'][n]['batch_throughput']['clips_per_s']:.0f} clips/s" for n in names], ""),
        ("the same clips as 16 kHz WAV", [f"{s['models'][n]['batch_throughput_wav']['clips_per_s']:.0f} clips/s" for n in names], ""),
        ("1 h of audio (FLAC) → full timeline", [f"{s['models'][n]['long_audio']['seconds']:.1f} s" for n in names], "≤ 3 min"),
        ("live: 20 ms frames of 48 kHz stereo speech in real time into the Live page's classifier, "
         "readings per second (classification p50 / p95)",
         [f"{s['models'][n]['live']['readings_per_s']:.2f} ({ms(s['models'][n]['live']['classify'])})" for n in names],
         "≥ 2 / s"),
        ("fresh process → Upload page's first bars (Streamlit AppTest client)",
         [f"{s['models'][n]['cold_start']['seconds_to_first_bars']:.1f} s" for n in names], "≤ 10 s"),
        ("peak memory of that process (VmHWM)", [f"{s['models'][n]['cold_start']['peak_memory_mb']:.0f} MiB" for n in names], "≤ 1.5 GB"),
        ("the original pipeline (librosa.load 44.1 kHz → MFCC → Keras `predict`), one 3 s clip, p50 / p95",
         [ms(s["original_latency_3s_clip"])] + [""] * (len(names) - 1), ""),
    ]
    load = s["machine"]
    lines = [f"| what (`python bench/speed.py`; load average {load['load_average_at_start'][0]:.1f} at start, "
             f"{load['load_average_at_end'][0]:.1f} at end) | " + " | ".join(f"`{n}`" for n in names) + " | target |",
             "|---|" + "---|" * len(names) + "---|"]
    lines += [f"| {what} | " + " | ".join(cells) + f" | {target} |" for what, cells, target in rows]
    return "\n".join(lines)


def served_latency(row: dict) -> dict:
    """A model's 3 s clip latency as served: with the thread policy where the run measured it beside
    the libraries' default threads, else the one setting an older run measured."""
    return row.get("thread_policy", row)


def latency_table(root: Path = ROOT) -> str:
    s = _json(root / "bench" / "results" / "speed.json")["latency_only"]
    both = any("thread_policy" in r for r in s["models"].values())
    head = "| p50 ms | p95 ms |" + (" p50 / p95 ms, the libraries' default threads |" if both else "")
    lines = [f"| one 3 s clip end to end, {s['runs']} runs on a {s.get('cores', 2)}-core {s['cpu']} (load average "
             f"{s['load_average_at_start'][0]:.1f} at start; `python bench/speed.py --latency-only`) {head}",
             "|---|---|---|" + ("---|" if both else ""),
             f"| the original pipeline | {s['original_latency_3s_clip']['p50_ms']:.1f} | "
             f"{s['original_latency_3s_clip']['p95_ms']:.1f} |" + (" |" if both else "")]
    for name, row in s["models"].items():
        r = served_latency(row)
        default = row.get("library_default")
        lines.append(f"| {name} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |"
                     + (f" {default['p50_ms']:.1f} / {default['p95_ms']:.1f} |" if default else (" – |" if both else "")))
    return "\n".join(lines)


def encoder_options_table(root: Path = ROOT) -> str:
    s = _json(root / "bench" / "results" / "speed.json")["latency_only"]
    return "\n".join(["| the Whisper encoder alone, one 4 s window, one thread (`python bench/speed.py --latency-only`) "
                      "| median ms |", "|---|---|"]
                     + [f"| {name} | {ms:.1f} |" for name, ms in s["encoder_options_ms"].items()])


def long_audio_table(root: Path = ROOT) -> str:
    s = _json(root / "bench" / "results" / "speed.json")["long_audio_only"]
    return "\n".join([f"| 1 h of audio (FLAC) → full timeline, on a {s['cores']}-core {s['cpu']} "
                      f"(`python bench/speed.py --long-only`; load average {s['provenance']['load_average_at_start'][0]:.1f} "
                      "at start) | seconds | windows |", "|---|---|---|"]
                     + [f"| {name} | {r['seconds']:.1f} | {r['windows']:,} |" for name, r in s["models"].items()])


def lolo_means_table(root: Path = ROOT) -> str:
    rows = _json(root / "bench" / "results" / "lolo.json")["rows"]
    lines = ["| recipe | one clip: mean / lowest | batch: mean | voice profile (transductive): mean "
             "| validation UAR, mean over the folds |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        if r.get("mean_uar") is None:  # stopped before every language was held out: no mean to show
            continue
        vals = [f["val_uar"] for f in r["folds"].values() if f.get("val_uar") is not None]
        # A speaker-normalised recipe is validated with every validation speaker normalised: transductive.
        params = r.get("train_params", {})  # one recipe's, or a dict of them by recipe (older rows, ensembles)
        recipes = [params] if "architecture" in params else list(params.values())
        transductive = " (transductive)" if any(p.get("speaker_normalised") for p in recipes) else ""
        lines.append(f"| {name} | {pct(r['mean_uar'])} / {pct(r['min_uar'])} | {pct(r['mean_batch_uar'])} | "
                     f"{pct(r['mean_speaker_uar'])} | {pct(sum(vals) / len(vals)) + transductive if vals else '–'} |")
    return "\n".join(lines)


LOLO_READINGS = (("one clip", ""), ("batch", "batch_"), ("voice profile", "speaker_"), ("known classes", "known_"),
                 ("known classes, batch", "known_batch_"), ("cut at speech", "cut_"))


def lolo_table(root: Path = ROOT) -> str:
    """Leave one language out, readable: each recipe as first trained (seed 42), every reading's mean /
    lowest over the languages; the default's languages one by one; then lolo.md's table of recipes
    trained from several seeds. Every fold of every row: bench/results/lolo.md."""
    results = _json(root / "bench" / "results" / "lolo.json")
    rows = {name: r for name, r in results["rows"].items() if not re.search(r"-seed\d+$", name)}
    cell = lambda r, key: (f"{pct(r[f'mean_{key}uar'])} / {pct(r[f'min_{key}uar'])}"  # noqa: E731
                           if r.get(f"mean_{key}uar") is not None else "–")
    lines = [f"UAR %, mean / lowest over the {len(LANGUAGES)} languages, each trained without any corpus of the "
             "language and tested on all its clips. One clip: as `ser predict` reads a file. Batch: each held-out corpus read "
             "as one batch of files (`--adapt batch`). Voice profile: each speaker read against a profile of all of "
             "their clips (transductive). Known classes (not what the default is chosen on): each clip's top class "
             "among those its corpus has (`--classes`, the API's `classes`, the app's sidebar on Home, Record, Live and Upload); "
             "with batch, over the batch reading (`--adapt batch --classes`). Cut at speech: each clip cut at its speech with a random "
             "0-0.4 s of its own audio, as a long recording's utterance. A dash: not measured on every language. "
             "Every fold of every row, and every seed: [bench/results/lolo.md](../bench/results/lolo.md).", "",
             "| recipe (seed 42) | " + " | ".join(reading for reading, _ in LOLO_READINGS) + " |",
             "|---|" + "---|" * len(LOLO_READINGS)]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(cell(r, key) for _, key in LOLO_READINGS) + " |")
    default = _json(default_model(root) / "metadata.json")["recipe"]
    folds = results["rows"][default]["folds"]
    lines += ["", f"The default's recipe (`{default}`, seed 42) language by language:", "",
              "| reading | " + " | ".join(LANGUAGE_NAMES[language] for language in LANGUAGES) + " |",
              "|---|" + "---|" * len(LANGUAGES)]
    for reading, key in LOLO_READINGS:
        lines.append(f"| {reading} | " + " | ".join(pct(folds[language][f"{key}uar"]) for language in LANGUAGES) + " |")
    seeds = re.search(r"^The same recipes trained from other seeds.*?(?=\n\n[^|])", (root / "bench" / "results" / "lolo.md").read_text(),
                      re.S | re.M)
    return "\n".join(lines + (["", seeds[0].strip()] if seeds else []))


def encoder_layers_table(root: Path = ROOT) -> str:
    r = _json(root / "bench" / "results" / "encoder_layers.json")
    lines = [f"| read-out ({r['train_clips']:,} training clips, {r['val_clips']:,} validation clips) "
             "| validation UAR | ASED | CREMA-D | RAVDESS | TESS |", "|---|---|---|---|---|---|"]
    for kind, group in (("logistic probe", r["logistic_probes"]), ("small head", r["mlp_heads"])):
        lines += [f"| {kind}, {name} | {pct(v['uar'])} | {pct(v['ased'])} | {pct(v['cremad'])} | {pct(v['ravdess'])} "
                  f"| {pct(v['tess'])} |" for name, v in group.items()]
    return "\n".join(lines)


def loco_probe_table(root: Path = ROOT) -> str:
    r = _json(root / "bench" / "results" / "loco_probe.json")
    lines = ["| read-out | class weights | C | speakers normalised | other | LOCO mean UAR | lowest |",
             "|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        other = ", ".join(f"{k} {v}" for k, v in row.items() if k in ("augmented", "nuisance_dims"))
        lines.append(f"| {row['readout']} | {row['weighting']} | {row['C']} | {'yes' if row['speaker_normalised'] else 'no'} "
                     f"| {other} | {pct(row['mean_uar'])} | {pct(row['min_uar'])} |")
    return "\n".join(lines)


EXAMPLE_CLIPS, EXAMPLE_HOURS, EXAMPLE_MACHINES, EXAMPLE_CORES = 10_000_000, 10_000, 10, 16  # docs/scaling.md's example


def scaling_table(root: Path = ROOT) -> str:
    s = _json(root / "bench" / "results" / "scaling.json")
    p, one, long = s["provenance"], s["one_core"], s["long_audio"]
    return "\n".join([
        f"| `{p['models'][0]['name']}`, one core of an {p['cpu']} (`python bench/scaling.py`; load average "
        f"{p['load_average_at_start'][0]:.1f} at start, {s['load_average_at_end'][0]:.1f} at end) | measured |",
        "|---|---|",
        f"| {one['files']:,} corpus files as stored ({', '.join(one['formats'])}), `predict_files`, one worker: "
        f"clips per CPU-second / per wall second ({one['errors']} refused: no speech found) "
        f"| {one['clips_per_cpu_s']:.1f} / {one['clips_per_wall_s']:.1f} |",
        f"| {long['audio_minutes']:.0f} min of speech-like audio (FLAC) → full timeline: wall / CPU seconds "
        f"| {long['wall_s']:.1f} / {long['cpu_s']:.1f} |",
        f"| estimate: {EXAMPLE_CLIPS:,} such clips on {EXAMPLE_MACHINES} machines of {EXAMPLE_CORES} cores, "
        f"clips / (machines × cores × clips per CPU-second), start not included "
        f"| {EXAMPLE_CLIPS / (EXAMPLE_MACHINES * EXAMPLE_CORES * one['clips_per_cpu_s']) / 60:.0f} min |",
        f"| estimate: {EXAMPLE_HOURS:,} h of recordings on the same cluster, by the hour's CPU seconds "
        f"| {EXAMPLE_HOURS * long['cpu_s'] / (EXAMPLE_MACHINES * EXAMPLE_CORES) / 60:.0f} min |",
    ])


def fuzz_table(root: Path = ROOT) -> str:
    f = _json(root / "bench" / "results" / "fuzz.json")
    return "\n".join(["| `" + f["command"] + "` | measured |", "|---|---|",
                      f"| inputs tried / seconds / per second | {f['iterations']:,} / {f['seconds']:.1f} / "
                      f"{f['execs_per_second']:.1f} |",
                      f"| coverage edges / peak RSS | {f['coverage_edges']} / {f['peak_rss_mb']} MB |",
                      f"| findings (crashes, hangs, leaks, exceptions other than a clear error) | {len(f['findings'])} |"])


def include(name: str):
    """A results file's own markdown, as its benchmark wrote it, its headings as bold lines (the
    document around it has its own)."""
    return lambda root=ROOT: re.sub(r"^#+ (.*)$", r"**\1**", (root / "bench" / "results" / name).read_text().strip(),
                                    flags=re.M)


BLOCKS = {
    "summary-table": summary_table, "shipped-table": shipped_table, "models-table": models_table,
    "validation-table": validation_table, "speed-table": speed_table, "latency-table": latency_table, "encoder-options": encoder_options_table,
    "long-audio-table": long_audio_table, "lolo-means": lolo_means_table,
    "encoder-layers": encoder_layers_table, "loco-probe": loco_probe_table, "scaling-table": scaling_table,
    "fuzz-table": fuzz_table, "compare-table": include("compare_models.md"), "lolo-table": lolo_table,
    "segments-table": include("segments.md"), "lolo-conversations-table": include("lolo_conversations.md"),
    "turn-taking-table": include("turn_taking.md"),
    "live-reading-table": include("live_reading.md"), "serve-load-table": include("serve_load.md"),
    "cold-start-table": include("cold_start.md"), "load-test-table": include("load_test.md"),
    "ray-table": include("ray_batch.md"), "package-size-table": include("package_size.md"),
    "serve-soak-table": include("serve_soak.md"),
    "lolo-inputs-table": include("lolo_inputs.md"), "quiet-cue-table": include("quiet_cue.md"),
    "language-id-table": include("language_id.md"), "arousal-table": include("arousal.md"),
    "arithmetic-table": include("int8_arithmetic.md"),
}
BLOCK = re.compile(r"<!-- ([a-z-]+) -->\n.*?<!-- /\1 -->", re.S)


def documents(root: Path = ROOT) -> list[Path]:
    return [p for pattern in DOCUMENTS for p in sorted(root.glob(pattern))]


def updated(text: str, root: Path = ROOT) -> str:
    """The document with every generated block remade from the committed results."""
    return BLOCK.sub(lambda m: f"<!-- {m[1]} -->\n{BLOCKS[m[1]](root)}\n<!-- /{m[1]} -->", text)


NUMBER = re.compile(r"(?<![\w.\-])[-−+]?(\d[\d,]*(?:\.\d+)?(?:e-\d+|\.x)?)(%|\s?(?:ms|s|min|minutes|h|hours|MiB|MB|GiB|GB|KB|kHz|"
                    r"kbit|clips/s|analyses/s|windows/s)(?![\w]))?")
NOT_PROSE = re.compile(r"```.*?```|`[^`]*`|\]\([^)]*\)|https?://\S+|<!--.*?-->", re.S)


def measured(token: re.Match) -> bool:
    number, unit = token[1], token[2]
    return bool(unit) or "." in number.rstrip(".")


def unsourced_numbers(text: str) -> list[str]:
    """Measured-looking numbers of the prose found neither in the document's generated blocks nor in FIXED."""
    blocks = " ".join(m[0] for m in BLOCK.finditer(text))
    sourced = {m[1].replace(",", "") for m in NUMBER.finditer(blocks)}
    prose = NOT_PROSE.sub(" ", BLOCK.sub(" ", text))
    return [token[0].strip() for token in NUMBER.finditer(prose)
            if measured(token) and token[1].replace(",", "") not in sourced and token[0].strip() not in FIXED]


if __name__ == "__main__":
    for path in documents():
        path.write_text(updated(path.read_text()))
