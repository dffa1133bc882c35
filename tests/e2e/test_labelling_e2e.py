"""End to end: your own images without labels, labelled in the loop in a real browser on
`streamlit run app.py`: upload a .zip of unlabeled images, name the classes, label the audit set,
the initial images and two rounds' batches by keyboard (class keys, Enter submits), download the
labelled images as a zip, and read it back with keras.utils.image_dataset_from_directory to the
same labels; then replay the run on Replay, from this session and from its downloaded result file,
with the person's labels under its images.

Skipped when Chromium (/usr/bin/chromium) or playwright is not available.
"""
from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest
from PIL import Image

from .appserver import open_page, upload_image_zip, wait_idle

pytestmark = pytest.mark.e2e

PAGE_TIMEOUT_MS = 60_000
TRAIN_TIMEOUT_MS = 180_000
COLOURS = {"ant": (200, 30, 30), "bee": (30, 200, 30), "cat": (30, 30, 200)}
BATCH, INITIAL, AUDIT = 5, 4, 50


def unlabeled_zip(path) -> None:
    """75 images of three colours, no class folders: the file name tells the test the truth."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as z:
        for c, col in COLOURS.items():
            for i in range(25):
                pixels = np.clip(np.array(col) + rng.integers(-20, 21, (10, 12, 3)), 0, 255).astype(np.uint8)
                b = io.BytesIO()
                Image.fromarray(pixels).save(b, "PNG")
                z.writestr(f"shots/{c}{i:02d}.png", b.getvalue())


def key_of(text: str) -> str:
    """The key of the class an item's file name names (keys 1, 2, 3 for ant, bee, cat)."""
    name = re.search(r"(ant|bee|cat)\d\d\.png", text.replace("\u2060", "").replace("\\", "")).group(1)
    return str(list(COLOURS).index(name) + 1)


