"""The Streamlit app through AppTest (in-process, no browser): the navigation names every page, every
page runs, the sidebar's model picker serves the chosen model, uploads and recordings reach the
analysis view with its speech segments, and bad input becomes an st.error the user can recover from.
A real browser drives the same pages in test_browser.py."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import numpy as np

from conftest import missing, speech, wav_bytes
from ser_core.serving.inference import load_model
from ser_core.serving.results import arousal_word, judged, speaker_summaries
from ser_core.ui import common, upload
from ser_core.training.corpora import LANGUAGE_NAMES
from ser_core.ui.metrics import LOLO_FILE, LOLO_READINGS

APP = "../app.py"
PAGES = ["pages/home.py", "pages/record.py", "pages/live.py", "pages/upload.py", "pages/my_voice.py",
         "pages/metrics.py", "pages/model_card.py"]
NAVIGATION = [("Home", ":material/home:", ""), ("Record", ":material/mic:", "Record"),
              ("Live", ":material/graphic_eq:", "Live"), ("Upload", ":material/upload_file:", "Upload"),
              ("My voice", ":material/person:", "My_voice"),
              ("Metrics", ":material/bar_chart:", "Metrics"), ("Model card", ":material/description:", "Model_card")]
TIMEOUT_S = 90  # the first run of a session loads the model


@pytest.fixture
def served(trained_model, monkeypatch):
    """Serve the tiny trained model, and let the model pages find it beside nothing else."""
    monkeypatch.setenv("SER_MODEL", str(trained_model))
    monkeypatch.setenv("SER_MODELS_DIR", str(trained_model.parent))
    # AppTest runs without a server: streamlit-webrtc treats the server session as optional, but
    # looks it up through an attribute AppTest's stand-in runtime lacks.
    monkeypatch.setattr("streamlit_webrtc.component.get_this_session_info", lambda: None)
    monkeypatch.setattr("streamlit_webrtc.shutdown.get_this_session_info", lambda: None)
    return trained_model


def run(page: str = "pages/home.py") -> AppTest:
    """The app as `streamlit run app.py` serves it, on `page`."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    return at if page == "pages/home.py" else at.switch_page(page).run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def players(at: AppTest) -> int:
    return len(at.get("audio"))


def shown_values(dataframe) -> "pd.DataFrame":
    """A styled st.dataframe's cells as the page shows them (the Styler's display values)."""
    import pyarrow as pa

    return pa.ipc.open_stream(dataframe.proto.arrow_data.styler.display_values).read_all().to_pandas()


def streamlit_placeholder_colours() -> set[str]:
    """The colours Streamlit's plotly theme rewrites to its own in every figure it shows."""
    from streamlit.elements.lib import streamlit_plotly_theme as theme

    return {value.lower() for value in vars(theme).values() if isinstance(value, str) and value.startswith("#0000")}


def assert_colour_scales_drawn_as_given(at: AppTest) -> None:
    """A colour scale's stop that Streamlit takes for one of its theme's placeholders is drawn in another
    colour (Magma's #000004 became pink). Plotly express's own trace colours are meant to be themed."""
    placeholders = streamlit_placeholder_colours()
    assert "#000004" in placeholders  # Magma's darkest colour: the one that turned silence pink
    scales = [trace["colorscale"] for chart in charts(at) for trace in chart["data"] if "colorscale" in trace]
    assert scales
    assert not [stop for scale in scales for _, stop in scale if stop.lower() in placeholders]


def bar_charts(at: AppTest) -> list[list[tuple[str, float, str]]]:
    """Each HTML bar chart on the page: (emotion, probability, bar colour) per bar, top to bottom."""
    found = []
    for element in at.get("html"):
        rows = re.findall(r'class="ser-bar" data-emotion="([^"]+)" data-probability="([0-9.]+)".*?background:(#[0-9a-f]{6})',
                          element.proto.body)
        if rows:
            found.append([(label, float(p), colour) for label, p, colour in rows])
    return found


def assert_emotion_bars(at: AppTest, labels) -> None:
    """The first bar chart: every emotion once, most likely on top, in its own colour."""
    from ser_core.ui.plots import color

    bars = bar_charts(at)[0]
    assert sorted(label for label, _, _ in bars) == sorted(labels)
    assert [p for _, p, _ in bars] == sorted((p for _, p, _ in bars), reverse=True)
    assert sum(p for _, p, _ in bars) == pytest.approx(1.0, abs=1e-4)
    assert all(colour == color(label) for label, _, colour in bars)


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_cleanly(served, page):
    at = run(page)
    assert_clean(at)
    assert at.title


def test_navigation_titles_icons_and_urls(served, monkeypatch):
    import streamlit as st

    seen = []
    navigation = st.navigation

    def recording(pages, **kwargs):
        seen.extend(pages)
        return navigation(pages, **kwargs)

    monkeypatch.setattr(st, "navigation", recording)
    at = run()
    assert_clean(at)
    assert [(p.title, p.icon, p.url_path) for p in seen] == NAVIGATION
    assert seen[0]._default and at.title[0].value == "Speech emotion recognition"


def test_home_names_the_model_and_its_test_numbers(served):
    at = run()
    assert_clean(at)
    assert [m.label for m in at.metric] == ["Accuracy", "Balanced accuracy (UAR)", "Macro-F1"]
    metrics = json.loads((served / "metrics.json").read_text())
    assert at.metric[0].value == f"{metrics['accuracy']:.1%}"
    assert any(metrics["protocol"] in caption.value for caption in at.caption)


def test_home_quick_try(served):
    at = run()
    at.file_uploader[0].set_value(("hello.wav", wav_bytes(speech(2.0)), "audio/wav")).run()
    assert_clean(at)
    assert_emotion_bars(at, load_model(served).labels)


def talk(*parts) -> np.ndarray:
    """Speech (seconds, seed) and pauses (seconds of room noise) in turn, starting with a pause."""
    pieces, rng = [], np.random.default_rng(0)
    for i, part in enumerate(parts):
        if i % 2 == 0:
            pieces.append((rng.standard_normal(int(part * 16000)) * 3e-4).astype(np.float32))
        else:
            pieces.append(speech(part[0], seed=part[1]))
    return np.concatenate(pieces)


def test_upload_shows_the_analysis_by_utterance(served):
    at = run("pages/upload.py")
    at.file_uploader[0].set_value(("talk.wav", wav_bytes(talk(1.0, (4.0, 4), 2.0, (2.0, 5), 1.0)), "audio/wav")).run()
    assert_clean(at)
    labels = load_model(served).labels
    assert_emotion_bars(at, labels)
    # Nothing for plotly by default: the segment timeline is HTML/SVG; the signal and the window timeline on request.
    assert not charts(at)
    # How aroused the voice sounds, on its low-to-high track under the bars, in words above it.
    [gauge] = [e.proto.body for e in at.get("html") if 'class="ser-arousal"' in e.proto.body]
    level = float(re.search(r'data-arousal="([0-9.]+)"', gauge)[1])
    assert any(m.value.startswith(f"**Arousal: {arousal_word(level)}**") for m in at.markdown)
    [timeline] = [e.proto.body for e in at.get("html") if 'class="ser-timeline"' in e.proto.body]
    widths = sorted(float(w) for w in re.findall(r'class="ser-span"[^>]*width:([0-9.]+)%', timeline))
    duration_s = 10.0
    assert [duration_s * w / 100 for w in widths] == pytest.approx([2.0, 4.0], abs=0.4)  # two segments
    at.toggle(key="upload-0-signal").set_value(True).run()
    at.toggle(key="upload-0-windows").set_value(True).run()
    assert_clean(at)
    kinds = [chart["data"][0]["type"] for chart in charts(at)]
    # waveform, mel spectrogram, features, window timeline
    assert kinds == ["scatter", "heatmap", "heatmap", "scatter"]
    shares = dict((label, p) for label, p, _ in bar_charts(at)[1])  # share of speaking time
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-4) and set(shares) >= set(labels)
    assert "Input quality" in [s.value for s in at.subheader]
    assert any("| Speech found | 2 segment(s)" in m.value for m in at.markdown)
    # The mel spectrogram's scale runs from black (-80 dB: the pauses) to bright (the loudest bin).
    mel = charts(at)[1]["data"][0]
    assert (mel["zmin"], mel["zmax"]) == (-80, 0) and mel["colorscale"][0][1] == "#000000"
    assert_colour_scales_drawn_as_given(at)
    # results CSV, results JSON, segments CSV, window timeline CSV
    assert [b.proto.label for b in at.get("download_button")] == [
        "Download results (CSV)", "Download results (JSON, with timelines)", "Download the segments (CSV)",
        "Download the timeline (CSV)"]


