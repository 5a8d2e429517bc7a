"""The batch map over files on Ray actors (`map_files`), for jobs past one machine.

The same contract as the local engine, `ser_core.serving.batch.map_local`, with the same factories,
batches and per-file isolation: one object per actor, built once by a picklable factory (a model, a
feature extractor), applied to batches of files that the actors read themselves. Every input gives
exactly one output row, in input order; a file that cannot be used is a row with an `error`, never
a failed job. A killed actor is restarted by Ray (`max_restarts`) and its batches are retried
(`max_task_retries`); a batch whose actor still dies is split into single files so that one file
that crashes its process becomes an error row and the rest go through."""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ..errors import ModelError
from ..serving.batch import FILES_PER_BATCH, THREAD_VARIABLES, BatchFn, ErrorRow, Row, error_row, guarded

IN_FLIGHT_PER_ACTOR = 2  # batches queued per actor: the next one is there when one finishes


class _FileWorker:
    """The actor: builds its object once, then applies it to batches; also reports on itself."""

    def __init__(self, factory: Callable[[], BatchFn], on_error: ErrorRow):
        self._fn = factory()
        self._on_error = on_error
        self._busy_s = 0.0
        self._files = 0
        self._span: list[float] = []  # wall clock at the first batch's start and the last one's end

    def run(self, items: list[str]) -> list[Row]:
        started, wall = time.perf_counter(), time.time()
        rows = guarded(self._fn, items, self._on_error)
        self._busy_s += time.perf_counter() - started
        self._files += len(items)
        self._span[:] = [self._span[0] if self._span else wall, time.time()]
        return rows

    def report(self) -> dict:
        status = Path("/proc/self/status")
        memory = {}
        if status.is_file():
            for line in status.read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    memory[key] = int(value.split()[0]) / 1024  # MiB
        span = self._span[1] - self._span[0] if self._span else 0.0
        return {"pid": os.getpid(), "busy_s": self._busy_s, "files": self._files, "working_span_s": span,
                "cpu_s": time.process_time(),  # the whole process: imports and the model's load included
                "rss_mib": memory.get("VmRSS"), "peak_rss_mib": memory.get("VmHWM")}


@dataclass
class MapStats:
    """What one `map_files` run did, filled as it goes (for benchmarks and logs)."""

    actors: int = 0
    batches: int = 0
    replaced_actors: int = 0  # actors that failed beyond Ray's own retries and were replaced
    first_result_s: float | None = None
    actor_reports: list[dict] = field(default_factory=list)


def map_files(
    items: Sequence[str],
    factory: Callable[[], BatchFn],
    *,
    batch_size: int = FILES_PER_BATCH,
    actors: int | None = None,
    max_restarts: int = 3,
    max_task_retries: int = 3,
    on_error: ErrorRow = error_row,
    stats: MapStats | None = None,
) -> Iterator[Row]:
    """One row per item, in input order, from actors on the Ray instance this process is connected
    to (`ray_session`). `factory()` runs once per actor (and again if Ray restarts it) and returns a
    function from a batch of items to one row per item."""
    import ray
    from ray.exceptions import RayError

    stats = stats if stats is not None else MapStats()
    items = [str(item) for item in items]
    if not items:
        return
    n_actors = actors or max(1, int(ray.available_resources().get("CPU", 1)))
    n_actors = min(n_actors, -(-len(items) // batch_size))
    actor_class = ray.remote(_FileWorker).options(
        num_cpus=1, max_restarts=max_restarts, max_task_retries=max_task_retries,
        # One thread per actor: BLAS/OpenMP threads on top oversubscribe the cores (as in ser_core.serving.batch).
        runtime_env={"env_vars": {name: "1" for name in THREAD_VARIABLES}},
    )
    pool = [actor_class.remote(factory, on_error) for _ in range(n_actors)]
    stats.actors = n_actors
    # (start offset, items, isolated): a batch whose actor died is retried file by file, each alone on
    # its actor, so that only a file that kills its process every time becomes an error row.
    todo = deque((start, items[start : start + batch_size], False) for start in range(0, len(items), batch_size))
    in_flight: dict = {}  # ObjectRef → (actor, slot, start, items, isolated)
    load = [0] * n_actors  # batches queued on each slot's current actor; an isolated one fills it
    done: dict[int, list[Row]] = {}  # start offset → rows, until they can be yielded in order
    next_start, started = 0, time.perf_counter()
    failures_in_a_row = 0  # actor failures with no batch done in between: the actors cannot start
    try:
        while todo or in_flight:
            for slot in sorted(range(n_actors), key=load.__getitem__):
                while todo and load[slot] < IN_FLIGHT_PER_ACTOR and not (todo[0][2] and load[slot]):
                    start, batch, isolated = todo.popleft()
                    in_flight[pool[slot].run.remote(batch)] = (pool[slot], slot, start, batch, isolated)
                    load[slot] += IN_FLIGHT_PER_ACTOR if isolated else 1
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            actor, slot, start, batch, isolated = in_flight.pop(ready[0])
            if actor is pool[slot]:
                load[slot] -= IN_FLIGHT_PER_ACTOR if isolated else 1
            try:
                done[start] = ray.get(ready[0])
                stats.batches += 1
                failures_in_a_row = 0
            except RayError as error:  # the actor died beyond Ray's retries, or a file kills it each time
                failures_in_a_row += 1
                if failures_in_a_row > 2 * n_actors + 2:
                    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
                    raise ModelError(f"the Ray actors keep failing without finishing any batch: {first_line}") from None
                if isolated:
                    done[start] = [on_error(batch[0], f"the worker died on this file ({type(error).__name__})")]
                else:
                    todo.extendleft(reversed([(start + i, [item], True) for i, item in enumerate(batch)]))
                if actor is pool[slot]:
                    ray.kill(actor, no_restart=True)
                    pool[slot], load[slot] = actor_class.remote(factory, on_error), 0
                    stats.replaced_actors += 1
            while next_start in done:
                rows = done.pop(next_start)
                if stats.first_result_s is None:
                    stats.first_result_s = time.perf_counter() - started
                next_start += len(rows)
                yield from rows
        stats.actor_reports = ray.get([actor.report.remote() for actor in pool])
    finally:
        for actor in pool:
            ray.kill(actor, no_restart=True)
