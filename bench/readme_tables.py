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
        "| model | protocol | test clips | accuracy | UAR | macro-F1 | UAR RAVDESS / CREMA-D / SAVEE / TESS | ECE | Keras precision / recall | params | training |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        "| original notebook (published) | random 80/20 by file, 12,162 clips | 20% (≈2,430) | 69.5% | – | – | – | – | 80.7% / 57.2% | 56,040 | – |",
    ]
    pct = lambda v: f"{100 * v:.1f}%"
    for directory in sorted(p.parent for p in (root / "models").glob("*/metrics.json")):
        if directory.is_symlink():
            continue
        metadata = json.loads((directory / "metadata.json").read_text())
        m = json.loads((directory / "metrics.json").read_text())
        per_corpus = " / ".join(
            f"{100 * m['per_corpus'][c]['balanced_accuracy']:.1f}" if c in m["per_corpus"] else "–"
            for c in ("ravdess", "cremad", "savee", "tess")
        )
        training = metadata["training"]
        lines.append(" | ".join([
            f"| `{directory.name}`", PROTOCOL_NAMES.get(m["protocol"], m["protocol"]), f"{m['n_test']:,}",
            pct(m["accuracy"]), pct(m["balanced_accuracy"]), pct(m["macro_f1"]), per_corpus,
            f"{m['ece']:.3f}" if "ece" in m else "–",
            f"{pct(m['keras_precision'])} / {pct(m['keras_recall'])}", f"{metadata['param_count']:,}",
            f"{training['epochs_run']} epochs, {training['seconds'] / 60:.0f} min, {training['samples_per_second']:.0f} windows/s",
        ]) + " |")
    default = (root / "models" / "default").resolve().name
    lines.append("")
    lines.append(f"`models/default` is `{default}`. UAR = unweighted average recall (balanced accuracy). "
                 "Test numbers are measured once on the split's test clips; models were chosen on validation.")
    return "\n".join(lines)


def speed_table(root: Path = ROOT) -> str:
    s = json.loads((root / "bench" / "results" / "speed.json").read_text())
    latency, batch, wav = s["latency_3s_clip"], s["batch_throughput"], s["batch_throughput_wav"]
    ms = lambda r: f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} ms"
    formats = ", ".join(f"{n:,} {suffix.lstrip('.')}" for suffix, n in sorted(batch["formats"].items()))
    rows = [
        ("one 3 s clip end to end (WAV bytes → decode → features → LiteRT), p50 / p95", ms(latency["ours"]), "≤ 10 ms"),
        ("the original pipeline in the same run (librosa.load 44.1 kHz → MFCC → Keras `predict`), p50 / p95",
         ms(latency["original"]), ""),
        ("speed-up, p50", f"{latency['speed_up_p50']:.1f}×", "≥ 10×"),
        (f"batch, `predict_files` with {batch['workers']} workers over {batch['files']:,} corpus files as stored "
         f"({formats})", f"{batch['clips_per_s']:.0f} clips/s", "≥ 500"),
        (f"the same {wav['files']:,} clips as 16 kHz WAV", f"{wav['clips_per_s']:.0f} clips/s", "≥ 500"),
        (f"1 h of audio (FLAC) → full timeline ({s['long_audio']['windows']:,} windows)",
         f"{s['long_audio']['seconds']:.1f} s", "≤ 30 s"),
        ("fresh process → Upload page's first bars (Streamlit AppTest client)",
         f"{s['cold_start']['seconds_to_first_bars']:.1f} s", "≤ 5 s"),
        ("peak memory of that process (VmHWM)", f"{s['cold_start']['peak_memory_mb']:.0f} MiB", "≤ 500 MB"),
    ]
    lines = ["| what (`python bench/speed.py`) | measured | target |", "|---|---|---|"]
    lines += [f"| {what} | {measured} | {target} |" for what, measured, target in rows]
    return "\n".join(lines)


def compare_table(root: Path = ROOT) -> str:
    return (root / "bench" / "results" / "compare_models.md").read_text().strip()


BLOCKS = {"models-table": models_table, "speed-table": speed_table, "compare-table": compare_table}


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
