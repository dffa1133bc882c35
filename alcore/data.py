"""Datasets: loading, checking and preparing pool / test arrays.

Every loader returns raw arrays; :func:`prepare` turns them into a :class:`Dataset`
(pool subsample, test split, pixel normalization) with read-only arrays so that a
cache may hand the same object to several experiments safely.

No TensorFlow here: the Keras loaders import keras only when called.
"""
from __future__ import annotations

import glob
import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .config import ExperimentConfig

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                   "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                   "horse", "ship", "truck")
DIGIT_CLASSES = tuple(str(i) for i in range(10))

# Refuse arrays above this many elements before allocating them (about 2 GB of
# float32): a corrupt header must not take the machine down.
MAX_ELEMENTS = 500_000_000


class DatasetUnavailableError(OSError):
    """A dataset could not be fetched or found (offline, missing folder)."""


@dataclass(frozen=True)
class RawData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: Optional[np.ndarray]
    y_test: Optional[np.ndarray]
    class_names: tuple[str, ...]
    source: str


@dataclass(frozen=True, eq=False)
class Dataset:
    """Prepared arrays: images are float32 (N, H, W, C), labels int32 in [0, classes)."""

    name: str
    x_pool: np.ndarray
    y_pool: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str = ""
    # How to map prepared pixels back to [0, 1] for display.
    display_offset: float = 0.0
    display_scale: float = 1.0
    pool_origin: np.ndarray = field(default=None, repr=False)  # index into the source split
    # Model inputs when they are not the images (backbone features of the `transfer` model).
    features_pool: Optional[np.ndarray] = field(default=None, repr=False)
    features_test: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def inputs_pool(self) -> np.ndarray:
        """What the model reads for pool images: the images, or their backbone features."""
        return self.x_pool if self.features_pool is None else self.features_pool

    @property
    def inputs_test(self) -> np.ndarray:
        return self.x_test if self.features_test is None else self.features_test

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_pool.shape[1:])

    def display_images(self, x: np.ndarray) -> np.ndarray:
        """Prepared images -> float images in [0, 1], channel axis dropped for grayscale."""
        img = np.clip((np.asarray(x, dtype=np.float32) - self.display_offset) / self.display_scale, 0, 1)
        if img.shape[-1] == 1:
            img = img[..., 0]
        return img

    def describe(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "n_pool": int(len(self.y_pool)),
            "n_test": int(len(self.y_test)),
            "n_classes": self.n_classes,
            "class_names": list(self.class_names),
            "image_shape": list(self.image_shape),
        }


# ---------------------------------------------------------------------------- checks

def check_images(x, what: str) -> np.ndarray:
    """Images as (N, H, W) or (N, H, W, 1|3), numeric and finite -> (N, H, W, C)."""
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{what} must hold numbers, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"{what} must have shape (N, height, width) for grayscale or "
                         f"(N, height, width, 1|3), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{what} is empty (0 images)")
    if min(x.shape[1:3]) < 1:
        raise ValueError(f"{what} has images of size {x.shape[1:3]}")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            n_img = int(bad.reshape(len(x), -1).any(axis=1).sum())
            raise ValueError(f"{what} holds NaN or infinite values in {n_img} image(s)")
    return x


