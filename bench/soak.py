"""Soak test: 20 consecutive MNIST races in one dashboard server; does memory stay bounded?

Starts the dashboard as a deployment would (``streamlit run app.py``) and drives it from
headless Chromium, like one visitor who keeps experimenting:

- Dataset page: MNIST (the deployer's ``$ALCORE_DATA_DIR`` points at ../shared/datasets, so
  no server path is typed), pool size ``--pool-size`` (default: the whole 60 000 images);
  Strategy page: ``--rounds`` rounds (default 10) of margin vs random.
- For run i = 1..N (default 20): seed i on the Dataset page (a new split: the dataset cache
  fills up and must evict), Run page -> Start -> "Race finished", then the Results page
  (galleries, confusion matrices).
- Each run's peak resident memory is the kernel's high-water mark ``VmHWM`` of the server
  process, reset before the run by writing 5 to ``/proc/<pid>/clear_refs``; where that is
  not allowed, the maximum of ``VmRSS`` sampled every 0.2 s. The RSS after the run is
  reported too.

The verdict compares the last run's peak with the 2nd's (the 1st also pays for importing
TensorFlow and compiling the models): the target is within 10%.

    .venv/bin/python -m bench.soak [--runs 20] [--rounds 10] [--pool-size 0]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from tests.e2e.appserver import (CHROMIUM, CHROMIUM_ARGS, free_port, open_page, server_command,  # noqa: E402
                                 start_server, stop_server, wait_healthy, wait_idle)

from bench.dashboard_memory import proc_status  # noqa: E402  (the /proc/<pid>/status reader)

DATA_DIR = (ROOT.parent / "shared" / "datasets").resolve()
PAGE_MS = 180_000
RACE_MS = 15 * 60_000


def status_kb(pid: int) -> dict[str, int]:
    status = proc_status(pid)
    if not status:
        raise FileNotFoundError(f"process {pid} is gone")
    return status


class PeakMeter(threading.Thread):
    """Peak RSS of one process between reset() and peak()."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.sampled, self._halt = pid, 0, threading.Event()
        self.exact = True

    def reset(self) -> None:
        self.sampled = status_kb(self.pid)["VmRSS"]
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        except OSError:
            self.exact = False

    def run(self):
        while not self._halt.wait(0.2):
            try:
                self.sampled = max(self.sampled, status_kb(self.pid)["VmRSS"])
            except (FileNotFoundError, KeyError):
                return

    def peak(self) -> int:
        return status_kb(self.pid)["VmHWM"] if self.exact else self.sampled

    def stop(self):
        self._halt.set()


def set_number(page, expect, name: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=name)
    box.fill(str(value))
    box.press("Enter")
    expect(box).to_have_value(str(value))
    time.sleep(0.3)
    wait_idle(page, PAGE_MS)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--pool-size", type=int, default=0, help="0: the whole 60 000-image training split")
    ns = ap.parse_args()
    if not (DATA_DIR / "mnist").is_dir():
        print(f"skipped: the MNIST idx files are not under {DATA_DIR / 'mnist'}")
        return 0
    from playwright.sync_api import expect, sync_playwright

    port, log = free_port(), Path(tempfile.mkdtemp(prefix="soak-")) / "server.log"
    env = dict(os.environ, ALCORE_DATA_DIR=str(DATA_DIR), ALCORE_RUNS_DIR=str(log.parent / "runs"),
               ALCORE_MAX_POOL_SIZE="none")  # the whole 60 000-image split is what is measured
    proc = start_server(port, log, env)
    base = f"http://localhost:{port}"
    rows = []
    t_all = time.monotonic()
    try:
        wait_healthy(proc, base, 120, log)
        meter = PeakMeter(proc.pid)
        meter.start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(PAGE_MS)
            page.goto(base)
            wait_idle(page, PAGE_MS)
            page.get_by_role("combobox", name="Dataset").click()
            page.get_by_role("option", name="MNIST", exact=True).click()
            time.sleep(0.3)
            wait_idle(page, PAGE_MS)
            if ns.pool_size:
                set_number(page, expect, "Pool size (0 = whole training split)", ns.pool_size)
            pool = page.get_by_test_id("stMetric").filter(has_text="Pool images").get_by_test_id("stMetricValue")
            expect(pool).to_have_text(f"{ns.pool_size or 60000:,}", timeout=PAGE_MS)
            open_page(page, expect, "Strategy", PAGE_MS)
            set_number(page, expect, "Rounds (0 = no round limit)", ns.rounds)
            print(f"{'run':>4}{'seed':>6}{'seconds':>9}{'peak MB':>9}{'RSS after MB':>14}{'final accuracy':>16}",
                  flush=True)
            try:
                run_all(page, expect, pool, proc, meter, rows, ns.runs)
            except Exception:
                shot = log.with_name("failure.png")
                page.screenshot(path=str(shot), full_page=True)
                print(f"failed; screenshot {shot}, server log {log}", flush=True)
                raise
            browser.close()
        meter.stop()
    finally:
        stop_server(proc)
    report(rows, ns, meter, port, t_all)
    arenas = [line for line in log.read_text(errors="replace").splitlines() if "alcore: malloc arenas:" in line]
    print(f"MALLOC_ARENA_MAX in the server's environment: {env.get('MALLOC_ARENA_MAX', 'not set')}; "
          f"server log: {arenas[0].strip() if arenas else 'no arena report'}")
    return 0 if verdict(rows) else 1


