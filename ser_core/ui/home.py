"""Home: which model is serving and how well it does on held-out test data."""

from __future__ import annotations

import streamlit as st

from ..serving.inference import SerModel
from .common import feature_name, heard_languages, percent
from .metrics import ORIGINAL


def home_model_summary(model: SerModel) -> None:
    """Which model is serving, and its test numbers with the protocol that produced them."""
    metadata = model.metadata
    st.subheader("The model")
    front_end = metadata.get("front_end")
    hears = (f"a frozen {front_end['encoder']} encoder (blocks 1-{front_end['layers']}) on "
             if front_end else "")
    st.markdown(f"**{metadata.get('name', model.directory.name)}** — {metadata.get('architecture')}, "
                f"{metadata.get('param_count', 0):,} trained parameters on {hears}{feature_name(model.params)} over "
                f"{model.params.window_s:g} s windows at {model.params.sample_rate:,} Hz.")
    metrics = model.metrics
    if metrics is None:
        st.warning("This model has no metrics.json: its accuracy on held-out data is unknown.")
        return
    columns = st.columns(3)
    columns[0].metric("Accuracy", percent(metrics["accuracy"]))
    columns[1].metric("Balanced accuracy (UAR)", percent(metrics["balanced_accuracy"]),
                      help="The mean of the per-emotion recalls: every emotion counts the same.")
    columns[2].metric("Macro-F1", percent(metrics["macro_f1"]))
    st.caption(f"On {metrics['n_test']:,} test clips, protocol **{metrics.get('protocol', 'not recorded')}**. "
               f"The original project reported {percent(ORIGINAL['accuracy'])} accuracy on a "
               f"{ORIGINAL['protocol']}; the Metrics page puts the two side by side.")
    languages = heard_languages(metadata)
    if languages:
        st.markdown(f"**Languages it has heard:** {', '.join(languages)}. Speech in any other language is "
                    "one it has never heard: expect it to be read less well (the Metrics page shows how well "
                    "models of this recipe did on each language left out of their training); every file's result says "
                    "which language it sounds like, and warns when it is one of those. How aroused the voice "
                    "sounds, under every result's bars, holds far better there than the emotion. For such speech, "
                    "the Upload page can read several files together, or a recording against itself (its "
                    "sidebar): without labels, both read it better on languages left out of training.")
    st.page_link("pages/metrics.py", label="All metrics", icon=":material/bar_chart:")
