"""Upload: several files analysed in turn, a summary table, CSV and JSON downloads, each file's view."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from ..errors import SerError
from ..serving.inference import SerModel
from ..serving.profile import VoiceProfile
from ..serving.results import judged, speaker_summaries
from ..serving.segments import DEFAULT_SPEAKERS, SpeakerOptions
from .analysis import show_result
from .common import Result, analyze_named, files_read_together, headline


def result_record(result: Result) -> dict:
    """One file's results as plain JSON-ready values; the speech segments and windows included."""
    if result.analysis is None:
        return {"file": result.name, "error": result.error}
    analysis = result.analysis
    uncertain_below = analysis.uncertain_below

    def reading(x) -> dict:
        """emotion, confidence, uncertain, arousal and probabilities, as `ser predict --json` gives them
        (with `--classes` where the sidebar kept fewer emotions: arousal from all)."""
        if x.all_probabilities is None:
            return judged(x.probabilities, None, uncertain_below)
        return judged(x.all_probabilities, analysis.labels, uncertain_below)

    return {
        "file": result.name,
        **reading(analysis),
        "duration_s": round(analysis.audio.duration_s, 3),
        "original_sample_rate": analysis.audio.original_sample_rate,
        "channels": analysis.audio.channels,
        "segments": [
            {"start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3), "speaker": s.speaker,
             **reading(s)}
            for s in analysis.segments or ()
        ],
        "speakers": [
            {"speaker": summary.speaker, "speech_s": round(summary.speech_s, 3), "share": round(summary.share, 6),
             **reading(summary),
             "speaking_time_by_emotion": {k: round(v, 6) for k, v in summary.shares.items()}}
            for summary in speaker_summaries(analysis.segments or (), analysis.labels, uncertain_below)
        ],
        "adaptation": analysis.adaptation,
        "language": result.language.to_dict() if result.language is not None else None,
        "windows": [
            {"start_s": round(float(start), 3), "probabilities": dict(zip(analysis.labels, np.round(row, 6).tolist()))}
            for start, row in zip(analysis.window_times_s, analysis.window_probabilities)
        ],
        "warnings": list(analysis.audio.warnings),
    }


def each_speaker(analysis) -> str:
    """Where two or more voices were told apart, each one's share of the speech and reading in a line
    ("S1 (55%): Happy · 61%; S2 (45%): Uncertain (angry? 34%)"), as `ser predict` prints it: the mean
    over everyone describes no one. Empty for one voice."""
    return "; ".join(f"{v.speaker} ({v.share:.0%}): {headline(v.emotion, v.confidence, v.uncertain)}"
                     for v in analysis.voices)


def why_not(error: str) -> str:
    """A failed file's reason in a few words, for its expander's title: the error's first clause
    ("no speech found", "the audio is too long"); the whole message is inside."""
    reason = re.split(r"[:;(]", error, maxsplit=1)[0].strip().rstrip(".")
    return reason[:1].lower() + reason[1:]


def outcome(result: Result) -> str:
    """What a file's expander says it holds: each speaker's reading where there are several, else the
    file's headline as its view shows it, or why there is none."""
    if result.analysis is None:
        return f"could not be analysed: {why_not(result.error)}"
    analysis = result.analysis
    return each_speaker(analysis) or headline(analysis.emotion, analysis.confidence, analysis.is_uncertain)


def summary_rows(results: Sequence[Result], labels: Sequence[str]) -> list[dict]:
    """One flat row per file: the summary table and the CSV download (the file's mean, and each
    speaker's reading where there are several)."""
    rows = []
    for result in results:
        row = {"file": result.name, "emotion": None, "confidence": None, "uncertain": None, "arousal": None, "duration_s": None,
               "speech_s": None, "segments": None, "speakers": None, "each_speaker": None, "language": None}
        if result.analysis is not None:
            analysis = result.analysis
            row.update(emotion=analysis.emotion, confidence=round(analysis.confidence, 4),
                       uncertain=analysis.is_uncertain, arousal=None if analysis.arousal is None else round(analysis.arousal, 4),
                       duration_s=round(analysis.audio.duration_s, 2))
            if analysis.segments is not None:
                row.update(speech_s=round(sum(s.duration_s for s in analysis.segments), 2),
                           segments=len(analysis.segments), speakers=len({s.speaker for s in analysis.segments}),
                           each_speaker=each_speaker(analysis))
            if result.language is not None and result.language.sure:
                row["language"] = result.language.name + (" (never heard)" if result.language.unheard else "")
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


def uploads_view(model: SerModel, files: Sequence, profile: VoiceProfile | None = None,
                 speakers: SpeakerOptions = DEFAULT_SPEAKERS, together: bool = False,
                 classes: tuple[str, ...] | None = None) -> None:
    """Uploaded files: analyse each (relative to the voice `profile`, if any, or with `together` to the
    mean of all the files, and to each speaker's own voice as `speakers` says; among `classes`, all
    when None); a summary table when several, downloads, then each file's view."""
    if together and profile is None:
        try:
            with st.spinner(f"Reading the {len(files)} files together…"):
                profile = files_read_together(model, [file.getvalue() for file in files])
        except SerError as error:
            st.warning(f"{error} Each file is read on its own.")
    results = []
    # st.spinner, not st.status: a spinner shows once an analysis has taken 0.5 s, where st.status's
    # spins from the start of every run, and a spinning icon redraws the page 60 times a second (one
    # page waiting 3 s: 0.37 s of Chromium CPU with it, 0.18 s without).
    for number, file in enumerate(files, start=1):
        with st.spinner(f"Analysing {file.name} ({number} of {len(files)})…"):
            results.append(analyze_named(model, file.name, file.getvalue(), profile, speakers, classes,
                                         batch=len(files)))
    failed = sum(result.error is not None for result in results)
    st.caption(f"Analysed {len(files) - failed} of {len(files)} file(s)")

    labels = tuple(label for label in model.labels if classes is None or label in classes)
    rows = summary_rows(results, labels)
    if len(results) > 1:
        st.subheader("Summary")
        # Whole numbers stay whole beside a failed file's missing values (Int64), seconds get two
        # decimals (not pandas' six), and a failed row is blank but for its name and its error: the
        # error next to the name, where it is seen, when a file failed (the CSV keeps its column order).
        table = pd.DataFrame(rows).astype({"segments": "Int64", "speakers": "Int64"})
        table = table[["file", "error", *table.columns.drop(["file", "error"])]] if failed else table.drop(columns="error")
        st.dataframe(table.style.format(precision=2).format("{:.1%}", subset=["confidence", *labels]),
                     hide_index=True, placeholder="")
    csv_column, json_column = st.columns(2)
    csv_column.download_button("Download results (CSV)", rows_csv(rows), file_name="ser-results.csv",
                               mime="text/csv", key="results-csv")
    json_column.download_button("Download results (JSON, with timelines)",
                                json.dumps([result_record(result) for result in results], indent=2),
                                file_name="ser-results.json", mime="application/json", key="results-json")

    for index, result in enumerate(results):
        if len(results) == 1:
            show_result(model, result, key=f"upload-{index}")
            continue
        with st.expander(f"{result.name} — {outcome(result)}", expanded=index == 0):
            show_result(model, result, key=f"upload-{index}")
