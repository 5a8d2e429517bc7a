"""Live: stream the microphone over WebRTC; the latest window is classified twice a second, and
pauses are marked as pauses.

Frames go to `ser_core.serving.live.LiveClassifier` on the WebRTC thread; this page only draws its state,
refreshing every half second while the stream plays.
"""

import streamlit as st

from ser_core.ui import common, live

st.title("Live")

model = common.served_model()
if model is not None:
    st.markdown(f"Press **START**, allow the microphone and talk. The bars follow the speech in the last "
                f"{model.params.window_s:g} seconds; pauses are shown as pauses. The chart keeps the last "
                f"{live.LIVE_TIMELINE_S:g} seconds.")
    classifier = live.live_classifier(model, common.voice_profile())
    classes = common.emotion_choice(model.labels)
    stream = live.live_microphone(classifier)
    if not stream.state.playing:
        classifier.stop()

    # Redraw only this part, twice a second, while audio flows; the rest of the page stays put.
    st.fragment(run_every=0.5 if stream.state.playing else None)(live.show_live)(classifier, classes)
    st.caption("The microphone needs HTTPS unless the app runs on localhost.")
