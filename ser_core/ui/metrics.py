"""Metrics: a model's test results beside the original project's, and the side-by-side benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from . import plots
from ..serving.inference import METADATA_FILE, METRICS_FILE
from ..serving.shipped import MODELS_ROOT
from .common import REPO_ROOT, data_description, follow_pointer, model_directory, model_name, percent, read_json

HISTORY_FILE = "history.json"

# The original project's published test numbers: Keras 0.5-threshold precision/recall, not class
# averages, on a random 80/20 file split of the four corpora (speakers and sentences in both halves).
ORIGINAL = {
    "accuracy": 0.695,
    "keras_precision": 0.807,
    "keras_recall": 0.572,
    "protocol": "random 80/20 file split",
    "data": "RAVDESS + SAVEE + CREMA-D + TESS, 12,162 clips",
}


def comparison_table(metrics: dict, metadata: dict | None) -> pd.DataFrame:
    """This model beside the original's published numbers, each with its protocol and data."""
    split_file = (metadata or {}).get("split_file")
    protocol = metrics.get("protocol", "not recorded") + (f" (split file {split_file})" if split_file else "")
    rows = {
        "Protocol": (ORIGINAL["protocol"], protocol),
        "Data": (ORIGINAL["data"], data_description(metadata, metrics)),
        "Test clips": ("≈20% of the clips", f"{metrics['n_test']:,}"),
        "Accuracy": (percent(ORIGINAL["accuracy"]), percent(metrics["accuracy"])),
        "Balanced accuracy (UAR)": ("not published", percent(metrics["balanced_accuracy"])),
        "Macro-F1": ("not published", percent(metrics["macro_f1"])),
        "Keras precision (0.5 threshold)": (percent(ORIGINAL["keras_precision"]),
                                            percent(metrics.get("keras_precision"))),
        "Keras recall (0.5 threshold)": (percent(ORIGINAL["keras_recall"]), percent(metrics.get("keras_recall"))),
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=["Original project (published)", "This model"])


def per_class_table(metrics: dict) -> pd.DataFrame:
    return pd.DataFrame.from_dict(metrics["per_class"], orient="index")[["precision", "recall", "f1", "support"]]


PER_CORPUS_COLUMNS = {"balanced_accuracy": "balanced accuracy (UAR)", "n": "test clips",
                      "label_set_uar": "UAR with sets of emotions"}


def per_corpus_table(metrics: dict) -> pd.DataFrame:
    table = pd.DataFrame.from_dict(metrics["per_corpus"], orient="index")
    return table.rename(columns=PER_CORPUS_COLUMNS)


def metrics_view(directory: Path) -> None:
    metrics = read_json(directory / METRICS_FILE)
    if metrics is None:
        return
    metadata = read_json(directory / METADATA_FILE)
    st.markdown(f"Test split, protocol **{metrics.get('protocol', 'not recorded')}**, "
                f"{metrics['n_test']:,} clips.")
    columns = st.columns(5)
    for column, (label, name) in zip(columns, [
        ("Accuracy", "accuracy"), ("Balanced accuracy (UAR)", "balanced_accuracy"), ("Macro-F1", "macro_f1"),
        ("Keras precision", "keras_precision"), ("Keras recall", "keras_recall"),
    ]):
        column.metric(label, percent(metrics.get(name)))

    st.subheader("Beside the original project")
    st.table(comparison_table(metrics, metadata))
    st.caption(
        "The original's precision and recall are Keras' 0.5-threshold metrics (every clip-and-class "
        "probability above 0.5 counts as a positive), not class averages; ours are computed the same way "
        "for comparison. A random file split puts the same speakers and sentences in training and test, "
        "which flatters accuracy; a speaker-held-out protocol measures voices the model has never heard."
    )

    st.subheader("Confusion matrix")
    normalize = st.toggle("Row-normalised (each row sums to 100%: recall on the diagonal)", value=True,
                          key="confusion-normalize")
    st.plotly_chart(plots.confusion_matrix(np.asarray(metrics["confusion_matrix"]), metrics["labels"], normalize),
                    key="confusion-matrix")

    st.subheader("Per class")
    st.dataframe(per_class_table(metrics).style.format("{:.1%}", subset=["precision", "recall", "f1"]))
    if metrics.get("per_corpus"):
        st.subheader("Per corpus")
        table = per_corpus_table(metrics)
        rates = [c for c in ("accuracy", "balanced accuracy (UAR)", "UAR with sets of emotions") if c in table]
        st.dataframe(table.style.format("{:.1%}", subset=rates))
        if "UAR with sets of emotions" in table:
            st.caption("UAR with sets of emotions: every test clip, those labelled with a set of emotions (BAVED's "
                       "arousal levels) counted right when the answer is one of the set; the other columns count the "
                       "clips with one emotion.")

    if metrics.get("reliability"):
        st.subheader("Calibration")
        st.markdown(f"Expected calibration error **{percent(metrics['ece'])}**: how far the stated confidence "
                    "is from the share of test clips predicted right, averaged over confidence bins.")
        st.plotly_chart(plots.reliability_diagram(metrics["reliability"]), key="reliability")

    history = read_json(directory / HISTORY_FILE)
    if history:
        st.subheader("Training curves")
        st.plotly_chart(plots.training_curves(history), key="training-curves")
    if metadata and metadata.get("data"):
        st.subheader("Dataset composition")
        st.plotly_chart(plots.dataset_composition(metadata["data"]), key="dataset-composition")
    skipped = metrics.get("skipped_unreadable") or []
    if skipped:
        st.warning(f"{len(skipped)} test clip(s) could not be read and are not counted.")


