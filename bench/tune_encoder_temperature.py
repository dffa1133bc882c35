"""Choose the SimCLR encoder's NT-Xent temperature without any test set: does a lower one than
``simclr.TEMPERATURE`` (0.5) make the low-budget race's typicality gains at the same steps?

The development split of MNIST or Fashion-MNIST (the same cut as ``bench/low_budget_mnist.py
--dev``): the first 50 000 *training* images are the pool the encoder trains on (no label read),
the last 10 000 the held-out images every accuracy here is measured on. The official test set
is never loaded. For each temperature in ``--temperatures`` one encoder is trained (seed
``--encoder-seed``, 0 by default; ``--steps`` steps, one at a time) and its embedding, standardized over the pool as the engine
does, is scored by

* training seconds, with the 1-minute load average sampled while it trained (min-max);
* a linear head (the ``softmax`` learner, C = 1) on 100 and 1 000 random pool labels (mean over
  3 draws), accuracy on the held-out images;
* k-means purity: 10 clusters of ``--purity-images`` random pool images on the unit-length
  features the coverage strategies see, the share of images in their cluster's majority class;
  and the share of images whose nearest neighbour (among those images) has their class;
* the low-budget race through :class:`alcore.engine.race.Race` on the embedding (saved to an
  ``.npz`` and read back as ``embedding="file"``): random, typiclust, probcover at radius 0.8 and
  at the purity rule's radius, ``--seeds`` seeds, ``initial_strategy="strategy"``, 10 initial
  labels, batches of 10, ``--candidates`` 3 000, held-out accuracy at 10 and 20 labels, the gain
  over random paired by seed (mean ± sd over seeds, and the seeds on which it is positive), and the classes the
  first 10 labels cover.

    OMP_NUM_THREADS=1 ALCORE_THREADS=2 python bench/tune_encoder_temperature.py --dataset mnist --temperatures 0.5 0.2 0.1
    OMP_NUM_THREADS=1 ALCORE_THREADS=2 python bench/tune_encoder_temperature.py --dataset fashion_mnist --temperatures 0.5 0.1

Embeddings are kept in ``--out`` (a temporary folder by default); ``--reuse`` reads one from
there instead of training it again (its recorded training time and load are printed).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
FOLDERS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}
N_POOL = 50_000
AT = (10, 20)
LINEAR_LABELS = (100, 1000)
LINEAR_DRAWS = 3
RADIUS = 0.8  # probcover's radius in the README's MNIST race (chosen on the MNIST development split)
STRATEGIES = (("random", {}), ("typiclust", {}), ("probcover", {"probcover_radius": RADIUS}),
              ("probcover", {"probcover_radius": None}))


def label(strategy: str, extra: dict) -> str:
    if strategy != "probcover":
        return strategy
    r = extra["probcover_radius"]
    return f"probcover r={r}" if r is not None else "probcover purity rule"


class LoadSampler:
    """The 1-minute load average every ``every`` seconds in a thread, for the span of a ``with``."""

    def __init__(self, every: float = 10.0):
        self.every, self.samples = every, []
        self._stop = threading.Event()

    def __enter__(self):
        self.samples.append(os.getloadavg()[0])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def text(self) -> str:
        return f"{min(self.samples):.1f}-{max(self.samples):.1f}"


def dev_npz(data_dir: Path, dataset: str, folder: Path) -> Path:
    """An npz of the dataset's training split cut 50 000 / 10 000 (pool / held out), as
    ``bench/low_budget_mnist.py --dev`` cuts MNIST's."""
    from alcore.data.datasets import load_idx_folder

    raw = load_idx_folder(data_dir / FOLDERS[dataset])
    path = folder / f"{dataset}_dev.npz"
    np.savez(path, x_train=raw.x_train[:N_POOL], y_train=raw.y_train[:N_POOL],
             x_test=raw.x_train[N_POOL:], y_test=raw.y_train[N_POOL:])
    return path


