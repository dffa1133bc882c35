"""Datasets: loading, checking and preparing pool / test arrays.

Every loader returns raw arrays; :func:`prepare` turns them into a :class:`Dataset`
(pool subsample, test split, pixel normalization) with read-only arrays so that a
cache may hand the same object to several experiments safely.

No TensorFlow here: the Keras loaders import keras only when called.
"""
from __future__ import annotations

import glob
import gzip
import hashlib
import io
import math
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from alcore.config import ExperimentConfig

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                   "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                   "horse", "ship", "truck")
DIGIT_CLASSES = tuple(str(i) for i in range(10))

# Limits on a dataset read from a user's files, checked against the array headers
# before anything is allocated, so a forged header or a zip bomb is refused instead
# of taking the machine down. Sized for the largest public image sets people load:
# EMNIST ByClass (train + test) is 639 million uint8 pixels, CIFAR-10 184 million.
# At the limit, prepare() holds the arrays and their float32 copies: about 4 GB for
# uint8 pixels, 9 GB for float32 ones; far below that, nothing fails for size.
MAX_ELEMENTS = 700_000_000  # values in all arrays of one dataset together
MAX_BYTES = 3 * 1024**3  # their size as stored (uncompressed): CIFAR-10 in float64 is 1.5 GB
MAX_CLASSES = 100_000
MAX_CLASS_NAME_CHARS = 200
MAX_TEXT_FILE_BYTES = 1024 * 1024  # an EMNIST mapping.txt / KMNIST classmap.csv is a few KB
_NPY_HEADER_BYTES = 10_000  # numpy's own default cap on a .npy header


class DatasetUnavailableError(OSError):
    """A dataset could not be fetched or found (offline, missing folder). ``reason``: what went
    wrong; ``fix``: what to do about it on the machine that runs this code (it may name a folder
    to point data_dir at, which a server that reads no folders of its own cannot offer its
    visitors; the dashboard gives them its own advice). The message is both."""

    def __init__(self, reason: str, *, fix: Optional[str] = None):
        super().__init__(f"{reason}; {fix}" if fix else reason)
        self.reason, self.fix = reason, fix


class DatasetFileError(ValueError):
    """A dataset file that is present but cannot be used; the message names the file
    and the problem."""


@dataclass(frozen=True)
class RawData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: Optional[np.ndarray]
    y_test: Optional[np.ndarray]
    class_names: tuple[str, ...]
    source: str
    # The file each training image came from (the images loader), for exporting labels by name.
    train_files: Optional[tuple[str, ...]] = None
    # SHA-256 of the user's file the arrays were read from (a .npz or a .zip of images; None for
    # the others): what a result file records instead of the file's path (see sha256_of_file()).
    file_sha256: Optional[str] = None


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
    # Index of each test image into the split it came from: the test split, or the training
    # split where the test images were held out of it (test_from_train). None where unknown.
    test_origin: Optional[np.ndarray] = field(default=None, repr=False)
    test_from_train: bool = False
    # Model inputs when they are not the images: the `transfer` model's backbone features, or
    # the embedding the config chose (alcore.engine.embeddings); ``features_of`` names which.
    features_pool: Optional[np.ndarray] = field(default=None, repr=False)
    features_test: Optional[np.ndarray] = field(default=None, repr=False)
    features_of: str = ""
    # What a person should know about the data as prepared (classes renumbered, classes
    # that no model can learn), in sentences.
    notes: tuple[str, ...] = ()
    # The file each pool image came from, where the dataset has files (the images loader).
    pool_files: Optional[tuple[str, ...]] = field(default=None, repr=False)
    test_files: Optional[tuple[str, ...]] = field(default=None, repr=False)
    file_sha256: Optional[str] = None  # RawData.file_sha256

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
            "file_sha256": self.file_sha256,
        }


# ---------------------------------------------------------------------------- checks

