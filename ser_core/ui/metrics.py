"""Metrics: a model's test results beside the original project's, and the side-by-side benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from .. import plots
from ..inference import METADATA_FILE, METRICS_FILE
from .common import REPO_ROOT, data_description, percent, read_json

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
        "Data": (ORIGINAL["data"], data_description(metadata)),
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


def per_corpus_table(metrics: dict) -> pd.DataFrame:
    table = pd.DataFrame.from_dict(metrics["per_corpus"], orient="index")
    return table.rename(columns={"balanced_accuracy": "balanced accuracy (UAR)", "n": "test clips"})


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
        st.dataframe(per_corpus_table(metrics).style.format(
            "{:.1%}", subset=["accuracy", "balanced accuracy (UAR)"]))

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


def benchmark_view(path: Path = BENCHMARK_FILE) -> None:
    """The side-by-side benchmark (bench/compare_models.py): every model on the same test clips."""
    results = read_json(path)
    if not results:
        return
    st.header("Side by side on the same test clips")
    st.caption(
        "From bench/compare_models.py: the original seed-cnn, our emo-cnn (and the emo-tdnn experiment) "
        "and a classical eGeMAPS + SVM baseline, each on the committed split files' test clips. UAR per corpus: TESS (two speakers, "
        "split by word) makes pooled numbers look good; read the other corpora."
    )
    rows = []
    for protocol, models in results["protocols"].items():
        for name, r in models.items():
            corpus_uar = {f"UAR {c}": percent(v["balanced_accuracy"]) for c, v in sorted(r["per_corpus"].items())}
            rows.append({"protocol": protocol, "model": name, "accuracy": percent(r["accuracy"]),
                         "UAR": percent(r["balanced_accuracy"]), "macro-F1": percent(r["macro_f1"]), **corpus_uar,
                         "parameters": f"{r['parameters']:,}" if r.get("parameters") else "—",
                         "p50 ms / 3 s clip": f"{r['latency_ms_3s_clip']['p50']:.1f}" if "latency_ms_3s_clip" in r else "—"})
    st.dataframe(pd.DataFrame(rows), hide_index=True)
