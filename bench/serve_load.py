"""Load benchmark of `ser serve`: K concurrent clients posting 3 s clips for D seconds each, against
the same model called in-process by K threads (the ceiling the service is compared with).

Per level: successful analyses per second, latency p50/p95/p99 of the successes, answers by status
(429s are deliberate: the server refuses what its pool and queue cannot hold, and a client waits the
Retry-After it is given, as a well-behaved one would), and the server's resident memory before and
after. The clients run on the same machine as the server, so on a small machine they take CPU from it.

    python bench/serve_load.py                        # 1, 4, 16, 64 clients, 60 s each
    python bench/serve_load.py --duration 20          # shorter levels on a shared machine

Results: bench/results/serve_load.json and .md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
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

RESULTS = ROOT / "bench" / "results"
CLIP_S = 3.0
N_CLIPS = 16  # distinct clips, so that no cache of any kind answers


def clips() -> list[bytes]:
    return [wav_bytes(speech(CLIP_S, 16000, f0=110 + 10 * i, seed=i), 16000) for i in range(N_CLIPS)]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentiles(latencies: list[float]) -> dict:
    if not latencies:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    p = np.percentile(np.array(latencies) * 1000, [50, 95, 99])
    return {"p50_ms": round(float(p[0]), 1), "p95_ms": round(float(p[1]), 1), "p99_ms": round(float(p[2]), 1)}


def http_client(port: int, data: list[bytes], stop_at: float, out: dict, lock: threading.Lock, seed: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    i = seed
    while time.monotonic() < stop_at:
        body = data[i % len(data)]
        i += 1
        started = time.monotonic()
        try:
            connection.request("POST", "/v1/analyze?segments=true", body=body,
                               headers={"Content-Type": "application/octet-stream"})
            response = connection.getresponse()
            response.read()
            status, retry_after = response.status, response.getheader("Retry-After")
        except (OSError, http.client.HTTPException) as error:
            status, retry_after = f"connection: {type(error).__name__}", None
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        elapsed = time.monotonic() - started
        with lock:
            out["statuses"][str(status)] = out["statuses"].get(str(status), 0) + 1
            if status == 200 and time.monotonic() <= stop_at:
                out["latencies"].append(elapsed)
        if status in (429, 503) and retry_after:
            time.sleep(min(float(retry_after), max(0.0, stop_at - time.monotonic())))
    connection.close()


def in_process_client(model, data: list[bytes], stop_at: float, out: dict, lock: threading.Lock, seed: int) -> None:
    from ser_core.io.audio import load_audio

    i = seed
    while time.monotonic() < stop_at:
        started = time.monotonic()
        model.analyze_audio(load_audio(data[i % len(data)], model.params.sample_rate))
        i += 1
        elapsed = time.monotonic() - started
        with lock:
            if time.monotonic() <= stop_at:
                out["latencies"].append(elapsed)


def run_level(target, clients: int, duration: float, data: list[bytes]) -> dict:
    out, lock = {"statuses": {}, "latencies": []}, threading.Lock()
    load_before = os.getloadavg()[0]
    stop_at = time.monotonic() + duration
    threads = [threading.Thread(target=target, args=(data, stop_at, out, lock, k * 3)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ok = len(out["latencies"])
    return {"clients": clients, "duration_s": duration, "ok": ok, "throughput_per_s": round(ok / duration, 2),
            **percentiles(out["latencies"]), "statuses": out["statuses"],
            "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2)}


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
    lines = [f"# `ser serve` under load: {report['model']}, {CLIP_S:g} s clips, {report['duration_s']:g} s per level",
             "", f"Measured {report['date']} on {report['machine']} ({report['cores']} cores), clients on the same machine. "
             f"Server: `--workers {report['workers']}` (queue: 2 per worker; more in flight gets 429 + Retry-After). "
             f"{report['note']}", "",
             "| clients | ser serve: analyses/s | in-process: analyses/s | ratio | p50 ms | p95 ms | p99 ms | answers | server RSS MB (before → after) | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for served, direct in zip(report["serve"], report["in_process"]):
        ratio = served["throughput_per_s"] / direct["throughput_per_s"] if direct["throughput_per_s"] else float("nan")
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(served["statuses"].items()))
        lines.append(f"| {served['clients']} | {served['throughput_per_s']:.2f} | {direct['throughput_per_s']:.2f} | "
                     f"{ratio:.0%} | {served['p50_ms']} | {served['p95_ms']} | {served['p99_ms']} | {answers} | "
                     f"{served['rss_mb_before']:.0f} → {served['rss_mb_after']:.0f} | "
                     f"{served['load_average_before']} → {served['load_average_after']} |")
    lines += ["", "In-process latencies (same clients, `SerModel.analyze_audio` on threads): " + "; ".join(
        f"{d['clients']}: p50 {d['p50_ms']} / p95 {d['p95_ms']} ms" for d in report["in_process"]), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per level")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--note", default="", help="a sentence for the report (what else ran on the machine)")
    args = parser.parse_args()
    data = clips()

    from ser_core.serving.inference import load_model_quietly
    from ser_core.serving.shipped import resolve_model

    model_dir = resolve_model(args.model)
    report = {"provenance": provenance(model_dir), "model": model_dir.resolve().name, "duration_s": args.duration, "clip_s": CLIP_S,
              "workers": args.workers, "cores": len(os.sched_getaffinity(0)), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
              "note": args.note, "serve": [], "in_process": []}

    port = free_port()
    log = tempfile.TemporaryFile()
    server = start_server(str(model_dir), port, args.workers, log)
    try:
        for clients in args.clients:
            before = rss_mb(server.pid)
            level = run_level(lambda *a: http_client(port, *a), clients, args.duration, data)
            level.update(rss_mb_before=round(before, 1), rss_mb_after=round(rss_mb(server.pid), 1))
            report["serve"].append(level)
            print(json.dumps(level), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)

    model = load_model_quietly(model_dir)
    for clients in args.clients:
        level = run_level(lambda *a: in_process_client(model, *a), clients, args.duration, data)
        report["in_process"].append(level)
        print(json.dumps(level), flush=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve_load.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "serve_load.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
