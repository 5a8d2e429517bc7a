"""Speed of each served model (the light emo-cnn and the encoder model emo-whisper), in one run:

- latency of one 3 s clip end to end (file → decode → features → model), p50/p95, with the library's
  default threads (one) and with the thread policy's (alone on an idle machine: every core), against
  the original measured in the same run: librosa.load at 44.1 kHz of 2.5 s from 0.5 s → MFCC → Keras
  `model.predict`; the ratio of the two p50s is printed with the CPU's name;
- the same with 1 and 4 concurrent requesters sharing one loaded model (threads, as Streamlit
  sessions share the app's model), library threads pinned to one per request;
- batch throughput on all cores over corpus files, as stored (Opus/FLAC) and as 16 kHz WAV copies
  of the same clips (generated WAV files without the corpora);
- 1 h of audio → full timeline, on the thread policy's threads;
- live: 20 ms frames of 48 kHz stereo speech pushed in real time, as a browser sends them, into the
  Live page's classifier: readings per second (the page promises two) and the time of each;
- cold start: a fresh process → the Upload page's first bars, through Streamlit's headless AppTest
  client (imports, model load, prediction, page render), and that process's peak memory.

    python bench/speed.py            writes bench/results/speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

from provenance import cpu_model, provenance
from ser_core.io.audio import load_audio
from ser_core.io.signals import speech
from ser_core.serving.shipped import follow_pointer

ROOT = Path(__file__).resolve().parent.parent
MODELS = {"emo-cnn": ROOT / "models" / "emo-cnn-speaker", "emo-whisper": ROOT / "models" / "emo-whisper-speaker",
          "emo-whisper-ens": ROOT / "models" / "emo-whisper-ens-speaker",
          "emo-whisper-ens-diverse": ROOT / "models" / "emo-whisper-ens-diverse-speaker",
          "emo-whisper-fast": ROOT / "models" / "emo-whisper-fast-speaker"}
SEED_MODEL = ROOT / "models" / "seed-cnn-speaker"  # the original architecture, for its pipeline


def percentiles(times_s: list[float]) -> dict:
    ms = 1000 * np.asarray(times_s)
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "runs": len(ms)}


def timed(fn, runs: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def original_pipeline(path: Path, keras_model) -> None:
    import librosa

    y, sr = librosa.load(path, sr=44100, offset=0.5, duration=2.5)
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=25)  # hop 512: 216 frames for 2.5 s
    mfcc = np.pad(mfcc, ((0, 0), (0, max(0, 216 - mfcc.shape[1]))))[:, :216]
    keras_model.predict(mfcc[None, ..., None], verbose=0)


def latency(model_dir: Path, runs: int, policy: bool = False) -> dict:
    """One 3 s clip end to end from its file (read, decode, voice detection, features, model), as the
    original pipeline is timed. With `policy`, each call takes its threads from the thread policy as
    the app's and ser serve's analyses do (alone on an idle machine: every core); else the library's
    default (`load_model`: one thread)."""
    from ser_core.serving.inference import load_model
    from ser_core.serving.threads import shared_policy

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.wav"
        sf.write(path, speech(3.0), 16000)
        served = load_model(model_dir)
        threads_used = Counter()

        def call() -> None:
            if not policy:
                served.predict(path)
                return
            with shared_policy().claim() as threads:
                threads_used[threads] += 1
                served.with_threads(threads).predict(path)

        times = timed(call, runs)
        return {**percentiles(times), "backend": served.backend,
                "threads": dict(threads_used) if policy else {served.threads: runs + 1}}


def stages(model_dir: Path, runs: int) -> dict:
    """Where one 3 s clip's time goes (median ms per stage), on one thread and on the thread policy's:
    reading and decoding the file, voice activity detection, features, the encoder (Whisper blocks,
    encoder models only), the head."""
    import dataclasses

    from ser_core.frontend.features import extract_many
    from ser_core.serving.inference import load_model
    from ser_core.frontend.vad import find_regions
    from ser_core.serving.threads import shared_policy
    from threadpoolctl import threadpool_limits

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.wav"
        sf.write(path, speech(3.0), 16000)
        model = load_model(model_dir)
        params = dataclasses.replace(model.params, offset_s=0.0)
        out = {}
        for label in ("one_thread", "thread_policy"):
            times: dict[str, list[float]] = {}
            for _ in range(runs + 1):  # the first call of each setting warms up, untimed
                # BLAS on the model's threads, as its analyses run (`SerModel.analyze_many`)
                with shared_policy().claim() as threads, threadpool_limits(model.threads, user_api="blas"):
                    served = model.with_threads(threads if label == "thread_policy" else 1)
                    marks = [time.perf_counter()]
                    audio = load_audio(path, params.sample_rate)
                    marks.append(time.perf_counter())
                    find_regions([audio])
                    marks.append(time.perf_counter())
                    features = extract_many([audio.samples], params)[0][1]
                    marks.append(time.perf_counter())
                    inputs = served.to_cached(features)
                    marks.append(time.perf_counter())
                    served.predict_cached(inputs)
                    marks.append(time.perf_counter())
                for stage, start, end in zip(("decode", "vad", "features", "encoder_or_prepare", "head"), marks, marks[1:]):
                    times.setdefault(stage, []).append(end - start)
            out[label] = {stage: round(1000 * float(np.median(t[1:])), 2) for stage, t in times.items()}
            out[label]["threads"] = threads if label == "thread_policy" else 1
        return out


def encoder_options(runs: int) -> dict:
    """What each encoder path costs: one 4 s window through 2 or 3 blocks, float32 or int8, at the
    full frame rate (400 Whisper log-mel frames, every 10 ms) or half of it (200, every 20 ms: what
    emo-whisper-fast reads), on one thread, median ms over interleaved rounds. Random input: the cost
    does not depend on the values."""
    from ser_core.frontend.encoder import WhisperEncoder

    full = np.random.default_rng(0).standard_normal((1, 80, 400)).astype(np.float32)
    options = {f"{compute} {layers} blocks, {frames} frames": (WhisperEncoder(compute, 1, layers), x)
               for compute in ("float32", "int8") for layers in (2, 3)
               for frames, x in ((400, full), (200, np.ascontiguousarray(full[:, :, ::2])))}
    times: dict[str, list[float]] = {name: [] for name in options}
    for round_ in range(runs + 1):
        for name, (encoder, x) in options.items():
            started = time.perf_counter()
            encoder(x)
            if round_:  # the first round warms each engine up
                times[name].append(time.perf_counter() - started)
    return {name: round(1000 * float(np.median(t)), 1) for name, t in times.items()}


def original_latency(runs: int) -> dict:
    import keras

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.wav"
        sf.write(path, speech(3.0), 16000)
        keras_model = keras.models.load_model(SEED_MODEL / "model.keras", safe_mode=True, compile=False)
        return percentiles(timed(lambda: original_pipeline(path, keras_model), runs))


def concurrent_latency(model_dir: Path, requesters: int, requests_each: int) -> dict:
    """Per-request latency with `requesters` threads asking one shared model at once."""
    from concurrent.futures import ThreadPoolExecutor

    from ser_core.serving.inference import load_model

    served = load_model(model_dir)
    clips = [sf_bytes(speech(3.0, seed=i)) for i in range(requesters)]
    served.predict(clips[0])

    def requester(i: int) -> list[float]:
        return timed(lambda: served.predict(clips[i]), requests_each)

    started = time.perf_counter()
    with ThreadPoolExecutor(requesters) as pool:
        times = [t for result in pool.map(requester, range(requesters)) for t in result]
    seconds = time.perf_counter() - started
    return {**percentiles(times), "requesters": requesters, "requests_per_s": len(times) / seconds}


def sf_bytes(samples: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    sf.write(buffer, samples, 16000, format="WAV")
    return buffer.getvalue()


def throughput(model_dir: Path, files: list[Path]) -> dict:
    from ser_core.serving.batch import predict_files

    workers = os.cpu_count() or 1
    list(predict_files(files[:4], model_dir, workers=1))  # page in libraries before timing
    started = time.perf_counter()
    stream = predict_files(files, model_dir, workers=workers)
    results = [next(stream)]
    first_result_s = time.perf_counter() - started  # mostly starting the worker processes
    results += list(stream)
    seconds = time.perf_counter() - started
    return {"files": len(files), "formats": dict(Counter(f.suffix for f in files)), "workers": workers,
            "seconds": seconds, "clips_per_s": len(files) / seconds, "first_result_s": first_result_s,
            "errors": sum(r[3] is not None for r in results)}


def as_wav(files: list[Path], folder: Path) -> list[Path]:
    """The same clips as 16 kHz PCM WAV: the format the corpora are distributed in, without the
    Opus decoding our compressed copies add."""
    copies = []
    for i, path in enumerate(files):
        copies.append(folder / f"{i:05d}.wav")
        sf.write(copies[-1], load_audio(path, check_speech=False).samples, 16000, subtype="PCM_16")
    return copies


def long_audio(model_dir: Path, minutes: float) -> dict:
    """A recording of `minutes` → its full timeline, on the threads the thread policy gives an
    analysis alone (as the app's pool runs it)."""
    from ser_core.serving.inference import load_model
    from ser_core.serving.threads import shared_policy

    model = load_model(model_dir)
    shared_policy()  # its reading of the machine's load starts now, not inside the timing
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.flac"
        block = speech(60.0)
        with sf.SoundFile(path, "w", 16000, 1, format="FLAC") as f:
            for _ in range(int(minutes)):
                f.write(block)
        started = time.perf_counter()
        with shared_policy().claim() as threads:
            analysis = model.with_threads(threads).analyze(path)
        seconds = time.perf_counter() - started
    return {"audio_minutes": minutes, "seconds": seconds, "windows": len(analysis.window_times_s),
            "threads": threads, "load_average_at_end": os.getloadavg()}


def live_rate(model_dir: Path, seconds: float) -> dict:
    from ser_core.serving.inference import load_model
    from ser_core.serving.live import LiveClassifier

    frame, rate = 960, 48000  # 20 ms, what browsers send over WebRTC
    mono = np.clip(speech(seconds, sr=rate) * 32768, -32768, 32767).astype(np.int16)
    stereo = np.stack([mono, mono], axis=1)
    model = load_model(model_dir)
    model.warm_up()  # as the app's model loader does
    live = LiveClassifier(model)
    classify, times, shown = live.classify, [], []

    def timed_classify():
        called = time.perf_counter()
        reading = classify()
        times.append(time.perf_counter() - called)
        if reading is not None:
            shown.append(time.perf_counter() - started)
        return reading

    live.classify = timed_classify  # the worker thread calls it through the instance
    started = time.perf_counter()
    for i, start in enumerate(range(0, len(stereo) - frame + 1, frame)):
        live.push(stereo[start : start + frame], rate)
        time.sleep(max(0.0, started + (i + 1) * frame / rate - time.perf_counter()))  # real time
    elapsed = time.perf_counter() - started
    live.stop()
    history = live.snapshot().history
    # The rate once readings flow: the first waits for half a second of audio and, in a fresh
    # process, for the model's first call.
    return {"seconds": elapsed, "readings": len(shown), "first_reading_s": shown[0],
            "readings_per_s": (len(shown) - 1) / (shown[-1] - shown[0]), "pauses": sum(r.pause for r in history),
            "classify": percentiles(times)}


COLD_START = """
import io, os, time, numpy as np, soundfile as sf
from streamlit.testing.v1 import AppTest
from ser_core.io.signals import speech
buffer = io.BytesIO(); sf.write(buffer, speech(3.0), 16000, format='WAV')
at = AppTest.from_file({page!r}, default_timeout=120).run()
at.file_uploader[0].set_value(("clip.wav", buffer.getvalue(), "audio/wav")).run()
assert not at.exception and not at.error, (at.exception, at.error)
peak_kb = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]
print(time.time(), peak_kb)
"""


def cold_start(model_dir: Path) -> dict:
    started = time.time()
    code = COLD_START.format(page=str(ROOT / "pages" / "upload.py"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "SER_MODEL": str(model_dir)}, timeout=600)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    finished, peak_kb = out.stdout.split()[-2:]
    # VmHWM, not ru_maxrss: the latter survives exec, so it would report this benchmark's own peak
    return {"seconds_to_first_bars": float(finished) - started, "peak_memory_mb": int(peak_kb) / 1024,
            "client": "streamlit AppTest (headless), upload page, one 3 s WAV"}


def corpus_files(n: int) -> list[Path]:
    """Every corpus file (n = 0) or a fixed random sample of n; generated clips without the corpora."""
    corpora = ROOT.parent / "shared" / "corpora"
    if (corpora / "manifest.csv").is_file():
        files = sorted(p for p in corpora.rglob("*") if p.suffix in (".flac", ".opus"))
        return [files[i] for i in np.random.default_rng(0).permutation(len(files))[: n or len(files)]]
    tmp = Path(tempfile.mkdtemp())
    for i in range(n or 3000):
        sf.write(tmp / f"clip{i}.wav", speech(2.0 + (i % 3), seed=i), 16000)
    return sorted(tmp.glob("*.wav"))


def ratio_lines(run: dict) -> str:
    """Each model's p50 against the original pipeline's, measured in the same run, and where."""
    default = follow_pointer(ROOT / "models" / "default").name
    original = run["original_latency_3s_clip"]["p50_ms"]
    lines = [f"One 3 s clip end to end from its file, p50 of {run['runs']} calls, on {run['cpu']} ({run['cores']} cores), "
             f"load average {run['load_average_at_start'][0]:.2f} at the start; the original pipeline {original:.1f} ms:"]
    for name, row in run["models"].items():
        marks = " (models/default)" if MODELS[name].resolve().name == default else ""
        lines.append(f"  {name}{marks}: " + "; ".join(
            f"{timing['p50_ms']:.1f} ms = {timing['ratio_to_original_p50']:.2f}x with {label} "
            f"({', '.join(f'{n} thread(s) {k}x' for n, k in timing['threads'].items())})"
            for label, timing in (("the library's default threads", row["library_default"]),
                                  ("the thread policy", row["thread_policy"]))))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--files", type=int, default=2000, help="corpus files for the batch test (0: all)")
    parser.add_argument("--long-minutes", type=float, default=60)
    parser.add_argument("--live-seconds", type=float, default=30)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "speed.json"))
    parser.add_argument("--latency-only", action="store_true",
                        help="only the 3 s clip latency of --models, side by side with the original pipeline, "
                             "stored under latency_only in the results file (the rest is kept)")
    parser.add_argument("--long-only", action="store_true",
                        help="only --long-minutes of audio → timeline through --models, stored under long_audio_only")
    args = parser.parse_args()
    if args.long_only:
        out = Path(args.out)
        stored = json.loads(out.read_text()) if out.is_file() else {}
        stored["long_audio_only"] = {"provenance": provenance(*(MODELS[name] for name in args.models)),
                                     "cpu": cpu_model(), "cores": os.cpu_count(),
                                     "models": {name: long_audio(MODELS[name], args.long_minutes) for name in args.models}}
        out.write_text(json.dumps(stored, indent=2))
        print(json.dumps(stored["long_audio_only"], indent=2))
        return
    if args.latency_only:
        out = Path(args.out)
        stored = json.loads(out.read_text()) if out.is_file() else {}
        run = provenance(*(MODELS[name] for name in args.models))
        load = os.getloadavg()
        original = original_latency(args.runs)
        rows = {name: {"library_default": latency(MODELS[name], args.runs),
                       "thread_policy": latency(MODELS[name], args.runs, policy=True)} for name in args.models}
        for row in rows.values():
            for timing in row.values():
                timing["ratio_to_original_p50"] = timing["p50_ms"] / original["p50_ms"]
        where = {name: stages(MODELS[name], args.runs) for name in args.models}
        options = encoder_options(min(args.runs, 20))
        stored["latency_only"] = {"provenance": run, "cpu": cpu_model(), "cores": os.cpu_count(), "stages_ms": where,
                                  "encoder_options_ms": options,
                                  "load_average_at_start": load, "load_average_at_end": os.getloadavg(),
                                  "runs": args.runs, "original_latency_3s_clip": original, "models": rows}
        out.write_text(json.dumps(stored, indent=2))
        print(json.dumps(stored["latency_only"], indent=2))
        print(ratio_lines(stored["latency_only"]))
        return
    files = corpus_files(args.files)
    results = {
        "provenance": provenance(*(MODELS[name] for name in args.models)),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "processor": platform.machine(),
                    "load_average_at_start": os.getloadavg()},
        "original_latency_3s_clip": original_latency(args.runs),
        "models": {},
        "command": "make bench",
    }
    with tempfile.TemporaryDirectory() as wav_dir:
        wav_files = as_wav(files, Path(wav_dir))
        for name in args.models:
            model_dir = MODELS[name]
            row = {"model": str(model_dir.relative_to(ROOT)), "latency_3s_clip": latency(model_dir, args.runs),
                   "latency_3s_clip_thread_policy": latency(model_dir, args.runs, policy=True)}
            row["speed_up_p50"] = results["original_latency_3s_clip"]["p50_ms"] / row["latency_3s_clip"]["p50_ms"]
            row["ratio_to_original_p50"] = 1 / row["speed_up_p50"]
            row["concurrent"] = [concurrent_latency(model_dir, n, max(10, args.runs // n)) for n in (1, 4)]
            row["batch_throughput"] = throughput(model_dir, files)
            row["batch_throughput_wav"] = throughput(model_dir, wav_files)
            row["long_audio"] = long_audio(model_dir, args.long_minutes)
            row["live"] = live_rate(model_dir, args.live_seconds)
            row["cold_start"] = cold_start(model_dir)
            results["models"][name] = row
            print(json.dumps(row, indent=2), flush=True)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
