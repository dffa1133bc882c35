import io
import os
import subprocess
import sys
import shutil
import zipfile

import numpy as np
import pytest

from alcore import ExperimentConfig

from alcore.data import datasets as data
from alcore.data.datasets import (DatasetFileError, DatasetUnavailableError, load_dataset, load_idx_folder, load_npz, prepare,
                         read_idx, RawData)
from conftest import ROOT, shared_fashion, shared_mnist, write_idx


def test_digits_default_split_is_stratified_and_read_only():
    ds = load_dataset(ExperimentConfig())
    assert ds.x_pool.shape[1:] == (8, 8, 1) and ds.n_classes == 10
    assert len(ds.y_pool) + len(ds.y_test) == 1797
    assert len(ds.y_test) == round(0.2 * 1797)
    assert set(np.unique(ds.y_test)) == set(range(10))
    assert 0.0 <= ds.x_pool.min() and ds.x_pool.max() <= 1.0
    with pytest.raises(ValueError):
        ds.x_pool[0, 0, 0, 0] = 1.0


def test_digits_are_read_from_scikit_learns_file_without_importing_it(monkeypatch):
    """The first page reads the digits itself (scikit-learn takes about a second to import): the
    same 1 797 images and labels as load_digits, also where the file is not where it looked."""
    from sklearn.datasets import load_digits

    script = "import sys; from alcore.data.datasets import load_digits_raw; load_digits_raw(); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False", out.stderr
    d = load_digits()
    for raw in (data.load_digits_raw(), monkeypatch.setattr(data, "_digits_file", lambda: None) or data.load_digits_raw()):
        assert raw.x_train.dtype == np.float32 and np.array_equal(raw.x_train, d.images)
        assert raw.y_train.dtype == np.int32 and np.array_equal(raw.y_train, d.target)
    from sklearn.model_selection import train_test_split

    digits = load_dataset(ExperimentConfig())  # and the pool every digits run so far was drawn from
    _, te = train_test_split(np.arange(1797), test_size=359, stratify=d.target,
                             random_state=int(np.random.default_rng([0, 7919]).integers(2**31)))
    assert digits.test_origin.tolist() == te.tolist()


@pytest.mark.parametrize("seed", range(12))
def test_the_split_without_scikit_learn_draws_what_train_test_split_draws(seed):
    """Every saved run on digits names its pool by the seed; the numpy split must give the same pool."""
    from sklearn.model_selection import train_test_split
    from alcore.data.split import train_test_indices

    rng = np.random.default_rng(seed)
    n = int(rng.integers(12, 400))
    k = int(rng.integers(2, 6))
    y = rng.choice(k, n, p=rng.dirichlet(np.ones(k)))  # uneven classes: remainders and their ties
    y[:2 * k] = np.repeat(np.arange(k), 2)  # every class at least twice, as prepare's stratified case
    n_test = int(rng.integers(k, n - k))
    for stratify in (y, None):
        want = train_test_split(np.arange(n), test_size=n_test, random_state=seed * 7, stratify=stratify)
        got = train_test_indices(n, n_test, seed * 7, stratify)
        assert [g.tolist() for g in got] == [w.tolist() for w in want]


def test_pool_and_test_sizes_and_seed():
    cfg = ExperimentConfig(pool_size=300, test_size=100, seed=1)
    a, b = load_dataset(cfg), load_dataset(cfg)
    assert len(a.y_pool) == 300 and len(a.y_test) == 100
    np.testing.assert_array_equal(a.y_pool, b.y_pool)
    c = load_dataset(cfg.replace(seed=2))
    assert not np.array_equal(a.pool_origin, c.pool_origin)
    with pytest.raises(ValueError, match="pool_size 5000 is larger"):
        load_dataset(cfg.replace(pool_size=5000))


@pytest.mark.parametrize("norm", ["unit", "standardize", "none"])
def test_normalizations_and_display(norm):
    ds = load_dataset(ExperimentConfig(normalization=norm))
    raw = load_dataset(ExperimentConfig(normalization="none"))
    if norm == "unit":
        assert ds.x_pool.max() == pytest.approx(1.0)
    if norm == "standardize":
        assert abs(ds.x_pool.mean()) < 1e-4 and ds.x_pool.std() == pytest.approx(1.0, abs=1e-3)
    if norm == "none":
        assert ds.x_pool.max() == 16.0
    # whatever the scaling, display images are the same pixels in [0, 1]
    np.testing.assert_allclose(ds.display_images(ds.x_pool[:5]), raw.x_pool[:5, ..., 0] / 16.0, atol=1e-5)