def check_images(x, what: str) -> np.ndarray:
    """Images as (N, H, W) or (N, H, W, 1|3), real numbers, finite and within float32
    -> (N, H, W, C)."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{what} must hold real numbers, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"{what} must have shape (N, height, width) for grayscale or "
                         f"(N, height, width, 1|3), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{what} is empty (0 images)")
    if min(x.shape[1:3]) < 1:
        raise ValueError(f"{what} has images of size {x.shape[1:3]}")
    if x.dtype.kind == "f":
        # min and max propagate NaN and inf, without a temporary the size of x
        lo, hi = float(x.min()), float(x.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            n_img = int((~np.isfinite(x)).reshape(len(x), -1).any(axis=1).sum())
            raise ValueError(f"{what} holds NaN or infinite values in {n_img} image(s)")
        if max(-lo, hi) > float(np.finfo(np.float32).max):
            raise ValueError(f"{what} holds values up to {max(-lo, hi):.3g}, too large for float32 pixels")
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
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{what} must hold class numbers, got dtype {y.dtype}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError(f"{what} holds NaN or infinite labels")
        if not np.all(y == np.round(y)):
            raise ValueError(f"{what} holds non-integer labels such as {y[y != np.round(y)][0]}")
    if len(y) and y.min() < 0:
        raise ValueError(f"{what} holds negative label {int(y.min())}; classes are 0..K-1")
    if n_classes is not None and len(y) and y.max() >= n_classes:
        raise ValueError(f"{what} holds label {int(y.max())}, outside the class range "
                         f"0..{n_classes - 1} ({n_classes} class names)")
    if len(y) and y.max() >= MAX_CLASSES:
        raise ValueError(f"{what} holds label {int(y.max())}; more than {MAX_CLASSES} classes "
                         f"is not supported")
    return y.astype(np.int32)


def check_class_names(names, what: str) -> tuple[str, ...]:
    """1 to MAX_CLASSES distinct names of at most MAX_CLASS_NAME_CHARS characters."""
    names = tuple(names)
    if not names:
        raise ValueError(f"{what} is empty")
    if len(names) > MAX_CLASSES:
        raise ValueError(f"{what} has {len(names)} names; at most {MAX_CLASSES} classes are supported")
    for i, name in enumerate(names):
        if len(name) > MAX_CLASS_NAME_CHARS:
            raise ValueError(f"{what}: name {i} has {len(name)} characters; at most "
                             f"{MAX_CLASS_NAME_CHARS} are allowed")
    if len(set(names)) != len(names):
        dup = next(n for i, n in enumerate(names) if n in names[:i])
        raise ValueError(f"{what}: the name {dup[:40]!r} is given to two classes")
    return names


class _Budget:
    """Running total of the values and bytes a dataset's headers announce."""

    def __init__(self):
        self.elements = self.nbytes = 0

    def add(self, where: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        count = math.prod(shape)  # exact: a forged header cannot overflow it
        self.elements += count
        self.nbytes += count * dtype.itemsize
        if self.elements > MAX_ELEMENTS:
            raise DatasetFileError(f"{where}: shape {shape} makes {self.elements} values in the dataset's "
                                   f"arrays, over the limit of {MAX_ELEMENTS}")
        if self.nbytes > MAX_BYTES:
            raise DatasetFileError(f"{where}: shape {shape} of {dtype} makes {self.nbytes} bytes in the "
                                   f"dataset's arrays, over the limit of {MAX_BYTES} ({MAX_BYTES / 2**30:g} GiB)")


# --------------------------------------------------------------------------- loaders

def _digits_file() -> Optional[Path]:
    """scikit-learn's bundled digits.csv.gz, found without importing scikit-learn (importing any
    of it costs about a second: its base module imports scipy.stats), or None."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # a top-level package is found, not imported
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def load_digits_raw() -> RawData:
    """The 1 797 8x8 images of scikit-learn's ``load_digits``, read straight from its bundled
    file as ``load_digits`` reads it (the dashboard's first page does not wait for scikit-learn)."""
    path = _digits_file()
    if path is None:  # another layout of the package: ask scikit-learn itself
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = d.images, d.target
    else:
        with gzip.open(path, "rt") as f:
            data = np.loadtxt(f, delimiter=",")
        x, y = data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
    return RawData(x.astype(np.float32), y.astype(np.int32), None, None, DIGIT_CLASSES, "scikit-learn load_digits")


_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


def _idx_header(f, path: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) of an open idx file, read from its first bytes."""
    header = f.read(4)
    if len(header) < 4:
        raise DatasetFileError(f"{path}: too short to be an idx file ({len(header)} bytes)")
    if header[0] != 0 or header[1] != 0 or header[2] not in _IDX_DTYPES or header[3] == 0:
        raise DatasetFileError(f"{path}: not an idx file (bad magic number {header.hex()})")
    ndim = header[3]
    dims_raw = f.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DatasetFileError(f"{path}: header truncated ({ndim} dimensions announced)")
    dims = tuple(int(v) for v in np.frombuffer(dims_raw, dtype=">u4"))
    return dims, _IDX_DTYPES[header[2]], 4 + 4 * ndim


def idx_header(path: str | os.PathLike) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype an idx file announces, without reading its data."""
    path = str(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            dims, dtype, _ = _idx_header(f, path)
    except _IDX_ERRORS as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise DatasetFileError(f"{path}: cannot be read as idx ({e})") from e
    return dims, dtype


def read_idx(path: str | os.PathLike, ndim: Optional[int] = None) -> np.ndarray:
    """Read one MNIST-format idx file (optionally gzip-compressed).

    Format (LeCun et al.): two zero bytes, a type byte, the number of dimensions,
    one big-endian uint32 per dimension, then the raw data in C order. The header
    is checked (``ndim`` if given, the size limits, the file's length for plain
    files) before the data is read; data beyond what the header describes is refused.
    """
    path = str(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            dims, dtype, header_len = _idx_header(f, path)
            if ndim is not None and len(dims) != ndim:
                raise DatasetFileError(f"{path}: expected {ndim} dimensions, the header has {len(dims)} {dims}")
            _Budget().add(path, dims, dtype)
            want = math.prod(dims) * dtype.itemsize
            if opener is open:
                size = os.fstat(f.fileno()).st_size
                if size != header_len + want:
                    raise DatasetFileError(f"{path}: {'truncated' if size < header_len + want else 'too long'}: "
                                           f"header says {dims} ({want} bytes of data), the file holds "
                                           f"{size - header_len} after its header")
            data = f.read(want)
            extra = len(f.read(1)) if len(data) == want else 0
    except _IDX_ERRORS as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise DatasetFileError(f"{path}: cannot be read as idx ({e})") from e
    if len(data) != want:
        raise DatasetFileError(f"{path}: truncated: header says {dims} ({want} bytes), file holds {len(data)}")
    if extra:
        raise DatasetFileError(f"{path}: holds more data than its header {dims} describes")
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _find_one(folder: Path, patterns: Sequence[str]) -> Optional[Path]:
    for pat in patterns:
        hits = sorted(glob.glob(str(folder / pat)))
        if hits:
            return Path(hits[0])
    return None


def _read_small_text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_TEXT_FILE_BYTES:
        raise DatasetFileError(f"{path}: {size} bytes is over the {MAX_TEXT_FILE_BYTES}-byte "
                               f"limit for a class-name file")
    return path.read_bytes().decode("utf-8", errors="replace")


_WHOLE = re.compile(r"[0-9]{1,9}")


def _idx_class_names(folder: Path, n_classes: int) -> tuple[str, ...]:
    """Class names from an EMNIST '*mapping.txt' (class, Unicode code point) or a KMNIST
    '*classmap.csv' (index, codepoint, char), if present; else '0', '1', ..."""
    mapping = _find_one(folder, ["*mapping.txt"])
    if mapping is not None:
        names = {}
        for no, line in enumerate(_read_small_text(mapping).splitlines(), 1):
            parts = line.split()
            if len(parts) == 2 and all(_WHOLE.fullmatch(p) for p in parts):
                code = int(parts[1])
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise DatasetFileError(f"{mapping}: line {no}: {code} is not a Unicode code point")
                names[int(parts[0])] = chr(code)
        if len(names) >= n_classes:
            return _checked_names((names.get(i, str(i)) for i in range(n_classes)), str(mapping))
    classmap = _find_one(folder, ["*classmap.csv"])
    if classmap is not None:
        names = {}
        for line in _read_small_text(classmap).splitlines()[1:]:
            parts = line.split(",")
            if len(parts) >= 3 and _WHOLE.fullmatch(parts[0]):
                names[int(parts[0])] = parts[2]
        if len(names) >= n_classes:
            return _checked_names((names.get(i, str(i)) for i in range(n_classes)), str(classmap))
    return tuple(str(i) for i in range(n_classes))


def _checked_names(names, where: str) -> tuple[str, ...]:
    try:
        return check_class_names(names, where)
    except ValueError as e:
        raise DatasetFileError(str(e)) from e


def load_idx_folder(folder: str | os.PathLike, class_names: Optional[Sequence[str]] = None) -> RawData:
    """A folder with MNIST-format idx files (MNIST, Fashion-MNIST, Kuzushiji-MNIST, EMNIST).

    Needs ``*train-images-idx3-ubyte[.gz]`` and ``*train-labels-idx1-ubyte[.gz]``;
    ``*t10k-*`` or ``*test-*`` files give the test split when present.
    EMNIST stores images transposed; files named ``emnist*`` are turned upright.
    All headers are read and checked against the size limits before any data.
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
    files = [(tr_x, 3), (tr_y, 1)] + ([(te_x, 3), (te_y, 1)] if te_x is not None and te_y is not None else [])
    budget = _Budget()
    for path, ndim in files:  # every header first: nothing is read when the total is too big
        dims, dtype = idx_header(path)
        if len(dims) != ndim:
            raise DatasetFileError(f"{path}: expected {ndim} dimensions "
                                   f"({'(N, rows, cols)' if ndim == 3 else '(N,)'}), the header has {dims}")
        budget.add(str(path), dims, dtype)
    x_train, y_train, *test = [read_idx(path, ndim) for path, ndim in files]
    x_test, y_test = test if test else (None, None)
    for x, y, xp, yp in ((x_train, y_train, tr_x, tr_y), (x_test, y_test, te_x, te_y)):
        if x is not None:  # before the class count is read off the labels
            try:
                check_labels(y, len(x), str(yp))
            except ValueError as e:
                raise DatasetFileError(f"{e} (images: {xp.name})") from e
    if tr_x.name.lower().startswith("emnist"):
        x_train = np.ascontiguousarray(x_train.transpose(0, 2, 1))
        if x_test is not None:
            x_test = np.ascontiguousarray(x_test.transpose(0, 2, 1))
    if class_names is None:
        k = int(max(y_train.max(initial=0), y_test.max(initial=0) if y_test is not None else 0)) + 1
        class_names = _idx_class_names(folder, k)
    # the folder's name, not its path: the source goes into result files, which are shared
    return RawData(x_train, y_train, x_test, y_test, tuple(class_names), f"idx files in {folder.name or folder}")


# What each array of a .npz may hold (numpy dtype kinds): real numbers; strings (or
# whole numbers) for the class names.
_NPZ_KINDS = {"x_train": "biuf", "y_train": "biuf", "x_test": "biuf", "y_test": "biuf", "class_names": "USiu"}
# A .npz of embeddings (alcore.engine.embeddings): rows of numbers for the training and test splits.
EMBEDDING_NPZ_KINDS = {"train": "biuf", "test": "biuf"}


def _npz_member(zf: zipfile.ZipFile, key: str) -> Optional[zipfile.ZipInfo]:
    names = set(zf.namelist())
    for name in (key + ".npy", key):  # np.savez writes 'key.npy'; np.load accepts both
        if name in names:
            return zf.getinfo(name)
    return None


def _npz_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, where: str,
                budget: _Budget, kinds: dict = _NPZ_KINDS) -> tuple[tuple[int, ...], np.dtype]:
    """Check a member's .npy header (dtype, shape, declared size) before its data is read.

    ``info.file_size`` bounds what zipfile will ever unpack of the member, so checking
    it first defuses a zip bomb; the header must then account for exactly that size."""
    if info.file_size > MAX_BYTES:
        raise DatasetFileError(f"{where}: {key} unpacks to {info.file_size} bytes, over the "
                               f"{MAX_BYTES}-byte limit ({MAX_BYTES / 2**30:g} GiB)")
    with zf.open(info) as f:
        if f.read(6) != b"\x93NUMPY":
            raise DatasetFileError(f"{where}: {key} is not a .npy array")
        f.seek(0)
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise DatasetFileError(f"{where}: {key} uses .npy format version {version[0]}.{version[1]}; "
                                   f"only plain arrays (versions 1.0 and 2.0) are read")
        try:
            shape, _, dtype = read_header(f, max_header_size=_NPY_HEADER_BYTES)
        except ValueError as e:  # numpy's words for a header it cannot parse
            raise DatasetFileError(f"{where}: {key} has a damaged .npy header ({str(e)[:120]})") from e
        header_len = f.tell()
    if dtype.hasobject:
        raise DatasetFileError(f"{where}: {key} holds Python objects (dtype {dtype}); only plain numeric "
                               f"and string arrays are accepted, and nothing in the file is unpickled")
    if dtype.kind not in kinds[key] or dtype.names is not None or dtype.subdtype is not None:
        allowed = "strings" if key == "class_names" else "real numbers"
        raise DatasetFileError(f"{where}: {key} has dtype {dtype}; it must hold {allowed}")
    if any(d < 0 for d in shape):
        raise DatasetFileError(f"{where}: {key} has a negative dimension in its shape {shape}")
    budget.add(f"{where}: {key}", shape, dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if header_len + nbytes != info.file_size:
        raise DatasetFileError(f"{where}: {key} says shape {shape} of {dtype} ({nbytes} bytes) but "
                               f"holds {info.file_size - header_len} bytes of data")
    return tuple(int(d) for d in shape), dtype


def _npz_class_names(cn: np.ndarray, where: str) -> tuple[str, ...]:
    if cn.ndim != 1:
        raise DatasetFileError(f"{where}: class_names must be a 1-D array of strings, got shape {cn.shape}")
    names = []
    for i, c in enumerate(cn.tolist()):
        if isinstance(c, bytes):
            try:
                c = c.decode("utf-8")
            except UnicodeDecodeError:
                raise DatasetFileError(f"{where}: class_names[{i}] is not UTF-8 text") from None
        c = str(c)
        try:
            c.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: numpy's UCS-4 strings can hold one
            raise DatasetFileError(f"{where}: class_names[{i}] is not valid Unicode text") from None
        names.append(c)
    return _checked_names(names, f"{where}: class_names")


def regular_file(path: str, kind: str) -> tuple[str, os.stat_result]:
    """The file's name for messages and its stat, once it is known to be a regular file
    (``kind`` names it when it does not exist: "npz file", "image zip")."""
    where = os.path.basename(os.path.normpath(path)) or path
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DatasetUnavailableError(f"{kind} {path!r} does not exist") from None
    except OSError as e:
        raise DatasetFileError(f"{where}: cannot be read ({e.strerror or e})") from e
    if not stat.S_ISREG(st.st_mode):
        raise DatasetFileError(f"{where}: not a regular file")
    return where, st


def sha256_of_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex), read in chunks: the fingerprint that names a user's data
    file in a result file, where its path would say where it lies on the machine that ran it."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _npz_stat(path: str) -> str:
    """The file's name for messages, once it is known to be a regular file within MAX_BYTES."""
    where, st = regular_file(path, "npz file")
    if st.st_size > MAX_BYTES:
        raise DatasetFileError(f"{where}: {st.st_size} bytes is over the {MAX_BYTES}-byte limit")
    return where


def _npz_checked(zf: zipfile.ZipFile, where: str, kinds: dict = _NPZ_KINDS,
                 required: tuple = ("x_train", "y_train")) -> dict[str, tuple[zipfile.ZipInfo, tuple, np.dtype]]:
    """Every array's member, shape and dtype, from the .npy headers (no data read): a dataset's
    arrays, or those ``kinds`` names of which ``required`` must be there."""
    members = {k: _npz_member(zf, k) for k in kinds}
    keys = sorted(k for k, v in members.items() if v is not None)
    missing = set(required) - set(keys)
    if missing:
        found = sorted(n.removesuffix(".npy") for n in zf.namelist())[:10]
        raise DatasetFileError(f"{where}: missing array(s) {', '.join(sorted(missing))}; "
                               f"found {', '.join(f[:40] for f in found) or 'none'}")
    if kinds is _NPZ_KINDS and ("x_test" in keys) != ("y_test" in keys):
        raise DatasetFileError(f"{where}: has only one of x_test / y_test")
    budget = _Budget()
    return {k: (members[k], *_npz_header(zf, members[k], k, where, budget, kinds)) for k in keys}


_NPZ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError,
               RuntimeError)  # what zipfile and numpy raise on damaged or encrypted archives


def _npz_damaged(where: str, e: Exception) -> DatasetFileError:
    return DatasetFileError(f"{where}: not a readable .npz file ({type(e).__name__}: {str(e)[:200]})")


NpzSource = Union[str, os.PathLike, bytes]


def _npz_source(source: NpzSource, name: Optional[str]):
    """What zipfile opens for a user's ``.npz`` (its path, or its bytes: an upload checked before
    it is written anywhere) and the file's name for messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        where = os.path.basename(name or "") or "uploaded .npz"
        if len(source) > MAX_BYTES:
            raise DatasetFileError(f"{where}: {len(source)} bytes is over the {MAX_BYTES}-byte limit")
        return io.BytesIO(source), where
    return str(source), _npz_stat(str(source))


def npz_headers(source: NpzSource, name: Optional[str] = None, kinds: dict = _NPZ_KINDS,
                required: tuple = ("x_train", "y_train")) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The arrays a user's ``.npz`` announces, ``{key: (shape, dtype)}``, read from the .npy
    headers inside the zip without unpacking any data (checked as :func:`load_npz` checks
    them). Their unpacked size is ``prod(shape) * dtype.itemsize`` each. ``source``: the file's
    path, or its bytes (``name``: the file's name for messages); ``kinds`` and ``required``:
    another sort of file's arrays, e.g. EMBEDDING_NPZ_KINDS."""
    opened, where = _npz_source(source, name)
    try:
        with zipfile.ZipFile(opened) as zf:
            return {k: (shape, dtype) for k, (_, shape, dtype) in _npz_checked(zf, where, kinds, required).items()}
    except DatasetFileError:
        raise
    except _NPZ_ERRORS as e:
        raise _npz_damaged(where, e) from e


def npz_arrays(source: NpzSource, keys: Sequence[str], name: Optional[str] = None, kinds: dict = _NPZ_KINDS,
               required: tuple = ("x_train", "y_train")) -> dict[str, np.ndarray]:
    """Some of a user's ``.npz`` arrays (``keys`` that it holds), after every header is checked
    (``source``, ``name``, ``kinds``, ``required``: as for :func:`npz_headers`)."""
    opened, where = _npz_source(source, name)
    try:
        with zipfile.ZipFile(opened) as zf:
            checked = _npz_checked(zf, where, kinds, required)
            arrays = {}
            for k in keys:
                if k in checked:
                    with zf.open(checked[k][0]) as f:
                        arrays[k] = np.lib.format.read_array(f, allow_pickle=False,
                                                             max_header_size=_NPY_HEADER_BYTES)
            return arrays
    except DatasetFileError:
        raise
    except _NPZ_ERRORS as e:
        raise _npz_damaged(where, e) from e


def load_npz(path: str | os.PathLike) -> RawData:
    """A user's ``.npz``: x_train, y_train, optional x_test, y_test and class_names.

    Every member's .npy header is checked against the size limits before its data
    is unpacked, so zip bombs and forged shapes are refused cheaply. Arrays are read
    with ``allow_pickle=False``: nothing in the file is ever unpickled. Other members
    of the archive are ignored.
    """
    path = str(path)
    arrays = npz_arrays(path, list(_NPZ_KINDS))
    where = os.path.basename(path)
    names = _npz_class_names(arrays["class_names"], where) if "class_names" in arrays else None
    return RawData(arrays["x_train"], arrays["y_train"], arrays.get("x_test"), arrays.get("y_test"),
                   names, f"npz file {where}", file_sha256=sha256_of_file(path))


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
    from alcore._tf import keras

    loader = getattr(keras.datasets, name).load_data
    try:
        (x_train, y_train), (x_test, y_test) = loader()
    except Exception as e:
        raise DatasetUnavailableError(
            f"could not load {name} through keras.datasets (download needed on first use, "
            f"is this machine offline?): {type(e).__name__}: {e}",
            fix="for offline use point data_dir (or $ALCORE_DATA_DIR) at a folder of its idx files"
            if name != "cifar10" else None) from e
    return RawData(x_train, y_train.reshape(-1), x_test, y_test.reshape(-1), names, f"keras.datasets.{name}")


def dataset_title(name: str) -> str:
    """A dataset's name as a reader reads it. A user's file or folder is named by its kind and its
    source ("npz:npz file kmnist.npz", as result files record it); the source alone already says
    the kind ("npz file kmnist.npz")."""
    kind, sep, source = str(name).partition(":")
    return source if sep and source and kind in ("idx", "npz", "images") else str(name)


def load_raw(config: ExperimentConfig, *, image_limits=None) -> RawData:
    """The arrays a config names, as its source holds them. ``image_limits``: the
    :class:`alcore.data.images.ImageLimits` a .zip of images is read within (the loader's own
    by default; a server lowers them)."""
    data_dir = config.data_dir or os.environ.get("ALCORE_DATA_DIR")
    if config.dataset == "digits":
        return load_digits_raw()
    if config.dataset in ("mnist", "fashion_mnist", "cifar10"):
        return load_keras_dataset(config.dataset, data_dir)
    if config.dataset == "idx":
        return load_idx_folder(data_dir)
    if config.dataset == "npz":
        return load_npz(config.data_file)
    if config.dataset == "images":
        from alcore.data.images import load_images, require_labels

        return require_labels(load_images(config.data_file, config.image_size, limits=image_limits),
                              os.path.basename(config.data_file))
    raise ValueError(f"unknown dataset {config.dataset!r}")


# ------------------------------------------------------------------------- prepare

def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def normalize(x_pool: np.ndarray, x_test: np.ndarray, normalization: str):
    """Pool and test images as float32 for the model, and (offset, scale) that map them back
    to [0, 1] for display (:meth:`Dataset.display_images`)."""
    # from min and max in float: np.abs wraps for the most negative integer
    pixel_max = 255.0 if x_pool.dtype == np.uint8 else max(-float(x_pool.min()), float(x_pool.max()), 1e-12)
    if x_pool.dtype != np.uint8 and pixel_max <= 1.0:
        pixel_max = 1.0
    xp = x_pool.astype(np.float32)
    xt = x_test.astype(np.float32)
    if normalization == "unit":
        xp /= pixel_max
        xt /= pixel_max
        offset, scale = 0.0, 1.0
    elif normalization == "standardize":
        mean = float(xp.mean(dtype=np.float64))
        std = float(xp.std(dtype=np.float64)) or 1.0
        xp = (xp - mean) / std
        xt = (xt - mean) / std
        # displayed = (x*std + mean)/pixel_max = (x - (-mean/std)) / (pixel_max/std)
        offset, scale = -mean / std, pixel_max / std
    else:
        offset, scale = 0.0, pixel_max
    return xp, xt, offset, scale


def _listed(names: Sequence[str], most: int = 10) -> str:
    shown = ", ".join(repr(str(n)[:40]) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _numbered_classes(y_train: np.ndarray, y_test: Optional[np.ndarray]):
    """Classes of labels that come without names: 0..K-1 as they are; any other set of
    whole numbers (1..10, or 0, 2, 5) renumbered 0..K-1 in order, each class named after
    its number in the file, so no class is empty. (y_train, y_test, names, note or None)."""
    present = np.unique(y_train if y_test is None else np.concatenate([y_train, y_test]))
    if int(present[-1]) + 1 == len(present):
        return y_train, y_test, tuple(str(i) for i in range(len(present))), None
    lookup = np.zeros(int(present[-1]) + 1, dtype=np.int32)
    lookup[present] = np.arange(len(present), dtype=np.int32)
    names = tuple(str(int(v)) for v in present)
    note = (f"the labels are the {len(present)} numbers {_listed(names, 5)}, not 0..{len(present) - 1}: "
            f"they are renumbered 0..{len(present) - 1} in that order and each class keeps its number "
            f"as its name (no empty classes)")
    return lookup[y_train], (None if y_test is None else lookup[y_test]), names, note


def _unlearnable_classes(y_pool: np.ndarray, y_test: np.ndarray, class_names: Sequence[str]) -> list[str]:
    """A sentence naming the classes with test images but no pool image: no model trained on
    this pool can predict them, so every test image of theirs counts as an error."""
    k = len(class_names)
    in_pool = np.bincount(y_pool, minlength=k)
    in_test = np.bincount(y_test, minlength=k)
    missing = np.flatnonzero((in_test > 0) & (in_pool == 0))
    if not len(missing):
        return []
    names = [class_names[i] for i in missing]
    n_img = int(in_test[missing].sum())
    return [f"{'class' if len(names) == 1 else f'{len(names)} classes'} {_listed(names)} "
            f"{'has' if len(names) == 1 else 'have'} {n_img:,} test image(s) but no image in the pool: no "
            f"model trained on this pool can predict {'it' if len(names) == 1 else 'them'}, so those test "
            f"images always count as errors"]


def prepare(raw: RawData, config: ExperimentConfig) -> Dataset:
    """Check raw arrays, draw the pool and test set, normalize pixels."""
    from alcore.data.split import train_test_indices

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
    notes = []
    if k is None:
        y_train, y_test, class_names, note = _numbered_classes(y_train, y_test)
        k = len(class_names)
        notes += [note] if note else []
    else:
        class_names = tuple(raw.class_names)
    if k < 2:
        raise ValueError(f"need at least 2 classes, found {k}")

    rng = np.random.default_rng([config.seed, 7919])
    origin = np.arange(len(x_train))
    test_origin = None if x_test is None else np.arange(len(x_test))
    if x_test is None:
        n_test = config.test_size if config.test_size is not None else max(1, int(round(0.2 * len(x_train))))
        if n_test >= len(x_train):
            raise ValueError(f"test_size {n_test} leaves no training images out of {len(x_train)}")
        counts = np.bincount(y_train, minlength=k)
        stratify = y_train if (counts[counts > 0].min() >= 2 and n_test >= k) else None
        tr, te = train_test_indices(len(origin), n_test, int(rng.integers(2**31)), stratify)  # origin: arange
        x_test, y_test = x_train[te], y_train[te]
        origin, test_origin = np.sort(tr), te
    elif config.test_size is not None:
        if config.test_size > len(x_test):
            raise ValueError(f"test_size {config.test_size} is larger than the {len(x_test)} test images")
        te = np.sort(rng.choice(len(x_test), config.test_size, replace=False))
        x_test, y_test, test_origin = x_test[te], y_test[te], te
    if config.pool_size is not None:
        if config.pool_size > len(origin):
            raise ValueError(f"pool_size {config.pool_size} is larger than the {len(origin)} training images")
        origin = np.sort(rng.choice(origin, config.pool_size, replace=False))
    x_pool, y_pool = x_train[origin], y_train[origin]
    notes += _unlearnable_classes(y_pool, y_test, class_names)

    xp, xt, offset, scale = normalize(x_pool, x_test, config.normalization)
    return Dataset(
        name=config.dataset if config.dataset not in ("idx", "npz", "images") else f"{config.dataset}:{raw.source}",
        x_pool=_readonly(xp), y_pool=_readonly(y_pool.astype(np.int32)),
        x_test=_readonly(xt), y_test=_readonly(y_test.astype(np.int32)),
        class_names=class_names, source=raw.source,
        display_offset=offset, display_scale=scale, pool_origin=_readonly(origin), notes=tuple(notes),
        test_origin=_readonly(test_origin), test_from_train=raw.x_test is None,
        pool_files=None if raw.train_files is None else tuple(raw.train_files[i] for i in origin),
        file_sha256=raw.file_sha256,
    )


def load_dataset(config: ExperimentConfig, *, image_limits=None) -> Dataset:
    """Load and prepare the dataset a config names (``image_limits``: see :func:`load_raw`).

    Raises :class:`DatasetUnavailableError` when the data is not here, and a
    ``ValueError`` (a :class:`DatasetFileError` for the user's own files, naming
    them) when it cannot be used."""
    raw = load_raw(config, image_limits=image_limits)
    try:
        return prepare(raw, config)
    except DatasetFileError:
        raise
    except ValueError as e:
        if config.dataset in ("npz", "idx", "images"):
            raise DatasetFileError(f"{raw.source}: {e}") from e
        raise


# ------------------------------------------------------------------------- sharing

def dataset_nbytes(ds: Dataset) -> int:
    """Memory held by a prepared dataset's arrays."""
    arrays = (ds.x_pool, ds.y_pool, ds.x_test, ds.y_test, ds.pool_origin, ds.features_pool, ds.features_test)
    return sum(int(a.nbytes) for a in arrays if a is not None)


class DatasetCache:
    """Prepared datasets shared by every user of one process, bounded by bytes.

    A whole MNIST pool is about 220 MB once prepared (float32), so a cache that counts
    entries lets a few seeds or pool sizes fill a 2.7 GB server. This one evicts the
    least recently used datasets while the total is over ``max_bytes`` (the newest is
    always kept, however large). A dataset evicted while a run still holds it is handed
    out again rather than loaded a second time: the cache keeps weak references to
    every dataset it made, so one key never has two copies alive.

    Thread-safe; the same key is loaded once even when two sessions ask at once.
    Failures are not cached."""

    def __init__(self, max_bytes: int, loader=None):
        import threading
        import weakref

        if max_bytes < 0:
            raise ValueError(f"max_bytes must be 0 or more, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._load = loader or load_dataset
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}
        self._entries: dict[tuple, Dataset] = {}  # in order of use, oldest first
        self._alive: "weakref.WeakValueDictionary[tuple, Dataset]" = weakref.WeakValueDictionary()
        self.loads = 0  # how many times the loader ran (for tests and benchmarks)

    def get(self, config: ExperimentConfig) -> Dataset:
        """The prepared dataset for ``config``, loaded on first use (its ``data_key``
        decides what counts as the same dataset)."""
        import threading

        key = config.data_key()
        hit = self._lookup(key)
        if hit is not None:
            return hit
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            hit = self._lookup(key)  # loaded by another thread while this one waited
            if hit is not None:
                return hit
            try:
                ds = self._load(config)
                self.loads += 1
                with self._lock:
                    self._alive[key] = ds
                    self._keep(key, ds)
                return ds
            finally:
                with self._lock:
                    self._loading.pop(key, None)

    @property
    def nbytes(self) -> int:
        """Bytes held by the cache itself (datasets still used elsewhere aside)."""
        with self._lock:
            return sum(dataset_nbytes(d) for d in self._entries.values())

    def keys(self) -> list[tuple]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _lookup(self, key: tuple) -> Optional[Dataset]:
        with self._lock:
            ds = self._entries.pop(key, None) or self._alive.get(key)
            if ds is not None:
                self._keep(key, ds)
            return ds

    def _keep(self, key: tuple, ds: Dataset) -> None:
        # caller holds the lock
        self._entries.pop(key, None)
        self._entries[key] = ds
        total = sum(dataset_nbytes(d) for d in self._entries.values())
        while total > self.max_bytes and len(self._entries) > 1:
            oldest = next(iter(self._entries))
            total -= dataset_nbytes(self._entries.pop(oldest))
