"""`ser`: manifest, split, train, evaluate, predict, embed. Errors print one line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import sys
from pathlib import Path

from .errors import SerError

from .serving.shipped import resolve_model  # noqa: F401  (--model NAME|PATH, else SER_MODEL, else the shipped default)

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPLITS = PACKAGE_ROOT / "models" / "splits"  # training works in a checkout
MODEL_HELP = "a shipped model's name or a model directory (default: SER_MODEL, else the shipped default)"


def _clips(sources: list[str]):
    from .training.corpora import find_clips, read_manifest

    if len(sources) == 1 and sources[0].endswith(".csv"):
        return read_manifest(sources[0])
    return list(find_clips(sources))


def cmd_manifest(args) -> int:
    from .training.corpora import find_clips, write_manifest

    clips = list(find_clips(args.dirs))
    if not clips:  # an empty manifest would only fail later, further from the cause
        from .errors import ManifestError

        raise ManifestError(f"No clip of a known corpus under {', '.join(args.dirs)}: the loaders recognise the "
                            "layouts in the README's Data table (any other CSV with path,emotion works as a manifest).")
    n = write_manifest(clips, args.out)
    print(f"{n} clips → {args.out}", file=sys.stderr)
    return 0


def _split_file(args, clips) -> Path:
    from .training.splits import extend_split_file, make_split, write_split_file

    # loco and lolo are built on the speaker split
    base_protocol = "speaker" if args.protocol in ("loco", "lolo") else args.protocol
    split_file = Path(args.split_file or DEFAULT_SPLITS / f"{base_protocol}.csv")
    if not split_file.exists():
        write_split_file(clips, make_split(clips, base_protocol, args.seed), split_file)
        print(f"wrote split file {split_file}", file=sys.stderr)
    elif added := extend_split_file(clips, base_protocol, split_file, args.seed):
        print(f"added {added} clips of new corpora to {split_file}", file=sys.stderr)
    return split_file


def cmd_split(args) -> int:
    from .training.splits import assign

    clips = _clips(args.data)
    parts = assign(clips, _split_file(args, clips))
    if empty := [name for name, part in parts.items() if not part]:
        sizes = ", ".join(f"{name} {len(part)}" for name, part in parts.items())
        too_few = "clips" if args.protocol == "random" else "speakers"  # a random split goes by file
        print(f"warning: these clips leave {' and '.join(empty)} empty ({sizes}): too few {too_few} to hold any "
              "back; `ser train` needs all three", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    import dataclasses

    from .errors import ModelError, require_extra

    require_extra("ser train", "train", "tensorflow", "keras", "sklearn")
    from .frontend.features import default_cache_dir
    from .training.corpora import CORPUS_NAMES, LANGUAGES
    from .training.train import ENSEMBLES, RECIPES, train, train_ensemble

    if args.model not in RECIPES and args.model not in ENSEMBLES:
        raise ModelError(f"Unknown model {args.model!r}; choose one of {', '.join([*RECIPES, *ENSEMBLES])}")
    feature_params, train_params = RECIPES[ENSEMBLES[args.model][0] if args.model in ENSEMBLES else args.model]
    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed}
    train_params = dataclasses.replace(train_params, **{k: v for k, v in overrides.items() if v is not None})
    if args.model in ENSEMBLES and (args.epochs or args.batch_size):
        raise ModelError(f"{args.model} trains its members with their own recipes: drop --epochs and --batch-size")
    if args.protocol in ("loco", "lolo") and not args.held_out:
        raise ModelError(f"--protocol {args.protocol} needs --held-out: the "
                         f"{'corpus' if args.protocol == 'loco' else 'language'} to test on, trained without it")
    if args.held_out and args.protocol not in ("loco", "lolo"):
        raise ModelError("--held-out goes with --protocol loco (a corpus) or lolo (a language), and only with them")
    allowed = LANGUAGES if args.protocol == "lolo" else CORPUS_NAMES
    if args.protocol in ("loco", "lolo") and args.held_out not in allowed:
        raise ModelError(f"--held-out {args.held_out!r} with --protocol {args.protocol}: choose one of {', '.join(allowed)}")
    clips = _clips(args.data)
    split_file = _split_file(args, clips)
    if args.features_from:
        _import_features(args.features_from, feature_params)
    protocol = f"{args.protocol}:{args.held_out}" if args.held_out else args.protocol
    if args.model in ENSEMBLES:  # its member heads are trained into the cache, then averaged in one model
        members = {recipe: default_cache_dir().parent / "ensemble-members" / f"{Path(args.out).name}-{recipe}"
                   for recipe in ENSEMBLES[args.model]}
        metrics = train_ensemble(clips, split_file, protocol, Path(args.out), args.model, members, args.held_out)
    else:
        metrics = train(clips, split_file, protocol, Path(args.out), feature_params, train_params, held_out=args.held_out,
                        recipe=args.model)
    print(json.dumps({k: metrics[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "label_set_uar")}, indent=2))
    return 0


def cmd_evaluate(args) -> int:
    from .errors import require_extra

    require_extra("ser evaluate", "train", "sklearn")  # the metrics (and the perturbations' filters)
    from .serving.inference import load_model_quietly
    from .training.corpora import read_manifest
    from .training.evaluate import CLEAN, evaluate, evaluate_perturbed

    model_dir = resolve_model(args.model)
    protocol = f"manifest:{Path(args.manifest).name}"
    if args.adapt:
        from .training.evaluate import ONE_EMOTION, evaluate_adaptation
        from .training.train import cached_inputs

        model = load_model_quietly(model_dir, args.backend)
        data = cached_inputs(model, read_manifest(args.manifest))
        results = evaluate_adaptation(model, data)
        _say_skipped(data.skipped)
        for k, r in results.items():
            source = (f"{ONE_EMOTION} clips only" if k == "one_emotion" else "1 clip" if k == "1" else f"{k} clips")
            if r["n_scored"]:
                print(f"profile from {source:>18}: UAR {r['adapted']:.1%} adapted, {r['unadapted']:.1%} without "
                      f"({r['n_scored']} clip{'s' * (r['n_scored'] != 1)} scored)", file=sys.stderr)
            else:
                print(f"profile from {source:>18}: not measured (no speaker has clips left to score)", file=sys.stderr)
        text = json.dumps(results, indent=2)
    elif args.perturb:
        from .training.augment import PERTURBATIONS

        conditions = list(PERTURBATIONS) if args.perturb == "all" else [c.strip() for c in args.perturb.split(",")]
        results = evaluate_perturbed(model_dir, read_manifest(args.manifest), [CLEAN, *conditions], protocol, args.backend)
        for condition, metrics in results.items():
            print(f"{condition:>12}: UAR {metrics['balanced_accuracy']:.1%}, accuracy {metrics['accuracy']:.1%}",
                  file=sys.stderr)
        text = json.dumps(results, indent=2)
    else:
        from .training.train import cached_inputs

        model = load_model_quietly(model_dir, args.backend)
        data = cached_inputs(model, read_manifest(args.manifest))
        metrics, _, _ = evaluate(model, data, protocol=protocol)
        _say_skipped(data.skipped, metrics["skipped_unknown_labels"])
        text = json.dumps(metrics, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


def _say_skipped(unreadable, unknown_labels: dict[str, int] | None = None) -> None:
    """One stderr line per clip that could not be read, and one for the labels the model does not read:
    the metrics were measured without them."""
    for path, reason in unreadable:
        print(f"{path}: skipped: {reason}", file=sys.stderr)
    if unknown_labels:
        counts = ", ".join(f"{label} ({n})" for label, n in sorted(unknown_labels.items()))
        n = sum(unknown_labels.values())
        print(f"skipped {n} clip{'s' * (n != 1)} labelled with emotions this model does not read: {counts}",
              file=sys.stderr)


def cmd_export(args) -> int:
    from .errors import ModelError, require_extra
    from .serving.inference import MODEL_FILE, native_stderr_silenced
    from .training.export import export_litert

    require_extra("ser export", "train", "tensorflow", "keras")
    directory = resolve_model(args.model)
    if not (directory / MODEL_FILE).is_file():
        raise ModelError(f"{directory} has no {MODEL_FILE} to export (a model trained by `ser train` has one).")
    with native_stderr_silenced():
        out = export_litert(directory)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _adapted_outcomes(args):
    """`ser predict` with a saved voice profile, or per speaker of a manifest (--speaker-column)."""
    from .errors import ManifestError
    from .serving.inference import load_model_quietly
    from .serving.batch import predict_adapted
    from .training.corpora import read_manifest

    model = load_model_quietly(resolve_model(args.model), args.backend)
    if args.speaker_column:
        if len(args.files) != 1 or not args.files[0].endswith(".csv"):
            raise ManifestError("--speaker-column needs one manifest CSV (path and speaker columns) instead of files")
        with open(args.files[0], newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows or args.speaker_column not in rows[0] or "path" not in rows[0]:
            raise ManifestError(f"{args.files[0]} needs the columns path and {args.speaker_column}")
        base = Path(args.files[0]).parent
        paths = [str(p if Path(p).is_absolute() else base / p) for p in (r["path"] for r in rows)]
        return predict_adapted(model, paths, speakers=[r[args.speaker_column] for r in rows])
    if args.adapt == "batch":  # every file read against the mean of all of them
        return predict_adapted(model, args.files)
    return predict_adapted(model, args.files, profile=_saved_profile(args.profile))


def _adaptation_asked(args) -> bool:
    return bool(args.profile or args.adapt or args.speaker_column or args.speaker_adaptation)


def _note_adaptation(file: str, adaptation: str, warnings) -> None:
    """A stderr note of an adaptation made (one that could not be made is already among the warnings)."""
    if adaptation and adaptation not in warnings:
        print(f"{file}: note: {adaptation}", file=sys.stderr)


def _saved_profile(path: str):
    """--profile: a voice profile saved from the app (a sentence, not a traceback, for a path that
    cannot be read)."""
    from .errors import ConfigError
    from .serving.profile import VoiceProfile

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"Cannot read the voice profile {path}: {error.strerror}.") from None
    return VoiceProfile.from_json(data)


def _report(file: str, warnings, error: str | None) -> bool:
    """One stderr line for a file's error, or one per warning; True when the file failed."""
    if error is not None:
        print(f"{file}: {error}", file=sys.stderr)
        return True
    for warning in warnings:
        print(f"{file}: warning: {warning}", file=sys.stderr)
    return False


