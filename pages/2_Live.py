"""Live: stream the microphone over WebRTC; the latest 2.5 s are classified twice a second.

Frames go to `ser_core.live.LiveClassifier` on the WebRTC thread; this page only draws its state,
refreshing every half second while the stream plays.
"""

import streamlit as st

from ser_core import ui

st.set_page_config(page_title="Live · ser", page_icon="🎙️", layout="wide")
st.title("Live")

model = ui.served_model()
if model is not None:
    st.markdown(f"Press **START**, allow the microphone and talk. The bars follow the last "
                f"{model.params.window_s:g} seconds of your voice; the chart keeps the last "
                f"{ui.LIVE_TIMELINE_S:g} seconds.")
    classifier = ui.live_classifier(model)
    stream = ui.live_microphone(classifier)
    if not stream.state.playing:
        classifier.stop()

    # Redraw only this part, twice a second, while audio flows; the rest of the page stays put.
    st.fragment(run_every=0.5 if stream.state.playing else None)(ui.show_live)(classifier)
    st.caption("The microphone needs HTTPS unless the app runs on localhost.")
