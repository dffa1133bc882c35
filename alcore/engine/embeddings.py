"""Embeddings of the pool: what softmax / mlp read instead of pixels, computed once and cached.

The config's ``embedding`` chooses them:

* ``pixels``: the images themselves (nothing here runs);
* ``self_supervised``: a SimCLR encoder trained on the unlabeled pool (:mod:`alcore.engine.simclr`),
  its pooled output for every pool and test image;
* ``pretrained``: the features of a frozen pretrained backbone (:mod:`alcore.engine.transfer`);
* ``file``: a user's own embeddings, one row per image of the dataset (:func:`read_embedding_file`).

Every embedding is standardized over the pool (:func:`standardized`) and becomes the
dataset's ``features_pool`` / ``features_test``, the arrays the loop gives the model in place
of the images (images stay for display). The model trains on them in milliseconds per round.

The two that cost minutes (``self_supervised`` and ``pretrained``) are kept in an
:class:`EmbeddingCache` on disk, keyed by the dataset's content (a hash of its pool and test
images in [0, 1]) and the settings that decide them, so a second race, a second browser
session or a second CLI run reads them in well under a second. A changed setting or changed
data computes them again.

Strategies that need embeddings (core-set, BADGE, ...) get the model's penultimate layer as
ever: for softmax that is the embedding itself; for mlp, its hidden layer on top of it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from alcore.config import ExperimentConfig
from alcore.data.datasets import Dataset, DatasetFileError

CACHE_DIR_ENV = "ALCORE_CACHE_DIR"
CACHE_MB_ENV = "ALCORE_EMBEDDING_CACHE_MB"
# MNIST's 70 000 images take 36 MB at 128 numbers each, 358 MB as MobileNetV2's 1280 features.
DEFAULT_CACHE_MB = 1024
# Bumped whenever the code changes what an embedding with the same settings holds, so a cache
# made by an older version is not read as this one's.
EMBEDDING_VERSION = 1
_HASH_CHUNK = 4096


@dataclass(frozen=True)
class EmbeddingProgress:
    """How far computing an embedding is: ``done`` of ``total`` (steps or images) of one stage."""

    stage: str  # "training the encoder", "embedding the images", "backbone features"
    done: int
    total: int
    seconds: float
    loss: Optional[float] = None  # the encoder's last NT-Xent loss

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 1.0

    def text(self) -> str:
        unit = "steps" if self.loss is not None else "images"
        loss = f", loss {self.loss:.3f}" if self.loss is not None else ""
        return f"{self.stage}: {self.done:,} of {self.total:,} {unit}{loss}, {self.seconds:.0f} s"


Progress = Callable[[EmbeddingProgress], None]


@dataclass(frozen=True)
class EmbeddingReport:
    """Where a dataset's embedding came from, for the page and the CLI to say."""

    embedding: str
    source: str  # "cache" (read from disk), "computed" (trained or run now), "file", "pixels"
    seconds: float  # spent now
    dim: int
    path: Optional[str] = None  # the cache file, or the user's file
    compute_seconds: Optional[float] = None  # what computing it took (recorded in the cache)
    losses: tuple[float, ...] = ()  # the encoder's mean loss over each tenth of its steps

    def text(self) -> str:
        if self.source == "cache":
            took = f" (computing them took {self.compute_seconds:.0f} s)" if self.compute_seconds else ""
            return (f"{self.embedding} embeddings ({self.dim} numbers per image) read from the cache in "
                    f"{self.seconds:.2f} s{took}")
        if self.source == "computed":
            return f"{self.embedding} embeddings ({self.dim} numbers per image) computed in {self.seconds:.0f} s"
        if self.source == "file":
            return f"embeddings ({self.dim} numbers per image) read from {self.path}"
        return "the model reads the pixels"


# ----------------------------------------------------------------------------- keys

