"""Decoding every supported format, and each typed error on the bad input that causes it."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import pyav_bytes, voice, wav_bytes
from ser_core.audio import AudioFileNotFoundError, AudioLimits, load_audio, to_mono_float32
from ser_core.errors import (
    AudioTooLargeError,
    AudioTooLongError,
    AudioTooShortError,
    NoSpeechError,
    NonFiniteAudioError,
    NotAudioError,
    SerError,
)

SR = 16000
CLIP = voice(2.0, SR)


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda x: wav_bytes(x, SR), id="wav"),
        pytest.param(lambda x: wav_bytes(x, SR, "PCM_16", "FLAC"), id="flac"),
        pytest.param(lambda x: wav_bytes(x, SR, "VORBIS", "OGG"), id="ogg-vorbis"),
        pytest.param(lambda x: wav_bytes(x, SR, "OPUS", "OGG"), id="opus"),
        pytest.param(lambda x: wav_bytes(x, SR, "MPEG_LAYER_III", "MP3"), id="mp3"),
        pytest.param(lambda x: pyav_bytes(x, SR, "ipod", "aac"), id="m4a-aac"),
        pytest.param(lambda x: pyav_bytes(x, SR, "webm", "libopus"), id="webm-opus"),
    ],
)
def test_every_format_decodes_to_mono_float32_at_the_model_rate(encode):
    audio = load_audio(encode(CLIP), sample_rate=SR)
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.sample_rate == SR
    # Codecs add padding/priming; the length must still be the clip's within 0.1 s.
    assert abs(audio.duration_s - 2.0) < 0.1
    # Lossy codecs keep the level: the RMS within 3 dB of the original.
    rms = lambda x: 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    assert abs(rms(audio.samples) - rms(CLIP)) < 3


def test_path_and_bytes_give_the_same_samples(tmp_path):
    path = tmp_path / "clip.WAV"
    path.write_bytes(wav_bytes(CLIP, SR))
    np.testing.assert_array_equal(load_audio(path).samples, load_audio(path.read_bytes()).samples)


def test_stereo_is_mixed_and_44k1_is_resampled():
    stereo = np.stack([voice(2.0, 44100), voice(2.0, 44100, seed=1)], axis=1)
    audio = load_audio(wav_bytes(stereo, 44100))
    assert audio.channels == 2 and audio.original_sample_rate == 44100
    assert len(audio.samples) == 2 * SR


def test_telephone_band_and_overs_are_warned_about():
    narrow = load_audio(wav_bytes(voice(2.0, 8000), 8000))
    assert any("telephone" in w for w in narrow.warnings)
    loud = load_audio(wav_bytes(CLIP * 18, SR, "FLOAT"))  # float WAV peaking at 1.8
    assert any("above full scale" in w for w in loud.warnings)
    assert np.max(np.abs(loud.samples)) <= 1.0 + 1e-3


@pytest.mark.parametrize(
    "data, error",
    [
        pytest.param(b"", AudioTooShortError, id="empty"),
        pytest.param(np.random.default_rng(0).bytes(4096), NotAudioError, id="random-bytes"),
        pytest.param(b"just some text, not audio\n" * 20, NotAudioError, id="text"),
        pytest.param(wav_bytes(voice(0.01, SR), SR), AudioTooShortError, id="10ms"),
        pytest.param(wav_bytes(np.zeros(3 * SR, np.float32), SR), NoSpeechError, id="digital-silence"),
        pytest.param(
            wav_bytes((np.random.default_rng(1).standard_normal(3 * SR) * 10 ** (-75 / 20)).astype(np.float32), SR, "FLOAT"),
            NoSpeechError, id="noise-at-minus-75dBFS",
        ),
        pytest.param(wav_bytes(np.where(np.arange(SR) % 100 == 0, np.nan, 0.1).astype(np.float32), SR, "FLOAT"),
                     NonFiniteAudioError, id="nan"),
    ],
)
def test_bad_input_raises_its_typed_error_with_a_sentence(data, error):
    with pytest.raises(error) as raised:
        load_audio(data)
    message = str(raised.value)
    assert isinstance(raised.value, SerError) and message.endswith((".", ")")) and "\n" not in message


def test_duration_cap_is_read_from_the_header_before_decoding():
    # 10 s of audio against a 5 s cap: refused without reading the samples.
    limits = AudioLimits(max_duration_s=5.0)
    with pytest.raises(AudioTooLongError):
        load_audio(wav_bytes(voice(10.0, SR), SR), limits=limits)
    with pytest.raises(AudioTooLongError):
        load_audio(pyav_bytes(voice(10.0, SR), SR, "webm", "libopus"), limits=limits)


def test_byte_cap_and_missing_path(tmp_path):
    with pytest.raises(AudioTooLargeError):
        load_audio(wav_bytes(CLIP, SR), limits=AudioLimits(max_bytes=1000))
    with pytest.raises(AudioFileNotFoundError):
        load_audio(tmp_path / "nope.wav")


def test_arrays_are_accepted_channels_first_or_last_and_as_integers():
    stereo = np.stack([CLIP, CLIP])
    a = to_mono_float32(stereo, SR, SR)
    b = to_mono_float32(stereo.T, SR, SR)
    c = to_mono_float32((CLIP * 32767).astype(np.int16), SR, SR)
    np.testing.assert_allclose(a.samples, b.samples)
    np.testing.assert_allclose(a.samples, c.samples, atol=1e-4)