def test_upload_takes_the_number_of_speakers_from_the_sidebar(served):
    """Found by clustering unless the user says how many people speak; the analysis then names that many."""
    at = run("pages/upload.py")
    count = at.selectbox(key=common.SPEAKER_COUNT_KEY)
    assert count.value is None and count.options[:3] == ["Find them", "1", "2"]
    count.set_value(2).run()
    # Two synthetic voices, each speaking without a pause between words: the speaker model tells them
    # apart over a whole utterance, not word by word (their words are cut apart at turn pauses).
    room = lambda seconds: (np.random.default_rng(0).standard_normal(int(seconds * 16000)) * 3e-4).astype(np.float32)  # noqa: E731
    two_voices = np.concatenate([room(1.0), speech(4.0, seed=4, pause_chance=0), room(2.0),
                                 speech(2.0, seed=5, pause_chance=0), room(1.0)])
    at.file_uploader[0].set_value(("talk.wav", wav_bytes(two_voices), "audio/wav")).run()
    assert_clean(at)
    [(key, analysis)] = at.session_state[common.ANALYSES_KEY].items()
    assert key[3].count == 2 and [s.speaker for s in analysis.segments] == ["S1", "S2"]
    # Two voices: the page says where to say how many there are, should one voice have been heard as two
    assert any('"Speakers in each recording"' in caption.value for caption in at.caption)
    at.selectbox(key=common.SPEAKER_COUNT_KEY).set_value(1).run()
    assert_clean(at)
    one = [a for k, a in at.session_state[common.ANALYSES_KEY].items() if k[3].count == 1]
    assert [s.speaker for s in one[0].segments] == ["S1", "S1"]


def test_upload_reads_the_whole_recording_against_itself_on_request(served):
    """The sidebar's reading: as heard by default; "the whole recording" reads every utterance against the
    mean of the recording's speech once it holds enough (`RECORDING_MIN_SPEECH_S`), and says so."""
    from ser_core.serving.segments import RECORDING_MIN_SPEECH_S

    at = run("pages/upload.py")
    reading = at.sidebar.radio(key=common.ADAPTATION_KEY)
    assert reading.value == "none" and reading.options == list(common.ADAPTATIONS.values())
    recording = wav_bytes(talk(1.0, (4.0, 4), 1.0, (3.0, 5), 1.0, (4.0, 6), 1.0))  # 11 s of speech
    at.file_uploader[0].set_value(("talk.wav", recording, "audio/wav")).run()
    assert_clean(at)
    plain = bar_charts(at)[0]
    assert not at.info
    at.sidebar.radio(key=common.ADAPTATION_KEY).set_value("recording").run()
    assert_clean(at)
    [note] = [i.value for i in at.info]
    heard = re.fullmatch(r"Read against this recording's own speech \((\d+) s, every voice in it; no labels used\)\.", note)
    assert heard and 11 <= int(heard[1]) <= 13 and int(heard[1]) >= RECORDING_MIN_SPEECH_S  # the padded utterances
    assert bar_charts(at)[0] != plain
    assert {k[3].recording for k in at.session_state[common.ANALYSES_KEY]} == {False, True}


def test_the_sidebar_settings_hold_on_every_page(served):
    """What the user sets in the sidebar stays set when they leave a page and come back, directly or
    through a page without the setting: the speakers, the reading, the emotions, the voice profile's
    switch, and reading several files together."""
    from ser_core.serving.profile import build_profile

    at = run("pages/upload.py")
    at.session_state[common.PROFILE_KEY] = build_profile(load_model(served), [wav_bytes(speech(12.0))]).to_json()
    at.run()
    at.selectbox(key=common.SPEAKER_COUNT_KEY).set_value(2).run()
    at.sidebar.radio(key=common.ADAPTATION_KEY).set_value("speaker").run()
    at.multiselect(key=common.CLASSES_KEY).set_value(["angry", "happy", "sad"]).run()
    at.sidebar.toggle(key=common.USE_PROFILE_KEY).set_value(False).run()
    for away in ("pages/metrics.py", "pages/record.py", "pages/home.py"):
        at.switch_page(away).run()
        assert_clean(at)
        if away != "pages/metrics.py":  # drawn on every page that serves a model
            assert at.multiselect(key=common.CLASSES_KEY).value == ["angry", "happy", "sad"], away
            assert at.sidebar.toggle(key=common.USE_PROFILE_KEY).value is False, away
        at.switch_page("pages/upload.py").run()
        assert_clean(at)
        assert at.selectbox(key=common.SPEAKER_COUNT_KEY).value == 2, away
        assert at.sidebar.radio(key=common.ADAPTATION_KEY).value == "speaker", away
        assert at.multiselect(key=common.CLASSES_KEY).value == ["angry", "happy", "sad"], away
        assert at.sidebar.toggle(key=common.USE_PROFILE_KEY).value is False, away
    # The switch to read files together: the files are gone with the page, the choice is not.
    del at.session_state[common.PROFILE_KEY]  # a profile in use holds the switch off
    at.sidebar.radio(key=common.ADAPTATION_KEY).set_value("none").run()
    files = [("one.wav", wav_bytes(speech(3.0, f0=120)), "audio/wav"),
             ("two.wav", wav_bytes(speech(3.0, f0=220, seed=2)), "audio/wav")]
    at.file_uploader[0].set_value(files).run()
    at.toggle(key=common.TOGETHER_KEY).set_value(True).run()
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/upload.py").run()
    at.file_uploader[0].set_value(files).run()
    assert_clean(at)
    assert at.toggle(key=common.TOGETHER_KEY).value is True
    assert any("read together" in i.value for i in at.info)


def test_a_rerun_never_analyses_again_what_the_page_shows(served, monkeypatch):
    """More files than the session's usual cache (`KEPT_ANALYSES`): each is analysed once, and a click
    that reruns the page only redraws them."""
    from ser_core.serving.inference import SerModel

    analysed = []
    analyze = SerModel.analyze

    def counted(self, audio, *args, **kwargs):
        analysed.append(hashlib.sha256(audio).hexdigest())
        return analyze(self, audio, *args, **kwargs)

    monkeypatch.setattr(SerModel, "analyze", counted)
    files = [(f"clip{i}.wav", wav_bytes(speech(1.0, f0=100 + 10 * i, seed=i)), "audio/wav")
             for i in range(common.KEPT_ANALYSES + 2)]
    at = run("pages/upload.py")
    at.file_uploader[0].set_value(files).run()
    assert not at.exception
    assert len(at.expander) == len(files) and len(analysed) == len(set(analysed)) == len(files)
    at.run()
    at.toggle(key="upload-0-signal").set_value(True).run()
    assert not at.exception
    assert len(analysed) == len(files)  # redrawn, not analysed again
    at.multiselect(key=common.CLASSES_KEY).set_value(["angry", "happy", "sad"]).run()
    at.multiselect(key=common.CLASSES_KEY).set_value(["angry", "happy", "sad", "neutral"]).run()
    assert len(analysed) == len(files)  # read again among other emotions, not analysed again


