"""Home: what ser does, which model is serving and how well it does on held-out test data, and a
quick try with one file. The other pages are discovered from pages/."""

import streamlit as st

from ser_core import ui

st.set_page_config(page_title="ser · speech emotion recognition", page_icon="🎙️", layout="wide")

st.title("Speech emotion recognition")
st.markdown(
    "**ser** listens to a voice and estimates which of eight emotions it expresses — neutral, calm, "
    "happy, sad, angry, fearful, disgust, surprised — from the tone of the voice, not the words. "
    "Record yourself, stream your microphone live, or upload files; every result shows the full "
    "probability distribution, the input's quality and, for longer audio, how the emotion changes over time."
)
st.caption(
    "The model learned from acted speech (RAVDESS, SAVEE, CREMA-D, TESS): read the numbers below as "
    "what it does on voices it has not heard, and expect less on everyday speech."
)

model = ui.served_model()
if model is not None:
    ui.home_model_summary(model)

    st.subheader("Quick try")
    upload = st.file_uploader("One audio file", type=ui.UPLOAD_TYPES, key="quick-try")
    if upload is not None:
        ui.analysis_view(upload.name, upload.getvalue(), key="quick-try")