def label_batch_by_keyboard(page, expect) -> int:
    """Press each image's class key, in order, then Enter; the batch's size. Each press is
    checked on the image it was meant for (its label button turns primary) before the next."""
    # the batch is drawn once its key row listens: while the page reruns after a submit, the new
    # heading can be up above the last batch's keys, all disabled (that batch was complete), and a
    # tag read then named a row about to vanish
    fresh = page.locator("[class*='st-key-labelling_key_']:has(button:enabled)").first
    expect(fresh).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    expect(page.get_by_text(re.compile(r"^0 of \d+ labelled\.$"))).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)
    items = page.locator("[class*='st-key-labelling_item_']")
    n = items.count()
    assert 0 < n <= BATCH
    tag = re.search(r"st-key-labelling_key_(\S+)_\d+", fresh.get_attribute("class")).group(1)
    for pos in range(n):
        key = key_of(page.locator(f".st-key-labelling_item_{pos}").inner_text())
        # a key's shortcut listens once its button is drawn and enabled: after a rerun on a loaded
        # machine, a key pressed before that was lost
        expect(page.locator(f".st-key-labelling_key_{tag}_{int(key) - 1} button")).to_be_enabled(
            timeout=PAGE_TIMEOUT_MS)
        page.keyboard.press(key)
        expect(page.locator(f".st-key-labelling_label_{tag}_{pos}_{int(key) - 1} button")).to_have_attribute(
            "data-testid", "stBaseButton-primary", timeout=PAGE_TIMEOUT_MS)
        expect(page.get_by_text(f"{pos + 1} of {n} labelled.")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        wait_idle(page)
    submit = page.locator(".st-key-labelling_submit_button button")
    expect(submit).to_be_enabled()
    page.keyboard.press("Enter")
    return n


def test_label_an_unlabeled_upload_by_keyboard_and_read_the_zip_back(page, app_server, playwright_api, tmp_path):
    expect = playwright_api.expect
    shots = tmp_path / "shots.zip"
    unlabeled_zip(shots)
    page.goto(f"{app_server}/?model=softmax&initial={INITIAL}&batch_size={BATCH}&rounds=2&image_size=16")
    expect(page.get_by_role("heading", name="Dataset", exact=True).first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)
    upload_image_zip(page, shots)
    expect(page.get_by_text(re.compile("the images have no labels"))).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)

    open_page(page, expect, "Be the oracle", check_url=False)
    expect(page.get_by_text(re.compile("you are the oracle for all of them"))).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    classes = page.get_by_role("textbox", name="Your classes, comma-separated")
    classes.fill("ant, bee, cat")
    classes.press("Enter")
    wait_idle(page)
    audit = page.get_by_role("spinbutton", name="Audit set")
    audit.fill(str(AUDIT))
    audit.press("Enter")
    expect(audit).to_have_value(str(AUDIT))
    wait_idle(page)
    page.get_by_role("button", name="Start labelling", exact=True).click()

    # the audit set, BATCH at a time, then the initial images (round 0 trains), then two rounds' batches
    expect(page.get_by_role("heading", name=re.compile(r"^Audit set: images 1-5 of 50"))).to_be_visible(
        timeout=PAGE_TIMEOUT_MS)
    done = 0
    while done < AUDIT:
        wait_idle(page)
        expect(page.get_by_role("heading", name=re.compile(rf"^Audit set: images {done + 1}-"))).to_be_visible(
            timeout=PAGE_TIMEOUT_MS)
        done += label_batch_by_keyboard(page, expect)
    expect(page.get_by_role("heading", name=re.compile("^Initial images"))).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)
    assert label_batch_by_keyboard(page, expect) == INITIAL
    for batch in (1, 2):
        expect(page.get_by_role("heading", name=re.compile(rf"^Batch {batch}:"))).to_be_visible(
            timeout=TRAIN_TIMEOUT_MS)
        wait_idle(page)
        assert label_batch_by_keyboard(page, expect) == BATCH
    expect(page.get_by_text(re.compile("The run is complete"))).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"95% Wilson interval"))).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_text(re.compile(r"50 of 50 audit labels"))).to_be_visible()

    button = page.get_by_test_id("stDownloadButton").filter(has_text="Labelled images (.zip")
    with page.expect_download(timeout=PAGE_TIMEOUT_MS) as dl:
        button.get_by_role("button").click()
    saved = tmp_path / dl.value.suggested_filename
    dl.value.save_as(saved)
    out = tmp_path / "labels"
    with zipfile.ZipFile(saved) as z:
        z.extractall(out)
        assert len(z.namelist()) == AUDIT + INITIAL + 2 * BATCH

    import keras

    back = keras.utils.image_dataset_from_directory(out, labels="inferred", shuffle=False, image_size=(16, 16),
                                                    batch_size=None)
    labels = [back.class_names[int(y)] for _, y in back.as_numpy_iterator()]
    assert len(labels) == AUDIT + INITIAL + 2 * BATCH
    for path, label in zip(back.file_paths, labels):  # each image under the class its file name says
        assert re.search(r"_(ant|bee|cat)\d\d\.png$", path).group(1) == label

    # Replay: this session's labelling run, then its downloaded result file as a visitor uploads it
    # (the zip is this session's upload): the person's labels under the picks, the audit accuracy
    button = page.get_by_test_id("stDownloadButton").filter(has_text="Download your run's result file")
    with page.expect_download(timeout=PAGE_TIMEOUT_MS) as dl:
        button.get_by_role("button").click()
    result = tmp_path / dl.value.suggested_filename
    dl.value.save_as(result)
    open_page(page, expect, "Replay", timeout=TRAIN_TIMEOUT_MS)
    source = page.get_by_test_id("stRadio").filter(has_text="Runs from")
    expect(source.get_by_role("radio", name="Your runs on Be the oracle")).to_be_checked()
    for origin in ("session", "file"):
        if origin == "file":
            source.get_by_text("Result files", exact=True).click()
            wait_idle(page)
            page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(result))
            wait_idle(page, TRAIN_TIMEOUT_MS)
        expect(page.get_by_test_id("stMetric").filter(has_text="Accuracy on the audit set")).to_be_visible(
            timeout=TRAIN_TIMEOUT_MS)
        expect(page.get_by_text(re.compile(r"95% Wilson interval .* audit set|audit set.*95% Wilson"))).to_be_visible()
        captions = page.get_by_test_id("stImageCaption")
        expect(captions.first).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
        texts = [t.replace("\u00a0", " ").replace("\u2060", "") for t in captions.all_inner_texts()]
        assert sum("labelled " in t for t in texts) >= BATCH and not any(" true " in t for t in texts), texts
        expect(page.get_by_text("The pool in 2-D")).to_be_visible()
        assert not page.get_by_test_id("stException").count() and not page.get_by_test_id("stAlertContentError").count()
