"""Replay the attacks of issue 19 against a real server with default settings (its done-means).

Starts ``streamlit run app.py`` exactly as a deployment with nothing configured would (no
secrets, no ``ALCORE_MAX_*`` variables), with its own temporary folder (``TMPDIR``: uploads go to
``<tmp>/alcore-uploads``), runs folder (``ALCORE_RUNS_DIR``) and cache folder (``ALCORE_CACHE_DIR``),
and drives it from headless Chromium through each attack of the issue, one after another:

1. ``/run?seeds=3&model=mlp``, Start (it used to crash with StreamlitDuplicateElementId): raced for
   ``--race-seconds``, then Stop; the server's CPU 10 s after Stop. The same race with the tab
   closed mid-race instead: the CPU 10 s after the tab closed.
2. Memory: ``/model?model=mlp&hidden_units=16384,16384``; a forged result file on Replay (a real
   digits run whose config says mlp 12000x12000: "Why this image?" would retrain it); a 668 KB
   .npz of deflated zeros declaring 686 million values (and a large test split); a 17 KB .npz of
   2 000 classes; a 63.9 MB JSON on Compare.
3. CPU: ``/run?model=cnn&filters=512&validation=none&max_epochs=10000&train_batch_size=1&rounds=1``,
   Start then Stop, and Start then close the tab; four visitors starting the 3-seed mlp race at
   once, all tabs closed after ``--race-seconds``.
4. A link racing all 13 non-Bayesian strategies x 20 seeds.
5. Disk: three 95 MB junk uploads (two .npz, one .zip); a killed save's temporary file left in a
   saved race's folder, then a race started.
6. Another visitor's data: a result file edited to name another session's upload, opened on
   Replay; the ``?run=<id>`` of another session's race.
7. Low: a 15 KB .npz of 100 000 classes; a 12 KB junk query string; ``pool_size=999999999``.

A thread samples the server's process tree every 0.25 s: resident memory (psutil, else /proc)
and CPU seconds. For each attack the table gives what the page said (the first line of every
st.error / st.warning, and an uploader's own refusal), whether anything went wrong (an
``stException`` element, "Traceback" on the page or in the server's log), the peak RSS while it
ran, the cores the server kept busy in the 2 s ending 10 s after Stop or the tab closing, and the
bytes of uploads and temporary files on disk once its tabs were closed. At the end every session
is closed and the server watched for ``--settle`` seconds (another visitor arriving every 15 s, as
Streamlit drops closed sessions when its session storage is used): when RSS fell under 1.3 GB and
what was left on disk.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.attack_replay [--only NAME ...] [--json out.json]

``--race-seconds`` (default 90) is how long the mlp races run before Stop (a tab closes after at
most 30, the four visitors leave after at most 60), ``--cnn-seconds`` (default 10) how long the cnn
link computes before Stop or the tab closing, ``--settle`` (default 200) the most seconds the server
is watched at the end. ``--list`` names the attacks. Needs Chromium at /usr/bin/chromium and the playwright package.
Numbers depend on the machine and its load (printed with the table).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from tests.e2e.appserver import (CHROMIUM, CHROMIUM_ARGS, IDLE, free_port, server_command,  # noqa: E402
                                 start_server, stop_server, wait_healthy, wait_idle)

from bench.dashboard_memory import descendants, proc_status  # noqa: E402

PAGE_MS = 120_000
SAMPLE_S = 0.25
RSS_TARGET_MB, RSS_BACK_MB = 2048, 1300  # the targets: under 2 GB throughout, back under 1.3 GB
IDLE_CORES = 0.1  # a server keeping less than a tenth of a core busy is idle
MLP_RACE = "/run?seeds=3&model=mlp"
CNN_LINK = "/run?model=cnn&filters=512&validation=none&max_epochs=10000&train_batch_size=1&rounds=1"
QUICK_RACE = "/run?rounds=2"
NON_BAYESIAN = ["random", "least_confidence", "margin", "ratio", "entropy", "hybrid", "kmeans", "coreset", "badge",
                "margin_cluster", "typiclust", "probcover", "maxherding"]  # 13 strategies


# ----------------------------------------------------------------------------- the server

class Sampler(threading.Thread):
    """RSS (kB) and CPU seconds of the server and its children (their unique pages, with psutil),
    every SAMPLE_S seconds."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self._halt = pid, threading.Event()
        self.samples: list[tuple[float, int, float]] = []  # (monotonic time, kB, CPU seconds so far)
        try:
            import psutil
            self._root = psutil.Process(pid)
        except ImportError:
            self._root = None

    def read(self) -> tuple[int, float]:
        if self._root is not None:
            import psutil
            kb, cpu = 0, 0.0
            for p in [self._root, *self._root.children(recursive=True)]:
                try:
                    # a child counts by its own pages (USS): one just forked shares all the server's,
                    # and its RSS would count them twice
                    kb += (p.memory_info().rss if p is self._root else p.memory_full_info().uss) // 1024
                    t = p.cpu_times()
                    cpu += t.user + t.system
                except psutil.Error:
                    pass
            return kb, cpu
        from tests.e2e.test_cancel_e2e import cpu_seconds  # user + system time from /proc/<pid>/stat

        kb, cpu = 0, 0.0
        for p in [self.pid, *descendants(self.pid)]:
            kb += proc_status(p).get("VmRSS", 0)
            try:
                cpu += cpu_seconds(p)
            except (FileNotFoundError, ProcessLookupError):
                pass
        return kb, cpu

    def run(self):
        while not self._halt.is_set():
            kb, cpu = self.read()
            self.samples.append((time.monotonic(), kb, cpu))
            self._halt.wait(SAMPLE_S)

    def stop(self):
        self._halt.set()
        self.join(timeout=5)

    def peak_mb(self, t0: float, t1: float | None = None) -> float:
        t1 = time.monotonic() if t1 is None else t1
        return max((kb for t, kb, _ in self.samples if t0 <= t <= t1), default=0) / 1024

    def rss_mb(self) -> float:
        return self.read()[0] / 1024

    def cores(self, t0: float, t1: float) -> float:
        """CPU seconds per second between t0 and t1, from the samples nearest them."""
        inside = [(t, cpu) for t, _, cpu in self.samples if t0 - SAMPLE_S <= t <= t1 + SAMPLE_S]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return float("nan")
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    def cpu_after(self, event: float, at: float = 10.0, window: float = 2.0) -> tuple[float, float | None]:
        """(cores busy in the ``window`` s ending ``at`` s after ``event``, seconds after ``event``
        until the first 1-s window under IDLE_CORES or None); waits until ``at`` has passed."""
        while time.monotonic() < event + at + SAMPLE_S * 2:
            time.sleep(SAMPLE_S)  # a measurement window, not a wait for the UI
        idle_after = None
        t = event
        while t + 1 <= event + at:
            if self.cores(t, t + 1) < IDLE_CORES:
                idle_after = t + 1 - event
                break
            t += SAMPLE_S
        return self.cores(event + at - window, event + at), idle_after


