"""End to end, in real browsers on one `streamlit run app.py`: two sessions racing at the
same time never see each other's runs, models or result files.

(Stop, page switches and reopening a saved race are covered with AppTest in
tests/test_app_pages.py and in alcore by tests/test_interruption.py.)
"""
from __future__ import annotations

import json

import pytest

from .appserver import open_page, wait_idle

pytestmark = pytest.mark.e2e

PAGE_TIMEOUT_MS = 60_000
RACE_TIMEOUT_MS = 240_000


def new_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    return context, context.new_page()


def set_number(page, expect, name: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=name)
    box.fill(str(value))
    box.press("Enter")
    expect(box).to_have_value(str(value))
    wait_idle(page)


def setup(page, expect, base: str, *, seed: int, rounds: int) -> None:
    page.goto(base)
    expect(page.get_by_role("heading", name="Dataset", exact=True).first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)
    set_number(page, expect, "Seed", seed)
    open_page(page, expect, "Strategy")
    set_number(page, expect, "Rounds (0 = no round limit)", rounds)


def download_result(page, expect, tmp_path, which: str) -> dict:
    open_page(page, expect, "Results")
    button = page.get_by_test_id("stDownloadButton").filter(
        has_text=f"Download {which} result file (JSON)").get_by_role("button")
    expect(button).to_be_enabled(timeout=PAGE_TIMEOUT_MS)
    with page.expect_download(timeout=PAGE_TIMEOUT_MS) as dl:
        button.click()
    path = tmp_path / f"{id(page)}_{dl.value.suggested_filename}"
    dl.value.save_as(path)
    return json.loads(path.read_text())


def test_two_sessions_race_at_once_and_keep_to_themselves(browser, app_server, playwright_api, tmp_path):
    expect = playwright_api.expect
    (ca, a), (cb, b) = new_page(browser), new_page(browser)
    try:
        setup(a, expect, app_server, seed=0, rounds=12)
        setup(b, expect, app_server, seed=7, rounds=6)
        open_page(a, expect, "Run")
        open_page(b, expect, "Run")
        a.get_by_role("button", name="Start", exact=True).click()
        b.get_by_role("button", name="Start", exact=True).click()
        # Both races are under way at the same time before either finishes.
        expect(a.get_by_test_id("stProgress")).to_contain_text("Round", timeout=RACE_TIMEOUT_MS)
        expect(b.get_by_test_id("stProgress")).to_contain_text("Round", timeout=RACE_TIMEOUT_MS)
        for pg, total in ((a, 26), (b, 14)):
            expect(pg.get_by_text("Race finished")).to_be_visible(timeout=RACE_TIMEOUT_MS)
            wait_idle(pg)
            expect(pg.get_by_test_id("stProgress")).to_contain_text(f"Round {total} of {total}")
        legend_a = a.get_by_test_id("stPlotlyChart").locator(".legendtext")
        legend_b = b.get_by_test_id("stPlotlyChart").locator(".legendtext")
        expect(legend_a).to_have_text(["margin (seed 0)", "random (seed 0)"], timeout=PAGE_TIMEOUT_MS)
        expect(legend_b).to_have_text(["margin (seed 7)", "random (seed 7)"], timeout=PAGE_TIMEOUT_MS)
        assert "run=" in a.url and "run=" in b.url and a.url.split("run=")[1] != b.url.split("run=")[1]

        ra = download_result(a, expect, tmp_path, "margin (seed 0)")
        rb = download_result(b, expect, tmp_path, "margin (seed 7)")
        assert (ra["config"]["seed"], ra["config"]["rounds"], len(ra["rounds"])) == (0, 12, 13)
        assert (rb["config"]["seed"], rb["config"]["rounds"], len(rb["rounds"])) == (7, 6, 7)
        # Each Results page offers its own runs only.
        for pg, other in ((a, "seed 7"), (b, "seed 0")):
            expect(pg.get_by_test_id("stDownloadButton")).to_have_count(3)
            expect(pg.get_by_test_id("stDownloadButton").filter(has_text=other)).to_have_count(0)
    finally:
        ca.close()
        cb.close()