def test_upload_says_why_a_reading_asked_for_was_not_made(served, monkeypatch):
    """Where each speaker was to be read against their own voice and none spoke long enough, the
    analysis says so (`Analysis.adaptation`): the file's view shows it as a warning, in its expander."""
    import dataclasses

    from ser_core.serving.inference import SerModel

    note = "Not adapted: no speaker spoke for 20 s, which each speaker's own voice needs."
    analyze = SerModel.analyze

    def refused(self, audio, *args, speakers=None, **kwargs):
        analysis = analyze(self, audio, *args, speakers=speakers, **kwargs)
        return dataclasses.replace(analysis, adaptation=note) if speakers is not None and speakers.adapt else analysis

    monkeypatch.setattr(SerModel, "analyze", refused)
    at = run("pages/upload.py")
    at.sidebar.radio(key=common.ADAPTATION_KEY).set_value("speaker").run()
    at.file_uploader[0].set_value([("talk.wav", wav_bytes(talk(1.0, (4.0, 4), 2.0, (2.0, 5), 1.0)), "audio/wav"),
                                   ("one.wav", wav_bytes(speech(3.0, f0=200)), "audio/wav")]).run()
    assert_clean(at)
    assert [w.value for w in at.warning if w.value == note] == [note, note]  # each file's view
    assert not any(i.value == note for i in at.info)


def test_several_uploads_answer_a_conversation_per_speaker(served):
    """Two voices in one of several files: the summary table, the CSV and the file's expander name each
    speaker's reading (as `ser predict` prints it), not only the mean over everyone."""
    at = run("pages/upload.py")
    at.selectbox(key=common.SPEAKER_COUNT_KEY).set_value(2).run()
    conversation = wav_bytes(talk(1.0, (4.0, 4), 2.0, (2.0, 5), 1.0))
    at.file_uploader[0].set_value([("talk.wav", conversation, "audio/wav"),
                                   ("other.wav", wav_bytes(talk(1.0, (3.0, 6), 1.0)), "audio/wav")]).run()
    assert_clean(at)
    analysis = at.session_state[common.ANALYSES_KEY][next(k for k in at.session_state[common.ANALYSES_KEY]
                                                          if k[0] == hashlib.sha256(conversation).hexdigest())]
    first, second = analysis.voices
    said = upload.each_speaker(analysis)
    assert said == (f"S1 ({first.share:.0%}): {common.headline(first.emotion, first.confidence, first.uncertain)}; "
                    f"S2 ({second.share:.0%}): {common.headline(second.emotion, second.confidence, second.uncertain)}")
    assert list(at.dataframe[0].value["each_speaker"]) == [said, ""]  # the other file: one voice
    assert at.expander[0].label == f"talk.wav — {said}"


def test_music_or_noise_alone_says_no_speech(served):
    at = run("pages/upload.py")
    tone = (0.2 * np.sin(2 * np.pi * 330 * np.arange(5 * 16000) / 16000)).astype(np.float32)
    at.file_uploader[0].set_value(("tone.wav", wav_bytes(tone), "audio/wav")).run()
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("No speech found: voice activity detection")


def test_several_uploads_get_a_summary_and_a_bad_one_an_error(served):
    at = run("pages/upload.py")
    at.file_uploader[0].set_value([
        ("one.wav", wav_bytes(speech(2.0, f0=120)), "audio/wav"),
        ("broken.wav", b"RIFF\x00\x00\x00\x00WAVEjunk", "audio/wav"),
        ("two.flac", wav_bytes(speech(3.0, f0=220), fmt="FLAC"), "audio/flac"),
    ]).run()
    assert not at.exception
    assert len(at.error) == 1
    # Each file's expander says what it holds, as its view does, or why there is nothing.
    one, _, two = at.session_state[common.ANALYSES_KEY].values()  # the broken file's: its error
    assert [e.label for e in at.expander] == [
        f"one.wav — {common.headline(one.emotion, one.confidence, one.is_uncertain)}",
        "broken.wav — could not be analysed: this is not an audio file we can read, or it is corrupt",
        f"two.flac — {common.headline(two.emotion, two.confidence, two.is_uncertain)}"]
    # What was analysed, said in a line: no st.status, whose icon spins from the start of every run.
    assert not at.status and "Analysed 2 of 3 file(s)" in [caption.value for caption in at.caption]
    summary = at.dataframe[0].value
    assert list(summary["file"]) == ["one.wav", "broken.wav", "two.flac"]
    assert list(summary.columns[:3]) == ["file", "error", "emotion"]  # why a file failed, where it is seen
    assert summary["error"].tolist() == ["", at.error[0].value, ""]
    # Seconds with two decimals, counts whole, and the failed row empty but for its name and error.
    shown = shown_values(at.dataframe[0])
    assert shown.loc[2, "duration_s"] == "3.00" and shown.loc[0, "segments"] == "1"
    assert summary.loc[1].drop(["file", "error"]).isna().all() and at.dataframe[0].proto.placeholder == ""
    assert players(at) == 2  # none for the file that is not audio: it would be an empty player


def test_uploads_can_be_read_together(served):
    """Two files or more: a switch reads every file against the mean of all of them (`--adapt batch`);
    the files' analyses say so and change; one file has no switch."""
    at = run("pages/upload.py")
    at.file_uploader[0].set_value(("one.wav", wav_bytes(speech(3.0, f0=120)), "audio/wav")).run()
    assert common.TOGETHER_KEY not in [t.key for t in at.toggle]
    at.file_uploader[0].set_value([("one.wav", wav_bytes(speech(3.0, f0=120)), "audio/wav"),
                                   ("two.wav", wav_bytes(speech(3.0, f0=220, seed=2)), "audio/wav")]).run()
    assert_clean(at)
    alone = bar_charts(at)[0]
    assert not any(i.value.startswith("Adapted") for i in at.info)
    at.toggle(key=common.TOGETHER_KEY).set_value(True).run()
    assert_clean(at)
    assert any(i.value == "Adapted to the 2 files in which speech was found, read together (their mean; no labels used)."
               for i in at.info)
    assert bar_charts(at)[0] != alone
    assert at.session_state[common.BATCH_PROFILE_KEY][1].batch
    # Each recording read against itself (the sidebar) holds the switch: one reading or the other
    at.sidebar.radio(key=common.ADAPTATION_KEY).set_value("recording").run()
    assert_clean(at)
    assert at.toggle(key=common.TOGETHER_KEY).disabled
    assert not any("read together" in i.value for i in at.info)


def test_a_bad_file_is_an_error_and_the_next_file_works(served):
    at = run("pages/upload.py")
    at.file_uploader[0].set_value(("notes.wav", b"this is text, not audio", "audio/wav")).run()
    assert not at.exception
    assert len(at.error) == 1 and "not an audio file" in at.error[0].value
    at.file_uploader[0].set_value(("speech.wav", wav_bytes(speech(3.0)), "audio/wav")).run()
    assert_clean(at)
    assert_emotion_bars(at, load_model(served).labels)


def test_silence_says_no_speech(served):
    at = run("pages/upload.py")
    at.file_uploader[0].set_value(("silence.wav", wav_bytes(speech(2.0) * 0), "audio/wav")).run()
    assert not at.exception
    assert len(at.error) == 1 and "No speech found" in at.error[0].value
    assert players(at) == 1  # audio without speech: the user can hear that it is silent


def test_record_shows_the_analysis(served):
    at = run("pages/record.py")
    assert at.audio_input[0].sample_rate == 16000
    at.audio_input[0].set_value(("recording.wav", wav_bytes(speech(3.0)), "audio/wav")).run()
    assert_clean(at)
    assert_emotion_bars(at, load_model(served).labels)
    # One stretch of speech: no timeline, and nothing for the browser to load plotly for.
    assert not charts(at) and not at.get("table") and not at.dataframe
    assert players(at) == 0  # the recorder plays the recording itself