def _analyses(args):
    """(file, its `Analysis`, input warnings, error message) per file, in order, in this process,
    with the speaker options given (--speakers, --speaker-adaptation, --adapt recording) and what each
    file is read against (--profile, --adapt batch)."""
    from .io.audio import load_audio
    from .serving.inference import load_model_quietly, native_stderr_silenced
    from .serving.profile import batch_profile

    if args.speaker_column:
        from .errors import ConfigError

        raise ConfigError("--speaker-column goes without --segments, --speakers and --speaker-adaptation")
    model = load_model_quietly(str(resolve_model(args.model)), args.backend)
    profile = (_saved_profile(args.profile) if args.profile
               else batch_profile(model, args.files) if args.adapt == "batch" else None)
    speakers = _speaker_options(args)
    for file in args.files:
        try:
            with native_stderr_silenced():  # decoders (libmpg123) print their own complaints to fd 2
                audio = load_audio(file, model.params.sample_rate)
            analysis = model.analyze_audio(audio, profile=profile, speakers=speakers)
        except SerError as error:
            yield file, None, (), str(error)
            continue
        yield file, analysis, analysis.warnings, None


def _speaker_options(args):
    """How each file's voices are found and used: --speakers, --speaker-adaptation, --adapt recording."""
    from .serving.segments import SpeakerOptions

    return SpeakerOptions(count=args.speakers, adapt=args.speaker_adaptation, recording=args.adapt == "recording")


