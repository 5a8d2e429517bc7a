"""The app in a real browser: `streamlit run app.py` on a free port, Debian's Chromium driven by
Playwright, with a fake microphone that plays a generated voice. Record, Live, Upload and Metrics are
used as a person would; screenshots go to test-artifacts/ (and, with SER_UPDATE_SCREENSHOTS=1, small
copies to docs/screenshots/).

Without /usr/bin/chromium the tests skip, except under CI=true, where a missing browser is a failure.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import numpy as np

from conftest import ROOT, missing, speech, wav_bytes
from ser_core.ui.analysis import SIGNAL_TOGGLE, WINDOWS_TOGGLE

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ROOT / "docs" / "screenshots"
SCREENSHOT_MAX_BYTES = 300_000
VIEWPORT = {"width": 1280, "height": 900}
MAX_SCREENSHOT_HEIGHT = 4000
SERVER_START_S = 120
RESULT_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        missing(f"{CHROMIUM} is missing: apt-get install -y chromium (Playwright drives Debian's Chromium)")
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_server(chromium, trained_model):
    """The app served as `make run` serves it (.streamlit/config.toml's settings), on the tiny trained model."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    env = {**os.environ, "SER_MODEL": str(trained_model), "SER_MODELS_DIR": str(trained_model.parent)}
    log = (ARTIFACTS / "streamlit.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            assert server.poll() is None, f"streamlit exited early; see {ARTIFACTS / 'streamlit.log'}"
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"streamlit did not answer within {SERVER_START_S} s"
            time.sleep(0.5)
        yield url, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def app_url(app_server) -> str:
    return app_server[0]


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    microphone = tmp_path_factory.mktemp("microphone") / "voice.wav"
    microphone.write_bytes(wav_bytes(speech(6.0, level_db=-15.0)))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-audio-capture={microphone}"],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def served_once(browser, app_url):
    """The server's first session, on the Home page. Streamlit 1.67 shows the first session after a
    start a "Page not found" dialog when it opens a deep link (/Upload) in an app with a pages/
    folder, although it then runs the right page; the dialog covers the page until dismissed.
    Later sessions are not affected, so each test starts from a served app as users meet it."""
    context = browser.new_context(base_url=app_url)
    first = context.new_page()
    open_page(first, "/")
    context.close()


@pytest.fixture
def page(browser, app_url, served_once):
    context = browser.new_context(permissions=["microphone"], viewport=VIEWPORT, base_url=app_url)
    page = context.new_page()
    yield page
    context.close()


def open_page(page, path: str) -> None:
    page.goto(path)
    page.get_by_test_id("stAppViewContainer").wait_for()
    page.get_by_test_id("stHeading").first.wait_for(timeout=RESULT_TIMEOUT_MS)
    settle(page)


def settle(page) -> None:
    """Wait for the script run to finish: Streamlit keeps stale elements on screen during reruns."""
    page.wait_for_timeout(300)  # a rerun the last action triggered has shown its status by now
    page.get_by_test_id("stStatusWidget").wait_for(state="detached", timeout=RESULT_TIMEOUT_MS)


def assert_no_errors(page) -> None:
    assert page.get_by_test_id("stException").count() == 0
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.all_inner_texts()


def emotion_bars_shown(page) -> None:
    """The analysis view's headline and its bar chart."""
    page.get_by_text("Input quality").wait_for(timeout=RESULT_TIMEOUT_MS)
    settle(page)
    headline = page.get_by_test_id("stHeading").filter(has_text="%").first
    assert headline.is_visible()
    assert_eight_bars(page)


def assert_eight_bars(page) -> None:
    """All eight emotions drawn in one chart, most likely on top, the longest bar the widest, each
    bar's percentage beside it (on the Live page a redraw can briefly show the old chart beside the
    new one)."""
    page.locator(".ser-bars").first.locator(".ser-bar").nth(7).wait_for(timeout=RESULT_TIMEOUT_MS)
    # Read once the chart is laid out: on a loaded machine a freshly swapped chart can be in the page
    # for a moment before it has its width.
    drawn = page.wait_for_function("""() => {
        const bars = [...(document.querySelector('.ser-bars')?.querySelectorAll('.ser-bar') ?? [])];
        const read = bars.map(b => [+b.dataset.probability, b.children[1].children[0].getBoundingClientRect().width,
                                    b.innerText]);
        return read.length && read[0][1] > 0 ? read : null;
    }""", timeout=RESULT_TIMEOUT_MS).json_value()
    assert len(drawn) == 8
    probabilities, widths = [p for p, _, _ in drawn], [w for _, w, _ in drawn]
    assert probabilities == sorted(probabilities, reverse=True) and widths == sorted(widths, reverse=True)
    assert widths[0] > 20 and all(text.endswith(f"{p:.0%}") for p, _, text in drawn)


def screenshot(page, name: str) -> None:
    """The whole page (Streamlit scrolls inside its own container, so grow the viewport to fit)."""
    settle(page)
    page.wait_for_timeout(500)  # the last elements of the run are laid out
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(max(height, VIEWPORT["height"]),
                                                                     MAX_SCREENSHOT_HEIGHT)})
    page.wait_for_timeout(500)  # plotly redraws at the new size
    png = page.screenshot()
    page.set_viewport_size(VIEWPORT)
    (ARTIFACTS / f"{name}.png").write_bytes(png)
    if os.environ.get("SER_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        small = shrink_png(png)
        assert len(small) < SCREENSHOT_MAX_BYTES
        (SCREENSHOTS / f"{name}.png").write_bytes(small)


def shrink_png(png: bytes) -> bytes:
    """A palette PNG, narrower until it is under SCREENSHOT_MAX_BYTES: fit to commit."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    for width in (1000, 880, 760, 640):
        scaled = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        buffer = io.BytesIO()
        scaled.quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG", optimize=True)
        if buffer.tell() < SCREENSHOT_MAX_BYTES:
            break
    return buffer.getvalue()


def record_timing(name: str, seconds: float) -> None:
    path = ARTIFACTS / "timings.json"
    timings = json.loads(path.read_text()) if path.is_file() else {}
    timings[name] = round(seconds, 2)
    path.write_text(json.dumps(timings, indent=2))
    print(f"{name}: {seconds:.2f} s")


def test_home_names_the_served_model(page, trained_model):
    open_page(page, "/")
    page.get_by_text("Quick try").wait_for(timeout=RESULT_TIMEOUT_MS)  # the first visit loads the model
    settle(page)
    assert page.get_by_text(trained_model.name).first.is_visible()
    assert page.get_by_test_id("stMetric").count() == 3
    navigation = page.get_by_test_id("stSidebarNav")
    links = navigation.get_by_test_id("stSidebarNavLink").all_inner_texts()  # "home\n\nHome": icon ligature, title
    assert [link.split("\n")[-1] for link in links] == ["Home", "Record", "Live", "Upload", "My voice", "Metrics", "Model card"]
    picker = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox")
    shown = picker.inner_text() + " ".join(picker.locator("input").evaluate_all("inputs => inputs.map(i => i.value)"))
    assert "Model" in shown and f"{trained_model.name} (default)" in shown
    assert_no_errors(page)
    screenshot(page, "home")


def inotify_watches(pid: int) -> int:
    """Folders the process watches through inotify (one "inotify wd:" line per watch in fdinfo)."""
    watches = 0
    for fd in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            watches += sum(line.startswith("inotify wd:") for line in fd.read_text().splitlines())
        except OSError:  # closed meanwhile
            pass
    return watches


def test_the_server_watches_no_folders(app_server, served_once):
    """Streamlit's watcher followed the checkout recursively, .venv included: 7,944 watches here and
    "Inotify queue overflowed" in the terminal. A session has run (served_once), so any watcher is up."""
    _, server = app_server
    if not Path(f"/proc/{server.pid}/fdinfo").is_dir():
        pytest.skip("no /proc on this system")
    assert inotify_watches(server.pid) == 0
    assert "Inotify" not in (ARTIFACTS / "streamlit.log").read_text()


def test_record_from_the_microphone(page):
    open_page(page, "/Record")
    recorder = page.get_by_test_id("stAudioInput")
    waveform = recorder.get_by_test_id("stAudioInputWaveSurfer")
    page.get_by_role("button", name="Record", exact=True).click()
    page.get_by_role("button", name="Stop recording").wait_for()
    # While it records, the live waveform (redrawn every 10 ms) gives way to a steady note; the timer runs.
    assert waveform.is_hidden()
    note = recorder.locator("div:has(> [data-testid=stAudioInputWaveSurfer])")
    assert "Recording" in note.evaluate("e => getComputedStyle(e, '::before').content")
    page.wait_for_timeout(3000)
    assert recorder.get_by_test_id("stAudioInputWaveformTimeCode").inner_text() != "00:00"
    page.get_by_role("button", name="Stop recording").click()
    emotion_bars_shown(page)
    assert_no_errors(page)
    assert waveform.is_visible()  # the recording's own waveform, with the recorder's play button
    assert note.evaluate("e => getComputedStyle(e, '::before').content") == "none"
    assert page.get_by_test_id("stAudio").count() == 0  # no second player for the same recording
    # One utterance: the first result of a session fetches no chart library (plotly's bundle alone was
    # 4.7 MB and most of the browser's CPU of a first result, bench/load_test.py).
    fetched = page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)")
    assert not [name for name in fetched if "Plotly" in name or "DataFrame" in name]
    screenshot(page, "record")


def test_live_streams_the_microphone(page):
    open_page(page, "/Live")
    component = page.frame_locator('iframe[title="streamlit_webrtc.component.webrtc_streamer"]')
    component.get_by_role("button", name="START").click()
    started = time.monotonic()
    page.get_by_text("Emotion over the last 30 s").wait_for(timeout=RESULT_TIMEOUT_MS)
    record_timing("live_start_to_first_reading_s", time.monotonic() - started)
    readings = page.get_by_text("readings kept")
    page.wait_for_function(  # the fragment keeps redrawing while frames arrive
        "() => [...document.querySelectorAll('[data-testid=stCaptionContainer]')]"
        ".some(e => /; ([3-9]|\\d\\d+) readings kept/.test(e.innerText))",
        timeout=RESULT_TIMEOUT_MS,
    )
    assert readings.count() == 1
    headline = page.get_by_test_id("stHeading").filter(has_text="%")
    assert headline.count() == 1, "a voice at -15 dBFS is speech: the live view names an emotion"
    assert_eight_bars(page)
    assert "Input level: -" in page.get_by_test_id("stProgress").inner_text()
    assert_no_errors(page)
    screenshot(page, "live")
    component.get_by_role("button", name="STOP").click()


def test_upload_files(page, tmp_path):
    talk = tmp_path / "03-01-05-01-02-01-23.wav"  # a RAVDESS name: longer than Streamlit's 20 characters
    pause = np.zeros(2 * 16000, np.float32)
    talk.write_bytes(wav_bytes(np.concatenate([pause, speech(3.0, level_db=-15.0, seed=4), pause,
                                               speech(4.0, level_db=-15.0, seed=5), pause])))
    open_page(page, "/Upload")
    started = time.monotonic()
    page.locator("input[type=file]").set_input_files(talk)
    emotion_bars_shown(page)
    record_timing("upload_to_bars_s", time.monotonic() - started)
    # The file's chip shows its whole name (Streamlit alone shows "03-01-0...-01-23.wav" for every
    # RAVDESS file of speaker 23), and nothing of it is cut off.
    chip = page.get_by_test_id("stFileChipName")
    assert chip.evaluate("e => getComputedStyle(e, '::after').content") == f'"{talk.name}"'
    assert chip.evaluate("e => e.scrollWidth <= e.clientWidth")
    # What a rerun has not redrawn yet dims at 0.5 s in one step, not in Streamlit's 1 s fade, which
    # redraws the page every frame (app.py). Streamlit marks it with data-stale; nothing spins at rest.
    bars = page.get_by_test_id("stElementContainer").filter(has=page.locator(".ser-bars")).first
    assert bars.get_attribute("data-stale") == "false"
    stale = bars.evaluate("""e => { e.dataset.stale = 'true'; const s = getComputedStyle(e);
        const read = [s.transitionProperty, s.transitionDuration, s.transitionDelay]; e.dataset.stale = 'false'; return read; }""")
    assert stale == ["opacity", "0s", "0.5s"]
    # At rest: the script may still be drawing what comes below the bars (the running indicator spins
    # meanwhile, more so on a loaded machine); once it is done, nothing may be left animating.
    page.wait_for_function("() => document.getAnimations().length === 0", timeout=10_000)
    # The segment timeline is HTML: no default view loads plotly's bundle (bench/load_test.py).
    spans = page.locator(".ser-timeline .ser-span")
    spans.first.wait_for(timeout=RESULT_TIMEOUT_MS)
    assert spans.count() == 2  # one coloured span per speech segment
    assert page.locator(".js-plotly-plot").count() == 0
    assert page.evaluate("() => typeof window.Plotly") == "undefined"
    # A span's hover text (its title) says its times, emotion and probabilities.
    title = spans.nth(1).get_attribute("title")
    assert re.match(r"\d+\.\d–\d+\.\d s.*: \w+ \d+%", title) and title.count("%") > 2
    page.get_by_text(SIGNAL_TOGGLE).click()
    settle(page)
    page.get_by_text(WINDOWS_TOGGLE).click()
    settle(page)
    # waveform, mel spectrogram, features, window timeline
    page.locator(".js-plotly-plot").nth(3).wait_for(timeout=RESULT_TIMEOUT_MS)
    assert page.locator(".js-plotly-plot").count() == 4
    assert page.get_by_text("2 speech segment(s)").is_visible()
    assert page.get_by_role("button", name="Download results (CSV)").is_visible()
    assert_no_errors(page)
    screenshot(page, "upload")
    assert_silence_is_dark(page.locator(".js-plotly-plot").nth(1), duration_s=13.0, pause_s=1.0, speech_s=3.5)

    # Selecting the second segment in the table names it and plays exactly that stretch.
    players = page.locator("audio").count()
    table = page.locator(".st-key-upload-0-segments-table [data-testid=stDataFrame]")
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    row_px = 35  # Streamlit's row height; the header is one row
    page.mouse.click(box["x"] + 15, box["y"] + row_px * 2 + row_px / 2)  # the second row's selection box
    page.get_by_text("Segment 2:").wait_for(timeout=RESULT_TIMEOUT_MS)
    page.wait_for_function(f"() => document.querySelectorAll('audio').length > {players}", timeout=RESULT_TIMEOUT_MS)
    player = page.locator("audio").last
    caption = page.get_by_text("Segment 2:").inner_text()  # "Segment 2: 6.9–11.2 s, …"
    start_s, end_s = (float(t) for t in caption.split(": ")[1].split(" s")[0].split("–"))
    assert 6.0 <= start_s <= 8.0 and 10.0 <= end_s <= 12.0  # the second voice: 7 to 11 s
    # The player holds exactly the span's audio, plays it at once (autoplay after the click) to its end.
    page.wait_for_function("a => a.duration > 0 && a.ended", arg=player.element_handle(), timeout=RESULT_TIMEOUT_MS)
    assert abs(player.evaluate("a => a.duration") - (end_s - start_s)) < 0.1
    assert_no_errors(page)


def assert_silence_is_dark(chart, duration_s: float, pause_s: float, speech_s: float) -> None:
    """In the mel spectrogram as drawn, a pause (digital silence: -80 dB) is near black, and speech is
    brighter. Streamlit's theme once turned Magma's darkest colour pink: pauses looked loudest."""
    from PIL import Image

    plot_area = chart.locator(".nsewdrag").first
    plot_area.scroll_into_view_if_needed()
    image = Image.open(io.BytesIO(plot_area.screenshot())).convert("L")
    # Rows inside the plot area's edge, where the page's white may show.
    column = lambda t: [image.getpixel((round(image.width * t / duration_s), y)) for y in range(2, image.height - 2)]
    assert max(column(pause_s)) < 40, "a pause is drawn bright"
    assert max(column(speech_s)) > 150, "speech is drawn dark"


def test_metrics_show_a_confusion_matrix(page):
    open_page(page, "/Metrics")
    page.get_by_text("Confusion matrix").wait_for()
    settle(page)
    page.locator(".js-plotly-plot .heatmaplayer").first.wait_for(timeout=RESULT_TIMEOUT_MS)
    assert page.get_by_text("69.5%").first.is_visible()  # the original's published accuracy beside ours
    assert_no_errors(page)
    screenshot(page, "metrics")


def test_model_card(page):
    open_page(page, "/Model_card")
    page.get_by_text("Library versions").wait_for()
    assert_no_errors(page)
    screenshot(page, "model_card")