BENCHMARK_FILE = REPO_ROOT / "bench" / "results" / "compare_models.json"
LOLO_FILE = REPO_ROOT / "bench" / "results" / "lolo.json"


# The readings of a leave-one-language-out fold (bench/lolo.py), as the page and the model card name them:
# the model alone, then told which emotions the recordings can hold (`--classes`), which is not what the
# default is chosen on.
LOLO_READINGS = {"one clip at a time": "uar", "the batch at hand": "batch_uar",
                 "one clip, among the emotions its corpus holds": "known_uar",
                 "the batch, among the emotions its corpus holds": "known_batch_uar"}


def lolo_uars(rows: dict, reading: str = "uar") -> dict[str, dict[str, float]]:
    """Recipe → held-out language → UAR (one reading), with the mean for recipes that have every fold;
    recipes measured before the reading existed left out."""
    from ..training.corpora import LANGUAGE_NAMES

    return {name: {LANGUAGE_NAMES[language]: fold[reading] for language, fold in r["folds"].items()}
            | ({"mean": r[f"mean_{reading}"]} if r.get(f"mean_{reading}") is not None else {})
            for name, r in rows.items() if all(reading in fold for fold in r["folds"].values())}


def batch_reading(key: str) -> bool:
    """The reader's choice of reading for a chart of languages never heard (arousal's): one clip at a time
    (False) or the batch at hand."""
    return st.radio("Reading", ["one clip at a time", "the batch at hand"], horizontal=True, key=key,
                    help="The batch at hand: each held-out corpus read against the mean of its own clips "
                         "(`ser predict --adapt batch`), no labels used.") == "the batch at hand"


def lolo_view(path: Path = LOLO_FILE) -> None:
    """Leave one language out (bench/lolo.py): what the default model is chosen on."""
    results = read_json(path)
    if not results or not results.get("rows"):
        return
    st.header("A language it never heard (leave one language out)")
    st.caption("For each language: the recipe trained on the corpora of every other language, tested on every clip "
               "of that one (UAR over the labels it has; BAVED's arousal levels count any emotion of the level). "
               "The default model is chosen on these numbers, never on test clips.")
    key = LOLO_READINGS[st.radio(
        "Reading", list(LOLO_READINGS), horizontal=True, key="lolo-reading",
        help="The batch at hand: each held-out corpus read against the mean of its own clips (`ser predict --adapt "
             "batch`), no labels used. Among the emotions its corpus holds: each clip's top emotion among those its "
             "corpus was recorded with, as when you name the emotions your recordings can hold (`--classes`, the "
             "sidebar's choice); not what the default is chosen on. Recipes measured before a reading existed are "
             "not shown under it.")]
    st.plotly_chart(plots.grouped_uar(lolo_uars(results["rows"], key), "held-out language"), key="lolo")