@dataclass
class Record:
    """What one attack showed and cost."""
    name: str
    item: str  # the item
    what: str
    messages: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    peak_mb: float = 0.0
    start_mb: float = 0.0  # the server's RSS as the attack began
    peak_at_s: float | None = None  # seconds into the attack
    cpu_after_stop: float | None = None
    idle_after_stop_s: float | None = None
    cpu_after_close: float | None = None
    idle_after_close_s: float | None = None
    uploads_bytes: int = 0
    temp_bytes: int = 0
    seconds: float = 0.0
    window: tuple[float, float] = (0.0, 0.0)  # seconds since the server was healthy


class Bench:
    """The server, the browser and the folders the attacks share."""

    def __init__(self, browser, expect, root: Path, race_seconds: float, cnn_seconds: float = 10):
        self.browser, self.expect, self.root, self.race_seconds = browser, expect, root, race_seconds
        self.cnn_seconds = cnn_seconds
        self.tmp, self.runs, self.cache, self.files = root / "tmp", root / "runs", root / "cache", root / "files"
        for d in (self.tmp, self.runs, self.cache, self.files):
            d.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://localhost:{self.port}"
        self.log = root / "server.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ALCORE_")}  # default settings
        self.env.update(TMPDIR=str(self.tmp), ALCORE_RUNS_DIR=str(self.runs), ALCORE_CACHE_DIR=str(self.cache),
                        XDG_CACHE_HOME=str(self.cache), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        self.proc = start_server(self.port, self.log, self.env)
        wait_healthy(self.proc, self.base, 120, self.log)
        self.sampler = Sampler(self.proc.pid)
        self.sampler.start()
        self.contexts: list = []
        self.record: Record | None = None

    @property
    def uploads(self) -> Path:
        return self.tmp / "alcore-uploads"

    def stop(self) -> None:
        self.sampler.stop()
        stop_server(self.proc)

    # ------------------------------------------------------------------ browsing

    def visitor(self):
        """A new browser context (its own cookie, so its own Streamlit session) and its page."""
        ctx = self.browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        self.contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(PAGE_MS)
        return ctx, page

    def close(self, ctx) -> float:
        ctx.close()
        if ctx in self.contexts:
            self.contexts.remove(ctx)
        return time.monotonic()

    def open(self, page, path: str, heading: str | None = None) -> None:
        page.goto(self.base + path)
        self.expect(page.get_by_test_id("stSidebarNav")).to_be_visible(timeout=PAGE_MS)
        if heading:
            self.expect(page.get_by_role("heading", name=heading, exact=True).first).to_be_visible(timeout=PAGE_MS)
        wait_idle(page, PAGE_MS)

    def nav(self, page, title: str) -> None:
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
        self.expect(page.get_by_role("heading", name=title, exact=True).first).to_be_visible(timeout=PAGE_MS)
        wait_idle(page, PAGE_MS)

    def settled(self, page) -> None:
        """The script run a click or an upload started has ended (it may take a moment to begin)."""
        try:
            page.wait_for_selector("[data-testid='stApp'][data-test-script-state='running']", timeout=3000)
        except Exception:
            pass  # already over, or answered without a script run
        wait_idle(page, PAGE_MS)

    def upload_to_dataset(self, page, path: Path) -> None:
        """Upload on the Dataset page; return once it is refused (named in an error) or loaded."""
        self.upload(page, path)
        refused = page.get_by_test_id("stAlertContentError").filter(has_text=path.name)
        loaded = page.get_by_test_id("stMetric").filter(has_text="Pool images")
        self.expect(refused.or_(loaded).first).to_be_visible(timeout=PAGE_MS)
        wait_idle(page, PAGE_MS)

    def upload(self, page, path: Path, uploader=None) -> None:
        box = uploader if uploader is not None else page.get_by_test_id("stFileUploader").first
        box.locator("input[type=file]").set_input_files(str(path))
        # the file is listed once the browser has it (a large one takes seconds to send)
        # (by the start of its name: the uploader shortens a long one in the middle)
        self.expect(box.get_by_text(re.compile("^" + re.escape(path.name[:6]))).first).to_be_visible(timeout=PAGE_MS)
        self.settled(page)

    UPLOADERS = {"Upload a .npz": "Your .npz", "Upload a .zip of images": "Your images: a .zip"}

    def choose_dataset(self, page, name: str) -> None:
        """Choose a dataset source; return once its uploader is drawn (the page before the choice
        may still show another uploader for a moment)."""
        page.get_by_role("combobox", name="Dataset").click()
        page.get_by_role("option", name=name, exact=True).click()
        self.settled(page)
        if name in self.UPLOADERS:
            self.expect(self.uploader(page)).to_contain_text(self.UPLOADERS[name], timeout=PAGE_MS)

    def uploader(self, page):
        return page.get_by_test_id("stFileUploader").first

    def start(self, page) -> None:
        page.get_by_role("button", name="Start", exact=True).click()
        time.sleep(0.5)  # Start's own rerun begins; what it shows is read below

    def started(self, page, timeout_s: float = 60) -> bool:
        """After Start: True once the race computes (Stop enabled), False once the click's run
        ended without one (refused: the reason is on the page)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.running(page):
                return True
            if page.locator(IDLE).count() and page.get_by_test_id("stAlertContentError").count():
                return False
            time.sleep(0.25)  # polling the page's state
        return self.running(page)

    def running(self, page) -> bool:
        stop = page.get_by_role("button", name="Stop", exact=True)
        return stop.count() > 0 and stop.is_enabled()

    def race_for(self, page, seconds: float) -> str:
        """Let a race run ``seconds`` (or to its end); the progress text then."""
        t0 = time.monotonic()
        finished = page.get_by_text("Race finished").first
        while time.monotonic() - t0 < seconds and not finished.is_visible():
            self.check(page)
            time.sleep(1.0)  # polling the page for an error while the race runs
        bar = page.get_by_test_id("stProgress")
        return bar.first.inner_text().strip() if bar.count() else ""

    # ------------------------------------------------------------------ what a page showed

    def check(self, page) -> None:
        """Record the page's errors and warnings (first line of each), and flag a traceback."""
        rec = self.record
        try:
            for kind in ("Error", "Warning"):
                for el in page.locator(f"[data-testid='stAlertContent{kind}']").all():
                    line = first_line(el.inner_text())
                    if line and f"{kind.lower()}: {line}" not in rec.messages:
                        rec.messages.append(f"{kind.lower()}: {line}")
            for el in page.get_by_test_id("stFileUploader").all():  # the uploader's own refusal (too large)
                for line in el.inner_text().splitlines():
                    if re.search(r"must be|too large|not allowed|error", line, re.I) and \
                            f"uploader: {line.strip()}" not in rec.messages:
                        rec.messages.append(f"uploader: {line.strip()}")
            n = page.get_by_test_id("stException").count()
            if n and "stException shown" not in rec.failures:
                rec.failures.append("stException shown")
                rec.messages.append("exception: " + first_line(page.get_by_test_id("stException").first.inner_text()))
            if "Traceback" in page.locator("body").inner_text() and "Traceback on the page" not in rec.failures:
                rec.failures.append("Traceback on the page")
        except Exception as e:  # a closed page: nothing more to read
            if "closed" not in str(e).lower():
                raise

    def fail(self, what: str) -> None:
        if what not in self.record.failures:
            self.record.failures.append(what)

    def note(self, what: str) -> None:
        self.record.notes.append(what)

    # ------------------------------------------------------------------ disk

    def disk(self) -> tuple[int, int]:
        """(bytes in the upload folder, bytes of temporary files: everything else in the server's
        temp folder, and `.tmp` files of killed saves in the runs folder)."""
        ups = folder_bytes(self.uploads)
        temp = sum(p.stat().st_size for p in self.tmp.rglob("*") if p.is_file() and self.uploads not in p.parents)
        temp += sum(p.stat().st_size for p in self.runs.rglob("*.tmp") if p.is_file())
        return ups, temp

    def temp_files(self) -> list[str]:
        found = [p for p in self.tmp.rglob("*") if p.is_file() and self.uploads not in p.parents]
        return [str(p.relative_to(self.root)) for p in found + list(self.runs.rglob("*.tmp"))]


def first_line(text: str) -> str:
    """The first line of an alert that says something (Material icons render as their names)."""
    for line in text.replace("\u2060", "").splitlines():  # plain() joins words to their colons
        line = line.strip()
        if line and not re.fullmatch(r"[a-z_]+", line):
            return line[:240]
    return ""


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


# ----------------------------------------------------------------------------- hostile files

def digits_result(**config) -> dict:
    """A real result file of a small digits race (softmax: fast, no TensorFlow), as downloaded."""
    from alcore import Experiment, ExperimentConfig
    from alcore.results.records import to_json, without_server_paths

    exp = Experiment(ExperimentConfig(model="softmax", rounds=3, **config))
    for _ in exp:
        pass
    return json.loads(to_json(without_server_paths(exp.result())))


def forged_mlp_result(path: Path) -> Path:
    """The issue's 27 KB Replay file: a real run whose config says an mlp of 12000 x 12000."""
    raw = digits_result()
    raw["config"].update(model="mlp", hidden_units=[12000, 12000])
    path.write_text(json.dumps(raw))
    return path


def big_json(path: Path, mb: float = 63.9) -> Path:
    """A valid result file padded with repeated rounds to ``mb`` megabytes."""
    raw = digits_result()
    rounds, size = raw["rounds"], len(json.dumps(raw))
    one = len(json.dumps(rounds[-1])) + 2
    raw["rounds"] = rounds + [rounds[-1]] * int((mb * 2**20 - size) / one)
    text = json.dumps(raw)
    path.write_text(text + " " * max(0, int(mb * 2**20) - len(text)))
    return path


def zeros_npz(path: Path, x_shape=(486_000, 25, 40), test_shape=(200_000, 25, 40)) -> Path:
    """The issue's 668 KB .npz: deflated zeros whose arrays unpack to 686 million values (and a
    large test split), written in chunks (never held in memory here)."""
    from numpy.lib import format as npformat

    def member(zf, name, shape, dtype="|u1"):
        with zf.open(name, "w", force_zip64=True) as f:
            npformat.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})
            left, chunk = int(np.prod(shape)) * np.dtype(dtype).itemsize, bytes(2**24)
            while left > 0:
                f.write(chunk[:min(left, len(chunk))])
                left -= len(chunk)

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        member(zf, "x_train.npy", x_shape)
        member(zf, "y_train.npy", x_shape[:1])
        member(zf, "x_test.npy", test_shape)
        member(zf, "y_test.npy", test_shape[:1])
    return path