def cmd_predict_segments(args) -> int:
    """One row per speech segment: file, segment number, start, end, speaker, emotion, confidence,
    uncertain, arousal, probabilities."""
    from .serving.results import segment_rows

    results, failures = [], 0
    for file, analysis, warnings, error in _analyses(args):
        if _report(file, warnings, error):
            failures += 1
            continue
        language = _language(args, file, analysis)
        if _adaptation_asked(args):
            _note_adaptation(file, analysis.adaptation, warnings)
        results.extend({**row, **language} for row in segment_rows(file, analysis, args.classes))
    if args.format == "json":
        print(json.dumps(results, indent=2))
    elif args.format == "csv":
        labels = list(results[0]["probabilities"]) if results else []
        writer = csv.writer(sys.stdout)
        writer.writerow(["file", "segment", "start_s", "end_s", "speaker", "emotion", "confidence", "uncertain",
                         "arousal", *labels, *LANGUAGE_COLUMNS * args.language])
        for r in results:
            writer.writerow([r["file"], r["segment"], f"{r['start_s']:.3f}", f"{r['end_s']:.3f}", r["speaker"],
                             r["emotion"], f"{r['confidence']:.4f}", r["uncertain"], _arousal_cell(r),
                             *(f"{p:.4f}" for p in r["probabilities"].values()), *_language_cells(r)])
    else:
        for r in results:
            print(f"{r['file']} {r['start_s']:.2f}–{r['end_s']:.2f} s {r['speaker']}: {_reading(r)}"
                  f"{_arousal_text(r)}{_language_text(r)}")
    return 1 if failures else 0


