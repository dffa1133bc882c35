"""Pool embeddings: the SimCLR encoder, its disk cache, a user's file, a pretrained backbone, and
the softmax / mlp models reading them. Real TensorFlow / Keras throughout, on digits (8x8) and
tiny made-up images; the MNIST measurements are in bench/ssl_embeddings.py."""
import dataclasses
import os
import time

import numpy as np
import pytest

from alcore import Experiment, ExperimentConfig
from alcore.data.datasets import DatasetFileError, DatasetUnavailableError, load_dataset
from alcore.engine import embeddings as emb
from alcore.engine import simclr
from alcore.engine.embeddings import EmbeddingCache, compute_embeddings, read_embedding_file
from alcore.engine.race import Race

SSL = ExperimentConfig(embedding="self_supervised", encoder_steps=12, embedding_dim=16, rounds=2)


@pytest.fixture
def store(tmp_path):
    return EmbeddingCache(tmp_path / "embeddings")


@pytest.fixture(scope="module")
def small(digits):
    """Digits cut to 400 pool and 100 test images: quick to embed."""
    return dataclasses.replace(digits, x_pool=digits.x_pool[:400], y_pool=digits.y_pool[:400],
                               pool_origin=digits.pool_origin[:400], x_test=digits.x_test[:100],
                               y_test=digits.y_test[:100], test_origin=digits.test_origin[:100])


# ----------------------------------------------------------------------------- SimCLR

def test_nt_xent_is_the_formula():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    z = np.concatenate([z1, z2])
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    sim = z @ z.T / 0.5
    want = []
    for k in range(10):
        pos = (k + 5) % 10
        others = [j for j in range(10) if j != k]
        want.append(-sim[k, pos] + np.log(np.exp(sim[k, others]).sum()))
    assert float(simclr.nt_xent(z1, z2, 0.5)) == pytest.approx(np.mean(want), rel=1e-5)
    # two views that agree give a lower loss than two unrelated ones
    assert float(simclr.nt_xent(z1, z1 + 0.01)) < float(simclr.nt_xent(z1, z2))


def test_augmented_views_are_random_seeded_and_in_range():
    from alcore._tf import tf

    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, size=(6, 12, 12, 1)).astype(np.float32)
    seed = tf.constant([3, 4], tf.int32)
    a, b = simclr.augment(x, seed).numpy(), simclr.augment(x, seed).numpy()
    c = simclr.augment(x, seed + [0, 1]).numpy()
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, b)  # same seed, same views
    assert np.abs(a - c).mean() > 0.01 and np.abs(a - x).mean() > 0.01  # another seed, another view
    colour = simclr.augment(np.repeat(x, 3, axis=-1), seed).numpy()
    assert colour.shape == (6, 12, 12, 3)


def test_grayscale_views_are_never_mirrored_and_colour_ones_sometimes():
    """A bar on the left edge: crops, shifts and 15-degree rotations keep it on the left half; a
    mirror would put it on the right. Flips are for colour photos only (module docstring)."""
    from alcore._tf import tf

    x = np.zeros((64, 16, 16, 1), np.float32)
    x[:, :, 1:4] = 1.0

    def right_heavy(views):
        left, right = views[:, :, :8].sum(axis=(1, 2, 3)), views[:, :, 8:].sum(axis=(1, 2, 3))
        return int((right > left).sum())

    seed = tf.constant([0, 9], tf.int32)
    assert right_heavy(simclr.augment(x, seed).numpy()) == 0
    assert 10 < right_heavy(simclr.augment(np.repeat(x, 3, axis=-1), seed).numpy()) < 54


def test_encoder_training_is_deterministic_for_a_seed_and_lowers_the_loss(small):
    x = small.x_pool
    seen = []
    e1, r1 = simclr.train_encoder(x, 16, 40, seed=3, progress=seen.append, report_seconds=0)
    e2, _ = simclr.train_encoder(x, 16, 40, seed=3)
    e3, _ = simclr.train_encoder(x, 16, 40, seed=4)
    f1, f2, f3 = (simclr.embed(e, x) for e in (e1, e2, e3))
    np.testing.assert_allclose(f1, f2, rtol=1e-5, atol=1e-6)
    assert np.abs(f1 - f3).mean() > 1e-3
    assert f1.shape == (400, 16) and r1.steps == 40 and r1.batch == 256
    assert r1.losses[-1] < r1.losses[0]  # the last tenth of the steps below the first
    assert [p.step for p in seen] == list(range(1, 41)) and seen[-1].fraction == 1.0