def junk(path: Path, mb: int = 95) -> Path:
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(2**20))
    return path


def junk_zip(path: Path, mb: int = 95) -> Path:
    """A .zip of 95 MB of random bytes in files that are no images."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(mb):
            zf.writestr(f"notes/part{i:03d}.bin", os.urandom(2**20))
    return path


def attack_npz(name: str, vector: str, files: Path) -> Path:
    """tests/test_fuzz.py's files of the attacker's pass ("2 000 classes", "100 000 classes")."""
    from test_fuzz import _attack_npz

    made = _attack_npz(files, vector)
    return made.rename(files / name)


def user_npz(path: Path) -> Path:
    from conftest import npz_with_classes

    path.write_bytes(npz_with_classes(["ant", "bee", "cat"], n=90))
    return path


# ----------------------------------------------------------------------------- the attacks

def seeds3_mlp_stop(b: Bench) -> None:
    """Issue 1 (and CPU after Stop): the 3-seed mlp race, raced, then stopped."""
    ctx, page = b.visitor()
    b.open(page, MLP_RACE, "Run")
    b.start(page)
    b.note(b.race_for(page, b.race_seconds))
    if b.running(page):
        page.get_by_role("button", name="Stop", exact=True).click()
        stopped = time.monotonic()
        b.expect(page.get_by_role("button", name="Continue", exact=True)).to_be_enabled(timeout=PAGE_MS)
        wait_idle(page, PAGE_MS)
        b.record.cpu_after_stop, b.record.idle_after_stop_s = b.sampler.cpu_after(stopped)
    b.check(page)
    b.close(ctx)


def seeds3_mlp_close(b: Bench) -> None:
    """CPU after a tab closed mid-race: the 3-seed mlp race."""
    ctx, page = b.visitor()
    b.open(page, MLP_RACE, "Run")
    b.start(page)
    b.note(b.race_for(page, min(b.race_seconds, 30)))
    if not b.running(page):
        b.fail("the race was not running when the tab closed")
    b.check(page)
    closed = b.close(ctx)
    b.record.cpu_after_close, b.record.idle_after_close_s = b.sampler.cpu_after(closed)


def model_16384(b: Bench) -> None:
    ctx, page = b.visitor()
    b.open(page, "/model?model=mlp&hidden_units=16384,16384", "Model")
    b.check(page)
    b.close(ctx)


def replay_forged_mlp(b: Bench) -> None:
    path = forged_mlp_result(b.files / "forged_mlp.json")
    b.note(f"{path.stat().st_size / 1024:.0f} KB")
    ctx, page = b.visitor()
    b.open(page, "/replay", "Replay")
    b.upload(page, path)
    b.expect(page.get_by_role("heading", name="Why this image?")).to_be_visible(timeout=PAGE_MS)
    wait_idle(page, PAGE_MS)
    b.check(page)
    b.close(ctx)


def _dataset_upload(b: Bench, path: Path, source: str = "Upload a .npz") -> None:
    b.note(f"{path.stat().st_size / 1024:,.0f} KB")
    ctx, page = b.visitor()
    b.open(page, "/", "Dataset")
    b.choose_dataset(page, source)
    b.upload_to_dataset(page, path)
    b.check(page)
    b.close(ctx)


def npz_686m(b: Bench) -> None:
    _dataset_upload(b, zeros_npz(b.files / "zeros_686M.npz"))


def npz_2000_classes(b: Bench) -> None:
    _dataset_upload(b, attack_npz("classes_2000.npz", "2 000 classes", b.files))


def compare_64mb_json(b: Bench) -> None:
    path = big_json(b.files / "huge.json")
    b.note(f"{path.stat().st_size / 2**20:.1f} MB")
    ctx, page = b.visitor()
    b.open(page, "/compare", "Compare")
    b.upload(page, path)
    b.check(page)
    page.get_by_role("combobox").first.click()  # another widget: a rerun must not parse it again
    page.keyboard.press("Escape")
    b.settled(page)
    b.check(page)
    b.close(ctx)


def _cnn(b: Bench, then: str) -> None:
    ctx, page = b.visitor()
    b.open(page, CNN_LINK, "Run")
    b.start(page)
    started = b.started(page)
    b.check(page)
    if not started:
        b.note("the race did not start")
        event = b.close(ctx)
    else:
        b.note(b.race_for(page, b.cnn_seconds))  # the round computes
        if then == "stop":
            page.get_by_role("button", name="Stop", exact=True).click()
            event = time.monotonic()
            b.expect(page.get_by_role("button", name="Continue", exact=True)).to_be_enabled(timeout=PAGE_MS)
            wait_idle(page, PAGE_MS)
            b.check(page)
            b.close(ctx)
        else:
            event = b.close(ctx)
    cores, idle = b.sampler.cpu_after(event)
    if then == "stop":
        b.record.cpu_after_stop, b.record.idle_after_stop_s = cores, idle
    else:
        b.record.cpu_after_close, b.record.idle_after_close_s = cores, idle


def cnn_stop(b: Bench) -> None:
    _cnn(b, "stop")


def cnn_close(b: Bench) -> None:
    _cnn(b, "close")


def four_visitors(b: Bench) -> None:
    """Four visitors start the 3-seed mlp race at once; all leave after --race-seconds."""
    pages = [b.visitor() for _ in range(4)]
    for _, page in pages:
        b.open(page, MLP_RACE, "Run")
    for _, page in pages:
        page.get_by_role("button", name="Start", exact=True).click()
    time.sleep(min(b.race_seconds, 60))  # the races compute
    running = 0
    for _, page in pages:
        b.check(page)
        running += b.running(page)
    b.note(f"{running} of 4 racing")
    for ctx, _ in pages:
        closed = b.close(ctx)
    b.record.cpu_after_close, b.record.idle_after_close_s = b.sampler.cpu_after(closed)


def race_13x20(b: Bench) -> None:
    link = "/run?" + "&".join(f"strategies={s}" for s in NON_BAYESIAN) + "&seeds=20"
    ctx, page = b.visitor()
    b.open(page, link, "Run")
    b.check(page)
    b.note(page.get_by_test_id("stMain").get_by_test_id("stMarkdown").first.inner_text().split("·")[-1].strip())
    b.start(page)
    if b.started(page):
        b.note("raced: " + b.race_for(page, b.race_seconds))
    b.check(page)
    b.close(ctx)


def junk_uploads(b: Bench) -> None:
    """Three 95 MB junk files: two .npz and one .zip; nothing may stay on disk."""
    files = [(junk(b.files / "junk1.npz"), "Upload a .npz"), (junk(b.files / "junk2.npz"), "Upload a .npz"),
             (junk_zip(b.files / "junk3.zip"), "Upload a .zip of images")]
    ctx, page = b.visitor()
    b.open(page, "/", "Dataset")
    for path, source in files:
        b.choose_dataset(page, source)
        b.upload_to_dataset(page, path)
        b.check(page)
    if folder_bytes(b.uploads):
        b.fail(f"{folder_bytes(b.uploads):,} bytes kept while the tab is open")
    b.close(ctx)
    for path, _ in files:
        path.unlink()


def killed_save(b: Bench) -> None:
    """A save killed mid-write leaves `.<name>.<random>.tmp` in a saved race's folder (planted here,
    2 h old); the next race started removes it."""
    ctx, page = b.visitor()
    b.open(page, QUICK_RACE, "Run")
    b.start(page)
    b.expect(page.get_by_text("Race finished").first).to_be_visible(timeout=PAGE_MS * 3)
    wait_idle(page, PAGE_MS)
    race = page.url.split("run=")[-1]
    stale = b.runs / race / ".run00.json.k1ll3d.tmp"
    stale.write_bytes(b'{"half": ')
    hours_ago = time.time() - 2 * 3600
    os.utime(stale, (hours_ago, hours_ago))
    b.start(page)
    b.expect(page.get_by_text("Race finished").first).to_be_visible(timeout=PAGE_MS * 3)
    wait_idle(page, PAGE_MS)
    b.check(page)
    if stale.exists():
        b.fail("the killed save's .tmp file was left")
    b.close(ctx)


def replay_other_upload(b: Bench) -> None:
    """Visitor A uploads a .npz; B opens a result file edited to name A's copy on the server."""
    mine = user_npz(b.files / "mine.npz")
    ca, a = b.visitor()
    b.open(a, "/", "Dataset")
    b.choose_dataset(a, "Upload a .npz")
    b.upload_to_dataset(a, mine)
    b.check(a)
    kept = next(b.uploads.glob("*/*/mine.npz"))
    raw = digits_result(dataset="npz", data_file=str(mine), initial=6, batch_size=6)
    raw["config"]["data_file"] = str(kept)  # B's edit: A's file on the server
    forged = b.files / "theirs.json"
    forged.write_text(json.dumps(raw))
    cb, page = b.visitor()
    b.open(page, "/replay", "Replay")
    b.upload(page, forged)
    b.expect(page.get_by_text(re.compile("which this session has not uploaded"))).to_be_visible(timeout=PAGE_MS)
    wait_idle(page, PAGE_MS)
    b.check(page)
    b.note("asked for the file" if page.get_by_text(re.compile("which this session has not uploaded")).count()
           else "not asked for the file")
    if page.get_by_test_id("stImage").count():
        b.fail(f"{page.get_by_test_id('stImage').count()} image(s) of A's upload shown to B")
    b.close(cb)
    b.close(ca)


