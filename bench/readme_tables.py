"""Write the README's model table from models/*/metadata.json and metrics.json, so the numbers in
the README are the measured ones. `python bench/readme_tables.py` rewrites the README in place;
tests/test_readme.py checks it is up to date."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- models-table -->", "<!-- /models-table -->"
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


def updated_readme(text: str, root: Path = ROOT) -> str:
    block = f"{START}\n{models_table(root)}\n{END}"
    pattern = re.compile(re.escape(START) + r".*?(" + re.escape(END) + r"|$)", re.S)
    if END in text:
        return pattern.sub(lambda _: block, text, count=1)
    return text.replace(START, block, 1)


if __name__ == "__main__":
    readme = ROOT / "README.md"
    readme.write_text(updated_readme(readme.read_text()))