def test_the_place_in_line_is_drawn_again_only_when_it_changes(monkeypatch):
    """Each poll of a waiting job that would redraw the same notice sends nothing to the browser."""
    polls = iter([(2, 2.0), (2, 2.0), (2, 2.0), (1, 1.0), (1, 1.0), (0, 0.4), (0, 0.4)])

    class Job:
        def __init__(self):
            self.state = next(polls)
            self.future = self

        def result(self, timeout):
            try:
                self.state = next(polls)
            except StopIteration:
                return "done"
            raise TimeoutError

        def position(self):
            return self.state[0]

        def expected_wait_s(self):
            return self.state[1]

        def cancel(self):
            return False

    class Pool:
        def submit(self, work):
            return Job()

    shown = []
    monkeypatch.setattr(common, "app_pool", Pool)
    monkeypatch.setattr(common.st, "info", shown.append)
    assert common.wait_in_line(None, b"", lambda threads: None) == "done"
    assert shown == ["The server is busy: you are number 2 in line, about 2 s to go.",
                     "The server is busy: you are number 1 in line, about 1 s to go.",
                     "Analysing… about 0 s to go."]


def test_live_waits_for_the_microphone(served):
    at = run("pages/live.py")
    assert_clean(at)
    assert any("Press START" in info.value for info in at.info)


def test_metrics_page_shows_the_confusion_matrix_both_ways(served):
    at = run("pages/metrics.py")
    assert_clean(at)
    metrics = json.loads((served / "metrics.json").read_text())
    heatmaps = [c for c in charts(at) if c["data"][0]["type"] == "heatmap"]
    assert heatmaps[0]["data"][0]["text"][0][0].endswith("%")  # row-normalised first
    comparison = at.table[0].value
    assert comparison.loc["Accuracy"].tolist() == ["69.5%", f"{metrics['accuracy']:.1%}"]
    assert comparison.loc["Protocol", "This model"].startswith(metrics["protocol"])
    at.toggle[0].set_value(False).run()
    assert_clean(at)
    counts = [c for c in charts(at) if c["data"][0]["type"] == "heatmap"][0]["data"][0]["text"]
    assert [[int(v) for v in row] for row in counts] == metrics["confusion_matrix"]


def test_model_pages_without_any_model_say_so(trained_model, tmp_path, monkeypatch):
    monkeypatch.setenv("SER_MODEL", str(tmp_path / "missing"))
    monkeypatch.setenv("SER_MODELS_DIR", str(tmp_path))
    for page in ("pages/metrics.py", "pages/model_card.py"):
        at = run(page)
        assert_clean(at)
        assert "No model directory" in at.info[0].value
    at = run("pages/upload.py")
    assert not at.exception
    assert "No model can be served" in at.error[0].value


def test_results_export_is_csv_and_json(served):
    good = common.Result("a.wav", b"", load_model(served).analyze(wav_bytes(talk(0.5, (3.0, 4), 1.5, (2.0, 5)))),
                         None)
    bad = common.Result("b.wav", b"", None, "This is not an audio file we can read, or it is corrupt.")
    rows = upload.summary_rows([good, bad], good.analysis.labels)
    table = list(csv.DictReader(io.StringIO(upload.rows_csv(rows))))
    assert [row["file"] for row in table] == ["a.wav", "b.wav"]
    assert table[0]["emotion"] == good.analysis.emotion and table[1]["error"]
    assert table[0]["segments"] == "2" and 4.5 < float(table[0]["speech_s"]) < 6.0
    assert table[0]["each_speaker"] == "" and table[1]["each_speaker"] == ""  # one voice: the file's answer is theirs
    records = json.loads(json.dumps([upload.result_record(good), upload.result_record(bad)]))
    assert len(records[0]["windows"]) == len(good.analysis.window_times_s)
    assert [(s["emotion"], s["uncertain"]) for s in records[0]["segments"]] == [
        (s.emotion, s.uncertain) for s in good.analysis.segments]
    assert records[1] == {"file": "b.wav", "error": bad.error}


def test_benchmark_table_is_shown_from_its_results_file(tmp_path, shipped):
    row = {"n_test": 10, "accuracy": 0.5, "balanced_accuracy": 0.4, "macro_f1": 0.3, "parameters": 56040,
           "per_corpus": {"ravdess": {"accuracy": 0.5, "balanced_accuracy": 0.45, "n": 10}},
           "latency_ms_3s_clip": {"p50": 7.5, "p95": 9.0}}
    results = {"protocols": {"speaker": {"seed-cnn": row, "egemaps-svm": {**row, "parameters": None}}}}
    path = tmp_path / "compare_models.json"
    path.write_text(json.dumps(results))

    def page(path):
        from ser_core.ui import metrics

        metrics.benchmark_view(path)

    at = AppTest.from_function(page, args=(path,), default_timeout=TIMEOUT_S).run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert list(table["model"]) == ["seed-cnn", "egemaps-svm"]
    # A results file without the default (nor its voice-profile run) says so.
    assert f"The default, {common.model_name(shipped)}, is not in this benchmark's results" in at.caption[0].value
    assert list(table["UAR ravdess"]) == ["45.0%", "45.0%"] and list(table["p50 ms / 3 s clip"]) == ["7.5", "7.5"]


def test_the_side_by_side_table_says_which_clips_it_pools(shipped):
    """The committed benchmark pools the test clips of five corpora, some of which the CNNs never trained
    on: each row carries the model's own test number beside the pooled one, the caption says why they
    differ, and the default is there, from the voice-profile run that scored it on the same clips."""
    from ser_core.ui import metrics

    def page():
        from ser_core.ui import metrics

        metrics.benchmark_view()

    results = json.loads(metrics.BENCHMARK_FILE.read_text())
    at = AppTest.from_function(page, default_timeout=TIMEOUT_S).run()
    assert_clean(at)
    table = at.dataframe[0].value.set_index(["protocol", "model"])
    cnn = json.loads((shipped.parent / "emo-cnn-speaker" / "metrics.json").read_text())
    assert table.loc[("speaker", "emo-cnn"), "UAR"] == f"{results['protocols']['speaker']['emo-cnn']['balanced_accuracy']:.1%}"
    assert table.loc[("speaker", "emo-cnn"), "UAR on its own test clips"] == \
        f"{cnn['balanced_accuracy']:.1%} of {cnn['n_test']:,}"
    default = table.loc[("speaker", f"{common.model_name(shipped)} (default)")]
    unadapted = results["adapt"]["speaker"][common.model_name(shipped)]["all"]
    assert unadapted["n_scored"] == results["protocols"]["speaker"]["emo-cnn"]["n_test"]  # the same clips
    assert default["UAR"] == f"{unadapted['unadapted']:.1%}" and default["accuracy"] == "—"
    assert default["UAR ased"] == f"{unadapted['per_corpus']['ased']['unadapted']:.1%}"
    caption = at.caption[0].value
    assert "the same test clips of ASED, CREMA-D, RAVDESS, SAVEE and TESS" in caption
    assert f"{results['protocols']['speaker']['emo-cnn']['n_test']:,} of the speaker split" in caption
    assert "seed-cnn, emo-cnn and emo-tdnn never trained on ASED" in caption
    assert f"The default, {common.model_name(shipped)}, has no row of its own" in caption


def test_the_metrics_page_counts_the_test_clips_one_way(shipped):
    """The default's test split holds clips labelled with a set of emotions (BAVED's arousal levels):
    wherever the split's size is shown beside the number of clips the test numbers count, it says which
    clips those are; the per-corpus UAR over sets of emotions is a percentage like its neighbours."""
    metrics = json.loads((shipped / "metrics.json").read_text())
    metadata = json.loads((shipped / "metadata.json").read_text())
    test_clips = metadata["data"]["test"]["clips"]
    assert metrics["n_test"] < metrics["n_scored"] == test_clips
    counted = (f"test {test_clips:,} ({metrics['n_test']:,} with one emotion, as the test numbers count them; "
               f"{test_clips - metrics['n_test']:,} labelled with a set of emotions, from BAVED, ")
    at = run("pages/metrics.py")
    assert_clean(at)
    assert at.selectbox(key="metrics-model").value == shipped
    assert any(f"{metrics['n_test']:,} clips" in m.value for m in at.markdown)  # the headline
    assert counted in at.table[0].value.loc["Data", "This model"]
    [per_corpus] = [d for d in at.dataframe if "UAR with sets of emotions" in d.value.columns]
    shown = shown_values(per_corpus).set_index(per_corpus.value.index)
    assert shown.loc["baved", "UAR with sets of emotions"] == f"{metrics['per_corpus']['baved']['label_set_uar']:.1%}"
    assert "label_set_uar" not in per_corpus.value.columns
    at = run("pages/model_card.py")
    assert_clean(at)
    assert any(counted in m.value for m in at.markdown)
    assert any(c.value.startswith(f"Of the test clips: {metrics['n_test']:,} with one emotion") for c in at.caption)