def cmd_predict(args) -> int:
    if args.engine == "ray":
        local_only = [option for option, given in (("--classes", args.classes), ("--language", args.language),
                                                   ("--segments", args.segments), ("--adapt batch", args.adapt == "batch"),
                                                   ("--speaker-column", args.speaker_column),
                                                   ("--workers (Ray's are --actors)", args.workers)) if given]
        if local_only or (args.timeline and not args.out):
            from .errors import ConfigError

            raise ConfigError(f"{local_only[0]} goes with the local engine" if local_only else
                              "--timeline goes with --out: the printout has no per-window columns")
        return _predict_ray(args)
    if args.out or args.timeline or args.address or args.actors:
        from .errors import ConfigError

        raise ConfigError("--out, --timeline, --address and --actors go with --engine ray")
    from .serving.batch import as_result, predict_files

    if args.segments:
        return cmd_predict_segments(args)
    speakers_asked = args.speakers or args.speaker_adaptation or args.adapt == "recording"
    if (args.profile or args.speaker_column or args.adapt == "batch") and not speakers_asked:
        return _report_predictions(args, _adapted_outcomes(args))
    workers = args.workers or (1 if len(args.files) < 16 else os.cpu_count())
    # In this process, every file's analysis at hand: what the speaker options need (`_analyses` reads
    # --profile and --adapt batch too), and, where one worker would read the files anyway, what
    # --language guesses from instead of decoding them again.
    if speakers_asked or (args.language and workers == 1):
        return _report_predictions(args, ((*as_result(file, analysis, error), analysis)
                                          for file, analysis, _, error in _analyses(args)))
    return _report_predictions(args, predict_files(args.files, resolve_model(args.model), workers, args.backend))


def _speakers_cell(result: dict) -> str:
    """--csv's `speakers` column: where two or more voices were told apart, JSON of each speaker's
    reading without their probabilities (--json has them); else empty."""
    return json.dumps([{k: v for k, v in s.items() if k != "probabilities"} for s in result["speakers"]]
                      ) if "speakers" in result else ""


def _uncertain_below(model: str) -> float:
    """The model's calibrated confidence under which the app says "Uncertain" (0 when uncalibrated)."""
    metadata = json.loads((resolve_model(model) / "metadata.json").read_text())
    return float(metadata.get("calibration", {}).get("uncertain_below", 0.0))


