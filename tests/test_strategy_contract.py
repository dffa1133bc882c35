"""The contract every registered strategy keeps, checked for each one on small synthetic data.

A new strategy only has to register its class (``@register``) to be held to it: unique picks,
all among the candidates, exactly ``batch_size`` of them, the same picks for the same seed, one
score per candidate, and a batch larger than the candidates refused with a clear error.
"""
import numpy as np
import pytest

from alcore.config import ExperimentConfig
from alcore.strategies.base import STRATEGIES, Need, Selection, StrategyInput, is_baseline

NAMES = list(STRATEGIES)
N, CLASSES, FEATURES, LABELED = 60, 4, 8, 6


def inputs_for(strategy, n: int = N, seed: int = 0) -> StrategyInput:
    """What the loop would pass: the probabilities always (it computes them to decide when to
    stop), and exactly the other outputs the strategy declares in ``needs``."""
    rng = np.random.default_rng(seed)
    needs = strategy.needs
    mc = rng.dirichlet(np.full(CLASSES, 0.5), size=(max(strategy.passes, 2), n))
    return StrategyInput(
        probs=mc.mean(axis=0),
        embeddings=rng.standard_normal((n, FEATURES)) if Need.EMBEDDINGS in needs else None,
        labeled_embeddings=rng.standard_normal((LABELED, FEATURES)) if Need.LABELED_EMBEDDINGS in needs else None,
        mc_probs=mc if Need.MC_PASSES in needs else None,
    )


def config_for(name: str) -> ExperimentConfig:
    # a model with dropout, so the stochastic-pass strategies accept it; few passes, to stay fast
    return ExperimentConfig(strategy=name, model="mlp", dropout=0.25, mc_passes=4)


def pick(name, batch_size, seed=0, n=N) -> tuple[Selection, int]:
    strategy = STRATEGIES[name].from_config(config_for(name))
    return strategy.select(inputs_for(strategy, n), batch_size, np.random.default_rng(seed)), n


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch_size", [1, 7, N])
def test_picks_are_unique_in_range_and_as_many_as_the_batch(name, batch_size):
    sel, n = pick(name, batch_size)
    indices = np.asarray(sel.indices)
    assert np.issubdtype(indices.dtype, np.integer)
    assert len(indices) == batch_size
    assert len(set(indices.tolist())) == batch_size
    assert indices.min() >= 0 and indices.max() < n


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_picks_and_scores(name):
    a, _ = pick(name, 9, seed=3)
    b, _ = pick(name, 9, seed=3)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)


@pytest.mark.parametrize("name", NAMES)
def test_one_finite_score_per_candidate(name):
    sel, n = pick(name, 5)
    if sel.scores is not None:  # a strategy that scores gives every candidate a score
        scores = np.asarray(sel.scores, dtype=np.float64)
        assert scores.shape == (n,) and np.isfinite(scores).all()


@pytest.mark.parametrize("name", NAMES)
def test_a_batch_larger_than_the_candidates_is_refused_clearly(name):
    with pytest.raises(ValueError, match=f"batch_size {N + 1} is larger than the {N} unlabeled candidates"):
        pick(name, N + 1)


@pytest.mark.parametrize("name", NAMES)
def test_a_strategy_describes_itself(name):
    cls = STRATEGIES[name]
    assert cls.name == name
    assert cls.family in ("baseline", "uncertainty", "hybrid", "diversity", "coverage", "bayesian")
    assert cls.description.endswith(".") and "\n" not in cls.description
    assert cls.formula.strip()
    assert cls.__doc__
    assert all(isinstance(need, Need) for need in cls.needs)
    assert set(cls.config_fields) <= set(ExperimentConfig.model_fields)
    # without a config it builds with the defaults; with one, from the fields it declares
    assert cls.from_config().name == name
    assert cls.from_config(config_for(name)).name == name
    assert cls.label(config_for(name)).startswith(name)


def test_exactly_one_baseline_and_it_needs_nothing():
    baselines = [name for name in NAMES if is_baseline(name)]
    assert baselines == ["random"]
    assert STRATEGIES["random"].needs == frozenset()
    assert not is_baseline("no such strategy")
