"""Decoding every supported format, and each typed error on the bad input that causes it."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import pyav_bytes, voice, wav_bytes
from ser_core.io.audio import AudioFileNotFoundError, AudioLimits, decode, load_audio, to_mono_float32
from ser_core.errors import (AudioTooLargeError, AudioTooLongError, AudioTooShortError, ConfigError,
    DecodeTimeoutError, NoSpeechError, NonFiniteAudioError, NotAudioError, SerError)

SR = 16000
CLIP = voice(2.0, SR)
ENCODERS = [  # every supported format, made in memory
    pytest.param(lambda x: wav_bytes(x, SR), id="wav"),
    pytest.param(lambda x: wav_bytes(x, SR, "PCM_16", "FLAC"), id="flac"),
    pytest.param(lambda x: wav_bytes(x, SR, "VORBIS", "OGG"), id="ogg-vorbis"),
    pytest.param(lambda x: wav_bytes(x, SR, "OPUS", "OGG"), id="opus"),
    pytest.param(lambda x: wav_bytes(x, SR, "MPEG_LAYER_III", "MP3"), id="mp3"),
    pytest.param(lambda x: pyav_bytes(x, SR, "ipod", "aac"), id="m4a-aac"),
    pytest.param(lambda x: pyav_bytes(x, SR, "webm", "libopus"), id="webm-opus"),
]


@pytest.mark.parametrize("encode", ENCODERS)
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


@pytest.mark.parametrize("encode", [pytest.param(lambda x: wav_bytes(x, 44100), id="wav"),
                                    pytest.param(lambda x: pyav_bytes(x, 44100, "ipod", "aac"), id="m4a-aac")])
def test_long_audio_is_resampled_as_it_decodes_like_all_at_once(encode):
    """Several streaming blocks (soundfile and PyAV paths) give what one-shot resampling gives."""
    import soxr

    from ser_core.io.audio import STREAM_BLOCK_SAMPLES

    source = voice(4 * STREAM_BLOCK_SAMPLES / 44100 + 0.3, 44100)
    data = encode(source)
    decoded, rate, _ = decode(data)
    streamed = load_audio(data, SR).samples
    at_once = soxr.resample(decoded[:, 0], rate, SR, quality="HQ")
    assert len(streamed) == len(at_once)
    np.testing.assert_allclose(streamed, at_once, atol=1e-4)


def test_telephone_band_and_overs_are_warned_about():
    narrow = load_audio(wav_bytes(voice(2.0, 8000), 8000))
    assert any("telephone" in w for w in narrow.warnings)
    loud = load_audio(wav_bytes(CLIP * 18, SR, "FLOAT"))  # float WAV peaking at 1.8
    assert any("above full scale" in w for w in loud.warnings)
    assert np.max(np.abs(loud.samples)) <= 1.0 + 1e-3
    # Beyond full scale is not clipped: a float file or array peaking at 1.8 (or holding integer-scale
    # values) was never cut at 1.0, so only samples at its own peak would be clipping.
    assert not any("clipped" in w for w in loud.warnings)
    assert not any("clipped" in w for w in to_mono_float32(CLIP * 30000, SR, SR).warnings)
    flat_topped = np.clip(CLIP * 40, -1.5, 1.5)  # clipped at its own ceiling, 1.5
    assert any("clipped" in w for w in to_mono_float32(flat_topped, SR, SR).warnings)


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


def test_a_dc_offset_is_taken_out_and_said():
    plain = to_mono_float32(CLIP, SR, SR)
    offset = to_mono_float32(CLIP + 0.3, SR, SR)
    np.testing.assert_allclose(offset.samples, plain.samples - plain.samples.mean(), atol=1e-5)
    assert any("+0.30 off zero" in w for w in offset.warnings)
    assert not any("full scale" in w for w in offset.warnings)  # the offset, not the voice, ran past 1.0
    mild = to_mono_float32(CLIP + 0.04, SR, SR)  # as SAVEE's clips, which the models learned
    np.testing.assert_allclose(mild.samples, CLIP + 0.04, atol=1e-6)
    assert mild.warnings == ()


def test_byte_cap_and_missing_path(tmp_path):
    with pytest.raises(AudioTooLargeError):
        load_audio(wav_bytes(CLIP, SR), limits=AudioLimits(max_bytes=1000))
    with pytest.raises(AudioFileNotFoundError):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(NotAudioError, match="is a folder"):
        load_audio(tmp_path)
    with pytest.raises(TypeError, match="path, bytes or a binary file object.*not a value of type tuple"):
        load_audio((CLIP, SR))


def test_arrays_are_accepted_channels_first_or_last_and_as_integers():
    stereo = np.stack([CLIP, CLIP])
    a = to_mono_float32(stereo, SR, SR)
    b = to_mono_float32(stereo.T, SR, SR)
    c = to_mono_float32((CLIP * 32767).astype(np.int16), SR, SR)
    np.testing.assert_allclose(a.samples, b.samples)
    np.testing.assert_allclose(a.samples, c.samples, atol=1e-4)


# --- Limits: bytes, duration (from the header, and again while decoding), decode time ---------------

LONG = voice(10.0, SR)
CAP = AudioLimits(max_duration_s=5.0)


def _mp4_durations_scaled(data: bytes, factor: float) -> bytes:
    """Scale the mvhd/mdhd/tkhd durations of an MP4 (version 0 boxes), leaving the samples alone."""
    import struct

    data = bytearray(data)
    for box, skip in ((b"mvhd", 12), (b"mdhd", 12), (b"tkhd", 16)):  # bytes before the duration
        at = data.find(box)
        assert at > 0 and data[at + 4] == 0
        offset = at + 4 + 4 + skip  # version/flags, creation, modification[, timescale | track id, reserved]
        (old,) = struct.unpack(">I", data[offset : offset + 4])
        data[offset : offset + 4] = struct.pack(">I", int(old * factor))
    return bytes(data)


@pytest.mark.parametrize("encode", ENCODERS)
def test_duration_cap_is_read_from_every_formats_header(encode):
    with pytest.raises(AudioTooLongError) as raised:
        load_audio(encode(LONG), limits=CAP)
    # "10.0 s, at most 5.0 s": the whole length was known, so the header said it before any decoding.
    assert "10.0 s, at most 5.0 s allowed" in str(raised.value)


def test_headers_that_lie_cannot_get_past_the_cap():
    from test_catalogue import flac_without_length, ogg_claiming, webm_claiming

    # Claims 1 s, holds 10 s: the decoded-sample count stops it at the cap.
    liars = {
        "webm": lambda: webm_claiming(1.0, 10.0),
        "m4a": lambda: _mp4_durations_scaled(pyav_bytes(LONG, SR, "ipod", "aac"), 0.1),
    }
    for name, make in liars.items():
        with pytest.raises(AudioTooLongError, match="longer than the 5.0 s allowed"):
            load_audio(make(), limits=CAP)
    # No length in the header at all (a FLAC written to a pipe): counted while decoding too.
    with pytest.raises(AudioTooLongError, match="longer than the"):
        load_audio(flac_without_length(), limits=AudioLimits(max_duration_s=1.0))
    # Claims hours: refused from the header, nothing decoded.
    with pytest.raises(AudioTooLongError, match="too long: 3 h, at most"):
        load_audio(ogg_claiming(3 * 3600), limits=CAP)
    # libsndfile reads no further than the length its header gives, whatever follows it.
    short = load_audio(ogg_claiming(1.0))
    assert short.duration_s <= 1.01


def test_decoding_stops_at_the_time_bound_in_both_decoders():
    instant = AudioLimits(max_decode_s=1e-9)
    for data in (wav_bytes(CLIP, SR), pyav_bytes(CLIP, SR, "webm", "libopus")):  # soundfile, PyAV
        with pytest.raises(DecodeTimeoutError) as raised:
            load_audio(data, limits=instant)
        assert str(raised.value).startswith("Decoding was stopped after 1e-09 s")
    assert load_audio(wav_bytes(CLIP, SR)).duration_s == pytest.approx(2.0)  # the default bound is ample


def test_limits_can_be_set_from_the_environment():
    limits = AudioLimits.from_env({"SER_MAX_BYTES": "1000", "SER_MAX_DURATION_S": "30", "SER_MAX_DECODE_S": "5"})
    assert (limits.max_bytes, limits.max_duration_s, limits.max_decode_s) == (1000, 30.0, 5.0)
    assert AudioLimits.from_env({}) == AudioLimits()
    for bad in ("abc", "-1", "0", "nan", "inf"):
        with pytest.raises(ConfigError, match="SER_MAX_DURATION_S must be a positive number"):
            AudioLimits.from_env({"SER_MAX_DURATION_S": bad})


def test_byte_cap_applies_to_file_objects_and_to_decode():
    import io

    data = wav_bytes(CLIP, SR)
    limits = AudioLimits(max_bytes=1000)
    for source in (io.BytesIO(data), bytearray(data)):
        with pytest.raises(AudioTooLargeError):
            load_audio(source, limits=limits)
    with pytest.raises(AudioTooLargeError):
        decode(data, limits)


def test_ffmpeg_never_opens_a_file_named_inside_the_input(tmp_path, monkeypatch):
    """Before: a 40-byte FFmpeg concat playlist made the server decode a file beside it."""
    (tmp_path / "secret.wav").write_bytes(wav_bytes(CLIP, SR))
    monkeypatch.chdir(tmp_path)
    for playlist in (b"ffconcat version 1.0\nfile 'secret.wav'\n",
                     b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nsecret.wav\n#EXT-X-ENDLIST\n"):
        with pytest.raises(NotAudioError):
            load_audio(playlist)


def test_decode_mixes_down_in_blocks_and_keeps_the_channel_count():
    samples, rate, channels = decode(wav_bytes(np.stack([CLIP, -CLIP, CLIP], axis=1), SR))
    assert samples.shape == (len(CLIP), 1) and rate == SR and channels == 3
    np.testing.assert_allclose(samples[:, 0], CLIP / 3, atol=1e-4)


def test_integer_full_scale_is_one_and_unplausible_rates_are_refused():
    full = np.tile(np.array([-32768, 32767], np.int16), SR)
    audio = to_mono_float32(full, SR, SR)
    assert audio.peak == 1.0 and not any("above full scale" in w for w in audio.warnings)
    centred = to_mono_float32(np.full(SR, 128, np.uint8), SR, SR, check_speech=False)
    assert np.all(centred.samples == 0)
    for rate in (0, 10, 10**7):
        with pytest.raises(NotAudioError):
            to_mono_float32(CLIP, rate, SR)
    with pytest.raises(NotAudioError):
        load_audio(wav_bytes(voice(2.0, 500), 500))


def test_errors_survive_pickling_for_worker_processes():
    import pickle

    from ser_core.errors import ModelError
    from ser_core.io.audio import AudioFileNotFoundError

    errors = [NotAudioError("x"), AudioTooShortError(0.1, 0.25), AudioTooLongError(12, 10), AudioTooLargeError(5, 4),
              DecodeTimeoutError(3), NonFiniteAudioError(), NoSpeechError(-70, -60), ConfigError("bad"),
              AudioFileNotFoundError("a.wav"), ModelError("m")]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and copy.__dict__ == error.__dict__
