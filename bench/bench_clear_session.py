"""What Streamlit's after-run keras.backend.clear_session() costs sessions that train.

Two threads race the cnn on scikit-learn digits (margin, 30 rounds, three seeds each), as
two dashboard sessions would, while a third thread calls keras.backend.clear_session()
every 0.2 s, as Streamlit 1.67 does after each script run of any session (the Run page
reruns often). Then the same without the clearing thread. See dashboard/streamlit_fixes.py.

    .venv/bin/python bench/bench_clear_session.py
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(clear: bool) -> float:
    sys.path.insert(0, str(ROOT))
    from alcore import ExperimentConfig
    from alcore._tf import keras
    from alcore.data.datasets import load_dataset
    from alcore.engine.loop import Experiment
    from alcore.engine.training import TrainerCache

    cfg = ExperimentConfig(dataset="digits", model="cnn", rounds=30, initial=20, batch_size=10, strategy="margin")
    ds = load_dataset(cfg)

    def work(i: int) -> None:
        cache = TrainerCache()
        for rep in range(3):
            for _ in Experiment(cfg.replace(seed=2 * rep + i), dataset=ds, cache=cache):
                pass

    done = threading.Event()

    def clearer() -> None:
        while not done.wait(0.2):
            keras.backend.clear_session(free_memory=False)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    if clear:
        threading.Thread(target=clearer, daemon=True).start()
    for t in threads:
        t.join()
    done.set()
    return time.perf_counter() - t0


def main() -> int:
    if len(sys.argv) > 1:  # a child process: one measurement, fresh TensorFlow state
        print(f"{one(sys.argv[1] == 'clear'):.1f}")
        return 0
    times = {}
    for mode in ("clear", "keep"):
        out = subprocess.run([sys.executable, __file__, mode], capture_output=True, text=True, check=True)
        times[mode] = float(out.stdout.strip().splitlines()[-1])
    print(f"two sessions training the cnn on digits (2 x 3 runs x 30 rounds):\n"
          f"  clear_session every 0.2 s: {times['clear']:.0f} s\n"
          f"  without it:                {times['keep']:.0f} s\n"
          f"  ratio: {times['clear'] / times['keep']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
