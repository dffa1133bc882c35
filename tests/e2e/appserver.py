"""Start `streamlit run app.py` and drive it in headless Chromium: shared by the e2e
tests and bench/dashboard_memory.py.

Streamlit's own e2e conventions: the app runs in its own process group on a free port,
readiness is polled on /_stcore/health, and pages are waited on with selectors.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"  # a finished script run


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode(errors="replace").strip()
    except (urllib.error.URLError, ConnectionError, OSError):
        return None


def server_command(port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", "app.py",
            "--server.headless", "true", "--server.port", str(port),
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]


def start_server(port: int, log_path: Path, env: dict | None = None, root: Path = ROOT) -> subprocess.Popen:
    """`streamlit run app.py` from the repository root (``root``: another checkout, whose own
    alcore and dashboard are imported first), in a new process group."""
    cmd = server_command(port)
    env = dict(os.environ if env is None else env, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    if Path(root).resolve() != ROOT:
        env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    with open(log_path, "wb") as log:
        return subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def wait_healthy(proc: subprocess.Popen, base: str, timeout_s: float, log_path: Path) -> None:
    """Poll /_stcore/health until "ok"; RuntimeError with the log's tail otherwise."""
    deadline = time.monotonic() + timeout_s
    while health(f"{base}/_stcore/health") != "ok":
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"streamlit not healthy after {timeout_s} s:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.05)  # polling interval, not a wait for the UI


def stop_server(proc: subprocess.Popen) -> None:
    """Terminate the server's whole process group (TERM, then KILL)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def launch_page(playwright, timeout_ms: int, width: int = 1400, height: int = 1000):
    """(browser, page) for a benchmark: Debian's Chromium, headless, and one page of a new context
    of ``width`` x ``height`` pixels whose actions wait up to ``timeout_ms``. Close the browser."""
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(timeout_ms)
    return browser, page


def wait_idle(page, timeout: int = 60_000) -> None:
    page.wait_for_selector(IDLE, timeout=timeout)


def open_page(page, expect, title: str, timeout: int = 60_000, check_url: bool = True, idle: bool = True) -> None:
    """Follow the sidebar navigation link `title`; wait for that page's script run to end
    (idle=False: only for its title, as on the Run page while a race computes).

    check_url=False where the address is not the page's own: the Dataset page, the default,
    is at /."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    if check_url:
        expect(page).to_have_url(re.compile(rf"/{title.lower()}(\?[^/]*)?$"), timeout=timeout)
    expect(page.get_by_role("heading", name=title, exact=True).first).to_be_visible(timeout=timeout)
    if idle:
        wait_idle(page, timeout)


def upload_image_zip(page, path, timeout: int = 60_000) -> None:
    """On the Dataset page: choose "Upload a .zip of images" and give the uploader the file ``path``."""
    page.get_by_role("combobox").first.click()
    page.get_by_role("option", name="Upload a .zip of images").click()
    wait_idle(page, timeout)
    page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(path))