@pytest.fixture
def two_models(trained_model, tmp_path, monkeypatch):
    """models/ with two directories and `default` pointing at the first, as the repository ships it."""
    import shutil

    root = tmp_path / "models"
    for name, protocol in (("tiny-b", "random"), ("tiny-a", "speaker")):
        shutil.copytree(trained_model, root / name)
        metadata = json.loads((root / name / "metadata.json").read_text())
        (root / name / "metadata.json").write_text(json.dumps({**metadata, "name": name, "protocol": protocol}))
    (root / "default").symlink_to("tiny-a")
    (root / "splits").mkdir()  # no metadata.json: not a model
    monkeypatch.setenv("SER_MODEL", str(root / "default"))
    monkeypatch.setenv("SER_MODELS_DIR", str(root))
    monkeypatch.setattr("streamlit_webrtc.component.get_this_session_info", lambda: None)
    monkeypatch.setattr("streamlit_webrtc.shutdown.get_this_session_info", lambda: None)
    return root


def analysed_by(at: AppTest) -> set[str]:
    """The model directories this session's analyses were made with."""
    return {Path(key[1]).name for key in at.session_state[common.ANALYSES_KEY]}


def test_the_model_picker_serves_the_chosen_model_on_every_page(two_models):
    """A model picked on one page is the one every page shows and serves, reached directly from a page
    with the picker (each page's picker is a new widget to Streamlit) or through Metrics and the Model
    card, which preselect it in their own pickers."""
    at = run()
    assert_clean(at)
    picker = at.sidebar.selectbox[0]
    assert picker.label == "Model"
    assert [picker.format_func(o) for o in picker.options] == ["tiny-a (default)", "tiny-b"]
    assert any("**tiny-a**" in m.value for m in at.markdown)
    # Each model in one line, in the help and under the picker for the one picked.
    described = "light (no speech encoder): the original project's CNN on 25 MFCC; 1 corpus; "
    assert at.sidebar.caption[0].value == described + "tested on speakers it never heard."
    assert f"- **tiny-b**: {described}random file split" in picker.help
    picker.select(picker.options[1]).run()
    assert_clean(at)
    assert any("**tiny-b**" in m.value for m in at.markdown)
    tiny_b = str((two_models / "tiny-b").resolve())

    def assert_serves_tiny_b(page):
        at.switch_page(page).run()
        assert_clean(at)
        assert at.sidebar.selectbox(key=common.PICKER_KEY).value == tiny_b, page
        assert "random file split" in at.sidebar.caption[0].value, page  # tiny-b's line, under the picker

    for page in ("pages/upload.py", "pages/record.py", "pages/live.py", "pages/my_voice.py", "pages/home.py"):
        assert_serves_tiny_b(page)
    assert any("**tiny-b**" in m.value for m in at.markdown)  # Home's summary of the model served
    assert_serves_tiny_b("pages/record.py")
    at.audio_input[0].set_value(("recording.wav", wav_bytes(speech(3.0, seed=3)), "audio/wav")).run()
    assert_clean(at)
    assert analysed_by(at) == {"tiny-b"}
    at.switch_page("pages/metrics.py").run()  # no sidebar picker here: its own, on the model served
    assert_clean(at)
    assert not at.sidebar.selectbox and at.selectbox(key="metrics-model").value == Path(tiny_b)
    at.switch_page("pages/model_card.py").run()
    assert at.selectbox(key="card-model").value == Path(tiny_b)
    at.switch_page("pages/upload.py").run()  # ... and the choice is still there
    assert at.sidebar.selectbox[0].value == tiny_b
    at.file_uploader[0].set_value(("talk.wav", wav_bytes(speech(3.0, seed=4)), "audio/wav")).run()
    assert_clean(at)
    assert analysed_by(at) == {"tiny-b"}
    # Picked back on another page, the default is served everywhere again.
    at.sidebar.selectbox[0].select(str((two_models / "tiny-a").resolve())).run()
    at.switch_page("pages/metrics.py").run()
    assert at.selectbox(key="metrics-model").value == (two_models / "tiny-a").resolve()


def test_metrics_preselect_the_default_where_the_served_model_has_no_test_results(two_models):
    (two_models / "tiny-b" / "metrics.json").unlink()  # trained, never tested: not on the Metrics page
    at = run()
    at.sidebar.selectbox[0].select(str((two_models / "tiny-b").resolve())).run()
    at.switch_page("pages/metrics.py").run()
    assert_clean(at)
    assert at.selectbox(key="metrics-model").value == (two_models / "tiny-a").resolve()
    at.switch_page("pages/model_card.py").run()  # it has a model card
    assert at.selectbox(key="card-model").value == (two_models / "tiny-b").resolve()


def test_default_as_a_pointer_file_is_followed(two_models):
    (two_models / "default").unlink()
    (two_models / "default").write_text("tiny-b\n")  # a checkout without symlinks
    assert common.follow_pointer(two_models / "default") == (two_models / "tiny-b").resolve()
    at = run()
    assert_clean(at)
    picker = at.sidebar.selectbox[0]
    assert picker.format_func(picker.value) == "tiny-b (default)"
    assert picker.options[0] == "tiny-b (default)"  # the default comes first
    assert any("**tiny-b**" in m.value for m in at.markdown)


def test_my_voice_builds_a_profile_that_every_prediction_then_uses(served):
    """Record/upload a voice → the profile's summary and download; Upload then says it adapted, and the
    sidebar switch compares with the unadapted prediction."""
    at = run("pages/my_voice.py")
    at.file_uploader[0].set_value(("me.wav", wav_bytes(speech(12.0)), "audio/wav")).run()
    at.button[0].click().run()
    assert_clean(at)
    summary = at.table[0].value
    assert "speech heard" in summary.index and "pitch range" in summary.index
    assert float(summary.loc["speech heard", "your voice"].split(" s")[0]) >= 10 and not at.warning  # as asked
    assert any("Download my profile" in str(b.proto) for b in at.get("download_button"))
    # The switch is not on this page: the page says where it is, by the name it has there.
    assert not at.sidebar.toggle
    on = at.success[0].value

    at.switch_page("pages/upload.py").run()
    assert f'"{at.sidebar.toggle[0].label}"' in on and "Upload" in on
    at.file_uploader[0].set_value(("talk.wav", wav_bytes(speech(3.0)), "audio/wav")).run()
    assert_clean(at)
    assert any(i.value.startswith("Adapted to your voice profile") for i in at.info)
    adapted = bar_charts(at)[0]
    at.sidebar.toggle[0].set_value(False).run()
    assert not any(i.value.startswith("Adapted") for i in at.info)
    assert bar_charts(at)[0] != adapted


def test_my_voice_refuses_a_broken_profile_file(served):
    at = run("pages/my_voice.py")
    at.file_uploader[1].set_value(("profile.json", b"{not json", "application/json")).run()
    assert not at.exception
    assert [e.value for e in at.error if "not a voice profile" in e.value][0].endswith(
        "Predictions go on without a voice profile.")


