"""Leave one language out: each recipe trained once per language without any corpus of that language
(speaker-protocol train and test speakers of the others; their validation speakers for early stopping
and calibration) and tested on every clip of the held-out language. What the default is chosen on.

Score: UAR over the labels the held-out corpora have (`label_set_uar`: BAVED's arousal levels count
a prediction right when the level allows it), per language; the row's mean and lowest over languages.
Three readings of each fold model: as recorded (`uar`: one clip at a time, what `ser predict` does);
against the batch at hand (`batch_uar`: each held-out corpus's clips normalised together, as
`ser predict --adapt batch` does with a folder of files); and each speaker against a voice profile of
all of their clips (`speaker_uar`: transductive, as `ser predict --speaker-column`). No labels used.
With `--reference RECIPE WEIGHT`, each fold model is read with that recipe's fold model of the same
language as its reference head (`SerModel.predict_against`, as the default names one in its metadata):
a row of its own, named after both, whose batch and voice-profile readings mix the two.
Beside them, not a reading of the model alone: `known_uar`, each clip's argmax over the classes its
corpus has (what `ser predict --classes` gives an application that uses fewer emotions; it uses which
classes a corpus has, never a clip's label), and `known_batch_uar`, the same over the batch reading
(`ser predict --adapt batch --classes`: both things a user can tell about their recordings); never
what the default is chosen on. And one more plain
reading, `cut_uar`: every held-out clip cut at its speech with a random 0-0.4 s of its own audio
(`augment.cut_at_speech`, the cached copy of seed 1), a sentence as a long recording's segment holds
it: whether reading segments instead of whole files costs a language unheard in training anything.
Fold models stay in the cache (`~/.cache/ser/lolo`); `--reuse-folds` keeps those of the same recipe
(an ensemble's while its member fold models are the ones it averages), so new readings cost no training.

    python bench/lolo.py --recipes emo-whisper emo-whisper-lolo --data ../shared/corpora ../corpora-more
updates bench/results/lolo.json (rows and folds not run are kept) and rewrites lolo.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from compare_models import recipe_id, trained_fold
from provenance import provenance
from report import write_results
from ser_core.frontend.features import default_cache_dir
from ser_core.serving.inference import load_model, sha256_file
from ser_core.serving.profile import profile_from_windows
from ser_core.training.corpora import CORPUS_NAMES, LANGUAGES, LANGUAGE_NAMES, corpus_labels, find_clips
from ser_core.training.metrics import label_uar
from ser_core.training.splits import held_out_corpora
from ser_core.training.train import ENSEMBLES, RECIPES, SEED_REPLICATES, cached_inputs, train, train_ensemble

ROOT = Path(__file__).resolve().parent.parent


def fold(clips, name: str, language: str, reuse: bool, reference: tuple[str, float] | None = None,
         cut: bool = True) -> dict:
    out, fingerprint = recipe_fold(clips, name, language, reuse)
    head = None
    if reference is not None:  # its fold model trained (or reused) as its own row's is
        head = (fold_model(clips, reference[0], language, reuse), reference[1])
        fingerprint += f"+reference:{recipe_id(*RECIPES[reference[0]])}@{reference[1]}"
    val_uar = json.loads((out / "metadata.json").read_text()).get("validation", {}).get("label_set_uar")
    return {**readings(clips, out, language, head, cut), "val_uar": val_uar, "recipe_id": fingerprint}


def recipe_fold(clips, name: str, language: str, reuse: bool) -> tuple[Path, str]:
    """A recipe's or an ensemble's fold model directory, trained unless reused, and its recipe's fingerprint."""
    folds = default_cache_dir().parent / "lolo"
    out = folds / f"{name}-{language}"
    if name not in ENSEMBLES:
        return fold_model(clips, name, language, reuse), recipe_id(*RECIPES[name])
    protocol = f"lolo:{language}"
    members = {m: folds / f"{m}-{language}" for m in ENSEMBLES[name]}  # those of their own rows
    if not (reuse and assembled(out, protocol, members)):
        train_ensemble(clips, ROOT / "models" / "splits" / "speaker.csv", protocol, out, name, members,
                       held_out=language, reuse=reuse)
    return out, "+".join(recipe_id(*RECIPES[m]) for m in ENSEMBLES[name])