LANGUAGE_COLUMNS = ("language", "language_probability", "language_heard_in_training")


def _language(args, file: str, analysis=None) -> dict:
    """With --language, {"language": the file's `LanguageGuess` as a dict}, from its `analysis`'s speech
    when there is one (else the file is decoded for it), its sentence on stderr when the model never
    heard the language; else nothing."""
    if not args.language:
        return {}
    from .frontend.language import guess_analysis, guess_file
    from .serving.inference import native_stderr_silenced

    if analysis is not None:
        guess = guess_analysis(analysis, _heard_codes(args.model))
    else:
        with native_stderr_silenced():
            guess = guess_file(file, _heard_codes(args.model))
    if guess.unheard:
        print(f"{file}: warning: {guess.sentence(adapted=args.adapt is not None, classes_named=bool(args.classes))}", file=sys.stderr)
    return {"language": guess.to_dict()}


@functools.lru_cache(maxsize=None)
def _heard_codes(model: str | None) -> frozenset[str] | None:
    """Whisper's codes of the languages the model (--model) was trained on, read once per command."""
    from .frontend.language import heard_codes

    return heard_codes(json.loads((resolve_model(model) / "metadata.json").read_text()))


def _language_cells(row: dict) -> list:
    language = row.get("language")
    return [] if language is None else [language["code"], f"{language['probability']:.4f}", language["heard_in_training"]]


def _language_text(row: dict) -> str:
    """' · sounds like Polish (heard)' for a text line."""
    language = row.get("language")
    if language is None:
        return ""
    if not language["sure"]:
        return " · language unclear"
    heard = {True: " (heard)", False: " (never heard)"}.get(language["heard_in_training"], "")
    return f" · sounds like {language['name']}{heard}"


def _reading(row: dict) -> str:
    """A result's emotion and confidence as the app words them: "angry (55%)", or under the
    uncertainty threshold "uncertain (fearful? 37%)"."""
    return (f"uncertain ({row['emotion']}? {row['confidence']:.0%})" if row["uncertain"]
            else f"{row['emotion']} ({row['confidence']:.0%})")


def _arousal_cell(row: dict) -> str:
    return "" if row["arousal"] is None else f"{row['arousal']:.4f}"


def _arousal_text(row: dict) -> str:
    """" · arousal high (0.83)": how aroused the voice sounds (`results.arousal`), nothing when unknown."""
    from .serving.results import arousal_word

    return "" if row["arousal"] is None else f" · arousal {arousal_word(row['arousal'])} ({row['arousal']:.2f})"


def _speaker_count(text: str) -> int:
    """--speakers: a whole number from 1 (segments.speaker_count's sentence otherwise)."""
    from .serving.segments import speaker_count

    try:
        return speaker_count(text)
    except SerError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, not {text!r}")
    return value


