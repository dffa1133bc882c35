"""Bayesian disagreement strategies (BALD, variation ratios, mean STD): hand-computed
values, bounds, input checks, and real MC-dropout runs through the loop on digits."""
import math

import numpy as np
import pytest

from alcore import Experiment, ExperimentConfig
from alcore.strategies import bayesian as B
from alcore.strategies.base import STRATEGIES, Need, StrategyInput, UncertaintyStrategy, entropy_scores

SCORES = {"bald": B.bald_scores, "var_ratios": B.var_ratios_scores, "mean_std": B.mean_std_scores}
BAYESIAN = [name for name, cls in STRATEGIES.items() if cls.family == "bayesian"]


def dirichlet_passes(rng, T, n, C, alpha=0.5):
    return rng.dirichlet(np.full(C, alpha), size=(T, n))


# ------------------------------------------------------------------ hand-computed values

def test_passes_that_all_agree_score_zero():
    rows = np.array([[0.7, 0.2, 0.1], [1.0, 0.0, 0.0], [0.34, 0.33, 0.33]])
    mc = np.stack([rows] * 5)
    for name, score in SCORES.items():
        np.testing.assert_allclose(score(mc), 0.0, atol=1e-12, err_msg=name)


def test_passes_that_disagree_completely_between_two_classes():
    mc = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # T=2, one candidate, 2 classes
    assert B.bald_scores(mc)[0] == pytest.approx(math.log(2))
    assert B.var_ratios_scores(mc)[0] == pytest.approx(0.5)
    assert B.mean_std_scores(mc)[0] == pytest.approx(0.5)  # std of {1, 0} is 0.5 per class
    # the same with four passes, two for each class
    mc4 = np.concatenate([mc, mc])
    assert B.bald_scores(mc4)[0] == pytest.approx(math.log(2))
    assert B.var_ratios_scores(mc4)[0] == pytest.approx(0.5)


def test_bald_is_entropy_of_the_mean_minus_the_mean_entropy():
    mc = np.array([[[0.9, 0.1]], [[0.1, 0.9]]])
    h_pass = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))  # 0.325083 for both passes
    assert entropy_scores(mc.mean(0))[0] == pytest.approx(math.log(2))
    np.testing.assert_allclose(entropy_scores(mc[0]), h_pass)
    assert B.bald_scores(mc)[0] == pytest.approx(math.log(2) - h_pass)
    assert B.bald_scores(mc)[0] == pytest.approx(0.3680642, abs=1e-7)
    # 0 log 0 = 0: exact one-hot passes add no entropy and give no NaN
    one_hot = np.array([[[1.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]]])
    mean = np.array([2 / 3, 0.0, 1 / 3])
    expected = -(mean[0] * math.log(mean[0]) + mean[2] * math.log(mean[2]))
    assert B.bald_scores(one_hot)[0] == pytest.approx(expected)


def test_var_ratios_counts_votes_of_the_modal_class():
    def passes(*votes, C=3):
        return np.eye(C)[list(votes)][:, None, :] * 0.8 + 0.2 / C

    assert B.var_ratios_scores(passes(0, 0, 1, 2, 0))[0] == pytest.approx(1 - 3 / 5)
    # two modal classes (2 votes each): f_m = 2 whichever is called the mode
    assert B.var_ratios_scores(passes(0, 0, 1, 1))[0] == pytest.approx(0.5)
    assert B.var_ratios_scores(passes(2, 2, 1, 1))[0] == pytest.approx(0.5)
    # a pass whose top two classes tie votes for the lower index, deterministically
    tied = np.array([[[0.5, 0.5]], [[0.5, 0.5]], [[0.2, 0.8]]])
    assert B.var_ratios_scores(tied)[0] == pytest.approx(1 - 2 / 3)


def test_mean_std_is_the_population_std_averaged_over_classes():
    mc = np.array([[[0.8, 0.2]], [[0.4, 0.6]]])
    assert B.mean_std_scores(mc)[0] == pytest.approx(0.2)  # ddof=0; ddof=1 would give 0.283
    mc3 = np.array([[[0.5, 0.3, 0.2]], [[0.2, 0.3, 0.5]], [[0.2, 0.6, 0.2]]])
    expected = np.mean([np.std([0.5, 0.2, 0.2]), np.std([0.3, 0.3, 0.6]), np.std([0.2, 0.5, 0.2])])
    assert B.mean_std_scores(mc3)[0] == pytest.approx(expected)


# --------------------------------------------------------------- bounds and rankings