AROUSAL_FILE = REPO_ROOT / "bench" / "results" / "arousal.json"
AROUSAL_AXIS = "corpus of a language never heard"


def arousal_uars(never_heard: dict, prefix: str = "") -> dict[str, dict[str, float]]:
    """Reading → held-out corpus (with its language) → UAR: arousal's two levels beside the emotion, one
    clip at a time (or with `prefix` "batch_", each corpus read as one batch)."""
    from ..training.corpora import CORPUS_NAMES, LANGUAGE_NAMES

    names = {corpus: f"{CORPUS_NAMES[corpus]} ({LANGUAGE_NAMES[r['language']]})" for corpus, r in never_heard.items()}
    return {"arousal, high or low (chance 50%)": {names[c]: r[f"{prefix}arousal_uar"] for c, r in never_heard.items()
                                                   if r[f"{prefix}arousal_uar"] is not None},
            "the emotion (chance 100% / its classes)": {names[c]: r[f"{prefix}emotion_uar"]
                                                        for c, r in never_heard.items()}}


def arousal_view(path: Path = AROUSAL_FILE) -> None:
    """How aroused the voice sounds against the emotion, in languages never heard (bench/arousal.py)."""
    results = read_json(path)
    if not results or not results.get("never_heard"):
        return
    st.subheader("What holds in a language it never heard: arousal")
    st.caption("Every answer carries how aroused the voice sounds, high (happy, angry, fearful, surprised) or low "
               "(neutral, calm, sad), read from the same probabilities. Here the default's recipe trained without "
               "each language, one clip at a time, as above; disgust clips left out of arousal, and a corpus with "
               "one level has no arousal bar. From bench/arousal.py.")
    prefix = "batch_" if batch_reading("arousal-reading") else ""
    st.plotly_chart(plots.grouped_uar(arousal_uars(results["never_heard"], prefix), AROUSAL_AXIS,
                                      colour_title="reading"), key="arousal")


SEGMENTS_FILE = REPO_ROOT / "bench" / "results" / "segments.json"
LOLO_CONVERSATIONS_FILE = REPO_ROOT / "bench" / "results" / "lolo_conversations.json"
TURN_TAKING_FILE = REPO_ROOT / "bench" / "results" / "turn_taking.json"
# Two benchmarks, each with its clips read alone as files: the long recording's, and the conversations'.
RECORDING_AS_FILES = "The long recording's clips as files"
TURNS_AS_FILES = "The conversations' turns as files"
READINGS = {"uar_unadapted": "as heard", "uar_adapted": "each speaker against their own voice",
            "uar_whole_recording": "the whole recording against itself"}