def test_idx_folder_reads_gz_and_plain(idx_folder):
    raw = load_idx_folder(idx_folder)
    assert raw.x_train.shape == (90, 10, 10) and raw.x_test.shape == (30, 10, 10)
    assert raw.class_names == ("0", "1", "2")
    cfg = ExperimentConfig(dataset="idx", data_dir=str(idx_folder))
    ds = load_dataset(cfg)
    assert ds.x_pool.shape == (90, 10, 10, 1) and len(ds.y_test) == 30


def test_idx_emnist_files_are_turned_upright_and_named(tmp_path):
    x = np.zeros((4, 5, 5), np.uint8)
    x[:, 0, :] = 255  # a top row, stored transposed as a left column
    write_idx(tmp_path / "emnist-letters-train-images-idx3-ubyte.gz", x.transpose(0, 2, 1))
    write_idx(tmp_path / "emnist-letters-train-labels-idx1-ubyte.gz", np.array([0, 1, 2, 1]))
    (tmp_path / "emnist-letters-mapping.txt").write_text("0 65\n1 66\n2 67\n")
    raw = load_idx_folder(tmp_path)
    assert raw.x_train[0, 0].tolist() == [255] * 5
    assert raw.class_names == ("A", "B", "C") and raw.x_test is None


@pytest.mark.parametrize("corrupt, words", [
    (lambda b: b[:20], "truncated"),
    (lambda b: b + b"\0", "too long"),
    (lambda b: b"\x01\x02" + b[2:], "bad magic"),
    (lambda b: b[:2], "too short"),
    (lambda b: b[:4] + b"\xff\xff\xff\xff" * 3 + b[16:], "over the limit"),
])
def test_corrupt_idx_files_are_refused(tmp_path, corrupt, words):
    good = write_idx(tmp_path / "x.idx", np.zeros((3, 4, 4), np.uint8)).read_bytes()
    (tmp_path / "bad.idx").write_bytes(corrupt(good))
    with pytest.raises(ValueError, match=words):
        read_idx(tmp_path / "bad.idx")


def test_missing_idx_folder_says_so(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="does not exist"):
        load_idx_folder(tmp_path / "nope")
    with pytest.raises(DatasetUnavailableError, match="train-images-idx3-ubyte"):
        load_idx_folder(tmp_path)


def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


def test_npz_rgb_any_size_with_class_names(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 12, 9, 3)).astype(np.uint8)
    y = np.arange(40) % 4
    path = _npz(tmp_path, x_train=x, y_train=y, class_names=np.array(["cat", "dog", "emu", "fox"]))
    ds = load_dataset(ExperimentConfig(dataset="npz", data_file=str(path), test_size=8))
    assert ds.image_shape == (12, 9, 3) and ds.class_names == ("cat", "dog", "emu", "fox")
    assert len(ds.y_test) == 8 and len(ds.y_pool) == 32
    assert ds.display_images(ds.x_pool[:2]).shape == (2, 12, 9, 3)


