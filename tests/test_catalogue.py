"""The bad-input catalogue: every kind of file a person might hand us, and the answer each one gets.

One table (`CASES`) drives every level. Each case makes its bytes here (no binary fixtures are
committed) and states what `ser_core` must do with it: a prediction, a prediction with a warning,
or one specific typed error. The CLI level follows from it: `ser predict` prints probabilities for
the first two, and exactly one short line on stderr (the same sentence) for an error, never a
traceback; all files go through ONE `ser predict --json` run, since model start-up is slow.
`tests/test_catalogue_app.py` drives the app's upload page with the same table.

`python tests/test_catalogue.py` prints the table as markdown for the README.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # conftest helpers, also when run as a script
from conftest import ROOT, pyav_bytes, speech, wav_bytes  # noqa: E402
from ser_core.io.audio import AudioFileNotFoundError, AudioLimits, load_audio  # noqa: E402
from ser_core.errors import (AudioTooLargeError, AudioTooLongError, AudioTooShortError, NoSpeechError,
    NoVoiceActivityError, NonFiniteAudioError, NotAudioError, SerError)

SR = 16000
# Small caps, so that "too long" and "too large" need no big files. The CLI gets the same caps
# through the environment (ser_core.io.audio.LIMIT_ENV); every other case is far below them.
CAP_S = 10.0
CAP_BYTES = 4 * 2**20
LIMITS = AudioLimits(max_duration_s=CAP_S, max_bytes=CAP_BYTES)
LIMITS_ENV = {"SER_MAX_DURATION_S": str(CAP_S), "SER_MAX_BYTES": str(CAP_BYTES)}


# --- How the bytes are made ------------------------------------------------------------------------

def clip(seconds: float = 2.0, sr: int = SR, **kwargs) -> np.ndarray:
    return speech(seconds, sr, **kwargs)


def png_bytes() -> bytes:
    """A valid 1×1 grey PNG, written by hand."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")


def id3v2_tag() -> bytes:
    """An ID3v2.3 tag with a title and 20 kB of cover art, as music tools write them."""

    def frame(frame_id: bytes, body: bytes) -> bytes:
        return frame_id + struct.pack(">I", len(body)) + b"\x00\x00" + body

    frames = frame(b"TIT2", b"\x00catalogue") + frame(b"APIC", b"\x00image/png\x00\x03\x00" + png_bytes() + bytes(20000))
    size = len(frames) + 512  # and padding
    return b"ID3\x03\x00\x00" + bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0)) + frames + bytes(512)


def id3v1_tag() -> bytes:
    return b"TAG" + b"catalogue".ljust(30, b"\x00") + bytes(95)


def mp3_with_id3() -> bytes:
    return id3v2_tag() + wav_bytes(clip(), SR, "MPEG_LAYER_III", "MP3") + id3v1_tag()


def wav_with_data_size(data: bytes, riff_size: int, data_size: int) -> bytes:
    """Rewrite the RIFF and data chunk sizes of a plain 44-byte-header WAV."""
    assert data[36:40] == b"data"
    return data[:4] + struct.pack("<I", riff_size) + data[8:40] + struct.pack("<I", data_size) + data[44:]


def wav_cut_in_data() -> bytes:
    """The header announces 2 s; the file stops after 1 s (an interrupted upload)."""
    return wav_bytes(clip(2.0), SR)[: 44 + SR * 2]


def wav_streamed() -> bytes:
    """Written to a pipe: the writer could not go back, so the sizes are the 4 GiB placeholder."""
    return wav_with_data_size(wav_bytes(clip(2.0), SR), 0xFFFFFFFF, 0xFFFFFFFF)


def flac_without_length() -> bytes:
    """FLAC whose STREAMINFO has no sample count (0 = unknown), as encoders write to a pipe."""
    data = bytearray(wav_bytes(clip(2.0), SR, "PCM_16", "FLAC"))
    assert data[:4] == b"fLaC"
    data[21] &= 0xF0  # the 36-bit total-samples field: the low nibble of byte 21 and bytes 22-25
    data[22:26] = bytes(4)
    return bytes(data)


