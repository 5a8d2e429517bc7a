"""Metrics: a trained model's test results, read from its models/<name>/ directory, beside the original
project's published numbers, each with the protocol that produced it."""

import streamlit as st

from ser_core import ui
from ser_core.inference import METRICS_FILE

st.set_page_config(page_title="Metrics · ser", page_icon="🎙️", layout="wide")
st.title("Metrics")

directory = ui.choose_model_directory(METRICS_FILE, key="metrics-model")
if directory is not None:
    ui.metrics_view(directory)

ui.benchmark_view()
