"""The Streamlit pages through AppTest (in-process, no browser): every page runs, uploads and
recordings reach the analysis view, and bad input becomes an st.error the user can recover from.
A real browser drives the same pages in test_browser.py."""

from __future__ import annotations

import csv
import io
import json

import pytest
from streamlit.testing.v1 import AppTest

from conftest import voice, wav_bytes
from ser_core import ui
from ser_core.inference import load_model

PAGES = ["../app.py", "../pages/1_Record.py", "../pages/2_Live.py", "../pages/3_Upload.py",
         "../pages/4_Metrics.py", "../pages/5_Model_card.py"]
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


def run(page: str) -> AppTest:
    return AppTest.from_file(page, default_timeout=TIMEOUT_S).run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def assert_emotion_bars(at: AppTest, labels) -> None:
    """The first chart is the bar chart: every emotion, most likely on top (plotly draws bottom-up)."""
    bars = charts(at)[0]["data"][0]
    assert bars["type"] == "bar" and bars["orientation"] == "h"
    assert sorted(bars["y"]) == sorted(labels)
    assert list(bars["x"]) == sorted(bars["x"])


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_cleanly(served, page):
    at = run(page)
    assert_clean(at)
    assert at.title


def test_home_names_the_model_and_its_test_numbers(served):
    at = run("../app.py")
    assert_clean(at)
    assert [m.label for m in at.metric] == ["Accuracy", "Balanced accuracy (UAR)", "Macro-F1"]
    metrics = json.loads((served / "metrics.json").read_text())
    assert at.metric[0].value == f"{metrics['accuracy']:.1%}"
    assert any(metrics["protocol"] in caption.value for caption in at.caption)


def test_home_quick_try(served):
    at = run("../app.py")
    at.file_uploader[0].set_value(("hello.wav", wav_bytes(voice(2.0)), "audio/wav")).run()
    assert_clean(at)
    assert_emotion_bars(at, load_model(served).labels)


def test_upload_shows_the_analysis(served):
    at = run("../pages/3_Upload.py")
    at.file_uploader[0].set_value(("speech.wav", wav_bytes(voice(6.0)), "audio/wav")).run()
    assert_clean(at)
    assert_emotion_bars(at, load_model(served).labels)
    kinds = [chart["data"][0]["type"] for chart in charts(at)]
    # bars, waveform, mel spectrogram, feature heatmap, timeline (6 s is several windows)
    assert kinds == ["bar", "scatter", "heatmap", "heatmap", "scatter"]
    assert "Input quality" in [s.value for s in at.subheader]
    assert len(at.get("download_button")) == 3  # results CSV, results JSON, timeline CSV


def test_several_uploads_get_a_summary_and_a_bad_one_an_error(served):
    at = run("../pages/3_Upload.py")
    at.file_uploader[0].set_value([
        ("one.wav", wav_bytes(voice(2.0, f0=120)), "audio/wav"),
        ("broken.wav", b"RIFF\x00\x00\x00\x00WAVEjunk", "audio/wav"),
        ("two.flac", wav_bytes(voice(3.0, f0=220), fmt="FLAC"), "audio/flac"),
    ]).run()
    assert not at.exception
    assert len(at.expander) == 3
    assert len(at.error) == 1
    summary = at.dataframe[0].value
    assert list(summary["file"]) == ["one.wav", "broken.wav", "two.flac"]
    assert summary["error"].tolist() == ["", at.error[0].value, ""]


def test_a_bad_file_is_an_error_and_the_next_file_works(served):
    at = run("../pages/3_Upload.py")
    at.file_uploader[0].set_value(("notes.wav", b"this is text, not audio", "audio/wav")).run()
    assert not at.exception
    assert len(at.error) == 1 and "not an audio file" in at.error[0].value
    at.file_uploader[0].set_value(("speech.wav", wav_bytes(voice(3.0)), "audio/wav")).run()
    assert_clean(at)
    assert charts(at)


def test_silence_says_no_speech(served):
    at = run("../pages/3_Upload.py")
    at.file_uploader[0].set_value(("silence.wav", wav_bytes(voice(2.0) * 0), "audio/wav")).run()
    assert not at.exception
    assert len(at.error) == 1 and "No speech found" in at.error[0].value


def test_record_shows_the_analysis(served):
    at = run("../pages/1_Record.py")
    assert at.audio_input[0].sample_rate == 16000
    at.audio_input[0].set_value(("recording.wav", wav_bytes(voice(3.0)), "audio/wav")).run()
    assert_clean(at)
    assert_emotion_bars(at, load_model(served).labels)


def test_live_waits_for_the_microphone(served):
    at = run("../pages/2_Live.py")
    assert_clean(at)
    assert any("Press START" in info.value for info in at.info)


def test_metrics_page_shows_the_confusion_matrix_both_ways(served):
    at = run("../pages/4_Metrics.py")
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
    for page in ("../pages/4_Metrics.py", "../pages/5_Model_card.py"):
        at = run(page)
        assert_clean(at)
        assert "No model directory" in at.info[0].value
    at = run("../pages/3_Upload.py")
    assert not at.exception
    assert "No model can be served" in at.error[0].value


def test_results_export_is_csv_and_json(served):
    good = ui.Result("a.wav", b"", load_model(served).analyze(wav_bytes(voice(4.0))), None)
    bad = ui.Result("b.wav", b"", None, "This is not an audio file we can read, or it is corrupt.")
    rows = ui.summary_rows([good, bad], good.analysis.labels)
    table = list(csv.DictReader(io.StringIO(ui.rows_csv(rows))))
    assert [row["file"] for row in table] == ["a.wav", "b.wav"]
    assert table[0]["emotion"] == good.analysis.emotion and table[1]["error"]
    records = json.loads(json.dumps([ui.result_record(good), ui.result_record(bad)]))
    assert len(records[0]["windows"]) == len(good.analysis.window_times_s)
    assert records[1] == {"file": "b.wav", "error": bad.error}


def test_benchmark_table_is_shown_from_its_results_file(tmp_path):
    row = {"n_test": 10, "accuracy": 0.5, "balanced_accuracy": 0.4, "macro_f1": 0.3, "parameters": 56040,
           "per_corpus": {"ravdess": {"accuracy": 0.5, "balanced_accuracy": 0.45, "n": 10}},
           "latency_ms_3s_clip": {"p50": 7.5, "p95": 9.0}}
    results = {"protocols": {"speaker": {"seed-cnn": row, "egemaps-svm": {**row, "parameters": None}}}}
    path = tmp_path / "compare_models.json"
    path.write_text(json.dumps(results))

    def page(path):
        from ser_core import ui

        ui.benchmark_view(path)

    at = AppTest.from_function(page, args=(path,), default_timeout=TIMEOUT_S).run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert list(table["model"]) == ["seed-cnn", "egemaps-svm"]
    assert list(table["UAR ravdess"]) == ["45.0%", "45.0%"] and list(table["p50 ms / 3 s clip"]) == ["7.5", "7.5"]
