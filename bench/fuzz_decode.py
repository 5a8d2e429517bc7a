"""Atheris (libFuzzer) fuzz target for `ser_core.io.audio.load_audio`: any bytes → Audio or SerError.

`make fuzz` runs `python bench/fuzz_decode.py --runs 100000`: it seeds a corpus with small valid
files of every format ser_core reads (and a few bad ones), fuzzes in a child process (libFuzzer owns
that process and exits it when done), and writes iterations, run time, coverage and findings to
bench/results/fuzz.json. A finding is any exception other than a SerError, a native crash, an input
that runs past --timeout, or one that needs more than --rss-limit-mb; its input is copied to
bench/results/fuzz-findings/ and becomes a regression test (tests/test_fuzz.py, REGRESSIONS).

    python bench/fuzz_decode.py [--runs N] [--max-time S]     # drive a run, write the JSON
    python bench/fuzz_decode.py --worker [libFuzzer flags] DIR  # the fuzzing process itself
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import provenance

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# Mutated headers claim anything: cap what one input may cost, so that libFuzzer's own timeout
# (--timeout) only fires on a real hang.
LIMITS = {"max_duration_s": 60.0, "max_decode_s": 10.0}

# What fuzzing and the bad-input catalogue found, fixed in ser_core/io/audio.py; each has a test.
FIXED = [
    {"found_by": "catalogue", "input": "FFmpeg concat playlist naming a file beside the server's working directory",
     "was": "decoded that file (FFmpeg guessed the concat demuxer): a local file read",
     "fix": "FFmpeg only sees known media signatures, with the demuxer named; nested opens refused",
     "test": "tests/test_audio.py::test_ffmpeg_never_opens_a_file_named_inside_the_input"},
    {"found_by": "catalogue", "input": "FLAC without a sample count (written to a pipe)",
     "was": "AudioTooLongError '9607679205057 min': libsndfile reports SF_COUNT_MAX frames",
     "fix": "an unknown length is counted while decoding instead",
     "test": "tests/test_fuzz.py::test_regressions[flac-without-length]"},
]


def seed_corpus(directory: Path) -> list[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import pyav_bytes, voice, wav_bytes

    x8, x16 = voice(0.4, 8000), voice(0.4, 16000)
    seeds = {
        "wav": wav_bytes(x8, 8000),
        "wav-float": wav_bytes(x16, 16000, "FLOAT"),
        "wav-stereo": wav_bytes(voice(0.3, 16000)[:, None].repeat(2, axis=1), 16000),
        "flac": wav_bytes(x16, 16000, "PCM_16", "FLAC"),
        "ogg": wav_bytes(x16, 16000, "VORBIS", "OGG"),
        "opus": wav_bytes(x16, 16000, "OPUS", "OGG"),
        "mp3": wav_bytes(x16, 16000, "MPEG_LAYER_III", "MP3"),
        "aiff": wav_bytes(x8, 8000, "PCM_16", "AIFF"),
        "m4a": pyav_bytes(x16, 16000, "ipod", "aac", rate=16000),
        "webm": pyav_bytes(x16, 16000, "webm", "libopus"),
        "adts": pyav_bytes(x16, 16000, "adts", "aac", rate=16000),
        "text": b"not audio\n",
    }
    for name, data in seeds.items():
        (directory / name).write_bytes(data)
    return sorted(seeds)


def worker(flags: list[str]) -> None:
    import atheris

    import av  # a C extension: imported before instrumentation, and told to keep quiet

    av.logging.set_level(av.logging.PANIC)
    with atheris.instrument_imports(include=["ser_core", "soundfile"]):
        from ser_core.errors import SerError
        from ser_core.io.audio import AudioLimits, load_audio
    limits = AudioLimits(**LIMITS)

    import numpy as np

    def test_one_input(data: bytes) -> None:
        try:
            audio = load_audio(data, limits=limits)
        except SerError:
            return
        # What the feature extractor relies on: a finding if any of it does not hold.
        assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1, "not mono float32"
        assert audio.sample_rate == 16000 and audio.duration_s >= limits.min_duration_s, "wrong rate or length"
        assert audio.duration_s <= limits.max_duration_s + 1, "longer than the cap"
        assert np.all(np.isfinite(audio.samples)), "non-finite samples"
        assert np.max(np.abs(audio.samples)) < 4, "far above full scale"

    atheris.Setup([sys.argv[0], *flags], test_one_input)
    atheris.Fuzz()


def last_int(pattern: str, text: str) -> int | None:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else None


def drive(args) -> int:
    from importlib.metadata import version

    with tempfile.TemporaryDirectory(prefix="ser-fuzz-") as tmp:
        corpus, artifacts = Path(tmp) / "corpus", Path(tmp) / "artifacts"
        corpus.mkdir()
        artifacts.mkdir()
        seeds = seed_corpus(corpus)
        flags = [f"-runs={args.runs}", f"-max_total_time={args.max_time}", f"-timeout={args.timeout}",
                 f"-rss_limit_mb={args.rss_limit_mb}", "-max_len=65536", "-print_final_stats=1",
                 f"-seed={args.seed}", f"-artifact_prefix={artifacts}/", str(corpus)]
        command = [sys.executable, __file__, "--worker", *flags]
        print("fuzzing:", " ".join(command[1:]), file=sys.stderr, flush=True)
        made_with = provenance()  # no model: the decoder alone
        start = time.monotonic()
        run = subprocess.run(command, cwd=tmp, capture_output=True, text=True, errors="replace")
        seconds = time.monotonic() - start
        log = run.stderr
        corpus_size = len(list(corpus.iterdir()))

        findings = []
        for path in sorted(artifacts.iterdir()):
            RESULTS.joinpath("fuzz-findings").mkdir(parents=True, exist_ok=True)
            kept = RESULTS / "fuzz-findings" / path.name
            shutil.copyfile(path, kept)
            findings.append({"kind": path.name.split("-")[0], "file": str(kept.relative_to(ROOT)),
                             "size": path.stat().st_size})
        exception = re.search(r"=== Uncaught Python exception: ===\n(.*?)\n\n", log, re.S)
        if exception and findings:
            findings[-1]["exception"] = exception.group(1).strip().splitlines()[-1]
        if run.returncode != 0 and not findings:
            findings.append({"kind": "exit", "returncode": run.returncode, "log_tail": log[-2000:]})

    runs = last_int(r"stat::number_of_executed_units:\s+(\d+)", log) or last_int(r"Done (\d+) runs", log)
    report = {
        "provenance": made_with,
        "target": "ser_core.io.audio.load_audio (bench/fuzz_decode.py)",
        "engine": f"atheris {version('atheris')} (libFuzzer), instrumenting ser_core and soundfile",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/fuzz_decode.py", *sys.argv[1:]]),
        "iterations": runs,
        "seconds": round(seconds, 1),
        "execs_per_second": round(runs / seconds, 1) if runs else None,
        "coverage_edges": last_int(r"cov: (\d+)", log),
        "features": last_int(r"ft: (\d+)", log),
        "corpus_files_at_end": corpus_size,
        "peak_rss_mb": last_int(r"stat::peak_rss_mb:\s+(\d+)", log),
        "slowest_input_s": last_int(r"stat::slowest_unit_time_sec:\s+(\d+)", log),
        "limits": {**LIMITS, "timeout_s": args.timeout, "rss_limit_mb": args.rss_limit_mb},
        "seed_corpus": seeds,
        "findings": findings,
        "fixed_earlier": FIXED,
        "machine": f"{os.cpu_count()} CPUs, shared with other work; run under nice -n 10",
        "log_tail": [line for line in log.splitlines() if line.startswith(("#", "Done", "stat::", "INFO: seed"))][-6:],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{runs} runs in {seconds:.0f} s, {len(findings)} finding(s) → {out}", file=sys.stderr)
    return 1 if findings else 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=100_000)
    p.add_argument("--max-time", type=int, default=1800, help="stop after this many seconds anyway")
    p.add_argument("--timeout", type=int, default=30, help="seconds one input may take")
    p.add_argument("--rss-limit-mb", type=int, default=3072)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "fuzz.json"))
    return drive(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