def train_embedding(ds, steps: int, dim: int, temperature: float, seed: int, path: Path) -> dict:
    """Train the encoder on the pool at ``temperature``, save the raw embeddings of the training
    split's rows (``train``) and held-out rows (``test``) in the file format ``embedding="file"``
    reads, and the record of the training beside them."""
    from alcore.engine import simclr
    from alcore.engine.transfer import unit_images

    with LoadSampler() as load:
        enc, rep = simclr.train_encoder(unit_images(ds, ds.x_pool), dim, steps, seed, temperature=temperature)
    pool, test = simclr.embed(enc, unit_images(ds, ds.x_pool)), simclr.embed(enc, unit_images(ds, ds.x_test))
    train = np.zeros((int(ds.pool_origin.max()) + 1, dim), np.float32)
    train[ds.pool_origin] = pool
    held = np.zeros((int(ds.test_origin.max()) + 1, dim), np.float32)
    held[ds.test_origin] = test
    np.savez(path, train=train, test=held)
    record = {"temperature": temperature, "steps": steps, "seed": seed, "seconds": rep.seconds, "load": load.text(),
              "losses": [round(x, 3) for x in rep.losses]}
    path.with_suffix(".json").write_text(json.dumps(record))
    return record


def linear_accuracy(fp, yp, fd, yd, n: int, classes: int) -> float:
    from alcore.engine.softmax import SoftmaxLearner

    accs = []
    for draw in range(LINEAR_DRAWS):
        idx = np.random.default_rng([draw, n]).permutation(len(yp))[:n]
        m = SoftmaxLearner(fp.shape[1], classes, 1.0)
        m.fit(fp[idx], yp[idx])
        accs.append(float((m.predict_proba(fd).argmax(1) == yd).mean()))
    return float(np.mean(accs))


def purity(fp, yp, n: int, classes: int) -> tuple[float, float]:
    """(k-means purity, nearest-neighbour agreement) of ``n`` random pool images on unit-length features."""
    from alcore.strategies.coverage import unit_rows
    from alcore.strategies.diversity import fit_kmeans

    idx = np.random.default_rng(7).permutation(len(yp))[:n]
    x, y = unit_rows(fp[idx]), yp[idx]
    clusters = fit_kmeans(x, classes, np.random.default_rng(0)).labels_
    majority = sum(np.bincount(y[clusters == c]).max() for c in np.unique(clusters))
    nearest = np.empty(n, np.int64)
    for i in range(0, n, 2000):  # cosine similarity in chunks, an image not its own neighbour
        s = x[i:i + 2000] @ x.T
        s[np.arange(len(s)), np.arange(i, i + len(s))] = -np.inf
        nearest[i:i + 2000] = s.argmax(1)
    return majority / n, float((y[nearest] == y).mean())


