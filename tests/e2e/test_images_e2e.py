"""End to end: a .zip of your own labelled colour images, raced like a built-in dataset
(issue 16, item 4): upload on Dataset (classes from the folders, centroids drawn), race on
Run, the picked images on Results, the rounds on Replay -- in a real browser on
`streamlit run app.py`. The timed version with 1 000 images is `python -m bench.images_race`.
"""
from __future__ import annotations

import re

import pytest

from tests.imagesets import SHAPES, class_folder_zip

from .appserver import open_page, upload_image_zip, wait_idle

pytestmark = pytest.mark.e2e

PAGE_TIMEOUT_MS = 60_000
RACE_TIMEOUT_MS = 180_000
N_IMAGES, N_CLASSES = 150, 3


def test_a_labelled_colour_upload_races_like_a_built_in_dataset(page, app_server, playwright_api, tmp_path):
    expect = playwright_api.expect
    shapes = class_folder_zip(tmp_path / "shapes.zip", N_IMAGES, N_CLASSES, size=48)
    page.goto(f"{app_server}/?rounds=3&image_size=16")
    expect(page.get_by_role("heading", name="Dataset", exact=True).first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)
    upload_image_zip(page, shapes)

    # Dataset: a seeded 20% test split, the classes named after the folders, centroids drawn
    pool = page.get_by_test_id("stMetric").filter(has_text="Pool images").get_by_test_id("stMetricValue")
    expect(pool).to_have_text(str(N_IMAGES - N_IMAGES // 5), timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)
    main = page.get_by_test_id("stMain")
    for name in SHAPES[:N_CLASSES]:
        expect(main).to_contain_text(name)
    expect(page.get_by_test_id("stImageCaption").filter(has_text="mostly").first).to_be_visible(
        timeout=PAGE_TIMEOUT_MS)

    # Run: the default race (margin against random) on these images, three rounds
    open_page(page, expect, "Run")
    expect(main).to_contain_text("shapes.zip")
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.get_by_text("Race finished").first).to_be_visible(timeout=RACE_TIMEOUT_MS)
    wait_idle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_test_id("stProgress")).to_contain_text("Round 8 of 8")

    # Results: the images a strategy picked, captioned with classes named after the folders
    open_page(page, expect, "Results")
    expect(page.get_by_role("heading", name="Inside a round")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    captions = page.get_by_test_id("stImageCaption")
    expect(captions.first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    folders = "|".join(SHAPES[:N_CLASSES])
    expect(captions.filter(has_text=re.compile(rf"\b({folders})\b")).first).to_be_visible()

    # Replay: step through this session's race
    open_page(page, expect, "Replay")
    slider = page.get_by_role("slider")
    slider.focus()
    slider.press("ArrowRight")
    wait_idle(page)
    expect(slider).to_have_value("1", timeout=PAGE_TIMEOUT_MS)
    expect(main).to_contain_text("picked in round 1")
    expect(page.get_by_test_id("stException")).to_have_count(0)
