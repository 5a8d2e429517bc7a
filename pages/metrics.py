"""Metrics: a trained model's test results, read from its models/<name>/ directory, beside the original
project's published numbers, each with the protocol that produced it."""

import streamlit as st

from ser_core.serving.inference import METRICS_FILE
from ser_core.ui import common, metrics

st.title("Metrics")

directory = common.choose_model_directory(METRICS_FILE, key="metrics-model")
if directory is not None:
    metrics.metrics_view(directory)

metrics.benchmark_view()