def conversations_view(segments_path: Path = SEGMENTS_FILE, lolo_path: Path = LOLO_CONVERSATIONS_FILE,
                       turns_path: Path = TURN_TAKING_FILE) -> None:
    """Long recordings and conversations (bench/segments.py, bench/lolo_conversations.py): utterances
    against the same clips one by one, who spoke when, and what reading each voice or the whole
    recording against itself does, in languages the model heard and in languages it never heard."""
    results = read_json(segments_path)
    if not results or "conversations" not in results or "cost_per_hour" not in results:
        return
    test, conversations = results["test"], results["conversations"]["test"]
    st.header("Long recordings and conversations")
    st.caption(f"From bench/segments.py: {test['clips']} test clips of speakers it never heard laid end to end with "
               f"room noise, music and pauses between them ({test['minutes']:.1f} min), and "
               f"{conversations['conversations']} synthetic conversations of 1-4 test speakers taking turns "
               f"({conversations['turns']:,} turns). Every setting was chosen on validation speakers.")
    cost = results["cost_per_hour"]
    columns = st.columns(4)
    columns[0].metric("Utterances in the recording: UAR", percent(test["by_utterance"]["uar_per_segment"]))
    columns[1].metric(RECORDING_AS_FILES, percent(test["one_by_one"]["uar_by_utterance"]),
                      help="The long recording's clips, each analysed alone as a file: what the utterances "
                           "in the recording are read against.")
    columns[2].metric("Boundary error (median)", f"{test['by_utterance']['boundary_error_s_median']:.2f} s")
    talk = cost.get("continuous_talk", {}).get("shipped")
    columns[3].metric("Voice prints + grouping, per hour", f"{cost['speaker_embeddings_and_clustering_s']:.1f} s",
                      help=None if talk is None else
                      f"On the test recording. In continuous talk (sentences back to back with no pause, where "
                      f"every part is read for a change of voice): {talk['speaker_embeddings_and_clustering_s']:.1f} s.")
    who = conversations["attribution"]  # by how many people speak: "1", "2", …
    people = {n: f"{n} speaker{'' if n == '1' else 's'}" for n in who}
    readings = {name: {people[n]: conversations[key][f"uar_{n}_speakers"] for n in who}
                for key, name in READINGS.items() if key in conversations}
    st.plotly_chart(plots.grouped_uar(readings, "conversation", colour_title="reading"), key="conversation-readings")
    st.caption(f"Per-turn UAR by how many people speak. {TURNS_AS_FILES}: "
               f"{percent(conversations['uar_one_by_one'])}. Reading each voice, or the whole recording, against "
               "itself is off by default (the sidebar of the Upload page turns either on).")
    given = conversations["attribution_speakers_given"]
    voices = {"turns to the right voice, voices found": {people[n]: who[n]["accuracy"] for n in who},
              "turns to the right voice, number given": {people[n]: given[n]["accuracy"] for n in who},
              "conversations with the right number found": {people[n]: who[n]["right_count"] for n in who}}
    st.plotly_chart(plots.grouped_uar(voices, "conversation", y_title="%", colour_title="who spoke when"),
                    key="conversation-voices")
    st.caption("Turns given to the right speaker (under the best match of the voices found to the people), "
               "without and with the number of speakers given, and the conversations in which the right number "
               "was found without it.")
    quick_turns_view(turns_path)
    lolo = read_json(lolo_path)
    if lolo and lolo.get("languages"):
        from ..training.corpora import LANGUAGE_NAMES

        st.subheader("Conversations in a language it never heard")
        unheard = {name: {LANGUAGE_NAMES[language]: r[key]["uar"] for language, r in lolo["languages"].items()}
                   for key, name in (("plain", "as heard"), ("adapted", "each speaker against their own voice"),
                                     ("whole_recording", "the whole recording against itself"))
                   if all(key in r for r in lolo["languages"].values())}
        st.plotly_chart(plots.grouped_uar(unheard, "language left out of training", colour_title="reading"),
                        key="conversation-languages")
        st.caption(f"From bench/lolo_conversations.py: per-turn UAR in conversations of {lolo['turns_per_speaker']} "
                   "turns per speaker, read by the default's recipe trained without the language. Reading the "
                   "recording against itself helps most here, where the model never heard the language.")


def quick_turns_view(path: Path = TURN_TAKING_FILE) -> None:
    """Conversations whose turns follow within 0.05-0.3 s (bench/turn_taking.py): told apart on the
    detector's regions (before), on pieces cut at turn pauses (now) and as any earlier setting measured
    beside them cut them, on test speakers."""
    results = read_json(path)
    if not results or "test" not in results:
        return
    quick = results["test"]["Q"]
    measures = {"per-turn UAR": "uar", "turns to the right voice (2-4 speakers)": "attribution_2_to_4",
                "right number of speakers found": "right_count"}
    # Settings measured beside the choice (an earlier choice) are drawn between before and now.
    earlier = [v for v in quick if v not in (results["regions"], results["chosen"], "one_by_one_uar")]
    labelled = [("the detector's regions (before)", results["regions"]),
                *((f"cut where the voice changes, earlier setting {v}", v) for v in earlier),
                ("regions cut where the voice changes (now)", results["chosen"])]
    rows = {label: {measure: quick[variant][key] for measure, key in measures.items()} for label, variant in labelled}
    st.subheader("Turns that follow quickly")
    st.plotly_chart(plots.grouped_uar(rows, "measure", y_title="%", colour_title="voices told apart on"),
                    key="conversation-quick-turns")
    st.caption(f"From bench/turn_taking.py: {results['test_conversations']['Q']} conversations of 1-4 test speakers "
               "whose turns follow 0.05-0.3 s apart, inside one region of the voice detector. The same turns as "
               f"files: {percent(quick['one_by_one_uar'])}.")


