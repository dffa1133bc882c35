"""The server's share of the first page: the Dataset page's first script run in a fresh process
(imports included, as on a server that just started), without a browser.

Each repetition starts a new Python process that runs ``app.py`` once through Streamlit's
AppTest and reports the seconds of that run and which heavy packages it imported; with
``--against``, repetitions alternate between this checkout and another (e.g. a ``git archive``
of main), so both are measured in the same conditions. Prints every run, the medians, their
ratio and the load. ``bench/dashboard_memory.py --startup-only`` measures the whole first page
in a browser; this is the part the server spends.

    .venv/bin/python -m bench.first_page_script [--repeat N] [--against OTHER_CHECKOUT]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "sklearn", "scipy", "pandas")
RUN = """
import json, sys, time
t0 = time.perf_counter()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=300)
t1 = time.perf_counter()
at.run()
t2 = time.perf_counter()
assert not at.exception, at.exception
print(json.dumps({"streamlit": t1 - t0, "first_run": t2 - t1,
                  "pool": [m.value for m in at.metric if m.label == "Pool images"],
                  "imported": [m for m in %r if m in sys.modules]}))
""" % (HEAVY,)


def once(root: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", RUN, str(root / "app.py")], cwd=root, env=env,
                         capture_output=True, text=True, timeout=600)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--against", type=Path, default=None, help="another checkout, measured alternately")
    args = ap.parse_args()
    roots = [ROOT] + ([args.against.resolve()] if args.against else [])
    runs: dict[Path, list[float]] = {r: [] for r in roots}
    loads = [os.getloadavg()[0]]
    for i in range(args.repeat):
        for root in roots if i % 2 == 0 else roots[::-1]:
            r = once(root)
            runs[root].append(r["first_run"])
            loads.append(os.getloadavg()[0])
            print(f"{root}: first script run {r['first_run']:.2f} s (Pool images {r['pool']}; "
                  f"imported {', '.join(r['imported']) or 'none of ' + ', '.join(HEAVY)})", flush=True)
    print(f"\nmachine: {os.cpu_count()} CPUs; 1-minute load average {min(loads):.1f}-{max(loads):.1f}")
    medians = {root: statistics.median(ts) for root, ts in runs.items()}
    for root, m in medians.items():
        print(f"median of {len(runs[root])} from {root}: {m:.2f} s")
    if args.against:
        print(f"ratio this / other: {medians[ROOT] / medians[roots[1]]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
