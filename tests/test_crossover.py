"""The phase transition: the crossover budget of an uncertainty strategy over a typicality one,
on curves built so the answer is known."""
import numpy as np
import pandas as pd
import pytest

from alcore.analysis.crossover import AHEAD, CROSSED, NEVER, crossover, crossover_index, phase_transitions
from alcore.results.records import GroupKey

BUDGETS = [10, 20, 50, 100, 200]


def curves(diffs, seeds=10, noise=0.0, seed=0):
    """(typicality, uncertainty) curves over BUDGETS: typicality at 0.5 + budget / 1000, uncertainty
    ``diffs`` above it (one per budget), plus per-seed noise."""
    rng = np.random.default_rng(seed)
    a = np.tile(0.5 + np.asarray(BUDGETS) / 1000, (seeds, 1)) + noise * rng.standard_normal((seeds, len(BUDGETS)))
    return a, a + np.asarray(diffs) + noise * rng.standard_normal((seeds, len(BUDGETS)))


def test_the_first_budget_from_which_b_stays_ahead():
    assert crossover_index([-0.1, -0.05, 0.02, 0.04, 0.08]) == 2
    # ahead at 20 labels, behind again at 50: the crossover is where it stays ahead
    assert crossover_index([-0.1, 0.01, -0.01, 0.04, 0.08]) == 3
    assert crossover_index([0.1, 0.2]) == 0
    assert crossover_index([-0.1, 0.0]) is None  # a tie at the end is not "ahead"
    assert crossover_index([0.1, float("nan"), 0.1]) == 2


def test_known_crossover_with_an_interval_around_it():
    a, b = curves([-0.15, -0.08, 0.03, 0.05, 0.06], noise=0.01)
    c = crossover(a, b, BUDGETS, a_name="typiclust", b_name="margin")
    assert (c.status, c.budget, c.seeds, c.last_budget) == (CROSSED, 50, 10, 200)
    assert c.low <= 50 <= c.high and {c.low, c.high} <= set(BUDGETS)
    assert c.no_crossover_share == 0.0
    assert c.sentence().startswith("margin overtakes typiclust at 50 labels (95% interval")


def test_a_clear_crossover_has_a_tight_interval_and_a_noisy_one_a_wide_one():
    clear = crossover(*curves([-0.15, -0.08, 0.03, 0.05, 0.06], noise=0.002), BUDGETS)
    assert (clear.low, clear.high) == (50, 50)
    # at 50 labels the mean difference is a hair above zero and the seeds scatter 5 points
    noisy = crossover(*curves([-0.15, -0.08, 0.002, 0.05, 0.06], noise=0.05, seed=3), BUDGETS)
    assert noisy.low < noisy.high


def test_never_overtakes_within_the_race():
    a, b = curves([-0.2, -0.15, -0.1, -0.05, -0.01], noise=0.005)
    c = crossover(a, b, BUDGETS, a_name="typiclust", b_name="margin")
    assert (c.status, c.budget, c.low, c.high) == (NEVER, None, None, None)
    assert c.no_crossover_share == 1.0
    assert c.sentence() == "margin never overtakes typiclust within 200 labels (10 paired seeds)."


def test_ahead_from_the_start_is_not_a_transition():
    a, b = curves([0.0, 0.02, 0.03, 0.05, 0.06])  # tied at the shared initial labels, then ahead
    c = crossover(a, b, BUDGETS, b_name="margin")
    assert (c.status, c.budget) == (AHEAD, 20)
    assert "no phase transition" in c.sentence()


def test_tied_throughout_is_no_crossover():
    a, _ = curves([0] * 5)
    c = crossover(a, a.copy(), BUDGETS)
    assert (c.status, c.budget) == (NEVER, None)


def test_one_seed_gives_the_budget_but_no_interval():
    a, b = curves([-0.1, -0.05, 0.03, 0.05, 0.06], seeds=1)
    c = crossover(a, b, BUDGETS)
    assert (c.budget, c.low, c.high) == (50, None, None) and "one seed: no interval" in c.notes


def test_the_bootstrap_is_reproducible_and_resamples_seeds_not_budgets():
    a, b = curves([-0.15, -0.02, 0.01, 0.05, 0.06], noise=0.03, seed=5)
    first, again = crossover(a, b, BUDGETS), crossover(a, b, BUDGETS)
    assert (first.low, first.high, first.no_crossover_share) == (again.low, again.high, again.no_crossover_share)
    # swapping whole seeds between the rows of both strategies together changes nothing
    order = np.random.default_rng(1).permutation(len(a))
    shuffled = crossover(a[order], b[order], BUDGETS)
    assert shuffled.budget == first.budget