def test_my_voice_refuses_a_profile_made_with_another_model(served):
    """Loading one used to say "Your voice profile is on" and, under it, that it was not used."""
    import numpy as np

    from ser_core.serving.profile import VoiceProfile

    other = VoiceProfile(representation="another-model", mean=np.zeros(4, np.float32), windows=4, clips=1,
                         seconds=12.0, speech_seconds=11.0, level_dbfs=-20.0)
    at = run("pages/my_voice.py")
    at.file_uploader[1].set_value(("profile.json", other.to_json().encode(), "application/json")).run()
    assert not at.exception
    assert any("made with another model" in e.value for e in at.error)
    assert not any(b.label == "Use this profile" for b in at.button) and not at.success


def test_my_voice_warns_of_a_short_profile_and_keeps_it_through_a_bad_file(served):
    """9 s of speech makes a profile, with a warning that the page asked for 10-30 s; a broken profile
    file loaded afterwards is refused, and the profile in use stays in use (and the page says so)."""
    at = run("pages/my_voice.py")
    at.file_uploader[0].set_value(("me.wav", wav_bytes(speech(9.0)), "audio/wav")).run()
    at.button[0].click().run()
    assert_clean(at)
    heard = float(at.table[0].value.loc["speech heard", "your voice"].split(" s")[0])
    assert heard < 10
    assert [w.value for w in at.warning] == [
        f"Only {heard:.1f} s of speech was heard (in 9.0 s of audio); 10-30 s of everyday speech works best. This "
        "profile is used, but it describes the voice less surely: record again, speaking longer, to replace it."]
    assert any("10-30 seconds" in m.value for m in at.markdown)  # what the page asks for

    at.file_uploader[1].set_value(("profile.json", b"{not json", "application/json")).run()
    assert not at.exception
    refused = [e.value for e in at.error if "not a voice profile" in e.value]
    assert len(refused) == 1 and refused[0].endswith("Your current voice profile stays in use.")
    assert at.success and at.table[0].value.loc["speech heard", "your voice"].startswith(f"{heard:.1f} s")


def test_the_loco_chart_gives_a_mean_only_for_models_with_every_fold():
    from ser_core.ui.metrics import loco_uars

    fold = lambda uar: {"balanced_accuracy": uar}
    loco = {"emo-whisper": {"folds": {"ravdess": fold(0.4), "ased": fold(0.2)}, "mean_uar": 0.3},
            "emo-cnn": {"folds": {"ravdess": fold(0.3)}, "mean_uar": 0.3}}  # run in parts: one fold so far
    assert loco_uars(loco) == {"emo-whisper": {"ravdess": 0.4, "ased": 0.2, "mean": 0.3}, "emo-cnn": {"ravdess": 0.3}}


# --- what ships: the app on models/ as `make run` serves it ------------------------------------------


@pytest.fixture
def shipped(monkeypatch):
    """The shipped models, the default preselected: no SER_MODEL, no SER_MODELS_DIR."""
    monkeypatch.delenv("SER_MODEL", raising=False)
    monkeypatch.delenv("SER_MODELS_DIR", raising=False)
    monkeypatch.setattr("streamlit_webrtc.component.get_this_session_info", lambda: None)
    monkeypatch.setattr("streamlit_webrtc.shutdown.get_this_session_info", lambda: None)
    return common.follow_pointer(common.MODELS_ROOT / "default")


def test_the_shipped_default_serves_uploads(shipped):
    """One pass on what users get: the picker lists the shipped models by the names the README and
    `ser predict --model` use, the default first; a recording and a broken file are answered."""
    at = run("pages/upload.py")
    assert_clean(at)
    picker = at.sidebar.selectbox[0]
    labels = picker.options  # as shown
    assert labels[0] == f"{common.model_name(shipped)} (default)" and picker.value == str(shipped)
    assert "emo-cnn" in labels  # the light model of the README
    random_split = [label for label in labels if label.endswith("-random")]
    assert random_split and labels[-len(random_split):] == random_split  # the ones not to choose, last
    assert all(f"**{label}**: " in picker.help for label in labels)

    at.file_uploader[0].set_value([("talk.wav", wav_bytes(talk(0.5, (3.0, 4), 1.0)), "audio/wav"),
                                   ("broken.wav", b"RIFF\x00\x00\x00\x00WAVEjunk", "audio/wav")]).run()
    assert not at.exception
    assert len(at.error) == 1 and "not an audio file" in at.error[0].value
    model = common.warm_model(str(shipped))
    assert list(at.dataframe[0].value["emotion"])[0] in model.labels
    assert_emotion_bars(at, model.labels)
    assert players(at) == 1
    at.toggle(key="upload-0-signal").set_value(True).run()  # the first file's signal charts, drawn on request
    assert_colour_scales_drawn_as_given(at)


def test_upload_warns_of_a_language_the_default_never_heard(shipped, tmp_path):
    """Italian (synthesised by espeak-ng) is not among the default's training languages: the file's view
    says so beside its emotions, and the JSON download carries the guess."""
    if shutil.which("espeak-ng") is None:
        missing("espeak-ng is not installed (apt-get install espeak-ng; .ci/run installs it)")
    path = tmp_path / "treno.wav"
    subprocess.run(["espeak-ng", "-v", "it", "-w", str(path), "Il treno parte alle sette e saremo a casa prima di "
                    "cena, se tutto va bene."], check=True, capture_output=True)
    at = run("pages/upload.py")
    at.file_uploader[0].set_value(("treno.wav", path.read_bytes(), "audio/wav")).run()
    assert not at.exception and not at.error
    assert any("Sounds like Italian" in w.value and "never heard" in w.value for w in at.warning)
    result = common.analyze_named(common.warm_model(str(shipped)), "treno.wav", path.read_bytes())
    assert upload.result_record(result)["language"]["code"] == "it"
    assert upload.summary_rows([result], result.analysis.labels)[0]["language"] == "Italian (never heard)"


def test_the_shipped_default_model_card(shipped):
    """The card of an encoder model: no MFCC setting it does not use, and the libraries that serve it."""
    at = run("pages/model_card.py")
    assert_clean(at)
    metadata = json.loads((shipped / "metadata.json").read_text())
    assert metadata["feature_params"]["kind"] == "whisper"
    features = next(t.value for t in at.table if "hop_length" in t.value.index)
    assert "n_mfcc" not in features.index and "n_mels" in features.index
    serving = next(t.value for t in at.table if "emotion head" in t.value.index)["library"]
    assert serving["emotion head"].startswith("LiteRT (ai-edge-litert ") and "not installed" not in serving.to_string()
    assert any(line.startswith("CTranslate2 ") for line in serving)
    validation = f"Validation UAR: {metadata['validation']['label_set_uar']:.1%} on {metadata['validation']['n_scored']:,}"
    assert any(validation in m.value for m in at.markdown)
    assert [c.value for c in at.code] == [metadata["weights_sha256"]]  # whole, where a table cell cut it
    # its recipe left out of each language, every reading bench/lolo.py measured for it, as lolo.json holds them
    lolo_row = json.loads(LOLO_FILE.read_text())["rows"][metadata["recipe"]]
    lolo = next(t.value for t in at.table if "English" in t.value.columns)
    assert list(lolo.index) == [reading for reading, key in LOLO_READINGS.items() if key in lolo_row["folds"]["english"]]
    assert lolo.loc["the batch, among the emotions its corpus holds", "Turkish"] == \
        f"{lolo_row['folds']['turkish']['known_batch_uar']:.1%}"


# --- charts --------------------------------------------------------------------------------------------


