"""End to end, on a server that cannot download (issue 18, item 4): a link naming MNIST, and a
Reference experiment on MNIST, leave the session on the digits it had and say why, in a real
browser on `streamlit run app.py`.

The server gets a proxy that refuses every connection and an empty Keras folder, so
keras.datasets fails as it does offline (the real loader, not a patched one), on any machine.
Skipped when Chromium (/usr/bin/chromium) or playwright is not available.
"""
from __future__ import annotations

import os
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from .appserver import free_port, open_page, start_server, stop_server, wait_healthy, wait_idle

pytestmark = pytest.mark.e2e

PAGE_TIMEOUT_MS = 180_000  # Reference experiments draws every preset's tables and confusion matrices
OFFLINE = "http://127.0.0.1:9"  # the discard port: nothing listens, every download is refused at once


@pytest.fixture(scope="module")
def offline_server(playwright_api, tmp_path_factory):
    folder = tmp_path_factory.mktemp("offline")
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "alcore_data_dir")}
    env.update(HTTPS_PROXY=OFFLINE, HTTP_PROXY=OFFLINE, https_proxy=OFFLINE, http_proxy=OFFLINE,
               KERAS_HOME=str(folder / "keras"))
    port, log = free_port(), folder / "server.log"
    proc = start_server(port, log, env)
    try:
        wait_healthy(proc, f"http://localhost:{port}", 60, log)
        yield f"http://localhost:{port}"
    finally:
        stop_server(proc)


def test_data_that_cannot_be_had_offline_never_becomes_the_setup(browser, offline_server, playwright_api):
    expect = playwright_api.expect
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    try:
        page.goto(f"{offline_server}/?dataset=mnist&batch_size=20")
        alert = page.get_by_test_id("stAlert").filter(has_text="mnist is not available here")
        expect(alert.first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        expect(alert.first).to_contain_text("The link's dataset was not applied.")
        expect(alert.first).to_contain_text("The setup stays on digits")
        wait_idle(page, PAGE_TIMEOUT_MS)
        expect(page.get_by_role("combobox", name="Dataset")).to_have_value("scikit-learn digits (8x8, offline)")
        pool = page.get_by_test_id("stMetric").filter(has_text="Pool images").get_by_test_id("stMetricValue")
        expect(pool).to_have_text("1,438")
        expect(page.get_by_test_id("stSidebar")).to_contain_text("digits")
        expect(page.get_by_test_id("stSidebar")).not_to_contain_text("mnist")
        assert parse_qs(urlsplit(page.url).query) == {"batch_size": ["20"]}  # the rest of the link applies

        open_page(page, expect, "Reference experiments", timeout=PAGE_TIMEOUT_MS, check_url=False)
        before = page.url
        page.locator(".st-key-ref_run_least_confidence_small_pool_mnist button").click()
        said = page.get_by_test_id("stAlert").filter(has_text="Nothing was loaded.")
        expect(said).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        expect(said).to_contain_text("mnist is not available here")
        expect(said).to_contain_text("upload")
        wait_idle(page, PAGE_TIMEOUT_MS)
        expect(page.get_by_role("heading", name="Reference experiments", exact=True).first).to_be_visible()
        assert page.url == before and not re.search(r"dataset=|run=", page.url)
        expect(page.get_by_test_id("stSidebar")).not_to_contain_text("mnist")
    finally:
        page.context.close()
