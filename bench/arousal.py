"""How aroused the voice sounds (`results.arousal`) against the emotion itself, in languages the
default never heard and on the test speakers of the languages it heard.

Never heard: the default's recipe's leave-one-language-out fold models (bench/lolo.py's, seed 42;
reused from its cache, trained when missing), each held-out clip read one at a time as recorded, as
bench/lolo.py's one-clip reading; and each held-out corpus read as one batch of files (every clip
against the mean of all, with the fold of the default's reference head mixed in at the default's
weight, as `ser predict --adapt batch` reads with the default and bench/lolo.py's `--reference` row). Heard: the shipped default's probabilities for its speaker-protocol
test clips (`predictions.csv`, written when it was trained and tested).
Score: UAR over two levels, high (happy, angry, fearful, surprised; BAVED's high arousal) and low
(neutral, calm, sad; BAVED's low arousal and its neutral), chance 50; disgust clips are left out (the
field places disgust both high and low), so is a corpus with one level left. A clip reads high when its
arousal is 0.5 or more (`results.arousal_word`; nothing was tuned). Beside it, the emotion's own UAR
over the same corpus's clips (every class it has, as bench/lolo.py scores; chance 100 / classes).

    python bench/arousal.py [--data ../shared/corpora ../corpora-more]
writes bench/results/arousal.json and .md.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

import lolo
from provenance import provenance
from report import write_results
from ser_core.labels import HIGH_AROUSAL, LOW_AROUSAL
from ser_core.serving.inference import REFERENCE_FIELD, load_model
from ser_core.serving.profile import profile_from_windows
from ser_core.serving.results import arousal, arousal_word
from ser_core.serving.shipped import follow_pointer
from ser_core.training.corpora import CORPUS_NAMES, LANGUAGE_NAMES, LANGUAGES, find_clips
from ser_core.training.metrics import label_uar
from ser_core.training.splits import held_out_corpora
from ser_core.training.train import cached_inputs

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE_OF_CORPUS = {corpus: language for language, corpora in LANGUAGES.items() for corpus in corpora}
# Valence, for the record only (not offered): pleasant or not, neutral in neither, surprise counted pleasant.
VALENCE_OF_LABEL = {**dict.fromkeys(("happy", "calm", "surprised"), "pleasant"),
                    **dict.fromkeys(("angry", "sad", "fearful", "disgust"), "unpleasant")}
LEVEL_OF_LABEL = {**dict.fromkeys(HIGH_AROUSAL, "high"), **dict.fromkeys(LOW_AROUSAL, "low"),
                  "high-arousal": "high", "low-arousal": "low"}


def scores(labels: list[str], probabilities: list[dict[str, float]]) -> dict:
    """Arousal UAR (two levels, clips with a level), the emotion's UAR (all clips) and, for the record,
    valence's (the same reading over pleasant and unpleasant emotions), with counts."""
    emotions = [max(p, key=p.get) for p in probabilities]
    kept = [i for i, label in enumerate(labels) if label in LEVEL_OF_LABEL]
    truth = [LEVEL_OF_LABEL[labels[i]] for i in kept]
    read = [arousal_word(arousal(probabilities[i])) for i in kept]
    pleasant = [i for i, label in enumerate(labels) if label in VALENCE_OF_LABEL]
    valence_truth = [VALENCE_OF_LABEL[labels[i]] for i in pleasant]
    valence_read = [max(("pleasant", "unpleasant"), key=lambda v: sum(p for label, p in probabilities[i].items()
                                                                         if VALENCE_OF_LABEL.get(label) == v))
                    for i in pleasant]
    return {"clips": len(labels), "arousal_clips": len(kept),
            "arousal_uar": label_uar(truth, read) if len(set(truth)) == 2 else None,
            "emotion_uar": label_uar(labels, emotions), "classes": len(set(labels)),
            "valence_uar": label_uar(valence_truth, valence_read) if len(set(valence_truth)) == 2 else None}


def never_heard(clips, recipe: str, reference: tuple[str, float]) -> dict:
    """Per held-out corpus: one clip at a time, and the corpus read as one batch (`batch_` scores)."""
    out = {}
    for language in LANGUAGES:
        fold_dir, _ = lolo.recipe_fold(clips, recipe, language, reuse=True)
        model = load_model(fold_dir)
        model.reference = (load_model(lolo.fold_model(clips, reference[0], language, reuse=True)), reference[1])
        for corpus in held_out_corpora(language):
            data = cached_inputs(model, [c for c in clips if c.corpus == corpus])
            if not data.clips:
                continue
            labels = [c.emotion for c in data.clips]
            one = [dict(zip(model.labels, model.predict_cached(w).mean(axis=0).tolist())) for w in data.features]
            profile = profile_from_windows(model, np.concatenate([model.representation(w) for w in data.features]),
                                           len(data.features))
            batch = [dict(zip(model.labels, model.predict_against(w, profile).mean(axis=0).tolist())) for w in data.features]
            out[corpus] = {"language": language, **scores(labels, one),
                           **{f"batch_{k}": v for k, v in scores(labels, batch).items() if k.endswith("uar")}}
        print(language, flush=True)
    return out


