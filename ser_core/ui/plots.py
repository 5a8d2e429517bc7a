"""Figures for the app, built from what ser_core computed; no Streamlit here: what every default view
shows (the emotion bars, the segment timeline) as plain HTML, every other chart as a plotly figure.

Every figure keeps the number of points it sends to the browser bounded, whatever the audio length:
a two-hour upload must not turn into a hundred-megabyte chart.
"""

from __future__ import annotations

import base64
import html
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly import colors as px_colors
from plotly.subplots import make_subplots

from ..frontend.features import FeatureParams, import_librosa
from ..serving.results import UNCERTAIN

# One colour per emotion everywhere in the app, so a colour means the same thing on every chart.
EMOTION_COLORS = {
    "neutral": "#8c8c8c",
    "calm": "#4daf9c",
    "happy": "#f2b701",
    "sad": "#3969ac",
    "angry": "#e73f74",
    "fearful": "#7f3c8d",
    "disgust": "#80ba5a",
    "surprised": "#f97b32",
}
# Speech that named no emotion: near-black, as far from every emotion's colour as they are from each
# other (the plotly blue it used to get looked like sad's).
UNCERTAIN_COLOR = "#2b2b2b"
OTHER_COLOR = "#636efa"
# Streamlit's plotly theme rewrites the colours #000001-#000040 in a figure to its own (they are its
# template's placeholders): Magma's darkest stop, #000004, became pink, so silence looked loudest.
# Pure black is not a placeholder.
MAGMA = ["#000000", *px_colors.sequential.Magma[1:]]
WAVEFORM_POINTS = 4000  # envelope points drawn, whatever the audio length
SPECTROGRAM_FRAMES = 800  # spectrogram columns drawn, whatever the audio length (about one per pixel)
TIMELINE_POINTS = 800  # envelope points of the segment timeline (about one per pixel): its image stays ~30 kB


def color(label: str) -> str:
    return UNCERTAIN_COLOR if label == UNCERTAIN else EMOTION_COLORS.get(label, OTHER_COLOR)


def _layout(fig: go.Figure, height: int, **kwargs) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), **kwargs)
    return fig


def emotion_bars(probabilities: Mapping[str, float]) -> str:
    """Horizontal bars as HTML, most likely emotion on top, each with its percentage (and the exact
    value on hover). Plain HTML because the bars are every result's first answer: drawn by plotly they
    made a new session's browser fetch and compile plotly's 4.7 MB bundle first (Chromium, one core:
    3.1 s of CPU before a first result's bars, 0.65 s with these)."""
    rows = []
    for label, p in sorted(probabilities.items(), key=lambda item: -item[1]):
        # The longest bar stops short of the track's end so that its percentage fits after it.
        rows.append(
            f'<div class="ser-bar" data-emotion="{html.escape(label)}" data-probability="{p:.6f}" '
            f'title="{html.escape(label)}: {p:.1%}" style="display:flex;align-items:center;gap:0.5rem;height:1.6rem">'
            f'<span style="flex:0 0 6.5rem;text-align:right;font-size:0.875rem">{html.escape(label)}</span>'
            f'<span style="flex:1;display:flex;align-items:center;gap:0.35rem">'
            f'<span style="display:block;height:1.1rem;width:{88 * p:.2f}%;background:{color(label)};'
            f'border-radius:2px"></span>'
            f'<span style="font-size:0.8rem">{p:.0%}</span></span></div>')
    return f'<div class="ser-bars" style="padding:0.25rem 0 0.75rem">{"".join(rows)}</div>'


AROUSAL_SCALE = ("#7f9fc9", "#e8e8e8", "#e07b5f")  # low, the middle (0.5), high


def arousal_color(level: float) -> str:
    """The colour of `level` (0 to 1) on the arousal track's low-middle-high scale."""
    low, high = (AROUSAL_SCALE[0], AROUSAL_SCALE[1]) if level < 0.5 else (AROUSAL_SCALE[1], AROUSAL_SCALE[2])
    t = 2 * level if level < 0.5 else 2 * level - 1
    mix = [round(int(low[i:i + 2], 16) * (1 - t) + int(high[i:i + 2], 16) * t) for i in (1, 3, 5)]
    return "#" + "".join(f"{v:02x}" for v in mix)


