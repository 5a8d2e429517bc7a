"""What every benchmark records about how its numbers were made, under one `provenance` key of its
results file: the code (git commit, and whether files that change numbers were modified), the
model (its real name, `models/default` resolved, and the sha256 of its weights), the machine (CPU
model, cores) and how busy it was when the run started (load average), so that a number can be
traced to what produced it and read against the load it was measured under.

    from provenance import provenance
    results["provenance"] = provenance(model_dir)        # at the start of the run
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A modification here can change a measured number; elsewhere (docs, tests) it cannot.
NUMBER_PATHS = ("ser_core", "bench", "models", "requirements.txt")


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (`platform.processor()` where it does not)."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def sha256(path: Path) -> str:
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def model_provenance(model: str | Path | None) -> dict:
    """The model a benchmark ran (a directory or a name, by the rule every entry point uses): its
    directory's real name (`models/default` followed, since what it points at changes) and the
    sha256 of its weights as stored (the Keras file, as `weights_sha256` in its metadata, and the
    LiteRT file that is served)."""
    from ser_core.serving.shipped import resolve_model

    directory = resolve_model(model).resolve()
    return {"name": directory.name,
            "weights_sha256": sha256(directory / "model.keras"),
            "litert_sha256": sha256(directory / "model.tflite")}


def provenance(*models: str | Path | None) -> dict:
    """Commit, dirty flag, CPU, cores and load average now, and each model's name and weights."""
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", *NUMBER_PATHS)
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(dirty),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "models": [model_provenance(m) for m in models],
    }