def _emotion_list(text: str) -> tuple[str, ...]:
    """--classes: "Angry, happy,sad" → ("angry", "happy", "sad") (`named_classes`)."""
    from .serving.results import named_classes

    try:
        return named_classes(text)
    except SerError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _report_predictions(args, predictions) -> int:
    """Print (file, probabilities, warnings, error, voices, adaptation[, analysis]) results as text, JSON or CSV;
    errors to stderr. A file's analysis, when given, is what --language guesses from. A file in which
    two or more voices were told apart (`Analysis.voices`) is answered per speaker too: in JSON a
    `speakers` list, in CSV a `speakers` column, in text each speaker instead of the mean over
    everyone, which describes no one."""
    from .serving.results import judged, speaker_rows

    labels = None
    results, failures = [], 0
    uncertain_below = _uncertain_below(args.model)
    for file, probabilities, warnings, error, voices, adaptation, *analysis in predictions:
        if _report(file, warnings, error):
            failures += 1
            continue
        result = {"file": file, **judged(probabilities, args.classes, uncertain_below),
                  **_language(args, file, *analysis), "warnings": list(warnings)}
        if _adaptation_asked(args):  # what it did, made or not (one not made is a warning too)
            result["adaptation"] = adaptation
            _note_adaptation(file, adaptation, warnings)
        if voices:
            result["speakers"] = speaker_rows(voices, args.classes, uncertain_below)
        labels = list(result["probabilities"])
        results.append(result)
    if args.format == "json":
        print(json.dumps(results, indent=2))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["file", "emotion", "confidence", "uncertain", "arousal", *(labels or []), "speakers",
                         *LANGUAGE_COLUMNS * args.language])
        for r in results:
            writer.writerow([r["file"], r["emotion"], f"{r['confidence']:.4f}", r["uncertain"], _arousal_cell(r),
                             *(f"{p:.4f}" for p in r["probabilities"].values()), _speakers_cell(r),
                             *_language_cells(r)])
    else:
        for r in results:
            reading = (f"{_reading(r)}{_arousal_text(r)}" if "speakers" not in r else
                       f"{len(r['speakers'])} speakers: " + "; ".join(
                           f"{s['speaker']} ({s['share']:.0%} of the speech) {_reading(s)}"
                           f"{_arousal_text(s)}" for s in r["speakers"]))
            print(f"{r['file']}: {reading}{_language_text(r)}")
    return 1 if failures else 0


# --- Ray engine (ser_core.distributed): predict --engine ray, embed, train --features-from --------------

def _predict_ray(args) -> int:
    """Files, folders, manifests or lists in (local or URIs); a Parquet/CSV table with --out, else
    the same printout as the local engine."""
    from .distributed.inputs import list_inputs
    from .distributed.outputs import prediction_schema, speakers_from_records, write_rows
    from .distributed.ray import check_ray, model_summary, predict_rows, ray_session

    from .errors import ManifestError

    check_ray()
    files = list_inputs(args.files)
    if not files:
        raise ManifestError("no audio files in the inputs")
    model_dir = str(resolve_model(args.model))
    summary = model_summary(model_dir, args.backend)  # a bad model directory fails before Ray starts
    labels = json.loads(summary["labels"])
    with ray_session(args.address):
        profile = _saved_profile(args.profile) if args.profile else None
        rows = predict_rows(files, model_dir, backend=args.backend, timeline=args.timeline, actors=args.actors,
                            ship_model=bool(args.address), profile=profile, speakers=_speaker_options(args))
        as_results = ((r["path"], None if r["error"] else {label: r[f"p_{label}"] for label in labels},
                       tuple(r.get("warnings") or ()), r["error"], speakers_from_records(r["speakers"], labels),
                       r["adaptation"] or "")
                      for r in rows)
        if not args.out:
            return _report_predictions(args, as_results)
        failures = 0

        def reported(rows):
            nonlocal failures
            for row in rows:
                if row["error"]:
                    print(f"{row['path']}: {row['error']}", file=sys.stderr)
                    failures += 1
                yield row

        schema = prediction_schema(labels, args.timeline, {**summary, "engine": "ray"})
        n = write_rows(reported(rows), args.out, schema)
    print(f"{n} file{'s' * (n != 1)}, {failures} error{'s' * (failures != 1)} → {args.out}", file=sys.stderr)
    return 1 if failures else 0