def test_trained_embeddings_separate_classes_better_than_pixels_and_an_untrained_encoder(digits):
    """The point of the training: a linear head on 50 labels (5 draws) does better on the trained
    encoder's embeddings than on the same encoder at its initial weights, and than on the pixels
    (measured: about 84%, 64% and 77%)."""
    from alcore.engine.softmax import SoftmaxLearner

    x_pool, x_test = digits.x_pool, digits.x_test  # in [0, 1] (normalization 'unit')
    trained, _ = simclr.train_encoder(x_pool, 64, 300, seed=0)
    untrained, _ = simclr.build_encoder(x_pool.shape[1:], 64, 0)

    def accuracy(fp, ft):
        out = []
        for draw in range(5):
            labels = np.random.default_rng(draw).permutation(len(fp))[:50]
            m = SoftmaxLearner(fp.shape[1], 10, 1.0)
            m.fit(fp[labels], digits.y_pool[labels])
            out.append(float((m.predict_proba(ft).argmax(1) == digits.y_test).mean()))
        return np.mean(out)

    def embedded(enc):
        return accuracy(*emb.standardized(simclr.embed(enc, x_pool), simclr.embed(enc, x_test)))

    a_trained, a_untrained = embedded(trained), embedded(untrained)
    a_pixels = accuracy(x_pool.reshape(len(x_pool), -1), x_test.reshape(len(x_test), -1))
    assert a_trained > a_untrained + 0.1 and a_trained > a_pixels + 0.02, (a_trained, a_untrained, a_pixels)


# ------------------------------------------------------------------------------ cache

def test_a_second_call_reads_the_cache_without_training(small, store, monkeypatch):
    seen = []
    t0 = time.perf_counter()
    first, report = compute_embeddings(small, SSL, cache=store, progress=seen.append)
    first_s = time.perf_counter() - t0
    assert report.source == "computed" and store.writes == 1 and store.reads == 0
    assert {p.stage for p in seen} == {"training the encoder", "embedding the images"}
    assert first.features_pool.shape == (400, 16) and first.features_test.shape == (100, 16)
    np.testing.assert_allclose(first.features_pool.mean(axis=0), 0, atol=1e-4)  # standardized

    def no_training(*args, **kwargs):
        raise AssertionError("the encoder was trained again")

    monkeypatch.setattr(simclr, "train_encoder", no_training)
    fresh = dataclasses.replace(small)  # another prepared copy of the same images (another session)
    t0 = time.perf_counter()
    again, report2 = compute_embeddings(fresh, SSL, cache=EmbeddingCache(store.folder))
    second_s = time.perf_counter() - t0
    assert report2.source == "cache" and "read from the cache" in report2.text()
    assert report2.compute_seconds == pytest.approx(report.seconds, rel=1e-6)
    np.testing.assert_array_equal(again.features_pool, first.features_pool)
    assert second_s < first_s / 5, (first_s, second_s)
    assert not list(store.folder.glob("*.tmp"))  # written atomically: no leftovers


@pytest.mark.parametrize("change", [dict(embedding_dim=8), dict(encoder_steps=13), dict(encoder_seed=1)])
def test_a_changed_setting_trains_again(small, store, change):
    compute_embeddings(small, SSL, cache=store)
    _, report = compute_embeddings(small, SSL.replace(**change), cache=store)
    assert report.source == "computed" and store.writes == 2


def test_changed_data_trains_again_and_the_seed_or_normalization_do_not(small, store):
    compute_embeddings(small, SSL, cache=store)
    _, same = compute_embeddings(small, SSL.replace(seed=5, normalization="standardize"), cache=store)
    assert same.source == "cache"
    x = np.array(small.x_pool)
    x[0, 0, 0, 0] += 1.0
    x.setflags(write=False)
    _, other = compute_embeddings(dataclasses.replace(small, x_pool=x), SSL, cache=store)
    assert other.source == "computed" and store.writes == 2


