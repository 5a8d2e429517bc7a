"""The Ray engine (ser_core.distributed) on a local Ray instance: the same answers as the local
path, bad files as rows, a killed actor retried, the documented schema; feature shards that fill
the training cache. One Ray instance for the module (starting Ray costs seconds)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, require, speech, wav_bytes
from ser_core.distributed.engine import MapStats, map_files
from ser_core.distributed.inputs import list_inputs
from ser_core.distributed.outputs import prediction_schema, write_rows
from ser_core.distributed.ray import predict_rows
from ser_core.serving.batch import map_local
from ser_core.serving.results import arousal
from ser_core.training.shards import FeatureShards, import_feature_shards, read_feature_shards

# The light shipped model: the engine is under test, and its answers are bit-for-bit reproducible
# across processes (the default's int8 encoder varies by up to ~1e-2 with the process's BLAS threads).
MODEL = ROOT / "models" / "emo-cnn-speaker"


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> Path:
    """Short and long synthetic speech (one to five windows), a corrupt file and a silent one."""
    folder = tmp_path_factory.mktemp("batch")
    for i in range(20):
        seconds = (1.2, 2.6, 4.0, 7.5)[i % 4]
        (folder / f"clip{i:02d}.wav").write_bytes(wav_bytes(speech(seconds, f0=90 + 12 * i, seed=i), 16000))
    (folder / "clip20.flac").write_bytes(wav_bytes(speech(3.0, seed=20), 16000, fmt="FLAC", subtype="PCM_16"))
    (folder / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(200))
    (folder / "silent.wav").write_bytes(wav_bytes(np.zeros(16000 * 2, np.float32), 16000))
    return folder


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for the module: 2 CPUs, no dashboard, no network; shut down after."""
    ray = require("ray")
    from ser_core.distributed.ray import ray_session

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test's own factories
    for attempt in range(2):  # Ray gives its node 30 s to register: a saturated machine can miss it once
        try:
            session = ray_session(num_cpus=2)
            session.__enter__()
            break
        except Exception:  # noqa: BLE001
            if attempt:
                raise
    try:
        yield ray
    finally:
        session.__exit__(None, None, None)


# --------------------------------------------------------------------------------- without Ray

def test_list_inputs_expands_manifests_lists_folders_and_uris(audio_dir, tmp_path):
    (tmp_path / "m.csv").write_text(f"path,emotion\n{audio_dir / 'clip00.wav'},angry\nrel.wav,sad\n")
    (tmp_path / "list.txt").write_text("# a comment\nclip01.wav\n\n/abs/x.opus\n")
    files = list_inputs([str(tmp_path / "m.csv"), str(tmp_path / "list.txt"), str(audio_dir),
                         f"file://{audio_dir}/"])
    assert files[:4] == [str(audio_dir / "clip00.wav"), str(tmp_path / "rel.wav"), str(tmp_path / "clip01.wav"),
                         "/abs/x.opus"]
    in_folder = sorted(str(p) for p in audio_dir.iterdir())
    assert files[4 : 4 + len(in_folder)] == in_folder
    assert files[4 + len(in_folder) :] == [f"file://{p}" for p in in_folder]


def test_feature_shards_hold_the_cache_features_and_fill_the_cache(audio_dir, tmp_path, monkeypatch):
    from ser_core.frontend.features import FeatureCache
    from ser_core.training import dataset
    from ser_core.training.corpora import Clip
    from ser_core.training.dataset import clip_features, extract_clips
    from ser_core.training.train import RECIPES

    params = RECIPES["emo-cnn"][0]
    files = [str(p) for p in sorted(audio_dir.glob("clip0*.wav"))] + [str(audio_dir / "corrupt.wav")]
    rows = list(map_local(files, FeatureShards(params, str(tmp_path / "shards")), batch_size=4))
    assert [r["path"] for r in rows] == files
    assert [bool(r["error"]) for r in rows] == [False] * 10 + [True]
    reference = FeatureCache(params, tmp_path / "reference")
    shards = {path: features for path, _, _, features in read_feature_shards(tmp_path / "shards", params)}
    for file in files[:-1]:
        np.testing.assert_allclose(shards[file], clip_features(Path(file), params, reference), rtol=0, atol=1e-4)

    counts = import_feature_shards(tmp_path / "shards", params, tmp_path / "cache")
    assert counts == {"imported": 10, "stale": 0}
    monkeypatch.setattr(dataset, "load_audio", lambda *a, **k: pytest.fail("decoded a clip the shards hold"))
    clips = [Clip(Path(f), "angry", "synthetic", "s", Path(f).stem, "") for f in files[:-1]]
    cached = extract_clips(clips, params, tmp_path / "cache", workers=1)
    assert all(np.array_equal(a, shards[c]) for a, c in zip(cached.features, files))

    with pytest.raises(Exception, match="other parameters"):
        list(read_feature_shards(tmp_path / "shards", RECIPES["seed-cnn"][0]))


