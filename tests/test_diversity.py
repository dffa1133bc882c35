"""Diversity strategies (kmeans, coreset, badge, margin_cluster): real computations,
checked against brute force, on synthetic blobs, on bad input, and through the loop."""
import tracemalloc

import numpy as np
import pytest

from alcore import Experiment, ExperimentConfig
from alcore.strategies import diversity as D
from alcore.strategies.base import STRATEGIES, Need, StrategyInput, margin_scores

NAMES = sorted(name for name, cls in STRATEGIES.items() if cls.family == "diversity")


# ------------------------------------------------------------------------ helpers

def blobs(k, per, dim, rng, sep=50.0, spread=0.1):
    """k well-separated Gaussian blobs; returns points (k*per, dim) and blob labels."""
    centres = sep * rng.standard_normal((k, dim))
    labels = np.repeat(np.arange(k), per)
    x = centres[labels] + spread * rng.standard_normal((k * per, dim))
    order = rng.permutation(len(x))
    return x[order], labels[order]


def random_probs(n, classes, rng, sharp=1.0):
    logits = sharp * rng.standard_normal((n, classes))
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def brute_kcenter(x, labeled, k, priority):
    """Greedy k-center from the full distance matrices (small inputs only)."""
    full = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    if len(labeled):
        delta = ((x[:, None, :] - labeled[None, :, :]) ** 2).sum(-1).min(1)
    else:
        delta = np.full(len(x), np.inf)
    picked = []
    for _ in range(k):
        free = np.array([i for i in range(len(x)) if i not in picked])
        best = delta[free].max()
        ties = free[delta[free] == best]
        j = int(ties[np.argmin(priority[ties])])
        picked.append(j)
        delta = np.minimum(delta, full[j])
    return np.array(picked)


# ------------------------------------------------------------------------ coreset

@pytest.mark.parametrize("seed", range(5))
def test_coreset_equals_brute_force_kcenter(seed):
    rng = np.random.default_rng(seed)
    x, lab = rng.standard_normal((200, 6)), rng.standard_normal((7, 6))
    priority = rng.random(200)
    picks, initial = D.kcenter_greedy(x, lab, 25, priority)
    assert list(picks) == list(brute_kcenter(x, lab, 25, priority))
    np.testing.assert_allclose(initial, ((x[:, None] - lab[None]) ** 2).sum(-1).min(1), rtol=1e-10)
    # float32 features (what Keras returns) give the same picks here
    assert list(D.kcenter_greedy(x.astype(np.float32), lab.astype(np.float32), 25, priority)[0]) == list(picks)


@pytest.mark.parametrize("seed", range(5))
def test_coreset_equals_brute_force_with_ties(seed):
    # Small integer coordinates: many exactly equal distances, and duplicate points.
    rng = np.random.default_rng(100 + seed)
    x = rng.integers(0, 4, (200, 3)).astype(np.float64)
    lab = rng.integers(0, 4, (3, 3)).astype(np.float64)
    delta0 = ((x[:, None] - lab[None]) ** 2).sum(-1).min(1)
    assert (delta0 == delta0.max()).sum() > 1  # the first pick is a tie
    priority = rng.random(200)
    # 70 picks: more than the 64 distinct points, so zero-distance duplicates are picked too
    picks, _ = D.kcenter_greedy(x, lab, 70, priority)
    assert list(picks) == list(brute_kcenter(x, lab, 70, priority))
    assert len(set(picks.tolist())) == 70
    # the strategy breaks the same ties with a priority drawn from its rng
    sel = D.CoresetStrategy().select(StrategyInput(embeddings=x, labeled_embeddings=lab), 70,
                                     np.random.default_rng(seed))
    assert list(sel.indices) == list(brute_kcenter(x, lab, 70, np.random.default_rng(seed).random(200)))


@pytest.mark.parametrize("seed", range(3))
def test_coreset_matches_skactiveml_k_greedy_center(seed):
    core_set = pytest.importorskip("skactiveml.pool._core_set", exc_type=ImportError,
                                   reason="scikit-activeml (requirements-dev.txt) is the peer")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((300, 8))  # continuous: no ties, so tie-breaking cannot matter
    y = np.full(300, np.nan)
    y[:12] = 0  # the first 12 rows are labeled
    peer, _ = core_set.k_greedy_center(x, y, batch_size=30, random_state=0)
    ours, _ = D.kcenter_greedy(x[12:], x[:12], 30)
    assert list(np.asarray(peer) - 12) == list(ours)


