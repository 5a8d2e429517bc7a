"""Write the README's tables from what was measured: models (models/*/metadata.json, metrics.json),
speed (bench/results/speed.json) and models side by side (bench/results/compare_models.md), so the
README's numbers are the measured ones. `python bench/readme_tables.py` rewrites the README in place;
tests/test_readme.py checks it is up to date."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_NAMES = {"random": "random 80/20 by file", "speaker": "speaker-independent"}


def models_table(root: Path = ROOT) -> str:
    lines = [
        "| model | protocol | test clips | accuracy | UAR | macro-F1 | UAR RAVDESS / CREMA-D / SAVEE / TESS / ASED | UAR nEMO / TurEV-DB / BAVED / EmoSpeech / BanglaSER | ECE | Keras precision / recall | params | training |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        "| original notebook (published) | random 80/20 by file, 12,162 clips | 20% (≈2,430) | 69.5% | – | – | – | – | – | 80.7% / 57.2% | 56,040 | – |",
    ]
    pct = lambda v: f"{100 * v:.1f}%"
    for directory in sorted(p.parent for p in (root / "models").glob("*/metrics.json")):
        if directory.is_symlink():
            continue
        metadata = json.loads((directory / "metadata.json").read_text())
        m = json.loads((directory / "metrics.json").read_text())
        corpus_uar = lambda c: (f"{100 * m['per_corpus'][c].get('label_set_uar', m['per_corpus'][c]['balanced_accuracy']):.1f}"
                                if c in m["per_corpus"] else "–")
        per_corpus = " / ".join(corpus_uar(c) for c in ("ravdess", "cremad", "savee", "tess", "ased"))
        new_corpora = " / ".join(corpus_uar(c) for c in ("nemo", "turev", "baved", "emospeech", "banglaser"))
        training = metadata["training"]
        lines.append(" | ".join([
            f"| `{directory.name}`", PROTOCOL_NAMES.get(m["protocol"], m["protocol"]), f"{m['n_test']:,}",
            pct(m["accuracy"]), pct(m["balanced_accuracy"]), pct(m["macro_f1"]), per_corpus, new_corpora,
            f"{m['ece']:.3f}" if "ece" in m else "–",
            f"{pct(m['keras_precision'])} / {pct(m['keras_recall'])}", f"{metadata['param_count']:,}",
            f"{training['epochs_run']} epochs, {training['seconds'] / 60:.0f} min"
            + (f", {training['samples_per_second']:.0f} windows/s" if training.get("samples_per_second") else ""),
        ]) + " |")
    default = (root / "models" / "default").resolve().name
    lines.append("")
    lines.append(f"`models/default` is `{default}`. UAR = unweighted average recall (balanced accuracy). "
                 "Test numbers are measured once on the split's test clips; models were chosen on validation.")
    return "\n".join(lines)


def speed_table(root: Path = ROOT) -> str:
    s = json.loads((root / "bench" / "results" / "speed.json").read_text())
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


def compare_table(root: Path = ROOT) -> str:
    return (root / "bench" / "results" / "compare_models.md").read_text().strip()


def lolo_table(root: Path = ROOT) -> str:
    return (root / "bench" / "results" / "lolo.md").read_text().strip()


BLOCKS = {"models-table": models_table, "speed-table": speed_table, "compare-table": compare_table,
          "lolo-table": lolo_table}


def updated_readme(text: str, root: Path = ROOT) -> str:
    """The README with every generated block (between its `<!-- name -->` markers) remade."""
    for name, make in BLOCKS.items():
        start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
        if start not in text:
            continue
        block = f"{start}\n{make(root)}\n{end}"
        pattern = re.compile(re.escape(start) + r".*?(" + re.escape(end) + r"|$)", re.S)
        text = pattern.sub(lambda _: block, text, count=1) if end in text else text.replace(start, block, 1)
    return text


if __name__ == "__main__":
    readme = ROOT / "README.md"
    readme.write_text(updated_readme(readme.read_text()))