def other_run_id(b: Bench) -> None:
    """B opens the address of A's stopped race: read-only, Continue disabled."""
    ca, a = b.visitor()
    b.open(a, "/run?rounds=40&model=mlp", "Run")  # the mlp: slow enough that Stop comes before the end
    b.start(a)
    b.expect(a.get_by_test_id("stProgress")).to_contain_text(re.compile(r"Round (\d{2,}|[3-9]) of"), timeout=PAGE_MS)
    a.get_by_role("button", name="Stop", exact=True).click()
    b.expect(a.get_by_role("button", name="Continue", exact=True)).to_be_enabled(timeout=PAGE_MS)
    wait_idle(a, PAGE_MS)
    address = a.url[len(b.base):]
    cb, page = b.visitor()
    b.open(page, address, "Run")
    b.expect(page.get_by_text(re.compile("Reopened the race saved at this address")).first).to_be_visible(
        timeout=PAGE_MS)
    wait_idle(page, PAGE_MS)
    b.check(page)
    if page.get_by_role("button", name="Continue", exact=True).is_enabled():
        b.fail("B may continue A's race")
    elif page.get_by_text(re.compile("opened read-only here")).count():
        b.note("read-only for B, and it says so")
    b.close(cb)
    b.close(ca)


def npz_100000_classes(b: Bench) -> None:
    _dataset_upload(b, attack_npz("classes_100000.npz", "100 000 classes", b.files))