def test_coreset_without_labeled_points_starts_at_random():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((100, 4))
    picks = [D.CoresetStrategy().select(StrategyInput(embeddings=x, labeled_embeddings=np.zeros((0, 0))),
                                        5, np.random.default_rng(s)).indices for s in range(4)]
    assert len({int(p[0]) for p in picks}) > 1
    for s, p in enumerate(picks):
        assert list(p) == list(brute_kcenter(x, np.zeros((0, 4)), 5, np.random.default_rng(s).random(100)))


def test_coreset_scores_are_distances_to_the_labeled_set():
    rng = np.random.default_rng(0)
    x, lab = rng.standard_normal((50, 3)), rng.standard_normal((4, 3))
    sel = D.CoresetStrategy().select(StrategyInput(embeddings=x, labeled_embeddings=lab), 5, rng)
    np.testing.assert_allclose(sel.scores, np.sqrt(((x[:, None] - lab[None]) ** 2).sum(-1).min(1)))
    assert sel.indices[0] == np.argmax(sel.scores)


def test_coreset_large_pool_stays_small_in_memory():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 64)).astype(np.float32)
    lab = rng.standard_normal((100, 64)).astype(np.float32)
    tracemalloc.start()
    try:
        sel = D.CoresetStrategy().select(StrategyInput(embeddings=x, labeled_embeddings=lab), 50, rng)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(set(sel.indices.tolist())) == 50
    assert sel.indices[0] == np.argmax(sel.scores)
    # a 20 000 x 20 000 float32 matrix would be 1.6 GB; the distance blocks are 32 MiB at most
    assert peak < 60e6, f"peak traced memory {peak / 1e6:.0f} MB"


# -------------------------------------------------------------------------- BADGE

def test_badge_factorised_distances_equal_explicit_gradient_embeddings():
    rng = np.random.default_rng(0)
    probs, h = random_probs(30, 4, rng), rng.standard_normal((30, 5))
    q, hh = D.gradient_embedding_factors(probs, h)
    onehot = np.eye(4)[probs.argmax(1)]
    g = ((probs - onehot)[:, :, None] * h[:, None, :]).reshape(30, 20)  # explicit, test only
    np.testing.assert_allclose(D.gradient_sq_norms(q, hh), (g ** 2).sum(1), rtol=1e-12)
    for j in (0, 7, 29):
        np.testing.assert_allclose(D.gradient_sq_distances(q, hh, j), ((g - g[j]) ** 2).sum(1),
                                   rtol=1e-9, atol=1e-12)


def test_badge_first_pick_is_largest_gradient_and_picks_are_distinct_and_seeded():
    rng = np.random.default_rng(1)
    probs, h = random_probs(500, 10, rng), rng.standard_normal((500, 16)).astype(np.float32)
    inputs = StrategyInput(probs=probs, embeddings=h)
    sel = D.BadgeStrategy().select(inputs, 40, np.random.default_rng(5))
    q = probs - np.eye(10)[probs.argmax(1)]
    norms = np.linalg.norm(q, axis=1) * np.linalg.norm(h.astype(np.float64), axis=1)
    np.testing.assert_allclose(sel.scores, norms, rtol=1e-6)
    assert sel.indices[0] == np.argmax(norms)
    assert len(set(sel.indices.tolist())) == 40
    again = D.BadgeStrategy().select(inputs, 40, np.random.default_rng(5))
    assert list(again.indices) == list(sel.indices)
    assert any(list(D.BadgeStrategy().select(inputs, 40, np.random.default_rng(s)).indices) != list(sel.indices)
               for s in range(6, 9))


@pytest.mark.parametrize("seed", range(3))
def test_badge_spreads_its_picks_over_separated_clusters(seed):
    rng = np.random.default_rng(seed)
    h, blob = blobs(6, 40, 16, rng)
    probs = random_probs(6, 5, rng)[blob]  # one predictive distribution per blob
    sel = D.BadgeStrategy().select(StrategyInput(probs=probs, embeddings=h), 6, rng)
    assert sorted(blob[sel.indices]) == list(range(6))


