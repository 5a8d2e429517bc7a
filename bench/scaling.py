"""What one core does with the shipped default, the rate docs/scaling.md sizes a cluster from:

- corpus files as stored (Opus/FLAC, a seeded sample) through `predict_files` with one worker, in
  this process: clips per second of wall time and per CPU-second (the steadier measure on a shared
  machine: CPU time is what a core of a cluster node would spend);
- 1 h of speech-like audio (FLAC) → full timeline, wall and CPU seconds, on the library's default one
  thread (what a core of a cluster does), and on the thread policy's threads (what `ser serve` and the
  app give an analysis alone on the machine: every idle core).

The one-core figures pin the libraries to one thread per request, so they use one core.

    nice -n 10 python bench/scaling.py [--files 400] [--minutes 60] [--compare emo-whisper-fast]
writes bench/results/scaling.json: the default at the top level (what docs/scaling.md's table reads), each
--compare model under `compared`, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from provenance import provenance
from speed import corpus_files

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "models" / "default"


def timed(fn) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def one_core(model_dir: Path, files: list[Path]) -> dict:
    from ser_core.serving.batch import predict_files

    list(predict_files(files[:4], model_dir, workers=1))  # load the model and page in libraries first
    wall, cpu, results = timed(lambda: list(predict_files(files, model_dir, workers=1)))
    return {"files": len(files), "formats": sorted({f.suffix for f in files}), "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "clips_per_wall_s": round(len(files) / wall, 2),
            "clips_per_cpu_s": round(len(files) / cpu, 2), "errors": sum(r[3] is not None for r in results)}


def one_hour(model_dir: Path, path: Path, minutes: float, policy: bool = False) -> dict:
    """`path` → its full timeline on one thread, or with `policy` on the threads the thread policy
    gives an analysis alone (every core nobody else is using)."""
    from ser_core import load_model
    from ser_core.serving.threads import shared_policy

    model = load_model(model_dir)
    threads = 1
    if policy:
        shared_policy()  # its reading of the machine's load starts now, not inside the timing
        with shared_policy().claim() as threads:
            wall, cpu, analysis = timed(lambda: model.with_threads(threads).analyze(path))
    else:
        wall, cpu, analysis = timed(lambda: model.analyze(path))
    return {"audio_minutes": minutes, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "segments": len(analysis.segments), "threads": threads}


def speech_file(folder: Path, minutes: float) -> Path:
    import soundfile as sf

    from ser_core.io.signals import speech

    path = folder / "long.flac"
    with sf.SoundFile(path, "w", 16000, 1, format="FLAC") as f:
        for minute in range(int(minutes)):
            f.write(speech(60.0, seed=minute))
    return path


def measure(model_dir: Path, files: list[Path], long_file: Path, minutes: float) -> dict:
    return {"one_core": one_core(model_dir, files), "long_audio": one_hour(model_dir, long_file, minutes),
            "long_audio_thread_policy": one_hour(model_dir, long_file, minutes, policy=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--compare", nargs="*", default=[], help="other models (names or directories), same run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scaling.json")
    args = parser.parse_args()
    from ser_core.serving.shipped import resolve_model

    others = {name: resolve_model(name) for name in args.compare}
    results = {"provenance": provenance(DEFAULT, *others.values())}
    files = corpus_files(args.files)
    with tempfile.TemporaryDirectory() as tmp:
        long_file = speech_file(Path(tmp), args.minutes)
        results.update(measure(DEFAULT, files, long_file, args.minutes))
        print(json.dumps(results, indent=2), flush=True)
        if others:
            results["compared"] = {name: measure(directory, files, long_file, args.minutes)
                                   for name, directory in others.items()}
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
