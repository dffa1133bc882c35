"""How long after a visitor closes the tab their upload stays on the server's disk.

Starts `streamlit run app.py` with its own temporary folder, uploads a small .npz on the Dataset
page from headless Chromium, closes the browser context, then every 15 s has another visitor
open and leave the app (Streamlit drops expired sessions when its session storage is used) and
prints how many uploaded files are left, until none is or the wait passes the TTL by 90 s::

    .venv/bin/python -m bench.upload_session_end [--ttl 120]

``--ttl`` is Streamlit's ``server.disconnectedSessionTTL`` (its default: 120 s).
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
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from conftest import npz_with_classes  # noqa: E402
from tests.e2e.appserver import (CHROMIUM, CHROMIUM_ARGS, free_port, server_command, stop_server,  # noqa: E402
                                 wait_healthy, wait_idle)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ttl", type=int, default=120, help="server.disconnectedSessionTTL in seconds")
    args = ap.parse_args()
    from playwright.sync_api import expect, sync_playwright

    root = Path(tempfile.mkdtemp(prefix="upload_session_end-"))
    (root / "tmp").mkdir()
    npz = root / "mine.npz"
    npz.write_bytes(npz_with_classes(["a", "b", "c"], n=90))
    uploads = root / "tmp" / "alcore-uploads"
    port, log = free_port(), root / "server.log"
    env = dict(os.environ, TMPDIR=str(root / "tmp"), ALCORE_RUNS_DIR=str(root / "runs"), TF_CPP_MIN_LOG_LEVEL="2")
    with open(log, "wb") as out:
        proc = subprocess.Popen(server_command(port) + ["--server.disconnectedSessionTTL", str(args.ttl)],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://localhost:{port}"
    try:
        wait_healthy(proc, base, 60, log)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            ctx = browser.new_context()
            page = ctx.new_page()
            page.goto(base)
            wait_idle(page)
            page.get_by_role("combobox", name="Dataset").click()
            page.get_by_role("option", name="Upload a .npz").click()
            wait_idle(page)
            with page.expect_file_chooser() as fc:
                page.get_by_test_id("stFileUploaderDropzone").click()
            fc.value.set_files(str(npz))
            expect(page.get_by_test_id("stMetric").filter(has_text="Pool images")).to_be_visible(timeout=60_000)
            print(f"kept: {len(list(uploads.rglob('*.npz')))} file(s); the tab closes now (TTL {args.ttl} s)")
            closed = time.time()
            ctx.close()
            while time.time() - closed < args.ttl + 90:
                time.sleep(15)
                other = browser.new_context()
                pg = other.new_page()
                pg.goto(base)
                wait_idle(pg)
                other.close()
                left = len(list(uploads.rglob("*.npz")))
                print(f"{time.time() - closed:5.0f} s after closing: {left} file(s) left", flush=True)
                if not left:
                    break
            browser.close()
    finally:
        stop_server(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
