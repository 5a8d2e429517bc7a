"""Decode any common audio into mono float32 at the model's sample rate, or say clearly why not.

soundfile (libsndfile) reads wav, flac, ogg/vorbis, opus and mp3; m4a/aac, webm and video containers
go through PyAV, which bundles FFmpeg. Resampling is soxr.

Every input is untrusted. The byte limit is checked before anything is parsed; the duration limit
is read from the header before any sample is decoded, and checked again while decoding, since
headers can lie; decoding runs in blocks, mixed down to mono as it goes, and stops once it has run
for `max_decode_s`. FFmpeg only sees bytes whose signature is an audio or media container on an
explicit list: never its playlist or concat demuxers, which would open other files, and it is
refused any nested open.
"""

from __future__ import annotations

import io
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping, Union

import numpy as np
import soundfile as sf
import soxr

from ..errors import (AudioTooLargeError, AudioTooLongError, AudioTooShortError, ConfigError, DecodeTimeoutError,
    NoSpeechError, NonFiniteAudioError, NotAudioError, SerError)
from .levels import SILENCE_DBFS, loudest_frame_dbfs, rms_dbfs

AudioSource = Union[str, os.PathLike, bytes, bytearray, BinaryIO]

CLIPPED_LEVEL = 0.999  # |sample| at or above this counts as clipped
# A mean this far from zero is an offset, taken out. Speech itself averages ~1e-4; SAVEE's clips sit up
# to 0.045 off zero and were learned that way, so milder offsets are left as the models heard them.
DC_OFFSET_WARN = 0.05
CLIPPING_WARN_SHARE = 0.001
TELEPHONE_BAND_HZ = 8000  # recordings at or below this rate carry no energy above 4 kHz
MIN_SAMPLE_RATE = 1000  # below this a header's rate is not a sound recording's (and lies about duration)
MAX_SAMPLE_RATE = 768_000
BLOCK_SAMPLES = 1 << 20  # samples (frames × channels) per decoded block: bounds one read's memory
STREAM_BLOCK_SAMPLES = 1 << 16  # source samples gathered per resampling call: bounds per-call overhead
SF_COUNT_UNKNOWN = 2**62  # libsndfile reports SF_COUNT_MAX frames when the header has no length
LIMIT_ENV = {"max_bytes": "SER_MAX_BYTES", "max_duration_s": "SER_MAX_DURATION_S", "max_decode_s": "SER_MAX_DECODE_S"}
# What a folder of recordings is listed by (corpora, `ser predict DIR`, `ser embed`).
AUDIO_EXTENSIONS = frozenset(
    ".wav .flac .ogg .opus .mp3 .m4a .aac .webm .mp4 .aiff .aif".split()
)


@dataclass(frozen=True)
class AudioLimits:
    """What ser_core accepts; the app's upload limit is set from `max_bytes`."""

    max_bytes: int = 200 * 2**20
    max_duration_s: float = 2 * 3600.0
    min_duration_s: float = 0.25
    speech_threshold_dbfs: float = SILENCE_DBFS
    max_decode_s: float = 120.0  # wall-clock bound on decoding one input, checked between blocks

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "AudioLimits":
        """The defaults, with SER_MAX_BYTES, SER_MAX_DURATION_S and SER_MAX_DECODE_S applied where set."""
        environ = os.environ if environ is None else environ
        values = {}
        for name, variable in LIMIT_ENV.items():
            text = environ.get(variable, "").strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError:
                value = float("nan")
            if not np.isfinite(value) or value <= 0:
                raise ConfigError(f"{variable} must be a positive number, not {text!r}.")
            values[name] = int(value) if name == "max_bytes" else value
        return cls(**values)


DEFAULT_LIMITS = AudioLimits.from_env()


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
        return rms_dbfs(self.samples)