def test_output_schema_is_documented():
    docs = (ROOT / "docs" / "scaling.md").read_text()
    for name in prediction_schema(["neutral"], timeline=True).names:
        column = "p_LABEL" if name.startswith("p_") else name
        assert f"| {column} |" in docs, f"column {column} is not in docs/scaling.md"
    from ser_core.frontend.features import FeatureParams
    from ser_core.training.shards import shard_schema

    for name in shard_schema(FeatureParams()).names:
        assert f"| {name} |" in docs


# ------------------------------------------------------------------------------------ on Ray

def test_ray_rows_equal_the_local_path(ray_local, audio_dir, tmp_path):
    from ser_core.serving.batch import predict_files

    files = [str(p) for p in sorted(audio_dir.iterdir())] + [str(audio_dir / "missing.wav")]
    local = list(predict_files(files, MODEL, workers=1))
    stats = MapStats()
    rows = list(predict_rows(files, MODEL, timeline=True, ship_model=True, stats=stats))
    assert stats.actors == 2 and stats.replaced_actors == 0
    assert [r["path"] for r in rows] == files
    for (path, probabilities, warnings, error, *_), row in zip(local, rows):
        assert row["error"] == error
        if error is None:
            ray_probabilities = {k[2:]: v for k, v in row.items() if k.startswith("p_")}
            assert ray_probabilities == pytest.approx(probabilities, abs=1e-6)
            assert tuple(row["warnings"]) == warnings
            assert row["emotion"] == max(probabilities, key=probabilities.get)
            assert row["arousal"] == pytest.approx(arousal(probabilities), abs=1e-6)
            assert len(row["window_probabilities"]) == row["n_windows"] == len(row["window_start_s"])
    bad = {Path(r["path"]).name for r in rows if r["error"]}
    assert bad == {"corrupt.wav", "silent.wav", "missing.wav"}

    # Read by the worker through pyarrow's filesystem: the same answer as from the path.
    uri_rows = list(predict_rows([f"file://{files[3]}"], MODEL))
    assert uri_rows[0]["p_angry"] == pytest.approx(rows[3]["p_angry"], abs=1e-6)

    schema = prediction_schema(json_labels(), timeline=True, metadata={"engine": "ray"})
    assert write_rows(rows, str(tmp_path / "out.parquet"), schema) == len(files)
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.equals(schema, check_metadata=False) and table.num_rows == len(files)
    assert table.column("error").null_count == len(files) - 3


def json_labels():
    import json

    return json.loads((MODEL / "metadata.json").read_text())["labels"]


