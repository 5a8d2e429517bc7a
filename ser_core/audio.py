"""Decode any common audio into mono float32 at the model's sample rate, or say clearly why not.

soundfile (libsndfile) reads wav, flac, ogg/vorbis, opus and mp3; everything else (m4a/aac, webm,
video containers) goes through PyAV, which bundles FFmpeg. Resampling is soxr. Limits on size and
duration are checked before the samples are decoded, so a huge upload costs nothing.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf
import soxr

from .errors import (
    AudioTooLargeError,
    AudioTooLongError,
    AudioTooShortError,
    NoSpeechError,
    NonFiniteAudioError,
    NotAudioError,
    SerError,
)

AudioSource = Union[str, os.PathLike, bytes, bytearray, BinaryIO]

CLIPPED_LEVEL = 0.999  # |sample| at or above this counts as clipped
CLIPPING_WARN_SHARE = 0.001
TELEPHONE_BAND_HZ = 8000  # recordings at or below this rate carry no energy above 4 kHz
LEVEL_FRAME_S = 0.05


@dataclass(frozen=True)
class AudioLimits:
    """What ser_core accepts; the app's upload limit is set from `max_bytes`."""

    max_bytes: int = 200 * 2**20
    max_duration_s: float = 2 * 3600.0
    min_duration_s: float = 0.25
    speech_threshold_dbfs: float = -60.0


DEFAULT_LIMITS = AudioLimits()


class AudioFileNotFoundError(SerError):
    def __init__(self, path: str):
        super().__init__(f"File not found: {path}")


@dataclass(frozen=True)
class Audio:
    """Decoded mono audio plus what the input looked like before conversion."""

    samples: np.ndarray  # float32, mono, at `sample_rate`
    sample_rate: int
    original_sample_rate: int
    channels: int
    peak: float  # before resampling, 1.0 = full scale
    clipped_share: float  # share of samples at full scale, before resampling
    warnings: tuple[str, ...] = field(default=())

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def loudest_dbfs(self) -> float:
        return loudest_frame_dbfs(self.samples, self.sample_rate)

    @property
    def rms_dbfs(self) -> float:
        rms = float(np.sqrt(np.mean(np.square(self.samples, dtype=np.float64))))
        return 20 * np.log10(rms) if rms > 0 else float("-inf")


def loudest_frame_dbfs(samples: np.ndarray, sample_rate: int) -> float:
    """RMS level of the loudest 50 ms frame: speech lifts it, silence and faint hiss do not."""
    frame = max(1, int(LEVEL_FRAME_S * sample_rate))
    n = len(samples) // frame * frame
    frames = samples[:n].reshape(-1, frame) if n else samples.reshape(1, -1)
    rms = float(np.sqrt(np.max(np.mean(np.square(frames, dtype=np.float64), axis=1))))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