def fold_model(clips, name: str, language: str, reuse: bool) -> Path:
    """A single recipe's fold model directory, trained unless reused. train() scores a speaker-normalised
    recipe with every test speaker normalised (transductive), so every reading, the one-clip one
    included, is made from the saved fold model (`readings`)."""
    out = default_cache_dir().parent / "lolo" / f"{name}-{language}"
    features, recipe = RECIPES[name]
    (reuse and trained_fold(out, f"lolo:{language}", features, recipe)) or train(
        clips, ROOT / "models" / "splits" / "speaker.csv", f"lolo:{language}", out, features, recipe,
        held_out=language, verbose=0, recipe=name)
    return out


def assembled(out: Path, protocol: str, members: dict[str, Path]) -> bool:
    """Whether `out` holds a finished fold ensemble of exactly these member fold models, each of its
    recipe as it is now."""
    metadata, metrics = out / "metadata.json", out / "metrics.json"
    if not (metadata.is_file() and metrics.is_file()) or metrics.stat().st_mtime_ns < metadata.stat().st_mtime_ns:
        return False
    stored = json.loads(metadata.read_text())
    current = [trained_fold(d, protocol, *RECIPES[m]) is not None and (m, sha256_file(d / "model.keras"))
               for m, d in members.items()]
    return stored.get("protocol") == protocol and current == [
        (m["recipe"], m["weights_sha256"]) for m in stored.get("members", [])]


def readings(clips, fold_dir: Path, language: str, reference: tuple[Path, float] | None = None,
             cut: bool = True) -> dict:
    """The fold model on the held-out clips, read one clip at a time as recorded (`uar`), and adapted
    with the model's adaptation settings (no labels used): each corpus as one batch (`batch_uar`), and
    each speaker against a profile of all of that speaker's clips (`speaker_uar`, transductive; clips of
    unknown speakers as their corpus's batch); each clip's top class among its corpus's, one clip at a
    time (`known_uar`) and read with its batch (`known_batch_uar`);
    and, unless not `cut` (a head reading inputs the speech-cut copies lack), each clip cut at its speech,
    one at a time (`cut_uar`)."""
    from ser_core.training.corpora import UNKNOWN_SPEAKER

    model = load_model(fold_dir)
    if reference is not None:
        model.reference = (load_model(reference[0]), reference[1])
    truth, plain, batch, by_speaker, known, known_batch, per_corpus = [], [], [], [], [], [], {}
    cut_truth, cut_plain = [], []

    def top(probabilities: np.ndarray, classes=model.labels) -> list[str]:
        """Each clip's top class among `classes`, from its probabilities (clips × the model's labels)."""
        return [model.labels[i] for i in np.where(np.isin(model.labels, classes), probabilities, -1).argmax(axis=1)]

    def read(windows) -> np.ndarray:
        """Each clip's probabilities, read one clip at a time."""
        return np.stack([model.predict_cached(w).mean(axis=0) for w in windows])

    def read_against_all(windows) -> np.ndarray:
        """Each clip's probabilities read against the mean of all of these clips (`predict_against`)."""
        profile = profile_from_windows(model, np.concatenate([model.representation(w) for w in windows]), len(windows))
        return np.stack([model.predict_against(w, profile).mean(axis=0) for w in windows])

    for corpus in held_out_corpora(language):
        data = cached_inputs(model, [c for c in clips if c.corpus == corpus])
        if not data.clips:
            continue
        alone, together = read(data.features), read_against_all(data.features)
        as_recorded, of_its_classes = top(alone), top(alone, corpus_labels(corpus))
        guesses, of_its_classes_together = top(together), top(together, corpus_labels(corpus))
        per_speaker = list(guesses)
        groups: dict[str, list[int]] = {}
        for i, clip in enumerate(data.clips):
            if clip.speaker != UNKNOWN_SPEAKER:
                groups.setdefault(clip.speaker, []).append(i)
        for members in groups.values():
            for i, guess in zip(members, top(read_against_all([data.features[i] for i in members]))):
                per_speaker[i] = guess
        labels = [c.emotion for c in data.clips]
        per_corpus[corpus] = {"one_clip": label_uar(labels, as_recorded), "batch": label_uar(labels, guesses),
                              "speaker": label_uar(labels, per_speaker), "known_classes": label_uar(labels, of_its_classes),
                              "known_classes_batch": label_uar(labels, of_its_classes_together)}
        if cut:
            copies = cached_inputs(model, data.clips, speech_cut=1)  # held-out clips: no fold model trained on them
            cut_labels, as_cut = [c.emotion for c in copies.clips], top(read(copies.features))
            per_corpus[corpus]["speech_cut"] = label_uar(cut_labels, as_cut)
            cut_truth += cut_labels
            cut_plain += as_cut
        truth += labels
        plain += as_recorded
        known += of_its_classes
        known_batch += of_its_classes_together
        batch += guesses
        by_speaker += per_speaker
    return {"uar": label_uar(truth, plain), "batch_uar": label_uar(truth, batch), "speaker_uar": label_uar(truth, by_speaker),
            "known_uar": label_uar(truth, known), "known_batch_uar": label_uar(truth, known_batch),
            **({"cut_uar": label_uar(cut_truth, cut_plain)} if cut else {}),
            "n_test": len(truth), "per_corpus": per_corpus}