def test_badge_with_all_gradients_zero_picks_uniformly():
    probs = np.tile([1.0, 0.0, 0.0], (30, 1))  # certain everywhere: q = 0
    h = np.random.default_rng(0).standard_normal((30, 4))
    runs = [D.BadgeStrategy().select(StrategyInput(probs=probs, embeddings=h), 5, np.random.default_rng(s))
            for s in range(5)]
    for sel in runs:
        assert len(set(sel.indices.tolist())) == 5 and np.all(sel.scores == 0)
    assert len({tuple(s.indices) for s in runs}) > 1


# ------------------------------------------------------------ kmeans, margin_cluster

@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("threshold", [D.MINIBATCH_THRESHOLD, 50])  # KMeans, MiniBatchKMeans
def test_kmeans_gives_every_blob_exactly_one_pick(seed, threshold):
    rng = np.random.default_rng(seed)
    x, blob = blobs(5, 40, 8, rng)
    sel = D.KMeansStrategy(minibatch_threshold=threshold).select(StrategyInput(embeddings=x), 5, rng)
    assert sorted(blob[sel.indices]) == list(range(5))
    assert np.all(sel.scores <= 0) and len(sel.scores) == len(x)


def test_kmeans_is_seeded():
    x = np.random.default_rng(0).standard_normal((300, 5))
    pick = lambda s: list(D.KMeansStrategy().select(StrategyInput(embeddings=x), 8,
                                                     np.random.default_rng(s)).indices)
    assert pick(1) == pick(1)


def test_nearest_distinct_resolves_shared_nearest_points():
    x = np.array([[0.0], [1.0], [10.0]])
    # both centroids nearest to row 0; the farther one (0.4) takes its next nearest (row 1)
    picks, nearest_sq = D.nearest_distinct(x, np.array([[0.1], [0.4]]))
    assert list(picks) == [0, 1]
    np.testing.assert_allclose(nearest_sq, [0.01, 0.36, 9.6 ** 2])
    # duplicate centroids (fewer distinct points than clusters) still give distinct picks
    picks, _ = D.nearest_distinct(np.array([[0.0], [0.0], [5.0]]), np.array([[0.0], [0.0], [0.0]]))
    assert sorted(picks) == [0, 1, 2]


@pytest.mark.parametrize("seed", range(3))
def test_margin_cluster_picks_one_per_blob_among_the_uncertain(seed):
    rng = np.random.default_rng(seed)
    x, blob = blobs(4, 30, 8, rng)
    probs = np.tile([0.97, 0.02, 0.01], (len(x), 1))
    uncertain = np.concatenate([np.flatnonzero(blob == b)[:3] for b in range(4)])  # 3 per blob
    top = 0.45 + 0.04 * rng.random(len(uncertain))
    probs[uncertain] = np.column_stack([top, 0.98 - top, np.full(len(top), 0.02)])
    sel = D.MarginClusterStrategy(factor=3).select(StrategyInput(probs=probs, embeddings=x), 4, rng)
    assert set(sel.indices.tolist()) <= set(uncertain.tolist())
    assert sorted(blob[sel.indices]) == [0, 1, 2, 3]
    np.testing.assert_allclose(sel.scores, margin_scores(probs))
    assert list(sel.scores[sel.indices]) == sorted(sel.scores[sel.indices], reverse=True)


def test_margin_cluster_only_picks_among_the_top_factor_times_batch():
    rng = np.random.default_rng(7)
    probs, x = random_probs(400, 6, rng), rng.standard_normal((400, 10))
    for factor in (1, 2, 5):
        sel = D.MarginClusterStrategy(factor).select(StrategyInput(probs=probs, embeddings=x), 8, rng)
        top = np.argsort(-margin_scores(probs))[:factor * 8]
        assert set(sel.indices.tolist()) <= set(top.tolist()) and len(set(sel.indices.tolist())) == 8
    # fewer candidates than factor * batch: all are eligible
    sel = D.MarginClusterStrategy(10).select(StrategyInput(probs=probs[:15], embeddings=x[:15]), 4, rng)
    assert len(set(sel.indices.tolist())) == 4


