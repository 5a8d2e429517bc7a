"""Features from one frozen parameter set saved with every model: MFCC as in the original project,
or log-mel spectrograms.

The original took 2.5 s starting 0.5 s into each clip at 44.1 kHz with hop 512: 216 frames. The
default keeps the 2.5 s window, the 0.5 s offset and the 216 frames at 16 kHz (hop 186, window 46 ms
as 2048/44.1k). Audio longer than one window is covered by overlapping windows; the model averages
over them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..io.levels import active_level_dbfs


FEATURE_KINDS = ("mfcc", "logmel", "whisper")
AMIN, TOP_DB = 1e-10, 80.0  # librosa.power_to_db's floor and dynamic range
WHISPER_TOP_LOG10 = 8.0  # Whisper's log-mel keeps 8 decades (80 dB) below its maximum
LIBROSA_IMPORT_LOCK = Path(tempfile.gettempdir()) / "ser-librosa-numba.lock"  # see import_librosa
MAX_LEVEL_GAIN_DB = 60.0  # never amplify more than this: beyond it a window is noise, not a quiet voice


@dataclass(frozen=True)
class FeatureParams:
    kind: str = "mfcc"
    sample_rate: int = 16000
    n_mfcc: int = 25
    n_mels: int = 128
    n_fft: int = 1024
    win_length: int = 743  # 46 ms, the original's 2048 samples at 44.1 kHz
    hop_length: int = 186  # 2.5 s → 216 frames, as the original's hop 512 at 44.1 kHz
    fmin: float = 0.0
    fmax: float = 8000.0
    window_s: float = 2.5
    offset_s: float = 0.5  # the original skipped the first 0.5 s (mostly silence in acted corpora)
    window_hop_s: float = 1.25
    # Subtract each window's mean per band: removes recording level and channel colour, which differ
    # between corpora and microphones more than between emotions.
    window_mean_removed: bool = False
    # Scale each window so its active speech sits at this level (dBFS) before any feature: a quiet
    # microphone and a loud one then give the same features. None leaves the level as recorded.
    target_level_dbfs: float | None = None

    @property
    def window_samples(self) -> int:
        return round(self.window_s * self.sample_rate)

    @property
    def n_frames(self) -> int:
        # Whisper drops the STFT's last frame, so 3 s at hop 160 is 300 frames (even, as its encoder needs).
        return self.window_samples // self.hop_length + (self.kind != "whisper")

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.n_mfcc if self.kind == "mfcc" else self.n_mels, self.n_frames)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "FeatureParams":
        return cls(**values)

    def digest(self) -> str:
        return hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def window_starts(n_samples: int, params: FeatureParams) -> np.ndarray:
    """Start sample of each analysis window.

    One window if the audio fits in it (zero-padded at the end); otherwise windows every
    `window_hop_s` from the offset (or as late as fits), plus one aligned to the end when the last
    regular window would leave more than half a hop unheard. Nothing is silently cut off.
    """
    win = params.window_samples
    hop = round(params.window_hop_s * params.sample_rate)
    if n_samples <= win:
        return np.zeros(1, dtype=np.int64)
    first = min(round(params.offset_s * params.sample_rate), n_samples - win)
    starts = list(range(first, n_samples - win + 1, hop))
    if n_samples - (starts[-1] + win) > hop // 2:
        starts.append(n_samples - win)
    return np.asarray(starts, dtype=np.int64)


def frame_windows(samples: np.ndarray, params: FeatureParams, starts: np.ndarray) -> np.ndarray:
    """(n_windows, window_samples) float32, zero-padded where the audio is shorter than a window."""
    win = params.window_samples
    out = np.zeros((len(starts), win), dtype=np.float32)
    for row, start in zip(out, starts):
        piece = samples[start : start + win]
        row[: len(piece)] = piece
    return out


@contextlib.contextmanager
def _machine_wide_lock(path: Path):
    """An exclusive flock on `path`, held by one process of this machine at a time."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): unguarded
        yield
        return
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@functools.cache
def import_librosa(module: str):
    """librosa, once `module` (the part a caller needs) and librosa.util.utils are imported with a
    machine-wide lock held.

    librosa compiles its numba gufuncs on import and caches each as two files, a kernel and its
    wrapper. Two processes compiling them at once (spawned workers on a fresh install) can leave one's
    kernel beside the other's wrapper, and every process that loads that pair later crashes with a
    segmentation fault when it calls the function (numba issue 10128). Under the lock the first process
    compiles and caches whole pairs, and the others wait and then load them. librosa.util.utils holds
    the gufuncs that librosa's own functions (yin's localmin) import lazily, on first call, so it is
    always imported here.
    """
    with _machine_wide_lock(LIBROSA_IMPORT_LOCK):
        importlib.import_module("librosa.util.utils")
        importlib.import_module(module)
    return importlib.import_module("librosa")


