"""Upload: analyse one or more audio files (wav, flac, ogg, opus, mp3, m4a, webm), kept in memory only;
a summary table when several, and the results as CSV or JSON."""

import streamlit as st

from ser_core import ui

st.set_page_config(page_title="Upload · ser", page_icon="🎙️", layout="wide")
st.title("Upload")
st.markdown("Files are analysed in memory and never stored. Long recordings get an emotion timeline.")

model = ui.served_model()
if model is not None:
    files = st.file_uploader("Audio files", type=ui.UPLOAD_TYPES, accept_multiple_files=True, key="uploads")
    if files:
        ui.uploads_view(files, model.labels)
