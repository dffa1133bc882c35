"""The low-budget MNIST race in the browser: 10 seeds to 200 labels on cached embeddings.

Starts the dashboard (``streamlit run app.py``, headless, ``ALCORE_DATA_DIR`` at the shared
MNIST files), opens the Run page from a setup link carrying the race of
``bench/low_budget_mnist.py`` (MNIST, softmax on the self-supervised embedding, 10 initial
labels with ``initial_strategy=strategy``, 19 batches of 10 to 200 labels, 3 000 candidates,
ProbCover's radius 0.8; random, typiclust, probcover and margin on 10 seeds; the server's
max_pool_size and max_runs_per_race lifted, which a public server's defaults would refuse), clicks Start in
headless Chromium and waits for "Race finished". Prints the seconds from the click to the end,
the load average before and after, and the Run page's table.

The embedding must be in the cache already (``python bench/low_budget_mnist.py`` once puts it
there); otherwise the first race trains the encoder, which the script reports and does not time.

    python bench/low_budget_browser.py [--seeds 10] [--strategies random typiclust probcover margin]

Needs Chromium at /usr/bin/chromium and the playwright package. The race is CPU-bound: the time
depends on what else runs on the machine.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.dashboard_memory import read_grid  # noqa: E402
from tests.e2e.appserver import (free_port, launch_page, start_server, stop_server,  # noqa: E402
                                 wait_healthy, wait_idle)

SHARED = ROOT.parent / "shared" / "datasets"
PAGE_TIMEOUT_MS = 600_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--strategies", nargs="+", default=["random", "typiclust", "probcover", "margin"])
    ap.add_argument("--data-dir", default=str(SHARED))
    ap.add_argument("--timeout", type=float, default=PAGE_TIMEOUT_MS / 1000, help="seconds to wait for the race")
    args = ap.parse_args()
    if not (Path(args.data_dir) / "mnist").is_dir():
        print(f"skipped: {Path(args.data_dir) / 'mnist'} is not here")
        return 0
    from playwright.sync_api import expect, sync_playwright

    from alcore import ExperimentConfig
    from alcore.data.datasets import load_dataset
    from alcore.engine.embeddings import EmbeddingCache, cache_key, content_hash
    from alcore.serve.share import encode, query_string

    config = ExperimentConfig(dataset="mnist", model="softmax", embedding="self_supervised", initial=10,
                              initial_strategy="strategy", batch_size=10, rounds=19, candidates=3000,
                              probcover_radius=0.8)
    ds = load_dataset(config.replace(data_dir=args.data_dir))
    cached = EmbeddingCache().path(cache_key(content_hash(ds), config)).is_file()
    print(f"embedding cached: {cached}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="low-budget-browser-"))
    port = free_port()
    base = f"http://localhost:{port}"
    log_path = work / "server.log"
    # a public server's default limits refuse this race (the whole 60 000-image pool is over
    # max_pool_size 20 000; 40 runs over max_runs_per_race 15): lifted here, as on a local server
    env = dict(os.environ, ALCORE_DATA_DIR=str(args.data_dir), ALCORE_MAX_POOL_SIZE="none",
               ALCORE_MAX_RUNS_PER_RACE="none")
    url = f"{base}/run?{query_string(encode(config, args.strategies, args.seeds))}"
    proc = None
    with sync_playwright() as p:
        browser, page = launch_page(p, PAGE_TIMEOUT_MS)
        try:
            proc = start_server(port, log_path, env)
            wait_healthy(proc, base, 120, log_path)
            page.goto(url)
            expect(page.get_by_role("heading", name="Run", exact=True).first).to_be_visible()
            wait_idle(page, PAGE_TIMEOUT_MS)
            setup = page.get_by_test_id("stSidebar").inner_text()
            print("setup from the link: " + " ".join(setup.split())[:400], flush=True)
            load_before = os.getloadavg()[0]
            t0 = time.monotonic()
            page.get_by_role("button", name="Start", exact=True).click()
            expect(page.get_by_text("Race finished").first).to_be_visible(timeout=args.timeout * 1000)
            seconds = time.monotonic() - t0
            grid = read_grid(page)
            page.screenshot(path=str(work / "run.png"), full_page=True)
        except Exception as e:  # report what was reached, then fail
            page.screenshot(path=str(work / "failed.png"), full_page=True)
            text = " ".join(page.get_by_test_id("stMain").inner_text().split())
            print(f"FAILED: {type(e).__name__}: {e}\n--- the page ---\n{text[:3000]}\n--- server log ---\n"
                  f"{log_path.read_text()[-3000:]}\nscreenshot: {work / 'failed.png'}")
            return 1
        finally:
            if proc:
                stop_server(proc)
            browser.close()
    print(f"race of {', '.join(args.strategies)} x {args.seeds} seeds to 200 labels: {seconds:.1f} s from Start to "
          f"'Race finished' (load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)"
          + ("" if cached else "; the embedding was NOT cached: this includes training the encoder"))
    print("Run page's table:")
    for row in grid:
        print("  " + " | ".join(row))
    print(f"screenshot: {work / 'run.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
