"""Load benchmark of `ser serve`: K concurrent clients posting 3 s clips, against the same model
called in-process by K threads (the ceiling the service is compared with).

Per level: successful analyses per second, latency p50/p95/p99 of the successes, answers by status
(429s are deliberate: the server refuses what its pool and queue cannot hold, and a client waits the
Retry-After it is given, as a well-behaved one would), the server's resident memory before and after,
and where the CPU went: the server's, the clients' and the in-process run's, per analysis.

The two sides of a level alternate, served - in-process - in-process - served, twice (`--rounds`), so
that a drift in the machine's speed over the run (measured: 32-39 analyses/s for the same server on
the same quiet machine a few minutes apart) and a burst of other work fall on both sides alike instead
of on whichever ran later; the cores each side used show what the machine gave it. The clients
share the machine's cores with the server, so they are kept light: one thread, one asyncio loop, a
kept-alive socket per client and requests prepared once; their CPU is measured and reported.

    python bench/serve_load.py                        # 1, 4, 16, 64 clients, 60 s of each side each
    python bench/serve_load.py --duration 20          # shorter levels on a shared machine

Results: bench/results/serve_load.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ser_core.io.signals import speech, wav_bytes  # noqa: E402
from provenance import provenance  # noqa: E402
from report import write_results
from ser_core.serving.http import default_workers  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CLIP_S = 3.0
N_CLIPS = 16  # distinct clips, so that no cache of any kind answers
WARM_UP_S = 3.0  # each side, before the first level: first calls set up buffers and engines


def clips() -> list[bytes]:
    return [wav_bytes(speech(CLIP_S, 16000, f0=110 + 10 * i, seed=i), 16000) for i in range(N_CLIPS)]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of every thread of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentiles(latencies: list[float]) -> dict:
    if not latencies:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    p = np.percentile(np.array(latencies) * 1000, [50, 95, 99])
    return {"p50_ms": round(float(p[0]), 1), "p95_ms": round(float(p[1]), 1), "p99_ms": round(float(p[2]), 1)}


class Tally:
    """What the clients of one side of a level got: answers by status and latencies of the successes
    answered before the end; and the CPU seconds spent over `seconds` of it: this process's (`cpu_s`:
    the clients when served, the analyses in-process) and the server's (`server_cpu_s`)."""

    def __init__(self):
        self.statuses: dict[str, int] = {}
        self.latencies: list[float] = []
        self.cpu_s = self.server_cpu_s = self.seconds = 0.0

    def answered(self, status, elapsed: float, stop_at: float) -> None:
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        if status == 200 and time.monotonic() <= stop_at:
            self.latencies.append(elapsed)


def requests_for(data: list[bytes]) -> list[bytes]:
    """Each clip as one whole HTTP/1.1 request (headers and raw body), built once."""
    head = (b"POST /v1/analyze?segments=true HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n")
    return [head % len(clip) + clip for clip in data]


