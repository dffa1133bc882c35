import numpy as np
import pytest

from alcore.strategies import base as S
from alcore.strategies.base import StrategyInput, make_strategy

P = np.array([
    [0.90, 0.05, 0.05],   # confident
    [0.40, 0.35, 0.25],   # small margin, high entropy
    [0.50, 0.10, 0.40],   # margin 0.10
    [0.34, 0.33, 0.33],   # nearly uniform
    [0.60, 0.40, 0.00],   # margin 0.2, low entropy
])


def test_scores_match_their_formulas():
    np.testing.assert_allclose(S.least_confidence_scores(P), 1 - P.max(1))
    top = np.sort(P, 1)[:, ::-1]
    np.testing.assert_allclose(S.margin_scores(P), 1 - (top[:, 0] - top[:, 1]))
    np.testing.assert_allclose(S.ratio_scores(P), top[:, 1] / top[:, 0])
    ent = np.array([-sum(p * np.log(p) for p in row if p > 0) for row in P])
    np.testing.assert_allclose(S.entropy_scores(P), ent)


@pytest.mark.parametrize("name, first", [
    ("least_confidence", 3), ("margin", 3), ("ratio", 3), ("entropy", 3)])
def test_most_uncertain_row_is_picked_first(name, first):
    sel = make_strategy(name).select(StrategyInput(probs=P), 2, np.random.default_rng(0))
    assert sel.indices[0] == first
    assert len(sel.scores) == len(P)
    assert sel.scores[sel.indices[0]] == sel.scores.max()


def test_rankings_match_hand_computation():
    # margins 0.01, 0.05, 0.10 for rows 3, 1, 2; entropies 1.099, 1.081, 0.943 for the same rows
    m = make_strategy("margin").select(StrategyInput(probs=P), 3, np.random.default_rng(0)).indices
    e = make_strategy("entropy").select(StrategyInput(probs=P), 3, np.random.default_rng(0)).indices
    assert list(m) == [3, 1, 2]
    assert list(e[:2]) == [3, 1] and e[2] == 2


def test_ties_break_deterministically_from_the_seed():
    probs = np.full((50, 4), 0.25)
    pick = lambda seed: make_strategy("margin").select(StrategyInput(probs=probs), 5,
                                                       np.random.default_rng(seed)).indices
    assert list(pick(1)) == list(pick(1))
    assert any(list(pick(1)) != list(pick(s)) for s in range(2, 6))


def test_random_is_uniform_without_replacement():
    counts = np.zeros(20)
    for seed in range(400):
        idx = make_strategy("random").select(StrategyInput(probs=np.full((20, 2), 0.5)), 5,
                                             np.random.default_rng(seed)).indices
        assert len(set(idx)) == 5
        counts[idx] += 1
    assert counts.min() > 60 and counts.max() < 140  # expected 100 each


@pytest.mark.parametrize("fraction, n_uncertain", [(0.0, 0), (0.3, 3), (0.5, 5), (1.0, 10)])
def test_hybrid_takes_its_share_by_uncertainty(fraction, n_uncertain):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=200)
    hybrid = S.HybridStrategy(fraction, "margin")
    sel = hybrid.select(StrategyInput(probs=probs), 10, np.random.default_rng(1))
    top = S.top_k(S.margin_scores(probs), n_uncertain, np.random.default_rng(1)) if n_uncertain else []
    assert list(sel.indices[:n_uncertain]) == list(top)
    assert len(set(sel.indices)) == 10


@pytest.mark.parametrize("probs, batch, words", [
    (np.array([[0.5, np.nan]]), 1, "NaN"),
    (np.array([0.5, 0.5]), 1, "shape"),
    (np.array([[0.9, 0.9]]), 1, "sum to 1"),
    (np.array([[1.5, -0.5]]), 1, "[0, 1]"),
    (np.full((3, 2), 0.5), 4, "larger than the 3"),
    (np.zeros((0, 2)), 1, "pool is empty"),
    (np.full((3, 2), 0.5), 0, ">= 1"),
])
def test_bad_input_is_refused_with_a_reason(probs, batch, words):
    with pytest.raises(ValueError) as e:
        make_strategy("margin").select(StrategyInput(probs=probs), batch, np.random.default_rng(0))
    assert words in str(e.value)


def test_unknown_strategy_lists_the_choices():
    with pytest.raises(ValueError, match="choose one of random, least_confidence"):
        make_strategy("nope")


def test_every_strategy_has_an_explanation_and_a_docstring():
    for name in S.STRATEGIES:
        assert S.STRATEGIES[name].description and S.STRATEGIES[name].formula
        strategy = make_strategy(name)
        assert type(strategy).__doc__