def test_cli_ray_engine_prints_what_the_local_engine_prints(ray_local, audio_dir, tmp_path, capsys):
    from ser_core.cli import main

    files = [str(p) for p in sorted(audio_dir.glob("clip1*.wav"))] + [str(audio_dir / "corrupt.wav")]
    assert main(["predict", *files, "--csv", "--workers", "2"]) == 1
    local = capsys.readouterr()
    assert main(["predict", *files, "--csv", "--engine", "ray"]) == 1
    ray = capsys.readouterr()
    assert ray.out == local.out and ray.err.splitlines()[-1] == local.err.splitlines()[-1]

    (tmp_path / "list.txt").write_text("\n".join(files))
    assert main(["predict", str(tmp_path / "list.txt"), "--engine", "ray", "--out", str(tmp_path / "p.csv")]) == 1
    import csv

    with open(tmp_path / "p.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["path"] for r in table] == files and table[-1]["error"] and not table[0]["error"]
    assert float(table[0]["confidence"]) == max(float(table[0][f"p_{label}"]) for label in json_labels())


def test_cli_embed_on_ray_writes_the_shards_the_local_engine_writes(ray_local, audio_dir, tmp_path, capsys):
    from ser_core.cli import main
    from ser_core.training.train import RECIPES

    (tmp_path / "m.csv").write_text("path,emotion\n" + "".join(f"clip0{i}.wav,angry\n" for i in range(6)))
    for i in range(6):
        (tmp_path / f"clip0{i}.wav").write_bytes((audio_dir / f"clip0{i}.wav").read_bytes())
    for engine in ("local", "ray"):
        assert main(["embed", "--data", str(tmp_path / "m.csv"), "--model", "emo-cnn", "--engine", engine,
                     "--batch-size", "4", "--out", str(tmp_path / engine)]) == 0
    assert "6 clips" in capsys.readouterr().err
    assert main(["embed", "--data", str(tmp_path / "m.csv"), "--actors", "2", "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == "ser: --address and --actors go with --engine ray\n"  # not ignored
    params = RECIPES["emo-cnn"][0]
    local = {p: f for p, _, _, f in read_feature_shards(tmp_path / "local", params)}
    ray = {p: f for p, _, _, f in read_feature_shards(tmp_path / "ray", params)}
    assert local.keys() == ray.keys() and len(local) == 6
    for path in local:  # one BLAS thread per actor, the machine's threads here: float rounding apart
        np.testing.assert_allclose(ray[path], local[path], rtol=0, atol=1e-4)


class SlowEcho:
    """A factory for the engine tests: each item takes a little time and names the process."""

    def __init__(self, seconds: float = 0.05, poison: str = ""):
        self.seconds, self.poison = seconds, poison

    def __call__(self):
        def run(items):
            if self.poison in items:
                os._exit(1)  # a file that kills its process (a decoder crash), every time
            time.sleep(self.seconds * len(items))
            return [{"path": item, "pid": os.getpid(), "error": None} for item in items]

        return run


def test_a_killed_actor_is_restarted_and_its_batches_retried(ray_local):
    items = [f"file{i:03d}" for i in range(120)]
    stats = MapStats()
    rows, killed = [], None
    for row in map_files(items, SlowEcho(), batch_size=4, actors=2, max_restarts=2, max_task_retries=2, stats=stats):
        if killed is None:
            killed = row["pid"]
            os.kill(killed, signal.SIGKILL)  # mid-job: the actor has batches running and queued
        rows.append(row)
    assert [r["path"] for r in rows] == items and not any(r["error"] for r in rows)
    assert killed not in {r["pid"] for r in rows[-20:]}  # Ray restarted it in a new process
    assert stats.replaced_actors == 0  # Ray's own restart and retry did it


def test_a_file_that_kills_its_worker_every_time_becomes_an_error_row(ray_local):
    items = [f"file{i:02d}" for i in range(12)]
    with contextlib.redirect_stderr(io.StringIO()):
        rows = list(map_files(items, SlowEcho(0.0, poison="file05"), batch_size=4, actors=2,
                              max_restarts=1, max_task_retries=0))
    assert [r["path"] for r in rows] == items
    assert [bool(r["error"]) for r in rows] == [i == 5 for i in range(12)]
    assert "worker died" in rows[5]["error"]


class Broken:
    def __call__(self):
        raise RuntimeError("this object cannot be built here")


def test_actors_that_cannot_start_fail_the_job_with_one_message(ray_local):
    from ser_core.errors import ModelError

    with pytest.raises(ModelError, match="keep failing"):
        list(map_files([f"f{i}" for i in range(8)], Broken(), batch_size=2, actors=1, max_restarts=0))


def test_ray_engine_answers_each_speaker_and_takes_the_speaker_options(ray_local, tmp_path, capsys):
    """A file of two voices: with --speakers 2 the Ray engine reads it as the local engine does (the
    option reaches every actor) and answers per speaker, in its printout and in the table's `speakers`
    column; one voice leaves the column empty. Options only the local engine has are refused."""
    import csv
    import json

    from ser_core.cli import main

    pause = np.zeros(16000, np.float32)
    talk = tmp_path / "talk.wav"
    talk.write_bytes(wav_bytes(np.concatenate([pause, speech(2.0, f0=100, seed=1), pause,
                                               speech(2.0, f0=240, seed=2), pause]), 16000))
    model = ["--model", str(MODEL)]
    assert main(["predict", str(talk), "--speakers", "2", "--json", *model]) == 0
    local = capsys.readouterr().out
    assert main(["predict", str(talk), "--speakers", "2", "--json", "--engine", "ray", *model]) == 0
    assert capsys.readouterr().out == local
    [per_file] = json.loads(local)
    assert [s["speaker"] for s in per_file["speakers"]] == ["S1", "S2"]
    for option in (["--csv"], []):  # the CSV column and the text line too
        assert main(["predict", str(talk), "--speakers", "2", *option, *model]) == 0
        local = capsys.readouterr().out
        assert main(["predict", str(talk), "--speakers", "2", *option, "--engine", "ray", *model]) == 0
        assert capsys.readouterr().out == local

    assert main(["predict", str(talk), "--speakers", "2", "--engine", "ray", "--out", str(tmp_path / "t.parquet"),
                 *model]) == 0
    import pyarrow.parquet as pq

    [voices] = pq.read_table(tmp_path / "t.parquet").column("speakers").to_pylist()
    labels = json_labels()
    for voice, printed in zip(voices, per_file["speakers"]):
        assert (voice["speaker"], voice["emotion"], voice["uncertain"]) == (printed["speaker"], printed["emotion"],
                                                                         printed["uncertain"])
        assert voice["share"] == pytest.approx(printed["share"], abs=1e-4)
        assert dict(zip(labels, voice["probabilities"])) == pytest.approx(printed["probabilities"], abs=1e-6)
    assert main(["predict", str(talk), "--speakers", "1", "--engine", "ray", "--out", str(tmp_path / "t.csv"),
                 *model]) == 0
    with open(tmp_path / "t.csv") as f:
        [row] = list(csv.DictReader(f))
    assert json.loads(row["speakers"]) == [] and row["emotion"]
    capsys.readouterr()

    # A voice profile reaches the actors: every file read against it, as the local engine reads it
    from ser_core.serving.inference import load_model
    from ser_core.serving.profile import batch_profile

    other = tmp_path / "other.wav"
    other.write_bytes(wav_bytes(np.concatenate([pause, speech(3.0, f0=150, seed=3), pause]), 16000))
    (tmp_path / "profile.json").write_text(batch_profile(load_model(MODEL), [str(talk), str(other)]).to_json())
    assert main(["predict", str(talk), "--json", *model]) == 0
    plain = json.loads(capsys.readouterr().out)[0]
    against = ["--profile", str(tmp_path / "profile.json"), "--json", *model]
    assert main(["predict", str(talk), *against]) == 0
    local = capsys.readouterr().out
    assert main(["predict", str(talk), *against, "--engine", "ray"]) == 0
    assert capsys.readouterr().out == local and json.loads(local)[0]["probabilities"] != plain["probabilities"]

    # --adapt recording reaches the actors too: a file too short to be read against itself says so
    assert main(["predict", str(talk), "--adapt", "recording", *model]) == 0
    local = capsys.readouterr()
    assert "warning: Not adapted to the recording" in local.err
    assert main(["predict", str(talk), "--adapt", "recording", "--engine", "ray", *model]) == 0
    assert capsys.readouterr() == local

    for name, option, said in (("--segments", [], "--segments"), ("--adapt batch", [], "--adapt batch"),
                               ("--classes", ["angry,sad"], "--classes"),
                               ("--workers", ["2"], "--workers (Ray's are --actors)")):
        assert main(["predict", str(talk), *name.split(), *option, "--engine", "ray", *model]) == 2
        assert capsys.readouterr().err == f"ser: {said} goes with the local engine\n"
    assert main(["predict", str(talk), "--timeline", "--engine", "ray", *model]) == 2  # no table to hold it
    assert capsys.readouterr().err == "ser: --timeline goes with --out: the printout has no per-window columns\n"