def test_the_metrics_page_draws_each_leave_one_language_out_reading():
    """Each reading of the radio draws lolo.json's folds under it: the default's recipe's bars are its
    folds' numbers, and a recipe measured before a reading existed has no bars under that reading."""
    def page():
        from ser_core.ui import metrics

        metrics.lolo_view()

    rows = json.loads(LOLO_FILE.read_text())["rows"]
    recipe = "emo-whisper-ens-diverse"
    at = AppTest.from_function(page, default_timeout=TIMEOUT_S).run()
    for reading, key in LOLO_READINGS.items():
        at.radio(key="lolo-reading").set_value(reading).run()
        assert_clean(at)
        [chart] = charts(at)
        drawn = {trace["name"]: dict(zip(trace["x"], np.frombuffer(base64.b64decode(trace["y"]["bdata"]), trace["y"]["dtype"])))
                 for trace in chart["data"]}  # plotly's binary arrays
        measured = {LANGUAGE_NAMES[language]: 100 * fold[key] for language, fold in rows[recipe]["folds"].items()}
        assert {k: drawn[recipe][k] for k in measured} == pytest.approx(measured)
        assert set(drawn) == {name for name, r in rows.items() if all(key in f for f in r["folds"].values())}


def test_benchmark_charts_can_be_read():
    """The committed benchmark as the Metrics page draws it: condition names keep the room they need,
    each bar's number stands readable above it, and the voice-profile chart starts at 0 % UAR (its
    80-84 % axis made one point look like a doubling)."""
    def page():
        from ser_core.ui import metrics

        metrics.benchmark_view()

    from ser_core.ui import metrics as metrics_ui

    at = AppTest.from_function(page, default_timeout=TIMEOUT_S).run()
    assert_clean(at)
    by_axis = {chart["layout"]["xaxis"]["title"]["text"]: chart for chart in charts(at)}
    grouped = [by_axis[title] for title in ("held-out language", "held-out corpus", "condition", metrics_ui.AROUSAL_AXIS)]
    for chart in grouped:
        assert chart["layout"]["xaxis"]["automargin"] is True
        assert chart["layout"]["yaxis"]["range"][0] == 0
        for trace in chart["data"]:
            assert trace["textposition"] == "outside" and trace["textfont"]["size"] >= 11
    arousal = json.loads(metrics_ui.AROUSAL_FILE.read_text())["never_heard"]
    levels, emotion = by_axis[metrics_ui.AROUSAL_AXIS]["data"]  # arousal's bars beside the emotion's, per corpus
    assert len(emotion["x"]) == len(arousal) and len(levels["x"]) == sum(r["arousal_uar"] is not None for r in arousal.values())
    heights = np.frombuffer(base64.b64decode(levels["y"]["bdata"]), levels["y"]["dtype"])  # plotly's binary array
    assert sorted(heights) == pytest.approx(sorted(100 * r["arousal_uar"] for r in arousal.values() if r["arousal_uar"]))
    at.radio(key="arousal-reading").set_value("the batch at hand").run()
    levels = {chart["layout"]["xaxis"]["title"]["text"]: chart for chart in charts(at)}[metrics_ui.AROUSAL_AXIS]["data"][0]
    heights = np.frombuffer(base64.b64decode(levels["y"]["bdata"]), levels["y"]["dtype"])
    assert sorted(heights) == pytest.approx(sorted(100 * r["batch_arousal_uar"] for r in arousal.values()
                                                   if r["batch_arousal_uar"]))
    adaptation = by_axis["clips in each speaker's profile"]
    assert adaptation["layout"]["yaxis"]["range"] == [0, 100]
    assert all(trace["text"] == [f"{uar:.1f}" for uar in trace["y"]] for trace in adaptation["data"])  # differences in numbers


def test_conversations_are_on_the_metrics_page(tmp_path):
    """bench/segments.py's, bench/turn_taking.py's and bench/lolo_conversations.py's committed results as
    the Metrics page draws them: utterances against the same clips as files, who spoke when, turns that
    follow quickly, and each reading of the conversations, in languages heard and never heard; a results
    file without its timings draws nothing."""
    from ser_core.ui.metrics import LOLO_CONVERSATIONS_FILE, SEGMENTS_FILE, TURN_TAKING_FILE

    def page(segments_path):
        from ser_core.ui import metrics

        metrics.conversations_view(segments_path)

    at = AppTest.from_function(page, args=(SEGMENTS_FILE,), default_timeout=TIMEOUT_S).run()
    assert_clean(at)
    results = json.loads(SEGMENTS_FILE.read_text())
    assert [h.value for h in at.header] == ["Long recordings and conversations"]
    shown = {m.label: m.value for m in at.metric}
    assert shown["Utterances in the recording: UAR"] == f"{results['test']['by_utterance']['uar_per_segment']:.1%}"
    # Two benchmarks, each read alone as files, each named for what it is.
    assert shown["The long recording's clips as files"] == f"{results['test']['one_by_one']['uar_by_utterance']:.1%}"
    turns = f"The conversations' turns as files: {results['conversations']['test']['uar_one_by_one']:.1%}."
    assert any(turns in caption.value for caption in at.caption)
    assert not any("The same clips as files" in text.value for text in [*at.caption, *at.markdown])
    drawn = charts(at)
    readings, voices, quick, languages = drawn
    assert [t["name"] for t in readings["data"]] == ["as heard", "each speaker against their own voice",
                                                     "the whole recording against itself"]
    assert list(readings["data"][0]["x"]) == ["1 speaker", "2 speakers", "3 speakers", "4 speakers"]
    assert len(voices["data"]) == 3 and voices["layout"]["yaxis"]["range"][0] == 0
    lolo = json.loads(LOLO_CONVERSATIONS_FILE.read_text())
    assert len(languages["data"][0]["x"]) == len(lolo["languages"])
    # Turns that follow quickly (bench/turn_taking.py): before, any earlier setting measured beside, and now.
    turns = json.loads(TURN_TAKING_FILE.read_text())
    earlier = [v for v in turns["test"]["Q"] if v not in (turns["regions"], turns["chosen"], "one_by_one_uar")]
    assert [t["name"] for t in quick["data"]] == ["the detector's regions (before)",
                                                  *(f"cut where the voice changes, earlier setting {v}" for v in earlier),
                                                  "regions cut where the voice changes (now)"]
    now = quick["data"][-1]["y"]  # plotly's binary array
    assert list(np.frombuffer(base64.b64decode(now["bdata"]), now["dtype"])) == pytest.approx([100 * turns["test"]["Q"][turns["chosen"]][key]
                                                         for key in ("uar", "attribution_2_to_4", "right_count")])
    assert any(f"files: {turns['test']['Q']['one_by_one_uar']:.1%}" in c.value for c in at.caption)

    partial = tmp_path / "segments.json"
    partial.write_text(json.dumps({k: v for k, v in results.items() if k != "cost_per_hour"}))
    at = AppTest.from_function(page, args=(partial,), default_timeout=TIMEOUT_S).run()
    assert_clean(at)
    assert not at.header and not charts(at)


def cielab(colour: str) -> np.ndarray:
    """sRGB '#rrggbb' → CIELAB (D65), to compare colours as the eye does."""
    rgb = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    f = np.cbrt(np.maximum(xyz / [0.95047, 1.0, 1.08883], (6 / 29) ** 3))
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_uncertain_has_a_colour_of_its_own():
    """Speech that named no emotion is as far from every emotion's colour as the emotions are from
    each other (it used to be plotly's blue, beside sad's)."""
    from itertools import combinations

    from ser_core.ui import plots
    from ser_core.serving.results import UNCERTAIN

    emotions = {label: cielab(plots.color(label)) for label in plots.EMOTION_COLORS}
    closest_pair = min(np.linalg.norm(a - b) for a, b in combinations(emotions.values(), 2))
    uncertain = cielab(plots.color(UNCERTAIN))
    assert min(np.linalg.norm(uncertain - lab) for lab in emotions.values()) >= closest_pair


