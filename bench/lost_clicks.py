"""Are clicks on another page obeyed when a race ends? (the soak's lost Results click)

Starts `streamlit run app.py` and drives it from headless Chromium: for each of N digits
races (3 rounds, margin vs random, seed i), Start on the Run page, wait for "Race finished"
and an idle page, then click Results in the sidebar and wait up to 20 s for its title and
address. A click that is not obeyed is counted (and clicked again, so the loop goes on).

    .venv/bin/python -m bench.lost_clicks [--races 8]

Before the Run page computed a race in one script run (it reran itself every 0.3 s), 1 click
in 8 races was lost (commit a48e6c6), 0 in 8 after; how often depends on timing (see
app_pages/run.py's live() for the mechanism).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from tests.e2e.appserver import (CHROMIUM, CHROMIUM_ARGS, free_port, open_page, start_server,  # noqa: E402
                                 stop_server, wait_healthy, wait_idle)

from bench.soak import set_number  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--races", type=int, default=8)
    ns = ap.parse_args()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)
    port, log = free_port(), Path(tempfile.mkdtemp(prefix="clicks-")) / "server.log"
    proc = start_server(port, log, dict(os.environ, ALCORE_RUNS_DIR=str(log.parent / "runs")))
    lost = 0
    try:
        wait_healthy(proc, f"http://localhost:{port}", 120, log)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"http://localhost:{port}")
            wait_idle(page)
            open_page(page, expect, "Strategy")
            set_number(page, expect, "Rounds (0 = no round limit)", 3)
            for i in range(1, ns.races + 1):
                open_page(page, expect, "Dataset", check_url=False)  # the default page: its address is /
                set_number(page, expect, "Seed", i)
                open_page(page, expect, "Run")
                page.get_by_role("button", name="Start", exact=True).click()
                legend = page.get_by_test_id("stPlotlyChart").locator(".legendtext").filter(has_text=f"(seed {i})")
                expect(legend).to_have_count(2)
                expect(page.get_by_text("Race finished").first).to_be_visible()
                wait_idle(page)
                try:
                    open_page(page, expect, "Results", 20_000)
                    print(f"race {i}: Results click obeyed", flush=True)
                except AssertionError:
                    lost += 1
                    print(f"race {i}: Results click LOST (address {page.url})", flush=True)
                    open_page(page, expect, "Results")
            browser.close()
    finally:
        stop_server(proc)
    print(f"{lost} of {ns.races} Results clicks lost")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
