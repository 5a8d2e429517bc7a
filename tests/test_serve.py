"""`ser serve` through Starlette's test client: the analysis JSON (the CLI's segment rows), the
bad-input catalogue against the API, limits, keys, CORS, logs, the live stream, and the schema.
One test runs the real command under uvicorn (start, analyze, stream, stop).

Every test serves the shipped seed-cnn-speaker model (LiteRT, loads in well under a second): what
is tested here is the service, not a model's accuracy."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import ROOT, speech, wav_bytes  # noqa: E402
from test_catalogue import CASES, IDS, LIMITS  # noqa: E402

from ser_core.errors import AudioTooLargeError, AudioTooLongError, SerError  # noqa: E402
from ser_core.serving.http import (  # noqa: E402
    MAX_BATCH_FILES, OPENAPI, ModelRegistry, ServeConfig, create_app)
from ser_core.serving.pool import AnalysisPool  # noqa: E402
from ser_core.serving.results import arousal  # noqa: E402
from ser_core.serving.segments import MAX_SPEAKERS  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")  # httpx2 is not out yet
MODEL = "seed-cnn-speaker"
CONFIG = ServeConfig(model=MODEL, workers=2, limits=LIMITS)
SR = 16000


def client_for(config: ServeConfig = CONFIG, wait_ready: bool = True):
    from starlette.testclient import TestClient

    client = TestClient(create_app(config), raise_server_exceptions=False)
    client.__enter__()
    deadline = time.monotonic() + 60
    while wait_ready and client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.1)
    return client


@pytest.fixture(scope="module")
def client():
    client = client_for()
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def clip_wav() -> bytes:
    return wav_bytes(speech(3.0, SR), SR)


@pytest.fixture(scope="module")
def model():
    from ser_core.serving.inference import load_model

    return load_model(ROOT / "models" / MODEL)


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "model": MODEL}


def test_raw_body_and_multipart_get_the_same_answer(client, clip_wav):
    raw = client.post("/v1/analyze?filename=clip.wav", content=clip_wav)
    form = client.post("/v1/analyze", files={"file": ("clip.wav", clip_wav, "audio/wav")})
    assert raw.status_code == form.status_code == 200
    assert raw.json() == form.json()
    body = raw.json()
    assert body["file"] == "clip.wav" and body["model"] == MODEL
    assert body["emotion"] == max(body["probabilities"], key=body["probabilities"].get)
    assert body["confidence"] == body["probabilities"][body["emotion"]]
    assert isinstance(body["uncertain"], bool) and body["warnings"] == []
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-3
    assert raw.headers["x-request-id"]


def ser_predict(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ser_core.cli", "predict", *arguments, "--model", MODEL], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_segments_are_the_rows_of_ser_predict_json_segments(client, clip_wav, tmp_path):
    (tmp_path / "clip.wav").write_bytes(clip_wav)
    cli = ser_predict("clip.wav", "--json", "--segments", cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    api = client.post("/v1/analyze?filename=clip.wav", content=clip_wav).json()
    assert api["segments"] == json.loads(cli.stdout)
    without = client.post("/v1/analyze?segments=false", content=clip_wav).json()
    assert "segments" not in without and without["probabilities"] == api["probabilities"]


def test_classes_renormalise_as_ser_predict_classes(client, clip_wav, tmp_path):
    (tmp_path / "clip.wav").write_bytes(clip_wav)
    cli = ser_predict("clip.wav", "--json", "--segments", "--classes", "Angry, happy,sad,neutral", cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    full = client.post("/v1/analyze?filename=clip.wav", content=clip_wav).json()
    api = client.post("/v1/analyze?filename=clip.wav&classes=Angry,%20happy,sad,neutral", content=clip_wav).json()
    assert list(api["probabilities"]) == ["neutral", "happy", "sad", "angry"]  # the model's order
    # The answers' probabilities have 6 digits; divided by the kept share their rounding grows to about 1e-5
    # (so do the CLI's rows, which it renormalises after rounding).
    kept = {label: full["probabilities"][label] for label in api["probabilities"]}
    assert api["probabilities"] == pytest.approx({k: p / sum(kept.values()) for k, p in kept.items()}, abs=1e-5)
    assert api["confidence"] == api["probabilities"][api["emotion"]] == max(api["probabilities"].values())
    rows = json.loads(cli.stdout)
    assert len(api["segments"]) == len(rows) > 0
    for ours, theirs in zip(api["segments"], rows):
        assert ours.keys() == theirs.keys() and ours["emotion"] == theirs["emotion"]
        assert {k: ours[k] for k in ("file", "segment", "start_s", "end_s", "speaker", "uncertain")} == \
            {k: theirs[k] for k in ("file", "segment", "start_s", "end_s", "speaker", "uncertain")}
        assert ours["probabilities"] == pytest.approx(theirs["probabilities"], abs=1e-5)
        assert ours["confidence"] == pytest.approx(theirs["confidence"], abs=1e-5)
    analyze = OPENAPI["paths"]["/v1/analyze"]["post"]
    assert "classes" in [parameter["name"] for parameter in analyze["parameters"]]

    unknown = ser_predict("clip.wav", "--json", "--classes", "angry,bored", cwd=tmp_path)
    refused = client.post("/v1/analyze?classes=angry,bored", content=clip_wav)
    assert refused.status_code == 422 and unknown.returncode != 0
    assert refused.json()["error"].startswith("Unknown emotion(s) bored; choose from neutral, calm")
    assert f"ser: {refused.json()['error']}" in unknown.stderr  # the CLI's sentence
    twice = client.post("/v1/analyze?segments=false&classes=sad,angry,sad", content=clip_wav).json()
    once = client.post("/v1/analyze?segments=false&classes=sad,angry", content=clip_wav).json()
    assert twice["probabilities"] == once["probabilities"] and sum(once["probabilities"].values()) == pytest.approx(1.0)
    for one in ("angry", "angry,angry", ",,"):
        single = client.post(f"/v1/analyze?classes={one}", content=clip_wav)
        assert single.status_code == 422 and single.json()["error"].startswith("Name two emotions or more")


def test_speaker_options_are_ser_predicts(client, tmp_path):
    """`speakers=N` and `speaker_adaptation=` answer as `ser predict --speakers N --speaker-adaptation`."""
    pause = np.zeros(SR, np.float32)
    talk = wav_bytes(np.concatenate([pause, speech(2.0, SR, f0=100, seed=1), pause, speech(2.0, SR, f0=240, seed=2),
                                     pause]), SR)
    (tmp_path / "talk.wav").write_bytes(talk)
    for count, query, flags in ((1, "speakers=1", ["--speakers", "1"]),
                                (2, "speakers=2&speaker_adaptation=true", ["--speakers", "2", "--speaker-adaptation"])):
        cli = ser_predict("talk.wav", "--json", "--segments", *flags, cwd=tmp_path)
        assert cli.returncode == 0, cli.stderr
        api = client.post(f"/v1/analyze?filename=talk.wav&{query}", content=talk).json()
        assert [row["speaker"] for row in api["segments"]] == [row["speaker"] for row in json.loads(cli.stdout)]
        assert len({row["speaker"] for row in api["segments"]}) == count
        # the whole file per speaker too, where there is more than one, as `ser predict --json` answers it
        per_file = json.loads(ser_predict("talk.wav", "--json", *flags, cwd=tmp_path).stdout)[0]
        assert api.get("speakers") == per_file.get("speakers")
        assert [s["speaker"] for s in api.get("speakers", [])] == ([] if count == 1 else ["S1", "S2"])
    for count in ("0", "two", "-1"):
        refused = client.post(f"/v1/analyze?speakers={count}", content=talk)
        assert refused.status_code == 422
        assert refused.json()["error"] == (f"The number of speakers must be a whole number from 1 to {MAX_SPEAKERS}, "
                                           f"not {count!r}.")
    cli = ser_predict("talk.wav", "--speakers", "0", cwd=tmp_path)
    assert cli.returncode != 0 and f"The number of speakers must be a whole number from 1 to {MAX_SPEAKERS}, not '0'." in cli.stderr
    names = [parameter["name"] for parameter in OPENAPI["paths"]["/v1/analyze"]["post"]["parameters"]]
    assert {"speakers", "speaker_adaptation"} <= set(names)


def test_a_misspelt_option_is_refused_not_ignored(client):
    """A query parameter the route does not take, or a flag that is neither true nor false, is a 422
    sentence before the upload is read: `speaker=2` used to be ignored and the voices found by clustering,
    `speaker_adaptation=maybe` read as true."""
    talk = wav_bytes(speech(2.0, SR, f0=120, seed=1), SR)
    misspelt = client.post("/v1/analyze?filename=a.wav&speaker=2", content=talk)
    assert misspelt.status_code == 422
    assert misspelt.json()["error"].startswith("Unknown query parameter 'speaker': /v1/analyze takes segments, model, ")
    names = [parameter["name"] for parameter in OPENAPI["paths"]["/v1/analyze"]["post"]["parameters"]]
    assert misspelt.json()["error"].endswith(f"{', '.join(names)}.") and "filename" in names
    batch_only = client.post("/v1/analyze?together=false", content=talk)
    assert batch_only.status_code == 422 and batch_only.json()["error"].startswith("Unknown query parameter 'together'")
    assert client.post("/v1/analyze/batch?filename=a.wav", files=batch_parts({"a.wav": talk})).status_code == 422
    for flag in ("speaker_adaptation", "segments", "language"):
        odd = client.post(f"/v1/analyze?{flag}=maybe", content=talk)
        assert odd.status_code == 422 and odd.json()["error"] == f"{flag} must be true or false, not 'maybe'."
    together = client.post("/v1/analyze/batch?together=nah", files=batch_parts({"a.wav": talk}))
    assert together.status_code == 422 and together.json()["error"] == "together must be true or false, not 'nah'."
    for value, segmented in (("TRUE", True), ("yes", True), ("1", True), ("0", False), ("No", False)):
        answer = client.post(f"/v1/analyze?segments={value}", content=talk).json()
        assert ("segments" in answer) == segmented, value


def test_an_empty_or_repeated_parameter_is_refused(client):
    """`speakers=` used to read as absent (the voices found by clustering) while `segments=` was a 422,
    and `segments=true&segments=false` used the last: each is now a 422 naming the parameter, before
    the upload is read. So is a speaker count no conversation holds."""
    talk = wav_bytes(speech(2.0, SR, f0=120, seed=1), SR)
    for name in ("speakers", "model", "classes", "segments", "filename", "adapt"):
        for query in (f"{name}=", f"{name}=%20", name):
            empty = client.post(f"/v1/analyze?{query}", content=talk)
            assert empty.status_code == 422 and empty.json()["error"] == f"{name}= has no value.", query
    batch = client.post("/v1/analyze/batch?together=", files=batch_parts({"a.wav": talk, "b.wav": talk}))
    assert batch.status_code == 422 and batch.json()["error"] == "together= has no value."
    twice = client.post("/v1/analyze?segments=true&segments=false", content=talk)
    assert twice.status_code == 422 and twice.json()["error"] == "segments is given 2 times; give it once."
    assert client.post("/v1/analyze?model=a&speakers=2&model=b", content=talk).json()["error"].startswith("model is given")
    many = client.post("/v1/analyze?speakers=99999", content=talk)
    assert many.status_code == 422
    assert many.json()["error"] == f"The number of speakers must be a whole number from 1 to {MAX_SPEAKERS}, not '99999'."
    assert client.post(f"/v1/analyze?speakers={MAX_SPEAKERS}", content=talk).status_code == 200
    speakers = next(p for p in OPENAPI["paths"]["/v1/analyze"]["post"]["parameters"] if p["name"] == "speakers")
    assert speakers["schema"]["maximum"] == MAX_SPEAKERS


def batch_parts(named: dict[str, bytes]) -> list:
    return [("files", (name, data, "audio/wav")) for name, data in named.items()]


def test_a_batch_is_read_together_as_ser_predict_adapt_batch(client, tmp_path):
    """`/v1/analyze/batch` reads every file against the mean of all those in which speech is found: the
    probabilities `ser predict --adapt batch` prints for those files alone; a file that cannot be read,
    or holds no voice, gets its sentence in place; with `together=false` each file is `/v1/analyze`'s
    answer."""
    clips = {f"c{i}.wav": wav_bytes(speech(3.0, SR, f0=f0, seed=i), SR) for i, f0 in enumerate((110, 170, 240))}
    for name, data in clips.items():
        (tmp_path / name).write_bytes(data)
    cli = ser_predict(*clips, "--adapt", "batch", "--json", cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    printed = {row["file"]: row for row in json.loads(cli.stdout)}
    room = wav_bytes((np.random.default_rng(0).standard_normal(SR // 2) * 1e-3).astype(np.float32), SR)  # no voice
    response = client.post("/v1/analyze/batch?segments=false",
                           files=batch_parts({**clips, "notes.wav": b"not audio", "room.wav": room}))
    assert response.status_code == 200
    answer = response.json()
    assert answer["read_together"] and answer["model"] == MODEL
    assert answer["adaptation"] == "Adapted to the 3 files in which speech was found, read together (their mean; no labels used)."
    assert [f["file"] for f in answer["files"]] == [*clips, "notes.wav", "room.wav"]
    for read in answer["files"][:3]:
        assert read["probabilities"] == pytest.approx(printed[read["file"]]["probabilities"], abs=1e-5)
        assert read["emotion"] == printed[read["file"]]["emotion"]
    refused, silent = answer["files"][3:]
    assert refused["status"] == 422 and refused["error"].startswith("This is not an audio file we can read")
    assert silent["status"] == 422 and silent["error"].startswith("No speech found")  # and not in the mean
    by_utterance = ser_predict(*clips, "--adapt", "batch", "--segments", "--json", cwd=tmp_path)
    assert by_utterance.returncode == 0, by_utterance.stderr
    rows = [row for read in client.post("/v1/analyze/batch", files=batch_parts(clips)).json()["files"]
            for row in read["segments"]]
    printed_rows = json.loads(by_utterance.stdout)  # --segments reads the batch too
    # Both round to 6 digits; run in another process (another thread count, TensorFlow loaded or not
    # by earlier tests) a probability may sit one float step either side of a rounding edge.
    assert len(rows) == len(printed_rows) > 0
    for ours, theirs in zip(rows, printed_rows):
        rounded = ("confidence", "arousal", "probabilities")  # 6 digits each: a float step may tip one
        assert {k: v for k, v in ours.items() if k not in rounded} == {k: v for k, v in theirs.items() if k not in rounded}
        for key in rounded:
            assert ours[key] == pytest.approx(theirs[key], abs=2e-6)

    apart = client.post("/v1/analyze/batch?together=false", files=batch_parts(clips)).json()
    assert not apart["read_together"] and apart["adaptation"] == ""
    for name, read in zip(clips, apart["files"]):
        alone = client.post(f"/v1/analyze?filename={name}", content=clips[name]).json()
        assert read == alone
    assert [r["probabilities"] for r in apart["files"]] != [r["probabilities"] for r in answer["files"][:3]]


def test_a_batch_is_refused_with_sentences(client, clip_wav, tmp_path):
    one = client.post("/v1/analyze/batch", files=batch_parts({"a.wav": clip_wav, "b.wav": b"not audio"}))
    assert one.status_code == 422
    assert one.json()["error"] == "Reading files together needs at least two files in which speech is found."
    (tmp_path / "a.wav").write_bytes(clip_wav)
    cli = ser_predict("a.wav", "--adapt", "batch", cwd=tmp_path)
    assert cli.returncode != 0 and f"ser: {one.json()['error']}" in cli.stderr  # the CLI's sentence
    raw = client.post("/v1/analyze/batch", content=clip_wav)
    assert raw.status_code == 422 and "multipart/form-data" in raw.json()["error"]
    empty = client.post("/v1/analyze/batch", files={"note": (None, b"a form field, no file")})
    assert empty.status_code == 422 and "part named 'files'" in empty.json()["error"]
    many = {f"{i}.wav": b"x" for i in range(MAX_BATCH_FILES + 1)}
    too_many = client.post("/v1/analyze/batch", files=batch_parts(many))
    assert too_many.status_code == 413 and f"at most {MAX_BATCH_FILES}" in too_many.json()["error"]
    each = wav_bytes(speech(LIMITS.max_duration_s * 0.6, SR), SR)  # each within the limit, together over it
    long = client.post("/v1/analyze/batch", files=batch_parts({"a.wav": each, "b.wav": each}))
    assert long.status_code == 413 and "of audio together" in long.json()["error"]
    assert client.post("/v1/analyze/batch?classes=angry,bored", files=batch_parts({"a.wav": clip_wav})).status_code == 422


def test_adapt_recording_is_ser_predicts(client, tmp_path):
    """`adapt=recording` reads every utterance against the recording's own speech, as `ser predict --adapt
    recording`, and says so in `adaptation`; any other value, or with per-speaker adaptation or files read
    together, is a 422 sentence."""
    pause = np.zeros(int(0.3 * SR), np.float32)  # 9.9 s in all: the tests' duration limit is 10 s
    talk = wav_bytes(np.concatenate([pause, speech(4.5, SR, f0=100, seed=1), pause, speech(4.5, SR, f0=240, seed=2),
                                     pause]), SR)
    (tmp_path / "talk.wav").write_bytes(talk)
    cli = ser_predict("talk.wav", "--json", "--segments", "--adapt", "recording", cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    api = client.post("/v1/analyze?filename=talk.wav&adapt=recording", content=talk).json()
    assert api["segments"] == json.loads(cli.stdout)
    assert api["adaptation"].startswith("Read against this recording's own speech")
    plain = client.post("/v1/analyze?filename=talk.wav", content=talk).json()
    assert plain["adaptation"] == "" and plain["probabilities"] != api["probabilities"]
    odd = client.post("/v1/analyze?adapt=batch", content=talk)
    assert odd.status_code == 422 and odd.json()["error"].startswith("adapt must be 'recording'")
    both = client.post("/v1/analyze?adapt=recording&speaker_adaptation=true", content=talk)
    assert both.status_code == 422 and both.json()["error"].endswith("not both.")
    together = client.post("/v1/analyze/batch?adapt=recording", files=batch_parts({"a.wav": talk, "b.wav": talk}))
    assert together.status_code == 422 and "together=false" in together.json()["error"]
    apart = client.post("/v1/analyze/batch?adapt=recording&together=false", files=batch_parts({"a.wav": talk}))
    assert apart.json()["files"][0]["probabilities"] == api["probabilities"]


def test_a_request_may_name_a_shipped_model_but_not_a_path(client, clip_wav):
    assert client.post("/v1/analyze?model=seed-cnn-random", content=clip_wav).json()["model"] == "seed-cnn-random"
    for name in ("nope", "/etc", "../models/seed-cnn-speaker"):
        response = client.post(f"/v1/analyze?model={name}", content=clip_wav)
        assert response.status_code == 404 and response.json()["error"].startswith(f"No model {name!r}")
    listed = client.get("/v1/models").json()
    assert listed["default"] == MODEL and "seed-cnn-random" in [m["name"] for m in listed["models"]]


# --- the bad-input catalogue against the API ---------------------------------------------------------

def refusal(model, data: bytes) -> SerError:
    with pytest.raises(SerError) as raised:
        model.analyze(data, limits=LIMITS)
    return raised.value


@pytest.mark.parametrize("case", [c for c in CASES if c.make is not None], ids=[i for c, i in zip(CASES, IDS)
                                                                                 if c.make is not None])
def test_catalogue_answers(case, client, model):
    """Each file as a raw body and as a multipart upload: a prediction (with its warning), or a 4xx
    whose sentence is exactly what ser_core, so the CLI, says for it. Never a 500."""
    data = case.make()
    answers = [client.post(f"/v1/analyze?filename={case.filename}", content=data),
               client.post("/v1/analyze", files={"file": (case.filename, data, "application/octet-stream")})]
    for response in answers:
        body = response.json()
        if case.expect.kind == "error":
            error = refusal(model, data)
            assert type(error) is case.expect.error
            over_a_limit = case.expect.error in (AudioTooLongError, AudioTooLargeError)
            assert response.status_code == (413 if over_a_limit else 422), body
            assert body["error"] == str(error) and body["status"] == response.status_code
        else:
            assert response.status_code == 200, body
            assert abs(sum(body["probabilities"].values()) - 1) < 1e-3
            if case.expect.kind == "warning":
                assert any(case.expect.warning in w for w in body["warnings"]), body["warnings"]
            else:
                assert body["warnings"] == []


def test_malformed_requests_get_sentences(client, clip_wav):
    no_file = client.post("/v1/analyze", files={"note": (None, b"a form field, no file")})
    assert no_file.status_code == 422 and "part named 'file'" in no_file.json()["error"]
    no_boundary = client.post("/v1/analyze", content=clip_wav, headers={"content-type": "multipart/form-data"})
    assert no_boundary.status_code == 422 and "boundary" in no_boundary.json()["error"]


def test_unknown_routes_and_methods_get_json_refusals(client):
    """Starlette's own 404 and 405 were plain text; every refusal is the documented JSON, 405 with `Allow`."""
    for response, status, sentence in (
            (client.get("/v1/nope"), 404, "There is no /v1/nope: the routes are listed at /docs."),
            (client.get("/v1/analyze"), 405, "/v1/analyze does not take GET; it takes POST."),
            (client.delete("/v1/models"), 405, "/v1/models does not take DELETE; it takes ")):
        body = response.json()
        assert response.status_code == body["status"] == status and body["error"].startswith(sentence)
        assert body["request_id"] == response.headers["x-request-id"]
    assert client.get("/v1/analyze").headers["allow"] == "POST"
    assert set(client.delete("/v1/models").headers["allow"].split(", ")) == {"GET", "HEAD"}


def test_a_body_over_the_byte_limit_is_refused_while_streaming(client):
    """Without a Content-Length (chunked), the body is read only up to the limit."""
    chunks = (bytes(2**20) for _ in range(8))
    response = client.post("/v1/analyze", content=chunks)
    assert response.status_code == 413 and "larger than the 4 MiB allowed" in response.json()["error"]


def test_byte_limits_under_a_mib_read_right():
    """A 300000-byte limit read "at most 0 MiB allowed"; both refusals (the Content-Length's and the
    streamed body's) now name it in KiB. A file just over the limit is named to the byte."""
    small = client_for(replace(CONFIG, limits=replace(LIMITS, max_bytes=300_000)))
    try:
        declared = small.post("/v1/analyze", content=bytes(400_000))
        assert declared.status_code == 413
        assert declared.json()["error"] == "The file is too large: 391 KiB, at most 293 KiB allowed."
        streamed = small.post("/v1/analyze", content=(bytes(100_000) for _ in range(4)))
        assert streamed.status_code == 413
        assert streamed.json()["error"] == "The upload is larger than the 293 KiB allowed."
    finally:
        small.__exit__(None, None, None)
    assert str(AudioTooLargeError(int(4.5 * 2**20) + 1, int(4.5 * 2**20))) == \
        "The file is too large: 4,718,593 bytes, at most 4,718,592 bytes allowed."
    assert str(AudioTooLargeError(60 * 2**20, 50 * 2**20)) == "The file is too large: 60 MiB, at most 50 MiB allowed."


# --- limits, keys, CORS, logs ------------------------------------------------------------------------

def test_too_many_in_flight_gets_429_with_retry_after(client, clip_wav):
    pool: AnalysisPool = client.app.state.pool
    release = threading.Event()
    held = [pool.submit(lambda threads: release.wait(60)) for _ in range(pool.capacity - pool.in_flight)]
    try:
        response = client.post("/v1/analyze", content=clip_wav)
    finally:
        release.set()
        for job in held:
            job.future.result(60)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1 and "Too many requests" in response.json()["error"]
    assert client.post("/v1/analyze", content=clip_wav).status_code == 200


def test_limits_come_from_flags_then_the_environment_then_the_api_defaults(monkeypatch):
    import argparse

    from ser_core.errors import ConfigError
    from ser_core.serving.http import SERVE_MAX_BYTES, SERVE_MAX_DURATION_S, add_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    monkeypatch.delenv("SER_MAX_BYTES", raising=False)
    monkeypatch.delenv("SER_MAX_DURATION_S", raising=False)
    limits = config_from_args(parser.parse_args([])).limits
    assert (limits.max_bytes, limits.max_duration_s) == (SERVE_MAX_BYTES, SERVE_MAX_DURATION_S)
    monkeypatch.setenv("SER_MAX_BYTES", "1000")
    assert config_from_args(parser.parse_args([])).limits.max_bytes == 1000
    assert config_from_args(parser.parse_args(["--max-bytes", "2000"])).limits.max_bytes == 2000
    assert config_from_args(parser.parse_args(["--queue", "0"])).capacity == config_from_args(parser.parse_args([])).workers
    for bad, said in ((["--workers", "0"], "must be positive"), (["--timeout", "-1"], "must be positive"),
                      (["--queue", "-1"], "must be 0 or more"), (["--port", "99999"], "from 1 to 65535")):
        with pytest.raises(ConfigError, match=said):
            config_from_args(parser.parse_args(bad))


def test_a_slow_request_times_out_with_504_and_frees_its_slot(monkeypatch):
    from ser_core.serving.inference import SerModel

    analyze_audio = SerModel.analyze_audio

    def slow(self, *args, **kwargs):  # slower than the limit on any machine, however idle
        time.sleep(0.5)
        return analyze_audio(self, *args, **kwargs)

    monkeypatch.setattr(SerModel, "analyze_audio", slow)
    client = client_for(replace(CONFIG, timeout_s=0.05))
    try:
        response = client.post("/v1/analyze", content=wav_bytes(speech(9.0, SR), SR))
        assert response.status_code == 504 and "longer than the 0.05 s allowed" in response.json()["error"]
        deadline = time.monotonic() + 60
        while client.app.state.pool.in_flight:  # the analysis itself runs to its end
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        client.__exit__(None, None, None)


def slow_upload(client, data: bytes, chunks: int, pause_s: float) -> tuple[int, dict, dict]:
    """(status, headers, body) of a raw upload of `data` sent in `chunks` pieces `pause_s` apart, as a client on a
    slow line sends it: driven on the test client's event loop, since its own requests arrive whole."""
    import asyncio

    size = -(-len(data) // chunks)
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    sent: list[dict] = []

    async def receive():
        if not pieces:
            await asyncio.Event().wait()  # the body is complete: nothing more comes
        await asyncio.sleep(pause_s)
        piece = pieces.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    async def send(message):
        sent.append(message)

    async def request():
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
                 "path": "/v1/analyze", "raw_path": b"/v1/analyze", "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"testserver"), (b"content-length", str(len(data)).encode())],
                 "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
        await client.app(scope, receive, send)

    client.portal.call(request)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, json.loads(body)


def test_a_slow_upload_times_out_with_408_not_504(clip_wav):
    """One deadline from the first byte, so that a client trickling bytes holds no connection for long;
    but while the body is still arriving no analysis has run, so the answer is 408, not 504."""
    client = client_for(replace(CONFIG, timeout_s=1.5))
    try:
        status, headers, body = slow_upload(client, clip_wav, chunks=8, pause_s=0.3)  # 2.4 s for the whole body
        assert status == body["status"] == 408 and headers["connection"] == "close"
        assert body["error"] == ("The upload did not arrive within the 1.5 s allowed; send it over a faster connection, "
                                 "or a smaller file.")
        status, _, body = slow_upload(client, clip_wav, chunks=2, pause_s=0.01)  # in time: analysed
        assert status == 200 and body["duration_s"] == 3.0
    finally:
        client.__exit__(None, None, None)


def test_not_ready_gets_503_with_retry_after(monkeypatch, clip_wav):
    monkeypatch.setattr(ModelRegistry, "load_default", lambda self: None)  # the model never loads
    client = client_for(wait_ready=False)
    try:
        for response in (client.get("/readyz"), client.post("/v1/analyze", content=clip_wav)):
            assert response.status_code == 503 and response.headers["retry-after"] == "5"
            assert "still loading" in response.json()["error"]
        assert client.get("/healthz").status_code == 200
    finally:
        client.__exit__(None, None, None)


def test_api_keys(tmp_path, clip_wav):
    from ser_core.serving.http import read_api_keys

    (tmp_path / "keys").write_text("# team keys\nfirst-key\n\nsecond-key\n")
    client = client_for(replace(CONFIG, api_keys=read_api_keys(tmp_path / "keys")))
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic first-key"}):
            response = client.post("/v1/analyze", content=clip_wav, headers=headers)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
            assert "API key" in response.json()["error"]
        assert client.get("/v1/models").status_code == 401
        ok = client.post("/v1/analyze", content=clip_wav, headers={"Authorization": "Bearer second-key"})
        assert ok.status_code == 200
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_json({"sample_rate": SR})
            assert "API key" in ws.receive_json()["error"]
        for key in (5, ["first-key"], {"key": "first-key"}):  # used to crash the handler with keys configured
            with client.websocket_connect("/v1/stream") as ws:
                ws.send_json({"sample_rate": SR, "api_key": key})
                assert ws.receive_json()["error"] == '"api_key" must be the key as a string.'
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_json({"sample_rate": SR, "api_key": "first-key"})
            ws.send_bytes(pcm16(speech(1.0, SR)).tobytes())
            assert ws.receive_json()["type"] == "reading"
    finally:
        client.__exit__(None, None, None)


def test_cors_is_off_unless_origins_are_given(client, clip_wav):
    origin = {"Origin": "https://app.example.org"}
    assert "access-control-allow-origin" not in client.post("/v1/analyze", content=clip_wav, headers=origin).headers
    allowed = client_for(replace(CONFIG, cors_origins=("https://app.example.org",)))
    try:
        response = allowed.post("/v1/analyze", content=clip_wav, headers=origin)
        assert response.headers["access-control-allow-origin"] == "https://app.example.org"
        # a page may read the headers the docs point it to: the request id, and when to retry
        exposed = {name.strip().lower() for name in response.headers["access-control-expose-headers"].split(",")}
        assert {"x-request-id", "retry-after"} <= exposed
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        assert allowed.options("/v1/analyze", headers={**origin, **preflight}).status_code == 200
        refused = allowed.options("/v1/analyze", headers={"Origin": "https://evil.example", **preflight})
        body = refused.json()  # Starlette's was plain text: "Disallowed CORS origin"
        assert refused.status_code == body["status"] == 400 and body["request_id"] == refused.headers["x-request-id"]
        assert body["error"].startswith("Pages on https://evil.example may not call this API")
        method = allowed.options("/v1/analyze", headers={**origin, "Access-Control-Request-Method": "DELETE"})
        assert method.status_code == 400 and "GET and POST" in method.json()["error"]
    finally:
        allowed.__exit__(None, None, None)


def test_a_stream_from_another_origin_is_refused_unless_allowed(client):
    """CORS does not cover WebSockets: without this check any page a user visits could stream to the server.
    A refused page gets the sentence (a refusal before the handshake would show the browser only 1006)."""
    from starlette.websockets import WebSocketDisconnect

    def opens(server, headers: dict) -> bool:
        with server.websocket_connect("/v1/stream", headers=headers) as ws:
            ws.send_json({"sample_rate": SR})
            ws.send_bytes(pcm16(speech(1.0, SR)).tobytes())
            message = ws.receive_json()
            if message["type"] == "reading":
                return True
            assert message["error"] == (f"Pages on {headers['origin']} may not open a stream: the server takes "
                                        "streams from its own origin and those given with --cors-origin.")
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 1008
            return False

    assert opens(client, {})  # no Origin: not a browser
    assert opens(client, {"origin": "http://testserver"})  # the server's own page (the Host header's host and port)
    for other in ("https://app.example.org", "http://testserver.evil.example", "null"):
        assert not opens(client, {"origin": other}), other
    allowed = client_for(replace(CONFIG, cors_origins=("https://app.example.org",)))
    try:
        assert opens(allowed, {"origin": "https://app.example.org"})
        assert not opens(allowed, {"origin": "https://evil.example"})
    finally:
        allowed.__exit__(None, None, None)


def test_uploads_never_touch_the_disk(client, monkeypatch):
    """A 2 MiB multipart upload: Starlette's own form parser would spool it to a temporary file."""
    def refuse(*args, **kwargs):
        raise AssertionError("an upload was about to be written to disk")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    data = wav_bytes(speech(9.0, 48000), 48000, "FLOAT")  # 1.7 MB, under the 10 s cap
    assert len(data) > 1.5 * 2**20
    response = client.post("/v1/analyze", files={"file": ("long.wav", data, "audio/wav")})
    assert response.status_code == 200, response.json()


def test_access_log_is_one_json_line_without_payloads(client, clip_wav, caplog):
    with caplog.at_level(logging.INFO, logger="ser.serve.access"):
        client.post("/v1/analyze?filename=secret-name.wav&segments=false", content=clip_wav)
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ser.serve.access"]
    assert len(records) == 1
    record = records[0]
    assert record["path"] == "/v1/analyze" and record["status"] == 200 and record["bytes_in"] == len(clip_wav)
    assert set(record) == {"request_id", "method", "path", "status", "bytes_in", "bytes_out", "duration_ms", "client"}
    assert "secret-name" not in caplog.text


# --- the live stream -----------------------------------------------------------------------------------

def pcm16(samples: np.ndarray) -> np.ndarray:
    return np.clip(samples * 32767, -32768, 32767).astype("<i2")


def test_stream_sends_readings_as_audio_arrives(client):
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json({"sample_rate": 48000, "channels": 2})
        stereo = np.repeat(pcm16(speech(2.0, 48000))[:, None], 2, axis=1)
        for start in range(0, len(stereo), 960):  # 20 ms frames, as browsers send them
            ws.send_bytes(stereo[start : start + 960].tobytes())
        reading = ws.receive_json()
        assert reading["type"] == "reading" and not reading["pause"]
        assert reading["emotion"] == max(reading["probabilities"], key=reading["probabilities"].get)
        assert isinstance(reading["uncertain"], bool) and reading["speech_s"] > 0
        assert reading["arousal"] == pytest.approx(arousal(reading["probabilities"]), abs=1e-5)
        for _ in range(4):  # 4 s of silence, longer than the model's window: the next readings are pauses
            ws.send_bytes(np.zeros((48000, 2), "<i2").tobytes())
        while not (reading := ws.receive_json())["pause"]:
            pass
        assert reading["probabilities"] is None and reading["emotion"] is None and reading["arousal"] is None


def test_stream_readings_over_the_classes_of_the_first_message(client):
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json({"sample_rate": 16000, "classes": ["angry", "Happy", "sad", "neutral"]})
        ws.send_bytes(pcm16(speech(2.0, 16000)).tobytes())
        reading = ws.receive_json()
        assert reading["type"] == "reading" and not reading["pause"]
        assert list(reading["probabilities"]) == ["neutral", "happy", "sad", "angry"]
        assert sum(reading["probabilities"].values()) == pytest.approx(1, abs=1e-5)
        assert reading["confidence"] == reading["probabilities"][reading["emotion"]] == max(reading["probabilities"].values())


@pytest.mark.parametrize("end", ['{"type": "end"}', '{ "type" : "end" }\n'])
def test_stream_ends_on_the_end_message_however_it_is_spaced(client, end):
    from starlette.websockets import WebSocketDisconnect

    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json({"sample_rate": 16000})
        ws.send_bytes(pcm16(speech(1.0, 16000)).tobytes())
        ws.send_text(end)
        with pytest.raises(WebSocketDisconnect) as closed:
            while ws.receive_json()["type"] == "reading":  # readings already on their way, then the close
                pass
        assert closed.value.code == 1000


@pytest.mark.parametrize("first, later, phrase", [
    ("hello", None, "first message must be JSON"),
    (json.dumps({"sample_rate": 300}), None, "not one this stream takes"),
    (json.dumps({"sample_rate": 16000, "model": "nope"}), None, "No model 'nope'"),
    (json.dumps({"sample_rate": 16000}), b"\x01\x02\x03", "whole 16-bit frames"),
    (json.dumps({"sample_rate": 16000, "classes": ["angry", "bored"]}), None, "Unknown emotion(s) bored; choose from"),
    (json.dumps({"sample_rate": 16000, "classes": "angry,sad"}), None, '"classes" must be a list of emotion names'),
    (json.dumps({"sample_rate": 16000, "classes": ["angry"]}), None, "Name two emotions or more"),
    (json.dumps({"sample_rate": 16000, "speakers": 2}), None,  # a setting the stream does not take is not ignored
     "Unknown setting 'speakers' in the first message: it takes sample_rate, channels, model, classes, api_key."),
    (json.dumps([16000]), None, "first message must be JSON with the sample rate"),
    # values of another type used to crash the handler (a traceback and close 1006, no sentence)
    ('{"sample_rate": 1e999}', None, '"sample_rate" must be a whole number'),
    ('{"sample_rate": Infinity}', None, '"sample_rate" must be a whole number'),
    ('{"sample_rate": NaN}', None, '"sample_rate" must be a whole number'),
    ('{"sample_rate": "16000"}', None, '"sample_rate" must be a whole number'),
    ('{"sample_rate": true}', None, '"sample_rate" must be a whole number'),
    ('{"sample_rate": 16000.5}', None, '"sample_rate" must be a whole number'),
    ('{"sample_rate": 16000, "channels": 1e999}', None, '"channels" must be a whole number'),
    ('{"sample_rate": 16000, "channels": null}', None, '"channels" must be a whole number'),
    (json.dumps({"sample_rate": 16000, "model": ["x"]}), None, '"model" must be a name from /v1/models, as a string.'),
    (json.dumps({"sample_rate": 16000, "model": {"a": 1}}), None, '"model" must be a name from /v1/models'),
    (json.dumps({"sample_rate": 16000, "model": ""}), None, '"model" must be a name from /v1/models'),
    (json.dumps({"sample_rate": 16000, "api_key": 5}), None, '"api_key" must be the key as a string.'),
])
def test_stream_refusals_are_one_json_sentence_and_a_close(client, first, later, phrase):
    from starlette.websockets import WebSocketDisconnect

    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(first)
        if later is not None:
            ws.send_bytes(later)
        message = ws.receive_json()
        assert message["type"] == "error" and phrase in message["error"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1008


def test_stream_access_log_counts_what_was_sent_and_how_it_closed(client, caplog, monkeypatch):
    """A stream's line has the bytes of the readings sent (it was always 0) and its close code, also when
    the handler failed (uvicorn then drops the connection: 1006)."""
    from starlette.websockets import WebSocketDisconnect

    from ser_core.serving.live import LiveClassifier

    def stream_records() -> list[dict]:
        return [json.loads(r.getMessage()) for r in caplog.records
                if r.name == "ser.serve.access" and '"/v1/stream"' in r.getMessage()]

    with caplog.at_level(logging.INFO, logger="ser.serve.access"):
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_json({"sample_rate": SR})
            ws.send_bytes(pcm16(speech(1.0, SR)).tobytes())
            sent = len(json.dumps(ws.receive_json(), separators=(",", ":")))
            ws.send_text('{"type": "end"}')
            with pytest.raises(WebSocketDisconnect):
                while True:  # readings on their way, then the server's close
                    ws.receive_json()
    record = stream_records()[-1]
    assert record["status"] == 101 and record["close_code"] == 1000 and record["bytes_out"] >= sent > 0
    assert record["bytes_in"] == len('{"sample_rate":16000}') + 2 * SR + len('{"type": "end"}')

    def fails(self, samples, sample_rate):
        raise RuntimeError("a bug in the handler")

    monkeypatch.setattr(LiveClassifier, "push", fails)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ser.serve.access"), pytest.raises(RuntimeError, match="a bug"):
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_json({"sample_rate": SR})
            ws.send_bytes(pcm16(speech(1.0, SR)).tobytes())
            ws.receive_json()
    assert stream_records()[-1]["close_code"] == 1006


def strict(schema):
    """`schema` with every object that lists its properties closed to others: an answer's key the schema
    does not describe fails validation (the schema itself stays open, for clients' sake)."""
    if isinstance(schema, dict):
        closed = {key: strict(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            closed["additionalProperties"] = False
        return closed
    return [strict(item) for item in schema] if isinstance(schema, list) else schema


def test_answers_are_what_the_openapi_schema_describes(client):
    """Real answers (two speakers, segments, language, a batch with a refused file) validate against
    the schema closed to undescribed keys: a segment's `speaker` was answered but not described."""
    from jsonschema import Draft202012Validator

    def validate(answer: dict, name: str) -> None:
        validator = Draft202012Validator({**strict(OPENAPI), "$ref": f"#/components/schemas/{name}"})
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(answer)]
        assert errors == [], errors

    pause = np.zeros(SR, np.float32)
    talk = wav_bytes(np.concatenate([pause, speech(2.0, SR, f0=100, seed=1), pause, speech(2.0, SR, f0=240, seed=2),
                                     pause]), SR)
    analysis = client.post("/v1/analyze?speakers=2&language=true&speaker_adaptation=true", content=talk).json()
    assert {"segments", "speakers", "language"} <= set(analysis) and analysis["segments"][0]["speaker"] == "S1"
    validate(analysis, "Analysis")
    clips = {f"{i}.wav": wav_bytes(speech(3.0, SR, f0=f0, seed=i), SR) for i, f0 in enumerate((110, 240))}
    batch = client.post("/v1/analyze/batch", files=batch_parts({**clips, "c.wav": b"x"})).json()
    assert batch["adaptation"] and batch["files"][2]["status"] == 422
    validate(batch, "Batch")
    validate(client.post("/v1/analyze?speakers=99", content=talk).json(), "Error")
    with pytest.raises(AssertionError):  # the check has teeth
        validate({**analysis, "segments": [{**analysis["segments"][0], "voice": "S1"}]}, "Analysis")


def test_openapi_schema_and_docs_page(client):
    schema = client.get("/openapi.json").json()
    assert schema == OPENAPI and schema["openapi"].startswith("3.")
    assert {"/v1/analyze", "/v1/analyze/batch", "/v1/stream", "/v1/models", "/healthz", "/readyz"} <= set(schema["paths"])
    page = client.get("/docs")
    assert page.status_code == 200 and "/v1/analyze" in page.text and "<script" not in page.text


# --- the real command under uvicorn ------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ser_serve_under_uvicorn(tmp_path, clip_wav):
    """`ser serve` as a user starts it: ready, one analysis, one stream, then SIGTERM stops it."""
    from websockets.sync.client import connect

    port = free_port()
    log = (tmp_path / "serve.log").open("w+")
    server = subprocess.Popen([sys.executable, "-m", "ser_core.cli", "serve", "--model", MODEL, "--port", str(port)],
                              cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None and time.monotonic() < deadline, Path(log.name).read_text()
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        request = urllib.request.Request(f"{base}/v1/analyze?filename=clip.wav", data=clip_wav, method="POST",
                                         headers={"Content-Type": "audio/wav"})
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        assert body["file"] == "clip.wav" and body["segments"]
        with connect(f"ws://127.0.0.1:{port}/v1/stream", open_timeout=10) as ws:
            ws.send(json.dumps({"sample_rate": SR}))
            ws.send(pcm16(speech(2.0, SR)).tobytes())
            reading = json.loads(ws.recv(timeout=30))
        assert reading["type"] == "reading"
    finally:
        server.terminate()
        server.wait(timeout=30)
    output = Path(log.name).read_text()
    # after its graceful shutdown, uvicorn raises the signal it caught again, so the exit says SIGTERM
    assert server.returncode in (0, -signal.SIGTERM), output
    assert '"event": "serving"' in output
    from ser_core.serving.speakers import encoder_installed  # the log says whether voices can be told apart

    assert f'"speaker_model": {json.dumps(encoder_installed())}' in output
    assert ('"event": "no_speaker_model"' in output) is not encoder_installed()
    assert "Traceback" not in output
    access = [json.loads(line) for line in output.splitlines() if line.startswith('{"request_id"')]
    assert {"/readyz", "/v1/analyze", "/v1/stream"} <= {r["path"] for r in access}
