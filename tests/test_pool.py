"""The thread policy's decisions and the analysis pool's line: pure decisions and event-driven order,
no timed assertion; concurrent analyses through the pool give the answers of one at a time."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ser_core.serving.pool import AnalysisPool, PoolFull
from ser_core.serving.threads import OtherLoad, ThreadPolicy, busy_elsewhere, threads_for
from test_app import served  # noqa: F401  (the fixture)


class FixedLoad(OtherLoad):
    """Other processes' load as a test sets it."""

    def __init__(self, busy: float = 0.0):
        super().__init__()
        self.busy = busy

    def start(self) -> None:
        pass

    def busy_cores(self) -> float:
        return self.busy


def test_one_analysis_gets_every_idle_core_and_several_get_one_each():
    assert threads_for(cores=2, running=1, busy_elsewhere=0.0) == 2
    assert threads_for(cores=2, running=2, busy_elsewhere=0.0) == 1
    assert threads_for(cores=2, running=5, busy_elsewhere=0.0) == 1
    assert threads_for(cores=8, running=2, busy_elsewhere=0.0) == 4
    assert threads_for(cores=1, running=1, busy_elsewhere=0.0) == 1


def test_cores_other_processes_keep_busy_are_not_offered():
    assert threads_for(cores=2, running=1, busy_elsewhere=1.0) == 1  # a training job on the other core
    assert threads_for(cores=2, running=1, busy_elsewhere=2.0) == 1  # never fewer than one
    assert threads_for(cores=8, running=1, busy_elsewhere=3.0) == 5
    assert threads_for(cores=2, running=1, busy_elsewhere=0.1) == 2  # background noise is not a taken core


def test_other_processes_load_is_the_busy_time_less_this_process_own():
    # Two cores over 100 jiffies each: 150 busy, 100 of them this process's own.
    assert busy_elsewhere(busy=150, total=200, own=100, cpus=2) == pytest.approx(0.5)
    assert busy_elsewhere(busy=100, total=200, own=100, cpus=2) == 0.0
    assert busy_elsewhere(busy=100, total=200, own=120, cpus=2) == 0.0  # own time counted on a CPU outside the set


def test_the_machine_reading_is_a_share_of_this_process_cores():
    load = OtherLoad(interval_s=0.05)
    assert 0.0 <= load.busy_cores() <= max(1, len(load.cpus))  # waits for the first interval, then reads


def test_a_claim_counts_while_held():
    policy = ThreadPolicy(cores=2, other_load=FixedLoad())
    with policy.claim() as first:
        assert first == 2 and policy.running == 1
        with policy.claim() as second:
            assert second == 1 and policy.running == 2
    assert policy.running == 0
    with policy.claim() as alone_again:
        assert alone_again == 2
    with ThreadPolicy(cores=2, other_load=FixedLoad(busy=1.0)).claim() as shared_machine:
        assert shared_machine == 1


def blocked_pool(workers: int = 1, queue: int = 3):
    """A pool whose running jobs wait for `release`, so that the line stays as the test builds it."""
    release = threading.Event()
    pool = AnalysisPool(workers, queue, ThreadPolicy(cores=2, other_load=FixedLoad()))

    def work(threads: int) -> int:
        release.wait(30)
        return threads

    return pool, release, work


def test_jobs_know_their_place_in_line_and_a_full_pool_refuses():
    pool, release, work = blocked_pool(workers=1, queue=3)
    try:
        running = pool.submit(work)
        waiting = [pool.submit(work) for _ in range(3)]
        assert [job.position() for job in waiting] == [1, 2, 3]
        assert running.position() == 0
        assert waiting[2].expected_wait_s() > waiting[0].expected_wait_s()
        with pytest.raises(PoolFull) as refused:
            pool.submit(work)
        assert refused.value.retry_after_s >= 1 and pool.in_flight == 4
        assert waiting[0].cancel()  # a user who left: withdrawn, the others move up
        assert [job.position() for job in waiting[1:]] == [1, 2] and pool.in_flight == 3
        release.set()
        assert running.future.result(30) == 2  # alone on two idle cores
        assert all(job.future.result(30) == 2 for job in waiting[1:])  # each ran alone too
        assert pool.in_flight == 0
    finally:
        release.set()
        pool.shutdown()


def test_concurrent_jobs_get_one_thread_each():
    pool, release, work = blocked_pool(workers=2, queue=0)
    try:
        jobs = [pool.submit(work) for _ in range(2)]
        release.set()
        assert sorted(job.future.result(30) for job in jobs) in ([1, 1], [1, 2])  # the first may start alone
    finally:
        release.set()
        pool.shutdown()


