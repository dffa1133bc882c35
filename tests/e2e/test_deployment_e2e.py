"""End to end, as a visitor of a public deployment sees it: class names and a file name
from an uploaded .npz are drawn as text in the browser -- no link, image, icon or HTML.

Skipped when Chromium (/usr/bin/chromium) or playwright is not available.
"""
from __future__ import annotations

import os

import pytest
from conftest import npz_with_classes

from .appserver import open_page, wait_idle

pytestmark = pytest.mark.e2e

PAGE_TIMEOUT_MS = 60_000
EVIL = ["<img src=x onerror=alert(1)>", "[click](http://evil.example)", ":material/home: **bold** $x$",
        "<b>bold</b> &amp; www.evil.example"]


def evil_npz(path):
    path.write_bytes(npz_with_classes(EVIL, n=80))
    return path


def test_class_names_from_an_upload_are_text_in_the_browser(page, app_server, playwright_api, tmp_path):
    expect = playwright_api.expect
    page.goto(app_server)
    expect(page.get_by_role("heading", name="Dataset", exact=True).first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)
    dataset = page.get_by_role("combobox", name="Dataset")
    expect(dataset).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    dataset.click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    assert "Folder of idx files" not in options.all_inner_texts()  # no server paths on a public server
    page.get_by_role("option", name="Upload a .npz").click()
    wait_idle(page)

    upload = evil_npz(tmp_path / "[x](http:evil.example).npz")
    with page.expect_file_chooser(timeout=PAGE_TIMEOUT_MS) as fc:
        page.get_by_test_id("stFileUploaderDropzone").click()
    fc.value.set_files(str(upload))
    classes = page.get_by_test_id("stMetric").filter(has_text="Classes")
    expect(classes.get_by_test_id("stMetricValue")).to_have_text("4", timeout=PAGE_TIMEOUT_MS)
    expect(page.get_by_test_id("stPlotlyChart").locator(".xtick").first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)

    main = page.get_by_test_id("stMain")
    # Every markdown block of the page: its text as read (word joiners are invisible) and its tags.
    blocks = main.get_by_test_id("stMarkdownContainer").evaluate_all(
        "els => els.map(e => [e.innerText.replace(/\\u2060/g, ''),"
        " Array.from(e.querySelectorAll('*')).map(x => x.tagName.toLowerCase())])")
    for name in EVIL:  # each sample row is labelled with the name exactly as the file holds it, in bold only
        assert [name, ["p", "strong"]] in blocks, (name, blocks)
    source = main.get_by_test_id("stCaptionContainer").filter(has_text="Source:")
    expect(source).to_have_count(1)
    assert source.inner_text().replace("\u2060", "").endswith(" _x_(http_evil.example).npz")  # its name, no path
    assert source.locator("a").count() == 0
    # nothing from the file became a link, an image, an icon or maths anywhere on the page
    assert main.locator("a[href*='evil'], img[src='x'], .katex").count() == 0
    from alcore.figures import short_name  # gallery captions cut names short (issue 18); whole in the tables

    captions = [c.replace("\u2060", "").replace("\u00a0", " ")
                for c in main.get_by_test_id("stImageCaption").all_inner_texts()]
    assert any(f"mostly {short_name(name)} (" in c for c in captions for name in EVIL), captions
    chart = page.get_by_test_id("stPlotlyChart")
    assert chart.locator(".xtick text").all_text_contents() == EVIL  # not bold, not decoded, not a link
    assert chart.locator("a").count() == 0


def test_the_server_runs_with_two_malloc_arenas(page, app_server, playwright_api):
    """requirements.txt installs deploy/malloc_arenas, whose .pth caps glibc's arenas in a
    `streamlit run` process from its start (what MALLOC_ARENA_MAX=2 would do where the
    deployer cannot set the environment); the dashboard reports it once in the server's log."""
    pytest.importorskip("alcore_malloc_arenas", reason="alcore-malloc-arenas is not installed here")
    if "MALLOC_ARENA_MAX" in os.environ:
        pytest.skip("MALLOC_ARENA_MAX is set in this environment: the cap rightly leaves it alone")
    page.goto(app_server)
    playwright_api.expect(page.get_by_role("heading", name="Dataset", exact=True).first).to_be_visible(
        timeout=PAGE_TIMEOUT_MS)
    log = app_server.log_path.read_text(errors="replace")
    assert log.count("alcore: malloc arenas: ") == 1, log[-2000:]
    assert "alcore: malloc arenas: arena limit 2" in log, log[-2000:]


def test_no_page_asks_another_host_for_anything(page, app_server, playwright_api):
    """An offline or privacy-minded deployment: visiting every page sends no request to any host
    but the app's own (a Material icon as the page or tab icon made the browser fetch an SVG from
    fonts.gstatic.com on every visit; issue 18, item 10)."""
    from urllib.parse import urlparse

    expect = playwright_api.expect
    own = urlparse(app_server).netloc
    elsewhere: list[str] = []
    page.on("request", lambda r: elsewhere.append(r.url)
            if urlparse(r.url).scheme in ("http", "https", "ws", "wss") and urlparse(r.url).netloc != own else None)
    page.goto(app_server)
    expect(page.get_by_role("heading", name="Dataset", exact=True).first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    wait_idle(page)
    for title in ("Model", "Strategy", "Run", "Be the oracle", "Results", "Replay", "Compare",
                  "Reference experiments", "Dataset"):
        open_page(page, expect, title, check_url=False)
    page.wait_for_timeout(1000)  # a favicon is fetched after the page settles
    assert not elsewhere, f"requests to other hosts: {sorted(set(elsewhere))}"