@pytest.mark.parametrize("T, C, alpha", [(2, 2, 0.3), (10, 10, 0.5), (7, 3, 2.0), (30, 5, 0.1)])
def test_scores_stay_within_their_bounds(T, C, alpha):
    rng = np.random.default_rng(T * 100 + C)
    mc = dirichlet_passes(rng, T, 400, C, alpha)
    bald = B.bald_scores(mc)
    assert bald.shape == (400,) and (bald >= 0).all() and (bald <= math.log(C) + 1e-12).all()
    assert (bald <= entropy_scores(mc.mean(0)) + 1e-12).all()  # MI <= entropy of the mean
    vr = B.var_ratios_scores(mc)
    assert (vr >= 0).all() and (vr <= 1 - math.ceil(T / C) / T + 1e-12).all()
    ms = B.mean_std_scores(mc)
    assert (ms >= 0).all() and (ms <= 0.5).all()
    # float32 passes (what Keras returns) give the same scores up to rounding
    np.testing.assert_allclose(B.bald_scores(mc.astype(np.float32)), bald, atol=1e-5)


def test_bald_and_entropy_of_the_mean_rank_conflict_and_flatness_oppositely():
    conflicting = [[0.98, 0.01, 0.01], [0.01, 0.98, 0.01]]  # confident passes that disagree
    flat = [[1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3]]   # consistently flat passes
    mc = np.array([conflicting, flat]).transpose(1, 0, 2)   # (T=2, n=2, C=3)
    rng = np.random.default_rng(0)
    bald = B.BaldStrategy(passes=2).select(StrategyInput(mc_probs=mc), 1, rng)
    assert list(bald.indices) == [0] and bald.scores[0] > 0.5 and bald.scores[1] == pytest.approx(0)
    ent = UncertaintyStrategy("entropy").select(StrategyInput(probs=mc.mean(0)), 1, rng)
    assert list(ent.indices) == [1] and ent.scores[1] > ent.scores[0]
    for cls in (B.VarRatiosStrategy, B.MeanStdStrategy):
        assert list(cls(passes=2).select(StrategyInput(mc_probs=mc), 1, rng).indices) == [0]


def test_select_returns_the_top_scores_and_every_score():
    rng = np.random.default_rng(3)
    mc = dirichlet_passes(rng, 6, 200, 4)
    for name in BAYESIAN:
        strategy = STRATEGIES[name].from_config()
        strategy.passes = 6
        sel = strategy.select(StrategyInput(mc_probs=mc), 15, np.random.default_rng(0))
        np.testing.assert_allclose(sel.scores, SCORES[name](mc))
        assert len(set(sel.indices)) == 15
        assert sel.scores[sel.indices].min() >= np.delete(sel.scores, sel.indices).max()
        assert list(sel.scores[sel.indices]) == sorted(sel.scores[sel.indices], reverse=True)
        again = strategy.select(StrategyInput(mc_probs=mc), 15, np.random.default_rng(0))
        assert list(sel.indices) == list(again.indices)


def test_classes_read_mc_passes_and_describe_every_strategy():
    assert BAYESIAN == ["bald", "var_ratios", "mean_std"]
    for name in BAYESIAN:
        cls = STRATEGIES[name]
        s = cls.from_config()
        assert s.name == name and s.needs == frozenset({Need.MC_PASSES}) and s.passes == 10
        assert cls.config_fields == ("mc_passes",)
        cfg = ExperimentConfig(model="cnn", dropout=0.3, mc_passes=7)
        assert cls.from_config(cfg).passes == 7
        assert cls.description.endswith(".") and cls.formula.startswith("s(x) =")


# ---------------------------------------------------------------------- bad input

@pytest.mark.parametrize("bad, message", [
    (np.full((5, 3), 1 / 3), "3-D"),
    (np.full((1, 5, 3), 1 / 3), "at least 2 stochastic passes"),
    (np.full((3, 5, 1), 1.0), "at least 2 classes"),
    (np.where(np.arange(3)[None, None] == 0, np.nan, 0.5) * np.ones((2, 4, 3)), "NaN"),
    (np.full((2, 4, 3), 0.5), "sum to 1"),
    (np.tile([[[1.5, -0.5]]], (2, 3, 1)), r"\[0, 1\]"),
    (None, "needs mc_probs"),
])
def test_bad_input_is_refused_with_a_clear_message(bad, message):
    for name, score in SCORES.items():
        with pytest.raises(ValueError, match=message):
            score(bad)
    with pytest.raises(ValueError, match=message):
        B.BaldStrategy(passes=2).select(StrategyInput(mc_probs=bad), 1, np.random.default_rng(0))