def junk_query(b: Bench) -> None:
    query = "&".join(f"junk{i:04d}=" + "x" * 4 for i in range(1200))[:12 * 1024]
    ctx, page = b.visitor()
    b.open(page, "/?" + query, "Dataset")
    b.check(page)
    b.note(f"{len(query):,} characters")
    b.close(ctx)


def pool_size_clamped(b: Bench) -> None:
    ctx, page = b.visitor()
    b.open(page, "/?pool_size=999999999", "Dataset")
    b.check(page)
    metric = page.get_by_test_id("stMetric").filter(has_text="Pool images").get_by_test_id("stMetricValue")
    if metric.count():
        b.note(f"Pool images {metric.first.inner_text()}")
    b.close(ctx)


@dataclass
class Attack:
    name: str
    item: str
    what: str
    run: Callable[[Bench], None]


ATTACKS = [
    Attack("seeds3_mlp_stop", "1", f"`{MLP_RACE}`, Start, Stop after the race ran", seeds3_mlp_stop),
    Attack("model_16384", "2", "`/model?model=mlp&hidden_units=16384,16384`", model_16384),
    Attack("replay_forged_mlp", "2", "forged result file on Replay (mlp 12000x12000)", replay_forged_mlp),
    Attack("npz_686m", "2", ".npz of deflated zeros: 686 M values, 200 000 of 686 000 images in the test split", npz_686m),
    Attack("npz_2000_classes", "2", ".npz with 2 000 classes", npz_2000_classes),
    Attack("compare_64mb_json", "2", "63.9 MB JSON on Compare, then a rerun", compare_64mb_json),
    Attack("cnn_stop", "3", "cnn filters=512, max_epochs=10000, batch 1: Start, Stop", cnn_stop),
    Attack("cnn_close", "3", "the same link: Start, close the tab", cnn_close),
    Attack("seeds3_mlp_close", "3", f"`{MLP_RACE}`: Start, close the tab mid-race", seeds3_mlp_close),
    Attack("four_visitors", "3", f"4 visitors start `{MLP_RACE}` at once, then leave", four_visitors),
    Attack("race_13x20", "4", "a link racing 13 strategies x 20 seeds, Start", race_13x20),
    Attack("junk_uploads", "5", "three 95 MB junk uploads (2 .npz, 1 .zip)", junk_uploads),
    Attack("killed_save", "5", "a killed save's .tmp in a saved race, then a race", killed_save),
    Attack("replay_other_upload", "6", "result file naming another session's upload, on Replay", replay_other_upload),
    Attack("other_run_id", "6", "`?run=<id>` of another session's race", other_run_id),
    Attack("npz_100000_classes", "7", ".npz with 100 000 class names", npz_100000_classes),
    Attack("junk_query", "7", "12 KB junk query string", junk_query),
    Attack("pool_size_clamped", "7", "`/?pool_size=999999999`", pool_size_clamped),
]


