"""Waveform perturbations: what microphones, rooms, phone lines and codecs do to a voice.

The same functions serve two purposes: random chains of them augment training clips (`augment`),
and fixed settings of them are the test conditions of `ser evaluate --perturb` (`PERTURBATIONS`).
Every function takes and returns mono float32 at `sr`, the same length as its input, except
`cut_at_speech`, which keeps the clip's speech and a little of what surrounds it, as a long
recording's segment holds a sentence. Each kind of training copy has its name in `COPIES`.

(audiomentations would be the library for this, but its 0.43 release pins soxr < 1.0 and ser pins
soxr 1.1; the few transforms needed are written here with scipy and PyAV.)
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np

from ..io.levels import active_level_dbfs

INT16_FULL_SCALE = 32768.0


def gain(samples: np.ndarray, db: float) -> np.ndarray:
    """Scale by `db`, then clip and quantise to 16 bits, as a microphone set too low or too hot
    would deliver it: a quiet recording loses resolution, a loud one clips."""
    scaled = np.clip(samples * 10.0 ** (db / 20.0), -1.0, (INT16_FULL_SCALE - 1) / INT16_FULL_SCALE)
    return (np.round(scaled * INT16_FULL_SCALE) / INT16_FULL_SCALE).astype(np.float32)


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power ∝ 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    noise = np.fft.irfft(spectrum / f ** (exponent / 2.0), n)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def add_noise(samples: np.ndarray, sr: int, snr_db: float, rng: np.random.Generator, exponent: float = 1.0) -> np.ndarray:
    """Noise at `snr_db` below the active speech level (pauses do not count as speech)."""
    speech_db = float(active_level_dbfs(samples[None, :], sr)[0])
    noise = coloured_noise(len(samples), exponent, rng) * 10.0 ** ((speech_db - snr_db) / 20.0)
    return (samples + noise).astype(np.float32)


def spectral_tilt(samples: np.ndarray, sr: int, db_per_octave: float, bump_hz: float = 0.0, bump_db: float = 0.0) -> np.ndarray:
    """A microphone's colour: a tilt around 1 kHz plus one broad resonance (one octave wide)."""
    spectrum = np.fft.rfft(samples)
    f = np.maximum(np.fft.rfftfreq(len(samples), 1.0 / sr), 20.0)
    octaves = np.log2(f / 1000.0)
    response_db = db_per_octave * octaves
    if bump_hz > 0:
        response_db = response_db + bump_db * np.exp(-0.5 * (np.log2(f / bump_hz) / 0.5) ** 2)
    return np.fft.irfft(spectrum * 10.0 ** (response_db / 20.0), len(samples)).astype(np.float32)


def reverb(samples: np.ndarray, sr: int, rt60_s: float, rng: np.random.Generator, direct_to_reverb_db: float = 0.0) -> np.ndarray:
    """A room: exponentially decaying noise (60 dB down after `rt60_s`) behind the direct sound."""
    from scipy.signal import fftconvolve

    n = max(int(rt60_s * sr), 1)
    tail = rng.standard_normal(n) * np.exp(-6.9078 * np.arange(n) / n)  # ln(1000) = 60 dB in amplitude
    tail *= 10.0 ** (-direct_to_reverb_db / 20.0) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    tail[0] = 1.0
    wet = fftconvolve(samples, tail)[: len(samples)]
    return (wet * np.sqrt(np.mean(samples**2) / (np.mean(wet**2) + 1e-20))).astype(np.float32)


def telephone(samples: np.ndarray, sr: int) -> np.ndarray:
    """A narrow-band phone line: 300-3400 Hz, sampled at 8 kHz and back."""
    import soxr
    from scipy.signal import butter, sosfilt

    band = sosfilt(butter(4, (300.0, 3400.0), btype="bandpass", fs=sr, output="sos"), samples)
    narrow = soxr.resample(band.astype(np.float32), sr, 8000)
    return _same_length(soxr.resample(narrow, 8000, sr), len(samples))


CODECS = {"opus": ("ogg", "libopus"), "mp3": ("mp3", "libmp3lame")}


def codec(samples: np.ndarray, sr: int, name: str, bitrate: int) -> np.ndarray:
    """Encoded with `name` (opus or mp3) at `bitrate` bit/s by FFmpeg (PyAV), and decoded again."""
    import av

    from ..io.audio import load_audio

    container_format, encoder = CODECS[name]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(encoder, rate=sr, layout="mono")
        stream.bit_rate = bitrate
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = sr
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    decoded = load_audio(buffer.getvalue(), sr, check_speech=False).samples
    return _same_length(decoded, len(samples))


def _same_length(samples: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, len(samples))] = samples[:n]
    return out


Perturbation = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

