"""Which language a recording sounds like (`frontend.language`): the guess's rules without the
network, then Whisper's identification on real speech: a RAVDESS sentence (English, heard) from the
corpora, and sentences synthesised by espeak-ng in Italian and Spanish (never heard), through the
library, `ser predict --language` and the API's `language=true`. `.ci/run` installs espeak-ng."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import ROOT, missing  # noqa: E402

from ser_core.frontend.language import (CODES_OF_CORPUS, MAX_SPEECH_S, MIN_SPEECH_S, LanguageGuess,  # noqa: E402
                                        guess_file, guess_language, heard_codes, speech_of)
from ser_core.training.corpora import LANGUAGES  # noqa: E402
from ser_core.serving.shipped import resolve_model  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")  # as test_serve.py
SR = 16000
ITALIAN = "Il treno parte alle sette e saremo a casa prima di cena, se tutto va bene."
SPANISH = "El tren sale a las siete y estaremos en casa antes de la cena, si todo va bien."


def test_the_default_heard_seven_languages_and_their_whisper_codes():
    assert heard_codes(json.loads((resolve_model("default") / "metadata.json").read_text())) == {
        "en", "am", "pl", "tr", "ar", "hi", "bn"}
    assert heard_codes({}) is None  # not recorded: no warning can be given
    assert heard_codes({"data": {"train": {"per_corpus": {"ravdess": 10, "somebody-elses": 5}}}}) is None


def test_every_training_corpus_has_the_codes_of_its_language():
    # The serving side cannot import training.corpora: its own table must name the same corpora, and
    # give the corpora of one language the same codes.
    assert set(CODES_OF_CORPUS) == {corpus for members in LANGUAGES.values() for corpus in members}
    for members in LANGUAGES.values():
        assert len({CODES_OF_CORPUS[corpus] for corpus in members}) == 1


def test_too_little_speech_is_not_guessed_and_loads_nothing():
    guess = guess_language(np.zeros(int(SR * (MIN_SPEECH_S - 0.1)), np.float32), frozenset({"en"}),
                           identifier=object())  # never called: nothing is read under the minimum
    assert guess.code == "" and not guess.sure and not guess.unheard and guess.heard is None
    assert "not guessed" in guess.sentence()


@pytest.mark.parametrize("guess, sure, unheard, phrase", [
    (LanguageGuess("it", "Italian", 0.93, False, 4.0), True, True, "never heard"),
    (LanguageGuess("en", "English", 0.99, True, 4.0), True, False, "heard in training"),
    (LanguageGuess("it", "Italian", 0.31, False, 4.0), False, False, "unclear"),
    (LanguageGuess("it", "Italian", 0.93, None, 4.0), True, False, "Sounds like Italian (93%)."),
])
def test_only_a_sure_guess_of_a_language_never_heard_warns(guess, sure, unheard, phrase):
    assert guess.sure is sure and guess.unheard is unheard
    assert phrase in guess.sentence()
    assert guess.to_dict()["heard_in_training"] is guess.heard
    # Once a reading is adapted to a batch or a recording, the advice to do so is left out
    assert ("files together" in guess.sentence()) is guess.unheard and "files together" not in guess.sentence(True)
    # The same for naming the emotions the recordings can hold (the sidebar, --classes), the advice put first
    keep = "keeping only the emotions your recordings can hold helps most"
    assert (keep in guess.sentence()) is guess.unheard and keep not in guess.sentence(classes_named=True)
    if guess.unheard:
        assert guess.sentence().index(keep) < guess.sentence().index("files together")
        assert guess.sentence(True, True).endswith("far less so.") and "helps too" in guess.sentence()


@pytest.mark.parametrize("seconds", [1.5, 3.01, 29.99, 40.0])
def test_the_log_mel_is_that_of_the_speech_padded_to_thirty_seconds(seconds):
    from ser_core.frontend.features import compute
    from ser_core.frontend.language import LOG_MEL, whisper_log_mel

    speech = (np.random.default_rng(0).standard_normal(int(seconds * SR)) * 0.1).astype(np.float32)
    padded = np.zeros(LOG_MEL.window_samples, np.float32)
    padded[: min(len(speech), len(padded))] = speech[: len(padded)]
    ours = whisper_log_mel(speech)
    assert ours.shape[1] % 2 == 0 and ours.shape[1] >= min(seconds, MAX_SPEECH_S) * SR / LOG_MEL.hop_length
    np.testing.assert_allclose(ours, compute(padded[None], LOG_MEL)[0, :, : ours.shape[1]], atol=1e-6)


def test_speech_is_the_regions_joined_up_to_thirty_seconds():
    samples = np.arange(60 * SR, dtype=np.float32)
    speech = speech_of(samples, [(1.0, 2.0), (5.0, 5.5)])
    assert np.array_equal(speech, np.concatenate([samples[SR : 2 * SR], samples[5 * SR : int(5.5 * SR)]]))
    assert len(speech_of(samples, [(0.0, 20.0), (25.0, 45.0), (50.0, 55.0)])) == MAX_SPEECH_S * SR
    assert len(speech_of(samples, [])) == 0


def test_an_english_sentence_sounds_like_english_a_language_heard(corpora):
    clip = next((corpora / "ravdess").rglob("03-01-01-01-01-01-*.*"))
    guess = guess_file(clip, frozenset({"en", "pl"}))
    assert guess.code == "en" and guess.sure and guess.heard is True and not guess.unheard


@pytest.fixture(scope="module")
def synthesised(tmp_path_factory) -> dict[str, Path]:
    if shutil.which("espeak-ng") is None:
        missing("espeak-ng is not installed (apt-get install espeak-ng; .ci/run installs it)")
    folder = tmp_path_factory.mktemp("speech")
    out = {}
    for code, text in (("it", ITALIAN), ("es", SPANISH)):
        out[code] = folder / f"{code}.wav"
        subprocess.run(["espeak-ng", "-v", code, "-w", str(out[code]), text], check=True, capture_output=True)
    return out


@pytest.mark.parametrize("code", ["it", "es"])
def test_a_language_never_heard_is_named_and_warned_about(synthesised, code):
    guess = guess_file(synthesised[code], frozenset({"en", "pl"}))
    assert guess.code == code and guess.unheard
    assert "never heard" in guess.sentence()


def test_ser_predict_language_reports_and_warns(synthesised):
    run = subprocess.run([sys.executable, "-m", "ser_core.cli", "predict", str(synthesised["it"]), "--language", "--json"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    (result,) = json.loads(run.stdout)
    assert result["language"]["code"] == "it" and result["language"]["heard_in_training"] is False
    assert "warning: Sounds like Italian" in run.stderr and "never heard" in run.stderr
    assert "emotions your recordings can hold" in run.stderr
    named = subprocess.run([sys.executable, "-m", "ser_core.cli", "predict", str(synthesised["it"]), "--language",
                            "--classes", "angry,happy,sad,neutral"], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "never heard" in named.stderr and "emotions your recordings can hold" not in named.stderr  # advice taken
    csv = subprocess.run([sys.executable, "-m", "ser_core.cli", "predict", str(synthesised["it"]), "--language", "--csv",
                          "--segments"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    header, row = csv.stdout.splitlines()[:2]
    assert header.endswith("language,language_probability,language_heard_in_training")
    assert row.split(",")[-3] == "it" and row.endswith("False")


def test_ser_predict_language_guesses_from_each_files_own_analysis(synthesised, monkeypatch, capsys):
    """A few files are read in this process by one worker anyway: the guess reads each file's analysis,
    never decoding the file a second time."""
    import ser_core.frontend.language
    from ser_core.cli import main

    def decoded_again(*_):
        raise AssertionError("the file was decoded a second time for its language")

    monkeypatch.setattr(ser_core.frontend.language, "guess_file", decoded_again)
    assert main(["predict", str(synthesised["it"]), str(synthesised["es"]), "--language", "--json"]) == 0
    assert [r["language"]["code"] for r in json.loads(capsys.readouterr().out)] == ["it", "es"]


def test_the_api_says_the_language_when_asked(synthesised):
    from test_serve import client_for

    client = client_for()
    try:
        data = synthesised["es"].read_bytes()
        plain = client.post("/v1/analyze?filename=es.wav", content=data).json()
        asked = client.post("/v1/analyze?filename=es.wav&language=true", content=data).json()
    finally:
        client.__exit__(None, None, None)
    assert "language" not in plain
    assert asked["language"]["code"] == "es" and asked["language"]["sure"]
