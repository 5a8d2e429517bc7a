"""`ser`: manifest, split, train, evaluate, predict. Errors print one line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

from .errors import SerError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = Path(os.environ.get("SER_MODEL", PACKAGE_ROOT / "models" / "default"))
DEFAULT_SPLITS = PACKAGE_ROOT / "models" / "splits"


def _clips(sources: list[str]):
    from .corpora import find_clips, read_manifest

    if len(sources) == 1 and sources[0].endswith(".csv"):
        return read_manifest(sources[0])
    return list(find_clips(sources))


def cmd_manifest(args) -> int:
    from .corpora import find_clips, write_manifest

    n = write_manifest(find_clips(args.dirs), args.out)
    print(f"{n} clips → {args.out}", file=sys.stderr)
    return 0


def _split_file(args, clips) -> Path:
    from .splits import make_split, write_split_file

    split_file = Path(args.split_file or DEFAULT_SPLITS / f"{args.protocol}.csv")
    if not split_file.exists():
        write_split_file(clips, make_split(clips, args.protocol, args.seed), split_file)
        print(f"wrote split file {split_file}", file=sys.stderr)
    return split_file


def cmd_split(args) -> int:
    _split_file(args, _clips(args.data))
    return 0


def cmd_train(args) -> int:
    import dataclasses

    from .errors import ModelError
    from .train import RECIPES, train

    if args.model not in RECIPES:
        raise ModelError(f"Unknown model {args.model!r}; choose one of {', '.join(RECIPES)}")
    feature_params, train_params = RECIPES[args.model]
    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed}
    train_params = dataclasses.replace(train_params, **{k: v for k, v in overrides.items() if v is not None})
    clips = _clips(args.data)
    split_file = _split_file(args, clips)
    metrics = train(clips, split_file, args.protocol, Path(args.out), feature_params, train_params)
    print(json.dumps({k: metrics[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")}, indent=2))
    return 0


def cmd_evaluate(args) -> int:
    from .corpora import read_manifest
    from .dataset import extract_clips
    from .evaluate import evaluate

    from .inference import load_model_quietly

    model = load_model_quietly(args.model, args.backend)
    data = extract_clips(read_manifest(args.manifest), model.params)
    metrics, _, _ = evaluate(model, data, protocol=f"manifest:{Path(args.manifest).name}")
    text = json.dumps(metrics, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


def cmd_export(args) -> int:
    from .export import export_litert
    from .inference import native_stderr_silenced

    with native_stderr_silenced():
        out = export_litert(args.model)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _report(file: str, warnings, error: str | None) -> bool:
    """One stderr line for a file's error, or one per warning; True when the file failed."""
    if error is not None:
        print(f"{file}: {error}", file=sys.stderr)
        return True
    for warning in warnings:
        print(f"{file}: warning: {warning}", file=sys.stderr)
    return False


def _segment_rows(files: list[str], model_dir: str, backend: str):
    """(file, one dict per speech segment, input warnings, error message) per file, in order."""
    from .audio import load_audio
    from .inference import load_model_quietly, native_stderr_silenced

    model = load_model_quietly(model_dir, backend)
    for file in files:
        try:
            with native_stderr_silenced():  # decoders (libmpg123) print their own complaints to fd 2
                audio = load_audio(file, model.params.sample_rate)
            analysis = model.analyze_audio(audio)
        except SerError as error:
            yield file, None, (), str(error)
            continue
        rows = [{"file": file, "segment": i, "start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3),
                 "emotion": s.emotion, "confidence": round(s.confidence, 6), "uncertain": s.uncertain,
                 "probabilities": {k: round(v, 6) for k, v in s.probabilities.items()}}
                for i, s in enumerate(analysis.segments, start=1)]
        yield file, rows, audio.warnings, None


