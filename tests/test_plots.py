"""The segment timeline as drawn (HTML, no plotly): one lane per speaker, every segment a span at its
own times, hover text from the segment, names escaped, the waveform's envelope following the audio."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from xml.etree import ElementTree

import numpy as np
import pytest

from ser_core.serving.results import Segment
from ser_core.ui import plots

SR = 16000


class Spans(HTMLParser):
    """Each span's attributes, its style's numbers (left, width, top, height in %) and its hover title,
    as a browser parses the HTML."""

    def __init__(self, timeline: str):
        super().__init__()
        self.found = []
        self.feed(timeline)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "ser-span" in (attrs.get("class") or "").split():
            style = dict(part.split(":", 1) for part in attrs["style"].split(";"))
            self.found.append({**attrs, **{k: float(style[k].rstrip("%")) for k in ("left", "width", "top", "height")},
                               "background": style["background"], "opacity": float(style["opacity"])})


def spans(timeline: str) -> list[dict]:
    return Spans(timeline).found


def envelope_points(timeline: str) -> np.ndarray:
    """The envelope image's outline, (x, y) in its 1000 x 200 viewBox."""
    svg = base64.b64decode(re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', timeline).group(1))
    path = ElementTree.fromstring(svg).find("{http://www.w3.org/2000/svg}path").attrib["d"]
    return np.array([[float(v) for v in p.split(",")] for p in path[1:-2].split(" L")])


def test_each_segment_is_a_span_at_its_times_in_its_speakers_lane():
    segments = [Segment(0.0, 2.0, {"happy": 0.9, "sad": 0.1}, False, "S1"),
                Segment(3.0, 4.0, {"happy": 0.2, "sad": 0.8}, False, "S2"),
                Segment(5.0, 7.5, {"happy": 0.55, "sad": 0.45}, True, "S1"),
                Segment(7.5, 8.0, {"happy": 0.3, "sad": 0.7}, False, "S3")]
    timeline = plots.segment_timeline(np.zeros(10 * SR, np.float32), SR, segments, height=300)
    drawn = spans(timeline)
    assert [int(s["data-segment"]) for s in drawn] == [0, 1, 2, 3]
    for s, segment in zip(drawn, segments):
        assert s["left"] == pytest.approx(100 * segment.start_s / 10, abs=0.001)  # % of the whole audio
        assert s["width"] == pytest.approx(100 * segment.duration_s / 10, abs=0.002)
        assert s["background"] == plots.color(segment.emotion)
        assert s["title"].startswith(f"{segment.start_s:.1f}–{segment.end_s:.1f} s, {segment.speaker}: "
                                     f"{segment.emotion} {segment.confidence:.0%}")
        assert all(f"{label}: {p:.0%}" in s["title"] for label, p in segment.probabilities.items())
    # Three speakers, three lanes of equal height top to bottom in order of first appearance.
    third = 100 / 3
    assert [v for s in drawn for v in (s["top"], s["height"])] == pytest.approx(
        [0, third, third, third, 0, third, 2 * third, third], abs=0.001)
    assert "(uncertain)" in drawn[2]["title"] and drawn[2]["opacity"] < drawn[0]["opacity"]
    lanes = re.search(r'class="ser-lanes".*?</div></div>', timeline, re.S).group(0)
    assert re.findall(r">(S\d)</div>", lanes) == ["S1", "S2", "S3"]
    legend = re.search(r'class="ser-legend".*', timeline, re.S).group(0)
    assert legend.index("happy") < legend.index("sad") and "uncertain" in legend


def test_one_voice_has_no_lanes_and_the_envelope_follows_the_audio():
    audio = np.zeros(4 * SR, np.float32)
    audio[SR:2 * SR] = 0.5  # loud for the second second only
    timeline = plots.segment_timeline(audio, SR, [Segment(1.0, 2.0, {"happy": 0.6, "sad": 0.4}, False)],
                                      height=200, points=400)
    [span] = spans(timeline)
    assert (span["top"], span["height"]) == (0, 100)
    assert not re.findall(r">S\d</div>", timeline)
    # The envelope's points: x across the whole width, y half way up (amplitude 0.5) only in the loud second.
    points = envelope_points(timeline)
    loud = (points[:, 0] > 250) & (points[:, 0] < 500)
    assert np.all(points[loud, 1] == 50.0) and np.all(points[~loud, 1] == 100.0)  # 200 units high, 0 in the middle


def test_names_are_escaped():
    segments = [Segment(0.0, 1.0, {"<b>joy</b>": 0.7, 'a"b': 0.3}, False, "<script>x</script>"),
                Segment(1.5, 2.0, {"<b>joy</b>": 0.1, 'a"b': 0.9}, False, "S&2")]
    timeline = plots.segment_timeline(np.zeros(2 * SR, np.float32), SR, segments)
    assert "<script>" not in timeline and "<b>" not in timeline
    drawn = spans(timeline)  # no attribute or element broken by a name
    assert drawn[0]["data-speaker"] == "<script>x</script>" and drawn[1]["data-emotion"] == 'a"b'
    assert drawn[0]["title"].startswith("0.0–1.0 s, <script>x</script>: <b>joy</b> 70%")


def test_each_segments_arousal_is_a_strip_under_the_waveform_at_its_times():
    segments = [Segment(0.0, 2.0, {"angry": 0.9, "sad": 0.1}, False, "S1"),
                Segment(3.0, 4.0, {"angry": 0.2, "calm": 0.8}, False, "S1"),
                Segment(5.0, 6.0, {"disgust": 1.0}, False, "S1")]  # neither level: no arousal, nothing drawn
    timeline = plots.segment_timeline(np.zeros(10 * SR, np.float32), SR, segments)
    strip = re.findall(r'class="ser-arousal-span" data-segment="(\d)" data-arousal="([0-9.]+)" title="([^"]*)" '
                       r'style="[^"]*left:([0-9.]+)%;width:([0-9.]+)%;[^"]*background:(#[0-9a-f]{6})', timeline)
    assert [(int(i), float(a)) for i, a, *_ in strip] == [(0, pytest.approx(0.9)), (1, pytest.approx(0.2))]
    for (_, level, title, left, width, colour), segment in zip(strip, segments):
        assert (float(left), float(width)) == pytest.approx((10 * segment.start_s, 10 * segment.duration_s))
        assert colour == plots.arousal_color(float(level)) and title.endswith(f"arousal {float(level):.2f}")
    assert [s["title"].splitlines()[1] for s in spans(timeline)[:2]] == ["arousal 0.90", "arousal 0.20"]
    # The strip's colours are the gauge's: low, the middle and high at 0, 0.5 and 1.
    assert [plots.arousal_color(v) for v in (0.0, 0.5, 1.0)] == list(plots.AROUSAL_SCALE)
    assert plots.AROUSAL_SCALE[0] in plots.arousal_gauge(0.3) and plots.AROUSAL_SCALE[2] in plots.arousal_gauge(0.3)
