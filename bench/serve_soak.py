"""Soak of `ser serve`: K clients posting 3 s clips without pause for D seconds (10 minutes by
default), the server's resident memory sampled every 30 s. A leak shows as memory that keeps
climbing after the first minutes (the allocator and the pool's replicas settle first).

    python bench/serve_soak.py                       # 4 clients, 600 s
    python bench/serve_soak.py --clients 2 --duration 300

Results: bench/results/serve_soak.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402
from serve_load import RESULTS, clips, free_port, rss_mb, serve_level, start_server  # noqa: E402

from ser_core.serving.http import default_workers  # noqa: E402  (serve_load puts the checkout on the path)

SAMPLE_EVERY_S = 30.0


def sample_memory(pid: int, start: float, samples: list[tuple[float, float]], stop: threading.Event) -> None:
    """Every SAMPLE_EVERY_S until `stop`, and once more when it is set (the end of the run)."""
    while True:
        samples.append((round(time.monotonic() - start, 1), round(rss_mb(pid), 1)))
        if stop.wait(SAMPLE_EVERY_S):
            samples.append((round(time.monotonic() - start, 1), round(rss_mb(pid), 1)))
            return


def markdown(report: dict) -> str:
    level, samples = report["level"], report["rss_mb"]
    settled = [mb for t, mb in samples if t >= 120.0] or [mb for _, mb in samples]
    rows = "\n".join(f"| {t:g} | {mb:.0f} |" for t, mb in samples)
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(level["statuses"].items()))
    return (f"# `ser serve` soak: {report['model']}, {report['clients']} clients, {report['duration_s']:g} s\n\n"
            f"Commit {report['provenance']['commit'][:7]}, {report['provenance']['cpu']}, load average at start "
            f"{report['provenance']['load_average_at_start']}. {level['throughput_per_s']:.2f} analyses/s, p50 "
            f"{level['p50_ms']} ms, p95 {level['p95_ms']} ms; answers {answers}. Server memory from the third minute "
            f"on: {min(settled):.0f}-{max(settled):.0f} MB (last {samples[-1][1]:.0f} MB).\n\n"
            f"| seconds | server RSS MB |\n|---|---|\n{rows}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--workers", type=int, default=default_workers(), help="ser serve's default unless given")
    args = parser.parse_args()
    from ser_core.serving.shipped import resolve_model

    model_dir = resolve_model(args.model)
    report = {"provenance": provenance(model_dir), "model": model_dir.resolve().name, "clients": args.clients,
              "duration_s": args.duration, "workers": args.workers}
    data, port, log = clips(), free_port(), tempfile.TemporaryFile()
    server = start_server(str(model_dir), port, args.workers, log)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_memory, args=(server.pid, time.monotonic(), samples, stop), daemon=True)
    try:
        sampler.start()
        report["level"] = serve_level(port, server.pid, args.clients, args.duration, data)
    finally:
        stop.set()
        sampler.join()
        server.terminate()
        server.wait(timeout=60)
    report["rss_mb"] = samples
    text = markdown(report)
    for name, content in (("serve_soak.json", json.dumps(report, indent=2) + "\n"), ("serve_soak.md", text)):
        (RESULTS / name).write_text(content)
    print(text)


if __name__ == "__main__":
    main()
