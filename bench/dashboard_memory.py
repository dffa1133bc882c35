"""Dashboard startup time and server memory during a whole-MNIST race (README, deploy section).

Starts the dashboard exactly as a deployment would (``streamlit run app.py``, headless,
on a free port) and drives it from headless Chromium through Playwright, like a user:

1. Startup: seconds from launching the server process until
   a) ``/_stcore/health`` answers "ok", and
   b) the first widget (the "Dataset" selectbox) is shown and usable, and
   c) the default Dataset page is fully drawn in the browser: the metric
      "Pool images" is visible and ``[data-testid='stApp'][data-test-script-state='notRunning']``
      is present (the page's first script run, k-means centroids included, has finished).
   The browser is launched before the server, so its own start-up is not counted.
2. Memory of the Streamlit server process while it serves an MNIST race:
   Dataset page -> "Dataset" = MNIST, "Data dir" = <repo>/../shared/datasets (absolute),
   optionally "Pool size (0 = whole training split)" = N (``--pool-size``; default 0 = the
   whole 60 000-image training split); wait for "Pool images"; Run page -> Start, and wait
   for "Race finished" (default race: margin vs random, softmax, 10 initial labels,
   39 rounds of 10 -> 80 rounds in all); then the Results page (it builds image galleries).
   The peak resident set size is the kernel's high-water mark ``VmHWM`` from
   ``/proc/<pid>/status``, read once at the end; ``VmRSS`` is also sampled every 0.5 s in a
   background thread to report the RSS at each milestone. The server is a single Python
   process (``<sys.executable> -m streamlit run app.py ...``); if it ever has child
   processes they are listed and their RSS is reported separately.
3. Prints a plain-text report: both startup milestones, RSS at each milestone, peak RSS,
   race wall time, each strategy's final test accuracy as the Run page's table shows it,
   and the exact server command.

With ``--pool-size N`` the pool size is entered before the data folder, so the server
only ever prepares (and caches) the N-image pool; the raw 60 000-image split is still
read from the idx files while preparing it.

Needs Chromium at /usr/bin/chromium and the playwright package (no browser download),
and the MNIST idx files under ../shared/datasets/mnist relative to the repository root.
Run from the repository root:

    .venv/bin/python -m bench.dashboard_memory [--pool-size N]
    .venv/bin/python -m bench.dashboard_memory --startup-only [--repeat N] [--against OTHER_CHECKOUT]

``--startup-only`` measures step 1 alone (no MNIST needed), ``--repeat`` times on fresh servers,
alternating with ``--against``'s checkout where given, and prints the medians.

Numbers depend on the machine and on what else runs on it (the race is CPU-bound).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from tests.e2e.appserver import (CHROMIUM, CHROMIUM_ARGS, free_port, open_page as _open_page,  # noqa: E402
                                 server_command, start_server, stop_server, wait_healthy,
                                 wait_idle as _wait_idle)

DATA_DIR = (ROOT.parent / "shared" / "datasets").resolve()
STARTUP_TIMEOUT_S = 120
PAGE_TIMEOUT_MS = 180_000  # one script run: loading MNIST, k-means on the pool, galleries
RACE_TIMEOUT_MS = 15 * 60_000
SAMPLE_S = 0.5


# ----------------------------------------------------------------------------- process

def proc_status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/<pid>/status (VmRSS, VmHWM, ...); {} once the process is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    out[key] = int(parts[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def descendants(pid: int) -> list[int]:
    """Child processes of pid, recursively (from /proc/<pid>/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(c) for c in f.read().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
            found += kids
            todo += kids
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return " ".join(a.decode(errors="replace") for a in f.read().split(b"\0") if a)
    except FileNotFoundError:
        return "?"


class Sampler(threading.Thread):
    """Samples VmRSS of the server (and of any children) every SAMPLE_S seconds."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, int, int]] = []  # (time, server kB, children kB)
        self.children: dict[int, str] = {}
        self.child_hwm: dict[int, int] = {}
        self._halt = threading.Event()

    def sample(self) -> tuple[int, int]:
        rss = proc_status(self.pid).get("VmRSS", 0)
        kids = 0
        for c in descendants(self.pid):
            st = proc_status(c)
            if not st:
                continue
            self.children.setdefault(c, cmdline(c))
            self.child_hwm[c] = max(self.child_hwm.get(c, 0), st.get("VmHWM", 0))
            kids += st.get("VmRSS", 0)
        self.samples.append((time.monotonic(), rss, kids))
        return rss, kids

    def run(self):
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(SAMPLE_S)

    def stop(self):
        self._halt.set()
        self.join(timeout=5)

    def max_rss(self) -> tuple[int, int]:
        return (max((s[1] for s in self.samples), default=0),
                max((s[1] + s[2] for s in self.samples), default=0))


def mb(kb: int) -> str:
    return f"{kb / 1024:,.0f} MB"


# ----------------------------------------------------------------------------- browser

def wait_idle(page, timeout=PAGE_TIMEOUT_MS):
    _wait_idle(page, timeout)


def open_page(page, expect, title: str):
    _open_page(page, expect, title, PAGE_TIMEOUT_MS)


def pool_metric(page):
    return page.get_by_test_id("stMetric").filter(has_text="Pool images").get_by_test_id("stMetricValue")


def read_grid(page) -> list[list[str]]:
    """Rows of the first st.dataframe on the page, from glide-data-grid's accessibility table."""
    rows = []
    grid = page.get_by_test_id("stDataFrame").first
    # the accessibility table is filled in after the canvas is drawn
    page.wait_for_function(
        "() => [...document.querySelectorAll(\"[data-testid='stDataFrame'] table[role='grid'] td\")]"
        ".some(td => td.innerText.trim())", timeout=30_000)
    for tr in grid.locator("table[role='grid'] tr").all():
        cells = [c.strip() for c in tr.locator("th, td").all_inner_texts()]
        if any(cells):
            rows.append(cells)
    return rows


def startup(page, expect, port: int, log_path: Path, env: dict, t: dict, info: dict, root: Path = ROOT):
    """Launch the server and open its first page in ``page``: the three startup milestones into
    ``t`` (seconds from launching the server), Pool images into ``info``; (server process, sampler)."""
    base = f"http://localhost:{port}"
    t0 = time.monotonic()
    proc = start_server(port, log_path, env, root=root)
    sampler = Sampler(proc.pid)
    sampler.start()
    try:
        wait_healthy(proc, base, STARTUP_TIMEOUT_S, log_path)
        t["health"] = time.monotonic() - t0
        info["rss_healthy"] = sampler.sample()
        page.goto(base)
        expect(page.get_by_role("combobox", name="Dataset")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        t["first_widget"] = time.monotonic() - t0
        expect(pool_metric(page)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        wait_idle(page)
        t["interactive"] = time.monotonic() - t0
        info["startup_pool"] = pool_metric(page).inner_text()
    except BaseException:
        sampler.stop()
        stop_server(proc)
        raise
    return proc, sampler


def startup_only(repeat: int, against: Path | None, env: dict) -> int:
    """The startup milestones only, ``repeat`` times, each on a fresh server and a fresh browser
    context; with ``against``, alternately from this checkout and that one (a/b, in the same run
    conditions). Prints every run and the medians."""
    import statistics

    from playwright.sync_api import expect, sync_playwright

    roots = [ROOT] + ([against.resolve()] if against else [])
    runs: dict[Path, list[dict[str, float]]] = {r: [] for r in roots}
    loads = [os.getloadavg()[0]]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for i in range(repeat):
                for root in roots if i % 2 == 0 else roots[::-1]:
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = context.new_page()
                    page.set_default_timeout(PAGE_TIMEOUT_MS)
                    t: dict[str, float] = {}
                    info: dict[str, object] = {}
                    log_path = Path(tempfile.mkdtemp(prefix="dashboard-startup-")) / "server.log"
                    proc, sampler = startup(page, expect, free_port(), log_path, env, t, info, root)
                    sampler.stop()
                    stop_server(proc)
                    context.close()
                    runs[root].append(t)
                    loads.append(os.getloadavg()[0])
                    print(f"{root}: health {t['health']:.1f} s, first widget {t['first_widget']:.1f} s, "
                          f"fully drawn {t['interactive']:.1f} s (Pool images = {info['startup_pool']})", flush=True)
        finally:
            browser.close()
    print()
    print(f"machine: {os.cpu_count()} CPUs; 1-minute load average {min(loads):.1f}-{max(loads):.1f} during the runs")
    for root, ts in runs.items():
        print(f"median of {len(ts)} from {root} ({_commit(root)}): " + ", ".join(
            f"{name} {statistics.median(x[key] for x in ts):.1f} s"
            for key, name in (("health", "health"), ("first_widget", "first widget"), ("interactive", "fully drawn"))))
    return 0


def _commit(root: Path) -> str:
    import subprocess

    out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "not a git checkout"


# ----------------------------------------------------------------------------- main

def _print_timings(t: dict[str, float], info: dict[str, object]) -> None:
    if "health" in t:
        print(f"startup, /_stcore/health 'ok':        {t['health']:6.1f} s")
    if "first_widget" in t:
        print(f"startup, first widget usable:         {t['first_widget']:6.1f} s  (the Dataset selectbox)")
    if "interactive" in t:
        print(f"startup, Dataset page fully drawn:    {t['interactive']:6.1f} s  "
              f"(Pool images = {info.get('startup_pool')})")
    if "mnist_chosen" in t:
        print(f"MNIST chosen, Data dir empty:         {t['mnist_chosen']:6.1f} s  "
              "(keras.datasets download attempt, fails offline)")
    if "mnist" in t:
        print(f"MNIST chosen + loaded (Dataset page): {t['mnist']:6.1f} s  (both steps, from choosing MNIST)")
    if "race" in t:
        print(f"race wall time (Start -> finished):   {t['race']:6.1f} s  ({info.get('progress')})")
    if "results" in t:
        print(f"Results page render:                  {t['results']:6.1f} s")


def _print_memory(rss_at: list[tuple[str, int, int]], status: dict, sampler) -> None:
    print("RSS of the server process at each milestone:")
    for name, kb, kid_kb in rss_at:
        print(f"  {name:<45} {mb(kb):>9}" + (f"  (+ children {mb(kid_kb)})" if kid_kb else ""))
    hwm = status.get("VmHWM", 0)
    smax, smax_all = sampler.max_rss() if sampler else (0, 0)
    print(f"  {'final VmRSS':<45} {mb(status.get('VmRSS', 0)):>9}")
    print()
    print(f"PEAK RSS of the server (VmHWM):  {mb(hwm)}  ({hwm:,} kB)")
    print(f"max sampled VmRSS (every {SAMPLE_S} s): {mb(smax)}"
          + (f"; with children {mb(smax_all)}" if smax_all != smax else ""))


def _print_table(info: dict[str, object], raced: bool) -> None:
    table = info.get("table")
    if isinstance(table, list) and table:
        print("final test accuracy (Run page table):")
        head = table[0]
        for row in table:
            if row is not head and "test accuracy" in head and len(row) == len(head):
                row = list(row)
                i = head.index("test accuracy")
                try:
                    row[i] = f"{float(row[i]):.2%}"
                except ValueError:
                    pass
            print("  " + " | ".join(row))
    elif raced:
        print(f"final test accuracy (Run page table): {table or 'table empty'}")


def _print_failure(failed: Exception, info: dict[str, object], log_path: Path) -> None:
    print()
    print(f"FAILED: {type(failed).__name__}: {failed}")
    if info.get("screenshot"):
        print(f"screenshot: {info['screenshot']}")
    tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
    if tail:
        print("--- server log (tail) ---")
        print(tail)


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool-size", type=int, default=0,
                    help="'Pool size (0 = whole training split)' on the Dataset page (default 0)")
    ap.add_argument("--startup-only", action="store_true",
                    help="measure only the startup (server healthy, first widget, first page fully drawn)")
    ap.add_argument("--repeat", type=int, default=1, help="with --startup-only: how many times (default 1)")
    ap.add_argument("--against", type=Path, default=None,
                    help="with --startup-only: another checkout (e.g. a `git archive` of main) measured "
                         "alternately with this one")
    args = ap.parse_args()
    if args.pool_size < 0:
        ap.error("--pool-size must be >= 0")
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if (args.repeat > 1 or args.against) and not args.startup_only:
        ap.error("--repeat and --against go with --startup-only")
    return args


def main() -> int:
    args = _args()
    env = dict(os.environ)
    env.pop("ALCORE_DATA_DIR", None)  # the folder is typed into the page, as a user would
    env["ALCORE_ALLOW_SERVER_PATHS"] = "1"  # which only a server that allows paths offers
    env["ALCORE_MAX_POOL_SIZE"] = "none"  # the whole 60 000-image split is what is measured
    if args.startup_only:
        return startup_only(args.repeat, args.against, env)
    if not (DATA_DIR / "mnist").is_dir():
        print(f"MNIST idx files not found under {DATA_DIR / 'mnist'}", file=sys.stderr)
        return 2
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="dashboard-memory-")) / "server.log"
    expected_pool = f"{args.pool_size:,}" if args.pool_size else "60,000"

    rss_at: list[tuple[str, int, int]] = []  # (milestone, server kB, children kB)
    t: dict[str, float] = {}
    info: dict[str, object] = {}
    proc = sampler = None
    failed = None

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)

            # 1. Startup -------------------------------------------------------------
            proc, sampler = startup(page, expect, port, log_path, env, t, info)
            rss_at.append(("server healthy", *info.pop("rss_healthy")))
            rss_at.append(("Dataset page interactive (digits)", *sampler.sample()))

            # 2a. MNIST from the idx folder ------------------------------------------
            t1 = time.monotonic()
            page.get_by_role("combobox", name="Dataset").click()
            page.get_by_role("option", name="MNIST", exact=True).click()
            data_dir = page.get_by_role("textbox", name="Data dir")
            expect(data_dir).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            wait_idle(page)  # the empty folder means a keras download attempt; offline it fails
            t["mnist_chosen"] = time.monotonic() - t1
            rss_at.append(("MNIST chosen, Data dir still empty", *sampler.sample()))
            if args.pool_size:
                pool = page.get_by_role("spinbutton", name="Pool size (0 = whole training split)")
                pool.fill(str(args.pool_size))
                pool.press("Enter")
                time.sleep(0.3)
                wait_idle(page)
            data_dir.fill(str(DATA_DIR))
            data_dir.press("Enter")
            time.sleep(0.3)
            expect(pool_metric(page)).to_have_text(expected_pool, timeout=PAGE_TIMEOUT_MS)
            wait_idle(page)
            t["mnist"] = time.monotonic() - t1
            rss_at.append((f"MNIST loaded, pool {expected_pool}, Dataset page done", *sampler.sample()))

            # 2b. The race -----------------------------------------------------------
            open_page(page, expect, "Run")
            info["setup"] = page.get_by_test_id("stMain").get_by_test_id("stMarkdown").first.inner_text()
            t2 = time.monotonic()
            page.get_by_role("button", name="Start", exact=True).click()
            expect(page.get_by_text("Race finished").first).to_be_visible(timeout=RACE_TIMEOUT_MS)
            t["race"] = time.monotonic() - t2
            wait_idle(page)
            rss_at.append(("race finished", *sampler.sample()))
            info["progress"] = page.get_by_test_id("stProgress").inner_text().strip()
            try:
                info["table"] = read_grid(page)
            except Exception as e:  # the table is a nicety; the memory numbers matter
                info["table"] = f"could not read the table: {e}"

            # 2c. Results page -------------------------------------------------------
            t3 = time.monotonic()
            open_page(page, expect, "Results")
            expect(page.get_by_role("heading", name="Inside a round")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            expect(page.get_by_text("Least confident unlabeled images")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            wait_idle(page)
            t["results"] = time.monotonic() - t3
            info["results_metric"] = (page.get_by_test_id("stMetric").filter(has_text="Test accuracy")
                                      .get_by_test_id("stMetricValue").first.inner_text())
            rss_at.append(("Results page rendered", *sampler.sample()))
        except Exception as e:
            failed = e
            try:
                shot = log_path.with_name("failure.png")
                page.screenshot(path=str(shot), full_page=True)
                info["screenshot"] = str(shot)
            except Exception:
                pass
        finally:
            status, kids = {}, {}
            try:
                if proc is not None:
                    status = proc_status(proc.pid)  # VmHWM: read before the server stops
                if sampler is not None:
                    sampler.sample()
                    sampler.stop()
                    kids = dict(sampler.children)
            finally:
                try:
                    if proc is not None:
                        stop_server(proc)
                finally:
                    browser.close()

    # 3. Report ------------------------------------------------------------------------
    print()
    print("Dashboard startup and memory benchmark")
    print("=" * 38)
    print(f"script:         {shlex.join([sys.executable, *sys.argv])}")
    print(f"server command: (cd {ROOT} && {shlex.join(server_command(port))})")
    print(f"server PID:     {proc.pid if proc else '-'} (python -m streamlit; its RSS is what is reported)")
    if kids:
        for c, line in kids.items():
            print(f"  child {c}: {line[:100]} (peak {mb(sampler.child_hwm.get(c, 0))})")
    else:
        print("  child processes: none seen")
    print(f"machine:        {os.cpu_count()} CPUs; load average at the end {os.getloadavg()[0]:.1f}")
    print(f"server log:     {log_path}")
    print()
    _print_timings(t, info)
    print()
    _print_memory(rss_at, status, sampler)
    if info.get("setup"):
        print(f"race setup (Run page): {info['setup']}")
    _print_table(info, "race" in t)
    if info.get("results_metric"):
        print(f"Results page, first run, last round: Test accuracy {info['results_metric']}")
    if failed is not None:
        _print_failure(failed, info, log_path)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