@pytest.mark.parametrize("arrays, words", [
    (dict(x_train=np.zeros((5, 4, 4))), "missing array(s) y_train"),
    (dict(x_train=np.zeros((5, 4, 4)), y_train=np.zeros(4)), "4 labels for 5 images"),
    (dict(x_train=np.full((5, 4, 4), np.nan), y_train=np.zeros(5)), "NaN"),
    (dict(x_train=np.zeros((5, 4)), y_train=np.zeros(5)), "shape (N, height, width)"),
    (dict(x_train=np.zeros((5, 4, 4, 2)), y_train=np.zeros(5)), "(N, height, width, 1|3)"),
    (dict(x_train=np.zeros((5, 4, 4)), y_train=np.array([0, 1, 2, 3, -1])), "negative label"),
    (dict(x_train=np.zeros((5, 4, 4)), y_train=np.array([0, 1, 0, 1, 0.5])), "non-integer"),
    (dict(x_train=np.zeros((5, 4, 4)), y_train=np.array([0, 1, 0, 1, 7]), class_names=np.array(["a", "b"])),
     "outside the class range 0..1"),
    (dict(x_train=np.zeros((0, 4, 4)), y_train=np.zeros(0)), "empty"),
    (dict(x_train=np.zeros((5, 4, 4)), y_train=np.zeros(5)), "at least 2 classes"),
    (dict(x_train=np.zeros((5, 4, 4)), y_train=np.zeros(5), x_test=np.zeros((2, 4, 4))), "only one of"),
    (dict(x_train=np.zeros((5, 4, 4), complex), y_train=np.zeros(5)), "x_train has dtype complex128; it must hold real"),
    (dict(x_train=np.zeros((5, 4, 4), "M8[s]"), y_train=np.zeros(5)), "x_train has dtype datetime64[s]"),
    (dict(x_train=np.zeros((5, 4, 4)), y_train=np.array(list("abcde"))), "y_train has dtype <U1"),
    (dict(x_train=np.full((5, 4, 4), 1e39), y_train=np.arange(5) % 2), "too large for float32"),
    (dict(x_train=np.zeros((5, 4, 4)), y_train=np.arange(5) % 2, class_names=np.array(["a", "a"])),
     "the name 'a' is given to two classes"),
    (dict(x_train=np.zeros((5, 4, 4)), y_train=np.arange(5) % 2, class_names=np.array(["x" * 300, "b"])),
     "name 0 has 300 characters; at most 200"),
    (dict(x_train=np.zeros((5, 4, 4)), y_train=np.arange(5) % 2, class_names=np.array([b"\xff", b"b"])),
     "class_names[0] is not UTF-8"),
    (dict(x_train=np.zeros((5, 4, 4)), y_train=np.arange(5) % 2, class_names=np.array([], dtype=str)),
     "class_names is empty"),
    (dict(x_train=np.zeros((5, 4, 4)), y_train=np.arange(5) * 10**9), "more than 100000 classes"),
])
def test_bad_npz_is_refused_with_a_reason(tmp_path, arrays, words):
    path = _npz(tmp_path, **arrays)
    with pytest.raises(DatasetFileError) as e:
        load_dataset(ExperimentConfig(dataset="npz", data_file=str(path)))
    assert words in str(e.value) and "data.npz" in str(e.value)


def _no_reading(monkeypatch):
    """Fail if any array data is read: the limits must be checked from headers alone."""
    def refuse(*args, **kwargs):
        raise AssertionError("array data was read before the limits were checked")

    monkeypatch.setattr(data.np.lib.format, "read_array", refuse)
    monkeypatch.setattr(data, "read_idx", refuse)


def test_a_forged_npy_shape_is_refused_before_allocating(tmp_path, monkeypatch):
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "|u1", "fortran_order": False,
                                               "shape": (10**6, 1000, 1000)})
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x_train.npy", head.getvalue())
        zf.writestr("y_train.npy", head.getvalue())
    _no_reading(monkeypatch)
    with pytest.raises(DatasetFileError, match=r"forged.npz: x_train: shape \(1000000, 1000, 1000\) makes "
                                               r"1000000000000 values .* over the limit of 700000000"):
        load_npz(path)


def test_a_zip_bomb_is_refused_from_its_declared_size(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x_train=np.zeros((200, 100, 100), np.uint8), y_train=np.zeros(200, np.uint8))
    assert path.stat().st_size < 50_000  # 2 MB of pixels packed small
    monkeypatch.setattr(data, "MAX_BYTES", 1_000_000)
    _no_reading(monkeypatch)
    with pytest.raises(DatasetFileError, match=r"bomb.npz: x_train unpacks to 2000128 bytes, over the "
                                               r"1000000-byte limit"):
        load_npz(path)


def test_a_member_whose_header_and_size_disagree_is_refused(tmp_path):
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "|u1", "fortran_order": False, "shape": (20, 4, 4)})
    path = tmp_path / "lies.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x_train.npy", member.getvalue() + bytes(72))
        zf.writestr("y_train.npy", member.getvalue())
    with pytest.raises(DatasetFileError, match=r"lies.npz: x_train says shape \(20, 4, 4\) of uint8 \(320 bytes\) "
                                               r"but holds 72 bytes"):
        load_npz(path)
    # a zip whose directory claims another size fails zipfile's CRC check instead
    np.savez(path, x_train=np.zeros((20, 4, 4), np.uint8), y_train=np.zeros(20, np.uint8))
    raw = bytearray(path.read_bytes())
    at = raw.find(b"PK\x01\x02")
    raw[at + 24:at + 28] = (200).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetFileError, match=r"lies.npz: not a readable .npz file \(BadZipFile: Bad CRC-32"):
        load_npz(path)