def test_the_cache_stays_within_its_size_and_drops_the_least_recently_used(small, tmp_path):
    store = EmbeddingCache(tmp_path, max_bytes=0)
    compute_embeddings(small, SSL, cache=store)
    compute_embeddings(small, SSL.replace(encoder_seed=1), cache=store)
    assert len(list(tmp_path.glob("*.npz"))) == 1  # the newest kept, however large
    store.max_bytes = 10**9
    compute_embeddings(small, SSL.replace(encoder_seed=2), cache=store)
    older, newer = sorted(tmp_path.glob("*.npz"), key=os.path.getmtime)
    store.max_bytes = 2 * newer.stat().st_size + 1  # room for two
    assert store.get(older.stem, 400, 100) is not None  # read: now the most recently used
    compute_embeddings(small, SSL.replace(encoder_seed=3), cache=store)
    left = set(tmp_path.glob("*.npz"))
    assert older in left and newer not in left and len(left) == 2


def test_a_damaged_cache_file_is_computed_again(small, store):
    _, report = compute_embeddings(small, SSL, cache=store)
    with open(report.path, "wb") as f:
        f.write(b"not an npz")
    _, again = compute_embeddings(small, SSL, cache=store)
    assert again.source == "computed"


def test_the_cache_folder_and_size_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(emb.CACHE_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(emb.CACHE_MB_ENV, "12")
    store = EmbeddingCache()
    assert store.folder == tmp_path / "embeddings" and store.max_bytes == 12 * 2**20
    monkeypatch.setenv(emb.CACHE_MB_ENV, "lots")
    with pytest.raises(ValueError, match="ALCORE_EMBEDDING_CACHE_MB.*whole number.*'lots'"):
        EmbeddingCache()


# ------------------------------------------------------------------- a user's file

def test_file_rows_are_matched_to_the_pool_and_test_images(idx_folder, tmp_path):
    ds = load_dataset(ExperimentConfig(dataset="idx", data_dir=str(idx_folder), pool_size=50, test_size=20, seed=2))
    train = np.stack([np.arange(90), -np.arange(90)], axis=1).astype(np.float32)
    test = np.stack([np.arange(30), np.arange(30) * 2], axis=1).astype(np.float64)
    path = tmp_path / "e.npz"
    np.savez(path, train=train, test=test)
    pool_rows, test_rows = read_embedding_file(str(path), ds)
    np.testing.assert_array_equal(pool_rows[:, 0], ds.pool_origin)
    np.testing.assert_array_equal(test_rows[:, 0], ds.test_origin)
    assert len(set(ds.pool_origin)) == 50 and pool_rows.dtype == np.float32


def test_file_rows_of_held_out_test_images_come_from_train(digits, tmp_path):
    n = len(digits.pool_origin) + len(digits.test_origin)
    path = tmp_path / "e.npz"
    np.savez(path, train=np.arange(n, dtype=np.float32)[:, None].repeat(3, axis=1))
    pool_rows, test_rows = read_embedding_file(str(path), digits)
    np.testing.assert_array_equal(pool_rows[:, 0], digits.pool_origin)
    np.testing.assert_array_equal(test_rows[:, 0], digits.test_origin)
    assert not set(pool_rows[:, 0]) & set(test_rows[:, 0])


@pytest.mark.parametrize("arrays, words", [
    (dict(test=np.zeros((30, 2))), "missing array.*train"),
    (dict(train=np.zeros((80, 2)), test=np.zeros((30, 2))), "'train' has 80 rows.*training split has at least 90"),
    (dict(train=np.zeros((90, 2))), "no array 'test'"),
    (dict(train=np.zeros((90, 2)), test=np.zeros((10, 2))), "'test' has 10 rows.*test split has at least 30"),
    (dict(train=np.zeros((90,)), test=np.zeros((30, 2))), "'train' must have one row.*shape \\(90,\\)"),
    (dict(train=np.zeros((90, 2)), test=np.zeros((30, 3))), "'train' rows have 2 numbers and 'test' rows 3"),
    (dict(train=np.full((90, 2), np.nan), test=np.zeros((30, 2))), "NaN or infinite values in 90 row"),
    (dict(train=np.array(["a"] * 90), test=np.zeros((30, 2))), "train has dtype <U1; it must hold real numbers"),
])
def test_a_file_that_does_not_fit_says_what_is_wrong(idx_folder, tmp_path, arrays, words):
    ds = load_dataset(ExperimentConfig(dataset="idx", data_dir=str(idx_folder)))
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetFileError, match=words):
        read_embedding_file(str(path), ds)