def row(folds: dict) -> dict:
    """A recipe's folds with, once every language has one, the mean and lowest of each reading."""
    complete = set(folds) == set(LANGUAGES)
    summary = lambda key, f: (float(f([fold[key] for fold in folds.values()]))
                              if complete and all(key in fold for fold in folds.values()) else None)
    return {"folds": folds, "mean_uar": summary("uar", np.mean), "min_uar": summary("uar", np.min),
            "mean_batch_uar": summary("batch_uar", np.mean), "min_batch_uar": summary("batch_uar", np.min),
            "mean_speaker_uar": summary("speaker_uar", np.mean), "min_speaker_uar": summary("speaker_uar", np.min),
            "mean_known_uar": summary("known_uar", np.mean), "min_known_uar": summary("known_uar", np.min),
            "mean_known_batch_uar": summary("known_batch_uar", np.mean), "min_known_batch_uar": summary("known_batch_uar", np.min),
            "mean_cut_uar": summary("cut_uar", np.mean), "min_cut_uar": summary("cut_uar", np.min)}


def row_seed(row: dict) -> int | str:
    """The training seed a row's recipe (or every member of its ensemble) was trained from, as recorded."""
    params = row.get("train_params", {})  # one recipe's, or a dict of them by recipe (ensembles, newer rows)
    seeds = {p.get("seed") for p in ([params] if "architecture" in params else params.values())}
    return seeds.pop() if len(seeds) == 1 else "?"


def seed_summary(rows: dict, pct) -> list[str]:
    """Each recipe that has seed replicates (`train.SEED_REPLICATES`, rows `NAME-seedN` beside `NAME`), one
    clip at a time and cut at speech: every seed's mean and lowest, and each language averaged over the
    seeds with the mean and lowest of those averages, the comparison that one draw per recipe is not. A
    reading some replicate lacks is left out."""
    lines = []
    for name, first in rows.items():
        replicates = [first] + [rows[f"{name}-seed{seed}"] for seed in SEED_REPLICATES if f"{name}-seed{seed}" in rows]
        seeds = [row_seed(r) for r in replicates]
        for reading, key in (("one clip", ""), ("cut at speech", "cut_")):
            if len(replicates) < 2 or any(r.get(f"mean_{key}uar") is None for r in replicates):
                continue
            averaged = [float(np.mean([r["folds"][language][f"{key}uar"] for r in replicates])) for language in LANGUAGES]
            lines.append(f"| {name} | {reading} | {', '.join(map(str, seeds))} | "
                         + ", ".join(f"{pct(r[f'mean_{key}uar'])} / {pct(r[f'min_{key}uar'])}" for r in replicates)
                         + " | " + " | ".join(pct(v) for v in averaged) + f" | {pct(np.mean(averaged))} | {pct(min(averaged))} |")
    if not lines:
        return []
    head = ["recipe", "reading", "seeds", "each seed: mean / lowest", *(LANGUAGE_NAMES[language] for language in LANGUAGES),
            "mean", "lowest"]
    return ["", "The same recipes trained from other seeds (head initialisation and shuffling only); each language "
            "averaged over the seeds:", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head), *lines]