def test_idx_headers_are_all_checked_before_any_data_is_read(idx_folder, monkeypatch):
    monkeypatch.setattr(data, "MAX_ELEMENTS", 10_000)  # the training files (9090 values) fit; not the test images
    _no_reading(monkeypatch)
    with pytest.raises(DatasetFileError, match=r"t10k-images-idx3-ubyte: shape \(30, 10, 10\) makes 12090 "
                                               r"values .* over the limit of 10000"):
        load_idx_folder(idx_folder)


def _idx(path, code: int, array: np.ndarray):
    dtype = {0x08: "u1", 0x0C: ">i4", 0x0D: ">f4"}[code]
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=dtype).tobytes())


@pytest.mark.parametrize("labels, words", [
    (np.array([0, 1, 2**31 - 1], ">i4"), "holds label 2147483647; more than 100000 classes"),
    (np.array([0, 1, -3], ">i4"), "holds negative label -3"),
    (np.array([0, 1, 0.5], ">f4"), "non-integer labels"),
    (np.array([0, 1], ">i4"), "has 2 labels for 3 images"),
])
def test_bad_idx_labels_are_refused_before_the_class_count_is_used(tmp_path, labels, words):
    _idx(tmp_path / "train-images-idx3-ubyte", 0x08, np.zeros((3, 4, 4)))
    _idx(tmp_path / "train-labels-idx1-ubyte", 0x0C if labels.dtype.kind == "i" else 0x0D, labels)
    with pytest.raises(DatasetFileError, match="train-labels-idx1-ubyte") as e:
        load_idx_folder(tmp_path)
    assert words in str(e.value)


@pytest.mark.parametrize("mapping, words", [
    ("0 65\n1 1114112\n2 67\n", "line 2: 1114112 is not a Unicode code point"),
    ("0 65\n1 65\n2 67\n", "the name 'A' is given to two classes"),
])
def test_bad_emnist_mapping_is_refused(idx_folder, mapping, words):
    (idx_folder / "emnist-mapping.txt").write_text(mapping)
    with pytest.raises(DatasetFileError, match="emnist-mapping.txt") as e:
        load_idx_folder(idx_folder)
    assert words in str(e.value)


def test_an_idx_image_file_with_wrong_dimensions_is_refused(idx_folder):
    _idx(idx_folder / "t10k-images-idx3-ubyte", 0x08, np.zeros((30, 100)))
    with pytest.raises(DatasetFileError, match=r"t10k-images-idx3-ubyte: expected 3 dimensions \(\(N, rows, cols\)\)"):
        load_idx_folder(idx_folder)


def test_npz_with_objects_is_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1))
    with pytest.raises(DatasetFileError, match="evil.npz: x_train holds Python objects"):
        load_npz(path)


def test_not_an_npz(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match="junk.npz"):
        load_npz(path)


def test_offline_keras_download_failure_is_explained(monkeypatch):
    from alcore._tf import keras

    def offline():
        raise Exception("URL fetch failure on https://...: None -- [Errno -3] Temporary failure")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(DatasetUnavailableError, match="could not load cifar10.*offline"):
        load_dataset(ExperimentConfig(dataset="cifar10"))