def standardized(pool: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool and test features with each dimension shifted and scaled to mean 0, variance 1 over
    the pool (test images with the pool's statistics), float32: an L2 penalty (softmax's C,
    l2) then weighs every dimension alike, whatever scale the encoder gave it."""
    mean = pool.mean(axis=0, dtype=np.float64)
    std = pool.std(axis=0, dtype=np.float64)
    std[std < 1e-8] = 1.0
    return (((pool - mean) / std).astype(np.float32), ((test - mean) / std).astype(np.float32))


def content_hash(dataset: Dataset) -> str:
    """BLAKE2b of the pool and test images as the encoder sees them (float32 in [0, 1]) and
    their shapes: the same images give the same hash whatever the pixel normalization."""
    from alcore.engine.transfer import unit_images

    h = hashlib.blake2b(digest_size=20)
    for x in (dataset.x_pool, dataset.x_test):
        h.update(repr(tuple(x.shape)).encode())
        for i in range(0, len(x), _HASH_CHUNK):
            h.update(np.ascontiguousarray(unit_images(dataset, x[i:i + _HASH_CHUNK]), np.float32).tobytes())
    return h.hexdigest()


def embedding_settings(config: ExperimentConfig) -> dict:
    """The settings that decide an embedding (beside the images): its cache key's other half."""
    from alcore.engine.transfer import backbone_input_size

    if config.embedding == "self_supervised":
        from alcore.engine import simclr

        return {"embedding": "self_supervised", "method": "simclr", "steps": config.encoder_steps,
                "dim": config.embedding_dim, "seed": config.encoder_seed, "batch": simclr.BATCH,
                "temperature": simclr.TEMPERATURE, "version": EMBEDDING_VERSION}
    if config.embedding == "pretrained":
        return {"embedding": "pretrained", "backbone": config.backbone, "weights": config.backbone_weights,
                "size": backbone_input_size(config), "version": EMBEDDING_VERSION,
                **({"seed": config.seed} if config.backbone_weights == "random" else {})}
    if config.embedding == "file":
        return {"embedding": "file", "file": str(config.embedding_file)}
    return {"embedding": "pixels"}


def features_of(config: ExperimentConfig) -> str:
    """What :attr:`Dataset.features_of` says for this config's embedding."""
    return json.dumps(embedding_settings(config), sort_keys=True)


def cache_key(content: str, config: ExperimentConfig) -> str:
    """The cache file's name: a hash of the dataset's content hash and the embedding's settings."""
    text = json.dumps({"content": content, **embedding_settings(config)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


# ---------------------------------------------------------------------------- cache

def default_cache_dir() -> Path:
    """$ALCORE_CACHE_DIR/embeddings, else the user's cache folder ($XDG_CACHE_HOME or
    ~/.cache)/alcore/embeddings (the temp folder where there is no home)."""
    root = os.environ.get(CACHE_DIR_ENV)
    if root:
        return Path(root) / "embeddings"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if base.startswith("~"):  # no home directory
        base = tempfile.gettempdir()
    return Path(base) / "alcore" / "embeddings"


def default_cache_bytes() -> int:
    """$ALCORE_EMBEDDING_CACHE_MB megabytes, else DEFAULT_CACHE_MB."""
    raw = os.environ.get(CACHE_MB_ENV, "").strip()
    if not raw:
        return DEFAULT_CACHE_MB * 2**20
    try:
        mb = int(raw)
    except ValueError:
        raise ValueError(f"{CACHE_MB_ENV} must be a whole number of megabytes, got {raw!r}") from None
    if mb < 0:
        raise ValueError(f"{CACHE_MB_ENV} must be 0 or more, got {mb}")
    return mb * 2**20


class EmbeddingCache:
    """Embeddings on disk, one ``<key>.npz`` per dataset and settings, at most ``max_bytes``
    in all (least recently read first out; the newest file is always kept).

    Files are written to a temporary name in the same folder and renamed into place, so a
    reader (another session, another process) sees a whole file or none. Within one process
    the same key is computed once: a second caller waits for the first (:meth:`computing`).
    A file that cannot be read, or holds other shapes than the dataset, is removed and
    computed again."""

    def __init__(self, folder: Optional[str | os.PathLike] = None, max_bytes: Optional[int] = None):
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        self.max_bytes = default_cache_bytes() if max_bytes is None else int(max_bytes)
        self._lock = threading.Lock()
        self._keys: dict[str, threading.Lock] = {}
        self._hashes: "weakref.WeakKeyDictionary[Dataset, str]" = weakref.WeakKeyDictionary()
        self.reads = 0  # files read (for tests and benchmarks)
        self.writes = 0

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def content(self, dataset: Dataset) -> str:
        """:func:`content_hash` of ``dataset``, remembered while the dataset lives (a prepared
        dataset is read-only and shared, so every race on it hashes it once)."""
        with self._lock:
            known = self._hashes.get(dataset)
        if known is None:
            known = content_hash(dataset)
            with self._lock:
                self._hashes[dataset] = known
        return known

    def record(self, key: str) -> Optional[dict]:
        """What the file of ``key`` records (settings, seconds, losses) without reading its arrays;
        None where there is no readable file."""
        try:
            with np.load(self.path(key), allow_pickle=False) as z:
                return json.loads(str(z["record"]))
        except (OSError, ValueError, KeyError, EOFError):
            return None

    def computing(self, key: str) -> threading.Lock:
        """The lock held while ``key`` is computed in this process."""
        with self._lock:
            return self._keys.setdefault(key, threading.Lock())

    def get(self, key: str, n_pool: int, n_test: int) -> Optional[tuple[np.ndarray, np.ndarray, dict]]:
        """(pool, test, record) from the file of ``key``, or None where there is none that fits."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as z:
                pool, test, record = z["pool"], z["test"], json.loads(str(z["record"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError):
            self._remove(path)  # damaged (a disk filled mid-write by another tool): compute again
            return None
        if pool.shape[0] != n_pool or test.shape[0] != n_test or pool.ndim != 2 or test.shape[1:] != pool.shape[1:]:
            self._remove(path)
            return None
        try:
            os.utime(path)  # recently used: evicted last
        except OSError:
            pass
        self.reads += 1
        return pool, test, record

    def put(self, key: str, pool: np.ndarray, test: np.ndarray, record: dict) -> Optional[Path]:
        """Write atomically, then drop the least recently used files beyond ``max_bytes``. A cache
        that cannot be written (read-only disk, full) is skipped: None."""
        path = self.path(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{key}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, pool=pool, test=test, record=np.array(json.dumps(record)))
                os.replace(tmp, path)
            except BaseException:
                self._remove(Path(tmp))
                raise
        except OSError:
            return None
        self.writes += 1
        self._evict(keep=path)
        return path

    def nbytes(self) -> int:
        return sum(size for _, size, _ in self._files())

    def _files(self) -> list[tuple[Path, int, float]]:
        out = []
        for p in self.folder.glob("*.npz"):
            try:
                st = p.stat()
            except OSError:
                continue
            out.append((p, st.st_size, st.st_mtime))
        return out

    def _evict(self, keep: Path) -> None:
        files = sorted(self._files(), key=lambda f: f[2])  # least recently used first
        total = sum(size for _, size, _ in files)
        for p, size, _ in files:
            if total <= self.max_bytes:
                break
            if p != keep:
                self._remove(p)
                total -= size

    @staticmethod
    def _remove(path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass


# ------------------------------------------------------------------------ computing

def read_embedding_file(path: str, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(pool rows, test rows) of a user's ``.npz`` of embeddings, matched to ``dataset``.

    The file holds ``train``: one row per image of the dataset's training split, in the order
    the dataset gives them (a ``.npz`` dataset's ``x_train``, MNIST's 60 000, the files of an
    images .zip in the order listed), and ``test``: one row per image of its test split, for a
    dataset that has one. Rows are picked by the pool's and test set's origins, so a pool_size
    or test_size subset reads its own rows. Counts, shapes and values are checked, with
    messages naming the file, the array and the numbers."""
    from alcore.data.datasets import EMBEDDING_NPZ_KINDS, npz_arrays

    where = os.path.basename(str(path))
    if dataset.pool_origin is None or dataset.test_origin is None:
        raise DatasetFileError(f"{where}: this dataset does not record which of its images are in the pool "
                               f"and test set, so a file of embeddings cannot be matched to it")
    arrays = npz_arrays(path, ["train", "test"], kinds=EMBEDDING_NPZ_KINDS, required=("train",))
    train = _embedding_rows(arrays["train"], where, "train")
    n_train = (int(dataset.pool_origin.max()) + 1) if len(dataset.pool_origin) else 0
    if dataset.test_from_train:
        n_train = max(n_train, int(dataset.test_origin.max()) + 1)
        if "test" in arrays:
            raise DatasetFileError(f"{where}: holds 'test', but this dataset has no test split (its test images "
                                   f"are held out of the training split): leave 'test' out, every image's row "
                                   f"is in 'train'")
    if len(train) < n_train:
        raise DatasetFileError(f"{where}: 'train' has {len(train):,} rows, but the dataset's training split has "
                               f"at least {n_train:,} images: one row per training image, in the dataset's order")
    if dataset.test_from_train:
        return train[dataset.pool_origin], train[dataset.test_origin]
    if "test" not in arrays:
        raise DatasetFileError(f"{where}: no array 'test': this dataset has a test split, and each of its "
                               f"images needs a row of embeddings")
    test = _embedding_rows(arrays["test"], where, "test")
    n_test = int(dataset.test_origin.max()) + 1 if len(dataset.test_origin) else 0
    if len(test) < n_test:
        raise DatasetFileError(f"{where}: 'test' has {len(test):,} rows, but the dataset's test split has at least "
                               f"{n_test:,} images: one row per test image, in the dataset's order")
    if test.shape[1] != train.shape[1]:
        raise DatasetFileError(f"{where}: 'train' rows have {train.shape[1]} numbers and 'test' rows "
                               f"{test.shape[1]}: both must have the same")
    return train[dataset.pool_origin], test[dataset.test_origin]


def _embedding_rows(a: np.ndarray, where: str, name: str) -> np.ndarray:
    if a.dtype.kind not in "biuf":
        raise DatasetFileError(f"{where}: '{name}' must hold numbers, got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[1] < 1:
        raise DatasetFileError(f"{where}: '{name}' must have one row of numbers per image, shape (images, "
                               f"numbers), got shape {a.shape}")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        rows = int((~np.isfinite(a)).any(axis=1).sum())
        raise DatasetFileError(f"{where}: '{name}' holds NaN or infinite values in {rows} row(s)")
    return a


def _self_supervised(dataset: Dataset, config: ExperimentConfig, progress: Optional[Progress]):
    from alcore.engine import simclr
    from alcore.engine.transfer import unit_images

    def on_step(p: simclr.EncoderProgress) -> None:
        if progress is not None:
            progress(EmbeddingProgress("training the encoder", p.step, p.steps, p.seconds, p.loss))

    encoder, report = simclr.train_encoder(unit_images(dataset, dataset.x_pool), config.embedding_dim,
                                           config.encoder_steps, config.encoder_seed, progress=on_step)
    t0 = time.perf_counter()
    n = len(dataset.y_pool) + len(dataset.y_test)
    out = []
    for x in (dataset.x_pool, dataset.x_test):
        out.append(simclr.embed(encoder, unit_images(dataset, x)))
        if progress is not None:
            progress(EmbeddingProgress("embedding the images", sum(len(o) for o in out), n,
                                       time.perf_counter() - t0))
    return out[0], out[1], {"losses": list(report.losses), "epochs": report.epochs,
                            "train_seconds": report.seconds, "encoder_parameters": report.parameters}


def _pretrained(dataset: Dataset, config: ExperimentConfig, progress: Optional[Progress]):
    from alcore.engine.transfer import backbone_features, backbone_input_size, build_backbone, unit_images

    net = build_backbone(config)
    n_pool, n = len(dataset.y_pool), len(dataset.y_pool) + len(dataset.y_test)

    def on_chunk(offset):
        def report(done, _total, seconds):
            if progress is not None:
                progress(EmbeddingProgress("backbone features", offset + done, n, seconds))
        return report

    size = backbone_input_size(config)
    pool = backbone_features(unit_images(dataset, dataset.x_pool), net, size, config.backbone, on_chunk(0))
    test = backbone_features(unit_images(dataset, dataset.x_test), net, size, config.backbone, on_chunk(n_pool))
    return pool, test, {}


def compute_embeddings(dataset: Dataset, config: ExperimentConfig, *, cache: Optional[EmbeddingCache] = None,
                       progress: Optional[Progress] = None) -> tuple[Dataset, EmbeddingReport]:
    """The dataset with the config's embedding as its model inputs, and where it came from.

    ``self_supervised`` and ``pretrained`` are read from ``cache`` (a default
    :class:`EmbeddingCache` where None) or computed and written there; ``progress`` is called
    while they are computed (it may raise to abandon them: nothing is written)."""
    t0 = time.perf_counter()
    what = features_of(config)
    if config.embedding == "pixels":
        base = dataset if dataset.features_pool is None else dataclasses.replace(
            dataset, features_pool=None, features_test=None, features_of="")
        return base, EmbeddingReport("pixels", "pixels", 0.0, int(np.prod(dataset.image_shape)))
    if dataset.features_of == what:
        return dataset, EmbeddingReport(config.embedding, "cache", 0.0, dataset.features_pool.shape[1])
    if config.embedding == "file":
        pool, test = read_embedding_file(config.embedding_file, dataset)
        pool, test = standardized(pool, test)
        return (_with(dataset, pool, test, what),
                EmbeddingReport("file", "file", time.perf_counter() - t0, pool.shape[1],
                                path=os.path.basename(str(config.embedding_file))))
    cache = cache if cache is not None else EmbeddingCache()
    key = cache_key(cache.content(dataset), config)
    n_pool, n_test = len(dataset.y_pool), len(dataset.y_test)
    with cache.computing(key):  # a second session asking for the same key waits, then reads
        hit = cache.get(key, n_pool, n_test)
        if hit is not None:
            pool, test, record = hit
            return (_with(dataset, pool, test, what),
                    EmbeddingReport(config.embedding, "cache", time.perf_counter() - t0, pool.shape[1],
                                    path=str(cache.path(key)), compute_seconds=record.get("seconds"),
                                    losses=tuple(record.get("losses", ()))))
        compute = _self_supervised if config.embedding == "self_supervised" else _pretrained
        raw_pool, raw_test, extra = compute(dataset, config, progress)
        pool, test = standardized(raw_pool, raw_test)
        seconds = time.perf_counter() - t0
        record = {**embedding_settings(config), "seconds": seconds, "n_pool": n_pool, "n_test": n_test, **extra}
        path = cache.put(key, pool, test, record)
    return (_with(dataset, pool, test, what),
            EmbeddingReport(config.embedding, "computed", seconds, pool.shape[1],
                            path=None if path is None else str(path), compute_seconds=seconds,
                            losses=tuple(extra.get("losses", ()))))


def cached(dataset: Dataset, config: ExperimentConfig, cache: EmbeddingCache) -> Optional[dict]:
    """The record of the config's embedding of ``dataset`` where the cache holds it (nothing is
    computed); None where it would have to be computed (or needs no cache: pixels, file)."""
    if config.embedding not in ("self_supervised", "pretrained"):
        return None
    return cache.record(cache_key(cache.content(dataset), config))


def _with(dataset: Dataset, pool: np.ndarray, test: np.ndarray, what: str) -> Dataset:
    pool, test = np.ascontiguousarray(pool, np.float32), np.ascontiguousarray(test, np.float32)
    for a in (pool, test):
        a.setflags(write=False)
    return dataclasses.replace(dataset, features_pool=pool, features_test=test, features_of=what)


def model_inputs(dataset: Dataset, config: ExperimentConfig, *, cache: Optional[EmbeddingCache] = None,
                 progress: Optional[Progress] = None) -> Dataset:
    """The dataset with what the config's model reads: the transfer model's backbone features,
    the config's embedding, or the images (the dataset as it is)."""
    if config.model == "transfer":
        from alcore.engine.transfer import with_backbone_features

        return with_backbone_features(dataset, config)
    return compute_embeddings(dataset, config, cache=cache, progress=progress)[0]