def run_all(page, expect, pool, proc, meter, rows, runs):
    """Race ``runs`` times (seeds 1..runs) and append each run's figures to ``rows``."""
    for i in range(1, runs + 1):
        open_page(page, expect, "Dataset", PAGE_MS, check_url=False)  # the default page: its address is /

        set_number(page, expect, "Seed", i)
        expect(pool).to_be_visible(timeout=PAGE_MS)
        meter.reset()
        t0 = time.monotonic()
        open_page(page, expect, "Run", PAGE_MS)
        page.get_by_role("button", name="Start", exact=True).click()
        # this run's curves (the previous race stays on the page until the new one starts)
        legend = page.get_by_test_id("stPlotlyChart").locator(".legendtext").filter(has_text=f"(seed {i})")
        expect(legend).to_have_count(2, timeout=PAGE_MS)
        expect(page.get_by_text("Race finished").first).to_be_visible(timeout=RACE_MS)
        wait_idle(page, PAGE_MS)
        open_page(page, expect, "Results", PAGE_MS)
        expect(page.get_by_text("Least confident unlabeled images")).to_be_visible(timeout=PAGE_MS)
        wait_idle(page, PAGE_MS)
        acc = (page.get_by_test_id("stMetric").filter(has_text="Test accuracy")
               .get_by_test_id("stMetricValue").first.inner_text())
        rows.append((i, time.monotonic() - t0, meter.peak(), status_kb(proc.pid)["VmRSS"], acc))
        r = rows[-1]
        print(f"{r[0]:>4}{r[0]:>6}{r[1]:>9.1f}{r[2] / 1024:>9.0f}{r[3] / 1024:>14.0f}{r[4]:>16}", flush=True)


def report(rows, ns, meter, port, t_all):
    print(f"\n{len(rows)} races of margin vs random on MNIST (pool {ns.pool_size or 60000:,}, "
          f"{ns.rounds} rounds each) in one server process; {time.monotonic() - t_all:.0f} s in all.")
    print(f"peak = {'VmHWM reset per run via /proc/<pid>/clear_refs' if meter.exact else 'max sampled VmRSS'}; "
          f"server: (cd {ROOT} && {' '.join(server_command(port))})")
    if len(rows) >= 2:
        second, last = rows[1][2], rows[-1][2]
        change = last / second - 1
        print(f"run {rows[-1][0]} peak vs run 2 peak: {last / 1024:.0f} MB vs {second / 1024:.0f} MB "
              f"({change:+.1%}); target within 10%: {'met' if abs(change) <= 0.10 else 'NOT met'}")


def verdict(rows) -> bool:
    return len(rows) >= 2 and abs(rows[-1][2] / rows[1][2] - 1) <= 0.10


if __name__ == "__main__":
    sys.exit(main())