def test_a_test_array_for_a_dataset_without_a_test_split_is_refused(digits, tmp_path):
    path = tmp_path / "e.npz"
    np.savez(path, train=np.zeros((1797, 2)), test=np.zeros((360, 2)))
    with pytest.raises(DatasetFileError, match="no test split.*leave 'test' out"):
        read_embedding_file(str(path), digits)


def test_a_run_on_file_embeddings_trains_softmax_on_them(digits, tmp_path):
    """Embeddings that hold each image's class (plus noise) make a near-perfect model from 10
    labels, which pixels do not: the model reads the file, not the images."""
    rng = np.random.default_rng(0)
    y = np.empty(1797, np.int64)
    y[digits.pool_origin], y[digits.test_origin] = digits.y_pool, digits.y_test
    train = np.eye(10)[y] * 3 + rng.normal(0, 0.3, size=(1797, 10))
    np.savez(tmp_path / "e.npz", train=train)
    cfg = ExperimentConfig(embedding="file", embedding_file=str(tmp_path / "e.npz"), rounds=1,
                           initial_strategy="balanced")
    exp = Experiment(cfg, dataset=digits)
    rounds = list(exp)
    assert exp.trainer.n_features == 10 and exp.embedding_report.source == "file"
    assert rounds[0].test_accuracy > 0.95
    assert exp.dataset.x_pool is digits.x_pool  # the images stay for the galleries


# ------------------------------------------------------------------ pretrained backbones

def test_pretrained_mobilenet_features_are_an_embedding_and_cached(small, store):
    cfg = ExperimentConfig(embedding="pretrained", backbone_weights="random", backbone_size=32, rounds=1)
    ds, report = compute_embeddings(small, cfg, cache=store)
    assert ds.features_pool.shape == (400, 1280) and report.source == "computed"
    assert compute_embeddings(small, cfg, cache=store)[1].source == "cache"


