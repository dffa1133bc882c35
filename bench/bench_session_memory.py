"""Server memory when races end, are stopped, and their tabs close (issue 19, memory at session end).

Starts ``streamlit run app.py`` (from ``--root``, default this repository: point it at an export
of another commit to compare, e.g. ``git archive <commit> | tar -x -C /tmp/before``) and drives it
from headless Chromium, one visitor after another, each racing ``/run?seeds=3&model=mlp`` on
digits (margin and random over 3 seeds, 40 rounds each: 240 rounds of the mlp):

1. A finishes the race; then A's tab closes.
2. B presses Stop after round ``--stop-at``; then B's tab closes.
3. C closes the tab in the middle of the race, after round ``--stop-at``.

The server's resident memory (``VmRSS`` of /proc/<pid>/status) is read ``--settle`` seconds
after each event, and its peak (``VmHWM``) at the end. One server process, no children.
Run from the repository root:

    .venv/bin/python -m bench.bench_session_memory [--root DIR] [--stop-at N] [--settle S]

Numbers depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from bench.dashboard_memory import proc_status  # noqa: E402
from tests.e2e.appserver import (CHROMIUM, CHROMIUM_ARGS, free_port, server_command, stop_server,  # noqa: E402
                                 wait_healthy, wait_idle)

RACE = "/run?seeds=3&model=mlp"
PAGE_TIMEOUT_MS = 120_000
RACE_TIMEOUT_MS = 30 * 60_000


def rss_mb(pid: int) -> float:
    return proc_status(pid).get("VmRSS", 0) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app.py is served")
    ap.add_argument("--stop-at", type=int, default=60, help="round after which B stops and C's tab closes")
    ap.add_argument("--settle", type=float, default=15.0, help="seconds after an event before reading memory")
    args = ap.parse_args()
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="bench_session_memory_")) / "server.log"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(server_command(port), cwd=args.root, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    base = f"http://localhost:{port}"
    rows: list[tuple[str, float, float]] = []

    def note(what: str, settle: bool = True) -> None:
        if settle:
            time.sleep(args.settle)  # memory is read after the server has had time to let go
        rows.append((what, rss_mb(proc.pid), time.monotonic() - t0))
        print(f"{rows[-1][2]:7.1f} s  {rows[-1][1]:7.0f} MB  {what}", flush=True)

    def start(browser):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(base + RACE)
        expect(page.get_by_role("heading", name="Run", exact=True).first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        wait_idle(page, PAGE_TIMEOUT_MS)
        page.get_by_role("button", name="Start", exact=True).click()
        return context, page

    def after_round(page, n: int) -> None:
        progress = page.get_by_test_id("stProgress")
        deadline = time.monotonic() + RACE_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            text = progress.inner_text(timeout=PAGE_TIMEOUT_MS) if progress.count() else ""
            if text.startswith("Round ") and int(text.split()[1]) >= n:
                return
            time.sleep(0.2)  # polling the page's text, not a wait for the UI
        raise TimeoutError(f"round {n} not reached")

    try:
        wait_healthy(proc, base, 120, log_path)
        t0 = time.monotonic()
        note("server started", settle=False)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            ctx, page = start(browser)
            expect(page.get_by_text("Race finished").first).to_be_visible(timeout=RACE_TIMEOUT_MS)
            wait_idle(page, PAGE_TIMEOUT_MS)
            note("A: race finished (240 rounds)")
            ctx.close()
            note("A: tab closed")

            ctx, page = start(browser)
            after_round(page, args.stop_at)
            page.get_by_role("button", name="Stop", exact=True).click()
            expect(page.get_by_role("button", name="Continue", exact=True)).to_be_enabled(timeout=PAGE_TIMEOUT_MS)
            note(f"B: stopped after round {args.stop_at}+")
            ctx.close()
            note("B: tab closed")

            ctx, page = start(browser)
            after_round(page, args.stop_at)
            ctx.close()
            note(f"C: tab closed mid-race (after round {args.stop_at}+)")
            browser.close()
        peak = proc_status(proc.pid).get("VmHWM", 0) / 1024
    finally:
        stop_server(proc)
    print(f"\nserved from {args.root} ({_commit(args.root)}); peak (VmHWM) {peak:,.0f} MB")
    print("\n| after | server memory (VmRSS) |\n|---|---|")
    for what, mb, _ in rows:
        print(f"| {what} | {mb:,.0f} MB |")
    return 0


def _commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, OSError):
        return "not a git checkout"


if __name__ == "__main__":
    sys.exit(main())