# ----------------------------------------------------------------------------- running

def run_attack(b: Bench, attack: Attack) -> Record:
    rec = b.record = Record(attack.name, attack.item, attack.what)
    log_at = b.log.stat().st_size
    t0 = time.monotonic()
    rec.start_mb = b.sampler.rss_mb()
    print(f"[{time.strftime('%H:%M:%S')}] {attack.name}: {attack.what}", flush=True)
    try:
        attack.run(b)
    except Exception as e:
        rec.failures.append(f"bench could not finish: {type(e).__name__}: {first_line(str(e))}")
        try:
            for ctx in b.contexts:
                for p in ctx.pages:
                    b.check(p)
                    p.screenshot(path=str(b.root / f"{attack.name}.png"), full_page=True)
        except Exception:
            pass
    finally:
        for ctx in list(b.contexts):
            b.close(ctx)
    rec.seconds = time.monotonic() - t0
    rec.window = (round(t0 - b.sampler.samples[0][0], 1), round(time.monotonic() - b.sampler.samples[0][0], 1))
    rec.peak_mb = b.sampler.peak_mb(t0)
    rec.peak_at_s = next((round(t - t0, 2) for t, kb, _ in b.sampler.samples if t >= t0 and kb / 1024 == rec.peak_mb),
                         None)
    rec.uploads_bytes, rec.temp_bytes = b.disk()
    with open(b.log, "rb") as f:
        f.seek(log_at)
        logged = f.read().decode(errors="replace")
    if "Traceback" in logged:
        rec.failures.append("Traceback in the server log: " + first_line(logged[logged.index("Traceback"):][:2000]
                                                                       .splitlines()[-1]))
    if rec.peak_mb > RSS_TARGET_MB:
        rec.failures.append(f"peak RSS {rec.peak_mb:,.0f} MB over {RSS_TARGET_MB:,} MB")
    for cores in (rec.cpu_after_stop, rec.cpu_after_close):
        if cores is not None and not cores < IDLE_CORES:
            rec.failures.append(f"{cores:.2f} cores busy 10 s after")
    print(f"    peak {rec.peak_mb:,.0f} MB; {rec.messages[:3]}; {rec.failures or 'ok'}; {rec.notes}", flush=True)
    return rec


