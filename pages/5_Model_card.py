"""Model card: what a model is and how it was made — architecture, features, protocol, data, training,
library versions — from its metadata.json."""

import streamlit as st

from ser_core import ui
from ser_core.inference import METADATA_FILE

st.set_page_config(page_title="Model card · ser", page_icon="🎙️", layout="wide")
st.title("Model card")

directory = ui.choose_model_directory(METADATA_FILE, key="card-model")
if directory is not None:
    ui.model_card_view(directory)