# The window, the filterbank and the DCT are librosa's (0.11), computed here in numpy: importing librosa
# (numba and scipy under it) took a second of every cold start and 400 MB of every install.
# tests/test_package.py checks them against librosa's own.
@functools.lru_cache(maxsize=8)
def _fft_window(n_fft: int, win_length: int) -> np.ndarray:
    """librosa.stft's analysis window: periodic Hann of win_length (the symmetric window one sample
    longer, its last sample dropped), zero-padded to n_fft, centred."""
    window = np.zeros(n_fft)
    start = (n_fft - win_length) // 2
    window[start : start + win_length] = np.hanning(win_length + 1)[:-1]
    return window.astype(np.float32)


_SLANEY_HZ_PER_MEL, _SLANEY_LOG_HZ = 200.0 / 3, 1000.0  # linear below 1 kHz, logarithmic above
_SLANEY_LOG_MEL, _SLANEY_LOG_STEP = _SLANEY_LOG_HZ / _SLANEY_HZ_PER_MEL, np.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """librosa.hz_to_mel (Slaney's scale, htk=False)."""
    hz = np.asarray(hz, dtype=np.float64)
    above = _SLANEY_LOG_MEL + np.log(np.maximum(hz, _SLANEY_LOG_HZ) / _SLANEY_LOG_HZ) / _SLANEY_LOG_STEP
    return np.where(hz >= _SLANEY_LOG_HZ, above, hz / _SLANEY_HZ_PER_MEL)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """librosa.mel_to_hz (Slaney's scale, htk=False)."""
    mel = np.asarray(mel, dtype=np.float64)
    above = _SLANEY_LOG_HZ * np.exp(_SLANEY_LOG_STEP * (mel - _SLANEY_LOG_MEL))
    return np.where(mel >= _SLANEY_LOG_MEL, above, _SLANEY_HZ_PER_MEL * mel)


@functools.lru_cache(maxsize=8)
def mel_filterbank(params: FeatureParams) -> np.ndarray:
    """librosa.filters.mel (Slaney-normalised triangles), built once per parameter set: building the
    filterbank costs more than applying it."""
    frequencies = np.fft.rfftfreq(n=params.n_fft, d=1.0 / params.sample_rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(params.fmin), _hz_to_mel(params.fmax), params.n_mels + 2))
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, frequencies)
    weights = np.zeros((params.n_mels, len(frequencies)), dtype=np.float32)
    for band in range(params.n_mels):
        rising, falling = -ramps[band] / widths[band], ramps[band + 2] / widths[band + 1]
        weights[band] = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2 : params.n_mels + 2] - edges[: params.n_mels]))[:, None]
    return weights