def settle(b: Bench, seconds: float) -> dict:
    """All sessions closed: when RSS falls under RSS_BACK_MB and the upload folder empties; a
    visitor arrives every 15 s (Streamlit drops expired sessions when its storage is used)."""
    closed = time.monotonic()
    closed_mb = b.sampler.rss_mb()
    under = empty = None
    trace = []
    while time.monotonic() - closed < seconds:
        rss = b.sampler.rss_mb()
        ups, temp = b.disk()
        trace.append((round(time.monotonic() - closed), round(rss), ups, temp))
        if under is None and rss < RSS_BACK_MB:
            under = time.monotonic() - closed
        if empty is None and ups == 0:
            empty = time.monotonic() - closed
        if under is not None and empty is not None and time.monotonic() - closed > 120:
            break  # two minutes watched, both reached
        ctx, page = b.visitor()
        page.goto(b.base)
        wait_idle(page, PAGE_MS)
        b.close(ctx)
        time.sleep(15)  # the interval between visitors
    ups, temp = b.disk()
    return dict(rss_under_target_after_s=under, uploads_empty_after_s=empty, rss_mb=b.sampler.rss_mb(),
                closed_mb=closed_mb, watched_s=time.monotonic() - closed,
                uploads_bytes=ups, temp_bytes=temp, temp_files=b.temp_files()[:20], trace=trace,
                peak_mb=b.sampler.peak_mb(0))


def fmt_cpu(cores, idle) -> str:
    if cores is None:
        return "-"
    return f"{cores:.2f}" + (f" (idle at {idle:.1f} s)" if idle is not None else " (not idle)")


def short(text: str, most: int = 150) -> str:
    text = text.replace("|", "\\|")
    return text if len(text) <= most else text[:most - 3].rstrip() + "..."


