"""Live: the microphone over WebRTC, a level meter, the latest reading and the recent timeline."""

from __future__ import annotations

import numpy as np
import streamlit as st
from streamlit_webrtc import WebRtcMode, WebRtcStreamerContext, create_audio_sink_track, webrtc_streamer

from . import plots
from ..io.levels import SILENCE_DBFS
from ..serving.inference import SerModel
from ..serving.live import LiveClassifier
from ..serving.profile import VoiceProfile
from ..serving.results import judged, over_classes
from .common import headline, uncertainty_note

LEVEL_METER_FLOOR_DBFS = SILENCE_DBFS  # the meter's empty end; the live speech threshold sits above it
LIVE_TIMELINE_S = 30.0  # how much of the live history the chart shows


def live_classifier(model: SerModel, profile: VoiceProfile | None = None) -> LiveClassifier:
    """One classifier per browser session, kept across reruns; a new one if the model changed. The
    voice profile (or None) is handed to it on every rerun: the sidebar switch takes effect at once."""
    classifier = st.session_state.get("live_classifier")
    if classifier is None or classifier.model is not model:
        classifier = LiveClassifier(model)
        st.session_state["live_classifier"] = classifier
    classifier.profile = profile
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


def show_live(classifier: LiveClassifier, classes: tuple[str, ...] | None = None) -> None:
    """The classifier's current state: level meter, latest reading, and the recent timeline, among
    `classes` (all the model's when None; arousal from all of them, as `judged` reads it)."""
    state = classifier.snapshot()
    level = state.level_dbfs
    fill = min(1.0, max(0.0, (level - LEVEL_METER_FLOOR_DBFS) / -LEVEL_METER_FLOOR_DBFS))
    st.progress(fill, text=f"Input level: {level:.0f} dBFS" if np.isfinite(level) else "Input level: silent")

    latest = state.latest
    if latest is not None and not state.receiving:  # stopped: the last reading is history, not what is heard
        st.info(f"Stopped: no audio since {state.audio_s:.1f} s. Readings stop with the audio; the last ones "
                "stay in the chart below. Press START to go on.")
    elif latest is None:
        if state.receiving:
            st.info("Listening… the first reading comes once half a second of audio has arrived.")
        else:
            st.info("Press START and allow the microphone; readings appear here twice a second.")
    elif latest.pause:
        why = (f"stayed below {classifier.speech_threshold_dbfs:.0f} dBFS"
               if latest.level_dbfs < classifier.speech_threshold_dbfs else "held no voice")
        st.info(f"Pause — the last {classifier.model.params.window_s:g} s {why}; pauses are not classified.")
    else:
        reading = judged(latest.probabilities, classes, classifier.reader.uncertain_below)
        st.subheader(headline(reading["emotion"], reading["confidence"], reading["uncertain"]))
        if reading["uncertain"]:
            st.caption(uncertainty_note(classifier.reader.uncertain_below))
        st.html(plots.emotion_bars(reading["probabilities"]))
        if reading["arousal"] is not None:
            st.html(plots.arousal_gauge(reading["arousal"]))
    if state.history:
        st.markdown(f"**Emotion over the last {LIVE_TIMELINE_S:g} s** (grey: pauses)")
        st.plotly_chart(
            plots.live_timeline([r.time_s for r in state.history],
                                [None if r.probabilities is None else over_classes(dict(r.probabilities), classes)
                                 for r in state.history],
                                classes or classifier.model.labels, span_s=LIVE_TIMELINE_S),
            key="live-timeline",
        )
    st.caption(f"{state.audio_s:.1f} s of audio received; {len(state.history)} readings kept.")