@pytest.mark.parametrize("a, b, budgets, message", [
    (np.zeros((3, 5)), np.zeros((3, 4)), BUDGETS, "must both be"),
    (np.zeros((3, 5)), np.zeros((3, 5)), [10, 20, 20, 30, 40], "must increase"),
])
def test_bad_curves_are_refused(a, b, budgets, message):
    with pytest.raises(ValueError, match=message):
        crossover(a, b, budgets)


def curve_rows(strategy, acc_by_seed, budgets=BUDGETS, settings=()):
    key = GroupKey(strategy, strategy, settings)
    return [{"group": key.label, "key": key, "run": f"{strategy} (seed {s})", "seed": s, "source": "",
             "run_id": hash((strategy, s)) % 10_000, "n_labeled": n, "test_accuracy": acc}
            for s, accs in enumerate(acc_by_seed) for n, acc in zip(budgets, accs)]


def test_phase_transitions_pair_typicality_with_uncertainty_groups_only():
    a, b = curves([-0.15, -0.08, 0.03, 0.05, 0.06], seeds=4, noise=0.005)
    r, _ = curves([-0.2] * 5, seeds=4)
    frame = pd.DataFrame(curve_rows("typiclust", a) + curve_rows("margin", b) + curve_rows("random", r))
    found = phase_transitions(frame)
    assert [(c.a, c.b, c.budget) for c in found] == [("typiclust", "margin", 50)]


def test_phase_transitions_need_two_shared_seeds_and_the_same_settings():
    a, b = curves([-0.15, -0.08, 0.03, 0.05, 0.06], seeds=3)
    one_seed = pd.DataFrame(curve_rows("probcover", a[:1]) + curve_rows("entropy", b[:1]))
    assert phase_transitions(one_seed) == []
    apart = pd.DataFrame(curve_rows("probcover", a, settings=(("batch_size", 10),))
                         + curve_rows("bald", b, settings=(("batch_size", 20),)))
    assert phase_transitions(apart) == []
    # a seed missing a budget drops that budget, not the pair
    rows = curve_rows("probcover", a) + curve_rows("bald", b)
    rows = [r for r in rows if not (r["key"].strategy == "bald" and r["seed"] == 0 and r["n_labeled"] == 200)]
    (c,) = phase_transitions(pd.DataFrame(rows))
    assert c.budgets == (10, 20, 50, 100) and c.budget == 50


def test_the_vectorized_bootstrap_agrees_with_the_definition_row_by_row():
    a, b = curves([-0.05, -0.01, 0.0, 0.01, 0.02], noise=0.03, seed=2)
    c = crossover(a, b, BUDGETS, resamples=500, seed=9)
    idx = np.random.default_rng(9).integers(0, len(a), size=(500, len(a)))
    found = [crossover_index(row) for row in (b - a)[idx].mean(axis=1)]
    crossed = [BUDGETS[j] for j in found if j is not None]
    assert c.no_crossover_share == pytest.approx(1 - len(crossed) / 500)
    assert (c.low, c.high) == tuple(int(v) for v in np.percentile(crossed, [2.5, 97.5], method="inverted_cdf"))


def test_the_curves_mark_a_crossover_with_a_line_and_its_interval_with_a_band():
    import plotly.graph_objects as go

    from alcore.figures import mark_crossovers

    crossed = crossover(*curves([-0.15, -0.08, 0.002, 0.05, 0.06], noise=0.05, seed=3), BUDGETS,
                        a_name="typiclust", b_name="margin")
    never = crossover(*curves([-0.2] * 5), BUDGETS, a_name="probcover", b_name="margin")
    ahead = crossover(*curves([0.0, 0.1, 0.1, 0.1, 0.1]), BUDGETS, a_name="maxherding", b_name="margin")
    fig = mark_crossovers(go.Figure(), [crossed, never, ahead])
    shapes = fig.layout.shapes
    assert [(s.type, s.x0, s.x1) for s in shapes] == [("rect", crossed.low, crossed.high),
                                                       ("line", crossed.budget, crossed.budget)]
    assert [a.text for a in fig.layout.annotations] == [f"margin overtakes typiclust: {crossed.budget}"]