def table(records: list[Record], end: dict) -> str:
    rows = ["| # | attack | the page said | failures | peak RSS (at its start) | CPU 10 s after Stop "
            "| CPU 10 s after tab close "
            "| uploads / temp files on disk after |", "|---|---|---|---|---|---|---|---|"]
    for r in records:
        ranked = sorted(r.messages, key=lambda m: not m.startswith(("exception", "error", "uploader")))
        said = "; ".join(short(m) for m in ranked[:2]) or "(nothing)"
        if len(r.messages) > 2:
            said += f"; and {len(r.messages) - 2} more"
        if r.notes:
            said += " [" + "; ".join(short(n) for n in r.notes) + "]"
        rows.append(f"| {r.item} | {r.what} | {said} | {'; '.join(r.failures) or 'none'} | {r.peak_mb:,.0f} MB "
                    f"({r.start_mb:,.0f}) "
                    f"| {fmt_cpu(r.cpu_after_stop, r.idle_after_stop_s)} "
                    f"| {fmt_cpu(r.cpu_after_close, r.idle_after_close_s)} "
                    f"| {r.uploads_bytes:,} B / {r.temp_bytes:,} B |")
    under = end.get("rss_under_target_after_s")
    rows.append("")
    rows.append(f"All sessions closed: RSS {end.get('closed_mb', 0):,.0f} MB then, {end.get('rss_mb', 0):,.0f} MB "
                f"{end.get('watched_s', 0):.0f} s later; {'under' if under is not None else 'NOT under'} {RSS_BACK_MB:,} MB"
                + (f" {under:.0f} s after the last session closed" if under is not None else
                   f" within {end.get('waited_s', 0):.0f} s ({end.get('rss_mb', 0):,.0f} MB)")
                + f"; peak RSS over the whole replay {end.get('peak_mb', 0):,.0f} MB; left on disk: uploads "
                f"{end.get('uploads_bytes', 0):,} B"
                + (f" (empty {end['uploads_empty_after_s']:.0f} s after closing)"
                   if end.get("uploads_empty_after_s") is not None else "")
                + f", temporary files {end.get('temp_bytes', 0):,} B"
                + (f"; after the server exited: uploads {end['exited'][0]:,} B, temporary files {end['exited'][1]:,} B."
                   if "exited" in end else "."))
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run these attacks only (--list names them)")
    ap.add_argument("--list", action="store_true", help="name the attacks and exit")
    ap.add_argument("--race-seconds", type=float, default=90, help="how long a race runs before Stop (default 90)")
    ap.add_argument("--cnn-seconds", type=float, default=10,
                    help="how long the cnn link's race computes before Stop or the tab closes (default 10)")
    ap.add_argument("--settle", type=float, default=200,
                    help="seconds to watch the server after the last session closed (default 200)")
    ap.add_argument("--json", type=Path, help="save the records and the end state to this file")
    args = ap.parse_args()
    if args.list:
        for a in ATTACKS:
            print(f"{a.name:22} {a.item}  {a.what}")
        return 0
    chosen = ATTACKS
    if args.only:
        unknown = set(args.only) - {a.name for a in ATTACKS}
        if unknown:
            ap.error(f"unknown attack(s) {sorted(unknown)}; --list names them")
        chosen = [a for a in ATTACKS if a.name in args.only]
    from playwright.sync_api import expect, sync_playwright

    root = Path(tempfile.mkdtemp(prefix="attack-replay-"))
    load_before = os.getloadavg()
    records, end = [], {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        b = Bench(browser, expect, root, args.race_seconds, args.cnn_seconds)
        try:
            started_mb = b.sampler.rss_mb()
            for attack in chosen:
                records.append(run_attack(b, attack))
            print(f"[{time.strftime('%H:%M:%S')}] all sessions closed; watching the server for up to "
                  f"{args.settle:.0f} s", flush=True)
            end = settle(b, args.settle)
            end["waited_s"] = args.settle
            end["started_mb"] = started_mb
        finally:
            b.stop()
            browser.close()
        end["exited"] = b.disk()
    load_after = os.getloadavg()
    print()
    print(f"script: {shlex.join([sys.executable, '-m', 'bench.attack_replay', *sys.argv[1:]])}")
    print(f"server: (cd {ROOT} && {shlex.join(server_command(b.port))}), no ALCORE_* settings, no secrets; "
          f"TMPDIR, ALCORE_RUNS_DIR and ALCORE_CACHE_DIR under {root}")
    print(f"machine: {os.cpu_count()} CPUs; load average (1, 5, 15 min) {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f} at the start, {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} at the end")
    print(f"server RSS when healthy: {end.get('started_mb', 0):,.0f} MB; server log: {b.log}")
    if end.get("temp_files"):
        print("temporary files left: " + ", ".join(end["temp_files"]))
    print()
    print(table(records, end))
    if args.json:
        t_first = b.sampler.samples[0][0]
        trace = [(round(t - t_first, 2), kb // 1024, round(cpu, 2)) for t, kb, cpu in b.sampler.samples]
        args.json.write_text(json.dumps(dict(records=[asdict(r) for r in records], end=end,
                                             load=[load_before, load_after],
                                             rss_mb_cpu_s_every_sample=trace), indent=1))
    bad = any(r.failures for r in records) or end.get("rss_under_target_after_s") is None \
        or end.get("uploads_bytes") or any(end.get("exited", (0, 0)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
