"""Your own images, end to end in the browser: a 1 000-image colour upload to a finished race.

Makes a .zip of 1 000 64x64 colour JPEGs in 5 class folders (``tests/imagesets.py``: a
shape per class in its own hue, random place, size and background, pixel noise), starts
the dashboard as a deployment would (``streamlit run app.py``, headless, the server's
default limits) and drives it from headless Chromium like a user:

1. Dataset page: "Upload a .zip of images", the zip given to the uploader; wait until the
   page shows "Pool images" and has finished its script run (decoding, resizing to the
   default image_size, the class pie, the k-means centroids).
2. Run page: Start the default race (margin against random, softmax, 10 initial labels,
   39 rounds of 10: 80 rounds in all, the race the dashboard runs on digits), and wait for
   "Race finished".
3. Results page: wait until it is drawn (galleries of the picked images).

Prints the seconds from giving the file to the uploader to each milestone, the final
accuracy of each strategy, and the server's peak resident memory (``VmHWM`` of the
server process, read at the end) against Streamlit Community Cloud's ~2.7 GB.

    python -m bench.images_race [--images 1000] [--classes 5] [--size 64]

Needs Chromium at /usr/bin/chromium and the playwright package. Timings depend on what else
the machine runs (the race is CPU-bound): compare runs made on the same quiet machine.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from bench.dashboard_memory import Sampler, mb, proc_status, read_grid  # noqa: E402
from tests.e2e.appserver import (free_port, launch_page, open_page, start_server,  # noqa: E402
                                 stop_server, wait_healthy, wait_idle)
from tests.imagesets import class_folder_zip  # noqa: E402

PAGE_TIMEOUT_MS = 300_000
CLOUD_MB = 2.7 * 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--size", type=int, default=64, help="side of each JPEG in pixels")
    args = ap.parse_args()
    from playwright.sync_api import expect, sync_playwright

    work = Path(tempfile.mkdtemp(prefix="images-race-"))
    t_make = time.monotonic()
    zip_path = class_folder_zip(work / "shapes.zip", args.images, args.classes, args.size)
    print(f"made {zip_path} ({zip_path.stat().st_size / 1e6:.1f} MB, {args.images} JPEGs of "
          f"{args.size}x{args.size}, {args.classes} classes) in {time.monotonic() - t_make:.1f} s")
    port = free_port()
    base = f"http://localhost:{port}"
    log_path = work / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALCORE_")}  # the default limits
    t: dict[str, float] = {}
    rss: list[tuple[str, int]] = []
    accuracies: list[str] = []
    proc = sampler = None
    with sync_playwright() as p:
        browser, page = launch_page(p, PAGE_TIMEOUT_MS)
        try:
            proc = start_server(port, log_path, env)
            sampler = Sampler(proc.pid)
            sampler.start()
            wait_healthy(proc, base, 120, log_path)
            page.goto(base)
            expect(page.get_by_role("heading", name="Dataset", exact=True).first).to_be_visible()
            wait_idle(page, PAGE_TIMEOUT_MS)
            page.get_by_role("combobox").first.click()
            page.get_by_role("option", name="Upload a .zip of images").click()
            wait_idle(page, PAGE_TIMEOUT_MS)
            rss.append(("before the upload", sampler.sample()[0]))

            t0 = time.monotonic()
            page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(zip_path))
            pool = page.get_by_test_id("stMetric").filter(has_text="Pool images").get_by_test_id("stMetricValue")
            expect(pool).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            wait_idle(page, PAGE_TIMEOUT_MS)
            t["dataset page drawn (decoded, centroids)"] = time.monotonic() - t0
            rss.append(("dataset loaded", sampler.sample()[0]))
            pool_text = pool.inner_text()

            open_page(page, expect, "Run", PAGE_TIMEOUT_MS)
            page.get_by_role("button", name="Start", exact=True).click()
            expect(page.get_by_text("Race finished").first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            t["race finished"] = time.monotonic() - t0
            rss.append(("race finished", sampler.sample()[0]))
            accuracies = [" | ".join(row) for row in read_grid(page)]

            open_page(page, expect, "Results", PAGE_TIMEOUT_MS)
            expect(page.get_by_text(re.compile("Inside a round"))).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            t["results page drawn"] = time.monotonic() - t0
            rss.append(("results page drawn", sampler.sample()[0]))
            page.screenshot(path=str(work / "results.png"), full_page=True)
        except Exception as e:  # report what was reached, then fail
            print(f"FAILED: {type(e).__name__}: {e}\n--- server log ---\n{log_path.read_text()[-3000:]}")
            return 1
        finally:
            status = proc_status(proc.pid) if proc else {}
            if sampler:
                sampler.stop()
            if proc:
                stop_server(proc)
            browser.close()
    print(f"pool images: {pool_text}")
    for name, secs in t.items():
        print(f"{name + ':':<45} {secs:6.1f} s after giving the file")
    for name, kb in rss:
        print(f"RSS {name + ':':<41} {mb(kb):>9}")
    hwm = status.get("VmHWM", 0)
    print(f"PEAK RSS of the server (VmHWM): {mb(hwm)} ({hwm / 1024 / CLOUD_MB:.0%} of Community Cloud's ~2.7 GB)")
    print("Run page's table:")
    for row in accuracies:
        print("  " + row)
    print(f"screenshot of Results: {work / 'results.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
