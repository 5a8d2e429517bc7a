"""Home: what ser does, which model is serving and how well it does on held-out test data, and a
quick try with one file, read among the emotions kept in the sidebar."""

import streamlit as st

from ser_core.ui import analysis, common, home

st.title("Speech emotion recognition")
st.markdown(
    "**ser** listens to a voice and estimates which of eight emotions it expresses — neutral, calm, "
    "happy, sad, angry, fearful, disgust, surprised — from the tone of the voice, not the words. "
    "Record yourself, stream your microphone live, or upload files; every result shows the full "
    "probability distribution, the input's quality and, for longer audio, what was said how: each "
    "stretch of speech with its own emotion, pauses left out."
)
st.caption(
    "The models learned emotions from acted speech (which corpora and languages: below, and on the Model "
    "card): read the numbers below as what the model does on voices it has not heard, and expect less on "
    "everyday speech."
)

model = common.served_model()
if model is not None:
    profile = common.voice_profile()
    classes = common.emotion_choice(model.labels)
    home.home_model_summary(model)

    st.subheader("Quick try")
    upload = st.file_uploader("One audio file", type=common.UPLOAD_TYPES, key="quick-try")
    if upload is not None:
        analysis.analysis_view(model, upload.name, upload.getvalue(), key="quick-try", profile=profile, classes=classes)