def check_labels(y, n: int, what: str, n_classes: Optional[int] = None) -> np.ndarray:
    """Labels as N whole numbers in [0, n_classes) -> int32 vector."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{what} must be a vector of class numbers, got shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"{what} has {len(y)} labels for {n} images")
    if y.dtype == object or not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise ValueError(f"{what} must hold class numbers, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all():
            raise ValueError(f"{what} holds NaN or infinite labels")
        if not np.all(y == np.round(y)):
            raise ValueError(f"{what} holds non-integer labels such as {y[y != np.round(y)][0]}")
    if len(y) and y.min() < 0:
        raise ValueError(f"{what} holds negative label {int(y.min())}; classes are 0..K-1")
    if n_classes is not None and len(y) and y.max() >= n_classes:
        raise ValueError(f"{what} holds label {int(y.max())}, outside the class range "
                         f"0..{n_classes - 1} ({n_classes} class names)")
    if len(y) and y.max() > 100_000:
        raise ValueError(f"{what} holds label {int(y.max())}; more than 100000 classes is not supported")
    return y.astype(np.int32)


# --------------------------------------------------------------------------- loaders

def load_digits_raw() -> RawData:
    from sklearn.datasets import load_digits

    d = load_digits()
    return RawData(d.images.astype(np.float32), d.target.astype(np.int32), None, None,
                   DIGIT_CLASSES, "scikit-learn load_digits")


_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one MNIST-format idx file (optionally gzip-compressed).

    Format (LeCun et al.): two zero bytes, a type byte, the number of dimensions,
    one big-endian uint32 per dimension, then the raw data in C order.
    """
    path = str(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            header = f.read(4)
            if len(header) < 4:
                raise ValueError(f"{path}: too short to be an idx file ({len(header)} bytes)")
            if header[0] != 0 or header[1] != 0 or header[2] not in _IDX_DTYPES or header[3] == 0:
                raise ValueError(f"{path}: not an idx file (bad magic number {header.hex()})")
            ndim = header[3]
            dims_raw = f.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise ValueError(f"{path}: header truncated")
            dims = tuple(int(v) for v in np.frombuffer(dims_raw, dtype=">u4"))
            dtype = _IDX_DTYPES[header[2]]
            count = int(np.prod(dims, dtype=np.int64))
            if count > MAX_ELEMENTS:
                raise ValueError(f"{path}: header claims {dims} = {count} values, over the "
                                 f"limit of {MAX_ELEMENTS}")
            want = count * dtype.itemsize
            data = f.read(want)
    except (OSError, EOFError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path}: cannot be read as idx ({e})") from e
    if len(data) != want:
        raise ValueError(f"{path}: truncated: header says {dims} ({want} bytes), file holds {len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _find_one(folder: Path, patterns: Sequence[str]) -> Optional[Path]:
    for pat in patterns:
        hits = sorted(glob.glob(str(folder / pat)))
        if hits:
            return Path(hits[0])
    return None


def _idx_class_names(folder: Path, n_classes: int) -> tuple[str, ...]:
    """Class names from an EMNIST '*mapping.txt' or a KMNIST '*classmap.csv', if present."""
    mapping = _find_one(folder, ["*mapping.txt"])
    if mapping is not None:
        names = {}
        for line in mapping.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                names[int(parts[0])] = chr(int(parts[1]))
        if len(names) >= n_classes:
            return tuple(names.get(i, str(i)) for i in range(n_classes))
    classmap = _find_one(folder, ["*classmap.csv"])
    if classmap is not None:
        names = {}
        for line in classmap.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
            parts = line.split(",")
            if len(parts) >= 3 and parts[0].isdigit():
                names[int(parts[0])] = parts[2]
        if len(names) >= n_classes:
            return tuple(names.get(i, str(i)) for i in range(n_classes))
    return tuple(str(i) for i in range(n_classes))


def load_idx_folder(folder: str | os.PathLike, class_names: Optional[Sequence[str]] = None) -> RawData:
    """A folder with MNIST-format idx files (MNIST, Fashion-MNIST, Kuzushiji-MNIST, EMNIST).

    Needs ``*train-images-idx3-ubyte[.gz]`` and ``*train-labels-idx1-ubyte[.gz]``;
    ``*t10k-*`` or ``*test-*`` files give the test split when present.
    EMNIST stores images transposed; files named ``emnist*`` are turned upright.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetUnavailableError(f"idx folder {str(folder)!r} does not exist")
    tr_x = _find_one(folder, ["*train-images-idx3-ubyte.gz", "*train-images-idx3-ubyte", "*train-images.idx3-ubyte"])
    tr_y = _find_one(folder, ["*train-labels-idx1-ubyte.gz", "*train-labels-idx1-ubyte", "*train-labels.idx1-ubyte"])
    if tr_x is None or tr_y is None:
        raise DatasetUnavailableError(
            f"no idx training files in {str(folder)!r}: expected train-images-idx3-ubyte(.gz) "
            f"and train-labels-idx1-ubyte(.gz)")
    te_x = _find_one(folder, ["*t10k-images-idx3-ubyte.gz", "*t10k-images-idx3-ubyte",
                              "*test-images-idx3-ubyte.gz", "*test-images-idx3-ubyte"])
    te_y = _find_one(folder, ["*t10k-labels-idx1-ubyte.gz", "*t10k-labels-idx1-ubyte",
                              "*test-labels-idx1-ubyte.gz", "*test-labels-idx1-ubyte"])
    x_train, y_train = read_idx(tr_x), read_idx(tr_y)
    x_test = y_test = None
    if te_x is not None and te_y is not None:
        x_test, y_test = read_idx(te_x), read_idx(te_y)
    for x, name in ((x_train, tr_x), (x_test, te_x)):
        if x is not None and x.ndim != 3:
            raise ValueError(f"{name}: expected a 3-D image array (N, rows, cols), got shape {x.shape}")
    if tr_x.name.lower().startswith("emnist"):
        x_train = np.ascontiguousarray(x_train.transpose(0, 2, 1))
        if x_test is not None:
            x_test = np.ascontiguousarray(x_test.transpose(0, 2, 1))
    if class_names is None:
        k = int(max(y_train.max(), y_test.max() if y_test is not None else 0)) + 1
        class_names = _idx_class_names(folder, k)
    return RawData(x_train, y_train, x_test, y_test, tuple(class_names), f"idx files in {folder}")


def load_npz(path: str | os.PathLike) -> RawData:
    """A user's ``.npz``: x_train, y_train, optional x_test, y_test and class_names.

    Loaded with ``allow_pickle=False``: nothing in the file is ever unpickled.
    """
    path = str(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            missing = {"x_train", "y_train"} - keys
            if missing:
                raise ValueError(f"{os.path.basename(path)}: missing array(s) "
                                 f"{', '.join(sorted(missing))}; found {', '.join(sorted(keys)) or 'none'}")
            if ("x_test" in keys) != ("y_test" in keys):
                raise ValueError(f"{os.path.basename(path)}: has only one of x_test / y_test")
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test", "class_names") if k in keys}
    except FileNotFoundError:
        raise DatasetUnavailableError(f"npz file {path!r} does not exist")
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise ValueError(f"{os.path.basename(path)}: holds Python objects; only plain "
                             f"numeric and string arrays are accepted") from e
        raise
    except Exception as e:  # zipfile.BadZipFile, EOFError, ...
        raise ValueError(f"{os.path.basename(path)}: not a readable .npz file ({e})") from e
    names = None
    if "class_names" in arrays:
        cn = arrays["class_names"]
        if cn.ndim != 1 or not (cn.dtype.kind in "US" or np.issubdtype(cn.dtype, np.number)):
            raise ValueError(f"{os.path.basename(path)}: class_names must be a 1-D array of strings")
        names = tuple(str(c.decode("utf-8", "replace") if isinstance(c, bytes) else c) for c in cn)
    return RawData(arrays["x_train"], arrays["y_train"], arrays.get("x_test"), arrays.get("y_test"),
                   names, f"npz file {os.path.basename(path)}")


def _idx_dir_for(name: str, data_dir: Optional[str]) -> Optional[Path]:
    """Where `name` (mnist / fashion_mnist) lies under data_dir, if anywhere."""
    if not data_dir:
        return None
    base = Path(data_dir)
    subdirs = {"mnist": ["mnist"], "fashion_mnist": ["fashion-mnist", "fashion_mnist"]}[name]
    for cand in [base] + [base / s for s in subdirs]:
        if _find_one(cand, ["*train-images-idx3-ubyte.gz", "*train-images-idx3-ubyte"]) is not None:
            return cand
    return None


def load_keras_dataset(name: str, data_dir: Optional[str] = None) -> RawData:
    """mnist, fashion_mnist or cifar10: offline from idx files under data_dir when
    they are there, otherwise through ``keras.datasets`` (downloads and caches on
    first use)."""
    folder = _idx_dir_for(name, data_dir) if name in ("mnist", "fashion_mnist") else None
    names = {"mnist": DIGIT_CLASSES, "fashion_mnist": FASHION_CLASSES, "cifar10": CIFAR10_CLASSES}[name]
    if folder is not None:
        raw = load_idx_folder(folder, class_names=names)
        return RawData(raw.x_train, raw.y_train, raw.x_test, raw.y_test, names, raw.source)
    from ._tf import keras

    loader = getattr(keras.datasets, name).load_data
    try:
        (x_train, y_train), (x_test, y_test) = loader()
    except Exception as e:
        hint = (f"; for offline use point data_dir (or $ALCORE_DATA_DIR) at a folder of its idx files"
                if name != "cifar10" else "")
        raise DatasetUnavailableError(
            f"could not load {name} through keras.datasets (download needed on first use, "
            f"is this machine offline?): {type(e).__name__}: {e}{hint}") from e
    return RawData(x_train, y_train.reshape(-1), x_test, y_test.reshape(-1), names, f"keras.datasets.{name}")


def load_raw(config: ExperimentConfig) -> RawData:
    data_dir = config.data_dir or os.environ.get("ALCORE_DATA_DIR")
    if config.dataset == "digits":
        return load_digits_raw()
    if config.dataset in ("mnist", "fashion_mnist", "cifar10"):
        return load_keras_dataset(config.dataset, data_dir)
    if config.dataset == "idx":
        return load_idx_folder(data_dir)
    if config.dataset == "npz":
        return load_npz(config.data_file)
    raise ValueError(f"unknown dataset {config.dataset!r}")


# ------------------------------------------------------------------------- prepare

def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def prepare(raw: RawData, config: ExperimentConfig) -> Dataset:
    """Check raw arrays, draw the pool and test set, normalize pixels."""
    from sklearn.model_selection import train_test_split

    x_train = check_images(raw.x_train, "x_train")
    k = len(raw.class_names) if raw.class_names else None
    y_train = check_labels(raw.y_train, len(x_train), "y_train", k)
    if raw.x_test is not None:
        x_test = check_images(raw.x_test, "x_test")
        if x_test.shape[1:] != x_train.shape[1:]:
            raise ValueError(f"x_test images are {x_test.shape[1:]} but x_train images are {x_train.shape[1:]}")
        y_test = check_labels(raw.y_test, len(x_test), "y_test", k)
    else:
        x_test = y_test = None
    if k is None:
        k = int(max(y_train.max(), y_test.max() if y_test is not None else 0)) + 1
        class_names = tuple(str(i) for i in range(k))
    else:
        class_names = tuple(raw.class_names)
    if k < 2:
        raise ValueError(f"need at least 2 classes, found {k}")

    rng = np.random.default_rng([config.seed, 7919])
    origin = np.arange(len(x_train))
    if x_test is None:
        n_test = config.test_size if config.test_size is not None else max(1, int(round(0.2 * len(x_train))))
        if n_test >= len(x_train):
            raise ValueError(f"test_size {n_test} leaves no training images out of {len(x_train)}")
        counts = np.bincount(y_train, minlength=k)
        stratify = y_train if (counts[counts > 0].min() >= 2 and n_test >= k) else None
        tr, te = train_test_split(origin, test_size=n_test, random_state=int(rng.integers(2**31)),
                                  stratify=stratify)
        x_test, y_test = x_train[te], y_train[te]
        origin = np.sort(tr)
    elif config.test_size is not None:
        if config.test_size > len(x_test):
            raise ValueError(f"test_size {config.test_size} is larger than the {len(x_test)} test images")
        te = np.sort(rng.choice(len(x_test), config.test_size, replace=False))
        x_test, y_test = x_test[te], y_test[te]
    if config.pool_size is not None:
        if config.pool_size > len(origin):
            raise ValueError(f"pool_size {config.pool_size} is larger than the {len(origin)} training images")
        origin = np.sort(rng.choice(origin, config.pool_size, replace=False))
    x_pool, y_pool = x_train[origin], y_train[origin]

    pixel_max = 255.0 if x_pool.dtype == np.uint8 else float(max(np.abs(x_pool).max(), 1e-12))
    if x_pool.dtype != np.uint8 and pixel_max <= 1.0:
        pixel_max = 1.0
    xp = x_pool.astype(np.float32)
    xt = x_test.astype(np.float32)
    if config.normalization == "unit":
        xp /= pixel_max
        xt /= pixel_max
        offset, scale = 0.0, 1.0
    elif config.normalization == "standardize":
        mean = float(xp.mean(dtype=np.float64))
        std = float(xp.std(dtype=np.float64)) or 1.0
        xp = (xp - mean) / std
        xt = (xt - mean) / std
        # displayed = (x*std + mean)/pixel_max = (x - (-mean/std)) / (pixel_max/std)
        offset, scale = -mean / std, pixel_max / std
    else:
        offset, scale = 0.0, pixel_max
    return Dataset(
        name=config.dataset if config.dataset not in ("idx", "npz") else f"{config.dataset}:{raw.source}",
        x_pool=_readonly(xp), y_pool=_readonly(y_pool.astype(np.int32)),
        x_test=_readonly(xt), y_test=_readonly(y_test.astype(np.int32)),
        class_names=class_names, source=raw.source,
        display_offset=offset, display_scale=scale, pool_origin=_readonly(origin),
    )


def load_dataset(config: ExperimentConfig) -> Dataset:
    """Load and prepare the dataset a config names."""
    return prepare(load_raw(config), config)