def test_pretrained_weights_offline_say_so(small, store, monkeypatch):
    from alcore._tf import keras

    def offline(**kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: Temporary failure")

    monkeypatch.setattr(keras.applications, "MobileNetV2", offline)
    with pytest.raises(DatasetUnavailableError, match="ImageNet weights.*offline.*backbone_weights='random'"):
        compute_embeddings(small, ExperimentConfig(embedding="pretrained"), cache=store)


def test_dinov2_without_kerashub_says_how_to_get_it(small, store):
    pytest.importorskip("tensorflow")
    try:
        import keras_hub  # noqa: F401
        pytest.skip("keras_hub is installed: test_dinov2_through_kerashub covers it")
    except ImportError:
        pass
    with pytest.raises(DatasetUnavailableError, match="needs KerasHub.*pip install keras-hub.*mobilenet_v2"):
        compute_embeddings(small, ExperimentConfig(embedding="pretrained", backbone="dinov2_small"), cache=store)


def test_dinov2_through_kerashub(small, store, monkeypatch):
    """With KerasHub installed: the ViT-S/14 built with random weights gives 384 features (its
    class token) at the patch multiple nearest backbone_size, and the preset offline says so."""
    keras_hub = pytest.importorskip("keras_hub")
    from alcore.engine.transfer import backbone_input_size

    cfg = ExperimentConfig(embedding="pretrained", backbone="dinov2_small", backbone_weights="random",
                           backbone_size=32, rounds=1)
    assert backbone_input_size(cfg) == 28  # two 14-pixel patches a side
    ds, _ = compute_embeddings(small, cfg, cache=store)
    assert ds.features_pool.shape == (400, 384) and np.isfinite(ds.features_pool).all()

    def offline(*args, **kwargs):
        raise OSError("Could not reach kaggle.com")

    monkeypatch.setattr(keras_hub.models.DINOV2Backbone, "from_preset", offline)
    with pytest.raises(DatasetUnavailableError, match="DINOv2's weights.*offline"):
        compute_embeddings(small, cfg.replace(backbone_weights="imagenet"), cache=store)


# -------------------------------------------------------------- models on embeddings

def test_softmax_reads_the_embedding_and_strategies_get_it(small, store, cache):
    exp = Experiment(SSL.replace(strategy="coreset"), dataset=small, cache=cache, embeddings=store)
    list(exp)
    assert exp.trainer.n_features == 16
    np.testing.assert_array_equal(exp.trainer.embed(exp.dataset.inputs_pool[:5]), exp.dataset.features_pool[:5])


def test_mlp_reads_the_embedding_without_augmenting_it(small, store, cache):
    cfg = SSL.replace(model="mlp", hidden_units=(8,), augment_shift=0.1, max_epochs=2, min_steps=2)
    exp = Experiment(cfg, dataset=small, cache=cache, embeddings=store)
    list(exp)
    assert exp.trainer.spec.input_shape == (16,) and not exp.trainer.spec.augments


def test_a_race_computes_the_embedding_once_for_every_strategy_and_seed(small, store, cache):
    race = Race(SSL.replace(rounds=1), ["margin", "random"], [0, 1], dataset_for=lambda c: small, cache=cache,
                embeddings=store)
    assert store.writes == 1 and store.reads == 0
    assert len({id(e.dataset) for e in race.experiments}) == 1
    while race.step() is not None:
        pass
    assert all(e.done for e in race.experiments)


def test_kmeans_cold_start_clusters_the_embedding(small, store, monkeypatch):
    from alcore.engine import loop

    got = {}

    def spy(x, n, rng, exclude, labels=None):
        got["shape"] = x.shape
        return np.arange(n)

    monkeypatch.setitem(loop.INITIAL_CHOOSERS, "kmeans", spy)
    Experiment(SSL.replace(initial_strategy="kmeans"), dataset=small, embeddings=store)
    assert got["shape"] == (400, 16)


@pytest.mark.parametrize("changes, words", [
    (dict(model="cnn", embedding="self_supervised"), "read by the softmax and mlp models.*'cnn' reads images"),
    (dict(model="transfer", embedding="pretrained"), "'transfer' reads its backbone's features"),
    (dict(embedding="file"), "embedding 'file' needs embedding_file"),
    (dict(embedding="learned"), "embedding"),
    (dict(encoder_steps=0), "encoder_steps"),
    (dict(embedding_dim=4), "embedding_dim"),
])
def test_bad_embedding_settings_name_the_problem(changes, words):
    with pytest.raises(ValueError, match=words):
        ExperimentConfig(**changes)


def test_embedding_file_is_dropped_unless_the_embedding_is_file():
    assert ExperimentConfig(embedding_file="/tmp/e.npz").embedding_file is None
    assert ExperimentConfig(embedding="file", embedding_file="/tmp/e.npz").embedding_file == "/tmp/e.npz"


# ---------------------------------------------------------------------------- limits

def test_the_encoder_cost_counts_what_keras_builds():
    from alcore.serve import resources

    cfg = ExperimentConfig(embedding="self_supervised", embedding_dim=48)
    encoder, head = simclr.build_encoder((28, 28, 1), 48, 0)
    trainable = sum(int(np.prod(v.shape)) for v in encoder.trainable_variables + head.trainable_variables)
    assert resources.encoder_cost(cfg, (28, 28, 1)).parameters == trainable
    assert (resources.ENCODER_WIDTHS, resources.ENCODER_STRIDES, resources.ENCODER_BATCH, resources.PROJECTION_DIM) \
        == (simclr.WIDTHS, simclr.STRIDES, simclr.BATCH, simclr.PROJECTION_DIM)


def test_the_deployment_refuses_an_encoder_over_its_limits():
    from alcore.serve.limits import DeploymentLimits

    limits = DeploymentLimits()
    ok = ExperimentConfig(dataset="mnist", embedding="self_supervised", pool_size=20_000)
    assert limits.check(ok) == []
    long = ok.replace(encoder_steps=limits.max_encoder_steps + 1)
    assert any("train for 2,001 steps (encoder_steps)" in p for p in limits.check(long))
    big = ExperimentConfig(dataset="cifar10", embedding="self_supervised", pool_size=1000, embedding_dim=1024)
    assert any("needs" in p and "to train" in p and "lower embedding_dim" in p
               for p in limits.embedding_problems(big, (96, 96, 3)))
    dino = ExperimentConfig(dataset="cifar10", embedding="pretrained", backbone="dinov2_small", backbone_size=224)
    assert any("dinov2_small backbone needs" in p and "lower backbone_size" in p
               for p in limits.embedding_problems(dino, (32, 32, 3)))
    assert DeploymentLimits.unlimited().embedding_problems(long, (28, 28, 1)) == []


def test_the_model_and_data_costs_count_the_embedding_not_the_pixels():
    from alcore.serve import resources

    cfg = ExperimentConfig(dataset="mnist", embedding="self_supervised", embedding_dim=32)
    assert resources.model_cost(cfg, (28, 28, 1), 10).parameters == 32 * 10 + 10
    shape = resources.KNOWN_SHAPES["mnist"]
    assert resources.dataset_bytes(cfg, shape) - resources.dataset_bytes(cfg.replace(embedding="pixels"), shape) \
        == 70_000 * 32 * 4


# ---------------------------------------------------------------------- on a server

def _npz_bytes(**arrays) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_an_uploaded_file_of_embeddings_is_checked_before_it_is_kept():
    from alcore.serve.limits import DeploymentLimits
    from alcore.serve.uploads import UploadRefused, check_upload

    limits = DeploymentLimits()
    check_upload(_npz_bytes(train=np.zeros((90, 4)), test=np.zeros((30, 4))), "e.npz", ".npz", limits, "embeddings")
    with pytest.raises(UploadRefused, match="e.npz: missing array.*train"):
        check_upload(_npz_bytes(x_train=np.zeros((90, 4))), "e.npz", ".npz", limits, "embeddings")
    with pytest.raises(UploadRefused, match="arrays unpack to 4 MB; this server allows at most 1 MB"):
        check_upload(_npz_bytes(train=np.zeros((2**18, 2))), "e.npz", ".npz", limits.model_copy(update={"max_file_mb": 1}),
                     "embeddings")
    with pytest.raises(UploadRefused, match="embeddings are a .npz file"):
        check_upload(b"PK", "e.zip", ".zip", limits, "embeddings")


def test_a_downloaded_result_names_the_embedding_file_without_its_folder(digits, tmp_path):
    from alcore.results.records import without_server_paths

    n = len(digits.pool_origin) + len(digits.test_origin)
    path = tmp_path / "deep" / "mine.npz"
    path.parent.mkdir()
    np.savez(path, train=np.random.default_rng(0).normal(size=(n, 3)))
    exp = Experiment(ExperimentConfig(embedding="file", embedding_file=str(path), rounds=0), dataset=digits)
    list(exp)
    assert without_server_paths(exp.result()).config.embedding_file == "mine.npz"


def test_pool_clusters_of_an_embedding_are_drawn_as_their_members(digits):
    """k-means on features that hold each image's class: clusters as pure as the classes, each drawn
    as a pool image (its member nearest the centre), not a mean."""
    from alcore.engine.inspect import pool_centroids

    rng = np.random.default_rng(0)
    features = np.eye(10)[digits.y_pool] * 5 + rng.normal(0, 0.1, size=(len(digits.y_pool), 10))
    c = pool_centroids(digits.x_pool, 10, labels=digits.y_pool, features=features)
    assert c.purity.min() > 0.99 and sorted(c.majority) == list(range(10))
    flat = digits.x_pool.reshape(len(digits.x_pool), -1)
    for image, cluster in zip(c.images, range(10)):
        members = np.flatnonzero(c.assignments == cluster)
        assert any(np.array_equal(image.reshape(-1), flat[i]) for i in members)
    pixels = pool_centroids(digits.x_pool, 10, labels=digits.y_pool)
    assert pixels.purity.mean() < c.purity.mean()