def test_mnist_from_the_shared_idx_folder():
    folder = shared_mnist()
    for data_dir in (folder, folder.parent):
        ds = load_dataset(ExperimentConfig(dataset="mnist", data_dir=str(data_dir), pool_size=2000))
        assert ds.x_pool.shape == (2000, 28, 28, 1) and len(ds.y_test) == 10_000
        assert np.bincount(ds.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_fashion_mnist_through_the_real_keras_loader(tmp_path):
    """keras.datasets.fashion_mnist.load_data() finds the verified files in $KERAS_HOME."""
    src = shared_fashion()
    target = tmp_path / "datasets" / "fashion-mnist"
    target.mkdir(parents=True)
    for f in src.glob("*.gz"):
        shutil.copy(f, target / f.name)
    code = ("from alcore.data.datasets import load_dataset; from alcore import ExperimentConfig; "
            "ds = load_dataset(ExperimentConfig(dataset='fashion_mnist', pool_size=100)); "
            "print(ds.source, ds.class_names[9], len(ds.y_test))")
    env = dict(os.environ, KERAS_HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    env.pop("ALCORE_DATA_DIR", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "keras.datasets.fashion_mnist Ankle boot 10000" in out.stdout


def test_test_split_shape_must_match(tmp_path):
    raw = RawData(np.zeros((10, 4, 4)), np.arange(10) % 2, np.zeros((3, 5, 5)), np.zeros(3), None, "t")
    with pytest.raises(ValueError, match="x_test images are"):
        prepare(raw, ExperimentConfig())


# ------------------------------------------------------------------ the shared dataset cache

def test_the_seed_is_in_the_data_key_only_where_it_draws_something():
    base = ExperimentConfig(dataset="mnist", data_dir="/d")
    assert base.data_key() == base.replace(seed=7).data_key()  # MNIST's own split: nothing drawn
    for drawn in (dict(pool_size=1000), dict(test_size=500), dict(dataset="digits"), dict(dataset="npz", data_file="f.npz")):
        cfg = base.replace(**drawn)
        assert cfg.data_key() != cfg.replace(seed=7).data_key(), drawn


def test_seeds_that_share_a_data_key_prepare_the_same_arrays():
    folder = shared_mnist()
    a, b = (load_dataset(ExperimentConfig(dataset="mnist", data_dir=str(folder), seed=s)) for s in (0, 3))
    for name in ("x_pool", "y_pool", "x_test", "y_test", "pool_origin"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def _digits(seed: int) -> ExperimentConfig:
    return ExperimentConfig(dataset="digits", pool_size=600, test_size=300, seed=seed)


def test_the_dataset_cache_keeps_to_its_byte_budget_and_drops_the_oldest_first():
    one = data.dataset_nbytes(load_dataset(_digits(0)))
    cache = data.DatasetCache(max_bytes=2 * one + one // 2)  # room for two
    for seed in range(4):
        ds = cache.get(_digits(seed))
        assert ds.x_pool.shape[0] == 600 and not ds.x_pool.flags.writeable
        del ds
    assert cache.loads == 4
    assert cache.keys() == [_digits(2).data_key(), _digits(3).data_key()]
    assert cache.nbytes <= cache.max_bytes
    cache.get(_digits(2))  # a hit makes seed 2 the newest: seed 3 goes first next
    cache.get(_digits(5))
    assert cache.keys() == [_digits(2).data_key(), _digits(5).data_key()] and cache.loads == 5
    # the newest is kept even when it alone is over the budget
    tiny = data.DatasetCache(max_bytes=0)
    tiny.get(_digits(0))
    assert len(tiny.keys()) == 1


def test_a_dataset_still_in_use_is_handed_out_again_not_loaded_twice():
    import gc

    cache = data.DatasetCache(max_bytes=0)  # keeps only the newest
    held = cache.get(_digits(0))  # a run holds it
    cache.get(_digits(1))  # ...and the cache drops it
    assert cache.keys() == [_digits(1).data_key()]
    assert cache.get(_digits(0)) is held and cache.loads == 2
    del held
    cache.get(_digits(1))
    gc.collect()
    cache.get(_digits(0))  # nobody held it any more: loaded again
    assert cache.loads == 4


def test_sessions_asking_at_once_load_a_dataset_once():
    import threading
    import time

    calls = []

    def slow_loader(cfg):
        calls.append(cfg.seed)
        time.sleep(0.3)
        return load_dataset(cfg)

    cache = data.DatasetCache(max_bytes=1 << 30, loader=slow_loader)
    got = [None] * 6
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, cache.get(_digits(0)))) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [0] and all(g is got[0] for g in got)


def test_a_failed_load_is_not_cached_and_says_why(tmp_path):
    cfg = ExperimentConfig(dataset="npz", data_file=str(tmp_path / "later.npz"))
    cache = data.DatasetCache(max_bytes=1 << 30)
    with pytest.raises(DatasetUnavailableError, match="later.npz"):
        cache.get(cfg)
    assert cache.keys() == [] and cache.loads == 0
    (tmp_path / "later.npz").write_bytes(_npz(tmp_path, x_train=np.zeros((8, 4, 4)), y_train=np.arange(8) % 2,
                                              x_test=np.zeros((4, 4, 4)), y_test=np.arange(4) % 2).read_bytes())
    assert len(cache.get(cfg).y_pool) == 8
