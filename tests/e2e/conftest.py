"""Fixtures for the end-to-end tests: a real `streamlit run app.py` and headless Chromium.

Follows Streamlit's own e2e conventions: the app runs in its own process (and process
group) on a free port, readiness is polled on /_stcore/health, and tests wait on
selectors such as ``[data-testid='stApp'][data-test-script-state='notRunning']``.
Without /usr/bin/chromium or the playwright package every e2e test is skipped.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .appserver import CHROMIUM, CHROMIUM_ARGS, free_port, start_server, stop_server, wait_healthy

STARTUP_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def playwright_api():
    """The sync Playwright module, or a skip when it or Chromium is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"end-to-end tests need Chromium at {CHROMIUM}")
    try:
        from playwright import sync_api
    except ImportError as e:
        pytest.skip(f"end-to-end tests need the playwright package ({e})")
    return sync_api


class Server(str):
    """The server's base URL, with the path of its log."""
    log_path: Path


@pytest.fixture(scope="module")
def app_server(playwright_api, tmp_path_factory):
    """Run the dashboard with `streamlit run app.py`; yield its base URL (a str whose
    ``log_path`` is the server's log)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "server.log"
    proc = start_server(port, log_path)
    try:
        base = f"http://localhost:{port}"
        try:
            wait_healthy(proc, base, STARTUP_TIMEOUT_S, log_path)
        except RuntimeError as e:
            pytest.fail(str(e))
        server = Server(base)
        server.log_path = log_path
        yield server
    finally:
        stop_server(proc)
        if log_path.exists():
            tail = log_path.read_text(errors="replace")[-3000:]
            if "Traceback" in tail:
                sys.stderr.write(f"\n--- streamlit server log (tail) ---\n{tail}\n")


@pytest.fixture(scope="module")
def browser(playwright_api):
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, app_server, request, tmp_path):
    """A fresh browser page (own context, so own Streamlit session) with downloads enabled."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    try:
        yield pg
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            shot = tmp_path / "failure.png"
            try:
                pg.screenshot(path=str(shot), full_page=True)
                sys.stderr.write(f"\nscreenshot of the failing page: {shot}\n")
            except Exception as e:  # the page may be gone; the failure itself matters more
                sys.stderr.write(f"\nno screenshot: {e}\n")
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