def own_test(name: str, protocol: str) -> tuple[dict, list[str]] | None:
    """A benchmarked model's own test numbers (metrics.json) and the corpora it trained on, from its
    shipped directory; None for a model that ships none (the eGeMAPS baseline)."""
    directory = MODELS_ROOT / f"{name}-{protocol}"
    metrics, metadata = read_json(directory / METRICS_FILE), read_json(directory / METADATA_FILE)
    if metrics is None or metadata is None:
        return None
    return metrics, sorted(((metadata.get("data") or {}).get("train") or {}).get("per_corpus", {}))


def default_on_the_same_clips(results: dict) -> tuple[str, dict] | None:
    """The default model's name and row of the speaker protocol, where the benchmark ran it on the
    protocol's test clips without a row for it: the voice-profile run scores every test clip unadapted
    beside adapted (its "all" profile), which is that row's UAR and UAR per corpus."""
    name = model_name(follow_pointer(model_directory()))
    pooled = results["protocols"].get("speaker", {})
    unadapted = (results.get("adapt", {}).get("speaker", {}).get(name) or {}).get("all")
    if name in pooled or not pooled or not unadapted or \
            unadapted["n_scored"] != next(iter(pooled.values()))["n_test"]:
        return None
    return name, {"n_test": unadapted["n_scored"], "balanced_accuracy": unadapted["unadapted"],
                  "per_corpus": {c: {"balanced_accuracy": r["unadapted"]} for c, r in unadapted["per_corpus"].items()}}


def benchmark_row(protocol: str, name: str, r: dict, label: str | None = None) -> dict:
    """One model's row of the side-by-side table, named `label` (else `name`); what the benchmark did
    not measure reads "—"."""
    corpus_uar = {f"UAR {c}": percent(v["balanced_accuracy"]) for c, v in sorted(r["per_corpus"].items())}
    own = own_test(name, protocol)
    return {"protocol": protocol, "model": label or name, "accuracy": percent(r.get("accuracy")),
            "UAR": percent(r["balanced_accuracy"]),
            "UAR on its own test clips": f"{percent(own[0]['balanced_accuracy'])} of {own[0]['n_test']:,}" if own else "—",
            "macro-F1": percent(r.get("macro_f1")), **corpus_uar,
            "parameters": f"{r['parameters']:,}" if r.get("parameters") else "—",
            "p50 ms / 3 s clip": f"{r['latency_ms_3s_clip']['p50']:.1f}" if "latency_ms_3s_clip" in r else "—"}


def pooled_clips_note(results: dict, default: tuple[str, dict] | None) -> str:
    """Which clips the side-by-side table pools, and why a model's UAR there is not its own test number."""
    from ..serving.results import listed
    from ..training.corpora import CORPUS_NAMES

    def corpora_names(corpora: set[str]) -> str:
        return listed([CORPUS_NAMES.get(c, c) for c in sorted(corpora)])

    splits, pooled, unheard, more = [], set(), {}, {}
    for protocol, models in results["protocols"].items():
        corpora = set().union(*(r["per_corpus"] for r in models.values()))
        pooled |= corpora
        splits.append(f"{next(iter(models.values()))['n_test']:,} of the {protocol} split")
        for name in [*models, *([default[0]] if default and protocol == "speaker" else [])]:
            own = own_test(name, protocol)
            if own and corpora - set(own[1]):
                unheard.setdefault(corpora_names(corpora - set(own[1])), {})[name] = None  # each name once, in order
            if own and set(own[1]) - corpora:
                more[name] = len(set(own[1]) - corpora)
    reasons = [f"{listed(list(models))} never trained on {corpora}: it counts against them here, not in their own test"
               for corpora, models in unheard.items()]
    reasons += [f"{name}'s own test adds {n} corpora this pool lacks" for name, n in more.items()]
    default_name = model_name(follow_pointer(model_directory()))
    if default is not None:
        about_default = (f" The default, {default_name}, has no row of its own in this benchmark: its row is its "
                         "reading of the same clips in the benchmark's voice-profile run (unadapted), where accuracy, "
                         "macro-F1 and speed were not measured.")
    elif not any(default_name in models for models in results["protocols"].values()):
        about_default = (f" The default, {default_name}, is not in this benchmark's results: its own test numbers "
                         "are at the top of this page.")
    else:
        about_default = ""
    why = f": {'; '.join(reasons)}" if reasons else ""
    return (f"From bench/compare_models.py: every model on the same test clips of {corpora_names(pooled)} "
            f"({' and '.join(splits)}). That pool is not each model's own test set, so its UAR here can differ from "
            f"its own test number (beside it){why}.{about_default} UAR per corpus: TESS (two speakers, split by "
            "word) makes pooled numbers look good; read the other corpora.")