def _read_source(source: AudioSource, limits: AudioLimits) -> tuple[bytes, str]:
    """Return the raw bytes and a name for messages, checking the byte limit first."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise AudioFileNotFoundError(str(path))
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise AudioTooLargeError(size, limits.max_bytes)
        return path.read_bytes(), path.name
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        data = source.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise AudioTooLargeError(len(data), limits.max_bytes)
    return data, getattr(source, "name", "audio")


def _check_duration(n_frames: int, rate: int, limits: AudioLimits) -> None:
    if rate > 0 and n_frames / rate > limits.max_duration_s:
        raise AudioTooLongError(n_frames / rate, limits.max_duration_s)


def _decode_soundfile(data: bytes, limits: AudioLimits) -> tuple[np.ndarray, int, int]:
    with sf.SoundFile(io.BytesIO(data)) as f:
        _check_duration(f.frames, f.samplerate, limits)
        samples = f.read(dtype="float32", always_2d=True)
        return samples, f.samplerate, f.channels


def _decode_pyav(data: bytes, limits: AudioLimits) -> tuple[np.ndarray, int, int]:
    import av  # imported here: only formats libsndfile cannot read need FFmpeg

    with av.open(io.BytesIO(data), mode="r") as container:
        if not container.streams.audio:
            raise NotAudioError("no audio track")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        channels = stream.codec_context.channels or 1
        if stream.duration is not None and stream.time_base is not None:
            _check_duration(int(stream.duration * stream.time_base * rate), rate, limits)
        elif container.duration is not None:
            _check_duration(int(container.duration / av.time_base * rate), rate, limits)
        # FFmpeg downmixes and converts to float; the rate is left for soxr.
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks, n_decoded, max_frames = [], 0, int(limits.max_duration_s * rate) + 1
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                chunks.append(chunk)
                n_decoded += len(chunk)
            if n_decoded > max_frames:  # no trustworthy header: stop as soon as the cap is passed
                raise AudioTooLongError(n_decoded / rate, limits.max_duration_s)
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return samples.astype(np.float32)[:, None], rate, channels


def decode(data: bytes, limits: AudioLimits = DEFAULT_LIMITS) -> tuple[np.ndarray, int, int]:
    """Bytes → (frames × channels float32, sample rate, channels), trying soundfile then PyAV."""
    if not data:
        raise AudioTooShortError(0.0, limits.min_duration_s)
    try:
        return _decode_soundfile(data, limits)
    except SerError:
        raise
    except Exception:  # libsndfile cannot read it: let FFmpeg try before giving up
        pass
    try:
        return _decode_pyav(data, limits)
    except SerError:
        raise
    except Exception as error:  # any decoder failure on user bytes is "not audio", not a crash
        raise NotAudioError(type(error).__name__) from None


def to_mono_float32(
    samples: np.ndarray,
    sample_rate: int,
    target_rate: int,
    channels: int | None = None,
    limits: AudioLimits = DEFAULT_LIMITS,
    check_speech: bool = True,
) -> Audio:
    """Validate and convert decoded samples (frames, or frames × channels) into an `Audio`."""
    samples = np.asarray(samples)
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.ndim != 2 or sample_rate <= 0:
        raise NotAudioError("unexpected sample layout")
    if samples.shape[1] > samples.shape[0] and samples.shape[1] > 16:
        samples = samples.T  # channels-first arrays, as librosa returns them
    channels = channels or samples.shape[1]
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max)
    mono = samples.astype(np.float32).mean(axis=1)
    duration = len(mono) / sample_rate
    if duration < limits.min_duration_s:
        raise AudioTooShortError(duration, limits.min_duration_s)
    if duration > limits.max_duration_s:
        raise AudioTooLongError(duration, limits.max_duration_s)
    if not np.all(np.isfinite(mono)):
        raise NonFiniteAudioError()

    peak = float(np.max(np.abs(mono)))
    clipped_share = float(np.mean(np.abs(mono) >= CLIPPED_LEVEL))
    warnings = []
    if peak > 1.0:
        warnings.append(f"The audio peaks at {peak:.2f}, above full scale; it was scaled down to 1.0.")
        mono = mono / peak
    if clipped_share >= CLIPPING_WARN_SHARE:
        warnings.append(
            f"{clipped_share:.1%} of the samples are clipped; distortion can change the prediction."
        )
    if sample_rate <= TELEPHONE_BAND_HZ:
        warnings.append(
            f"The recording is {sample_rate} Hz (telephone band): no sound above {sample_rate // 2} Hz, "
            "so predictions are less reliable."
        )
    if channels > 2:  # stereo is ordinary; more channels is unusual enough to mention
        warnings.append(f"{channels} channels were mixed down to mono.")
    if sample_rate != target_rate:
        mono = soxr.resample(mono, sample_rate, target_rate, quality="HQ").astype(np.float32)
    if check_speech:
        level = loudest_frame_dbfs(mono, target_rate)
        if level < limits.speech_threshold_dbfs:
            raise NoSpeechError(level, limits.speech_threshold_dbfs)
    return Audio(mono, target_rate, sample_rate, channels, peak, clipped_share, tuple(warnings))


def load_audio(
    source: AudioSource,
    sample_rate: int = 16000,
    limits: AudioLimits = DEFAULT_LIMITS,
    check_speech: bool = True,
) -> Audio:
    """Load a path, bytes or binary file object as mono float32 at `sample_rate`."""
    data, _ = _read_source(source, limits)
    samples, rate, channels = decode(data, limits)
    return to_mono_float32(samples, rate, sample_rate, channels, limits, check_speech)
