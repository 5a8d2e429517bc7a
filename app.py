"""ser's Streamlit app: the pages, their titles, icons and URLs, through st.navigation. Each page's
script is in pages/, and its view in ser_core/ui/."""

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="ser · speech emotion recognition", page_icon="🎙️", layout="wide")
# Streamlit cuts a chosen file's name to 20 characters, keeping its ends: RAVDESS names all became
# "03-01-...-01-23.flac". The full name is in the chip's title; show that instead.
st.html("""<style>
[data-testid="stFileChipName"] { font-size: 0; }
[data-testid="stFileChipName"]::after { content: attr(title); font-size: 0.875rem; }
/* While it records, Streamlit's recorder redraws its live waveform every 10 ms (wavesurfer's record
   plugin): 3 s of recording cost Chromium 1.5 s of CPU, 0.6 s with the waveform hidden (one session,
   server and browser on a core each); under bench/load_test.py that was 40% of the browser's work.
   The timer still runs, and the recording's own waveform is drawn once it stops. */
[data-testid="stAudioInput"]:has([aria-label="Stop recording"]) [data-testid="stAudioInputWaveSurfer"] { display: none; }
[data-testid="stAudioInput"]:has([aria-label="Stop recording"]) div:has(> [data-testid="stAudioInputWaveSurfer"])::before {
  content: "Recording… press stop when you have finished"; font-size: 0.875rem; margin: auto 0.5rem;
}
/* A rerun dims what it has not redrawn yet: Streamlit fades it over 1 s once the run has taken 0.5 s,
   and the fade redraws the page 60 times a second. Under load every run passes 0.5 s in the browser,
   twice per upload: dimmed at 0.5 s in one step instead (bench/load_test.py, K = 8, 120 s: 0.73 s of
   Chromium CPU per action against 0.89 with the fade). */
[data-testid="stElementContainer"][data-stale="true"] { transition: opacity 0s 0.5s !important; }
</style>""")

pages = [
    st.Page(PAGES / "home.py", title="Home", icon=":material/home:", default=True),
    st.Page(PAGES / "record.py", title="Record", icon=":material/mic:", url_path="Record"),
    st.Page(PAGES / "live.py", title="Live", icon=":material/graphic_eq:", url_path="Live"),
    st.Page(PAGES / "upload.py", title="Upload", icon=":material/upload_file:", url_path="Upload"),
]
if (PAGES / "my_voice.py").is_file():  # the voice profile, where this version has it
    pages.append(st.Page(PAGES / "my_voice.py", title="My voice", icon=":material/person:", url_path="My_voice"))
pages += [
    st.Page(PAGES / "metrics.py", title="Metrics", icon=":material/bar_chart:", url_path="Metrics"),
    st.Page(PAGES / "model_card.py", title="Model card", icon=":material/description:", url_path="Model_card"),
]
st.navigation(pages).run()
