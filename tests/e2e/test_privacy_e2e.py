"""End to end, as two visitors of one public server (issue 19, item 6): visitor B, holding A's
result file edited to name A's upload on the server, or the address of A's race, is asked for
the data file and never shown A's images; A's downloads carry no path of the server; a saved
race's address reopens it ready to continue only in the browser that started it, also after the
server restarts, and read-only anywhere else.

Skipped when Chromium (/usr/bin/chromium) or playwright is not available.
"""
from __future__ import annotations

import hashlib
import json
import os
import re

import pytest
from conftest import npz_with_classes

from .appserver import free_port, open_page, start_server, stop_server, wait_healthy, wait_idle

pytestmark = pytest.mark.e2e

PAGE_TIMEOUT_MS = 60_000
RACE_TIMEOUT_MS = 240_000
COOKIE = "alcore_visitor"  # dashboard.state.VISITOR_COOKIE


class Servers:
    """`streamlit run app.py` with its own runs and upload folders, restartable on them."""

    def __init__(self, root):
        self.root = root
        self.runs, self.tmp = root / "runs", root / "tmp"
        self.runs.mkdir()
        self.tmp.mkdir()
        self.proc = self.base = None

    def start(self) -> str:
        port = free_port()
        log = self.root / f"server-{port}.log"
        env = dict(os.environ, ALCORE_RUNS_DIR=str(self.runs), TMPDIR=str(self.tmp))
        self.proc = start_server(port, log, env)
        self.base = f"http://localhost:{port}"
        wait_healthy(self.proc, self.base, 60, log)
        return self.base

    def stop(self) -> None:
        if self.proc is not None:
            stop_server(self.proc)
            self.proc = None

    @property
    def uploads(self):
        return self.tmp / "alcore-uploads"


@pytest.fixture
def servers(playwright_api, tmp_path):
    s = Servers(tmp_path)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def visitor(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    return context, context.new_page()


def open_app(page, expect, url: str) -> None:
    page.goto(url)
    expect(page.get_by_test_id("stSidebarNav")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)


def upload(page, expect, path, *, uploader=None) -> None:
    box = uploader or page.get_by_test_id("stFileUploader").first
    with page.expect_file_chooser(timeout=PAGE_TIMEOUT_MS) as fc:
        box.get_by_test_id("stFileUploaderDropzone").click()
    fc.value.set_files(str(path))


def test_a_visitor_never_reaches_another_visitors_upload(browser, servers, playwright_api, tmp_path):
    expect = playwright_api.expect
    mine = tmp_path / "mine.npz"
    mine.write_bytes(npz_with_classes(["ant", "bee", "cat"], n=90))
    sha = hashlib.sha256(mine.read_bytes()).hexdigest()
    (ca, a), (cb, b) = visitor(browser), visitor(browser)
    try:
        # A races margin and random on A's own .npz and downloads a result file.
        open_app(a, expect, f"{servers.base}/?initial=6&batch_size=6&rounds=2&max_epochs=5")
        a.get_by_role("combobox", name="Dataset").click()
        a.get_by_role("option", name="Upload a .npz").click()
        wait_idle(a)
        upload(a, expect, mine)
        pool = a.get_by_test_id("stMetric").filter(has_text="Pool images")
        expect(pool.get_by_test_id("stMetricValue")).to_have_text("72", timeout=PAGE_TIMEOUT_MS)
        wait_idle(a)
        open_page(a, expect, "Run")
        a.get_by_role("button", name="Start", exact=True).click()
        expect(a.get_by_text("Race finished").first).to_be_visible(timeout=RACE_TIMEOUT_MS)
        wait_idle(a)
        race_address = a.url
        assert "run=" in race_address
        open_page(a, expect, "Results")
        button = a.get_by_test_id("stDownloadButton").filter(
            has_text="Download margin (seed 0) result file (JSON)").get_by_role("button")
        with a.expect_download(timeout=PAGE_TIMEOUT_MS) as dl:
            button.click()
        text = open(dl.value.path()).read()
        kept, = servers.uploads.glob("*/*/mine.npz")  # A's upload, where the server keeps it
        assert str(servers.tmp) not in text and kept.parent.parent.name not in text
        result = json.loads(text)
        assert result["config"]["data_file"] == "mine.npz" and result["dataset"]["file_sha256"] == sha

        # B edits A's result file to name A's upload, and opens it on Replay.
        result["config"]["data_file"] = str(kept)
        forged = tmp_path / "forged.json"
        forged.write_text(json.dumps(result))
        open_app(b, expect, servers.base)
        open_page(b, expect, "Replay")
        upload(b, expect, forged)
        expect(b.get_by_text(re.compile("which this session has not uploaded"))).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        wait_idle(b)
        expect(b.get_by_test_id("stImage")).to_have_count(0)
        other = tmp_path / "other" / "mine.npz"
        other.parent.mkdir()
        other.write_bytes(npz_with_classes(["ant", "bee", "cat"], n=60))
        upload(b, expect, other, uploader=b.get_by_test_id("stFileUploader").nth(1))
        expect(b.get_by_text(re.compile("its SHA-256 differs"))).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        wait_idle(b)
        expect(b.get_by_test_id("stImage")).to_have_count(0)

        # B opens the address of A's race: asked for the data file, not shown A's.
        b.goto(race_address)
        expect(b.get_by_text(re.compile("which this session has not uploaded"))).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        wait_idle(b)
        expect(b.get_by_test_id("stPlotlyChart")).to_have_count(0)
        assert len(list(servers.uploads.glob("*/*/mine.npz"))) == 1  # B's wrong file was refused, not kept
    finally:
        ca.close()
        cb.close()


def test_only_the_browser_that_started_a_race_continues_it_also_after_a_restart(browser, servers, playwright_api):
    from alcore import ExperimentConfig
    from alcore.config import RaceConfig
    from alcore.engine.store import RunStore

    expect = playwright_api.expect
    (ca, a), (cb, b) = visitor(browser), visitor(browser)
    try:
        open_app(a, expect, servers.base)
        a.wait_for_function(f"document.cookie.includes('{COOKIE}=')", timeout=PAGE_TIMEOUT_MS)
        key = next(c["value"] for c in ca.cookies() if c["name"] == COOKIE)
        race_id = RunStore(servers.runs).new_id()  # a race A started and the server saved (no round yet)
        RunStore(servers.runs).create(race_id, RaceConfig(base=ExperimentConfig(rounds=3, max_epochs=5),
                                                          strategies=["margin", "random"], seeds=[0]), owner=key)
        address = f"/run?run={race_id}"
        assert key not in address

        def reopened(page, base):
            page.goto(base + address)
            expect(page.get_by_text(re.compile("Reopened the race saved at this address"))).to_be_visible(
                timeout=RACE_TIMEOUT_MS)
            wait_idle(page)
            return page.get_by_role("button", name="Continue", exact=True)

        expect(reopened(a, servers.base)).to_be_enabled()
        expect(reopened(b, servers.base)).to_be_disabled()  # the address alone: read-only, and it says so
        expect(b.get_by_text(re.compile("opened read-only here"))).to_be_visible()

        servers.stop()  # the server restarts; A's browser still holds its key
        base = servers.start()
        a.close()
        a = ca.new_page()
        expect(reopened(a, base)).to_be_enabled()
        expect(reopened(b, base)).to_be_disabled()
    finally:
        ca.close()
        cb.close()
