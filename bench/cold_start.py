"""Cold start: a fresh process running `ser predict` on one 3 s clip, from start to exit, wall clock
and CPU (user + system, children included). With `--against DIR` (another source tree, such as
`git archive REV | tar -x -C DIR`), runs alternate between the two trees, so that both see the same
machine load; the same venv runs both.

    python bench/cold_start.py --runs 5 --against /tmp/old --label-against "before #23"

Results: bench/results/cold_start.json and .md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ser_core.io.signals import speech, wav_bytes  # noqa: E402
from provenance import provenance  # noqa: E402
from report import write_results  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def one_run(tree: Path, clip: Path, model: str | None) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    command = [sys.executable, "-m", "ser_core.cli", "predict", clip.name] + (["--model", model] if model else [])
    done = subprocess.run(command, cwd=clip.parent, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tree)})
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {done.stderr[-1000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load_average": round(os.getloadavg()[0], 2)}


def summary(runs: list[dict]) -> dict:
    return {"runs": runs, "median_wall_s": round(statistics.median(r["wall_s"] for r in runs), 2),
            "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", help="default: the tree's own default model")
    parser.add_argument("--against", type=Path, help="another source tree, run alternately")
    parser.add_argument("--label-against", default="other tree")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    trees = {"this tree": ROOT, **({args.label_against: args.against} if args.against else {})}
    run = provenance(args.model)  # this tree's commit and model
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.wav"
        clip.write_bytes(wav_bytes(speech(3.0, 16000), 16000))
        runs = {label: [] for label in trees}
        for _ in range(args.runs):
            for label, tree in trees.items():
                runs[label].append(one_run(tree, clip, args.model))
                print(label, runs[label][-1], flush=True)
    report = {"provenance": run, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": len(os.sched_getaffinity(0)),
              "note": args.note, "trees": {label: summary(r) for label, r in runs.items()}}
    lines = ["# Cold start: `ser predict clip.wav` (3 s) in a fresh process", "",
             f"Measured {report['date']}, {report['cores']} cores, {args.runs} runs per tree, alternating. {args.note}", "",
             "| tree | median wall s | median CPU s | runs (wall / CPU s) |", "|---|---|---|---|"]
    for label, s in report["trees"].items():
        each = ", ".join(f"{r['wall_s']} / {r['cpu_s']}" for r in s["runs"])
        lines.append(f"| {label} | {s['median_wall_s']} | {s['median_cpu_s']} | {each} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_results(RESULTS / "cold_start", report, "\n".join(lines), echo=False)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