def markdown(results: dict) -> str:
    pct = lambda v: "–" if v is None else f"{100 * v:.1f}"
    head = ["model", "reading", *(LANGUAGE_NAMES[language] for language in LANGUAGES), "mean", "lowest"]
    lines = ["Leave one language out (UAR %, trained without any corpus of the language, tested on all its clips; "
             "batch: each held-out corpus read as one batch of files; voice profile: each speaker read against a "
             "profile of all of their clips, transductive; known classes, not a reading of the model alone: each "
             "clip's top class among those its corpus has, as `ser predict --classes` gives an application that "
             "uses fewer emotions, never what the default is chosen on; known classes, batch: the same over the "
             "batch reading, `--adapt batch --classes`; cut at speech: each clip cut at its "
             "speech with a random 0-0.4 s of its own audio, as a long recording's segment holds a sentence):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results["rows"].items():
        for reading, key in (("one clip", ""), ("batch", "batch_"), ("voice profile", "speaker_"), ("known classes", "known_"),
                             ("known classes, batch", "known_batch_"), ("cut at speech", "cut_")):
            if not any(f"{key}uar" in fold for fold in r["folds"].values()):
                continue  # a row measured before the reading existed
            cells = [pct(r["folds"][language].get(f"{key}uar")) if language in r["folds"] else "–" for language in LANGUAGES]
            lines.append(f"| {name} | {reading} | " + " | ".join(cells)
                         + f" | {pct(r[f'mean_{key}uar'])} | {pct(r[f'min_{key}uar'])} |")
    lines += seed_summary(results["rows"], pct)
    lines += ["", "English fold per corpus, one clip at a time: " + "; ".join(
        f"{name}: " + ", ".join(f"{CORPUS_NAMES[c]} {pct(v['one_clip'] if isinstance(v, dict) else v)}"
                                for c, v in r["folds"]["english"]["per_corpus"].items())
        for name, r in results["rows"].items() if "english" in r["folds"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=[str(ROOT.parent / "shared" / "corpora"), str(ROOT.parent / "corpora-more")])
    parser.add_argument("--recipes", nargs="+", default=["emo-whisper"], choices=[*RECIPES, *ENSEMBLES])
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES), choices=list(LANGUAGES))
    parser.add_argument("--reuse-folds", action="store_true", help="keep fold models of the same recipe from an earlier run")
    parser.add_argument("--reference", nargs=2, metavar=("RECIPE", "WEIGHT"),
                        help="read each recipe's fold models with RECIPE's as their reference head at WEIGHT (a row of its own)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "lolo"))
    args = parser.parse_args()
    run = provenance()  # fold models are the benchmark's own, so no shipped model is named
    clips = list(find_clips(args.data))
    out = Path(args.out)
    results = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {"rows": {}}
    reference = (args.reference[0], float(args.reference[1])) if args.reference else None
    if reference is not None and reference[0] not in RECIPES:
        parser.error(f"--reference: {reference[0]} is not a single recipe")
    for name in args.recipes:
        members = ENSEMBLES.get(name, (name,))
        fingerprint = "+".join(recipe_id(*RECIPES[m]) for m in members)
        key, described = name, {}
        if reference is not None:  # a row of its own, saying what it reads: `name`'s fold models and their heads
            key = f"{name} + {reference[0]} reference {reference[1]:g}"
            fingerprint += f"+reference:{recipe_id(*RECIPES[reference[0]])}@{reference[1]}"
            described = {"reference": {"of": name, "recipe": reference[0], "weight": reference[1],
                                       "train_params": dataclasses.asdict(RECIPES[reference[0]][1])}}
        stored = results["rows"].get(key, {"folds": {}})
        folds = {lang: f for lang, f in stored["folds"].items() if f.get("recipe_id") == fingerprint}
        for language in args.languages:
            folds[language] = fold(clips, name, language, args.reuse_folds, reference)
            results["rows"][key] = {**row(folds), "train_params": {m: dataclasses.asdict(RECIPES[m][1]) for m in members},
                                    **described, "provenance": run}
            out.with_suffix(".json").write_text(json.dumps(results, indent=2))
            print(name, language, f"{100 * folds[language]['uar']:.1f}", flush=True)
    results["clips_found"] = len(clips)
    write_results(out, results, markdown(results))


if __name__ == "__main__":
    main()
