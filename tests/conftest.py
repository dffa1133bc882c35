"""Shared fixtures: small real datasets and one compiled-model cache per test session."""
from __future__ import annotations

import gzip
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
# Embeddings the tests compute go to a folder of this test session, never the user's cache.
os.environ.setdefault("ALCORE_CACHE_DIR", tempfile.mkdtemp(prefix="alcore-test-cache-"))


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write an array in MNIST idx format (uint8), gzip-compressed when path ends in .gz."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    data = header + array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)
    return path


@pytest.fixture
def idx_folder(tmp_path):
    """A tiny MNIST-format folder: 3 classes of 10x10 images with a class-dependent bar."""
    rng = np.random.default_rng(0)

    def images(n):
        y = np.arange(n) % 3
        x = rng.integers(0, 40, size=(n, 10, 10)).astype(np.uint8)
        for i, c in enumerate(y):
            x[i, 2 + 3 * c: 4 + 3 * c, :] = 250
        return x, y.astype(np.uint8)

    xtr, ytr = images(90)
    xte, yte = images(30)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", xtr)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", ytr)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", xte)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", yte)
    return tmp_path


@pytest.fixture(scope="session")
def cache():
    from alcore.engine.training import TrainerCache

    return TrainerCache(max_entries=8)


@pytest.fixture(scope="session")
def digits_config():
    from alcore import ExperimentConfig

    # Small and quick, but the real path: real digits, real Keras model, real XLA training.
    return ExperimentConfig(dataset="digits", initial=10, batch_size=10, rounds=3, max_epochs=20,
                            validation="split", seed=0)


@pytest.fixture(scope="session")
def digits(digits_config):
    from alcore.data.datasets import load_dataset

    return load_dataset(digits_config)


@pytest.fixture(scope="session")
def three_seed_results(digits, cache):
    """Result files of a real digits race, margin and random on seeds 0-2 (3 rounds each):
    what the statistics across seeds are computed from."""
    from alcore import ExperimentConfig
    from alcore.engine.race import Race

    race = Race(ExperimentConfig(rounds=3, max_epochs=5), ["margin", "random"], [0, 1, 2],
                dataset_for=lambda cfg: digits, cache=cache)
    while race.step() is not None:
        pass
    return race.results()


FRACTIONS = (0.0, 0.5, 1.0)
SEEDS = (0, 1, 2)


@pytest.fixture(scope="session")
def fraction_results(cache):
    """Real digits runs of the hybrid strategy at three uncertainty fractions on three seeds
    (a swept setting, as in the hybrid-fraction preset)."""
    from alcore import ExperimentConfig
    from alcore.data.datasets import load_dataset
    from alcore.engine.loop import Experiment

    base = ExperimentConfig(strategy="hybrid", rounds=3, max_epochs=5, pool_size=400, test_size=200)
    out = []
    for seed in SEEDS:
        ds = load_dataset(base.replace(seed=seed))
        for fraction in FRACTIONS:
            exp = Experiment(base.replace(seed=seed, hybrid_fraction=fraction), dataset=ds, cache=cache)
            for _ in exp:
                pass
            out.append(exp.result())
    return out


def shared_mnist() -> Path:
    folder = SHARED / "mnist"
    if not folder.is_dir():
        pytest.skip(f"needs the verified MNIST copy at {folder} (absent outside this workspace)")
    return folder


def shared_fashion() -> Path:
    folder = SHARED / "fashion-mnist"
    if not folder.is_dir():
        pytest.skip(f"needs the verified Fashion-MNIST copy at {folder} (absent outside this workspace)")
    return folder


def session_upload(data: bytes, name: str, suffix: str):
    """A file kept as the Dataset page keeps an upload: (the session's uploads holding it, to put
    in an AppTest's ``session_state["uploads"]``, and its path). The file goes when the first
    is dropped."""
    from alcore.serve.limits import DeploymentLimits
    from alcore.serve.uploads import SessionUploads, UploadStore
    from dashboard.uploads import upload_root

    mine = SessionUploads(UploadStore(upload_root()))
    return mine, str(mine.keep(data, name, suffix, "dataset", DeploymentLimits.unlimited()))


def npz_with_classes(class_names, n: int = 60) -> bytes:
    """An uploadable .npz: n 8x8 images, class k a bright bar at rows 2k..2k+1, with these
    class names (the pages must show whatever text they hold as text)."""
    import io

    rng = np.random.default_rng(0)
    y = np.arange(n) % len(class_names)
    x = rng.integers(0, 60, size=(n, 8, 8)).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, 2 * c: 2 * c + 2] = 255
    buf = io.BytesIO()
    np.savez(buf, x_train=x, y_train=y, class_names=np.array(class_names))
    return buf.getvalue()
