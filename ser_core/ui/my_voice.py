"""My voice: a voice profile from 10-30 s of the user's everyday speech, kept in this session only."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ..errors import SerError
from ..serving.inference import SerModel
from ..serving.profile import MIN_SPEECH_SECONDS, VoiceProfile, build_profile
from .common import PROFILE_KEY, USE_PROFILE_KEY, choose

# What the page asks for; a profile from less speech than MIN_SPEECH_SECONDS carries a note that says so.
ADVICE = f"{MIN_SPEECH_SECONDS:g}-30 seconds"


def without_change_note() -> str:
    """What a failed build or load leaves in place."""
    if PROFILE_KEY in st.session_state:
        return "Your current voice profile stays in use."
    return "Predictions go on without a voice profile."


def profile_summary(profile: VoiceProfile) -> pd.DataFrame:
    """What the profile captured, in words a user can check against their own voice."""
    pitch = profile.pitch_hz
    rows = {
        "speech heard": f"{profile.speech_seconds:.1f} s (of {profile.seconds:.1f} s in {profile.clips} recording(s))",
        "speech level": f"{profile.level_dbfs:.0f} dBFS",
        "pitch range": (f"{pitch['p10']:.0f}-{pitch['p90']:.0f} Hz (median {pitch['p50']:.0f} Hz)" if pitch
                        else "not measured (too little voiced speech)"),
        "model windows averaged": str(profile.windows),
    }
    return pd.DataFrame({"your voice": list(rows.values())}, index=list(rows))


def build_view(model: SerModel) -> None:
    """Record or upload, then build: the recordings are only held by their widgets, in memory."""
    recorded = st.audio_input(f"Record your voice (speak for {ADVICE})", sample_rate=model.params.sample_rate,
                              key="voice-profile-recording")
    uploaded = st.file_uploader("…or upload recordings of your voice", accept_multiple_files=True,
                                type=["wav", "flac", "ogg", "opus", "mp3", "m4a", "webm"], key="voice-profile-files")
    sources = ([("recording.wav", recorded.getvalue())] if recorded is not None else []) + \
              [(f.name, f.getvalue()) for f in uploaded or []]
    if not sources:
        return
    if st.button("Build my voice profile", type="primary"):
        with st.status("Listening to your voice…") as status:
            try:
                profile = build_profile(model, [data for _, data in sources])
            except SerError as error:
                status.update(label="No profile was built", state="error")
                st.error(f"{error} {without_change_note()}")
                return
            status.update(label="Voice profile ready", state="complete")
        st.session_state[PROFILE_KEY] = profile.to_json()
        choose(USE_PROFILE_KEY, True)  # a new profile is there to be used
        st.rerun()


def load_view(model: SerModel) -> None:
    """A saved profile loaded, if it is one and fits the served model (else the reason, and nothing changes)."""
    saved = st.file_uploader("Load a saved profile (JSON)", type=["json"], key="voice-profile-json")
    if saved is not None:
        try:
            profile = VoiceProfile.from_json(saved.getvalue())
        except SerError as error:
            st.error(f"{error} {without_change_note()}")
            return
        if not profile.fits(model):
            st.error("This profile was made with another model, so the model picked now cannot read your voice "
                     f"against it: pick that model in the sidebar, or build the profile again here. {without_change_note()}")
            return
        if st.button("Use this profile"):
            st.session_state[PROFILE_KEY] = profile.to_json()
            choose(USE_PROFILE_KEY, True)  # a new profile is there to be used
            st.rerun()


def profile_view(model: SerModel) -> None:
    """The current profile: what it captured, whether it fits the served model, download, forget."""
    profile = VoiceProfile.from_json(st.session_state[PROFILE_KEY])
    if profile.fits(model):
        st.success("Your voice profile is on: Record, Live, Upload and Home read your voice against it. On those "
                   "pages, the sidebar switch \"Use my voice profile\" turns it off to compare.")
    else:  # made before another model was picked in the sidebar
        st.warning("This profile was made with another model: with the model picked now, predictions are not "
                   "adapted. Pick that model again, or build the profile again with this one.")
    for note in profile.notes:  # each is a reason to record again
        st.warning(note)
    st.table(profile_summary(profile))
    download, forget = st.columns(2)
    download.download_button("Download my profile (JSON)", profile.to_json(), file_name="voice-profile.json",
                             mime="application/json")
    if forget.button("Forget my profile"):
        del st.session_state[PROFILE_KEY]
        st.rerun()