# The test conditions of `ser evaluate --perturb` (bench/compare_models.py reports each).
PERTURBATIONS: dict[str, Perturbation] = {
    "gain-30dB": lambda x, sr, rng: gain(x, -30.0),
    "gain-18dB": lambda x, sr, rng: gain(x, -18.0),
    "gain-6dB": lambda x, sr, rng: gain(x, -6.0),
    "gain+6dB": lambda x, sr, rng: gain(x, 6.0),
    "noise-20dB": lambda x, sr, rng: add_noise(x, sr, 20.0, rng),
    "noise-10dB": lambda x, sr, rng: add_noise(x, sr, 10.0, rng),
    "noise-5dB": lambda x, sr, rng: add_noise(x, sr, 5.0, rng),
    "telephone": lambda x, sr, rng: telephone(x, sr),
    "opus-16k": lambda x, sr, rng: codec(x, sr, "opus", 16000),
    "mp3-16k": lambda x, sr, rng: codec(x, sr, "mp3", 16000),
    "reverb": lambda x, sr, rng: reverb(x, sr, 0.6, rng),
}


def augment(samples: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One random chain for training: each step with its own probability and random strength, in
    the order sound meets them (voice → room → microphone → noise → line or codec → level)."""
    x = samples
    if rng.random() < 0.3:
        x = reverb(x, sr, rng.uniform(0.2, 0.9), rng, direct_to_reverb_db=rng.uniform(-3.0, 6.0))
    if rng.random() < 0.5:
        x = spectral_tilt(x, sr, rng.uniform(-3.0, 3.0), rng.uniform(200.0, 5000.0), rng.uniform(-9.0, 9.0))
    if rng.random() < 0.5:
        x = add_noise(x, sr, rng.uniform(3.0, 30.0), rng, exponent=rng.uniform(0.0, 2.0))
    step = rng.random()
    if step < 0.12:
        x = telephone(x, sr)
    elif step < 0.24:
        x = codec(x, sr, str(rng.choice(list(CODECS))), int(rng.choice([12000, 16000, 24000, 32000])))
    if rng.random() < 0.5:
        x = gain(x, rng.uniform(-36.0, 8.0))
    return x.astype(np.float32)


SPEECH_CUT_MARGIN_S = 0.4  # the most of a clip's own audio kept beyond its speech, on either side


def cut_at_speech(samples: np.ndarray, sr: int, rng: np.random.Generator, max_margin_s: float = SPEECH_CUT_MARGIN_S,
                  vad=None) -> np.ndarray:
    """The clip from the start of its first to the end of its last speech region (the detector's, padded
    as served: `frontend.vad.find_regions`), widened on either side by a random 0-`max_margin_s` of
    its own audio as far as it goes: a sentence as a long recording's segment holds it. The heads
    learned from acted clips with their own quiet around each sentence, and read the same clips cut
    at their speech worse (bench/results/segments.md: 76.0 UAR as files, 68.0 cut at their speech).
    A clip in which no speech is found is kept whole."""
    from ..frontend.vad import find_regions
    from ..io.audio import Audio

    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    [regions] = find_regions([Audio(samples, sr, sr, 1, peak, 0.0)], vad=vad)
    if not regions:
        return samples
    before, after = rng.uniform(0.0, max_margin_s, 2)
    start = max(0, round((regions[0][0] - before) * sr))
    end = min(len(samples), round((regions[-1][1] + after) * sr))
    return samples[start:end]


VOICE_SHIFT_SEMITONES = (1.0, 3.0)  # the least and most a voice copy is moved, up or down


def voice_shift(samples: np.ndarray, sr: int, rng: np.random.Generator,
                semitones: tuple[float, float] = VOICE_SHIFT_SEMITONES) -> np.ndarray:
    """The clip as another voice might say it: pitch and formants moved together by a random
    `semitones` up or down (a larger or smaller vocal tract and a lower or higher voice), its timing
    kept (a phase-vocoder stretch, then a resampling: librosa's pitch shift). Speaking rate carries
    emotion, so it is not touched; the corpora hold few voices (TESS two, SAVEE four)."""
    import librosa

    steps = float(rng.uniform(*semitones)) * (1.0 if rng.random() < 0.5 else -1.0)
    shifted = librosa.effects.pitch_shift(np.asarray(samples, np.float32), sr=sr, n_steps=steps, res_type="soxr_hq")
    return _same_length(shifted, len(samples))


# Each kind of randomly perturbed training copy by its name, which keys its embedding cache
# (`embeddings.embedding_cache`): a random chain of perturbations, the clip cut at its speech, or
# the clip in a shifted voice.
COPIES: dict[str, Perturbation] = {"augment": augment, "speechcut": cut_at_speech, "voice": voice_shift}
