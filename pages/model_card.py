"""Model card: what a model is and how it was made — architecture, features, protocol, data, training,
library versions — from its metadata.json."""

import streamlit as st

from ser_core.serving.inference import METADATA_FILE
from ser_core.ui import common, model_card

st.title("Model card")

directory = common.choose_model_directory(METADATA_FILE, key="card-model")
if directory is not None:
    model_card.model_card_view(directory)
