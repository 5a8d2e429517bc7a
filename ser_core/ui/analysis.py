"""The analysis of one recording (Record, Upload, Home's quick try): bars, input quality, waveform,
spectrogram, features, and for longer audio the segment timeline — coloured speech spans over the
waveform, probabilities on hover, a segment selected in the table plays — with each emotion's share of
speaking time."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from . import plots
from ..io.audio import DEFAULT_LIMITS
from ..serving.inference import SerModel
from ..serving.profile import VoiceProfile
from ..serving.results import UNCERTAIN, Analysis, arousal_word, speaker_summaries, speaking_time_shares
from .common import Result, analyze_named, audio_mime_type, feature_name, figure, headline, uncertainty_note


# Worded from bench/results/arousal.md: in every language never heard that has both levels, arousal was
# read right well above chance while the emotion often was not.
AROUSAL_NOTE = ("How activated the voice sounds: high for happy, angry, fearful and surprised, low for neutral, "
                "calm and sad (disgust counts for neither). In languages the model never heard it is read right far "
                "more often than chance, where the emotion is often near it (the Metrics page).")
SIGNAL_TOGGLE = "Show the signal: waveform, mel spectrogram and what the model sees"
WINDOWS_TOGGLE = "Show the emotion over time"


def quality_report(analysis: Analysis) -> dict[str, str]:
    """The format as the input arrived (rate, channels, peak, clipping); loudness and speech of the
    mono audio the model heard."""
    audio = analysis.audio
    report = {
        "Duration": f"{audio.duration_s:.2f} s",
        "Sample rate": f"{audio.original_sample_rate:,} Hz",
        "Channels": str(audio.channels),
        "Peak": f"{20 * np.log10(audio.peak):.1f} dBFS" if audio.peak > 0 else "silent",
        "Clipped": f"{audio.clipped_share:.2%}",
        "Loudness": f"{audio.rms_dbfs:.1f} dBFS RMS",
        "Speech found": f"yes (loudest 50 ms at {audio.loudest_dbfs:.0f} dBFS; "
        f"below {DEFAULT_LIMITS.speech_threshold_dbfs:.0f} counts as no speech)",
    }
    if analysis.segments is not None:
        speech_s = sum(s.duration_s for s in analysis.segments)
        report["Speech found"] = (f"{len(analysis.segments)} segment(s), {speech_s:.1f} s of {audio.duration_s:.1f} s "
                                  "(voice activity detection)")
    return report


def timeline_csv(analysis: Analysis) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["window_start_s", *analysis.labels])
    for start, row in zip(analysis.window_times_s, analysis.window_probabilities):
        writer.writerow([f"{start:.3f}", *(f"{p:.6f}" for p in row)])
    return out.getvalue()


def segments_table(analysis: Analysis) -> pd.DataFrame:
    """One row per segment, as `ser predict --segments --csv` writes them (times to the millisecond)."""
    return pd.DataFrame([
        {"segment": i, "start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3), "speaker": s.speaker,
         "emotion": s.emotion,
         "confidence": s.confidence, "uncertain": s.uncertain, "arousal": s.arousal,
         **{label: s.probabilities[label] for label in analysis.labels}}
        for i, s in enumerate(analysis.segments, start=1)
    ])


def speakers_table(analysis: Analysis) -> pd.DataFrame:
    """Per speaker: speaking time and share, their own summary, and their emotion mix."""
    rows = []
    for summary in speaker_summaries(analysis.segments, analysis.labels, analysis.uncertain_below):
        mix = ", ".join(f"{label} {share:.0%}" for label, share in
                        sorted(summary.shares.items(), key=lambda kv: -kv[1]) if share >= 0.05)
        rows.append({"speaker": summary.speaker, "speaking time (s)": round(summary.speech_s, 1),
                     "share": f"{summary.share:.0%}",
                     "summary": headline(summary.emotion, summary.confidence, summary.uncertain),
                     "arousal": "–" if summary.arousal is None else f"{arousal_word(summary.arousal)} ({summary.arousal:.2f})",
                     "speaking time by emotion": mix})
    return pd.DataFrame(rows)


def analysis_view(model: SerModel, name: str, audio: bytes, key: str, profile: VoiceProfile | None = None,
                  player: bool = True, classes: tuple[str, ...] | None = None) -> None:
    """Analyse `audio` (relative to the voice `profile`, if any; among `classes`, all when None) and
    show everything about it; errors become one `st.error`. `player=False` where the input widget
    plays the audio itself."""
    with st.spinner(f"Analysing {name}…"):
        result = analyze_named(model, name, audio, profile, classes=classes)
    show_result(model, result, key, player)


def show_result(model: SerModel, result: Result, key: str, player: bool = True) -> None:
    """`key` keeps the charts of several files on one page apart."""
    if player and result.playable:
        st.audio(result.audio, format=audio_mime_type(result.name))
    if result.analysis is None:
        st.error(result.error)
        return
    analysis = result.analysis
    # The input's warnings, and why a reading asked for in the sidebar (a voice profile, each speaker or
    # the whole recording against their own speech) was not made; what a reading made did, as a note.
    for warning in analysis.warnings:
        st.warning(warning)
    if analysis.adaptation and not analysis.adaptation_refused:
        st.info(analysis.adaptation)
    if result.language is not None and result.language.code:
        adapted = bool(analysis.adaptation) and not analysis.adaptation_refused
        (st.warning if result.language.unheard else st.caption)(result.language.sentence(adapted, analysis.all_probabilities is not None))
    params = model.params

    speakers = len({s.speaker for s in analysis.segments or ()})
    shown = ("every emotion shown" if analysis.all_probabilities is None else
             f"only the {len(analysis.labels)} emotions kept in the sidebar, renormalised (arousal from all)")
    bars, report = st.columns([3, 2])
    with bars:
        if speakers > 1:
            # A mean over everyone in a conversation describes no one: each speaker has their own.
            st.subheader(f"{speakers} speakers: each one's summary is below")
            st.caption(f"Mean probability over everyone's speech, for reference only; {shown}. Voices "
                       "are told apart by their voice prints, and one voice across strong emotions is now and then "
                       "heard as two: if fewer people speak, say how many (the Upload page's sidebar, \"Speakers in "
                       "each recording\").")
        else:
            st.subheader(headline(analysis.emotion, analysis.confidence, analysis.is_uncertain))
            if analysis.is_uncertain:
                st.caption(uncertainty_note(analysis.uncertain_below))
            st.caption(f"Mean probability over the speech, each segment weighted by its duration; {shown}."
                       if analysis.segments else f"Mean probability over the analysis windows; {shown}.")
        st.html(plots.emotion_bars(analysis.probabilities))
        if (level := analysis.arousal) is not None and speakers <= 1:
            st.markdown(f"**Arousal: {arousal_word(level)}** ({level:.2f})")
            st.html(plots.arousal_gauge(level))
            st.caption(AROUSAL_NOTE)
    with report:
        st.subheader("Input quality")
        # A Markdown table, not st.table: st.table's Arrow decoding made a session's browser fetch and
        # compile 1 MB more JavaScript (Arrow, moment, numbro) before its first result.
        st.markdown("| | input |\n|---|---|\n" + "\n".join(
            f"| {name} | {value} |" for name, value in quality_report(analysis).items()))
    # One stretch of speech has nothing to show on a timeline that the bars above do not say: its one
    # span is the headline, its one table row the bars (its length is in the input quality).
    if analysis.segments and (len(analysis.segments) > 1 or speakers > 1):
        segment_timeline_view(result, key)
    # Drawn on request: these three charts cost the server and the browser more per upload than the rest
    # of the page (bench/load_test.py, 2 sessions on a busy machine: browser 4.3 s and server 0.32 s of
    # CPU per action with them, 2.7 s and 0.23 s behind this switch).
    if st.toggle(SIGNAL_TOGGLE, key=f"{key}-signal"):
        waveform, spectrogram = st.columns(2)
        with waveform:
            st.markdown("**Waveform**")
            st.plotly_chart(figure(analysis, "wave", lambda: plots.waveform(analysis.audio.samples, analysis.audio.sample_rate)),
                            key=f"{key}-wave")
        with spectrogram:
            st.markdown("**Mel spectrogram**")
            st.plotly_chart(figure(analysis, "mel", lambda: plots.mel_spectrogram(analysis.audio.samples, params)), key=f"{key}-mel")
        st.markdown(f"**{feature_name(params)} of the first window** (what the model sees, before normalisation)")
        st.plotly_chart(figure(analysis, "features", lambda: plots.feature_heatmap(analysis.features[0], params)),
                        key=f"{key}-features")
    if len(analysis.window_times_s) > 1:
        # On request, as the signal: the first plotly chart of a session costs its browser more than the
        # rest of the page together (Chromium on one core, a 5.5 s upload: 3.8 s of CPU with the plotly
        # charts, 0.9 s without).
        if st.toggle(WINDOWS_TOGGLE, key=f"{key}-windows"):
            where = "in the speech segments" if analysis.segments else f"every {params.window_hop_s:g} s"
            st.markdown(f"**Emotion over time** ({len(analysis.window_times_s)} windows of {params.window_s:g} s, "
                        f"{where})")
            st.plotly_chart(figure(analysis, "timeline", lambda: plots.emotion_timeline(
                analysis.window_times_s, analysis.window_probabilities, analysis.labels)), key=f"{key}-timeline")
        st.download_button("Download the timeline (CSV)", timeline_csv(analysis),
                           file_name=f"{Path(result.name).stem}-timeline.csv", mime="text/csv",
                           key=f"{key}-timeline-csv")


def segment_timeline_view(result: Result, key: str) -> None:
    """Speech segments over the waveform, the share of speaking time, and the segments' table (select
    a row to play that segment)."""
    analysis = result.analysis
    segments = analysis.segments
    st.markdown(f"**What was said how** — {len(segments)} speech segment(s); pauses and non-speech are not "
                "classified. Hover a span for its probabilities; select a segment in the table below to play it.")
    timeline, shares = st.columns([3, 1])
    with timeline:
        st.html(figure(analysis, "segments", lambda: plots.segment_timeline(
            analysis.audio.samples, analysis.audio.sample_rate, segments)))
    with shares:
        st.markdown("**Share of speaking time**")
        shares_by_emotion = {k: v for k, v in speaking_time_shares(segments, analysis.labels).items()
                             if k != UNCERTAIN or v > 0}
        st.html(plots.emotion_bars(shares_by_emotion))
    if len({s.speaker for s in segments}) > 1:
        st.markdown("**Each speaker**")
        st.dataframe(speakers_table(analysis), hide_index=True, key=f"{key}-speakers-table")
    # A table, not an expander: Upload shows each of several files inside an expander already.
    table = segments_table(analysis)
    event = st.dataframe(table.style.format("{:.1%}", subset=["confidence", *analysis.labels])
                         .format("{:.2f}", subset=["arousal"], na_rep="–")
                         .format("{:.2f}", subset=["start_s", "end_s"]), hide_index=True,
                         height=min(400, 38 + 35 * len(table)), key=f"{key}-segments-table",
                         on_select="rerun", selection_mode="single-row")
    if event.selection.rows:
        index = event.selection.rows[0]
        segment = segments[index]
        st.markdown(f"Segment {index + 1}: {segment.start_s:.1f}–{segment.end_s:.1f} s, "
                    f"{headline(segment.emotion, segment.confidence, segment.uncertain)}")
        # The span's own samples: st.audio's start_time/end_time are whole seconds, which would play up
        # to a second of the neighbouring speech.
        audio = analysis.audio
        span = audio.samples[int(segment.start_s * audio.sample_rate):int(np.ceil(segment.end_s * audio.sample_rate))]
        st.audio(span, sample_rate=audio.sample_rate, autoplay=True)
    with_file = table.assign(file=result.name)[["file", *table]]  # the columns of `ser predict --segments --csv`
    st.download_button("Download the segments (CSV)", with_file.to_csv(index=False),
                       file_name=f"{Path(result.name).stem}-segments.csv", mime="text/csv", key=f"{key}-segments-csv")