def _read_source(source: AudioSource, limits: AudioLimits) -> tuple[bytes, str]:
    """Return the raw bytes and a name for messages, checking the byte limit first."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise NotAudioError(f"{path} is a folder")
        if not path.is_file():
            raise AudioFileNotFoundError(str(path))
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise AudioTooLargeError(size, limits.max_bytes)
        with path.open("rb") as f:  # read no more than the limit, even if the file grows meanwhile
            data = f.read(limits.max_bytes + 1)
        name = path.name
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "audio"
    elif hasattr(source, "read"):
        data, name = source.read(limits.max_bytes + 1), getattr(source, "name", "audio")
        if not isinstance(data, (bytes, bytearray)):
            raise NotAudioError("the upload could not be read as bytes")
        data = bytes(data)
    else:
        raise TypeError(f"Audio is read from a path, bytes or a binary file object (or a numpy array with its "
                        f"sample rate, `sr=`), not a value of type {type(source).__name__}.")
    if len(data) > limits.max_bytes:
        raise AudioTooLargeError(len(data), limits.max_bytes)
    return data, str(name)


def _check_duration(n_frames: int, rate: float, limits: AudioLimits, still_decoding: bool = False) -> None:
    if rate > 0 and n_frames / rate > limits.max_duration_s:
        raise AudioTooLongError(n_frames / rate, limits.max_duration_s, still_decoding)


def _check_rate(rate) -> int:
    if not rate or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise NotAudioError(f"a sample rate of {rate or 0} Hz is not one a recording has")
    return int(rate)


class _Deadline:
    """`max_decode_s` from the start of decoding, checked between blocks or frames."""

    def __init__(self, limits: AudioLimits):
        self.limit_s = limits.max_decode_s
        self.end = time.monotonic() + limits.max_decode_s

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise DecodeTimeoutError(self.limit_s)


# What the first bytes of a file say it is: media formats go to FFmpeg with their demuxer named, so
# FFmpeg never guesses (its playlist and concat demuxers would open other files); others are named
# in the error message.
_CONTAINERS = (  # (offset, signature, FFmpeg demuxer, label)
    (4, b"ftyp", "mov", "MP4/M4A"),
    (4, b"moov", "mov", "MP4/MOV"),
    (4, b"mdat", "mov", "MP4/MOV"),
    (4, b"free", "mov", "MP4/MOV"),
    (4, b"wide", "mov", "MP4/MOV"),
    (4, b"skip", "mov", "MP4/MOV"),
    (0, b"\x1a\x45\xdf\xa3", "matroska", "WebM/Matroska"),
    (0, b"OggS", "ogg", "Ogg"),
    (0, b"fLaC", "flac", "FLAC"),
    (0, b"#!AMR", "amr", "AMR"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "asf", "WMA/ASF"),
    (0, b"caff", "caf", "CAF"),
    (0, b".snd", "au", "AU"),
)
_NOT_AUDIO = (
    (b"\x89PNG", "it looks like a PNG image"),
    (b"\xff\xd8\xff", "it looks like a JPEG image"),
    (b"GIF8", "it looks like a GIF image"),
    (b"%PDF", "it looks like a PDF document"),
    (b"PK\x03\x04", "it looks like a ZIP archive or an office document"),
)


def _sniff(data: bytes) -> tuple[str | None, str]:
    """(FFmpeg demuxer or None, label or reason) from the file's signature."""
    for offset, magic, demuxer, label in _CONTAINERS:
        if data[offset : offset + len(magic)] == magic:
            return demuxer, label
    if data[:4] in (b"RIFF", b"RF64") and data[8:12] == b"WAVE":
        return "wav", "WAV"
    if data[:4] == b"FORM" and data[8:12] in (b"AIFF", b"AIFC"):
        return "aiff", "AIFF"
    body = data
    if data[:3] == b"ID3" and len(data) >= 10:  # ID3v2 tag: a synchsafe size, then MP3 or ADTS frames
        size = 10 + sum((b & 0x7F) << shift for b, shift in zip(data[6:10], (21, 14, 7, 0)))
        body = data[size : size + 2]
        if len(body) < 2:
            return "mp3", "MP3"
    if len(body) >= 2 and body[0] == 0xFF and body[1] & 0xE0 == 0xE0:
        return ("aac", "AAC") if body[1] & 0x06 == 0 else ("mp3", "MP3")
    if data[:3] == b"ID3":
        return "mp3", "MP3"
    for magic, reason in _NOT_AUDIO:
        if data.startswith(magic):
            return None, reason
    text = data[:512].decode("utf-8", errors="replace")
    if sum(c != "\ufffd" and (c.isprintable() or c in "\r\n\t") for c in text) >= 0.95 * len(text):
        return None, "it looks like a text file"
    return None, "unrecognised file type"