async def http_client(port: int, requests: list[bytes], stop_at: float, tally: Tally, seed: int) -> None:
    """One client on a kept-alive connection: a request, its whole answer, the next request; after a
    429 or 503 it waits the Retry-After given."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = seed
    while time.monotonic() < stop_at:
        request = requests[i % len(requests)]
        i += 1
        started = time.monotonic()
        retry_after, close = None, False
        try:
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            status, length = int(head[0].split()[1]), 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                name = name.lower()
                if name == "content-length":
                    length = int(value)
                elif name == "retry-after":
                    retry_after = float(value)
                elif name == "connection":
                    close = value.strip().lower() == "close"
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
            status, close = f"connection: {type(error).__name__}", True
        tally.answered(status, time.monotonic() - started, stop_at)
        if close:
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if status in (429, 503) and retry_after:
            await asyncio.sleep(min(retry_after, max(0.0, stop_at - time.monotonic())))
    writer.close()


def serve_half(port: int, server_pid: int, clients: int, seconds: float, requests: list[bytes], tally: Tally) -> None:
    async def all_clients():
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(http_client(port, requests, stop_at, tally, k * 3) for k in range(clients)))

    cpu, server_cpu, started = own_cpu_s(), process_cpu_s(server_pid), time.monotonic()
    asyncio.run(all_clients())
    tally.cpu_s += own_cpu_s() - cpu
    tally.server_cpu_s += process_cpu_s(server_pid) - server_cpu
    tally.seconds += time.monotonic() - started


def in_process_client(model, data: list[bytes], stop_at: float, tally: Tally, lock: threading.Lock, seed: int) -> None:
    from ser_core.io.audio import load_audio

    i = seed
    while time.monotonic() < stop_at:
        started = time.monotonic()
        model.analyze_audio(load_audio(data[i % len(data)], model.params.sample_rate))
        i += 1
        with lock:
            tally.answered(200, time.monotonic() - started, stop_at)


def in_process_half(model, clients: int, seconds: float, data: list[bytes], tally: Tally) -> None:
    lock, stop_at = threading.Lock(), time.monotonic() + seconds
    cpu, started = own_cpu_s(), time.monotonic()
    threads = [threading.Thread(target=in_process_client, args=(model, data, stop_at, tally, lock, k * 3))
               for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tally.cpu_s += own_cpu_s() - cpu
    tally.seconds += time.monotonic() - started


def summary(tally: Tally, clients: int, duration: float) -> dict:
    ok = len(tally.latencies)
    return {"clients": clients, "duration_s": duration, "ok": ok, "throughput_per_s": round(ok / duration, 2),
            **percentiles(tally.latencies), "statuses": tally.statuses}


def cpu(seconds: float, tally: Tally, name: str) -> dict:
    """`name`'s CPU over a side of a level: cores used on average, and milliseconds per analysis."""
    ok = len(tally.latencies)
    return {f"{name}_cpu_cores": round(seconds / tally.seconds, 3) if tally.seconds else None,
            f"{name}_cpu_ms_per_analysis": round(1000 * seconds / ok, 2) if ok else None}


def serve_level(port: int, server_pid: int, clients: int, duration: float, data: list[bytes]) -> dict:
    """`clients` HTTP clients for `duration` seconds in one go (the soak's kind of level)."""
    tally = Tally()
    load_before = os.getloadavg()[0]
    serve_half(port, server_pid, clients, duration, requests_for(data), tally)
    return {**summary(tally, clients, duration), **cpu(tally.cpu_s, tally, "client"),
            **cpu(tally.server_cpu_s, tally, "server"), "load_average_before": round(load_before, 2),
            "load_average_after": round(os.getloadavg()[0], 2)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, workers: int, log) -> subprocess.Popen:
    """`ser serve` with its log going to `log`, a file: a pipe nobody reads fills up with access-log
    lines and then blocks the server."""
    server = subprocess.Popen([sys.executable, "-m", "ser_core.cli", "serve", "--model", model, "--port", str(port),
                               "--workers", str(workers)], stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.5)
    server.kill()
    log.seek(0)
    raise SystemExit(f"ser serve did not become ready: {log.read().decode()[-2000:]}")


