"""Load test: K real Chromium sessions against one `streamlit run app.py` serving models/default.

One server process (the shipped model, as `make run` serves it) and one headless Chromium (Debian's,
driven by Playwright) with K browser contexts, one page each. Every session loops for the duration:
upload a generated speech-like WAV (3–8 s, a new length and new content each time, so Streamlit's
per-content analysis cache never answers) on the Upload page and wait for the eight emotion bars and
for the status widget to go; every few iterations record ~3 s from Chromium's fake microphone on the
Record page instead. Per action: the time from the action (set_input_files / the "Stop recording"
click) to the bars drawn, and to the run finished (status widget gone). Errors: any `stException` or
error `stAlert`, no bars within --timeout seconds, a page crash.

Fair by default: the server runs on one core (`--server-cpus 1`, as `taskset -c 1`) and this harness
with Playwright and every Chromium process on another (`--browser-cpus 0`), so the browsers cannot
take the server's core, and their CPU is reported apart from the server's.

Per K: actions, errors, p50/p95/max time-to-bars, the server's peak RSS (VmHWM of the streamlit
process and its children, reset at the start of each K through /proc/<pid>/clear_refs, and the peak
of 0.5 s samples of VmRSS), the server's and the browser's CPU time, and the machine's load.

    python bench/load_test.py --sessions 1 4 8 --duration 120 120 300 \
        --out bench/results/load_test.json          # also writes bench/results/load_test.md

--duration takes one value for every K or one per K (seconds of looping; actions running at the end
are finished and counted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from provenance import cpu_model, provenance
from ser_core.io.signals import speech, wav_bytes

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 900}
SERVER_START_S = 180
ARRIVAL_S = 2.0  # between two sessions' arrivals
CLK_TCK = os.sysconf("SC_CLK_TCK")

# One poll in the page: the first error element, else whether the eight emotion bars are drawn (HTML,
# `ser_core.ui.plots.emotion_bars`).
RESULT_JS = """() => {
    const err = document.querySelector('[data-testid=stException], [data-testid=stAlertContentError]');
    if (err) return 'error: ' + err.innerText.slice(0, 300);
    for (const chart of document.querySelectorAll('.ser-bars')) {
        if (chart.querySelectorAll('.ser-bar').length >= 8) return 'bars';
    }
    return null;
}"""
ERROR_JS = """() => {
    const err = document.querySelector('[data-testid=stException], [data-testid=stAlertContentError]');
    return err ? err.innerText.slice(0, 300) : null;
}"""
BARS_JS = "() => document.querySelectorAll('.ser-bars .ser-bar').length"


# --- /proc ----------------------------------------------------------------------------------------


def children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def tree(pid: int, children: dict[int, list[int]] | None = None) -> list[int]:
    children = children_map() if children is None else children
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(children.get(p, []))
    return pids


def status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """utime + stime of each process, in seconds (its own, not its reaped children's)."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return seconds


def is_chromium(pid: int) -> bool:
    try:
        return "chrom" in Path(f"/proc/{pid}/comm").read_text()
    except OSError:
        return False


def chromium_role(pid: int) -> str:
    """renderer, gpu, browser, audio, network or other: Chromium rewrites each process's command line
    into one string that names its --type (and a utility's --utility-sub-type)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "other"
    kind = next((arg.split("=", 1)[1] for arg in command.split() if arg.startswith("--type=")), "browser")
    if kind == "utility":
        service = next((arg for arg in command.split() if arg.startswith("--utility-sub-type=")), "")
        return next((name for name in ("audio", "network") if f"{name}.mojom" in service.lower()), "other")
    return {"renderer": "renderer", "gpu-process": "gpu", "browser": "browser"}.get(kind, "other")


def cpu_since(before: dict[int, float], pids: list[int]) -> float:
    """CPU seconds the live processes `pids` used since `before` (processes that ended are lost)."""
    return sum(now - before.get(pid, 0.0) for pid, now in cpu_by_pid(pids).items())


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def reset_peak_rss(pids: list[int]) -> bool:
    """Linux resets VmHWM to the current RSS when 5 is written to clear_refs."""
    ok = True
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def machine_info() -> dict:
    meminfo = {line.split(":")[0]: line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()}
    try:
        chromium = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        chromium = None
    import playwright
    import streamlit

    top = subprocess.run(["ps", "-eo", "pcpu,rss,comm", "--sort=-pcpu"], capture_output=True, text=True).stdout
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "mem_total_gib": round(int(meminfo["MemTotal"]) / 2**20, 1),
        "mem_available_gib_before": round(int(meminfo["MemAvailable"]) / 2**20, 1),
        "load_average_before": list(os.getloadavg()),
        "top_processes_before": top.splitlines()[:8],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "streamlit": streamlit.__version__,
        "playwright": getattr(playwright, "__version__", None),
        "chromium": chromium,
    }


# --- the server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log_path: Path, cpus: set[int] | None) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on the shipped model (SER_MODEL unset: models/default), on `cpus` only
    when given (its thread policy then sees those cores as its own)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "SER_MODEL"}
    log = log_path.open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_S
    while True:
        if server.poll() is not None:
            raise SystemExit(f"streamlit exited early; see {log_path}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return server, url
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            raise SystemExit(f"streamlit did not answer within {SERVER_START_S} s; see {log_path}")
        time.sleep(0.5)


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# --- a session ------------------------------------------------------------------------------------


class ActionFailed(Exception):
    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def step_failed(error: Exception) -> str:
    """A Playwright error's first line, the element it was waiting for and the last reason it gave for
    waiting (from its call log: "element is not stable", "… intercepts pointer events", …)."""
    lines = [line.strip() for line in str(error).splitlines()]
    waited = next((line for line in lines if line.startswith("- waiting for")), "")
    found = "(found)" if any(line.startswith("- locator resolved to") for line in lines) else ""
    reasons = [line for line in lines if line.startswith("- ") and not line.startswith(
        ("- waiting", "- locator resolved", "- attempting", "- retrying", "- scrolling", "- done"))]
    return " ".join(filter(None, [lines[0] if lines else repr(error), waited, found,
                                  reasons[-1] if reasons else ""]))[:400]


class Session:
    def __init__(self, index: int, k: int, browser, url: str, started: float, deadline: float, timeout_s: float,
                 record_every: int, record_s: float, actions: list, errors: list):
        self.index, self.k = index, k
        self.browser, self.url = browser, url
        self.started, self.deadline, self.timeout_s = started, deadline, timeout_s
        self.record_every, self.record_s = record_every, record_s
        self.actions, self.errors = actions, errors
        self.rng = random.Random(1000 * k + index)
        self.context = self.page = None
        self.crashed = False
        self.uploaded = False  # a file sits in the Upload page's uploader
        self.received = 0  # bytes the server sent this session over its websocket (the script runs' output)
        self.shots: Path | None = None  # where a failed action's screenshot goes

    async def new_page(self) -> None:
        if self.context is not None:
            try:
                await self.context.close()
            except Exception:  # noqa: BLE001 - a crashed context may refuse; a new one replaces it
                pass
        self.context = await self.browser.new_context(permissions=["microphone"], viewport=VIEWPORT,
                                                      base_url=self.url)
        self.context.set_default_timeout(self.timeout_s * 1000)
        self.page = await self.context.new_page()
        self.crashed = False
        self.page.on("crash", lambda _page: setattr(self, "crashed", True))
        self.page.on("websocket", lambda socket: socket.on("framereceived", self.count_received))
        self.uploaded = False

    def count_received(self, payload: bytes | str) -> None:
        self.received += len(payload)

    async def open(self, path: str, by_url: bool = False) -> None:
        """Go to the page at `path` as a user does: through the sidebar's link once the app is loaded
        (a new script run of that page, without loading the app again), by its URL to start a session
        or to recover one."""
        page = self.page
        link = page.locator(f'[data-testid=stSidebarNavLink][href$="{path}"]')
        if not by_url and await link.count():
            await link.first.click()
            await page.wait_for_url(f"**{path}")
        else:
            await page.goto(path)
        await page.get_by_test_id("stAppViewContainer").wait_for()
        await page.get_by_test_id("stHeading").filter(has_text=path.strip("/").replace("_", " ")).first.wait_for()
        await self.settle()
        self.uploaded = False

    async def settle(self, timeout_s: float | None = None) -> None:
        await self.page.wait_for_timeout(300)  # a rerun the last action triggered has shown its status
        await self.page.get_by_test_id("stStatusWidget").wait_for(
            state="detached", timeout=1000 * (timeout_s or self.timeout_s))

    async def on_page(self, path: str) -> None:
        if self.page.url.rstrip("/") != (self.url + path).rstrip("/"):
            await self.open(path)

    async def wait_for_result(self, started: float) -> tuple[float, float]:
        """Seconds from `started` to the bars drawn and to the run finished; raises ActionFailed."""
        page = self.page
        try:
            handle = await page.wait_for_function(RESULT_JS, polling=100, timeout=self.timeout_s * 1000)
            outcome = await handle.json_value()
        except Exception as error:  # noqa: BLE001
            if self.crashed:
                raise ActionFailed("crash", "the page crashed") from error
            raise ActionFailed("timeout", f"no bars within {self.timeout_s:g} s") from error
        to_bars = time.monotonic() - started
        if outcome != "bars":
            raise ActionFailed("error-element", outcome.removeprefix("error: "))
        left = self.timeout_s - to_bars
        try:
            await page.get_by_test_id("stStatusWidget").wait_for(state="detached", timeout=max(left, 0.1) * 1000)
        except Exception as error:  # noqa: BLE001
            raise ActionFailed("timeout", f"bars after {to_bars:.1f} s, the run still going at "
                                          f"{self.timeout_s:g} s") from error
        to_idle = time.monotonic() - started
        message = await page.evaluate(ERROR_JS)
        if message:
            raise ActionFailed("error-element", message)
        return to_bars, to_idle

    async def upload(self, iteration: int) -> dict:
        await self.on_page("/Upload")
        page = self.page
        if self.uploaded:  # the uploader keeps adding files: remove the last one first
            await page.get_by_test_id("stFileChipDeleteBtn").first.click()
            await page.wait_for_function(BARS_JS + " === 0", polling=100)
            await self.settle()
            self.uploaded = False
        seconds = round(self.rng.uniform(3.0, 8.0), 2)
        seed = 1_000_000 * self.k + 1000 * self.index + iteration
        f0 = self.rng.uniform(90, 260)
        audio = wav_bytes(speech(seconds, f0=f0, level_db=self.rng.uniform(-24, -12), seed=seed))
        name = f"s{self.index}-i{iteration}.wav"
        started = time.monotonic()
        await page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
            {"name": name, "mimeType": "audio/wav", "buffer": audio})
        self.uploaded = True
        to_bars, to_idle = await self.wait_for_result(started)
        return {"audio_s": seconds, "bytes": len(audio), "to_bars_s": to_bars, "to_idle_s": to_idle}

    async def record(self) -> dict:
        await self.open("/Record")  # a fresh Record page: no bars from an earlier recording
        page = self.page
        await page.get_by_role("button", name="Record").click()
        stop = page.get_by_role("button", name="Stop recording")
        await stop.wait_for()
        await page.wait_for_timeout(self.record_s * 1000)
        started = time.monotonic()
        await stop.click()
        to_bars, to_idle = await self.wait_for_result(started)
        return {"audio_s": self.record_s, "to_bars_s": to_bars, "to_idle_s": to_idle}

    async def run(self, start_delay: float) -> None:
        await asyncio.sleep(start_delay)
        try:
            await self.new_page()
            await self.open("/Upload", by_url=True)
        except Exception as error:  # noqa: BLE001
            self.error("open", "session-start", repr(error)[:300], 0)
            await self.new_page()
        iteration = 0
        while time.monotonic() < self.deadline:
            iteration += 1
            kind = "record" if self.record_every and iteration % self.record_every == 0 else "upload"
            began = time.monotonic()
            try:
                row = await (self.record() if kind == "record" else self.upload(iteration))
                self.actions.append({"session": self.index, "iteration": iteration, "kind": kind,
                                     "t_s": round(began - self.started, 2), **row})
            except ActionFailed as failure:
                self.error(kind, failure.kind, failure.detail, iteration)
                await self.recover()
            except Exception as error:  # noqa: BLE001 - a Playwright step (a click, a wait) failed
                kind_of = "crash" if self.crashed else ("timeout" if "Timeout" in type(error).__name__
                                                        else "playwright")
                self.error(kind, kind_of, step_failed(error), iteration)
                await self.recover()

    def error(self, action: str, kind: str, detail: str, iteration: int) -> None:
        self.errors.append({"session": self.index, "iteration": iteration, "action": action,
                            "kind": kind, "detail": detail, "at": round(time.monotonic() - self.started, 2)})
        print(f"  [K={self.k} s{self.index} i{iteration}] {action} {kind}: {detail}", flush=True)

    async def recover(self) -> None:
        if self.shots is not None and not self.crashed:  # what the page showed when the action failed
            try:
                self.shots.mkdir(exist_ok=True)
                await self.page.screenshot(path=self.shots / f"K{self.k}-s{self.index}-{len(self.errors)}.png",
                                           timeout=10_000)
            except Exception:  # noqa: BLE001 - a page too starved to draw is what recovery is for
                pass
        try:
            if self.crashed:
                await self.new_page()
            await self.open("/Upload", by_url=True)
        except Exception:  # noqa: BLE001
            try:
                await self.new_page()
                await self.open("/Upload", by_url=True)
            except Exception as error:  # noqa: BLE001
                self.error("recover", "playwright", step_failed(error), 0)


# --- one K ----------------------------------------------------------------------------------------


async def sample(server_pid: int, stop: asyncio.Event, into: dict) -> None:
    """Every 0.5 s: the server tree's RSS, the machine's 1-min load."""
    while not stop.is_set():
        pids = tree(server_pid)
        rss = sum(status_kib(p, "VmRSS") for p in pids)
        into["rss_peak_kib"] = max(into.get("rss_peak_kib", 0), rss)
        into.setdefault("load1", []).append(os.getloadavg()[0])
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = int(np.floor(position)), int(np.ceil(position))
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": pct(values, 0.5), "p95": pct(values, 0.95),
            "max": max(values) if values else None, "mean": statistics.fmean(values) if values else None}


async def run_k(k: int, duration: float, browser, url: str, server_pid: int, args) -> dict:
    print(f"K={k}: {duration:g} s …", flush=True)
    own = os.getpid()
    server_pids = tree(server_pid)
    hwm_reset = reset_peak_rss(server_pids)
    children = children_map()
    # This process and Playwright's driver (node) are the harness; Chromium's processes the browsers.
    client_pids = [p for p in tree(own, children) if p not in set(tree(server_pid, children))]
    cpu_before = {"server": cpu_by_pid(server_pids), "client": cpu_by_pid(client_pids), "machine": machine_cpu()}
    load_before = os.getloadavg()
    samples: dict = {}
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample(server_pid, stop, samples))
    actions: list = []
    errors: list = []
    started = time.monotonic()
    deadline = started + duration
    sessions = [Session(i, k, browser, url, started, deadline, args.timeout, args.record_every, args.record_seconds,
                        actions, errors) for i in range(k)]
    for session in sessions:
        session.shots = args.error_shots
    # Users do not arrive in lockstep: one every ARRIVAL_S (each first load of the app is the heaviest
    # thing a browser does here, and K of them at once on one core timed out).
    await asyncio.gather(*(s.run(start_delay=ARRIVAL_S * i) for i, s in enumerate(sessions)))
    wall = time.monotonic() - started
    stop.set()
    await sampler
    children = children_map()
    server_pids = tree(server_pid, children)
    client_pids = [p for p in tree(own, children) if p not in set(server_pids)]
    server_cpu = cpu_since(cpu_before["server"], server_pids)
    # Measured before the contexts close: their renderer processes end with them.
    chromium = [p for p in client_pids if is_chromium(p)]
    browser_cpu = cpu_since(cpu_before["client"], chromium)
    roles: dict[str, list[int]] = {}
    for pid in chromium:
        roles.setdefault(chromium_role(pid), []).append(pid)
    browser_cpu_by_role = {role: round(cpu_since(cpu_before["client"], pids), 1) for role, pids in sorted(roles.items())}
    harness_cpu = cpu_since(cpu_before["client"], [p for p in client_pids if not is_chromium(p)])
    busy, total = machine_cpu()
    machine_busy = (busy - cpu_before["machine"][0]) / max(total - cpu_before["machine"][1], 1)
    hwm = sum(status_kib(p, "VmHWM") for p in server_pids)
    for session in sessions:
        try:
            await session.context.close()
        except Exception:  # noqa: BLE001
            pass
    to_bars = [a["to_bars_s"] for a in actions]
    result = {
        "sessions": k,
        "duration_s": duration,
        "wall_s": round(wall, 1),
        "actions": len(actions),
        "uploads": sum(a["kind"] == "upload" for a in actions),
        "recordings": sum(a["kind"] == "record" for a in actions),
        "errors": len(errors),
        "errors_by_kind": {kind: sum(e["kind"] == kind for e in errors) for kind in {e["kind"] for e in errors}},
        "actions_per_min": round(60 * len(actions) / wall, 1),
        "to_bars_s": summary(to_bars),
        # A session's first result loads the code of Streamlit's elements it shows (the audio player,
        # the download buttons) into its new browser context.
        "to_bars_after_first_s": summary([a["to_bars_s"] for a in actions if a["iteration"] > 1]),
        "to_bars_upload_s": summary([a["to_bars_s"] for a in actions if a["kind"] == "upload"]),
        "to_bars_record_s": summary([a["to_bars_s"] for a in actions if a["kind"] == "record"]),
        "to_idle_s": summary([a["to_idle_s"] for a in actions]),
        "server_peak_rss_mib": round(hwm / 1024, 1) if hwm_reset else None,
        "server_peak_rss_sampled_mib": round(samples.get("rss_peak_kib", 0) / 1024, 1),
        "server_peak_rss_since_start_mib": None if hwm_reset else round(hwm / 1024, 1),
        "server_cpu_s": round(server_cpu, 1),
        "server_cpu_s_per_action": round(server_cpu / len(actions), 2) if actions else None,
        "server_cpu_cores_used": round(server_cpu / wall, 2),
        # Everything the sessions' websockets carried, page opens and reruns included.
        "server_sent_kib_per_action": round(sum(s.received for s in sessions) / 1024 / len(actions), 1) if actions else None,
        "browser_cpu_cores_used": round(browser_cpu / wall, 2),
        "browser_cpu_s_per_action": round(browser_cpu / len(actions), 2) if actions else None,
        # Where the browser core goes: the pages (one renderer per session), the compositor (the GPU
        # process, software here), the browser process, the audio service (the fake microphone).
        "browser_cpu_s_by_process": browser_cpu_by_role,
        "harness_cpu_cores_used": round(harness_cpu / wall, 2),
        "machine_busy_fraction": round(machine_busy, 3),
        "load_average_before": list(load_before),
        "load1_max": max(samples.get("load1", [0])),
        "load1_mean": round(statistics.fmean(samples["load1"]), 2) if samples.get("load1") else None,
        "error_list": errors,
        "action_list": [{**a, "to_bars_s": round(a["to_bars_s"], 3), "to_idle_s": round(a["to_idle_s"], 3)}
                        for a in actions],
    }
    b = result["to_bars_s"]
    print(f"K={k}: {len(actions)} actions, {len(errors)} errors, to-bars p50 {fmt(b['p50'])} "
          f"p95 {fmt(b['p95'])} max {fmt(b['max'])} s, server peak RSS "
          f"{result['server_peak_rss_mib'] or result['server_peak_rss_sampled_mib']} MiB, "
          f"server {result['server_cpu_cores_used']} cores, machine busy {machine_busy:.0%}", flush=True)
    return result


async def warm_up(browser, url: str, timeout_s: float) -> float:
    """The first visit loads the model (st.cache_resource): pay it before anything is timed."""
    started = time.monotonic()
    session = Session(0, 0, browser, url, started, started + 1, max(timeout_s, 180), 0, 3.0, [], [])
    await session.new_page()
    await session.open("/Upload", by_url=True)
    await session.upload(0)
    await session.context.close()
    return time.monotonic() - started


# --- probe: the server-side work of one action, alone -----------------------------------------------

PROBE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import pylibsrtp  # noqa: F401  (the app imports it before TensorFlow; keep the same order)
from ser_core.frontend.features import extract
from ser_core.io.signals import speech, wav_bytes
from ser_core.serving.inference import load_model
from ser_core.serving.results import speaking_time_shares
from ser_core.ui import plots
import numpy as np
model = load_model(sys.argv[2])
_, f = extract(np.zeros(model.params.window_samples, dtype=np.float32), model.params)
model.predict_features(f)
out = {}
for seconds in (3.0, 5.5, 8.0):
    analyse, draw = [], []
    for rep in range(3):
        audio = wav_bytes(speech(seconds, seed=rep + int(seconds * 10)))
        t0 = time.perf_counter()
        a = model.analyze(audio)
        t1 = time.perf_counter()
        # The figures the page draws unasked (the signal's three and the window timeline are behind
        # switches; a one-utterance clip has no segment timeline)
        plots.emotion_bars(a.probabilities)
        if a.segments and len(a.segments) > 1:
            plots.segment_timeline(a.audio.samples, a.audio.sample_rate, a.segments)
            plots.emotion_bars(speaking_time_shares(a.segments, a.labels))
        t2 = time.perf_counter()
        analyse.append(t1 - t0); draw.append(t2 - t1)
    out[f"{seconds:g}s"] = {"analyze_s": round(min(analyse), 3), "figures_s": round(min(draw), 3)}
print(json.dumps(out))
"""


def probe(model_dir: Path) -> dict | None:
    """The server-side work of one action without contention: analyze + the page's figures to JSON."""
    try:
        done = subprocess.run([sys.executable, "-c", PROBE, str(ROOT), str(model_dir)], capture_output=True,
                              text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        return json.loads(done.stdout.strip().splitlines()[-1])
    except Exception as error:  # noqa: BLE001 - the probe is context, not the measurement
        return {"error": repr(error)[:300]}


# --- report ---------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def pinning(config: dict) -> str:
    if not config.get("server_cpus") and not config.get("browser_cpus"):
        return "server and browsers unpinned (sharing every core)"
    return (f"server on CPU {','.join(map(str, config['server_cpus'])) or 'any'}, this harness with Playwright and "
            f"Chromium on CPU {','.join(map(str, config['browser_cpus'])) or 'any'} (taskset -c)")


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"# Load test: K Chromium sessions against one `streamlit run app.py` "
        f"(`{report['provenance']['models'][0]['name']}`, models/default)",
        "",
        f"{report['started_utc']} · {m['cpu_count']} CPUs ({m['cpu_model']}), {m['mem_total_gib']} GiB · "
        f"load average before {', '.join(f'{v:.2f}' for v in m['load_average_before'])} · "
        f"Streamlit {m['streamlit']}, {m['chromium']}",
        "",
        f"Commit {report['provenance']['commit'][:12]}{' (modified)' if report['provenance']['dirty'] else ''} · "
        f"model {report['provenance']['models'][0]['name']}, LiteRT sha256 "
        f"{report['provenance']['models'][0]['litert_sha256'][:16]}… · " + pinning(report['config']),
        "",
        "Each session loops: upload a generated 3–8 s voice WAV on Upload (new content each time), every "
        f"{report['config']['record_every']}th action record {report['config']['record_seconds']:g} s from the "
        "fake microphone on Record instead. Time-to-bars: from set_input_files / the stop click to the eight HTML "
        "emotion bars drawn; time-to-idle: to the run finished (status widget gone). "
        f"Errors: exception or error alert, no bars within {report['config']['timeout_s']:g} s, page crash.",
        "",
        "| K | duration s | actions (upload/record) | errors | to-bars p50 s | p95 s | max s "
        "| p95 s after each session's first | to-idle p50 s "
        "| server peak RSS MiB | server CPU s/action | server cores | server sent KiB/action "
        "| browser CPU s/action | browser cores | harness cores | machine busy | load1 mean |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        b = r["to_bars_s"]
        rss = r["server_peak_rss_mib"] if r["server_peak_rss_mib"] is not None else r["server_peak_rss_sampled_mib"]
        lines.append(
            f"| {r['sessions']} | {r['duration_s']:g} | {r['actions']} ({r['uploads']}/{r['recordings']}) "
            f"| {r['errors']} | {fmt(b['p50'])} | {fmt(b['p95'])} | {fmt(b['max'])} "
            f"| {fmt(r['to_bars_after_first_s']['p95'])} | {fmt(r['to_idle_s']['p50'])} "
            f"| {rss:.0f} | {fmt(r['server_cpu_s_per_action'])} | {r['server_cpu_cores_used']:.2f} "
            f"| {fmt(r.get('server_sent_kib_per_action'), 1)} "
            f"| {fmt(r.get('browser_cpu_s_per_action'))} | {r['browser_cpu_cores_used']:.2f} "
            f"| {fmt(r.get('harness_cpu_cores_used'))} | {r['machine_busy_fraction']:.0%} | {fmt(r['load1_mean'])} |")
    split = [r for r in report["results"] if r.get("browser_cpu_s_by_process")]
    if split:
        lines += ["", "Browser CPU by Chromium process, s per action: " + "; ".join(
            f"K={r['sessions']} " + ", ".join(f"{role} {seconds / max(r['actions'], 1):.2f}"
                                               for role, seconds in r["browser_cpu_s_by_process"].items())
            for r in split)]
    errors = [(r["sessions"], e) for r in report["results"] for e in r["error_list"]]
    if errors:
        lines += ["", "Errors:", ""]
        lines += [f"- K={k}, session {e['session']}, {e['action']}: {e['kind']} — {e['detail']}" for k, e in errors[:30]]
    if report.get("probe"):
        lines += ["", "One action's server-side work alone (min of 3, this machine, before the runs): "
                  + "; ".join(f"{k}: analyze {v['analyze_s']:.2f} s + figures {v['figures_s']:.2f} s"
                              for k, v in report["probe"].items() if isinstance(v, dict))]
    lines += ["", f"Warm-up (model load + first upload, not timed above): {report['warm_up_s']:.1f} s.",
              "", f"    {report['command']}", ""]
    return "\n".join(lines)


async def main_async(args) -> dict:
    from playwright.async_api import async_playwright

    durations = args.duration if len(args.duration) == len(args.sessions) else args.duration[:1] * len(args.sessions)
    if len(args.duration) not in (1, len(args.sessions)):
        raise SystemExit("--duration takes one value, or one per --sessions value")
    info = machine_info()
    print(f"{info['cpu_count']} CPUs, load average {info['load_average_before']}", flush=True)
    report = {
        "provenance": provenance(ROOT / "models" / "default"),
        "started_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python " + " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
        "machine": info,
        "config": {"sessions": args.sessions, "durations_s": durations, "timeout_s": args.timeout,
                   "record_every": args.record_every, "record_seconds": args.record_seconds,
                   "model": "models/default", "upload_audio_s": [3.0, 8.0],
                   "server_cpus": sorted(args.server_cpus or []), "browser_cpus": sorted(args.browser_cpus or [])},
    }
    if not args.no_probe:
        print("probe: one action's server-side work alone …", flush=True)
        report["probe"] = probe(ROOT / "models" / "default")
        print(f"probe: {report['probe']}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="ser-load-"))
    microphone = work / "voice.wav"
    microphone.write_bytes(wav_bytes(speech(6.0, level_db=-15.0)))
    log_path = work / "streamlit.log"
    args.error_shots = work / "errors"
    report["error_screenshots"] = str(args.error_shots)
    server_started = time.monotonic()
    server, url = start_server(log_path, args.server_cpus)
    if args.browser_cpus:  # Playwright's driver and Chromium inherit this process's CPUs
        os.sched_setaffinity(0, args.browser_cpus)
    report["server_start_s"] = round(time.monotonic() - server_started, 1)
    report["server_log"] = str(log_path)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update", "--disable-sync",
                      "--disable-dev-shm-usage", "--use-fake-ui-for-media-stream",
                      "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={microphone}"],
            )
            report["warm_up_s"] = round(await warm_up(browser, url, args.timeout), 1)
            print(f"warm-up {report['warm_up_s']} s", flush=True)
            report["results"] = []
            for k, duration in zip(args.sessions, durations):
                report["results"].append(await run_k(k, duration, browser, url, server.pid, args))
                await asyncio.sleep(3)  # let the server drop the closed sessions
            await browser.close()
    finally:
        report["server_peak_rss_lifetime_mib"] = round(
            sum(status_kib(p, "VmHWM") for p in tree(server.pid)) / 1024, 1)
        stop_server(server)
    report["machine"]["load_average_after"] = list(os.getloadavg())
    return report


def cpu_set(text: str) -> set[int]:
    """'0', '0,2' or '1-3' → the CPU numbers; '' → none (no pinning)."""
    cpus: set[int] = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--duration", type=float, nargs="+", default=[120.0],
                        help="seconds per K: one value for all, or one per --sessions value")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load_test.json")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds an action may take to bars")
    parser.add_argument("--record-every", type=int, default=4, help="every Nth action records instead (0: never)")
    parser.add_argument("--record-seconds", type=float, default=3.0)
    parser.add_argument("--no-probe", action="store_true", help="skip timing one action's server work alone")
    parser.add_argument("--server-cpus", type=cpu_set, default=cpu_set("1"),
                        help="CPUs the server runs on, as taskset -c takes them (default 1; '' for any)")
    parser.add_argument("--browser-cpus", type=cpu_set, default=cpu_set("0"),
                        help="CPUs this harness, Playwright and Chromium run on (default 0; '' for any)")
    args = parser.parse_args()
    available = os.sched_getaffinity(0)
    for name, cpus in (("--server-cpus", args.server_cpus), ("--browser-cpus", args.browser_cpus)):
        if cpus and not cpus <= available:
            raise SystemExit(f"{name} {sorted(cpus)}: this machine offers CPUs {sorted(available)} (pass '' to pin nothing)")
    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    report = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    args.out.with_suffix(".md").write_text(table)
    print()
    print(table)


if __name__ == "__main__":
    main()