def cmd_embed(args) -> int:
    """The training feature cache as Parquet shards, on Ray or in this process."""
    from .errors import require_extra

    require_extra("ser embed", "train,ray", "sklearn", "pyarrow")  # the recipes; Parquet
    from .distributed.engine import map_files
    from .distributed.inputs import is_uri, list_inputs
    from .distributed.ray import check_ray, ray_session
    from .errors import ModelError
    from .serving.batch import map_local
    from .training.shards import EMBED_BATCH_FILES, FeatureShards
    from .training.train import RECIPES

    if args.model not in RECIPES:
        raise ModelError(f"Unknown model {args.model!r}; choose one of {', '.join(RECIPES)}")
    if args.engine != "ray" and (args.address or args.actors):
        from .errors import ConfigError

        raise ConfigError("--address and --actors go with --engine ray")
    files = (list_inputs(args.data) if any(is_uri(d) for d in args.data)
             else [str(clip.path.resolve()) for clip in _clips(args.data)])
    out = args.out if is_uri(args.out) else str(Path(args.out).resolve())
    shards = FeatureShards(RECIPES[args.model][0], out)
    batch_size = args.batch_size or EMBED_BATCH_FILES
    if args.engine == "ray":
        check_ray()
        with ray_session(args.address):
            rows = list(map_files(files, shards, batch_size=batch_size, actors=args.actors))
    else:
        rows = list(map_local(files, shards, batch_size))
    skipped = [row for row in rows if row["error"]]
    for row in skipped:
        print(f"{row['path']}: {row['error']}", file=sys.stderr)
    windows = sum(row["n_windows"] or 0 for row in rows)
    print(f"{len(rows) - len(skipped)} clips, {windows} windows → {args.out} ({len(skipped)} skipped)", file=sys.stderr)
    return 0


def _import_features(folder: str, feature_params) -> None:
    from .training.shards import import_feature_shards

    counts = import_feature_shards(folder, feature_params)
    print(f"features from {folder}: {counts['imported']} clips cached, {counts['stale']} not matching a "
          "file here (extracted again)", file=sys.stderr)


