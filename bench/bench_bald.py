"""BALD query time: 10 MC-dropout passes of the default cnn over 10 000 MNIST images.

    .venv/bin/python bench/bench_bald.py            # about 2-3 minutes on 2 cores
    .venv/bin/python bench/bench_bald.py --repeats 5 --passes 20

What is timed (one acquisition step of BALD as the loop runs it):

1. ``Trainer.predict_proba_mc(x_candidates, passes)``: the stochastic forward
   passes with dropout active, (passes, 10 000, 10);
2. :func:`alcore.strategies.bayesian.bald_scores` on them;
3. :func:`alcore.strategies.base.top_k` of 10.

Setup (not timed): MNIST from ``<repo>/../shared/datasets`` (skipped with a message
if absent), a pool of 10 100 images, 100 random ones labeled, the other 10 000 the
candidates; the default ``cnn`` (filters 32, dropout 0.25) trained on the 100
labels for 20 epochs through :class:`alcore.engine.training.Trainer`; one small warm-up
call so graph tracing is not timed (the first call's time is printed separately).
Reported: the median of ``--repeats`` (default 3) timings against a 30 s target,
and for reference one deterministic pass (``predict_proba``) over the same images.

``predict_proba_mc`` runs the layers before the first Dropout (for the cnn: both
convolutions and the pooling) once per chunk and only the rest ``passes`` times.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"

TARGET_SECONDS = 30.0
CANDIDATES = 10_000
LABELED = 100
PICK = 10


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--passes", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()

    if not (SHARED / "mnist").is_dir():
        print(f"skipped: needs the MNIST idx files at {SHARED / 'mnist'} (absent here)")
        return 0

    from alcore import ExperimentConfig
    from alcore.strategies.bayesian import bald_scores
    from alcore.data.datasets import load_dataset
    from alcore.engine.models import ModelSpec
    from alcore.strategies.base import top_k
    from alcore.engine.training import TrainerCache
    import tensorflow as tf

    cfg = ExperimentConfig(dataset="mnist", data_dir=str(SHARED), pool_size=CANDIDATES + LABELED,
                           test_size=1000, model="cnn", seed=0)
    t0 = time.perf_counter()
    ds = load_dataset(cfg)
    order = np.random.default_rng(0).permutation(len(ds.y_pool))
    labeled, cand = order[:LABELED], np.sort(order[LABELED:])
    x_cand = np.asarray(ds.x_pool[cand])
    print(f"data: MNIST pool {len(ds.y_pool)}, images {ds.image_shape}, {len(cand)} candidates "
          f"({time.perf_counter() - t0:.1f} s to load)")

    spec = ModelSpec.from_config(cfg, ds.image_shape, ds.n_classes)
    trainer = TrainerCache().get(spec, cfg.optimizer, cfg.momentum, cfg.train_batch_size)
    trainer.set_weights(trainer.initial_weights(cfg.seed))
    trainer.reset_optimizer(cfg.learning_rate)
    t0 = time.perf_counter()
    report = trainer.fit(ds.x_pool[labeled], ds.y_pool[labeled], max_epochs=args.epochs, patience=1,
                         rng=np.random.default_rng(1))
    acc = float((trainer.predict_proba(ds.x_test).argmax(1) == ds.y_test).mean())
    print(f"model: cnn filters={spec.filters} dropout={spec.dropout}, {trainer.count_params()} parameters, "
          f"trained {report.epochs} epochs on {LABELED} labels in {time.perf_counter() - t0:.1f} s "
          f"(compile included), test accuracy {acc:.3f}")
    print(f"machine: {tf.config.threading.get_intra_op_parallelism_threads() or 'default'} intra-op threads, "
          f"TensorFlow {tf.__version__}")

    t0 = time.perf_counter()
    trainer.predict_proba_mc(x_cand[:8], 2)
    first_call = time.perf_counter() - t0

    t0 = time.perf_counter()
    trainer.predict_proba(x_cand)
    one_pass = time.perf_counter() - t0

    runs = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        mc = trainer.predict_proba_mc(x_cand, args.passes)
        t1 = time.perf_counter()
        scores = bald_scores(mc)
        t2 = time.perf_counter()
        picks = top_k(scores, PICK, np.random.default_rng(r))
        t3 = time.perf_counter()
        runs.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
        print(f"  run {r + 1}: passes {t1 - t0:6.2f} s  score {1e3 * (t2 - t1):6.1f} ms  "
              f"select {1e3 * (t3 - t2):5.2f} ms  total {t3 - t0:6.2f} s  "
              f"(top BALD {scores[picks[0]]:.3f}, mean {scores.mean():.3f})")

    med = [statistics.median(col) for col in zip(*runs)]
    verdict = "OK, under" if med[3] < TARGET_SECONDS else "OVER"
    print(f"first MC call on 8 images (graph tracing): {first_call:.2f} s")
    print(f"one deterministic pass over {len(cand)} images (predict_proba): {one_pass:.2f} s")
    print(f"BALD, {args.passes} passes x {len(cand)} candidates, select {PICK}: median of {args.repeats}: "
          f"passes {med[0]:.2f} s + scoring {1e3 * med[1]:.1f} ms + selecting {1e3 * med[2]:.2f} ms "
          f"= {med[3]:.2f} s  [target < {TARGET_SECONDS:.0f} s: {verdict}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
