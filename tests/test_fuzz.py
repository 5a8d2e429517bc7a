"""Property tests: whatever comes in, decode → features → predict ends in a result or a SerError.

Arbitrary bytes, and valid WAV/FLAC/Ogg/MP3/M4A/WebM files with their bytes mutated (header fields
overwritten, cut short, spliced), go through `load_audio` and the model. Anything but a prediction
or a `ser_core.errors.SerError` is a bug. `bench/fuzz_decode.py` (atheris, `make fuzz`) fuzzes the
decoder far longer; every crash it finds becomes a case in `REGRESSIONS` below.
"""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import pyav_bytes, speech, wav_bytes
from ser_core.errors import SerError
from ser_core.io.audio import AudioLimits, load_audio, to_mono_float32

SR = 16000
# Mutated headers can claim anything: keep each example cheap, as `make fuzz` does.
LIMITS = AudioLimits(max_duration_s=30.0, max_decode_s=5.0)
FUZZ = settings(
    deadline=timedelta(seconds=10),  # generous: the machine is shared; a hang still fails
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def seed_files() -> dict[str, bytes]:
    """Small valid files of every format ser_core reads (0.4 s, so that they decode)."""
    x8, x16 = speech(0.4, 8000), speech(0.4, SR)
    return {
        "wav": wav_bytes(x8, 8000),
        "wav-float": wav_bytes(x16, SR, "FLOAT"),
        "flac": wav_bytes(x16, SR, "PCM_16", "FLAC"),
        "ogg": wav_bytes(x16, SR, "VORBIS", "OGG"),
        "opus": wav_bytes(x16, SR, "OPUS", "OGG"),
        "mp3": wav_bytes(x16, SR, "MPEG_LAYER_III", "MP3"),
        "m4a": pyav_bytes(x16, SR, "ipod", "aac", rate=16000),
        "webm": pyav_bytes(x16, SR, "webm", "libopus"),
    }


SEEDS = seed_files()

# Inputs that once escaped as something other than a SerError (found by `make fuzz` or by the
# properties below), each with what went wrong. They must give an answer now.
REGRESSIONS = {
    # A FLAC stream without its sample count made libsndfile report SF_COUNT_MAX frames: refused as
    # "too long: 9607679205057 min" although it was 0.4 s (now counted while decoding).
    "flac-without-length": bytes(SEEDS["flac"][:21]) + bytes([SEEDS["flac"][21] & 0xF0]) + bytes(4) + SEEDS["flac"][26:],
}


@pytest.fixture(scope="module")
def model(trained_model):
    from ser_core.serving.inference import load_model

    model = load_model(trained_model)
    model.analyze_audio(load_audio(SEEDS["wav"]), segmented=False)  # librosa's first call compiles (numba): not a deadline
    return model


def answer(model, data: bytes):
    """The whole pipeline on `data`: an Analysis, or the SerError it raised. Anything else fails."""
    try:
        audio = load_audio(data, model.params.sample_rate, limits=LIMITS)
    except SerError as error:
        message = str(error)
        assert message and "\n" not in message and "Traceback" not in message
        return error
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert np.all(np.isfinite(audio.samples)) and audio.duration_s <= LIMITS.max_duration_s + 1
    try:
        analysis = model.analyze_audio(audio)
    except SerError as error:  # no voice found in it
        assert str(error).startswith("No speech found")
        return error
    p = analysis.window_probabilities
    assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1, atol=1e-3)
    return analysis


@st.composite
def mutated(draw) -> bytes:
    """A seed file with 1-6 edits, biased towards the header where the parsers' decisions live."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.one_of(st.integers(0, min(len(data), 96) - 1), st.integers(0, len(data) - 1)))
        edit = draw(st.sampled_from(["byte", "word", "truncate", "insert", "delete", "duplicate"]))
        if edit == "byte":
            data[at] = draw(st.integers(0, 255))
        elif edit == "word":  # a 32-bit size, count or rate field set to an extreme
            value = draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, draw(st.integers(0, 2**32 - 1))]))
            data[at : at + 4] = value.to_bytes(4, draw(st.sampled_from(["little", "big"])))
        elif edit == "truncate":
            del data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 256))]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 2048))]
    return bytes(data)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_seed_is_valid_audio(model, name):
    assert not isinstance(answer(model, SEEDS[name]), SerError)


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regressions(model, name):
    answer(model, REGRESSIONS[name])


@settings(FUZZ, max_examples=400)
@given(data=st.one_of(st.binary(max_size=2048), st.binary(min_size=2048, max_size=65536)))
def test_arbitrary_bytes_give_a_result_or_a_ser_error(model, data):
    answer(model, data)


@settings(FUZZ, max_examples=600)
@given(data=mutated())
def test_mutated_audio_files_give_a_result_or_a_ser_error(model, data):
    answer(model, data)


@settings(FUZZ, max_examples=300)
@given(
    prefix=st.sampled_from([b"RIFF\xff\xff\xff\xffWAVEfmt ", b"fLaC", b"OggS\x00\x02", b"ID3\x03\x00\x00",
                            b"\x1a\x45\xdf\xa3", b"\x00\x00\x00\x20ftypM4A ", b"\xff\xfb", b"\xff\xf1",
                            b"#!AMR\n", b"caff", b".snd", b"FORM\x00\x00\x00\x00AIFF"]),
    rest=st.binary(max_size=4096),
)
def test_known_signatures_followed_by_garbage(model, prefix, rest):
    """Each signature sends the bytes to a particular parser: garbage after it must not escape."""
    answer(model, prefix + rest)


@settings(FUZZ, max_examples=150)
@given(
    samples=hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64, np.int16, np.int32, np.uint8, np.float16]),
        shape=st.one_of(
            st.tuples(st.integers(0, 20000)),  # mono
            st.tuples(st.integers(0, 9000), st.integers(0, 8)),  # frames × channels
            st.tuples(st.integers(0, 8), st.integers(0, 9000)),  # channels × frames (librosa)
            hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=8),  # odd layouts
        ),
    ),
    rate=st.one_of(st.sampled_from([8000, 16000, 22050, 44100, 48000]), st.integers(-10, 10**6)),
)
def test_arrays_give_a_result_or_a_ser_error(model, samples, rate):
    """The microphone path hands ser_core arrays, not bytes."""
    try:
        audio = to_mono_float32(samples, rate, model.params.sample_rate, limits=LIMITS)
    except SerError:
        return
    try:
        analysis = model.analyze_audio(audio)
    except SerError as error:  # no voice found in it
        assert str(error).startswith("No speech found")
        return
    assert np.all(np.isfinite(analysis.window_probabilities))


def test_the_file_object_path_matches_bytes(model):
    for data in SEEDS.values():
        a, b = load_audio(data), load_audio(io.BytesIO(data))
        np.testing.assert_array_equal(a.samples, b.samples)
