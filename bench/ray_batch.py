"""Batch prediction on Ray against the local worker pool, on the same corpus files:

- clips/s of `ser_core.serving.batch.predict_files` with 2 workers and of `ser_core.distributed.ray.predict_rows`
  on a local Ray instance with 2 actors (one core each), alternating, ROUNDS times each;
- Ray's cost: starting the instance, time to the first result, and per file the actor time not
  spent predicting ((wall × actors − Σ busy) / files) and the wall time over the local pool;
- memory: each actor's RSS and peak RSS, and Ray's own processes (GCS, raylet, …).

    python bench/ray_batch.py [--files 2000] [--rounds 3]   writes bench/results/ray_batch.{json,md}

The machine is shared: the load average before and after is recorded with the numbers.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

from provenance import provenance
from report import write_results

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "default"
CORPORA = ROOT.parent / "shared" / "corpora"
RESULTS = ROOT / "bench" / "results"


def corpus_files(n: int, seed: int = 0) -> list[str]:
    with open(CORPORA / "manifest.csv", newline="") as f:
        paths = [str(CORPORA / row["path"]) for row in csv.DictReader(f)]
    return sorted(random.Random(seed).sample(paths, n))


def status_mib(pid: int | str, key: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class ChildPeakRss(threading.Thread):
    """Peak RSS (VmHWM) of this process's children, sampled while they run: the local pool's workers."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peaks: dict[int, float] = {}
        self.cpu_s: dict[int, float] = {}  # user + system CPU seconds, last sample (every 0.25 s)
        self.stop = threading.Event()

    def run(self) -> None:
        me = f"PPid:\t{os.getpid()}"
        while not self.stop.wait(0.25):
            for proc in Path("/proc").iterdir():
                try:
                    if (proc.name.isdigit() and me in (proc / "status").read_text()
                            and b"spawn_main" in (proc / "cmdline").read_bytes()):  # not Ray's, not the tracker
                        self.peaks[int(proc.name)] = status_mib(proc.name, "VmHWM") or 0.0
                        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                        self.cpu_s[int(proc.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                except OSError:
                    continue


def run_local(files: list[str]) -> dict:
    from ser_core.serving.batch import predict_files

    sampler = ChildPeakRss()
    sampler.start()
    started = time.perf_counter()
    stream = predict_files(files, MODEL, workers=2)
    results = [next(stream)]
    first = time.perf_counter() - started
    results += list(stream)
    seconds = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    return {"seconds": seconds, "clips_per_s": len(files) / seconds, "first_result_s": first,
            "errors": sum(r[3] is not None for r in results),
            "worker_peak_rss_mib": sorted(round(v, 1) for v in sampler.peaks.values()),
            "worker_cpu_ms_per_file": 1000 * sum(sampler.cpu_s.values()) / len(files)}


def run_ray(files: list[str]) -> dict:
    from ser_core.distributed.engine import MapStats
    from ser_core.distributed.ray import predict_rows

    stats = MapStats()
    started = time.perf_counter()
    rows = list(predict_rows(files, MODEL, actors=2, stats=stats))
    seconds = time.perf_counter() - started
    busy = sum(r["busy_s"] for r in stats.actor_reports)
    span = sum(r["working_span_s"] for r in stats.actor_reports)
    return {"seconds": seconds, "clips_per_s": len(files) / seconds, "first_result_s": stats.first_result_s,
            "errors": sum(bool(r["error"]) for r in rows), "actors": stats.actors,
            "actor_busy_s": busy, "idle_actor_ms_per_file": 1000 * (seconds * stats.actors - busy) / len(files),
            # between an actor's first batch and its last: the cost per file of Ray's calls and transfers
            "steady_overhead_ms_per_file": 1000 * (span - busy) / len(files),
            "actor_cpu_ms_per_file": 1000 * sum(r["cpu_s"] for r in stats.actor_reports) / len(files),
            "actor_rss_mib": [round(r["rss_mib"], 1) for r in stats.actor_reports],
            "actor_peak_rss_mib": [round(r["peak_rss_mib"], 1) for r in stats.actor_reports]}


def ray_processes_rss_mib(temp_dir: str, exclude: set[int]) -> dict[str, float]:
    """RSS of the processes Ray started for this session (found by its temp folder in their command
    line), actors excluded."""
    out: Counter = Counter()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in exclude or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if temp_dir not in cmdline:
                continue
        except OSError:
            continue
        rss = status_mib(proc.name, "VmRSS")
        if rss is None:
            continue
        words = cmdline.split()
        name = Path(words[0]).name
        if name.startswith("python") and len(words) > 1:
            name = Path(words[1 + (words[1] == "-u")]).name  # the script: dashboard.py, monitor.py, …
        if name == "default_worker.py":
            name = "idle workers (prestarted)"
        out[name] += rss
    return {k: round(v, 1) for k, v in sorted(out.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import ray

    from ser_core.distributed.engine import MapStats
    from ser_core.distributed.ray import predict_rows, ray_session
    from ser_core.serving.batch import predict_files

    files = corpus_files(args.files)
    run = provenance(MODEL)
    load_before = os.getloadavg()
    list(predict_files(files[:4], MODEL, workers=1))  # page in libraries and files' first reads
    started = time.perf_counter()
    with ray_session(num_cpus=2):
        ray_start_s = time.perf_counter() - started
        temp_dir = ray._private.worker._global_node.get_temp_dir_path()
        warm = MapStats()
        list(predict_rows(files[:32], MODEL, actors=2, stats=warm))  # the first actors also import Ray's worker code
        local, on_ray = [], []
        for _ in range(args.rounds):  # results are written after each round: a long run keeps what it measured
            local.append(run_local(files))
            on_ray.append(run_ray(files))
            ray_rss = ray_processes_rss_mib(temp_dir, set())
            write(files, local, on_ray, ray_start_s, ray_rss, warm, load_before, args.rounds, run)


def write(files, local, on_ray, ray_start_s, ray_rss, warm, load_before, rounds, run) -> None:
    import ray

    load_after = os.getloadavg()

    def median(runs, key):
        return statistics.median(r[key] for r in runs)

    summary = {
        "local_clips_per_s": median(local, "clips_per_s"),
        "ray_clips_per_s": median(on_ray, "clips_per_s"),
        "ray_over_local": median(on_ray, "clips_per_s") / median(local, "clips_per_s"),
        "ray_extra_wall_ms_per_file": 1000 * (median(on_ray, "seconds") - median(local, "seconds")) / len(files),
        "ray_idle_actor_ms_per_file": median(on_ray, "idle_actor_ms_per_file"),
        "ray_steady_overhead_ms_per_file": median(on_ray, "steady_overhead_ms_per_file"),
        "ray_clips_per_s_with_start": len(files) / (median(on_ray, "seconds") + ray_start_s),
        "local_first_result_s": median(local, "first_result_s"),
        "ray_first_result_s": median(on_ray, "first_result_s"),
        "ray_start_s": ray_start_s,
        "actor_peak_rss_mib": max(max(r["actor_peak_rss_mib"]) for r in on_ray),
        "local_worker_peak_rss_mib": max(max(r["worker_peak_rss_mib"], default=0) for r in local),
        "ray_own_processes_rss_mib": ray_rss,
        "per_core_clips_per_s": median(on_ray, "clips_per_s") / 2,
        # CPU time the worker processes used (start included): what a file costs a core, whatever the load
        "local_worker_cpu_ms_per_file": median(local, "worker_cpu_ms_per_file"),
        "ray_actor_cpu_ms_per_file": median(on_ray, "actor_cpu_ms_per_file"),
    }
    result = {
        "provenance": run, "files": len(files), "formats": dict(Counter(Path(f).suffix for f in files)),
        "model": run["models"][0]["name"], "rounds": f"{len(local)} of {rounds}", "summary": summary,
        "local_workers_2": local, "ray_actors_2": on_ray, "ray_warm_up_first_result_s": warm.first_result_s,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "ray": ray.__version__,
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in load_after], "niceness": os.nice(0)},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_results(RESULTS / "ray_batch", result, markdown(result))


def markdown(r: dict) -> str:
    s, m = r["summary"], r["machine"]
    rows = [
        ("clips/s, `predict_files` with 2 workers (median of rounds)", f"{s['local_clips_per_s']:.0f}"),
        ("clips/s, Ray with 2 actors, one core each (median)", f"{s['ray_clips_per_s']:.0f}"),
        ("Ray / local", f"{s['ray_over_local']:.2f}"),
        ("clips/s on Ray counting the start of the Ray instance too", f"{s['ray_clips_per_s_with_start']:.0f}"),
        ("Ray's extra wall time per file over the local pool", f"{s['ray_extra_wall_ms_per_file']:.2f} ms"),
        ("actor time not spent predicting, per file ((wall × actors − Σ busy) / files; mostly actor start)", f"{s['ray_idle_actor_ms_per_file']:.2f} ms"),
        ("the same between each actor's first and last batch (Ray's calls and transfers)", f"{s['ray_steady_overhead_ms_per_file']:.3f} ms"),
        ("CPU time per file of the worker processes, start included: local workers / Ray actors",
         f"{s['local_worker_cpu_ms_per_file']:.2f} / {s['ray_actor_cpu_ms_per_file']:.2f} ms"),
        ("first result: local pool / Ray (actors started per job)", f"{s['local_first_result_s']:.2f} / {s['ray_first_result_s']:.2f} s"),
        ("starting the local Ray instance (`ray.init`, once per job)", f"{s['ray_start_s']:.1f} s"),
        ("peak RSS of one actor / of one local pool worker", f"{s['actor_peak_rss_mib']:.0f} / {s['local_worker_peak_rss_mib']:.0f} MiB"),
        ("Ray's own processes (RSS)", ", ".join(f"{k} {v:.0f} MiB" for k, v in s["ray_own_processes_rss_mib"].items())),
    ]
    runs = "; ".join(f"local {a['clips_per_s']:.0f} / Ray {b['clips_per_s']:.0f}"
                     for a, b in zip(r["local_workers_2"], r["ray_actors_2"]))
    return "\n".join([
        f"# Ray batch benchmark: {r['files']} corpus files ({', '.join(f'{n} {k}' for k, n in r['formats'].items())}), "
        f"`{r['model']}`",
        "",
        "| what | measured |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows), "",
        f"Rounds (clips/s, alternating): {runs}. Machine: {m['cpus']} cores, Python {m['python']}, Ray {m['ray']}, "
        f"run at niceness {m['niceness']}; load average (1/5/15 min) {m['load_average_before']} before, "
        f"{m['load_average_after']} after (another job was using the machine).", "",
    ])


if __name__ == "__main__":
    main()
