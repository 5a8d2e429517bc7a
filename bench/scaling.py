"""What one core does with the shipped default, the rate docs/scaling.md sizes a cluster from:

- corpus files as stored (Opus/FLAC, a seeded sample) through `predict_files` with one worker, in
  this process: clips per second of wall time and per CPU-second (the steadier measure on a shared
  machine: CPU time is what a core of a cluster node would spend);
- 1 h of speech-like audio (FLAC) → full timeline, wall and CPU seconds.

The analysis pins its libraries to one thread per request, so this process uses one core.

    nice -n 10 python bench/scaling.py [--files 400] [--minutes 60]     writes bench/results/scaling.json
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


def one_hour(model_dir: Path, minutes: float) -> dict:
    import soundfile as sf

    from ser_core import load_model
    from ser_core.io.signals import speech

    model = load_model(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.flac"
        with sf.SoundFile(path, "w", 16000, 1, format="FLAC") as f:
            for minute in range(int(minutes)):
                f.write(speech(60.0, seed=minute))
        wall, cpu, analysis = timed(lambda: model.analyze(path))
    return {"audio_minutes": minutes, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "segments": len(analysis.segments)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scaling.json")
    args = parser.parse_args()
    results = {"provenance": provenance(DEFAULT), "one_core": one_core(DEFAULT, corpus_files(args.files))}
    print(json.dumps(results, indent=2), flush=True)
    results["long_audio"] = one_hour(DEFAULT, args.minutes)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
