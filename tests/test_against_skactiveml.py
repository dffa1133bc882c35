"""alcore's uncertainty scores against a maintained peer, scikit-activeml.

scikit-activeml's ``skactiveml.pool.uncertainty_scores(probas, method=...)`` is the
pure utility function behind its ``UncertaintySampling`` (which queries the highest
utility). Its utilities are oriented like alcore's scores, higher = more
informative, and (1.0.1, without a cost matrix) are the same formulas:

- "least_confident":  1 - max_c p       == alcore least_confidence
- "margin_sampling":  1 - |p1 - p2|     == alcore margin, 1 - (p1 - p2)
- "entropy":          -sum p log p      == alcore entropy (natural log, 0 log 0 = 0)

so the test requires equal utilities (a monotone relation that is the identity),
equal full rankings, and equal top-k picks on Dirichlet probability matrices whose
scores have no ties (checked), so tie-breaking cannot matter.
"""
import numpy as np
import pytest

from alcore.strategies.base import StrategyInput, make_strategy

pool = pytest.importorskip(
    "skactiveml.pool", exc_type=ImportError,
    reason="scikit-activeml is not importable (pip install -r requirements-dev.txt) "
           "- the peer comparison needs it")

METHODS = {"least_confidence": "least_confident", "margin": "margin_sampling", "entropy": "entropy"}

# (candidates, classes, Dirichlet concentration): peaked, uniform-ish and flat predictions
MATRICES = [(300, 10, 0.2), (300, 10, 1.0), (200, 3, 5.0), (120, 2, 0.5), (500, 100, 0.05)]


def dirichlet_probs(seed, n, C, alpha, dtype=np.float64):
    return np.random.default_rng(seed).dirichlet(np.full(C, alpha), size=n).astype(dtype)


def assert_no_ties(scores, what):
    gaps = np.diff(np.sort(scores))
    assert gaps.min() > 1e-9, f"{what}: near-tied scores would make the comparison depend on tie-breaking"


@pytest.mark.parametrize("seed, shape", list(enumerate(MATRICES)))
@pytest.mark.parametrize("name", list(METHODS))
def test_utilities_rankings_and_picks_match_skactiveml(name, seed, shape):
    n, C, alpha = shape
    probs = dirichlet_probs(seed, n, C, alpha)
    peer = np.asarray(pool.uncertainty_scores(probs, method=METHODS[name]), dtype=np.float64)
    assert_no_ties(peer, f"{name} seed {seed}")

    strategy = make_strategy(name)
    ours = strategy.select(StrategyInput(probs=probs), n, np.random.default_rng(seed)).scores

    # (1) same utilities (identity is the monotone relation) and the same full ranking
    np.testing.assert_allclose(ours, peer, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.argsort(-ours, kind="stable"), np.argsort(-peer, kind="stable"))
    # (2) the same top-k picks, in the same order, for several batch sizes
    for k in (1, 10, 50):
        picks = strategy.select(StrategyInput(probs=probs), k, np.random.default_rng(seed + 100)).indices
        expected = np.argsort(-peer, kind="stable")[:k]
        np.testing.assert_array_equal(picks, expected, err_msg=f"{name}, batch {k}")


@pytest.mark.parametrize("name", list(METHODS))
def test_float32_probabilities_agree_too(name):
    """Keras hands over float32 softmax outputs; both libraries must rank them alike."""
    probs = dirichlet_probs(7, 400, 10, 0.5, np.float32)
    probs /= probs.sum(axis=1, keepdims=True)
    peer = np.asarray(pool.uncertainty_scores(probs, method=METHODS[name]), dtype=np.float64)
    assert_no_ties(peer, name)
    sel = make_strategy(name).select(StrategyInput(probs=probs), 50, np.random.default_rng(0))
    np.testing.assert_allclose(sel.scores, peer, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(sel.indices, np.argsort(-peer, kind="stable")[:50])


def test_one_hot_rows_score_alike():
    """Zero probabilities: both libraries use 0 log 0 = 0 and give 0 for a sure prediction."""
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.2, 0.3, 0.5]])
    for name, method in METHODS.items():
        ours = make_strategy(name).select(StrategyInput(probs=probs), 1, np.random.default_rng(0)).scores
        np.testing.assert_allclose(ours, pool.uncertainty_scores(probs, method=method), atol=1e-12)