def test_upload_reads_among_the_emotions_kept_in_the_sidebar(served):
    """The sidebar's emotions: every view and download of a file over those only, renormalised, as
    `ser predict --classes`; arousal from all of them; no second analysis; fewer than two refused."""
    at = run("pages/upload.py")
    labels = load_model(served).labels
    assert at.multiselect(key=common.CLASSES_KEY).value == list(labels)
    at.file_uploader[0].set_value([("talk.wav", wav_bytes(talk(1.0, (4.0, 4), 2.0, (2.0, 5), 1.0)), "audio/wav"),
                                   ("one.wav", wav_bytes(speech(3.0, f0=200)), "audio/wav")]).run()
    assert_clean(at)
    gauges = lambda: [float(re.search(r'data-arousal="([0-9.]+)"', e.proto.body)[1])  # noqa: E731
                      for e in at.get("html") if 'class="ser-arousal"' in e.proto.body]
    before = gauges()
    [(_, whole), _] = at.session_state[common.ANALYSES_KEY].items()

    kept = ["angry", "happy", "sad", "neutral"]
    at.multiselect(key=common.CLASSES_KEY).set_value(kept).run()
    assert_clean(at)
    assert len(at.session_state[common.ANALYSES_KEY]) == 2  # read again among them, not analysed again
    assert_emotion_bars(at, kept)
    assert gauges() == pytest.approx(before, abs=1e-6)
    assert any("only the 4 emotions kept in the sidebar" in caption.value for caption in at.caption)
    summary = at.dataframe[0].value
    assert {"calm", "fearful", "disgust", "surprised"}.isdisjoint(summary.columns) and set(kept) <= set(summary.columns)
    expected = judged(whole.probabilities, tuple(kept), whole.uncertain_below)
    assert summary.loc[0, "emotion"] == expected["emotion"]
    assert summary.loc[0, "arousal"] == pytest.approx(whole.arousal, abs=1e-4)
    [table] = [d.value for d in at.dataframe[1:] if "start_s" in d.value.columns][:1]
    assert set(kept) <= set(table.columns) and "calm" not in table.columns

    at.multiselect(key=common.CLASSES_KEY).set_value(["angry"]).run()
    assert_clean(at)
    assert "Keep two emotions or more" in at.sidebar.warning[0].value
    assert_emotion_bars(at, labels)


def test_uploads_read_together_among_kept_emotions_are_ser_predict_adapt_batch_classes(served, tmp_path):
    """The two things a user can say that help most in a language never heard, together in the app: the
    files read together and only the emotions they can hold kept. Each file's answer is what
    `ser predict --adapt batch --classes` gives for the same files (bench/lolo.py's `known_batch_uar`)."""
    from ser_core.serving.batch import predict_adapted

    files = {"one.wav": wav_bytes(speech(3.0, f0=120)), "two.wav": wav_bytes(speech(3.0, f0=220, seed=2)),
             "three.wav": wav_bytes(speech(2.5, f0=170, seed=3))}
    kept = ("angry", "happy", "sad", "neutral")
    at = run("pages/upload.py")
    at.file_uploader[0].set_value([(name, data, "audio/wav") for name, data in files.items()]).run()
    at.toggle(key=common.TOGETHER_KEY).set_value(True).run()
    at.multiselect(key=common.CLASSES_KEY).set_value(list(kept)).run()
    assert_clean(at)
    model = load_model(served)
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    summary = at.dataframe[0].value
    for row, (_, probabilities, _, error, *_) in zip(summary.itertuples(), predict_adapted(model, paths), strict=True):
        assert error is None
        expected = judged(probabilities, kept, model.uncertain_below)
        assert row.emotion == expected["emotion"]
        assert [getattr(row, label) for label in kept] == pytest.approx([expected["probabilities"][label] for label in kept], abs=1e-3)
    # and read together is not each file alone
    alone = judged(model.analyze(files["one.wav"]).probabilities, kept, model.uncertain_below)["probabilities"]
    assert [summary.loc[0, label] for label in kept] != pytest.approx([alone[label] for label in kept], abs=1e-3)


def test_the_download_of_a_file_read_among_chosen_emotions_is_ser_predict_classes(served):
    model = load_model(served)
    whole = model.analyze(wav_bytes(talk(0.5, (3.0, 4), 1.5, (2.0, 5))))
    kept = ("sad", "angry", "happy", "neutral")
    [record] = json.loads(json.dumps([upload.result_record(common.Result("a.wav", b"", whole.over_classes(kept), None))]))
    assert record == {**record, **judged(whole.probabilities, kept, whole.uncertain_below)}
    for row, segment in zip(record["segments"], whole.segments, strict=True):
        expected = judged(segment.probabilities, kept, whole.uncertain_below)
        assert {k: row[k] for k in expected} == expected
    for row, speaker in zip(record["speakers"], speaker_summaries(whole.segments, whole.labels, whole.uncertain_below),
                            strict=True):
        assert row["arousal"] == pytest.approx(speaker.arousal, abs=1e-6) and set(row["probabilities"]) == set(kept)
    assert all(set(w["probabilities"]) == set(kept) for w in record["windows"])


def test_home_quick_try_reads_among_the_emotions_kept_in_the_sidebar(served):
    """The first page a user meets has the choice too, and a choice made there holds on Record."""
    at = run("pages/home.py")
    at.multiselect(key=common.CLASSES_KEY).set_value(["happy", "sad", "angry"]).run()
    at.file_uploader(key="quick-try").set_value(("try.wav", wav_bytes(speech(3.0)), "audio/wav")).run()
    assert_clean(at)
    assert_emotion_bars(at, ["happy", "sad", "angry"])
    at.switch_page("pages/record.py").run()
    assert at.multiselect(key=common.CLASSES_KEY).value == ["happy", "sad", "angry"]


def test_record_reads_among_the_emotions_kept_in_the_sidebar(served):
    at = run("pages/record.py")
    at.multiselect(key=common.CLASSES_KEY).set_value(["sad", "neutral", "angry"]).run()
    at.audio_input[0].set_value(("recording.wav", wav_bytes(speech(3.0)), "audio/wav")).run()
    assert_clean(at)
    assert_emotion_bars(at, ["neutral", "sad", "angry"])


def test_live_reads_among_the_emotions_kept_in_the_sidebar(served):
    """The Live view's bars, headline and timeline over the kept emotions; its arousal from all."""
    from ser_core.serving.live import LiveClassifier

    classifier = LiveClassifier(load_model(served), clock=lambda: 0.0, background=False)
    classifier.push(speech(3.0, level_db=-15.0), 16000)
    latest = classifier.classify()
    assert latest is not None and not latest.pause

    def page(classifier, classes):
        from ser_core.ui import live

        live.show_live(classifier, classes)

    kept = ("neutral", "sad", "angry")
    at = AppTest.from_function(page, args=(classifier, kept), default_timeout=TIMEOUT_S).run()
    assert_clean(at)
    assert_emotion_bars(at, kept)
    expected = judged(latest.probabilities, kept, classifier.reader.uncertain_below)
    assert at.subheader[0].value == common.headline(expected["emotion"], expected["confidence"], expected["uncertain"])
    [gauge] = [e.proto.body for e in at.get("html") if 'class="ser-arousal"' in e.proto.body]
    assert float(re.search(r'data-arousal="([0-9.]+)"', gauge)[1]) == pytest.approx(expected["arousal"], abs=1e-3)
    [timeline] = charts(at)
    assert [trace["name"] for trace in timeline["data"]] == list(kept)
    at = AppTest.from_function(page, args=(classifier, None), default_timeout=TIMEOUT_S).run()
    assert_emotion_bars(at, load_model(served).labels)


def test_the_model_card_says_which_int8_arithmetics_an_int8_head_was_taught(shipped, monkeypatch):
    """CPUs compute int8 two ways: the card of the fast model (trained on a Zen 4's precise products)
    says its probabilities move on the other; a head taught both would say it reads as measured on either."""
    from ser_core.ui.model_card import int8_note

    monkeypatch.setenv("SER_MODEL", str(common.MODELS_ROOT / "emo-whisper-fast-speaker"))
    at = run("pages/model_card.py")
    assert_clean(at)
    assert any("trained on precise ones only" in c.value for c in at.caption)
    assert "trained on coarse ones only" in int8_note({"compute_type": "int8"})  # recorded on Intel, before it said
    assert "trained on both" in int8_note({"compute_type": "int8", "int8_trained_on": ["coarse", "precise"]})