def arousal_gauge(level: float) -> str:
    """How aroused the voice sounds (`results.arousal`, 0 to 1) as a marker on a low-to-high track,
    plain HTML as the bars are."""
    return (f'<div class="ser-arousal" data-arousal="{level:.6f}" title="arousal {level:.2f}" '
            'style="display:flex;align-items:center;gap:0.5rem;padding:0 0 0.75rem">'
            '<span style="flex:0 0 6.5rem;text-align:right;font-size:0.875rem">low arousal</span>'
            '<span style="flex:1;position:relative;height:0.5rem;border-radius:0.25rem;'
            f'background:linear-gradient(90deg,{AROUSAL_SCALE[0]},{AROUSAL_SCALE[1]} 50%,{AROUSAL_SCALE[2]})">'
            f'<span style="position:absolute;left:calc({100 * level:.2f}% - 0.45rem);top:-0.3rem;width:0.9rem;'
            'height:0.9rem;border-radius:50%;background:#333;border:2px solid white"></span></span>'
            '<span style="flex:0 0 5.5rem;font-size:0.875rem">high arousal</span></div>')


def waveform_envelope(samples: np.ndarray, sample_rate: int, points: int = WAVEFORM_POINTS):
    """(times, lower, upper): the min and max of each of `points` buckets, so peaks stay visible."""
    n_buckets = min(points, len(samples))
    bucket = len(samples) // n_buckets
    trimmed = samples[: bucket * n_buckets].reshape(n_buckets, bucket)
    times = (np.arange(n_buckets) * bucket + bucket / 2) / sample_rate
    return times, trimmed.min(axis=1), trimmed.max(axis=1)


def waveform(samples: np.ndarray, sample_rate: int, height: int = 220) -> go.Figure:
    times, lower, upper = waveform_envelope(samples, sample_rate)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=times, y=upper, mode="lines", line=dict(width=0.8, color="#3969ac"),
                             hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(x=times, y=lower, mode="lines", line=dict(width=0.8, color="#3969ac"),
                             fill="tonexty", hoverinfo="skip", showlegend=False))
    fig.update_xaxes(title="time (s)")
    fig.update_yaxes(title="amplitude", range=[-1, 1])
    return _layout(fig, height)


def _time_step(duration_s: float, most: int = 10) -> float:
    """The smallest of 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600 … seconds that keeps the axis under `most` ticks."""
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800):
        if duration_s / step <= most:
            return step
    return 3600.0 * np.ceil(duration_s / 3600.0 / most)