def benchmark_view(path: Path = BENCHMARK_FILE) -> None:
    """The side-by-side benchmark (bench/compare_models.py): every model on the same test clips."""
    results = read_json(path)
    if not results:
        return
    st.header("Side by side on the same test clips")
    default = default_on_the_same_clips(results)
    st.caption(pooled_clips_note(results, default))
    rows = []
    for protocol, models in results["protocols"].items():
        rows += [benchmark_row(protocol, name, r) for name, r in models.items()]
        if protocol == "speaker" and default is not None:
            rows.append(benchmark_row(protocol, *default, label=f"{default[0]} (default)"))
    st.dataframe(pd.DataFrame(rows), hide_index=True)

    lolo_view()
    arousal_view()
    conversations_view()
    generalisation_view(results)


def loco_uars(loco: dict) -> dict[str, dict[str, float]]:
    """Model → held-out corpus → UAR, and the mean for the models with every corpus's fold: a mean over
    fewer (a run done in parts, a shipped model scored on the corpora it never saw) is not the LOCO mean."""
    corpora = set().union(*(r["folds"] for r in loco.values()))
    return {name: {corpus: fold["balanced_accuracy"] for corpus, fold in r["folds"].items()}
            | ({"mean": r["mean_uar"]} if set(r["folds"]) == corpora else {})
            for name, r in loco.items()}


def generalisation_view(results: dict) -> None:
    """Leave-one-corpus-out, perturbed test clips and voice profiles, from the same benchmark file."""
    if results.get("loco"):
        st.header("A corpus it never heard (leave one corpus out)")
        st.caption("For each corpus: the model's recipe trained on the other four, tested on every clip of it "
                   "(another language, other microphones, other speakers). UAR over the classes that corpus has.")
        st.plotly_chart(plots.grouped_uar(loco_uars(results["loco"]), "held-out corpus"), key="loco")
    perturb = results.get("perturb", {})
    if perturb.get("models"):
        st.header("Microphones, rooms, phone lines and codecs")
        st.caption(f"The same {perturb['clips']:,} speaker-protocol test clips, perturbed the same way for every model: "
                   "gain (16-bit, clipped), noise at an SNR below the speech level, 8 kHz phone band, 16 kbit/s "
                   "codecs, a 0.6 s room.")
        st.plotly_chart(plots.grouped_uar({name: {c: r["balanced_accuracy"] for c, r in conditions.items()}
                                           for name, conditions in perturb["models"].items()}, "condition"),
                        key="perturb")
    adapt = results.get("adapt", {})
    if adapt.get("speaker"):
        st.header("Voice profiles")
        st.caption("UAR with a profile built from k unlabelled clips of each test speaker (those clips not scored), "
                   "against the same model unadapted on the same clips.")
        st.plotly_chart(plots.adaptation_curve(adapt["speaker"]), key="adapt")
        one_sided = {name: r["one_emotion"] for name, r in adapt["speaker"].items()}
        st.markdown("A profile built only from a speaker's angry clips, scored on their other clips: " + "; ".join(
            f"{name} {percent(r['adapted'])} adapted vs {percent(r['unadapted'])} unadapted" for name, r in one_sided.items()))
