"""Statistics across seeds: numbers checked against scipy on hand-made AULC values, and
the tables on real runs."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alcore.figures import pairwise_figure
from alcore.analysis.metrics import metrics_frame
from alcore.results.records import GroupKey
from alcore.analysis.stats import (GROUP_COLUMNS, PAIR_COLUMNS, geometric_mean_interval, group_intervals, holm,
                          min_wilcoxon_p, seed_statistics, seeds_needed)


def frame(groups: dict, labels: dict = None, settings: str = "") -> pd.DataFrame:
    """A metrics_frame-like table: groups maps strategy -> AULC per seed (seeds 0, 1, ...),
    labels maps strategy -> labels to target per seed (None: never reached)."""
    rows = []
    for strategy, values in groups.items():
        for seed, aulc in enumerate(values):
            ltt = (labels or {}).get(strategy, [None] * len(values))[seed]
            key = GroupKey(strategy, strategy, (("dataset", settings),) if settings else ())
            rows.append({"group": key.label, "key": key, "strategy": strategy,
                         "seed": seed, "aulc": aulc, "labels_to_target": ltt})
    return pd.DataFrame(rows)


RANDOM6 = [0.70, 0.72, 0.69, 0.71, 0.73, 0.70]
MARGIN6 = [0.74, 0.73, 0.75, 0.76, 0.80, 0.715]  # better on every seed, by distinct amounts


def test_intervals_and_paired_tests_match_scipy():
    s = seed_statistics(frame({"margin": MARGIN6, "random": RANDOM6}))
    g = s.groups.set_index("group")
    low, high = stats.t.interval(0.95, 5, loc=np.mean(MARGIN6), scale=stats.sem(MARGIN6))
    assert g.at["margin", "aulc_mean"] == pytest.approx(np.mean(MARGIN6))
    assert (g.at["margin", "aulc_low"], g.at["margin", "aulc_high"]) == pytest.approx((low, high))
    assert g.at["margin", "seeds"] == 6

    p = s.pairs.set_index(["row", "column"])
    mr, rm = p.loc[("margin", "random")], p.loc[("random", "margin")]
    diff = np.subtract(MARGIN6, RANDOM6)
    assert mr["wilcoxon_p"] == pytest.approx(stats.wilcoxon(MARGIN6, RANDOM6).pvalue) == pytest.approx(2 / 2 ** 6)
    assert mr["wilcoxon_method"] == "exact"
    assert mr["t_p"] == pytest.approx(stats.ttest_rel(MARGIN6, RANDOM6).pvalue)
    assert mr["holm_p"] == pytest.approx(mr["wilcoxon_p"])  # one pair: Holm changes nothing
    assert mr["mean_diff"] == pytest.approx(diff.mean()) and rm["mean_diff"] == pytest.approx(-diff.mean())
    assert mr["win_fraction"] == 1.0 and rm["win_fraction"] == 0.0 and mr["n_seeds"] == 6
    assert (mr["verdict"], rm["verdict"]) == ("better", "worse")
    assert s.warnings == []
    assert list(s.groups.columns) == GROUP_COLUMNS and list(s.pairs.columns) == PAIR_COLUMNS


def test_pairs_are_matched_by_seed_not_by_row_order():
    f = frame({"margin": MARGIN6, "random": RANDOM6}).sample(frac=1, random_state=3)
    p = seed_statistics(f).pairs.set_index(["row", "column"]).loc[("margin", "random")]
    assert p["t_p"] == pytest.approx(stats.ttest_rel(MARGIN6, RANDOM6).pvalue)


def test_holm_on_a_known_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> kept monotone at 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]).size == 0


def test_holm_over_three_groups_needs_seven_seeds():
    entropy6 = [0.72, 0.725, 0.70, 0.73, 0.76, 0.705]
    s = seed_statistics(frame({"entropy": entropy6, "margin": MARGIN6, "random": RANDOM6}))
    once = s.pairs[s.pairs["row"] < s.pairs["column"]]
    assert len(once) == 3 and (once["holm_p"] >= 3 * 2 / 2 ** 6 - 1e-12).all()
    assert set(s.pairs["verdict"]) == {"not separable"}
    assert seeds_needed(0.05, 3) == 7 and len(s.warnings) == 3
    assert "after Holm correction over 3 comparisons" in s.warnings[0] and "fewer than 7" in s.warnings[0]


def test_efficiency_geometric_mean_and_bootstrap_interval():
    rnd = [100, 120, 90, 150, 80]
    mar = [50, 60, 60, 100, 40]
    ratios = np.divide(rnd, mar)  # 2, 2, 1.5, 1.5, 2
    f = frame({"margin": [0.8] * 5, "random": [0.7] * 5}, {"margin": mar, "random": rnd})
    g = group_intervals(f).set_index("group")
    gmean = math.exp(np.log(ratios).mean())
    assert g.at["margin", "efficiency"] == pytest.approx(gmean) == pytest.approx(stats.gmean(ratios))
    assert g.at["margin", "efficiency_seeds"] == 5 and g.at["random", "efficiency"] == pytest.approx(1.0)
    # the interval agrees with scipy's own percentile bootstrap of the mean log-ratio
    ref = stats.bootstrap((np.log(ratios),), np.mean, method="percentile", n_resamples=20_000,
                          rng=np.random.default_rng(123)).confidence_interval
    low, high = g.at["margin", "efficiency_low"], g.at["margin", "efficiency_high"]
    assert low == pytest.approx(math.exp(ref.low), rel=0.03) and high == pytest.approx(math.exp(ref.high), rel=0.03)
    assert 1.5 <= low <= gmean <= high <= 2.0
    # reproducible: a fixed generator seed
    assert geometric_mean_interval(ratios) == geometric_mean_interval(ratios)
    assert geometric_mean_interval([2.0, 2.0, 2.0]) == pytest.approx((2.0, 2.0, 2.0))


def test_few_seeds_are_named_in_warnings_and_never_separate():
    assert min_wilcoxon_p(5) == pytest.approx(0.0625) and min_wilcoxon_p(6) == pytest.approx(0.03125)
    assert seeds_needed(0.05) == 6
    s5 = seed_statistics(frame({"margin": MARGIN6[:5], "random": RANDOM6[:5]}))
    mr = s5.pairs.set_index(["row", "column"]).loc[("margin", "random")]
    assert mr["win_fraction"] == 1.0 and mr["wilcoxon_p"] == pytest.approx(0.0625)
    assert mr["verdict"] == "not separable"
    assert s5.warnings == ["margin vs random: 5 paired seeds; a Wilcoxon test cannot reach p < 0.05 with "
                           "fewer than 6, so these two cannot be told apart yet."]
    # six seeds with the same clear difference: separable, no warning
    s6 = seed_statistics(frame({"margin": MARGIN6, "random": RANDOM6}))
    assert s6.warnings == [] and set(s6.pairs["verdict"]) == {"better", "worse"}
    s2 = seed_statistics(frame({"margin": MARGIN6[:2], "random": RANDOM6[:2]}))
    assert "2 paired seeds" in s2.warnings[0] and "1 degree of freedom" in s2.warnings[0]


def test_runs_that_never_reach_the_target_are_censored_not_averaged():
    f = frame({"margin": [0.8, 0.81, 0.79], "random": [0.7, 0.71, 0.72]},
              {"margin": [40, None, 60], "random": [80, 90, None]})
    g = group_intervals(f).set_index("group")
    assert g.at["margin", "reached_target"] == "2/3" and g.at["margin", "labels_mean"] == pytest.approx(50)
    low, high = stats.t.interval(0.95, 1, loc=50, scale=stats.sem([40, 60]))
    assert (g.at["margin", "labels_low"], g.at["margin", "labels_high"]) == pytest.approx((max(low, 0), high))
    assert low < 0  # what the t interval alone says with two seeds; no label count is negative
    assert "censored" in g.at["margin", "note"]
    # only seed 0 has both margin and random at the target: no efficiency, and the note says why
    assert math.isnan(g.at["margin", "efficiency"]) and g.at["margin", "efficiency_seeds"] == 1
    assert "at least 2 seeds" in g.at["margin", "note"] and "2 paired seed(s) left out" in g.at["margin", "note"]
    nobody = group_intervals(frame({"margin": [0.8, 0.8]}, {"margin": [None, None]})).iloc[0]
    assert nobody["reached_target"] == "0/2" and math.isnan(nobody["labels_mean"])


@pytest.mark.parametrize("case, words", [
    ("empty", "No runs"), ("one run", "One run only"), ("no random", "No random run"),
    ("mismatched seeds", "share no seed"), ("other settings", "No two groups have the same settings")])
def test_bad_input_gives_empty_tables_and_notes(case, words):
    if case == "empty":
        f = frame({})
    elif case == "one run":
        f = frame({"margin": [0.8]})
    elif case == "no random":
        f = frame({"margin": [0.8, 0.7], "entropy": [0.75, 0.7]})
    elif case == "mismatched seeds":
        f = frame({"margin": [0.8, 0.7], "random": [0.75, 0.7]})
        f.loc[f["strategy"] == "margin", "seed"] += 10
    else:
        f = pd.concat([frame({"margin": [0.8, 0.7]}, settings="mnist"), frame({"random": [0.8, 0.7]}, settings="digits")])
    s = seed_statistics(f)
    assert any(words in n for n in s.notes), s.notes
    if case != "no random":
        assert s.pairs.empty and s.warnings == []
    else:
        assert s.groups["efficiency"].isna().all()
        assert all("no random run" in n for n in s.groups["note"])
    if case == "one run":
        assert math.isnan(s.groups.iloc[0]["aulc_low"]) and "one seed" in s.groups.iloc[0]["note"]
    fig = pairwise_figure(s.pairs)
    assert len(fig.data) == 1


def test_pairwise_figure_escapes_names_and_shows_verdicts():
    s = seed_statistics(frame({"<b>x</b>": MARGIN6, "random": RANDOM6}))
    fig = pairwise_figure(s.pairs)
    hm = fig.data[0]
    assert list(hm.x) == ["&lt;b&gt;x&lt;/b&gt;", "random"] and list(hm.y) == list(hm.x)
    assert hm.z[0][1] == pytest.approx(np.mean(np.subtract(MARGIN6, RANDOM6))) and math.isnan(hm.z[0][0])
    assert hm.text[0][1].startswith("better") and "p=0.0312" in hm.text[0][1] and hm.text[1][0].startswith("worse")



def test_long_group_names_are_cut_on_the_heatmap_axes_and_whole_in_its_hover():
    """Eight long group names made the paired-test heatmap unreadable (issue 18, item 5): the axes
    show each cut to a few words, unique, and the hover the whole name."""
    long = {f"margin · hybrid_fraction={f} · candidates=2000 · test_size=all": MARGIN6 for f in (0.2, 0.5)}
    s = seed_statistics(frame({**long, "random": RANDOM6}))
    hm = pairwise_figure(s.pairs).data[0]
    assert all(len(x) <= 28 for x in hm.x) and len(set(hm.x)) == 3
    assert any("hybrid_fraction=0.5 · candidates=2000" in row[0] for line in hm.customdata for row in line)
    assert "customdata[0]" in hm.hovertemplate


def test_curve_legends_sit_under_the_plot_so_they_cannot_cover_the_title(results):
    from alcore.analysis.groups import curve_frame
    from alcore.figures import learning_curve_figure

    legend = learning_curve_figure(curve_frame(results)).layout.legend
    assert legend.orientation == "h" and legend.y < 0 and legend.yanchor == "top"


# ------------------------------------------------------------------- real runs

@pytest.fixture(scope="module")
def results(three_seed_results):
    return three_seed_results


def test_tables_on_real_runs(results):
    assert len(results) == 6
    accuracies = sorted(r.rounds[-1].test_accuracy for r in results)
    metrics = metrics_frame(results, target=accuracies[len(accuracies) // 2])
    s = seed_statistics(metrics)
    assert list(s.groups["group"]) == ["margin", "random"] and list(s.groups["seeds"]) == [3, 3]
    assert (s.groups["aulc_low"] <= s.groups["aulc_mean"]).all() and (s.groups["aulc_mean"] <= s.groups["aulc_high"]).all()
    assert s.groups["reached_target"].str.fullmatch(r"[0-3]/3").all()
    assert len(s.pairs) == 2 and set(s.pairs["n_seeds"]) == {3}
    assert set(s.pairs["verdict"]) == {"not separable"}  # 3 seeds can never separate two strategies
    assert s.pairs["mean_diff"].sum() == pytest.approx(0)
    assert s.warnings == ["margin vs random: 3 paired seeds; a Wilcoxon test cannot reach p < 0.05 with "
                          "fewer than 6, so these two cannot be told apart yet."]
    fig = pairwise_figure(s.pairs)
    assert np.asarray(fig.data[0].z).shape == (2, 2)


def test_intervals_stay_within_what_the_quantity_can_be():
    from alcore.analysis.stats import t_interval

    # two seeds far apart: the raw t interval is 12.7 standard errors wide
    mean, low, high = t_interval([0.40, 0.95], bounds=(0.0, 1.0))
    assert mean == pytest.approx(0.675) and (low, high) == (0.0, 1.0)
    mean, low, high = t_interval([100, 700], bounds=(0.0, None))
    assert low == 0.0 and high == pytest.approx(400 + 12.706 * 300, rel=1e-3)
    assert t_interval([0.5, 0.6]) [1] < t_interval([0.5, 0.6], bounds=(0.55, None))[1]


def test_accuracy_at_budgets_is_tested_paired_by_seed_and_holm_corrected_over_every_comparison():
    from alcore.analysis.stats import BUDGET_COLUMNS, tests_at_budgets

    rng = np.random.default_rng(0)
    rows = []
    random10 = 0.4 + 0.03 * rng.standard_normal(10)
    for strategy, lift in (("random", 0.0), ("typiclust", 0.12), ("margin", 0.0)):
        key = GroupKey(strategy, strategy)
        for seed in range(10):
            for n, base in ((10, random10[seed]), (20, random10[seed] + 0.1)):
                # typiclust 12 points up on every seed; margin equal to random give or take a point
                acc = base + lift + (0.01 * rng.standard_normal() if strategy == "margin" else 0.0)
                rows.append({"group": strategy, "key": key, "seed": seed, "n_labeled": n, "test_accuracy": acc,
                             "run_id": 0})
    t = tests_at_budgets(pd.DataFrame(rows).sample(frac=1, random_state=1), [10, 20], "random")
    assert list(t.columns) == BUDGET_COLUMNS and t.attrs["comparisons"] == 4
    typ = t[t.group == "typiclust"].set_index("n_labeled")
    assert typ.loc[10, "mean_diff"] == pytest.approx(0.12) and typ.loc[10, "win_fraction"] == 1.0
    assert typ.loc[10, "wilcoxon_p"] == pytest.approx(2 / 2 ** 10)
    p = t.set_index(["group", "n_labeled"])["wilcoxon_p"]
    assert t.set_index(["group", "n_labeled"])["holm_p"].to_numpy() == pytest.approx(holm(p.to_numpy()))
    assert list(typ["verdict"]) == ["better", "better"]
    assert set(t[t.group == "margin"]["verdict"]) == {"not separable"}
    assert tests_at_budgets(pd.DataFrame(rows), [10], "bald").empty
