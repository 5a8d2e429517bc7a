"""How many threads one analysis may use: every idle core when it runs alone, one when several run.

One place decides, for the three libraries an analysis spends its time in: CTranslate2 (the
Whisper blocks, most of it: `frontend.encoder.shared_encoder` keeps one engine per thread count),
BLAS (features, the voice detector; pinned with threadpoolctl by `SerModel`) and LiteRT (the head,
0.2 ms of a 3 s clip: always one thread).

"Idle" means idle on the machine, not only in this process. On the 2-core AMD EPYC the Whisper
blocks of a 3 s clip took 48 ms on one thread; on two threads while another process held the second
core they took 610 ms (an OpenMP thread waits for its partner to be scheduled). So the cores other
processes keep busy, read from /proc/stat less this process's own CPU time, are not offered.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import time
from pathlib import Path
from typing import Iterator

# A core counts as taken by other processes once they use this share of it: two threads lose badly
# to a partner that is descheduled even a quarter of the time.
TAKEN_SHARE = 0.25
SAMPLE_INTERVAL_S = 0.5  # how often the other processes' load is read (two small /proc files)


def process_cores() -> int:
    """The cores this process may run on (its affinity: `taskset -c 1` gives 1), else the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_for(cores: int, running: int, busy_elsewhere: float) -> int:
    """The threads for one analysis when `running` analyses run in this process, itself included,
    and other processes keep `busy_elsewhere` cores' worth of this process's cores busy: an equal
    share of the cores, never more than the cores nobody else is using, and at least one."""
    taken = math.floor(busy_elsewhere + 1.0 - TAKEN_SHARE)
    return max(1, min(cores - taken, cores // max(1, running)))


def busy_elsewhere(busy: int, total: int, own: int, cpus: int) -> float:
    """Cores' worth of other processes' work, from jiffies over one interval: the busy time of this
    process's `cpus` cores (out of `total`, all of theirs) less this process's `own` CPU time."""
    return max(0.0, (busy - own) * cpus / total) if total > 0 else 0.0


class OtherLoad:
    """How many of this process's cores other processes keep busy, read every `SAMPLE_INTERVAL_S`
    by a daemon thread from `start()` on. Without /proc (not Linux) it reads 0."""

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S):
        self.interval_s = interval_s
        self.cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self._busy = 0.0
        self._lock = threading.Lock()
        self._sampled = threading.Event()  # set once the first interval has been read (or cannot be)
        self._sampler: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._sampler is None:
                self._sampler = threading.Thread(target=self._sample, name="ser-other-load", daemon=True)
                self._sampler.start()

    def _reading(self) -> tuple[int, int, int] | None:
        """(busy jiffies of this process's cores, all their jiffies, this process's own jiffies)."""
        try:
            lines = Path("/proc/stat").read_text().splitlines()
            own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        wanted = {f"cpu{n}" for n in self.cpus}
        busy = total = 0
        for line in lines:
            name, *values = line.split()
            if name in wanted:
                jiffies = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
                total += sum(jiffies)
                busy += sum(jiffies) - jiffies[3] - jiffies[4]
        return busy, total, int(own[11]) + int(own[12])  # utime + stime, every thread of the process

    def _sample(self) -> None:
        try:
            previous = self._reading()
            while previous is not None:
                time.sleep(self.interval_s)
                current = self._reading()
                if current is None:
                    return
                busy, total, own = (now - before for now, before in zip(current, previous))
                with self._lock:
                    self._busy = busy_elsewhere(busy, total, own, len(self.cpus))
                self._sampled.set()
                previous = current
        finally:
            self._sampled.set()

    def busy_cores(self) -> float:
        """The latest reading; the first call waits for the first interval (at most `interval_s`
        after `start`), so that no analysis is given cores before anything was read."""
        self.start()
        self._sampled.wait()
        with self._lock:
            return self._busy


class ThreadPolicy:
    """Counts the analyses running in this process and gives each its threads when it starts
    (`claim`). An analysis keeps its count until it ends: one that started alone on every core
    shares the machine briefly with the next one, which gets one thread."""

    def __init__(self, cores: int | None = None, other_load: OtherLoad | None = None):
        self.cores = cores or process_cores()
        self.other_load = other_load or OtherLoad()
        if self.cores > 1:
            self.other_load.start()  # read before the first analysis asks
        self.running = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def claim(self) -> Iterator[int]:
        busy = self.other_load.busy_cores() if self.cores > 1 else 0.0
        with self._lock:
            self.running += 1
            threads = threads_for(self.cores, self.running, busy)
        try:
            yield threads
        finally:
            with self._lock:
                self.running -= 1


@functools.lru_cache(maxsize=1)
def shared_policy() -> ThreadPolicy:
    """One policy per process: the app's sessions and the HTTP API share the cores."""
    return ThreadPolicy()