def segment_timeline(samples: np.ndarray, sample_rate: int, segments: Sequence, height: int = 200,
                     points: int = TIMELINE_POINTS) -> str:
    """The waveform with each speech segment as a span coloured by its top emotion (pale when the
    model is uncertain), one lane per speaker when several spoke, a strip under it with each segment's
    arousal on the arousal track's colours, a time axis and a legend, as HTML. Hovering a span shows
    its title: times, speaker, emotion and confidence, arousal, then every probability.
    Not plotly, like `emotion_bars`: this timeline is the first chart a conversation's upload shows,
    and plotly's bundle there cost a session's browser 1.6 s of CPU (bench/load_test.py at K=8: each
    of the three actions that timed out came 1-2 actions after its session's first timeline).
    Spans are positioned divs (st.html's sanitiser removes inline SVG); the envelope is an SVG image
    drawn over them that the pointer passes through."""
    duration_s = len(samples) / sample_rate
    speakers = list(dict.fromkeys(s.speaker for s in segments))  # lanes top to bottom in order of first appearance
    lanes = len(speakers) > 1
    lane = 100.0 / len(speakers) if lanes else 100.0  # % of the height
    shapes, strip = [], []
    for i, s in enumerate(segments):
        top = lane * speakers.index(s.speaker) if lanes else 0.0
        probabilities = "\n".join(f"{k}: {v:.0%}" for k, v in sorted(s.probabilities.items(), key=lambda kv: -kv[1]))
        level = s.arousal
        arousal = "" if level is None else f"\narousal {level:.2f}"
        title = (f"{s.start_s:.1f}–{s.end_s:.1f} s" + (f", {s.speaker}" if s.speaker else "")
                 + f": {s.emotion} {s.confidence:.0%}" + (" (uncertain)" if s.uncertain else "") + arousal + "\n"
                 + probabilities)
        if level is not None:
            strip.append(f'<div class="ser-arousal-span" data-segment="{i}" data-arousal="{level:.6f}" '
                         f'title="{s.start_s:.1f}–{s.end_s:.1f} s: arousal {level:.2f}" style="position:absolute;'
                         f'left:{100 * s.start_s / duration_s:.3f}%;width:{100 * s.duration_s / duration_s:.3f}%;'
                         f'top:0;bottom:0;background:{arousal_color(level)}"></div>')
        shapes.append(
            f'<div class="ser-span" data-segment="{i}" data-speaker="{html.escape(s.speaker)}" '
            f'data-emotion="{html.escape(s.emotion)}" data-start="{s.start_s:.3f}" data-end="{s.end_s:.3f}" '
            f'title="{html.escape(title)}" style="position:absolute;left:{100 * s.start_s / duration_s:.3f}%;'
            f'width:{100 * s.duration_s / duration_s:.3f}%;top:{top:.3f}%;height:{lane:.3f}%;'
            f'background:{color(s.emotion)};opacity:{0.25 if s.uncertain else 0.55}"></div>')
    for boundary in range(1, len(speakers) if lanes else 1):
        shapes.append(f'<div style="position:absolute;left:0;right:0;top:{lane * boundary:.3f}%;'
                      'border-top:1px solid #bbbbbb"></div>')
    # The envelope as one closed outline (upper edge forward, lower edge back), 1000 x 200 units
    # stretched to the box.
    times, lower, upper = waveform_envelope(samples, sample_rate, points)
    outline = [*zip(times, upper), *zip(times[::-1], lower[::-1])]
    path = "M" + " L".join(f"{1000 * t / duration_s:.1f},{100 - 100 * float(np.clip(v, -1, 1)):.1f}"
                           for t, v in outline) + " Z"
    envelope = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000 200" preserveAspectRatio="none">'
                f'<path d="{path}" fill="#444444" fill-opacity="0.6" stroke="#444444" stroke-width="1" '
                'vector-effect="non-scaling-stroke"/></svg>')
    shapes.append(f'<img class="ser-envelope" alt="waveform" src="data:image/svg+xml;base64,'
                  f'{base64.b64encode(envelope.encode()).decode()}" style="position:absolute;inset:0;width:100%;'
                  'height:100%;pointer-events:none">')
    plot = (f'<div class="ser-plot" style="position:relative;height:{height}px;border:1px solid #dddddd;'
            f'overflow:hidden">{"".join(shapes)}</div>')
    arousal_row = (f'<div class="ser-arousal-strip" style="position:relative;height:0.8rem;margin-top:2px;'
                   f'border:1px solid #dddddd">{"".join(strip)}</div>')
    step = _time_step(duration_s)
    ticks = "".join(
        f'<span style="position:absolute;left:{100 * t / duration_s:.3f}%;transform:translateX(-50%)">{t:g}</span>'
        for t in np.arange(0.0, duration_s + 1e-9, step))
    axis = f'<div style="position:relative;height:1.1rem;font-size:0.75rem">{ticks}</div>'
    # The speakers' names beside their lanes (an empty block the plot's height for one voice), then the strip's.
    names = "".join(f'<div style="height:{(height + 2) / len(speakers):.2f}px;display:flex;align-items:center;'
                    f'justify-content:flex-end">{html.escape(name) if lanes else ""}</div>' for name in speakers)
    names += '<div style="height:0.8rem;margin-top:4px;text-align:right;font-size:0.7rem;line-height:0.8rem">arousal</div>'
    gutter = f'<div class="ser-lanes" style="flex:0 0 2.5rem;font-size:0.8rem;padding-right:0.3rem">{names}</div>'
    emotions = list(dict.fromkeys(s.emotion for s in segments))  # in order of appearance
    legend = "".join(f'<span style="display:inline-flex;align-items:center;gap:0.25rem;margin-right:0.8rem">'
                     f'<span style="width:0.8rem;height:0.8rem;background:{color(label)};opacity:0.55"></span>'
                     f'{html.escape(label)}</span>' for label in emotions)
    if any(s.uncertain for s in segments):
        legend += '<span style="color:#666666">paler: uncertain</span>'
    return (f'<div class="ser-timeline" style="font-size:0.8rem">'
            f'<div style="display:flex">{gutter}<div style="flex:1;min-width:0">{plot}{arousal_row}{axis}'
            f'<div style="text-align:center;font-size:0.75rem;color:#666666">time (s)</div></div></div>'
            f'<div class="ser-legend" style="padding:0.3rem 0 0 2.8rem">{legend}</div></div>')


