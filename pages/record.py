"""Record: speak into the browser's microphone with st.audio_input and see the analysis of the recording."""

import streamlit as st

from ser_core.ui import analysis, common

st.title("Record")
st.markdown("Press the microphone, say a sentence with some feeling in it, press stop. "
            "Three seconds or more gives the model a full window.")

model = common.served_model()
if model is not None:
    profile = common.voice_profile()
    classes = common.emotion_choice(model.labels)
    recording = st.audio_input("Record your voice", sample_rate=model.params.sample_rate, key="recording")
    if recording is not None:
        # The recorder plays its recording back itself: a second player under it would be the same audio.
        analysis.analysis_view(model, "recording.wav", recording.getvalue(), key="record", profile=profile,
                               player=False, classes=classes)