def test_concurrent_analyses_through_the_pool_match_one_at_a_time():
    from ser_core.io.signals import speech, wav_bytes
    from ser_core.serving.inference import load_model
    from ser_core.serving.shipped import resolve_model

    model = load_model(resolve_model(None))
    clips = [wav_bytes(speech(2.0 + i, seed=i)) for i in range(4)]
    alone = [model.with_threads(1).predict(clip) for clip in clips]
    wide = [model.with_threads(2).predict(clip) for clip in clips]
    pool = AnalysisPool(2, 8)
    try:
        jobs = [pool.submit(lambda threads, clip=clip: model.with_threads(threads).predict(clip)) for clip in clips * 2]
        together = [job.future.result(120) for job in jobs]
    finally:
        pool.shutdown()
    for expected, got_wide, got in zip(alone * 2, wide * 2, together):
        assert list(got) == list(expected)
        np.testing.assert_allclose(list(got.values()), list(expected.values()), atol=1e-5)
        np.testing.assert_allclose(list(got_wide.values()), list(expected.values()), atol=1e-5)


def test_a_full_pool_is_said_on_the_page_and_a_rerun_tries_again(served):
    """Every place in the app's pool taken: the upload gets one sentence, not a spinner without end;
    the refusal is not kept as the recording's answer, so the next run analyses it."""
    from test_app import bar_charts, run

    from ser_core.io.signals import speech, wav_bytes
    from ser_core.serving.pool import app_pool

    pool = app_pool()
    release = threading.Event()
    held = [pool.submit(lambda threads: release.wait(60)) for _ in range(pool.capacity - pool.in_flight)]
    try:
        at = run("pages/upload.py")
        at.file_uploader[0].set_value(("clip.wav", wav_bytes(speech(3.0)), "audio/wav")).run()
        assert [e.value for e in at.error if "Too many analyses in flight" in e.value]
    finally:
        release.set()
        for job in held:
            job.future.result(60)
    at.run()
    assert not at.error and not at.exception and bar_charts(at)


def test_the_quick_answer_is_the_light_model_s_and_says_so():
    from ser_core.io.signals import speech, wav_bytes
    from ser_core.serving.inference import load_model
    from ser_core.serving.shipped import resolve_model, shipped_models
    from ser_core.ui.common import LIGHT_MODEL, headline, quick_answer

    clip = wav_bytes(speech(3.0))
    served = load_model(resolve_model(None))
    light = load_model(shipped_models()[LIGHT_MODEL])
    reading = light.analyze(clip)
    sentence = quick_answer(served, clip)
    assert LIGHT_MODEL in sentence and "less accurate" in sentence
    assert headline(reading.emotion, reading.confidence, reading.is_uncertain) in sentence
    assert quick_answer(light, clip) == ""  # the light model serving: nothing quicker to offer
    assert quick_answer(served, wav_bytes(speech(40.0))) == ""  # too long to read on the page's thread


def test_a_waiting_session_sees_its_place_in_line_and_the_quick_answer(monkeypatch):
    """The page's notice while a job waits: its place, and the light model's reading once the wait would
    pass the threshold (here at once); the job ahead is let go when the notice has been shown."""
    from ser_core.io.signals import speech, wav_bytes
    from ser_core.serving.inference import load_model
    from ser_core.serving.shipped import resolve_model
    from ser_core.ui import common

    pool = AnalysisPool(1, 4, ThreadPolicy(cores=1, other_load=FixedLoad()))
    release = threading.Event()
    ahead = pool.submit(lambda threads: release.wait(60))
    shown: list[str] = []

    def record(text: str, **_) -> None:
        shown.append(text)
        if any("the light model" in line for line in shown):
            release.set()

    monkeypatch.setattr(common, "app_pool", lambda: pool)
    monkeypatch.setattr(common, "QUICK_ANSWER_AFTER_S", 0.0)
    monkeypatch.setattr(common.st, "info", record)
    monkeypatch.setattr(common.st, "markdown", record)
    try:
        answer = common.wait_in_line(load_model(resolve_model(None)), wav_bytes(speech(3.0)), lambda threads: "done")
    finally:
        release.set()
        pool.shutdown()
    assert answer == "done" and ahead.future.result(60) is True
    assert "you are number 1 in line" in shown[0]
    assert common.LIGHT_MODEL in shown[1] and "replaces it when its turn comes" in shown[1]