def feature_heatmap(window_features: np.ndarray, params: FeatureParams, height: int = 260) -> go.Figure:
    """One window's features (bands × frames), as the model sees them before normalisation."""
    times = np.arange(window_features.shape[1]) * params.hop_length / params.sample_rate
    low = high = None
    if params.kind == "mfcc" and len(window_features) > 1:
        # Coefficient 0 (overall energy) sits hundreds of units below the rest: scaling the colours to
        # the other coefficients keeps their structure visible; coefficient 0 saturates, its hover is exact.
        low, high = np.percentile(window_features[1:], [1, 99])
    band = "MFCC coefficient" if params.kind == "mfcc" else "mel band"
    fig = go.Figure(
        go.Heatmap(z=window_features, x=times, y=np.arange(window_features.shape[0]), zmin=low, zmax=high,
                   colorscale="Viridis", colorbar=dict(title="value", thickness=12),
                   hovertemplate=f"t=%{{x:.2f}} s, {band} %{{y}}: %{{z:.1f}}<extra></extra>")
    )
    fig.update_xaxes(title="time in window (s)")
    fig.update_yaxes(title=band)
    return _layout(fig, height)


def mel_spectrogram_db(samples: np.ndarray, params: FeatureParams, max_frames: int = SPECTROGRAM_FRAMES):
    """(times, mel band centres in Hz, dB relative to the loudest bin). The hop grows for long audio."""
    librosa = import_librosa("librosa.feature")  # heavy import: only when a spectrogram is drawn

    hop = max(params.hop_length, int(np.ceil(len(samples) / max_frames)))
    power = librosa.feature.melspectrogram(
        y=samples, sr=params.sample_rate, n_fft=params.n_fft, win_length=params.win_length,
        hop_length=hop, n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax,
    )
    db = librosa.power_to_db(power, ref=np.max, top_db=80.0)
    times = librosa.frames_to_time(np.arange(db.shape[1]), sr=params.sample_rate, hop_length=hop)
    frequencies = librosa.mel_frequencies(n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax)
    return times, frequencies, db


def mel_spectrogram(samples: np.ndarray, params: FeatureParams, height: int = 260) -> go.Figure:
    times, frequencies, db = mel_spectrogram_db(samples, params)
    # Mel bands are evenly spaced in pitch, not in Hz: one category per band, named by its frequency,
    # keeps them evenly spaced on screen and lets the hover say the frequency.
    bands = [f"{frequency:.0f} Hz" for frequency in frequencies]
    fig = go.Figure(
        # Whole decibels (-80…0) as int8: a quarter of the float32 bytes, and finer than the eye sees.
        go.Heatmap(z=np.round(db).astype(np.int8), x=times, y=bands, colorscale=MAGMA, zmin=-80, zmax=0,
                   colorbar=dict(title="dB", thickness=12),
                   hovertemplate="t=%{x:.2f} s, %{y}: %{z:.0f} dB<extra></extra>")
    )
    ticks = [bands[i] for i in np.linspace(0, len(bands) - 1, 6).round().astype(int)]
    fig.update_yaxes(title="frequency", tickvals=ticks)
    fig.update_xaxes(title="time (s)")
    return _layout(fig, height)