def test_classes_read_the_config_and_registry_is_complete():
    assert D.MarginClusterStrategy.from_config().factor == 10
    assert D.MarginClusterStrategy.from_config(ExperimentConfig(margin_cluster_factor=3)).factor == 3
    assert D.MarginClusterStrategy.config_fields == ("margin_cluster_factor",)
    assert NAMES == sorted(["kmeans", "coreset", "badge", "margin_cluster"])
    for name in NAMES:
        s = STRATEGIES[name].from_config(None)
        assert s.name == name and Need.EMBEDDINGS in s.needs
        assert s.description.endswith(".") and "\n" not in s.description
    with pytest.raises(ValueError, match="margin_cluster_factor"):
        D.MarginClusterStrategy(0)


# -------------------------------------------------------------------- bad input

def _inputs(n=20, d=4, **changes):
    rng = np.random.default_rng(0)
    base = dict(probs=random_probs(n, 3, rng), embeddings=rng.standard_normal((n, d)),
                labeled_embeddings=rng.standard_normal((5, d)))
    base.update(changes)
    return StrategyInput(**base)




@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("inputs, message", [
    (_inputs(embeddings=np.zeros((19, 4))), "19 rows but there are 20 candidates"),
    (_inputs(embeddings=np.where(np.eye(20, 4) > 0, np.nan, 1.0)), "NaN or infinite"),
    (_inputs(embeddings=np.zeros(20)), "2-D array"),
    (_inputs(embeddings=None), "embeddings are missing"),
], ids=["rows", "nan", "1d", "missing"])
def test_bad_embeddings_raise_clear_errors(name, inputs, message):
    with pytest.raises(ValueError, match=message):
        STRATEGIES[name].from_config().select(inputs, 3, np.random.default_rng(0))


@pytest.mark.parametrize("name", NAMES)
def test_batch_larger_than_candidates_raises(name):
    with pytest.raises(ValueError, match="batch_size 21 is larger than the 20"):
        STRATEGIES[name].from_config().select(_inputs(), 21, np.random.default_rng(0))


def test_bad_labeled_embeddings_raise_clear_errors():
    with pytest.raises(ValueError, match="labeled_embeddings have 3 features"):
        D.CoresetStrategy().select(_inputs(labeled_embeddings=np.zeros((5, 3))), 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="labeled_embeddings hold NaN"):
        D.CoresetStrategy().select(_inputs(labeled_embeddings=np.full((5, 4), np.inf)), 3,
                                   np.random.default_rng(0))
    with pytest.raises(ValueError, match="needs labeled_embeddings"):
        D.CoresetStrategy().select(_inputs(labeled_embeddings=None), 3, np.random.default_rng(0))


# --------------------------------------------------------------- through the loop

@pytest.mark.parametrize("model, dim", [("softmax", 64), ("mlp", 32)])
@pytest.mark.parametrize("name", NAMES)
def test_runs_through_the_real_loop_on_digits(name, model, dim, digits, cache, monkeypatch):
    seen = []

    class Recording(STRATEGIES[name]):
        def select(self, inputs, batch_size, rng):  # records what the loop passed, then the real pick
            seen.append((inputs.embeddings.shape, None if inputs.labeled_embeddings is None
                         else inputs.labeled_embeddings.shape))
            return super().select(inputs, batch_size, rng)

    monkeypatch.setitem(STRATEGIES, name, Recording)
    cfg = ExperimentConfig(strategy=name, rounds=2, max_epochs=5, model=model, hidden_units=(32,))
    exp = Experiment(cfg, dataset=digits, cache=cache)
    rounds = list(exp)
    assert len(rounds) == 3 and exp.done
    assert [len(r.selected) for r in rounds] == [10, 10, 0]
    picked = np.concatenate([exp.initial_indices] + [r.selected for r in rounds])
    assert len(np.unique(picked)) == len(picked) == 30
    assert all(np.isfinite(r.selected_scores).all() for r in rounds)
    assert [s[0] for s in seen] == [(len(digits.y_pool) - 10, dim), (len(digits.y_pool) - 20, dim)]
    if name == "coreset":
        assert [s[1] for s in seen] == [(10, dim), (20, dim)]
