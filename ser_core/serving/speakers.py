"""Who spoke when: a speaker embedding per utterance, and utterances grouped by voice.

The embedding is Resemblyzer's GE2E speaker encoder (`resemblyzer` 0.1.4 on PyPI, Apache-2.0): a
3-layer LSTM (256 units) over 40-band mel power spectra (25 ms windows, 10 ms hop), trained for speaker
verification on LibriSpeech, VoxCeleb 1 and 2, whose last state goes through a linear layer and a
ReLU to a unit-length 256-number voice print. It is the one speaker-verification network found on
PyPI that ships its weights inside the package (17 MB), with nothing fetched at run time. The
package's own code imports torch, which ser does not install: ser checks its `pretrained.pt` against
a pinned sha256, reads the tensors from PyTorch's legacy file format with a restricted unpickler
(only an ordered dict and tensor rebuilding are allowed; nothing else in the file can run) and runs
the LSTM in numpy.

A piece of speech's print is read from one partial: its first `PARTIAL_FRAMES` (1.2 s), or the whole
piece when shorter, read to its own last frame: the LSTM's cost grows with the frames it reads,
and on the validation conversations of bench/segments.py one 1.2 s look told voices apart as well as
up to four 1.6 s looks (attribution 88.8% against 87.6%, each at its best cut, in a one-off study
beside the benchmark) with 37% fewer LSTM steps; one 1.0 s look fell to 84.1%. Pieces are then
grouped by agglomerative clustering (average linkage on cosine distance) cut at
`CLUSTER_DISTANCE`; a group heard for less than `MIN_VOICE_S` in all is not taken for a voice of its
own (a shout, a laugh, a sentence read differently) and its pieces join the nearest other group,
unless the recording is short and the group is plainly a second voice (`is_voice`); then every piece
goes to the nearest group's mean print until none moves. Or the user says how many
speakers there are: the same groups, the closest merged (or the tree cut further) to that number.
Speakers are named "S1", "S2", … in order of first appearance.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import io
import pickle
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ModelError
from ..frontend.features import FeatureParams, mel_filterbank, power_spectrogram

SAMPLE_RATE = 16000
N_FFT, HOP, N_MELS = 400, 160, 40  # 25 ms windows every 10 ms, 40 mel bands (the network's training)
PARTIAL_FRAMES = 120  # 1.2 s (the network was trained on 1.6 s; see the module docstring)
PARTIAL_BATCH = 256  # partials through the LSTM at once: bounds memory (its input gates: 256 × 120 × 1,024 floats)
HIDDEN, LAYERS = 256, 3
TARGET_DBFS = -30.0  # quieter utterances are raised to this level first, as Resemblyzer does
# Chosen on validation speakers' synthetic conversations (bench/segments.py, speaker grid).
CLUSTER_DISTANCE = 0.35
MIN_VOICE_S = 10.0
# A short recording's voices may each hold less than MIN_VOICE_S: a group of at least MIN_VOICE_PIECES
# pieces, with MIN_VOICE_SHARE of the recording's speech, lying DISTINCT_VOICE_DISTANCE or more (mean
# cosine distance) from every other group is a voice however brief. Without it two people trading
# four sentences each (40 s) were one speaker. Chosen on validation conversations of 3, 5 and 10 turns
# per speaker (bench/segments.py): the right number of speakers 33.3 / 42.2 / 95.0% -> 73.3 / 77.8 /
# 85.0%; the cost, one acted voice across emotions now and then taken for two.
MIN_VOICE_SHARE = 0.2
MIN_VOICE_PIECES = 2
DISTINCT_VOICE_DISTANCE = 0.4
REFINE_ROUNDS = 10  # pieces moved to the nearest group's mean: settles in two or three rounds
# A speech region holding more than one voice (turns that follow within the detector's pause) is cut
# where the voice changes (`voice_changes`): between the pieces cut at turn pauses (`VadParams.at_turns`),
# where the mean prints of the `VOICE_CHANGE_WINDOW_S` of speech either side lie `VOICE_CHANGE_DISTANCE`
# (cosine) or more apart, each side with `VOICE_CHANGE_MIN_SIDE_S` of speech at least. Chosen on
# validation by bench/turn_taking.py: the best mean of the per-turn UAR of conversations whose turns
# follow 0.05-0.3 s apart and the per-segment UAR of a long recording of many voices, among the settings
# that keep most of the cut's attribution gain and cost no other conversations or sentences. Prints of
# half a second either side (session 33's 1.0 s window, 0.5 s sides) took an emotion's change inside
# one actor's sentence for a new voice and split 39 of 191 sentences there (74.6 per segment against
# 82.9 uncut); 0.75 s sides read from up to 2 s split 20 (80.1) and keep the turns (attribution 77.6
# against 77.8). Cutting at every pause and leaving the pieces to the clustering split more (73.0 per clip).
VOICE_CHANGE_DISTANCE = 0.3
VOICE_CHANGE_WINDOW_S = 2.0
VOICE_CHANGE_MIN_SIDE_S = 0.75
# Where the next voice starts with no pause at all, or over the last one's end (overlapping talk), the
# detector does not dip and no boundary is there to judge. So inside a part longer than twice
# `SLIDE_WINDOW_S` that the dips left whole, the voice is compared every `SLIDE_STEP_S`: a print of the
# `SLIDE_WINDOW_S` of audio before each moment and one of the same after, each read from one stretch
# (its first `PARTIAL_FRAMES`, as every print; a mean of short pieces' prints found too few true
# changes and too many false ones); a cut where they
# lie `SLIDE_DISTANCE` or more apart, the farthest first, no two within a window of each other. Chosen
# by bench/turn_taking.py's second stage on validation conversations with overlapping and quick turns,
# without costing the other conversations, the sentences or the long recording: overlapping per-turn
# UAR 63.0 against 57.5, quick 74.0 against 68.7; the long recording, whose sentences are shorter than
# two windows, as it was. The step is set by cost: in continuous talk every part is long, and read every
# 0.25 s (session 34) the speaker step cost 19.7 s per hour of validation monologues (target 15); every
# 0.5 s, 14.5 s, its score on the same validation conversations 72.2 against 72.4 (0.75 s: 13.9 s and
# 71.7, beyond the half point allowed; session 35, rule C1, one timing each: timings on two cores move by a
# fifth between runs; bench/segments.py times both steps on test monologues in one run).
SLIDE_WINDOW_S = 1.5
SLIDE_DISTANCE = 0.35
SLIDE_STEP_S = 0.5

RESEMBLYZER_VERSION = "0.1.4"  # as pinned in requirements-nodeps.txt
# No extra can install it: it declares torch, which pip would pull in (hundreds of MB, never imported).
INSTALL_COMMAND = f"pip install --no-deps resemblyzer=={RESEMBLYZER_VERSION}"
NOT_INSTALLED = f'Voices were not told apart (speaker ""): the speaker model is not installed ({INSTALL_COMMAND}).'
WEIGHTS_NAME = "pretrained.pt"
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
TORCH_LEGACY_PROTOCOL = 1001
STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "LongStorage": np.int64,
                  "IntStorage": np.int32, "HalfStorage": np.float16}


def encoder_installed() -> bool:
    return importlib.util.find_spec("resemblyzer") is not None


def weights_path() -> Path:
    """pretrained.pt inside the installed resemblyzer package, found without importing it (its
    __init__ imports torch)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"Telling speakers apart needs the speaker model: {INSTALL_COMMAND}")
    return Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_NAME