def emotion_timeline(times_s: np.ndarray, probabilities: np.ndarray, labels: Sequence[str],
                     height: int = 300) -> go.Figure:
    """Probability of each emotion per analysis window; x is the window's start."""
    fig = go.Figure()
    for column, label in enumerate(labels):
        fig.add_trace(go.Scatter(x=times_s, y=probabilities[:, column], mode="lines+markers", name=label,
                                 line=dict(color=color(label)), marker=dict(size=4),
                                 hovertemplate=f"{label}: %{{y:.0%}} at %{{x:.2f}} s<extra></extra>"))
    fig.update_xaxes(title="window start (s)")
    fig.update_yaxes(title="probability", range=[0, 1], tickformat=".0%")
    return _layout(fig, height, legend=dict(orientation="h", y=-0.3))


LIVE_GAP_S = 1.0  # readings come every 0.5 s while audio arrives: a longer silence between them is a stop


def live_timeline(times_s: Sequence[float], probabilities: Sequence[Mapping[str, float] | None],
                  labels: Sequence[str], span_s: float = 30.0, height: int = 280) -> go.Figure:
    """The last `span_s` of live readings; pauses (no voice: `None`) are grey bands, the lines break there,
    and where no reading came for more than `LIVE_GAP_S` (the stream stopped)."""
    fig = go.Figure()
    paused = [t for t, p in zip(times_s, probabilities) if p is None]
    if paused:
        fig.add_trace(go.Bar(x=paused, y=[1.0] * len(paused), width=0.5, name="pause", marker_color="#d9d9d9",
                             marker_line_width=0, hovertemplate="pause at %{x:.1f} s<extra></extra>"))
    times, readings = [], []
    for i, (t, p) in enumerate(zip(times_s, probabilities)):
        if i and t - times_s[i - 1] > LIVE_GAP_S:  # a point of no value between: the line breaks
            times.append((t + times_s[i - 1]) / 2)
            readings.append(None)
        times.append(t)
        readings.append(p)
    for label in labels:
        values = [None if p is None else p[label] for p in readings]
        fig.add_trace(go.Scatter(x=times, y=values, mode="lines", name=label,
                                 line=dict(color=color(label)), connectgaps=False))
    end = max(times_s[-1] if len(times_s) else 0.0, span_s)
    fig.update_xaxes(title="time (s)", range=[end - span_s, end])
    fig.update_yaxes(title="probability", range=[0, 1], tickformat=".0%")
    return _layout(fig, height, legend=dict(orientation="h", y=-0.3))


def confusion_matrix(matrix: np.ndarray, labels: Sequence[str], normalize: bool, height: int = 480) -> go.Figure:
    """Rows true, columns predicted; normalised rows show each class's recall on the diagonal."""
    matrix = np.asarray(matrix, dtype=float)
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        shown = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
        text = [[f"{v:.0%}" for v in row] for row in shown]
    else:
        shown = matrix
        text = [[f"{v:.0f}" for v in row] for row in shown]
    fig = go.Figure(
        go.Heatmap(z=shown, x=list(labels), y=list(labels), text=text, texttemplate="%{text}",
                   colorscale="Blues", colorbar=dict(thickness=12),
                   hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>")
    )
    fig.update_xaxes(title="predicted", side="bottom")
    fig.update_yaxes(title="true", autorange="reversed")
    return _layout(fig, height)


def reliability_diagram(bins: Sequence[Mapping], height: int = 320) -> go.Figure:
    """Accuracy against stated confidence per bin (metrics.json `reliability`); the diagonal is perfect."""
    used = [b for b in bins if b["count"]]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                             line=dict(dash="dot", color="#8c8c8c")))
    fig.add_trace(go.Bar(x=[(b["low"] + b["high"]) / 2 for b in used], y=[b["accuracy"] for b in used],
                         width=[b["high"] - b["low"] for b in used], name="accuracy", marker_color="#3969ac",
                         customdata=[[b["count"], b["confidence"]] for b in used],
                         hovertemplate="confidence %{customdata[1]:.0%}: %{y:.0%} right "
                                       "(%{customdata[0]} clips)<extra></extra>"))
    fig.update_xaxes(title="confidence", range=[0, 1], tickformat=".0%")
    fig.update_yaxes(title="accuracy", range=[0, 1], tickformat=".0%")
    return _layout(fig, height, legend=dict(orientation="h", y=-0.25))


