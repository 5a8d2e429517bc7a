"""Which model directory a name means: one rule for the CLI, the app, the API and `load_model`.

`--model NAME|PATH` (the API's `model=NAME`) first; else the `SER_MODEL` environment variable (a name
or a path); else the shipped default. A PATH is any model directory; a NAME is a shipped model
(`emo-cnn` means the speaker-protocol `emo-cnn-speaker`; `default` is the default's alias). The shipped
models are package data: `ser_core/models/` in an installed wheel, `models/` beside `ser_core/` in a
checkout. Nothing depends on the current directory except a relative PATH.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelError

DEFAULT_NAME = "default"
METADATA_FILE = "metadata.json"
_PACKAGE = Path(__file__).resolve().parents[1]  # ser_core/
# the wheel's package data first; a checkout (and an editable install) keeps them beside the package
MODELS_ROOT = next((root for root in (_PACKAGE / "models", _PACKAGE.parent / "models") if root.is_dir()),
                   _PACKAGE / "models")


def follow_pointer(path: Path) -> Path:
    """`models/default` is a small file holding the default model's directory name (one copy of the
    model in a wheel, where a symlink would be packed as a second copy); a symlink is followed too."""
    if path.is_file() and path.stat().st_size < 256:
        return (path.parent / path.read_text().strip()).resolve()
    return path.resolve()


def shipped_models() -> dict[str, Path]:
    """Name → directory of every shipped model (the `default` alias left out)."""
    if not MODELS_ROOT.is_dir():
        return {}
    return {p.name: p.resolve() for p in sorted(MODELS_ROOT.iterdir())
            if p.name != DEFAULT_NAME and (p / METADATA_FILE).is_file()}


def resolve_model(name: str | os.PathLike | None = None) -> Path:
    """The model directory `name` means (None: SER_MODEL, else the shipped default)."""
    name = str(name) if name is not None else os.environ.get("SER_MODEL") or DEFAULT_NAME
    candidates = [Path(name)]
    if os.sep not in name and "/" not in name:  # a bare name may also be a shipped model's
        candidates += [MODELS_ROOT / name, MODELS_ROOT / f"{name}-speaker"]
    for candidate in candidates:
        directory = follow_pointer(candidate) if candidate.name == DEFAULT_NAME else candidate
        if (directory / METADATA_FILE).is_file():
            return directory
    names = sorted([DEFAULT_NAME, *shipped_models()]) if shipped_models() else ["none shipped"]
    raise ModelError(f"No model {name!r}: give a model directory or one of {', '.join(names)}")