@functools.lru_cache(maxsize=8)
def _dct_basis(n_mfcc: int, n_mels: int) -> np.ndarray:
    """The orthonormal DCT-II rows librosa's MFCC applies over mel bands (scipy.fft.dct(type=2,
    norm="ortho")), as one matrix."""
    k, n = np.arange(n_mfcc)[:, None], np.arange(n_mels)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)
    basis[0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


def power_spectrogram(windows: np.ndarray, params: FeatureParams) -> np.ndarray:
    """(n_windows, samples) → (n_windows, 1 + n_fft // 2, n_frames): librosa.stft(center=True) magnitude
    squared, as one batched real FFT over strided frames (librosa loops over blocks, twice as slow)."""
    pad = params.n_fft // 2
    padded = np.pad(np.asarray(windows, dtype=np.float32), ((0, 0), (pad, pad)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, params.n_fft, axis=-1)[:, :: params.hop_length]
    spectrum = np.fft.rfft(frames * _fft_window(params.n_fft, params.win_length), axis=-1)
    return (spectrum.real**2 + spectrum.imag**2).transpose(0, 2, 1)


def normalise_level(windows: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Each window scaled so that its active speech is at `params.target_level_dbfs` (gain capped)."""
    gain_db = np.minimum(params.target_level_dbfs - active_level_dbfs(windows, params.sample_rate), MAX_LEVEL_GAIN_DB)
    return (windows * (10.0 ** (gain_db / 20.0))[:, None]).astype(np.float32)


def compute(windows: np.ndarray, params: FeatureParams) -> np.ndarray:
    """(n_windows, window_samples) → (n_windows, *params.input_shape) float32.

    librosa's melspectrogram → power_to_db → mfcc, reorganised for speed (one batched FFT, cached
    filterbanks, one BLAS product per step), with the 80 dB floor taken per window so that a
    window's features never depend on which other windows share its batch. tests/test_features.py
    holds it to librosa's own functions. `kind="whisper"` is Whisper's own log-mel (log10, 8 decades
    below the window's maximum, scaled as (x + 4) / 4), the input its encoder was trained on.
    """
    if params.target_level_dbfs is not None:
        windows = normalise_level(np.asarray(windows, dtype=np.float32), params)
    if params.kind == "whisper":
        log_mel = np.log10(np.maximum(mel_filterbank(params) @ power_spectrogram(windows, params)[..., :-1], AMIN))
        log_mel = np.maximum(log_mel, log_mel.max(axis=(-2, -1), keepdims=True) - WHISPER_TOP_LOG10)
        return ((log_mel + 4.0) / 4.0).astype(np.float32)
    log_mel = 10.0 * np.log10(np.maximum(mel_filterbank(params) @ power_spectrogram(windows, params), AMIN))
    log_mel = np.maximum(log_mel, log_mel.max(axis=(-2, -1), keepdims=True) - TOP_DB)
    if params.kind == "mfcc":
        features = _dct_basis(params.n_mfcc, params.n_mels) @ log_mel
    elif params.kind == "logmel":
        features = log_mel
    else:
        raise ValueError(f"unknown feature kind {params.kind!r}; one of {FEATURE_KINDS}")
    if params.window_mean_removed:
        features = features - features.mean(axis=-1, keepdims=True)
    return features.astype(np.float32)


EXTRACT_CHUNK_WINDOWS = 64  # windows per compute() call: spectrograms for 2 h at once would need ~10 GB


def extract_many(clips: list[np.ndarray], params: FeatureParams) -> list[tuple[np.ndarray, np.ndarray]]:
    """Several clips' windows through one batched computation (in chunks that bound memory):
    per clip, (window start times in s, features per window)."""
    starts = [window_starts(len(samples), params) for samples in clips]
    pieces = [(samples, start) for samples, clip_starts in zip(clips, starts) for start in clip_starts]
    features = np.empty((len(pieces), *params.input_shape), dtype=np.float32)
    for i in range(0, len(pieces), EXTRACT_CHUNK_WINDOWS):
        windows = np.concatenate([frame_windows(samples, params, np.array([start]))
                                  for samples, start in pieces[i : i + EXTRACT_CHUNK_WINDOWS]])
        features[i : i + len(windows)] = compute(windows, params)
    bounds = np.cumsum([0] + [len(s) for s in starts])
    return [(s / params.sample_rate, features[a:b]) for s, a, b in zip(starts, bounds[:-1], bounds[1:])]


def extract(samples: np.ndarray, params: FeatureParams) -> tuple[np.ndarray, np.ndarray]:
    """Mono samples at `params.sample_rate` → (window start times in s, features per window)."""
    return extract_many([samples], params)[0]


@dataclass(frozen=True)
class Normalizer:
    """Per-coefficient standardisation, fitted on the training split only and saved with the model."""

    mean: np.ndarray  # (n_bands,)
    std: np.ndarray  # (n_bands,)

    @classmethod
    def fit(cls, features: np.ndarray) -> "Normalizer":
        """features: (n, n_bands, n_frames) from training windows."""
        return cls(features.mean(axis=(0, 2)), features.std(axis=(0, 2)) + 1e-6)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean[:, None]) / self.std[:, None]).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, values: dict) -> "Normalizer":
        return cls(np.asarray(values["mean"], np.float32), np.asarray(values["std"], np.float32))


def default_cache_dir() -> Path:
    return Path(os.environ.get("SER_CACHE_DIR", Path.home() / ".cache" / "ser" / "features"))


FEATURES_VERSION = 2  # of compute(): bump when what it returns changes, so that caches are rebuilt


class FeatureCache:
    """Feature windows on disk, keyed by the file (its name and bytes), the feature parameters and
    FEATURES_VERSION."""

    def __init__(self, params: FeatureParams, root: Path | None = None):
        self.params = params
        self.dir = Path(root or default_cache_dir()) / f"{params.digest()}-v{FEATURES_VERSION}"

    def _key(self, path: Path) -> Path:
        # Name and bytes, not location or mtime: a corpus copied, moved or unpacked again keeps its
        # cache (an hour of encoder time for five corpora); an edited file gets a new entry, and the
        # name keeps apart identical files whose augmentation is seeded by their clip id.
        from ..io.audio import AudioFileNotFoundError

        ident = hashlib.sha1(path.name.encode() + b"\0")
        try:
            ident.update(path.read_bytes())
        except (FileNotFoundError, IsADirectoryError):  # said as `ser predict` says it, not as an OSError
            raise AudioFileNotFoundError(str(path)) from None
        return self.dir / f"{ident.hexdigest()}.npy"

    def get(self, path: Path) -> np.ndarray | None:
        key = self._key(path)
        return np.load(key) if key.exists() else None

    def put(self, path: Path, features: np.ndarray) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        key = self._key(path)
        tmp = key.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, features)
        os.replace(tmp, key)  # atomic: parallel workers never see half a file