def race(embedded, base, seeds: int) -> dict:
    """{strategy label: (accuracies at AT (seeds x len(AT)), classes covered by the first labels per seed,
    seconds, the probcover radii the rounds used)}."""
    from alcore.engine.race import Race

    out = {}
    for strategy, extra in STRATEGIES:
        t0 = time.perf_counter()
        r = Race(base.replace(**extra), [strategy], list(range(seeds)), dataset_for=lambda c: embedded)
        while r.step() is not None:
            pass
        results = r.results()
        acc = np.array([[next(x.test_accuracy for x in res.rounds if x.n_labeled == a) for a in AT]
                        for res in results])
        covered = [len(np.unique(embedded.y_pool[e.labeled_indices[:base.initial]])) for e in r.experiments]
        radii = sorted({x.probcover_radius for res in results for x in res.rounds if x.probcover_radius is not None})
        r.release_models()
        out[label(strategy, extra)] = (acc, covered, time.perf_counter() - t0, radii)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(FOLDERS), default="mnist")
    ap.add_argument("--temperatures", type=float, nargs="+", default=[0.5, 0.2, 0.1])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--encoder-seed", type=int, default=0, help="the encoder's seed (the race's seeds are 0..)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--candidates", type=int, default=3000)
    ap.add_argument("--purity-images", type=int, default=10_000)
    ap.add_argument("--data-dir", default=str(SHARED))
    ap.add_argument("--out", default=None, help="folder for the embeddings (default: a new temporary one)")
    ap.add_argument("--reuse", action="store_true", help="read an embedding saved in --out instead of training")
    ns = ap.parse_args()
    data_dir = Path(ns.data_dir)
    if not (data_dir / FOLDERS[ns.dataset]).is_dir():
        print(f"skipped: {data_dir / FOLDERS[ns.dataset]} is not here")
        return 0

    from alcore import ExperimentConfig
    from alcore.data.datasets import load_dataset
    from alcore.engine.embeddings import compute_embeddings

    out = Path(ns.out) if ns.out else Path(tempfile.mkdtemp(prefix="alcore-temperature-"))
    out.mkdir(parents=True, exist_ok=True)
    data_file = dev_npz(data_dir, ns.dataset, out)
    pixels = ExperimentConfig(dataset="npz", data_file=str(data_file), model="softmax", embedding="pixels")
    ds = load_dataset(pixels)
    classes = len(np.unique(ds.y_pool))
    print(f"{ns.dataset} development split: pool {len(ds.y_pool):,} (first {N_POOL:,} training images), held out "
          f"{len(ds.y_test):,} (the rest of the training split; no test set loaded); encoder {ns.steps} steps, "
          f"dim {ns.dim}, seed {ns.encoder_seed}; threads {os.environ.get('ALCORE_THREADS', 'all')}, {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)

    rows = []
    for tau in ns.temperatures:
        path = out / f"{ns.dataset}_steps{ns.steps}_d{ns.dim}_t{tau:g}" \
            f"{f'_seed{ns.encoder_seed}' if ns.encoder_seed else ''}.npz"
        if ns.reuse and path.is_file() and path.with_suffix(".json").is_file():
            record = json.loads(path.with_suffix(".json").read_text())
            print(f"tau {tau:g}: read {path} (trained in {record['seconds']:.0f} s, load {record['load']})")
        else:
            record = train_embedding(ds, ns.steps, ns.dim, tau, ns.encoder_seed, path)
            print(f"tau {tau:g}: trained in {record['seconds']:.0f} s, load {record['load']}; losses "
                  f"{record['losses']}", flush=True)
        base = pixels.replace(embedding="file", embedding_file=str(path), initial=10, initial_strategy="strategy",
                              batch_size=10, rounds=len(AT) - 1, candidates=ns.candidates)
        embedded, _ = compute_embeddings(ds, base)
        fp, fd = embedded.features_pool, embedded.features_test
        lin = [linear_accuracy(fp, ds.y_pool, fd, ds.y_test, n, classes) for n in LINEAR_LABELS]
        pure, nn = purity(fp, ds.y_pool, ns.purity_images, classes)
        t0, load0 = time.perf_counter(), os.getloadavg()[0]
        raced = race(embedded, base, ns.seeds)
        print(f"  linear head {' / '.join(f'{100 * a:.1f}%' for a in lin)} at {LINEAR_LABELS} labels; k-means "
              f"purity {100 * pure:.1f}%, nearest neighbour same class {100 * nn:.1f}%; race "
              f"{time.perf_counter() - t0:.0f} s (load {load0:.1f}-{os.getloadavg()[0]:.1f})", flush=True)
        rows.append((tau, record, lin, pure, nn, raced))

    print(f"\n{ns.dataset} development split, {ns.seeds} seeds; accuracy on the held-out images (%), "
          f"gain over random paired by seed ± its sd over seeds (seeds with a gain)\n")
    head = ["tau", "train s (load)", *(f"linear @{n}" for n in LINEAR_LABELS), "k-means purity", "1-NN"]
    for name in (label(s, e) for s, e in STRATEGIES):
        head += [f"{name} @{a}" for a in AT]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for tau, record, lin, pure, nn, raced in rows:
        cells = [f"{tau:g}", f"{record['seconds']:.0f} ({record['load']})", *(f"{100 * a:.1f}" for a in lin),
                 f"{100 * pure:.1f}", f"{100 * nn:.1f}"]
        rand = raced["random"][0]
        for name, (acc, *_) in raced.items():
            for j in range(len(AT)):
                cell = f"{100 * acc[:, j].mean():.1f}"
                if name != "random":
                    gain = acc[:, j] - rand[:, j]
                    cell += (f" ({100 * gain.mean():+.1f} ± {100 * gain.std(ddof=1):.1f}, "
                             f"{int((gain > 0).sum())}/{len(gain)})")
                cells.append(cell)
        print("| " + " | ".join(cells) + " |")
    print()
    for tau, _, _, _, _, raced in rows:
        print(f"tau {tau:g}: classes covered by the first 10 labels (per seed): " + "; ".join(
            f"{name} {covered}" for name, (_, covered, _, _) in raced.items())
            + "; race seconds " + ", ".join(f"{name} {s:.0f}" for name, (_, _, s, _) in raced.items())
            + "; purity-rule radii " + ", ".join(f"{r:g}" for r in raced["probcover purity rule"][3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