def _add_ray_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="ray: actors on a Ray cluster (pip install 'ser[ray]')")
    p.add_argument("--address", help="with --engine ray: join a running cluster (auto, HOST:6379, "
                   "ray://HOST:10001); default: a local Ray instance on this machine's cores")
    p.add_argument("--actors", type=_positive_int, help="with --engine ray: actors, one core each (default: all cores)")


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
        if name == "train":
            t.add_argument("--protocol", choices=("random", "speaker", "loco", "lolo"), required=True,
                           help="loco / lolo: leave one corpus / language out (--held-out), built on the speaker split")
        else:  # leaving a corpus or language out needs no file of its own: `ser train --protocol loco` reads this one
            t.add_argument("--protocol", choices=("random", "speaker"), required=True,
                           help="speaker: no speaker in two splits; random: 80/20 by file (loco and lolo training "
                                "reads the speaker split)")
        t.add_argument("--split-file", help="default: models/splits/PROTOCOL.csv (made if missing)")
        t.add_argument("--seed", type=int, default=42)
        if name == "train":
            t.add_argument("--model", default="seed-cnn",
                           help="the recipe (default: seed-cnn, the original project's MFCC CNN; the shipped default "
                                "is emo-whisper-ens-diverse: docs/models.md)")
            t.add_argument("--out", required=True)
            t.add_argument("--epochs", type=int, help="default: the model's recipe")
            t.add_argument("--batch-size", type=int, help="default: the model's recipe")
            t.add_argument("--held-out", help="with --protocol loco: the corpus to test on (ravdess, cremad, ...); "
                           "with lolo: the language (english, amharic, polish, turkish, arabic, hindi-english, bengali)")
            t.add_argument("--features-from", help="feature shards from `ser embed` (folder) to cache first")
        t.set_defaults(func=func)

    e = sub.add_parser("evaluate", help="metrics of a model on any manifest with path,emotion")
    e.add_argument("--model", help=MODEL_HELP)
    e.add_argument("--manifest", required=True)
    e.add_argument("--out")
    e.add_argument("--backend", choices=("auto", "litert", "keras"), default="auto")
    e.add_argument("--perturb", metavar="CONDITIONS",
                   help="comma-separated perturbations (gain-30dB, noise-10dB, telephone, opus-16k, ...) or 'all': "
                        "metrics per condition beside clean")
    e.add_argument("--adapt", choices=("speaker",),
                   help="also adapt to each speaker (the manifest's speaker column) with voice profiles built from "
                        "1, 3, 10 and all of their clips: adapted and unadapted UAR side by side")
    e.set_defaults(func=cmd_evaluate)

    x = sub.add_parser("export", help="write model.tflite (LiteRT) beside a model's model.keras")
    x.add_argument("--model", required=True)
    x.set_defaults(func=cmd_export)

    pr = sub.add_parser("predict", help="emotion probabilities of audio files")
    pr.add_argument("files", nargs="+")
    pr.add_argument("--model", help=MODEL_HELP)
    pr.add_argument("--backend", choices=("auto", "litert", "keras"), default="auto")
    pr.add_argument("--workers", type=_positive_int, help="processes (default: 1 for a few files, else one per core)")
    adapt = pr.add_mutually_exclusive_group()
    adapt.add_argument("--profile", help="a voice profile JSON (made in the app's My voice page): every file is that speaker")
    adapt.add_argument("--speaker-column", metavar="COLUMN",
                       help="FILES is one manifest CSV: adapt to each speaker from all of their files (no labels used)")
    adapt.add_argument("--adapt", choices=("batch", "recording"),
                       help="batch: read every file against the mean of all the files given (one user's or one "
                            "channel's recordings of mixed emotions); recording: each file's utterances against "
                            "the mean of that file's own speech, every voice in it (for a language the model never "
                            "heard: docs/benchmarks.md). No labels used")
    _add_ray_options(pr)
    pr.add_argument("--out", help="with --engine ray: write a table, .parquet or .csv (a path or a URI)")
    pr.add_argument("--timeline", action="store_true", help="with --out: per-window probabilities too")
    pr.add_argument("--segments", action="store_true",
                    help="one row per speech segment (start, end, speaker, emotion, probabilities) instead of per file")
    pr.add_argument("--classes", metavar="EMOTIONS", type=_emotion_list,
                    help="comma-separated emotions an application uses (e.g. angry,happy,sad,neutral): probabilities "
                         "renormalised over them; the uncertainty threshold, fitted over all the model's classes, "
                         "is applied to the renormalised confidence")
    pr.add_argument("--language", action="store_true",
                    help="say which language each file sounds like, and warn when the model never heard it")
    pr.add_argument("--speakers", type=_speaker_count, metavar="N",
                    help="the recordings hold N voices (default: found by clustering the utterances' voice prints; "
                         "voices heard at once are not separated: overlapping talk goes to one of them)")
    pr.add_argument("--speaker-adaptation", action=argparse.BooleanOptionalAction, default=False,
                    help="read each speaker with enough speech against their own voice in the recording (off by "
                         "default: on validation conversations it did not gain the 4 points of per-turn UAR "
                         "asked of a default; bench/results/segments.md)")
    fmt = pr.add_mutually_exclusive_group()
    fmt.add_argument("--json", dest="format", action="store_const", const="json")
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv")
    pr.set_defaults(func=cmd_predict, format="text")

    em = sub.add_parser("embed", help="the training feature cache as Parquet shards (ser train --features-from)")
    em.add_argument("--data", nargs="+", required=True, help="corpus folders, one manifest CSV, or URIs")
    em.add_argument("--model", default="emo-cnn", help="the recipe whose features to build")
    em.add_argument("--out", required=True, help="folder (or URI) for part-*.parquet shards")
    _add_ray_options(em)
    # Its default is resolved in cmd_embed: building the parser imports no training code.
    em.add_argument("--batch-size", type=int,
                    help="files per actor call, one shard each (default: ser_core.training.shards.EMBED_BATCH_FILES)")
    em.set_defaults(func=cmd_embed)

    from .serving.http import add_arguments, cmd_serve

    sv = sub.add_parser("serve", help="the HTTP API (POST /v1/analyze, WebSocket /v1/stream); see docs/api.md")
    add_arguments(sv)
    sv.set_defaults(func=cmd_serve)
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
    except BrokenPipeError:  # the reader stopped early (`ser predict … | head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        return 1


if __name__ == "__main__":
    sys.exit(main())