class _Storage:
    def __init__(self, dtype, size: int):
        self.dtype, self.size, self.array = dtype, size, None


@dataclass
class _Tensor:
    """A tensor whose storage is read after the pickle that names it."""

    storage: _Storage
    offset: int
    shape: tuple
    stride: tuple

    def array(self) -> np.ndarray:
        item = self.storage.array.itemsize
        return np.lib.stride_tricks.as_strided(self.storage.array[self.offset :], self.shape,
                                               tuple(s * item for s in self.stride)).copy()


def _rebuild_tensor(storage, offset, shape, stride, *_):
    return _Tensor(storage, offset, tuple(shape), tuple(stride))


class _TorchUnpickler(pickle.Unpickler):
    """Only what a state dict needs: an ordered dict, tensors and their storages. Anything else in
    the file (a class, a function) is refused, so reading it cannot run code."""

    def __init__(self, file):
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights file")

    def persistent_load(self, saved_id):
        kind, dtype, key, _location, size, _view = saved_id
        if kind != "storage":
            raise pickle.UnpicklingError(f"{kind} records are not allowed in a weights file")
        return self.storages.setdefault(key, _Storage(dtype, size))


class _NothingUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights file")


def read_torch_legacy(data: bytes) -> dict[str, np.ndarray]:
    """A PyTorch state dict saved in the legacy (pre-1.6, not zip) format → its tensors by name:
    four pickles (magic number, format version, system info, the object), the storage keys, then
    each storage's element count (int64) and raw little-endian data."""
    f = io.BytesIO(data)
    header = [_NothingUnpickler(f).load() for _ in range(3)]
    if header[0] != TORCH_LEGACY_MAGIC or header[1] != TORCH_LEGACY_PROTOCOL or not header[2].get("little_endian"):
        raise ModelError("The speaker model is not a little-endian PyTorch legacy file")
    unpickler = _TorchUnpickler(f)
    checkpoint = unpickler.load()
    for key in _NothingUnpickler(f).load():
        storage = unpickler.storages[key]
        count = int.from_bytes(f.read(8), "little")
        storage.array = np.frombuffer(f.read(count * np.dtype(storage.dtype).itemsize), storage.dtype)
    state = checkpoint["model_state"]
    return {name: tensor.array() for name, tensor in state.items() if isinstance(tensor, _Tensor)}


