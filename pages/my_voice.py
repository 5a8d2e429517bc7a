"""My voice: record or upload 10-30 s of everyday speech to build a voice profile; every prediction of
the session is then read relative to that voice. The profile lives in this browser session only."""

import streamlit as st

from ser_core.ui import common, my_voice

st.title("My voice")
st.markdown(
    "Voices differ more than emotions do: one person's calm is another's excitement. Record or upload "
    f"**{my_voice.ADVICE} of yourself speaking in your everyday tone** — read a paragraph aloud, describe your "
    "day — and every prediction in this session (Record, Live, Upload) is read relative to your voice. "
    "Speak as you usually do: a profile recorded while angry would teach the model that angry is your "
    "normal, and take that emotion away."
)
st.caption("The profile is a short list of numbers describing your voice (no audio). It stays in this "
           "browser session; download it to use it again later. Nothing is stored on the server.")

model = common.served_model()
if model is not None:
    if common.PROFILE_KEY in st.session_state:
        my_voice.profile_view(model)
        st.divider()
        st.markdown("**Record again** to replace it:")
    my_voice.build_view(model)
    st.divider()
    my_voice.load_view(model)
