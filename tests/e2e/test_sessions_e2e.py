"""End to end, in real browsers on one `streamlit run app.py`: two sessions racing at the
same time never see each other's runs; Stop, a page switch and a closed tab in the middle
of a race keep every finished round, and the race continues to the picks an
uninterrupted race makes.
"""
from __future__ import annotations

import json
import re

import pytest

from .appserver import open_page, wait_idle

pytestmark = pytest.mark.e2e

PAGE_TIMEOUT_MS = 60_000
RACE_TIMEOUT_MS = 240_000
ROUNDS = 60  # per strategy; the interrupted race has two (margin, random) and their first rounds
TOTAL = 2 * (ROUNDS + 1)


def new_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    return context, context.new_page()


def set_number(page, expect, name: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=name)
    box.fill(str(value))
    box.press("Enter")
    expect(box).to_have_value(str(value))
    wait_idle(page)


def setup(page, expect, base: str, *, seed: int, rounds: int, model: str | None = None,
          max_epochs: int | None = None) -> None:
    page.goto(base)
    expect(page.get_by_role("heading", name="Dataset", exact=True).first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)
    set_number(page, expect, "Seed", seed)
    if model:
        open_page(page, expect, "Model")
        page.get_by_role("combobox", name="Model").click()
        page.get_by_role("option", name=model, exact=True).click()
        wait_idle(page)
    if max_epochs:  # exactly this many epochs a round: no minimum of steps, so the race stays quick
        set_number(page, expect, "Max epochs", max_epochs)
        set_number(page, expect, "Min steps", 0)
    open_page(page, expect, "Strategy")
    set_number(page, expect, "Rounds (0 = no round limit)", rounds)
    # the setup is in the address once the session has it: a Start before that raced the default rounds
    expect(page).to_have_url(re.compile(rf"[?&]rounds={rounds}(&|$)"), timeout=PAGE_TIMEOUT_MS)


def rounds_done(page) -> int:
    text = page.get_by_test_id("stProgress").inner_text()
    m = re.search(r"Round (\d+)", text)
    return int(m.group(1)) if m else 0


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
            expect(pg.get_by_text("Race finished").first).to_be_visible(timeout=RACE_TIMEOUT_MS)
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
            # curves CSV, two result files, the metrics table's CSV, the labels as CSV and as a zip
            expect(pg.get_by_test_id("stDownloadButton")).to_have_count(6)
            expect(pg.get_by_test_id("stDownloadButton").filter(has_text="result file")).to_have_count(2)
            expect(pg.get_by_test_id("stDownloadButton").filter(has_text=other)).to_have_count(0)
    finally:
        ca.close()
        cb.close()


def test_stop_page_switch_and_closed_tab_lose_no_round(browser, app_server, playwright_api, tmp_path):
    expect = playwright_api.expect
    ctx, page = new_page(browser)
    progress = lambda: page.get_by_test_id("stProgress")  # noqa: E731
    try:
        setup(page, expect, app_server, seed=3, rounds=ROUNDS, model="mlp", max_epochs=10)
        open_page(page, expect, "Run")
        page.get_by_role("button", name="Start", exact=True).click()
        expect(progress()).to_contain_text(re.compile(r"Round ([3-9]|\d\d)"), timeout=RACE_TIMEOUT_MS)
        # 1. Stop mid-race: the finished rounds stay, and the result file can be downloaded.
        page.get_by_role("button", name="Stop", exact=True).click()
        expect(page.get_by_role("button", name="Continue", exact=True)).to_be_enabled(timeout=PAGE_TIMEOUT_MS)
        wait_idle(page)
        stopped_at = rounds_done(page)
        assert 3 <= stopped_at < TOTAL
        stopped = download_result(page, expect, tmp_path, "margin (seed 3)")
        assert stopped["status"] == "stopped" and len(stopped["rounds"]) >= stopped_at // 2

        # 2. Another page mid-race: the click is obeyed at once, the race waits there and
        #    goes on by itself from where it was when the Run page is back.
        open_page(page, expect, "Run")
        page.get_by_role("button", name="Continue", exact=True).click()
        expect(progress()).not_to_contain_text(f"Round {stopped_at} ", timeout=RACE_TIMEOUT_MS)
        mid = download_result(page, expect, tmp_path, "margin (seed 3)")  # Results, at once, with its address
        assert len(mid["rounds"]) > len(stopped["rounds"])
        open_page(page, expect, "Run", idle=False)
        expect(progress()).to_contain_text("Round", timeout=PAGE_TIMEOUT_MS)
        switched_at = rounds_done(page)
        assert switched_at > stopped_at
        expect(progress()).not_to_contain_text(f"Round {switched_at} ", timeout=RACE_TIMEOUT_MS)

        # 3. Close the tab mid-race; the page's address reopens the race in a new session of the
        #    same browser (which holds the key to continue it; another browser opens it read-only).
        address = page.url
        # the saved race's id, beside the setup's parameters (dashboard.state.sync_link)
        assert re.search(r"/run\?(.*&)?run=[A-Za-z0-9_-]{16,}(&|$)", address), address
        closed_at = rounds_done(page)
        assert closed_at < TOTAL, "the race ended before the tab was closed"
        page.close()

        page = ctx.new_page()
        page.goto(address)
        expect(page.get_by_text("Reopened the race")).to_be_visible(timeout=RACE_TIMEOUT_MS)
        wait_idle(page)
        assert rounds_done(page) >= closed_at  # every round shown before the tab closed is kept
        page.get_by_role("button", name="Continue", exact=True).click()
        expect(page.get_by_text("Race finished").first).to_be_visible(timeout=RACE_TIMEOUT_MS)
        finished = download_result(page, expect, tmp_path, "margin (seed 3)")
    finally:
        ctx.close()

    # Every round finished before the Stop is still there, unchanged.
    assert finished["status"] == "complete" and len(finished["rounds"]) == ROUNDS + 1
    assert finished["rounds"][:len(stopped["rounds"])] == stopped["rounds"]
    # An uninterrupted run with the same settings picks the same images.
    from alcore import ExperimentConfig
    from alcore.engine.loop import Experiment

    whole = Experiment(ExperimentConfig(**finished["config"]))
    list(whole)
    assert [r.selected for r in whole.rounds] == [r["selected"] for r in finished["rounds"]]