def markdown(report: dict) -> str:
    lines = [f"# `ser serve` under load: {report['model']}, {CLIP_S:g} s clips, {report['duration_s']:g} s per level and side",
             "", f"Measured {report['date']} on {report['machine']} ({report['cores']} cores), commit "
             f"{report['provenance']['commit'][:7]}{' (modified tree)' if report['provenance']['dirty'] else ''}. "
             f"Server: `--workers {report['workers']}` (queue: 2 per worker; more in flight gets 429 + Retry-After). "
             f"Each level alternates served and in-process parts of {report['duration_s'] / (2 * report['rounds']):g} s "
             f"(served, in-process, in-process, served; {report['rounds']} times). The clients run on the same cores as the "
             f"server: one thread, kept-alive sockets; their CPU is the 'clients' column. {report['note']}", "",
             "| clients | ser serve: analyses/s | in-process: analyses/s | share of in-process | p50 ms | p95 ms | p99 ms "
             "| answers | CPU ms per analysis: server / in-process | cores used: server / in-process | clients' CPU (cores) "
             "| server RSS MB (before → after) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for served, direct in zip(report["serve"], report["in_process"]):
        ratio = served["throughput_per_s"] / direct["throughput_per_s"] if direct["throughput_per_s"] else float("nan")
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(served["statuses"].items()))
        lines.append(f"| {served['clients']} | {served['throughput_per_s']:.2f} | {direct['throughput_per_s']:.2f} | "
                     f"{ratio:.0%} | {served['p50_ms']} | {served['p95_ms']} | {served['p99_ms']} | {answers} | "
                     f"{served['server_cpu_ms_per_analysis']} / {direct['in_process_cpu_ms_per_analysis']} | "
                     f"{served['server_cpu_cores']} / {direct['in_process_cpu_cores']} | {served['client_cpu_cores']} | {served['rss_mb_before']:.0f} → {served['rss_mb_after']:.0f} |")
    lines += ["", "In-process latencies (same clients, `SerModel.analyze_audio` on threads): " + "; ".join(
        f"{d['clients']}: p50 {d['p50_ms']} / p95 {d['p95_ms']} ms" for d in report["in_process"]),
        "", "Load average (1 min) at the start of each level: " + ", ".join(
        f"{s['clients']}: {s['load_average_before']}" for s in report["serve"]), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of each side per level")
    parser.add_argument("--workers", type=int, default=default_workers(), help="ser serve's default unless given")
    parser.add_argument("--rounds", type=int, default=2,
                        help="served, in-process, in-process, served: this many times per level")
    parser.add_argument("--note", default="", help="a sentence for the report (what else ran on the machine)")
    args = parser.parse_args()
    data, part = clips(), args.duration / (2 * args.rounds)
    requests = requests_for(data)

    from ser_core.serving.inference import load_model_quietly
    from ser_core.serving.shipped import resolve_model

    model_dir = resolve_model(args.model)
    report = {"provenance": provenance(model_dir), "model": model_dir.resolve().name, "duration_s": args.duration,
              "rounds": args.rounds, "clip_s": CLIP_S, "workers": args.workers, "cores": len(os.sched_getaffinity(0)),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
              "note": args.note, "serve": [], "in_process": []}

    port, log = free_port(), tempfile.TemporaryFile()
    server = start_server(str(model_dir), port, args.workers, log)
    model = load_model_quietly(model_dir)
    try:
        serve_half(port, server.pid, 2, WARM_UP_S, requests, Tally())
        in_process_half(model, 2, WARM_UP_S, data, Tally())
        for clients in args.clients:
            served, direct = Tally(), Tally()
            before, load_before = rss_mb(server.pid), os.getloadavg()[0]
            for _ in range(args.rounds):
                serve_half(port, server.pid, clients, part, requests, served)
                in_process_half(model, clients, part, data, direct)
                in_process_half(model, clients, part, data, direct)
                serve_half(port, server.pid, clients, part, requests, served)
            level = {**summary(served, clients, args.duration), **cpu(served.server_cpu_s, served, "server"),
                     **cpu(served.cpu_s, served, "client"), "rss_mb_before": round(before, 1),
                     "rss_mb_after": round(rss_mb(server.pid), 1), "load_average_before": round(load_before, 2),
                     "load_average_after": round(os.getloadavg()[0], 2)}
            report["serve"].append(level)
            report["in_process"].append({**summary(direct, clients, args.duration), **cpu(direct.cpu_s, direct, "in_process")})
            print(json.dumps(level), json.dumps(report["in_process"][-1]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)

    RESULTS.mkdir(parents=True, exist_ok=True)
    write_results(RESULTS / "serve_load", report, markdown(report))


if __name__ == "__main__":
    main()