def _refuse_nested_open(url, flags, options):
    raise PermissionError("ser_core opens no file named inside an upload")


def _wav_truncation_warning(data: bytes) -> str | None:
    """A WAV whose data chunk announces more bytes than the file holds was cut off (an interrupted
    recording or upload). libsndfile quietly reads what is there; say so. Streaming writers put a
    placeholder (0 or about 4 GiB) in the header: that is not a cut."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset, byte_rate = 12, 0
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        if chunk == b"fmt " and size >= 16 and offset + 20 <= len(data):
            byte_rate = struct.unpack("<I", data[offset + 16 : offset + 20])[0]
        if chunk == b"data":
            present = len(data) - offset - 8
            if byte_rate and 0 < size < 0x7FFF0000 and size > present:
                return (
                    f"The file ends early: its header announces {size / byte_rate:.1f} s but only "
                    f"{present / byte_rate:.1f} s are there (an interrupted recording or upload?)."
                )
            return None
        offset += 8 + size + (size & 1)
    return None


class _MonoStream:
    """Mono float32 blocks at the source rate in; the audio at the target rate out, resampled as it
    arrives, so that a long recording is never held whole at its original rate. Notes the input's
    peak and clipped share, and refuses NaN or infinity, before resampling changes them."""

    def __init__(self, rate: int, target_rate: int):
        self.rate, self.target_rate = rate, target_rate
        self._resampler = (soxr.ResampleStream(rate, target_rate, 1, dtype="float32", quality="HQ")
                           if rate != target_rate else None)
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._out: list[np.ndarray] = []
        self.n_in = 0
        self.peak = 0.0
        self._clipped = 0  # samples at full scale
        self._at_peak = 0  # samples at the signal's own peak, where float audio beyond full scale would be clipped
        self._result: np.ndarray | None = None

    def push(self, block: np.ndarray) -> None:
        self._pending.append(np.asarray(block, dtype=np.float32))
        self._pending_samples += len(block)
        if self._pending_samples >= STREAM_BLOCK_SAMPLES:
            self._flush(last=False)

    def _flush(self, last: bool) -> None:
        block = np.concatenate(self._pending) if self._pending else np.zeros(0, np.float32)
        self._pending, self._pending_samples = [], 0
        if not np.all(np.isfinite(block)):
            raise NonFiniteAudioError()
        if len(block):
            magnitude = np.abs(block)
            self._clipped += int(np.count_nonzero(magnitude >= CLIPPED_LEVEL))
            if (block_peak := float(magnitude.max())) > self.peak:  # a new ceiling: what sat at the old one no longer does
                self.peak, self._at_peak = block_peak, 0
            self._at_peak += int(np.count_nonzero(magnitude >= CLIPPED_LEVEL * self.peak))
        self.n_in += len(block)
        self._out.append(self._resampler.resample_chunk(block, last=last) if self._resampler else block)

    def finish(self) -> np.ndarray:
        """All the output; the stream takes no more input after the first call."""
        if self._result is None:
            self._flush(last=True)
            self._result = np.concatenate(self._out).astype(np.float32, copy=False)
            self._out = []
        return self._result

    @property
    def clipped_share(self) -> float:
        """Share of samples at the ceiling: full scale, or for float audio running beyond it (samples as
        integers, say) its own peak, since nothing clipped it at 1.0."""
        clipped = self._clipped if self.peak <= 1.0 else self._at_peak
        return clipped / self.n_in if self.n_in else 0.0


def _soundfile_blocks(data: bytes, limits: AudioLimits, deadline: _Deadline) -> Iterator:
    """(rate, channels) from the header, then mono float32 blocks."""
    with sf.SoundFile(io.BytesIO(data)) as f:
        rate, channels = _check_rate(f.samplerate), f.channels
        # The header's length bounds what is read: soundfile reads no further than f.frames. A stream
        # written without its length (FLAC from a pipe) says SF_COUNT_MAX: the count below decides.
        if f.frames < SF_COUNT_UNKNOWN:
            _check_duration(f.frames, rate, limits)
        yield rate, channels
        block = max(1024, BLOCK_SAMPLES // max(1, channels))
        n_decoded = 0
        while len(x := f.read(block, dtype="float32", always_2d=True)):
            n_decoded += len(x)
            _check_duration(n_decoded, rate, limits, still_decoding=True)
            deadline.check()
            yield x.mean(axis=1, dtype=np.float32) if channels > 1 else x[:, 0]


def _pyav_blocks(data: bytes, limits: AudioLimits, deadline: _Deadline) -> Iterator:
    """(rate, channels) from the container, then mono float32 blocks (FFmpeg mixes down)."""
    demuxer, label = _sniff(data)
    if demuxer is None:
        raise NotAudioError(label)
    import av  # imported here: only formats libsndfile cannot read need FFmpeg

    try:
        container = av.open(io.BytesIO(data), mode="r", format=demuxer, io_open=_refuse_nested_open)
    except Exception:
        raise NotAudioError(f"damaged {label} data") from None
    with container:
        if not container.streams.audio:
            raise NotAudioError(f"{label} without an audio track")
        stream = container.streams.audio[0]
        rate = _check_rate(stream.codec_context.sample_rate or stream.rate)
        channels = stream.codec_context.channels or 1
        if stream.duration is not None and stream.time_base is not None:
            _check_duration(int(stream.duration * stream.time_base * rate), rate, limits)
        elif container.duration is not None:
            _check_duration(int(container.duration / av.time_base * rate), rate, limits)
        yield rate, channels
        # FFmpeg downmixes and converts to float; the rate is left for soxr.
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        n_decoded = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    n_decoded += len(chunk)
                    yield chunk
                # Headers can lie (or be absent): stop as soon as the cap is passed.
                _check_duration(n_decoded, rate, limits, still_decoding=True)
                deadline.check()
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1)
        except SerError:
            raise
        except Exception:
            raise NotAudioError(f"damaged {label} data") from None


def _decode(data: bytes, limits: AudioLimits, target_rate: int | None = None) -> tuple[_MonoStream, int, tuple[str, ...]]:
    """Decode into a finished `_MonoStream` at `target_rate` (default: the file's own rate); also
    the file's channel count and notes on the file itself."""
    if not data:
        raise AudioTooShortError(0.0, limits.min_duration_s)
    if len(data) > limits.max_bytes:
        raise AudioTooLargeError(len(data), limits.max_bytes)
    deadline = _Deadline(limits)
    # libsndfile first; what it cannot read, FFmpeg tries before we give up.
    for blocks in (_soundfile_blocks, _pyav_blocks):
        try:
            decoder = blocks(data, limits, deadline)
            rate, channels = next(decoder)
            stream = _MonoStream(rate, target_rate or rate)
            for block in decoder:
                stream.push(block)
            stream.finish()
        except SerError:
            raise
        except Exception as error:  # any decoder failure on user bytes is "not audio", not a crash
            failure = error
            continue
        warning = _wav_truncation_warning(data) if blocks is _soundfile_blocks else None
        return stream, channels, (warning,) if warning else ()
    raise NotAudioError(f"the decoder failed: {type(failure).__name__}") from None


def decode(data: bytes, limits: AudioLimits = DEFAULT_LIMITS) -> tuple[np.ndarray, int, int]:
    """Bytes → (frames × 1 float32, the channels mixed down; sample rate; channels in the file),
    trying soundfile then PyAV, within `limits`."""
    stream, channels, _ = _decode(data, limits)
    return stream.finish()[:, None], stream.rate, channels


def _to_audio(stream: _MonoStream, samples: np.ndarray, channels: int, limits: AudioLimits,
              check_speech: bool, notes: tuple[str, ...] = ()) -> Audio:
    """Resampled samples plus what the stream noted → a checked `Audio` with its warnings."""
    duration = stream.n_in / stream.rate
    if duration < limits.min_duration_s:
        raise AudioTooShortError(duration, limits.min_duration_s)
    if duration > limits.max_duration_s:
        raise AudioTooLongError(duration, limits.max_duration_s)
    warnings = list(notes)
    peak = stream.peak
    if len(samples) and abs(offset := float(np.mean(samples, dtype=np.float64))) >= DC_OFFSET_WARN:
        # A constant offset fills the lowest mel band and, with the peak it raises, lowers the level: a
        # RAVDESS clip 0.3 off zero read arousal 0.71 instead of 0.97 before it was taken out.
        samples = samples - np.float32(offset)
        peak = float(np.abs(samples).max())
        warnings.append(f"The waveform sits {offset:+.2f} off zero (a DC offset from the microphone or sound card); "
                        "the offset was removed.")
    if peak > 1.0:
        warnings.append(f"The audio peaks at {peak:.2f}, above full scale; it was scaled down to 1.0.")
        samples = samples / np.float32(peak)  # linear: the same before or after resampling
    if stream.clipped_share >= CLIPPING_WARN_SHARE:
        warnings.append(
            f"{stream.clipped_share:.1%} of the samples are clipped; distortion can change the prediction."
        )
    if stream.rate <= TELEPHONE_BAND_HZ:
        warnings.append(
            f"The recording is {stream.rate} Hz (telephone band): no sound above {stream.rate // 2} Hz, "
            "so predictions are less reliable."
        )
    if channels > 2:  # stereo is ordinary; more channels is unusual enough to mention
        warnings.append(f"{channels} channels were mixed down to mono.")
    if check_speech:
        level = loudest_frame_dbfs(samples, stream.target_rate)
        if level < limits.speech_threshold_dbfs:
            raise NoSpeechError(level, limits.speech_threshold_dbfs)
    return Audio(samples, stream.target_rate, stream.rate, channels, stream.peak, stream.clipped_share,
                 tuple(warnings))


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
    if samples.ndim != 2 or not (np.issubdtype(samples.dtype, np.integer) or np.issubdtype(samples.dtype, np.floating)):
        raise NotAudioError("unexpected sample layout")
    sample_rate = _check_rate(sample_rate)
    if samples.shape[1] > samples.shape[0] and samples.shape[1] > 16:
        samples = samples.T  # channels-first arrays, as librosa returns them
    if samples.size == 0:
        raise AudioTooShortError(0.0, limits.min_duration_s)
    _check_duration(len(samples), sample_rate, limits)
    channels = channels or samples.shape[1]
    if np.issubdtype(samples.dtype, np.unsignedinteger):  # unsigned PCM is centred on half scale
        half = np.float32(np.iinfo(samples.dtype).max // 2 + 1)
        samples = (samples.astype(np.float32) - half) / half
    elif np.issubdtype(samples.dtype, np.integer):  # full scale is -min: int16 -32768 → -1.0
        samples = samples.astype(np.float32) / np.float32(-float(np.iinfo(samples.dtype).min))
    with np.errstate(over="ignore", invalid="ignore"):
        mono = samples.astype(np.float32).mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0].astype(np.float32)
    stream = _MonoStream(sample_rate, target_rate)
    stream.push(mono)
    return _to_audio(stream, stream.finish(), channels, limits, check_speech)


def load_audio(
    source: AudioSource,
    sample_rate: int = 16000,
    limits: AudioLimits = DEFAULT_LIMITS,
    check_speech: bool = True,
) -> Audio:
    """Load a path, bytes or binary file object as mono float32 at `sample_rate`."""
    data, _ = _read_source(source, limits)
    stream, channels, notes = _decode(data, limits, sample_rate)
    return _to_audio(stream, stream.finish(), channels, limits, check_speech, notes)
