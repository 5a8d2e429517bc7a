"""The Streamlit side of ser: the served model, cached analyses and the views every page shares.

Pages stay thin: they pick an input and call these. All Streamlit calls of the app live here or in
the pages; everything the views show is computed by ser_core (`inference`, `live`, `plots`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import streamlit as st

# Before anything can import TensorFlow: aiortc's pylibsrtp crashes the process (segfault) when it is
# imported after TensorFlow, which the Keras backend of a model without model.tflite loads.
from streamlit_webrtc import WebRtcMode, WebRtcStreamerContext, create_audio_sink_track, webrtc_streamer

from . import plots
from .audio import DEFAULT_LIMITS
from .errors import SerError
from .features import FeatureParams, extract
from .inference import METADATA_FILE, METRICS_FILE, Analysis, SerModel, load_model
from .live import LiveClassifier

REPO_ROOT = Path(__file__).resolve().parent.parent
# What the browser's audio player is told each upload is; a wrong type can leave it silent.
AUDIO_MIME_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "opus": "audio/ogg",
                    "mp3": "audio/mpeg", "m4a": "audio/mp4", "webm": "audio/webm"}
UPLOAD_TYPES = list(AUDIO_MIME_TYPES)
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


# --- the served model -----------------------------------------------------------------------------


def model_directory() -> Path:
    """SER_MODEL if set (as the CLI reads it), else models/default in the repository."""
    return Path(os.environ.get("SER_MODEL", REPO_ROOT / "models" / "default"))


def models_root() -> Path:
    """Where the Metrics and Model card pages look for model directories: SER_MODELS_DIR or models/."""
    return Path(os.environ.get("SER_MODELS_DIR", REPO_ROOT / "models"))


@st.cache_resource(show_spinner="Loading the model (once per server)…")
def _load_warm_model(directory: str) -> SerModel:
    """One model per process, shared by every session: `SerModel` serialises its forward passes."""
    model = load_model(directory)
    # One dummy prediction through feature extraction and the network: librosa's first call loads and
    # compiles its code (1.5 s here) and the first forward pass sets the network up. Pay for both now,
    # not on a user's first clip.
    _, features = extract(np.zeros(model.params.window_samples, dtype=np.float32), model.params)
    model.predict_features(features)
    return model


def served_model() -> SerModel | None:
    """The served model, or None after telling the user why there is none."""
    try:
        return _load_warm_model(str(model_directory()))
    except SerError as error:
        st.error(f"No model can be served: {error}")
        st.info("Train one with `ser train` (see the README) or point SER_MODEL at a model directory.")
        return None


def home_model_summary(model: SerModel) -> None:
    """Which model is serving, and its test numbers with the protocol that produced them."""
    metadata = model.metadata
    st.subheader("The model")
    st.markdown(f"**{metadata.get('name', model.directory.name)}** — {metadata.get('architecture')}, "
                f"{metadata.get('param_count', 0):,} parameters, {feature_name(model.params)} over "
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
    st.page_link("pages/4_Metrics.py", label="All metrics", icon=":material/bar_chart:")


# --- analysing audio ------------------------------------------------------------------------------


@st.cache_data(max_entries=32, show_spinner=False)
def _analyze_cached(content_sha256: str, model_dir: str, _audio: bytes) -> Analysis:
    """Keyed on the content hash and the model: the same recording is analysed once. The bytes
    themselves are left out of the key (leading underscore) so they are not hashed twice."""
    return _load_warm_model(model_dir).analyze(_audio)


def analyze(audio: bytes) -> Analysis:
    """Bytes (any supported format) → `Analysis` with the served model; raises `SerError`."""
    return _analyze_cached(hashlib.sha256(audio).hexdigest(), str(model_directory()), audio)


@dataclass(frozen=True)
class Result:
    """One input's outcome: an analysis, or the message saying why there is none."""

    name: str
    audio: bytes
    analysis: Analysis | None
    error: str | None


def analyze_named(name: str, audio: bytes) -> Result:
    try:
        return Result(name, audio, analyze(audio), None)
    except SerError as error:
        return Result(name, audio, None, str(error))


def audio_mime_type(name: str) -> str:
    """From the file name; recordings from `st.audio_input` are WAV."""
    return AUDIO_MIME_TYPES.get(Path(name).suffix.lower().lstrip("."), "audio/wav")