def heard(model_dir: Path) -> dict:
    """The shipped model's test predictions, per corpus."""
    classes = json.loads((model_dir / "metadata.json").read_text())["labels"]
    by_corpus: dict[str, tuple[list, list]] = {}
    with (model_dir / "predictions.csv").open() as f:
        for row in csv.DictReader(f):
            labels, probabilities = by_corpus.setdefault(row["corpus"], ([], []))
            labels.append(row["true"])
            probabilities.append({label: float(row[label]) for label in classes})
    return {corpus: {"language": LANGUAGE_OF_CORPUS[corpus], **scores(*pair)} for corpus, pair in by_corpus.items()}


def markdown(results: dict) -> str:
    pct = lambda v: "–" if v is None else f"{100 * v:.1f}"
    lines = ["# Arousal against the emotion (`python bench/arousal.py`)", "",
             "How aroused the voice sounds, high (happy, angry, fearful, surprised) or low (neutral, calm, sad), "
             "read from the model's probabilities (`ser_core.serving.results.arousal`, high from 0.5): UAR over the "
             "two levels, chance 50, disgust clips left out. Beside it, the emotion's own UAR over every class "
             "the corpus has (chance: 100 / classes), and, not offered by the product, valence read the same way "
             "(happy, calm, surprised against angry, sad, fearful, disgust; chance 50).", "",
             f"Languages never heard: the default's recipe (`{results['recipe']}`) trained without the language "
             "(leave one language out, seed 42), one clip at a time, and each corpus read as one batch of files "
             f"(against their mean, the fold of `{results['reference'][0]}` mixed in at {results['reference'][1]:g}, "
             "as `--adapt batch` reads with the default).", "",
             "| language | corpus | clips | arousal UAR % | emotion UAR % | classes | valence UAR % | batch: arousal | "
             "batch: emotion |", "|---|---|---|---|---|---|---|---|---|"]
    rows = results["never_heard"]
    for corpus, r in rows.items():
        lines.append(f"| {LANGUAGE_NAMES[r['language']]} | {CORPUS_NAMES[corpus]} | {r['clips']} | {pct(r['arousal_uar'])} | "
                     f"{pct(r['emotion_uar'])} | {r['classes']} | {pct(r['valence_uar'])} | {pct(r['batch_arousal_uar'])} | "
                     f"{pct(r['batch_emotion_uar'])} |")
    per_language = {}
    for r in rows.values():
        per_language.setdefault(r["language"], []).append(r)
    means = {key: [np.mean([r[key] for r in rs if r[key] is not None])
                   for rs in per_language.values() if any(r[key] is not None for r in rs)]
             for key in ("arousal_uar", "batch_arousal_uar")}
    lines += ["", f"Over the {len(means['arousal_uar'])} languages with both levels (each language the mean of its "
              f"corpora): arousal mean {pct(np.mean(means['arousal_uar']))}, lowest {pct(min(means['arousal_uar']))}; "
              f"read as a batch, mean {pct(np.mean(means['batch_arousal_uar']))}, lowest "
              f"{pct(min(means['batch_arousal_uar']))}.", "",
              f"Languages heard: the shipped default (`{results['model']}`) on its speaker-protocol test speakers.", "",
              "| language | corpus | clips | arousal UAR % | emotion UAR % | classes | valence UAR % |",
             "|---|---|---|---|---|---|---|"]
    for corpus, r in results["heard"].items():
        lines.append(f"| {LANGUAGE_NAMES[r['language']]} | {CORPUS_NAMES[corpus]} | {r['clips']} | {pct(r['arousal_uar'])} | "
                     f"{pct(r['emotion_uar'])} | {r['classes']} | {pct(r['valence_uar'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=[str(ROOT.parent / "shared" / "corpora"), str(ROOT.parent / "corpora-more")])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "arousal"))
    args = parser.parse_args()
    model_dir = follow_pointer(ROOT / "models" / "default")
    metadata = json.loads((model_dir / "metadata.json").read_text())
    # The default's reference head, named by its shipped directory (RECIPE-PROTOCOL), and its weight.
    shipped_reference = load_model(model_dir.parent / metadata[REFERENCE_FIELD]["model"]).metadata["recipe"]
    reference = (shipped_reference, float(metadata[REFERENCE_FIELD]["weight"]))
    clips = list(find_clips(args.data))
    results = {"provenance": provenance(model_dir), "recipe": metadata["recipe"], "reference": list(reference),
               "model": model_dir.name, "never_heard": never_heard(clips, metadata["recipe"], reference),
               "heard": heard(model_dir)}
    write_results(Path(args.out), results, markdown(results))


if __name__ == "__main__":
    main()
