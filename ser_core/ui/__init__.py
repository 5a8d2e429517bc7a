"""The Streamlit side of ser, one module per page's view plus what they share:

common (model picker, served model, cached analyses, model directories, formatting), analysis (one
recording: Record, Upload and Home's quick try), home, upload, live, metrics, model_card, and the
plotly figures they draw (plots).

Pages stay thin: they pick an input and call these. Everything the views show is computed by
`ser_core.serving` (`inference`, `results`, `segments`, `live`); the only part of ser_core that imports
Streamlit or plotly. Imports serving, frontend, io and training's corpus names, never the CLI.
"""

# Before anything can import TensorFlow: aiortc's pylibsrtp crashes the process (segfault) when it is
# imported after TensorFlow, which the Keras backend of a model without model.tflite loads.
import streamlit_webrtc  # noqa: F401