def cmd_predict_segments(args) -> int:
    """One row per speech segment: file, segment number, start, end, emotion, uncertain, probabilities."""
    results, failures = [], 0
    for file, rows, warnings, error in _segment_rows(args.files, args.model, args.backend):
        if _report(file, warnings, error):
            failures += 1
            continue
        results.extend(rows)
    if args.format == "json":
        print(json.dumps(results, indent=2))
    elif args.format == "csv":
        labels = list(results[0]["probabilities"]) if results else []
        writer = csv.writer(sys.stdout)
        writer.writerow(["file", "segment", "start_s", "end_s", "emotion", "uncertain", *labels])
        for r in results:
            writer.writerow([r["file"], r["segment"], f"{r['start_s']:.3f}", f"{r['end_s']:.3f}", r["emotion"],
                             r["uncertain"], *(f"{p:.4f}" for p in r["probabilities"].values())])
    else:
        for r in results:
            guess = f"uncertain ({r['emotion']}?)" if r["uncertain"] else r["emotion"]
            print(f"{r['file']} {r['start_s']:.2f}–{r['end_s']:.2f} s: {guess} ({r['confidence']:.0%})")
    return 1 if failures else 0


def cmd_predict(args) -> int:
    from .batch import predict_files

    if args.segments:
        return cmd_predict_segments(args)

    labels = None
    results, failures = [], 0
    workers = args.workers or (1 if len(args.files) < 16 else os.cpu_count())
    for file, probabilities, warnings, error in predict_files(args.files, args.model, workers, args.backend):
        if _report(file, warnings, error):
            failures += 1
            continue
        labels = list(probabilities)
        results.append({"file": file, "emotion": max(probabilities, key=probabilities.get),
                        "probabilities": probabilities})
    if args.format == "json":
        print(json.dumps(results, indent=2))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["file", "emotion", *(labels or [])])
        for r in results:
            writer.writerow([r["file"], r["emotion"], *(f"{p:.4f}" for p in r["probabilities"].values())])
    else:
        for r in results:
            print(f"{r['file']}: {r['emotion']} ({r['probabilities'][r['emotion']]:.0%})")
    return 1 if failures else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ser", description="Speech emotion recognition")
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("manifest", help="write path,emotion,corpus,speaker for the corpora under DIRs")
    m.add_argument("dirs", nargs="+")
    m.add_argument("--out", required=True)
    m.set_defaults(func=cmd_manifest)

    for name, func, help_text in (("split", cmd_split, "write a protocol's split file"),
                                  ("train", cmd_train, "train a model and write its directory")):
        t = sub.add_parser(name, help=help_text)
        t.add_argument("--data", nargs="+", required=True, help="corpus folders, or one manifest CSV")
        t.add_argument("--protocol", choices=("random", "speaker"), required=True)
        t.add_argument("--split-file", help="default: models/splits/PROTOCOL.csv (made if missing)")
        t.add_argument("--seed", type=int, default=42)
        if name == "train":
            t.add_argument("--model", default="seed-cnn")
            t.add_argument("--out", required=True)
            t.add_argument("--epochs", type=int, help="default: the model's recipe")
            t.add_argument("--batch-size", type=int, help="default: the model's recipe")
        t.set_defaults(func=func)

    e = sub.add_parser("evaluate", help="metrics of a model on any manifest with path,emotion")
    e.add_argument("--model", default=str(DEFAULT_MODEL))
    e.add_argument("--manifest", required=True)
    e.add_argument("--out")
    e.add_argument("--backend", choices=("auto", "litert", "keras"), default="auto")
    e.set_defaults(func=cmd_evaluate)

    x = sub.add_parser("export", help="write model.tflite (LiteRT) beside a model's model.keras")
    x.add_argument("--model", required=True)
    x.set_defaults(func=cmd_export)

    pr = sub.add_parser("predict", help="emotion probabilities of audio files")
    pr.add_argument("files", nargs="+")
    pr.add_argument("--model", default=str(DEFAULT_MODEL))
    pr.add_argument("--backend", choices=("auto", "litert", "keras"), default="auto")
    pr.add_argument("--workers", type=int, help="processes (default: 1 for a few files, else one per core)")
    pr.add_argument("--segments", action="store_true",
                    help="one row per speech segment (start, end, emotion, probabilities) instead of per file")
    fmt = pr.add_mutually_exclusive_group()
    fmt.add_argument("--json", dest="format", action="store_const", const="json")
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv")
    pr.set_defaults(func=cmd_predict, format="text")
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter is not for users
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except SerError as error:
        print(f"ser: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
