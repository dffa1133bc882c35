"""End to end: the self-supervised embedding on the Model page, TypiClust raced against random
and margin with the oracle ceiling on the Strategy page, and the ceiling drawn on Run.

Skipped when Chromium (/usr/bin/chromium) or playwright is not available.
"""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from .appserver import open_page, wait_idle

pytestmark = pytest.mark.e2e

PAGE_TIMEOUT_MS = 60_000
RACE_TIMEOUT_MS = 180_000  # the encoder's training and TensorFlow's import come first


def test_the_oracle_ceiling_is_drawn_over_a_race_on_self_supervised_embeddings(page, app_server, playwright_api):
    expect = playwright_api.expect
    # a short encoder and race through the link (its fields), so the test stays quick
    page.goto(f"{app_server}/model?" + urlencode({"encoder_steps": "20", "rounds": "4"}))
    expect(page.get_by_role("heading", name="Model", exact=True).first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)
    page.get_by_role("combobox", name="Embedding").click()
    page.get_by_role("option", name="self_supervised", exact=True).click()
    expect(page.get_by_role("spinbutton", name="Encoder steps")).to_have_value("20", timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)

    open_page(page, expect, "Strategy")
    strategies = page.get_by_test_id("stMultiSelect").filter(has_text="Strategies to race")
    strategies.locator("input").click()
    page.get_by_role("option", name="typiclust", exact=True).click()
    page.keyboard.press("Escape")
    expect(strategies).to_contain_text("typiclust")
    wait_idle(page)
    page.get_by_test_id("stCheckbox").filter(has_text="Oracle ceiling").locator("label").click()
    expect(page.get_by_role("spinbutton", name="Ceiling validation")).to_have_value("200", timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)

    open_page(page, expect, "Run")
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text("racing margin, random, typiclust over 1 seed(s), with the oracle ceiling")
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.get_by_text("Race finished").first).to_be_visible(timeout=RACE_TIMEOUT_MS)
    wait_idle(page)
    expect(page.get_by_test_id("stProgress")).to_contain_text("Round 20 of 20")  # 3 strategies + the ceiling
    chart = page.get_by_test_id("stPlotlyChart")
    expect(chart.locator(".legendtext").filter(has_text="oracle ceiling (seed 0)")).to_have_count(
        1, timeout=PAGE_TIMEOUT_MS)
    expect(chart.locator(".legendtext").filter(has_text="typiclust (seed 0)")).to_have_count(1)