def test_batch_and_pass_count_mistakes_are_refused():
    mc = dirichlet_passes(np.random.default_rng(0), 4, 5, 3)
    with pytest.raises(ValueError, match="larger than the 5 unlabeled candidates"):
        B.BaldStrategy(passes=4).select(StrategyInput(mc_probs=mc), 6, np.random.default_rng(0))
    with pytest.raises(ValueError, match="asked for 10 stochastic passes but mc_probs holds 4"):
        B.MeanStdStrategy().select(StrategyInput(mc_probs=mc), 2, np.random.default_rng(0))
    for passes in (1, 0, 2.5, "10"):
        with pytest.raises(ValueError, match="passes must be a whole number >= 2"):
            B.VarRatiosStrategy(passes=passes)


# ------------------------------------------------------ real MC dropout through the loop

def _bayesian_config(name, **changes):
    base = dict(strategy=name, model="cnn", filters=4, dropout=0.5, mc_passes=4, rounds=2, max_epochs=5)
    base.update(changes)
    return ExperimentConfig(**base)


def test_bald_runs_through_the_loop_with_real_dropout_passes(digits, cache, monkeypatch):
    seen = []

    class RecordingBald(B.BaldStrategy):
        def select(self, inputs, batch_size, rng):
            seen.append(np.array(inputs.mc_probs))
            return super().select(inputs, batch_size, rng)

    monkeypatch.setitem(STRATEGIES, "bald", RecordingBald)

    def run():
        exp = Experiment(_bayesian_config("bald"), dataset=digits, cache=cache)
        return exp, list(exp)

    exp, rounds = run()
    assert [r.round for r in rounds] == [0, 1, 2] and exp.done
    assert [len(r.selected) for r in rounds] == [10, 10, 0]
    picked = np.concatenate([exp.initial_indices] + [r.selected for r in rounds])
    assert len(np.unique(picked)) == len(picked) == 30
    # the loop asked for 4 passes over every unlabeled candidate, and dropout made them differ
    n_free = len(digits.y_pool) - 10
    assert seen[0].shape == (4, n_free, digits.n_classes)
    assert not np.array_equal(seen[0][0], seen[0][1])
    assert all(s > 0 for s in rounds[0].selected_scores)
    assert rounds[0].selected_scores == sorted(rounds[0].selected_scores, reverse=True)
    # same config again: the dropout masks, hence the passes and the picks, repeat exactly
    first = list(seen)
    seen.clear()
    _, again = run()
    assert [r.selected for r in again] == [r.selected for r in rounds]
    for a, b in zip(first, seen):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["var_ratios", "mean_std"])
def test_other_bayesian_strategies_run_and_repeat(name, digits, cache, monkeypatch):
    cfg = _bayesian_config(name)
    runs = [list(Experiment(cfg, dataset=digits, cache=cache)) for _ in range(2)]
    picks = [r.selected for r in runs[0]]
    assert [len(p) for p in picks] == [10, 10, 0] and len(set(picks[0] + picks[1])) == 20
    assert picks == [r.selected for r in runs[1]]


@pytest.mark.parametrize("changes", [dict(model="softmax"), dict(model="mlp", dropout=0.0),
                                     dict(dropout=0.0)])
def test_a_model_without_dropout_is_refused_with_the_fix(changes, digits, cache, monkeypatch):
    for name in BAYESIAN:
        with pytest.raises(ValueError, match="choose mlp or cnn with dropout > 0"):
            Experiment(_bayesian_config(name, **changes), dataset=digits, cache=cache)


# ------------------------------------------------------ reported accuracy from MC dropout

def test_mc_evaluation_reports_the_mean_of_the_passes_and_leaves_every_pick_alone(digits, cache):
    """mc_evaluation changes what is reported (test accuracy from the mean of mc_passes
    passes), not what is picked: BALD draws the same masks and labels the same images."""
    plain = list(Experiment(_bayesian_config("bald"), dataset=digits, cache=cache))
    exp = Experiment(_bayesian_config("bald", mc_evaluation=True), dataset=digits, cache=cache)
    mc = list(exp)
    assert [r.selected for r in mc] == [r.selected for r in plain]
    assert [r.test_accuracy for r in mc] != [r.test_accuracy for r in plain]
    # the reported accuracy is the mean prediction's, measured on the run's final model
    probs = exp.trainer.predict_proba_mc_mean(digits.inputs_test, 4)
    assert mc[-1].test_accuracy == pytest.approx(float((probs.argmax(1) == digits.y_test).mean()))
    assert np.trace(np.array(mc[-1].confusion)) / len(digits.y_test) == pytest.approx(mc[-1].test_accuracy)


@pytest.mark.parametrize("changes", [dict(model="softmax"), dict(model="mlp", dropout=0.0)])
def test_mc_evaluation_without_dropout_is_refused_naming_the_field(changes):
    with pytest.raises(ValueError, match="mc_evaluation needs stochastic forward passes.*dropout > 0"):
        _bayesian_config("margin", mc_evaluation=True, **changes)
