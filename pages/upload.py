"""Upload: analyse one or more audio files (wav, flac, ogg, opus, mp3, m4a, webm), kept in memory only;
a summary table when several, the files read together on request, and the results as CSV or JSON."""

import streamlit as st

from ser_core.ui import common, upload

st.title("Upload")
st.markdown("Files are analysed in memory and never stored. Long recordings are analysed by utterance: "
            "each stretch of speech gets its own emotion, on a timeline over the waveform.")

model = common.served_model()
if model is not None:
    profile = common.voice_profile()
    speakers = common.speaker_options()
    classes = common.emotion_choice(model.labels)
    files = st.file_uploader("Audio files", type=common.UPLOAD_TYPES, accept_multiple_files=True, key="uploads")
    if files:
        together = common.read_together_switch(len(files), profile, speakers)
        upload.uploads_view(model, files, profile, speakers, together, classes)