class SpeakerEncoder:
    """Resemblyzer's voice encoder in numpy. Thread-safe: weights are read-only."""

    def __init__(self, path: Path | None = None, expected_sha256: str = WEIGHTS_SHA256):
        from ..frontend.vad import check_sha256

        w = read_torch_legacy(check_sha256(path or weights_path(), expected_sha256, "speaker model",
                                           f"resemblyzer=={RESEMBLYZER_VERSION}"))
        # Per layer: input and recurrent weights transposed for row-vector products, biases summed;
        # PyTorch's gate order (input, forget, cell, output).
        self._layers = [(np.ascontiguousarray(w[f"lstm.weight_ih_l{k}"].T),
                         np.ascontiguousarray(w[f"lstm.weight_hh_l{k}"].T),
                         w[f"lstm.bias_ih_l{k}"] + w[f"lstm.bias_hh_l{k}"]) for k in range(LAYERS)]
        self._linear = np.ascontiguousarray(w["linear.weight"].T)
        self._linear_bias = w["linear.bias"]
        # librosa.feature.melspectrogram's defaults for these sizes: periodic Hann over the whole frame,
        # Slaney mel bands from 0 Hz to Nyquist
        self._params = FeatureParams(sample_rate=SAMPLE_RATE, n_fft=N_FFT, win_length=N_FFT, hop_length=HOP,
                                     n_mels=N_MELS, fmin=0.0, fmax=SAMPLE_RATE / 2)
        self._mel = mel_filterbank(self._params).T

    def mel_frames(self, samples: np.ndarray) -> np.ndarray:
        """Mel power spectrogram (frames, 40), as librosa.feature.melspectrogram computes it (centred
        frames, zero padding), after Resemblyzer's level normalisation."""
        samples = np.asarray(samples, np.float32)
        rms = np.sqrt(np.mean(samples.astype(np.float64) ** 2)) if len(samples) else 0.0
        if 0 < rms < 10 ** (TARGET_DBFS / 20):
            samples = samples * np.float32(10 ** (TARGET_DBFS / 20) / rms)
        return power_spectrogram(samples[None], self._params)[0].T @ self._mel

    def _run(self, mels: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(n, frames, 40) partials, each read to its own length → (n, 256) unit prints."""
        n, steps, _ = mels.shape
        x = mels
        last = np.zeros((n, HIDDEN), np.float32)
        for depth, (input_weights, recurrent_weights, bias) in enumerate(self._layers):
            gates_in = (x.reshape(n * steps, -1) @ input_weights + bias).reshape(n, steps, 4 * HIDDEN)
            h = np.zeros((n, HIDDEN), np.float32)
            c = np.zeros((n, HIDDEN), np.float32)
            out = np.empty((n, steps, HIDDEN), np.float32)
            for t in range(steps):
                z = gates_in[:, t] + h @ recurrent_weights
                i, f, g, o = (z[:, k * HIDDEN : (k + 1) * HIDDEN] for k in range(4))
                c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
                h = _sigmoid(o) * np.tanh(c)
                out[:, t] = h
            x = out
            if depth == LAYERS - 1:
                last = out[np.arange(n), lengths - 1]
        prints = np.maximum(last @ self._linear + self._linear_bias, 0.0)
        return prints / np.maximum(np.linalg.norm(prints, axis=1, keepdims=True), 1e-12)

    def embed(self, pieces: Sequence[np.ndarray]) -> np.ndarray:
        """16 kHz pieces of speech → (n, 256) unit-length voice prints, each from its first
        `PARTIAL_FRAMES`, all in one batch, each batch read only as far as its longest partial. Inside
        `prints_remembered`, a partial read before in the block is not read again."""
        partials = [np.ascontiguousarray(samples[: PARTIAL_FRAMES * HOP], np.float32) for samples in pieces]
        memory = getattr(_remembered, "prints", None)
        if memory is None:
            return self._embed_partials(partials)
        keys = [(id(self), len(x), hashlib.sha1(x.tobytes()).digest()) for x in partials]
        new = {k: x for k, x in zip(keys, partials) if k not in memory}
        memory.update(zip(new, self._embed_partials(list(new.values()))))
        return np.stack([memory[k] for k in keys]) if keys else np.zeros((0, HIDDEN), np.float32)

    def _embed_partials(self, partials: Sequence[np.ndarray]) -> np.ndarray:
        """`embed`'s work: partials (float32, at most `PARTIAL_FRAMES` long) → their unit prints."""
        if not len(partials):
            return np.zeros((0, HIDDEN), np.float32)
        mels = [self.mel_frames(samples)[:PARTIAL_FRAMES] for samples in partials]
        lengths = np.array([max(1, len(m)) for m in mels])
        order = np.argsort(lengths)  # similar lengths share a batch
        prints = np.zeros((len(mels), HIDDEN), np.float32)
        for i in range(0, len(order), PARTIAL_BATCH):
            batch = order[i : i + PARTIAL_BATCH]
            steps = int(lengths[batch].max())
            x = np.zeros((len(batch), steps, N_MELS), np.float32)
            for row, index in enumerate(batch):
                x[row, : len(mels[index])] = mels[index]
            prints[batch] = self._run(x, lengths[batch])
        return prints


_remembered = threading.local()


@contextlib.contextmanager
def prints_remembered():
    """Within this block, on this thread, each partial's print is read once (`SpeakerEncoder.embed`):
    a recording's pieces are printed to find where its voice changes, then its utterances to name
    their voices, and an utterance mostly starts where a piece or a window did. A print reads only its
    stretch's first `PARTIAL_FRAMES`, so those are the same print (on bench/segments.py's continuous
    talk, about half the utterances'). Prints stay in memory for the block only; nested blocks share
    the outer one's."""
    outer = getattr(_remembered, "prints", None)
    if outer is None:
        _remembered.prints = {}
    try:
        yield
    finally:
        if outer is None:
            _remembered.prints = None


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 + 0.5 * np.tanh(0.5 * x)


@functools.lru_cache(maxsize=1)
def shared_encoder() -> SpeakerEncoder:
    """One encoder per process, loaded on first use (read-only: any thread may use it)."""
    return SpeakerEncoder()


def cluster(prints: np.ndarray, n_speakers: int | None = None, distance: float | None = None,
            durations: Sequence[float] | None = None, min_voice_s: float | None = None) -> list[str]:
    """Unit voice prints (of pieces lasting `durations` seconds) → one speaker name per piece, "S1",
    "S2", … by first appearance: average-linkage clusters cut at cosine `distance`
    (`CLUSTER_DISTANCE`), those not heard long enough to be a voice (`is_voice`, `min_voice_s`:
    `MIN_VOICE_S`) folded into the nearest other, then refined. With `n_speakers`, the same clusters
    (cut further when fewer), folded while more than `n_speakers` remain, the two closest merged until
    `n_speakers` do: cutting the tree at `n_speakers` groups instead gave a shout or a laugh a group of
    its own and merged two voices (bench/segments.py, attribution with the number given)."""
    distance = CLUSTER_DISTANCE if distance is None else distance
    min_voice_s = MIN_VOICE_S if min_voice_s is None else min_voice_s
    if len(prints) == 0:
        return []
    if len(prints) == 1 or n_speakers == 1:
        return ["S1"] * len(prints)
    seconds = np.ones(len(prints)) if durations is None else np.asarray(durations, np.float64)
    if n_speakers:
        n_speakers = min(n_speakers, len(prints))
        groups = average_linkage(prints, distance=distance)
        if len(np.unique(groups)) < n_speakers:
            groups = average_linkage(prints, n_clusters=n_speakers)
        groups = _merge_closest(prints, _fold_short_voices(prints, groups, seconds, min_voice_s, n_speakers),
                                n_speakers)
    else:
        groups = _fold_short_voices(prints, average_linkage(prints, distance=distance), seconds, min_voice_s)
    groups = _refine(prints, groups)
    names: dict[int, str] = {}
    return [names.setdefault(g, f"S{len(names) + 1}") for g in groups]


def average_linkage(prints: np.ndarray, distance: float | None = None, n_clusters: int | None = None) -> np.ndarray:
    """Agglomerative clustering of `prints` by cosine distance, average linkage (UPGMA): the two
    closest groups merge while their distance is at most `distance`, or until `n_clusters` remain.
    One group id per print. scipy's linkage + fcluster give the same partitions (tests/test_speakers.py);
    this numpy loop keeps scipy out of serving, and at a few hundred utterances an hour it costs less
    than a second (each merge updates one row of the distance matrix: Lance-Williams)."""
    unit = np.asarray(prints, np.float64)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    n = len(unit)
    d = np.clip(1.0 - unit @ unit.T, 0.0, None)
    np.fill_diagonal(d, np.inf)
    sizes = np.ones(n)
    groups = np.arange(n)
    for _ in range(n - (n_clusters or 1)):
        i, j = divmod(int(np.argmin(d)), n)
        if n_clusters is None and d[i, j] > distance:
            break
        merged = (sizes[i] * d[i] + sizes[j] * d[j]) / (sizes[i] + sizes[j])
        d[i], d[:, i] = merged, merged
        d[i, i] = np.inf
        d[j], d[:, j] = np.inf, np.inf  # j is gone
        sizes[i] += sizes[j]
        groups[groups == j] = i
    return groups


def _centroids(prints: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.unique(groups)
    means = np.stack([prints[groups == g].mean(axis=0) for g in ids])
    return ids, means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)


def is_voice(prints: np.ndarray, groups: np.ndarray, seconds: np.ndarray, group: int, min_voice_s: float) -> bool:
    """Whether `group` is heard long enough to be a voice of its own: `min_voice_s` of speech, or, in a
    short recording, `MIN_VOICE_PIECES` pieces holding `MIN_VOICE_SHARE` of all the speech and lying
    `DISTINCT_VOICE_DISTANCE` (mean cosine distance) or more from every other group."""
    members = groups == group
    heard = seconds[members].sum()
    if heard >= min_voice_s:
        return True
    if members.sum() < MIN_VOICE_PIECES or heard < MIN_VOICE_SHARE * seconds.sum():
        return False
    return all(np.mean(1.0 - prints[members] @ prints[groups == other].T) >= DISTINCT_VOICE_DISTANCE
               for other in np.unique(groups) if other != group)


def _fold_short_voices(prints: np.ndarray, groups: np.ndarray, seconds: np.ndarray, min_voice_s: float,
                       at_least: int = 1) -> np.ndarray:
    """The group with the least speech that is not a voice (`is_voice`), while one is left and more
    than `at_least` groups remain: each of its pieces joins the nearest other group (by mean print)."""
    groups = groups.copy()
    while len(np.unique(groups)) > at_least:
        ids = np.unique(groups)
        brief = [g for g in ids if not is_voice(prints, groups, seconds, g, min_voice_s)]
        if not brief:
            break
        short = min(brief, key=lambda g: seconds[groups == g].sum())
        others, means = _centroids(prints, groups)
        keep = others != short
        members = groups == short
        groups[members] = others[keep][np.argmax(prints[members] @ means[keep].T, axis=1)]
    return groups


def _merge_closest(prints: np.ndarray, groups: np.ndarray, count: int) -> np.ndarray:
    """The two groups whose mean prints are closest merged, until `count` remain."""
    groups = groups.copy()
    while len(np.unique(groups)) > count:
        ids, means = _centroids(prints, groups)
        similarity = means @ means.T
        np.fill_diagonal(similarity, -np.inf)
        keep, gone = divmod(int(np.argmax(similarity)), len(ids))
        groups[groups == ids[gone]] = ids[keep]
    return groups


def _refine(prints: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each piece to the group whose mean print is nearest, until none moves: average linkage can
    leave a piece with the group it first joined."""
    for _ in range(REFINE_ROUNDS):
        ids, means = _centroids(prints, groups)
        moved = ids[np.argmax(prints @ means.T, axis=1)]
        if np.array_equal(moved, groups):
            break
        groups = moved
    return groups


def voice_changes(prints: np.ndarray, seconds: np.ndarray, distance: float | None = None,
                  window_s: float | None = None) -> list[int]:
    """Where a run of pieces (their unit prints, their lengths in s) changes voice: the indices of the
    pieces that start a new voice. At each boundary, the duration-weighted mean prints of the speech
    within `window_s` (`VOICE_CHANGE_WINDOW_S`) before and after it, each side at least
    `VOICE_CHANGE_MIN_SIDE_S`; a change where they lie at least `distance` (`VOICE_CHANGE_DISTANCE`,
    cosine) apart. Local, as turns alternate: a mean over everything before a boundary would hold both
    voices. (A cut inside one voice costs little: its pieces are named alike and joined again.)"""
    distance = VOICE_CHANGE_DISTANCE if distance is None else distance
    window_s = VOICE_CHANGE_WINDOW_S if window_s is None else window_s
    seconds = np.asarray(seconds, np.float64)
    weighted = np.asarray(prints, np.float64) * seconds[:, None]
    n = len(seconds)

    def side(indices) -> tuple[np.ndarray, float]:
        total, heard = np.zeros(weighted.shape[1]), 0.0
        for k in indices:  # the nearest piece always; more while they fit in the window
            if heard and heard + seconds[k] > window_s:
                break
            total, heard = total + weighted[k], heard + seconds[k]
        return total, heard

    apart = np.full(n, -np.inf)  # apart[i]: the boundary before piece i
    for i in range(1, n):
        (left, left_s), (right, right_s) = side(range(i - 1, -1, -1)), side(range(i, n))
        if min(left_s, right_s) >= VOICE_CHANGE_MIN_SIDE_S:
            apart[i] = 1.0 - left @ right / max(np.linalg.norm(left) * np.linalg.norm(right), 1e-12)
    return [i for i in range(1, n) if apart[i] >= distance]


def sliding_changes(times: np.ndarray, apart: np.ndarray, distance: float | None = None,
                    window_s: float | None = None) -> list[float]:
    """Moments `times` (s) with the cosine distance `apart` between the prints of the audio just
    before and just after each → where the voice changes, in order: at least `distance`
    (`SLIDE_DISTANCE`), the farthest first, none within `window_s` (`SLIDE_WINDOW_S`) of one taken."""
    distance = SLIDE_DISTANCE if distance is None else distance
    window_s = SLIDE_WINDOW_S if window_s is None else window_s
    taken: list[float] = []
    for i in np.argsort(-np.asarray(apart), kind="stable"):
        if apart[i] < distance:
            break
        if all(abs(times[i] - t) >= window_s for t in taken):
            taken.append(float(times[i]))
    return sorted(taken)


def split_at_voice_changes(samples: np.ndarray, sample_rate: int, pieces: Sequence[Sequence[tuple[float, float]]],
                           encoder: SpeakerEncoder | None = None) -> list[tuple[float, float]]:
    """Speech regions, each given as its `pieces` cut at turn pauses (in order, covering it exactly),
    each cut where its voice changes (`voice_changes`); then any part longer than twice `SLIDE_WINDOW_S`
    cut where its voice changes without a pause (`sliding_changes`)."""
    samples = at_sample_rate(samples, sample_rate)
    encoder = encoder or shared_encoder()
    judged = [region for region in pieces if len(region) > 1]
    prints = iter(encoder.embed(
        [samples[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)] for region in judged for a, b in region]))
    parts = []
    for region in pieces:
        changes = []
        if len(region) > 1:
            region_prints = np.stack([next(prints) for _ in region])
            changes = [region[k][0] for k in voice_changes(region_prints, [b - a for a, b in region])]
        bounds = [region[0][0], *changes, region[-1][1]]
        parts.extend(zip(bounds[:-1], bounds[1:]))
    return _split_without_pauses(samples, parts, encoder)


def _split_without_pauses(samples: np.ndarray, parts: list[tuple[float, float]], encoder: SpeakerEncoder
                          ) -> list[tuple[float, float]]:
    """`split_at_voice_changes`'s second step: each part longer than twice `SLIDE_WINDOW_S`, cut at
    `sliding_changes` over prints of the `SLIDE_WINDOW_S` of audio before and after every `SLIDE_STEP_S`
    (each window's print computed once, serving as the side after one moment and before another)."""
    long = [(a, b) for a, b in parts if b - a > 2 * SLIDE_WINDOW_S]
    if not long:
        return list(parts)
    window = round(SLIDE_WINDOW_S * SAMPLE_RATE)
    step = round(SLIDE_STEP_S * SAMPLE_RATE)
    moments = {part: np.arange(round(part[0] * SAMPLE_RATE) + window, round(part[1] * SAMPLE_RATE) - window + 1, step)
               for part in long}
    starts = sorted({int(m) + offset for ms in moments.values() for m in ms for offset in (-window, 0)})
    prints = dict(zip(starts, encoder.embed([samples[start : start + window] for start in starts]))) if starts else {}
    out = []
    for a, b in parts:
        cuts = []
        at = moments.get((a, b), ())
        if len(at):
            before = np.stack([prints[int(m) - window] for m in at])
            after = np.stack([prints[int(m)] for m in at])
            apart = 1.0 - (before * after).sum(axis=1) / np.maximum(
                np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1), 1e-12)
            cuts = sliding_changes(at / SAMPLE_RATE, apart)
        bounds = [a, *cuts, b]
        out.extend(zip(bounds[:-1], bounds[1:]))
    return out


def at_sample_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """A recording at the speaker encoder's 16 kHz."""
    if sample_rate == SAMPLE_RATE:
        return samples
    import soxr

    return soxr.resample(samples, sample_rate, SAMPLE_RATE).astype(np.float32)


def speakers_of(samples: np.ndarray, sample_rate: int, spans: Sequence[tuple[float, float]],
                n_speakers: int | None = None, encoder: SpeakerEncoder | None = None) -> list[str]:
    """A recording's pieces of speech [(start_s, end_s)] → who spoke each ("S1", …)."""
    samples = at_sample_rate(samples, sample_rate)
    pieces = [samples[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)] for a, b in spans]
    return cluster((encoder or shared_encoder()).embed(pieces), n_speakers, durations=[b - a for a, b in spans])
