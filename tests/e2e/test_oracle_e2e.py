"""End to end: be the oracle in a real browser on `streamlit run app.py`: label one batch by
clicking (one image by its keyboard shortcut), submit, and the learning curve gains a point.

Skipped when Chromium (/usr/bin/chromium) or playwright is not available.
"""
from __future__ import annotations

import json
import re

import pytest

from .appserver import open_page, wait_idle

pytestmark = pytest.mark.e2e

PAGE_TIMEOUT_MS = 60_000
TRAIN_TIMEOUT_MS = 180_000  # round 0 imports TensorFlow and compiles the model
BATCH = 10  # the default batch_size on digits


def label_button(page, pos: int, c: int, batch: int = 1):
    # Streamlit marks a keyed element's container with the class st-key-<key>
    return page.locator(f".st-key-oracle_label_{batch - 1}_{pos}_{c} button")


def you_points(page):
    """The markers of the 'you' curve: Plotly draws each scatter trace as g.trace.scatter, the
    person's last, each marker a path.point."""
    return page.get_by_test_id("stPlotlyChart").locator("g.trace.scatter").last.locator("path.point")


def test_label_one_batch_by_clicking_and_the_curve_gains_a_point(page, app_server, playwright_api, tmp_path):
    expect = playwright_api.expect
    page.goto(app_server)
    page.wait_for_selector("[data-testid='stApp']", timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)
    open_page(page, expect, "Be the oracle", check_url=False)
    expect(page).to_have_url(re.compile(r"/oracle$"))

    page.get_by_role("button", name="Start labelling", exact=True).click()
    expect(page.get_by_role("heading", name=f"Batch 1: label these {BATCH} images")).to_be_visible(
        timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page)
    # the pointer still rests on the button (now "Start over"): no tooltip over the strategy box (issue 18)
    expect(page.get_by_test_id("stTooltipContent")).to_have_count(0)
    expect(you_points(page)).to_have_count(1)
    first = page.locator(".st-key-oracle_item_0 [data-testid='stImage'] img").first
    expect(first).to_be_visible()
    assert first.bounding_box()["width"] >= 140  # an 8x8 digit drawn large enough to read
    submit = page.get_by_role("button", name=re.compile("Submit labels and retrain"))
    expect(submit).to_be_disabled()

    # the first image by its keyboard shortcut (the digit's key), the rest by clicking
    expect(page.locator(".st-key-oracle_key_0_7 button")).to_be_enabled()
    page.keyboard.press("7")
    expect(label_button(page, 0, 7)).to_have_attribute("data-testid", "stBaseButton-primary", timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)
    for pos in range(1, BATCH):
        label_button(page, pos, pos % 10).click()
        expect(label_button(page, pos, pos % 10)).to_have_attribute("data-testid", "stBaseButton-primary",
                                                                    timeout=PAGE_TIMEOUT_MS)
        wait_idle(page)
    expect(page.get_by_text(f"{BATCH} of {BATCH} labelled.")).to_be_visible()
    expect(submit).to_be_enabled()
    submit.click()

    expect(page.get_by_role("heading", name=f"Batch 2: label these {BATCH} images")).to_be_visible(
        timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page)
    expect(you_points(page)).to_have_count(2, timeout=PAGE_TIMEOUT_MS)  # the curve gained a point
    gave = page.get_by_test_id("stMetric").filter(has_text="Labels you gave")
    expect(gave.get_by_test_id("stMetricValue")).to_have_text(str(BATCH))
    mistakes = page.get_by_test_id("stMetric").filter(has_text="Your mistakes").get_by_test_id("stMetricValue")
    expect(mistakes).to_have_text(re.compile(r"^\d+( \(\d+%\))?$"))
    wrong = int(mistakes.inner_text().split()[0])
    assert 0 < wrong <= BATCH  # digits 1-9 given in order: a real batch is never exactly that
    expect(page.get_by_test_id("stMarkdown").filter(has_text=f"{wrong} of your {BATCH} labels")).to_have_count(1)

    button = page.get_by_test_id("stDownloadButton").filter(has_text="Download your run's result file (JSON)")
    with page.expect_download(timeout=PAGE_TIMEOUT_MS) as dl:
        button.get_by_role("button").click()
    saved = tmp_path / dl.value.suggested_filename
    dl.value.save_as(saved)
    data = json.loads(saved.read_text())
    assert saved.name == "digits_margin_seed0_person.json" and data["oracle"] == "person"
    assert data["rounds"][0]["given_labels"] == [7] + list(range(1, BATCH))
    assert len(data["rounds"][0]["label_seconds"]) == BATCH and "given_labels" not in data["rounds"][1]
