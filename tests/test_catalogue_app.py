"""The bad-input catalogue at the app level: each file uploaded on the Upload page gets its answer
(`st.error` with ser_core's sentence, `st.warning`, or a prediction), never an exception, and the
upload after it works.

The same table as tests/test_catalogue.py (`CASES`). Files whose extension the uploader does not
accept are refused by Streamlit itself: the browser's file picker does not offer them, and the
server refuses a forged upload; we check that refusal, and that the page still works afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ser_core.io.audio import load_audio
from test_catalogue import CASES, LIMITS, clip, refusal, wav_bytes

PAGE = "../pages/upload.py"  # AppTest resolves it relative to this file
pytestmark = pytest.mark.skipif(not (Path(__file__).parent / PAGE).is_file(), reason="the Upload page is absent")

MIME = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "opus": "audio/ogg", "mp3": "audio/mpeg",
        "m4a": "audio/mp4", "webm": "audio/webm", "mp4": "video/mp4", "txt": "text/plain"}
GOOD = ("good.wav", wav_bytes(clip(2.0), 16000), "audio/wav")
UPLOADABLE = [case for case in CASES if case.make is not None]


def extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


@pytest.fixture(scope="module")
def built():
    return {case.id: case.make() for case in UPLOADABLE}


def open_page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=90)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert len(at.file_uploader) >= 1
    return at


def open_capped(model_directory: Path, monkeypatch):
    """The Upload page on `model_directory`, with the catalogue's small caps in force."""
    import ser_core.serving.inference

    def capped(source, *args, **kwargs):  # the app passes no limits: it serves DEFAULT_LIMITS
        kwargs.pop("limits", None)
        return load_audio(source, *args[:1], limits=LIMITS, **kwargs)

    monkeypatch.setattr(ser_core.serving.inference, "load_audio", capped)
    monkeypatch.setenv("SER_MODEL", str(model_directory))
    return open_page()


@pytest.fixture
def app(trained_model, monkeypatch):
    """The Upload page on the tiny model."""
    return open_capped(trained_model, monkeypatch)


@pytest.fixture
def shipped_app(monkeypatch):
    """The Upload page on what `make run` serves: models/default."""
    from ser_core.serving.shipped import resolve_model

    return open_capped(resolve_model("default"), monkeypatch)


def assert_prediction_shown(at, name: str) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    from test_app import bar_charts

    assert bar_charts(at), f"{name}: no emotion bars"


def test_each_case_gets_its_answer_and_the_next_upload_works(app, built, trained_model):
    from ser_core.serving.inference import load_model

    model = load_model(trained_model)
    at = app
    uploader_types = [t.lstrip(".").lower() for t in at.file_uploader[0].allowed_type]
    for case in UPLOADABLE:
        name, expect = case.filename, case.expect
        at.file_uploader[0].set_value((name, built[case.id], MIME.get(extension(name), "application/octet-stream")))
        if uploader_types and extension(name) not in uploader_types:
            # The browser's picker does not offer this file. Forged past it, Streamlit's server
            # refuses the extension before the page sees the file, with a redacted exception, and
            # that session's page stays broken until it is reloaded: the next session works.
            at.run()
            assert at.exception and not at.error, case.id
            at = open_page()
            continue
        elif expect.kind == "error":
            at.run()
            assert not at.exception, (case.id, [e.message for e in at.exception])
            assert [e.value for e in at.error] == [str(refusal(model, built[case.id]))], case.id
        else:
            at.run()
            assert_prediction_shown(at, case.id)
            warnings = [w.value for w in at.warning]
            if expect.kind == "warning":
                assert any(expect.warning in w for w in warnings), (case.id, warnings)
        # The next upload works, whatever came before.
        at.file_uploader[0].set_value(GOOD)
        at.run()
        assert_prediction_shown(at, f"good file after {case.id}")


@pytest.mark.parametrize("page", ["app", "shipped_app"], ids=["tiny model", "shipped default"])
def test_all_files_at_once_one_error_each(page, built, request):
    at = request.getfixturevalue(page)
    if not at.file_uploader[0].accept_multiple_files:
        pytest.skip("the uploader takes one file at a time")
    uploader_types = [t.lstrip(".").lower() for t in at.file_uploader[0].allowed_type]
    accepted = [case for case in UPLOADABLE if not uploader_types or extension(case.filename) in uploader_types]
    at.file_uploader[0].set_value([(c.filename, built[c.id], MIME.get(extension(c.filename), "application/octet-stream"))
                                   for c in accepted])
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    failing = [case for case in accepted if case.expect.kind == "error"]
    assert len(at.error) == len(failing)
