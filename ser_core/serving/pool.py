"""One bounded pool of analysis workers per process, shared by every app session and by `ser serve`.

At most `workers` analyses run at once (one per core by default) and at most `queue` wait; beyond
that `submit` refuses with `PoolFull` and a retry time, instead of letting work pile up without
bound. Each waiting job knows its place in the line and an estimate of its wait, for the page to
show instead of a silent spinner. Each analysis gets its threads from the thread policy when it
starts (`threads`): every idle core when it runs alone, one when several run.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Generic, TypeVar

from ..errors import SerError
from .threads import ThreadPolicy, process_cores, shared_policy

T = TypeVar("T")
FIRST_GUESS_S = 1.0  # an analysis's duration before any has been timed
APP_QUEUE_PER_WORKER = 16  # the app's sessions wait rather than being refused: each has at most one job


class PoolFull(SerError):
    """Every worker is busy and the queue is full."""

    def __init__(self, in_flight: int, retry_after_s: int):
        super().__init__(f"Too many analyses in flight ({in_flight}); retry in {retry_after_s} s.")
        self.in_flight, self.retry_after_s = in_flight, retry_after_s


class Job(Generic[T]):
    """One submitted analysis: its `future`, its place in the line and the wait to expect."""

    def __init__(self, pool: "AnalysisPool"):
        self._pool = pool
        self.future: Future[T]  # set by `AnalysisPool.submit`, once the job holds its place in line

    def position(self) -> int:
        """1 for the next to start, 2 behind it, …; 0 once running or done."""
        return self._pool.position(self)

    def expected_wait_s(self) -> float:
        """Seconds until the answer, estimated from the recent analyses' mean duration."""
        return self._pool.expected_wait_s(self.position())

    def cancel(self) -> bool:
        """Withdraw a job that has not started (a user who left the page); False once running."""
        return self.future.cancel()


class AnalysisPool:
    """`workers` analyses at once, `queue` more waiting, first in first out."""

    def __init__(self, workers: int, queue: int, policy: ThreadPolicy | None = None):
        if workers < 1 or queue < 0:
            raise ValueError(f"workers must be at least 1 and queue at least 0, not {workers} and {queue}")
        self.workers, self.queue = workers, queue
        self.policy = policy or shared_policy()
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="ser-analysis")
        self._waiting: list[Job] = []  # in the executor's order: first in, first started
        self._in_flight = 0
        self._mean_s = FIRST_GUESS_S
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self.workers + self.queue

    @property
    def in_flight(self) -> int:
        """Running and waiting."""
        return self._in_flight

    def submit(self, work: Callable[[int], T]) -> Job[T]:
        """Run `work(threads)` on a worker; raises `PoolFull` when the pool is at capacity."""
        job: Job[T] = Job(self)
        with self._lock:
            if self._in_flight >= self.capacity:
                raise PoolFull(self._in_flight, self._retry_after_s())
            self._in_flight += 1
            self._waiting.append(job)
        job.future = self._executor.submit(self._run, job, work)
        job.future.add_done_callback(lambda _: self._left(job))
        return job

    def _run(self, job: Job[T], work: Callable[[int], T]) -> T:
        with self._lock:
            self._waiting.remove(job)
        started = time.monotonic()
        try:
            with self.policy.claim() as threads:
                return work(threads)
        finally:
            with self._lock:
                self._mean_s = 0.8 * self._mean_s + 0.2 * (time.monotonic() - started)

    def _left(self, job: Job) -> None:
        with self._lock:
            self._in_flight -= 1
            if job in self._waiting:  # cancelled before it started
                self._waiting.remove(job)

    def position(self, job: Job) -> int:
        with self._lock:
            return self._waiting.index(job) + 1 if job in self._waiting else 0

    def expected_wait_s(self, position: int) -> float:
        """Until a job at `position` (0: running) is answered: the rounds of `workers` analyses
        ahead of it, and its own."""
        with self._lock:
            return self._mean_s * (math.ceil(position / self.workers) + 1) if position else self._mean_s

    def retry_after_s(self) -> int:
        """Whole seconds until the work in flight now is done, by the recent mean duration."""
        with self._lock:
            return self._retry_after_s()

    def _retry_after_s(self) -> int:
        return max(1, math.ceil(self._mean_s * self._in_flight / self.workers))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@functools.lru_cache(maxsize=1)
def app_pool() -> AnalysisPool:
    """The app's pool: one per server process, one worker per core; sessions wait in its line."""
    cores = process_cores()
    return AnalysisPool(cores, APP_QUEUE_PER_WORKER * cores)