def training_curves(history: Mapping[str, Sequence[float]], height: int = 300) -> go.Figure:
    """Loss and accuracy per epoch, training against validation, side by side."""
    metrics = [name for name in ("loss", "accuracy") if name in history]
    fig = make_subplots(rows=1, cols=max(1, len(metrics)), subplot_titles=metrics)
    for column, name in enumerate(metrics, start=1):
        for key, dash in ((name, "solid"), (f"val_{name}", "dash")):
            if key in history:
                epochs = np.arange(1, len(history[key]) + 1)
                fig.add_trace(go.Scatter(x=epochs, y=history[key], name=key, mode="lines",
                                         line=dict(dash=dash)), row=1, col=column)
        fig.update_xaxes(title="epoch", row=1, col=column)
    return _layout(fig, height)


def dataset_composition(data: Mapping[str, Mapping], height: int = 300) -> go.Figure:
    """Clips per split, stacked by corpus, from a model's metadata.json `data`."""
    splits = list(data)
    corpora = sorted({corpus for split in data.values() for corpus in split.get("per_corpus", {})})
    fig = go.Figure()
    for corpus in corpora:
        counts = [data[split].get("per_corpus", {}).get(corpus, 0) for split in splits]
        fig.add_trace(go.Bar(x=splits, y=counts, name=corpus, text=counts, textposition="inside"))
    fig.update_yaxes(title="clips")
    return _layout(fig, height, barmode="stack")


def grouped_uar(rows: Mapping[str, Mapping[str, float]], x_title: str, height: int = 340, y_title: str = "UAR %",
                colour_title: str = "model") -> go.Figure:
    """UAR (%) per group (corpus or condition) for several models side by side: `rows[model][group]`;
    any other share (0-1) with its own `y_title`, and the bars named by `colour_title`."""
    import plotly.express as px

    records = [{colour_title: model, x_title: group, y_title: 100 * value}
               for model, groups in rows.items() for group, value in groups.items()]
    fig = px.bar(records, x=x_title, y=y_title, color=colour_title, barmode="group", text_auto=".0f")
    # Up to nine bars per group leave each about 12 px: numbers inside were shrunk to unreadable, so
    # they stand above the bars, turned, at a size that reads; long group names get the margin they need.
    fig.update_traces(textposition="outside", textangle=-90, textfont_size=11, cliponaxis=False)
    fig.update_yaxes(range=[0, 112], tickvals=list(range(0, 101, 20)))
    fig.update_xaxes(automargin=True, tickangle=-30)
    return _layout(fig, height)


def adaptation_curve(results: Mapping[str, Mapping[str, Mapping]], height: int = 320) -> go.Figure:
    """UAR against the number of unlabelled clips in each speaker's voice profile, with and without
    adapting (`results[model][k] = {"adapted": .., "unadapted": ..}`, k = "1", "3", "10", "all")."""
    fig = go.Figure()
    for model, by_k in results.items():
        ks = [k for k in by_k if k != "one_emotion"]
        for key, dash, place in (("adapted", "solid", "top center"), ("unadapted", "dot", "bottom center")):
            uar = [100 * by_k[k][key] for k in ks]
            # The numbers beside the points: on an axis from 0, a point of UAR is a few pixels.
            fig.add_trace(go.Scatter(x=ks, y=uar, mode="lines+markers+text", name=f"{model}, {key}",
                                     line=dict(dash=dash), text=[f"{v:.1f}" for v in uar], textposition=place,
                                     textfont_size=11))
    fig.update_xaxes(title="clips in each speaker's profile", type="category")
    # From zero: a few points of UAR must look like a few points, not like a doubling.
    fig.update_yaxes(title="UAR %", range=[0, 100])
    return _layout(fig, height)