def feature_name(params: FeatureParams | dict) -> str:
    """'25 MFCC' or '64 log-mel bands', from `FeatureParams` or a metadata.json `feature_params`."""
    values = params.to_dict() if isinstance(params, FeatureParams) else params
    if values.get("kind", "mfcc") == "mfcc":
        return f"{values['n_mfcc']} MFCC"
    return f"{values['n_mels']} log-mel bands"


def headline(emotion: str, confidence: float, uncertain: bool) -> str:
    """'Angry · 81%', or 'Uncertain (angry? 34%)' under the model's calibrated uncertainty threshold."""
    if uncertain:
        return f"Uncertain ({emotion}? {confidence:.0%})"
    return f"{emotion.capitalize()} · {confidence:.0%}"


def uncertainty_note(uncertain_below: float) -> str:
    return (f"Below {uncertain_below:.0%} confidence this model was wrong more often than right on its "
            "validation clips, so it names no emotion.")


def quality_report(analysis: Analysis) -> dict[str, str]:
    """The format as the input arrived (rate, channels, peak, clipping); loudness and speech level of
    the mono audio the model heard."""
    audio = analysis.audio
    return {
        "Duration": f"{audio.duration_s:.2f} s",
        "Sample rate": f"{audio.original_sample_rate:,} Hz",
        "Channels": str(audio.channels),
        "Peak": f"{20 * np.log10(audio.peak):.1f} dBFS" if audio.peak > 0 else "silent",
        "Clipped": f"{audio.clipped_share:.2%}",
        "Loudness": f"{audio.rms_dbfs:.1f} dBFS RMS",
        "Speech found": f"yes (loudest 50 ms at {audio.loudest_dbfs:.0f} dBFS; "
        f"below {DEFAULT_LIMITS.speech_threshold_dbfs:.0f} counts as no speech)",
    }


def timeline_csv(analysis: Analysis) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["window_start_s", *analysis.labels])
    for start, row in zip(analysis.window_times_s, analysis.window_probabilities):
        writer.writerow([f"{start:.3f}", *(f"{p:.6f}" for p in row)])
    return out.getvalue()


def result_record(result: Result) -> dict:
    """One file's results as plain JSON-ready values; the per-window timeline included."""
    if result.analysis is None:
        return {"file": result.name, "error": result.error}
    analysis = result.analysis
    return {
        "file": result.name,
        "emotion": analysis.emotion,
        "confidence": round(analysis.confidence, 6),
        "uncertain": analysis.is_uncertain,
        "duration_s": round(analysis.audio.duration_s, 3),
        "original_sample_rate": analysis.audio.original_sample_rate,
        "channels": analysis.audio.channels,
        "probabilities": {label: round(p, 6) for label, p in analysis.probabilities.items()},
        "windows": [
            {"start_s": round(float(start), 3), "probabilities": dict(zip(analysis.labels, np.round(row, 6).tolist()))}
            for start, row in zip(analysis.window_times_s, analysis.window_probabilities)
        ],
        "warnings": list(analysis.audio.warnings),
    }


def summary_rows(results: Sequence[Result], labels: Sequence[str]) -> list[dict]:
    """One flat row per file: the summary table and the CSV download."""
    rows = []
    for result in results:
        row = {"file": result.name, "emotion": None, "confidence": None, "uncertain": None, "duration_s": None}
        if result.analysis is not None:
            analysis = result.analysis
            row.update(emotion=analysis.emotion, confidence=round(analysis.confidence, 4),
                       uncertain=analysis.is_uncertain, duration_s=round(analysis.audio.duration_s, 2))
            row.update({label: round(p, 4) for label, p in analysis.probabilities.items()})
        else:
            row.update({label: None for label in labels})
        row["error"] = result.error or ""
        rows.append(row)
    return rows