def noise(seconds: float, level_dbfs: float, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SR)) * 10 ** (level_dbfs / 20)).astype(np.float32)


def square_wave(seconds: float = 2.0, f: float = 200.0) -> np.ndarray:
    return np.sign(np.sin(2 * np.pi * f * (np.arange(int(seconds * SR)) + 0.5) / SR)).astype(np.float32)


def with_nan_and_inf() -> np.ndarray:
    x = clip(2.0).copy()
    x[1000::4000] = np.nan
    x[3000::4000] = np.inf
    return x


def multichannel(channels: int = 6, sr: int = 48000) -> np.ndarray:
    return np.stack([speech(2.0, sr, seed=i) for i in range(channels)], axis=1)


def ogg_crc(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def ogg_claiming(seconds: float) -> bytes:
    """Real 2 s of Ogg/Vorbis whose last page's granule position (the length) says `seconds`."""
    data = wav_bytes(clip(2.0), SR, "VORBIS", "OGG")
    start = data.rfind(b"OggS")
    n_segments = data[start + 26]
    end = start + 27 + n_segments + sum(data[start + 27 : start + 27 + n_segments])
    page = bytearray(data[start:end])
    page[6:14] = struct.pack("<q", int(seconds * SR))
    page[22:26] = bytes(4)
    page[22:26] = struct.pack("<I", ogg_crc(bytes(page)))
    return data[:start] + bytes(page) + data[end:]


def webm_claiming(seconds: float, real_s: float) -> bytes:
    """`real_s` of WebM/Opus whose Segment Duration element says `seconds`."""
    data = pyav_bytes(clip(real_s), SR, "webm", "libopus")
    at = data.find(b"\x44\x89\x88")  # Duration, an 8-byte float in milliseconds
    assert at > 0
    return data[: at + 3] + struct.pack(">d", seconds * 1000) + data[at + 11 :]


def mp4_with_video(audio: bool = True) -> bytes:
    """An MP4 'video': 64×64 H.264 (MPEG-4 Part 2 where the FFmpeg build lacks x264) + AAC audio."""
    import av
    import soxr

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        video = out.add_stream(codec, rate=25)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        if audio:
            sound = out.add_stream("aac", rate=48000, layout="mono")
            pcm = soxr.resample(clip(2.0), SR, 48000).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(pcm[None, :], format="flt", layout="mono")
            frame.sample_rate = 48000
            for packet in [*sound.encode(frame), *sound.encode(None)]:
                out.mux(packet)
        for i in range(50):
            image = np.full((64, 64, 3), (i * 5) % 256, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return buffer.getvalue()


# --- Expected answers --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Expect:
    kind: str  # "prediction", "warning" (a prediction with a warning) or "error"
    error: type[SerError] | None = None
    warning: str = ""  # a phrase of the expected warning

    @property
    def core(self) -> str:
        if self.kind == "error":
            return f"`{self.error.__name__}`"
        if self.kind == "warning":
            return f"prediction + warning ({self.warning})"
        return "prediction"

    @property
    def cli(self) -> str:
        if self.kind == "error":
            return "one line on stderr, exit 1"
        if self.kind == "warning":
            return "probabilities + `warning:` line"
        return "probabilities"


PREDICTION = Expect("prediction")


def warns(phrase: str) -> Expect:
    return Expect("warning", warning=phrase)


def fails(error: type[SerError]) -> Expect:
    return Expect("error", error=error)


@dataclass(frozen=True)
class Case:
    id: str
    what: str  # the table's "case" column
    filename: str  # extensions are what people see; ser_core looks at the bytes
    make: Callable[[], bytes] | None  # None: the path does not exist
    expect: Expect


PLAYLIST_TARGET = "SHOUTING.WAV"  # a real audio file beside the playlists below

CASES = [
    Case("empty", "empty file", "empty.wav", lambda: b"", fails(AudioTooShortError)),
    Case("random-bytes", "4 kB of random bytes named .wav", "random.wav",
         lambda: np.random.default_rng(0).bytes(4096), fails(NotAudioError)),
    Case("text", "a text file", "notes.txt", lambda: b"Meeting notes: bring the microphone.\n" * 20, fails(NotAudioError)),
    Case("png", "a PNG image renamed .wav", "picture.wav", png_bytes, fails(NotAudioError)),
    Case("wav-cut-in-header", "WAV cut off inside its header (30 bytes)", "cut-header.wav",
         lambda: wav_bytes(clip(), SR)[:30], fails(NotAudioError)),
    Case("wav-cut-in-data", "WAV whose header announces 2 s, 1 s present", "cut-data.wav",
         wav_cut_in_data, warns("ends early")),
    Case("wav-streamed", "WAV with 4 GiB placeholder sizes (header claims hours; written to a pipe)",
         "streamed.wav", wav_streamed, PREDICTION),
    Case("zero-frames", "WAV with zero frames", "zero.wav", lambda: wav_bytes(np.zeros(0, np.float32), SR),
         fails(AudioTooShortError)),
    Case("10ms", "10 ms of audio", "blip.wav", lambda: wav_bytes(clip(0.01), SR), fails(AudioTooShortError)),
    Case("silence", "3 s of digital silence", "silence.wav", lambda: wav_bytes(np.zeros(3 * SR, np.float32), SR),
         fails(NoSpeechError)),
    Case("noise-75dbfs", "3 s of noise at −75 dBFS only", "hiss.wav",
         lambda: wav_bytes(noise(3.0, -75.0), SR, "FLOAT"), fails(NoSpeechError)),
    Case("clipped", "speech clipped at full scale", "loud.wav",
         lambda: wav_bytes(np.clip(clip() * 30, -1, 1), SR), warns("clipped")),
    Case("square", "a loud square wave (a tone, no voice)", "square.wav",
         lambda: wav_bytes(square_wave() * 0.5, SR), fails(NoVoiceActivityError)),
    Case("noise-20dbfs", "3 s of loud noise (−20 dBFS), no voice", "noise.wav",
         lambda: wav_bytes(noise(3.0, -20.0), SR, "FLOAT"), fails(NoVoiceActivityError)),
    Case("nan-inf", "float WAV containing NaN and Inf", "nan.wav",
         lambda: wav_bytes(with_nan_and_inf(), SR, "FLOAT"), fails(NonFiniteAudioError)),
    Case("float-over", "float WAV peaking at 1.8", "hot.wav", lambda: wav_bytes(clip() * 18, SR, "FLOAT"),
         warns("above full scale")),
    Case("8k", "8 kHz (telephone)", "phone.wav", lambda: wav_bytes(clip(2.0, 8000), 8000), warns("telephone band")),
    Case("96k", "96 kHz", "hires.wav", lambda: wav_bytes(clip(2.0, 96000), 96000), PREDICTION),
    Case("6-channels", "6 channels (5.1), 48 kHz", "surround.wav", lambda: wav_bytes(multichannel(), 48000),
         warns("6 channels")),
    Case("24-bit", "24-bit PCM", "pcm24.wav", lambda: wav_bytes(clip(), SR, "PCM_24"), PREDICTION),
    Case("float32", "32-bit float", "float.wav", lambda: wav_bytes(clip(), SR, "FLOAT"), PREDICTION),
    Case("flac", "FLAC", "speech.flac", lambda: wav_bytes(clip(), SR, "PCM_16", "FLAC"), PREDICTION),
    Case("flac-no-length", "FLAC without a sample count (written to a pipe)", "streamed.flac",
         flac_without_length, PREDICTION),
    Case("mp3-id3", "MP3 with ID3v2 (cover art) and ID3v1 tags", "song.mp3", mp3_with_id3, PREDICTION),
    Case("ogg-vorbis", "Ogg/Vorbis", "speech.ogg", lambda: wav_bytes(clip(), SR, "VORBIS", "OGG"), PREDICTION),
    Case("opus", "Ogg/Opus", "speech.opus", lambda: wav_bytes(clip(), SR, "OPUS", "OGG"), PREDICTION),
    Case("m4a-aac", "M4A/AAC", "memo.m4a", lambda: pyav_bytes(clip(), SR, "ipod", "aac"), PREDICTION),
    Case("webm-opus", "WebM/Opus (browser recording)", "browser.webm",
         lambda: pyav_bytes(clip(), SR, "webm", "libopus"), PREDICTION),
    Case("mp4-video", "MP4 video: H.264 video + AAC audio", "clip.mp4", mp4_with_video, PREDICTION),
    Case("mp4-no-audio", "MP4 video without an audio track", "silent-film.mp4",
         lambda: mp4_with_video(audio=False), fails(NotAudioError)),
    Case("upper-case", "upper-case file name", PLAYLIST_TARGET, lambda: wav_bytes(clip(), SR), PREDICTION),
    Case("no-extension", "no file extension", "recording", lambda: wav_bytes(clip(), SR), PREDICTION),
    Case("missing", "a path that does not exist", "missing.wav", None, fails(AudioFileNotFoundError)),
    Case("too-long", f"12 s of audio, over a {CAP_S:.0f} s cap", "long.wav", lambda: wav_bytes(clip(12.0), SR),
         fails(AudioTooLongError)),
    Case("ogg-claims-hours", "Ogg whose header claims 3 h (2 s present)", "liar.ogg",
         lambda: ogg_claiming(3 * 3600), fails(AudioTooLongError)),
    Case("webm-claims-1s", "WebM whose header claims 1 s but holds 12 s (over the cap)", "liar.webm",
         lambda: webm_claiming(1.0, 12.0), fails(AudioTooLongError)),
    Case("too-large", f"5 MiB file, over a {CAP_BYTES // 2**20} MiB cap", "big.wav",
         lambda: wav_bytes(np.zeros(5 * 2**19, np.int16), SR), fails(AudioTooLargeError)),
    Case("ffconcat", "FFmpeg concat playlist naming a file on the server", "playlist.wav",
         lambda: f"ffconcat version 1.0\nfile '{PLAYLIST_TARGET}'\n".encode(), fails(NotAudioError)),
    Case("hls", "HLS playlist naming a file on the server", "stream.m3u8",
         lambda: f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{PLAYLIST_TARGET}\n#EXT-X-ENDLIST\n".encode(),
         fails(NotAudioError)),
]
IDS = [case.id for case in CASES]
assert len(set(IDS)) == len(IDS) and len({case.filename for case in CASES}) == len(CASES)


def markdown_table() -> str:
    rows = ["| case | ser_core | `ser predict` CLI |", "|---|---|---|"]
    rows += [f"| {case.what} | {case.expect.core} | {case.expect.cli} |" for case in CASES]
    return "\n".join(rows)


def write_catalogue(directory: Path) -> dict[str, Path]:
    """Every case's file in `directory` (the missing one is not written); id → path."""
    paths = {}
    for case in CASES:
        path = directory / case.filename
        if case.make is not None:
            path.write_bytes(case.make())
        paths[case.id] = path
    return paths


# --- ser_core level ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> dict[str, Path]:
    return write_catalogue(tmp_path_factory.mktemp("catalogue"))


@pytest.fixture(scope="module")
def model(trained_model):
    from ser_core.serving.inference import load_model

    return load_model(trained_model)


def refusal(model, source) -> SerError:
    """The sentence ser_core refuses `source` with: decoding it, or finding no voice in it."""
    with pytest.raises(SerError) as raised:
        model.analyze(source, limits=LIMITS)
    return raised.value


@pytest.fixture(scope="module")
def shipped_model():
    """What `make run` and `ser predict` serve: models/default (Whisper-base blocks in CTranslate2)."""
    from ser_core.serving.inference import load_model
    from ser_core.serving.shipped import resolve_model

    return load_model(resolve_model("default"))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_ser_core_answers(case, catalogue, model, monkeypatch):
    assert_answer(case, catalogue[case.id], model, monkeypatch)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_shipped_default_answers(case, catalogue, shipped_model, monkeypatch):
    assert_answer(case, catalogue[case.id], shipped_model, monkeypatch)


def assert_answer(case: Case, path: Path, model, monkeypatch) -> None:
    """The case's file gets the case's answer from `model`: its typed error, or probabilities (with
    the case's warning, or none)."""
    monkeypatch.chdir(path.parent)  # the playlists name a real file beside them: it must not be opened
    expect = case.expect
    if expect.kind == "error":
        with pytest.raises(SerError) as raised:
            model.analyze(path, limits=LIMITS)
        assert type(raised.value) is expect.error, f"{case.id}: {raised.value!r}"
        message = str(raised.value)
        assert "\n" not in message and len(message) < 200
        assert message.endswith((".", ")")) or isinstance(raised.value, AudioFileNotFoundError)
        return
    analysis = model.analyze(path, limits=LIMITS)
    probabilities = analysis.probabilities
    assert set(probabilities) == set(model.labels)
    assert abs(sum(probabilities.values()) - 1) < 1e-3
    assert np.all(np.isfinite(analysis.window_probabilities))
    assert analysis.audio.duration_s >= LIMITS.min_duration_s
    warnings = analysis.audio.warnings
    if expect.kind == "warning":
        assert any(expect.warning in w for w in warnings), warnings
    else:
        assert warnings == (), warnings


def test_bytes_and_file_objects_get_the_same_answer_as_paths(catalogue):
    """The app hands ser_core an uploaded file object, not a path."""
    for case in CASES:
        if case.make is None:
            continue
        data = catalogue[case.id].read_bytes()
        answers = []
        for source in (data, io.BytesIO(data)):
            try:
                answers.append(load_audio(source, limits=LIMITS).warnings)
            except SerError as error:
                answers.append(type(error))
        assert answers[0] == answers[1], case.id
        expected = case.expect.error if case.expect.kind == "error" else None
        # Only analysis (voice activity detection) finds that there is no voice.
        if expected is not None and expected not in (AudioFileNotFoundError, NoVoiceActivityError):
            assert answers[0] is expected, (case.id, answers[0])


# --- CLI level: one `ser predict` over the whole catalogue -----------------------------------------

@pytest.fixture(scope="module")
def cli_run(catalogue, trained_model):
    directory = next(iter(catalogue.values())).parent
    names = [catalogue[case.id].name for case in CASES]
    env = {**os.environ, **LIMITS_ENV, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "ser_core.cli", "predict", *names, "--json", "--model", str(trained_model)],
        cwd=directory, env=env, capture_output=True, text=True, timeout=600,
    )
    results = {row["file"]: row for row in json.loads(result.stdout)}
    return result, results, result.stderr.splitlines()


def test_cli_exits_nonzero_without_a_traceback_and_says_nothing_else(cli_run):
    result, _, lines = cli_run
    assert result.returncode == 1  # some files failed; the others still got their probabilities
    assert "Traceback" not in result.stderr
    names = [case.filename for case in CASES]
    strays = [line for line in lines if not any(line.startswith(f"{name}: ") for name in names)]
    assert strays == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cli_answers(case, cli_run, catalogue, model, monkeypatch):
    _, results, lines = cli_run
    name = case.filename
    mine = [line for line in lines if line.startswith(f"{name}: ")]
    expect = case.expect
    if expect.kind == "error":
        assert name not in results
        assert len(mine) == 1, mine
        monkeypatch.chdir(catalogue[case.id].parent)
        assert mine[0] == f"{name}: {refusal(model, name)}"  # the CLI prints exactly ser_core's sentence
        return
    row = results[name]
    assert set(row["probabilities"]) and abs(sum(row["probabilities"].values()) - 1) < 1e-3
    assert row["emotion"] == max(row["probabilities"], key=row["probabilities"].get)
    if expect.kind == "warning":
        assert mine and all(line.startswith(f"{name}: warning: ") for line in mine)
        assert any(expect.warning in line for line in mine)
    else:
        assert mine == []


if __name__ == "__main__":
    print(markdown_table())
