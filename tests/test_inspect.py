import numpy as np
import pytest

from alcore.engine.inspect import confidence_extremes, pool_centroids, pool_summary


def test_confidence_extremes_order_and_fields():
    probs = np.array([[0.6, 0.4], [0.99, 0.01], [0.5, 0.5], [0.2, 0.8]])
    idx = np.array([10, 11, 12, 13])
    most, least = confidence_extremes(probs, idx, np.array([0, 0, 1, 1]), k=2)
    assert [m.index for m in most] == [11, 13]
    assert [m.index for m in least] == [12, 10]
    assert most[1].predicted == 1 and most[1].confidence == pytest.approx(0.8) and most[1].label == 1


def test_pool_summary():
    s = pool_summary(np.array([[0.9, 0.1], [0.4, 0.6], [0.45, 0.55], [1.0, 0.0]]))
    assert s.n_scored == 4 and s.mean_confidence == pytest.approx(0.7625)
    assert s.low_confidence_fraction == 0.0 and s.mean_entropy > 0
    assert pool_summary(np.zeros((0, 3))) is None


def test_centroids_of_real_digits(digits):
    c = pool_centroids(digits.x_pool, k=10, seed=0, labels=digits.y_pool)
    assert c.images.shape == (10, 8, 8, 1)
    assert c.sizes.sum() == len(digits.y_pool) and list(c.sizes) == sorted(c.sizes, reverse=True)
    # digits cluster well: most clusters are dominated by one digit, and most digits get a cluster
    assert np.median(c.purity) > 0.7 and len(set(c.majority)) >= 7
    big = pool_centroids(np.repeat(digits.x_pool, 8, axis=0), k=5, seed=0, max_fit=5000)
    assert big.sizes.sum() == 8 * len(digits.y_pool)
    with pytest.raises(ValueError, match="k must be between"):
        pool_centroids(digits.x_pool[:3], k=5)


def test_numpy_kmeans_finds_what_scikit_learn_finds(digits):
    """The Dataset page clusters small pools in numpy (importing scikit-learn took longer than the
    clustering): clusters as good as scikit-learn's KMeans, the same for the same seed."""
    from sklearn.cluster import KMeans

    from alcore.engine.inspect import kmeans

    flat = digits.x_pool.reshape(len(digits.x_pool), -1)
    for k in (2, 10, 30):
        centres, assign = kmeans(flat, k, seed=0)
        inertia = float(((flat - centres[assign]) ** 2).sum())
        theirs = KMeans(n_clusters=k, random_state=0, n_init=3).fit(flat).inertia_
        assert inertia < 1.02 * theirs, (k, inertia, theirs)  # measured: within 1% either way
        assert (assign == ((flat[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)).all()
    again = kmeans(flat, 10, seed=0)
    assert np.array_equal(again[1], kmeans(flat, 10, seed=0)[1])
    blobs = np.repeat(np.eye(4) * 10, 25, axis=0) + np.random.default_rng(1).normal(0, 0.1, (100, 4))
    _, assign = kmeans(blobs, 4, seed=3)
    assert sorted(np.bincount(assign)) == [25] * 4 and all(len(set(assign[i:i + 25])) == 1 for i in range(0, 100, 25))
    same = np.zeros((6, 2))  # fewer distinct images than clusters: no empty centre, nothing undefined
    centres, assign = kmeans(same, 3)
    assert np.isfinite(centres).all() and len(centres) == 3


def test_pool_centroids_between_the_numpy_and_the_minibatch_sizes(digits):
    from alcore.engine.inspect import NUMPY_KMEANS_MAX

    x = np.repeat(digits.x_pool, 3, axis=0)
    assert NUMPY_KMEANS_MAX < len(x) <= 10_000  # scikit-learn's KMeans
    c = pool_centroids(x, k=10, seed=0, labels=np.repeat(digits.y_pool, 3))
    assert c.sizes.sum() == len(x) and np.median(c.purity) > 0.7