def rows_csv(rows: Sequence[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


# --- the analysis view (Record, Upload, Home's quick try) -----------------------------------------


def analysis_view(name: str, audio: bytes, key: str) -> None:
    """Analyse `audio` and show everything about it; errors become one `st.error`."""
    with st.spinner(f"Analysing {name}…"):
        result = analyze_named(name, audio)
    show_result(result, key)


def show_result(result: Result, key: str) -> None:
    """`key` keeps the charts of several files on one page apart."""
    st.audio(result.audio, format=audio_mime_type(result.name))
    if result.analysis is None:
        st.error(result.error)
        return
    analysis = result.analysis
    for warning in analysis.audio.warnings:
        st.warning(warning)
    params = _load_warm_model(str(model_directory())).params

    bars, report = st.columns([3, 2])
    with bars:
        st.subheader(headline(analysis.emotion, analysis.confidence, analysis.is_uncertain))
        if analysis.is_uncertain:
            st.caption(uncertainty_note(analysis.uncertain_below))
        st.caption("Mean probability over the analysis windows; every emotion shown.")
        st.plotly_chart(plots.emotion_bars(analysis.probabilities), key=f"{key}-bars")
    with report:
        st.subheader("Input quality")
        report_table = quality_report(analysis)
        st.table(pd.DataFrame({"input": list(report_table.values())}, index=list(report_table)))
    waveform, spectrogram = st.columns(2)
    with waveform:
        st.markdown("**Waveform**")
        st.plotly_chart(plots.waveform(analysis.audio.samples, analysis.audio.sample_rate), key=f"{key}-wave")
    with spectrogram:
        st.markdown("**Mel spectrogram**")
        st.plotly_chart(plots.mel_spectrogram(analysis.audio.samples, params), key=f"{key}-mel")
    st.markdown(f"**{feature_name(params)} of the first window** (what the model sees, before normalisation)")
    st.plotly_chart(plots.feature_heatmap(analysis.features[0], params), key=f"{key}-features")
    if len(analysis.window_times_s) > 1:
        st.markdown(f"**Emotion over time** ({len(analysis.window_times_s)} windows of {params.window_s:g} s, "
                    f"every {params.window_hop_s:g} s)")
        st.plotly_chart(plots.emotion_timeline(analysis.window_times_s, analysis.window_probabilities,
                                               analysis.labels), key=f"{key}-timeline")
        st.download_button("Download the timeline (CSV)", timeline_csv(analysis),
                           file_name=f"{Path(result.name).stem}-timeline.csv", mime="text/csv",
                           key=f"{key}-timeline-csv")


def uploads_view(files: Sequence, labels: Sequence[str]) -> None:
    """Uploaded files: analyse each; a summary table when several, downloads, then each file's view."""
    results = []
    with st.status(f"Analysing {len(files)} file(s)…") as status:
        for number, file in enumerate(files, start=1):
            status.update(label=f"Analysing {file.name} ({number} of {len(files)})…")
            results.append(analyze_named(file.name, file.getvalue()))
        failed = sum(result.error is not None for result in results)
        status.update(label=f"Analysed {len(files) - failed} of {len(files)} file(s)",
                      state="error" if failed == len(files) else "complete")

    rows = summary_rows(results, labels)
    if len(results) > 1:
        st.subheader("Summary")
        table = pd.DataFrame(rows)
        st.dataframe(table.style.format("{:.1%}", subset=["confidence", *labels], na_rep=""), hide_index=True)
    csv_column, json_column = st.columns(2)
    csv_column.download_button("Download results (CSV)", rows_csv(rows), file_name="ser-results.csv",
                               mime="text/csv", key="results-csv")
    json_column.download_button("Download results (JSON, with timelines)",
                                json.dumps([result_record(result) for result in results], indent=2),
                                file_name="ser-results.json", mime="application/json", key="results-json")

    for index, result in enumerate(results):
        if len(results) == 1:
            show_result(result, key=f"upload-{index}")
            continue
        outcome = result.analysis.emotion if result.analysis is not None else "could not be analysed"
        with st.expander(f"{result.name} — {outcome}", expanded=index == 0):
            show_result(result, key=f"upload-{index}")


# --- live -----------------------------------------------------------------------------------------

LEVEL_METER_FLOOR_DBFS = -60.0  # the meter's empty end; the live speech threshold sits above it
LIVE_TIMELINE_S = 30.0  # how much of the live history the chart shows


def live_classifier(model: SerModel) -> LiveClassifier:
    """One classifier per browser session, kept across reruns; a new one if the model changed."""
    classifier = st.session_state.get("live_classifier")
    if classifier is None or classifier.model is not model:
        classifier = LiveClassifier(model)
        st.session_state["live_classifier"] = classifier
    return classifier


def live_microphone(classifier: LiveClassifier) -> WebRtcStreamerContext:
    """The browser's microphone, sent (not played back) to the server; every frame goes to `classifier`."""
    return webrtc_streamer(
        key="live",
        mode=WebRtcMode.SENDONLY,
        sink_audio_track=create_audio_sink_track(classifier.push_frame, key="live-microphone"),
        # No STUN/TURN server: browser and server connect directly (localhost or a LAN), and no
        # third party learns of the stream.
        rtc_configuration={"iceServers": []},
        media_stream_constraints={"audio": True, "video": False},
    )


def show_live(classifier: LiveClassifier) -> None:
    """The classifier's current state: level meter, latest reading, and the recent timeline."""
    state = classifier.snapshot()
    level = state.level_dbfs
    fill = min(1.0, max(0.0, (level - LEVEL_METER_FLOOR_DBFS) / -LEVEL_METER_FLOOR_DBFS))
    st.progress(fill, text=f"Input level: {level:.0f} dBFS" if np.isfinite(level) else "Input level: silent")

    latest = state.latest
    if latest is None:
        if state.receiving:
            st.info("Listening… the first reading comes once half a second of audio has arrived.")
        else:
            st.info("Press START and allow the microphone; readings appear here twice a second.")
    elif latest.probabilities is None:
        st.info(f"No speech — the last {classifier.model.params.window_s:g} s stayed below "
                f"{classifier.speech_threshold_dbfs:.0f} dBFS.")
    else:
        st.subheader(headline(latest.emotion, latest.confidence, latest.uncertain))
        if latest.uncertain:
            st.caption(uncertainty_note(classifier.model.uncertain_below))
        st.plotly_chart(plots.emotion_bars(latest.probabilities), key="live-bars")
    if state.history:
        st.markdown(f"**Emotion over the last {LIVE_TIMELINE_S:g} s**")
        st.plotly_chart(
            plots.live_timeline([r.time_s for r in state.history], [r.probabilities for r in state.history],
                                classifier.model.labels, span_s=LIVE_TIMELINE_S),
            key="live-timeline",
        )
    st.caption(f"{state.audio_s:.1f} s of audio received; {len(state.history)} readings kept.")


# --- model directories: Metrics and Model card ----------------------------------------------------


def model_directories(required_file: str) -> list[Path]:
    """Directories under `models_root()` holding `required_file`, plus the served model's."""
    root = models_root()
    found = sorted(path.parent for path in root.glob(f"*/{required_file}")) if root.is_dir() else []
    served = model_directory()
    if (served / required_file).is_file() and served.resolve() not in {p.resolve() for p in found}:
        found.append(served)
    return found


def choose_model_directory(required_file: str, key: str) -> Path | None:
    """A model picker, the served model preselected; None (after saying why) when there is none."""
    directories = model_directories(required_file)
    if not directories:
        st.info(f"No model directory with {required_file} yet under {models_root()}. Train one with "
                "`ser train` (see the README); its test results appear here.")
        return None
    served = model_directory().resolve()
    index = next((i for i, d in enumerate(directories) if d.resolve() == served), 0)
    return st.selectbox(
        "Model", directories, index=index, key=key,
        format_func=lambda d: f"{d.name} (served)" if d.resolve() == served else d.name,
    )


def read_json(path: Path) -> dict | None:
    """A model file's contents; None when it is missing, or after an `st.error` when it is unreadable."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        st.error(f"{path} cannot be read: {error}")
        return None


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def data_description(metadata: dict | None) -> str:
    """'RAVDESS + TESS, 11,550 clips (train 8,000 / val 1,000 / test 2,550)' from metadata.json."""
    data = (metadata or {}).get("data")
    if not data:
        return "not recorded"
    corpora = sorted({corpus for split in data.values() for corpus in split.get("per_corpus", {})})
    total = sum(split["clips"] for split in data.values())
    splits = " / ".join(f"{name} {split['clips']:,}" for name, split in data.items())
    return f"{' + '.join(corpora)}, {total:,} clips ({splits})"


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

    st.subheader("Features")
    if params:
        window = f"{params['window_s']:g} s windows every {params['window_hop_s']:g} s, from {params['offset_s']:g} s"
        st.markdown(f"{feature_name(params)} at {params['sample_rate']:,} Hz; {window}.")
        st.table(pd.DataFrame.from_dict(params, orient="index", columns=["value"]).astype(str))

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
