"""Statistics across seeds: intervals per group, paired tests between groups, and
plain warnings where the seeds are too few to tell two strategies apart.

Everything starts from :func:`alcore.analysis.metrics.metrics_frame` (one row per run with
``group``, its ``key``, ``strategy``, ``seed``, ``aulc`` and ``labels_to_target``). A *group*
is a strategy with its non-seed settings; two groups are compared only when those settings
match (``key.settings``, as for the random baseline in ``metrics_frame``), and their runs are
paired by seed, so both runs of a pair start from the same initial labels.

No Streamlit here; numpy, pandas and scipy only. Bad or thin input (one run, no random
run, no shared seeds) gives empty tables and notes that say why, never an exception.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from alcore.analysis.groups import in_natural_order, keys_by_group
from alcore.strategies.base import fields_used_by

ALPHA = 0.05
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0

GROUP_COLUMNS = ["group", "seeds", "aulc_mean", "aulc_low", "aulc_high",
                 "reached_target", "labels_mean", "labels_low", "labels_high",
                 "efficiency", "efficiency_low", "efficiency_high", "efficiency_seeds", "note"]
PAIR_COLUMNS = ["row", "column", "n_seeds", "mean_diff", "win_fraction", "wilcoxon_p", "wilcoxon_method",
                "t_p", "holm_p", "verdict", "note"]


@dataclass
class SeedStatistics:
    """What :func:`seed_statistics` returns.

    ``groups``: one row per group (see :func:`group_intervals`). ``pairs``: one row per
    ordered pair of comparable groups (see :func:`pairwise_tests`). ``warnings``: plain
    sentences about pairs with too few seeds. ``notes``: why a table is empty or thin."""

    groups: pd.DataFrame
    pairs: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ small pieces

def t_interval(values: Sequence[float], confidence: float = CONFIDENCE,
               bounds: tuple[Optional[float], Optional[float]] = (None, None)
               ) -> tuple[float, Optional[float], Optional[float]]:
    """Mean and Student-t confidence interval of the mean; (mean, None, None) for fewer than 2
    values. ``bounds``: the values the quantity can take (an AULC lies in [0, 1], a label
    count is not negative); the interval is clipped to them. With two seeds the t interval is
    12.7 standard errors wide and otherwise reads as an AULC above 1 or negative labels."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    mean = float(v.mean())
    if len(v) < 2:
        return mean, None, None
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    low, high = mean - half, mean + half
    if bounds[0] is not None:
        low = max(low, bounds[0])
    if bounds[1] is not None:
        high = min(high, bounds[1])
    return mean, low, high


def geometric_mean_interval(ratios: Sequence[float], *, resamples: int = BOOTSTRAP_RESAMPLES,
                            seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE
                            ) -> tuple[float, float, float]:
    """Geometric mean of positive ratios and its bootstrap percentile interval: resample the
    seeds with replacement ``resamples`` times (numpy Generator seeded with ``seed``, so the
    interval is reproducible) and take the central ``confidence`` share of the geometric means."""
    logs = np.log(np.asarray(ratios, dtype=float))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(logs), size=(resamples, len(logs)))
    boot = logs[idx].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return float(np.exp(logs.mean())), float(np.exp(low)), float(np.exp(high))


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down): the k-th smallest of m is multiplied by
    m - k + 1, made non-decreasing along that order, and capped at 1. Reject where < alpha."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, (m - rank) * p[i])
        adjusted[i] = min(1.0, running)
    return adjusted


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p-value an exact Wilcoxon signed-rank test can give with n
    pairs: every difference on one side, probability 2 / 2**n under the null."""
    return 1.0 if n < 1 else min(1.0, 2.0 / 2 ** n)


def seeds_needed(alpha: float = ALPHA, comparisons: int = 1) -> int:
    """The fewest paired seeds with which an exact Wilcoxon test can get below ``alpha``
    after Holm correction over ``comparisons`` pairs (6 for one pair at 0.05)."""
    n = 1
    while comparisons * min_wilcoxon_p(n) >= alpha:
        n += 1
    return n


def _per_seed(sub: pd.DataFrame) -> pd.DataFrame:
    """One run per seed (the first where a group holds one seed twice)."""
    return sub.drop_duplicates("seed", keep="first").set_index("seed")


def _reached(value) -> bool:
    return value is not None and not pd.isna(value)


# ------------------------------------------------------------------- per group

def _efficiency_ratios(runs: pd.DataFrame, base: pd.DataFrame, notes: list[str]) -> list[float]:
    """Random's labels to the target over the group's, per seed shared with ``base`` (random's
    runs of the same settings, one per seed) where both reached it; ``notes`` says what was
    left out and why."""
    if base.empty:
        notes.append("no random run with the same settings: no efficiency")
        return []
    ratios, censored = [], 0
    shared = [s for s in runs.index if s in base.index]
    for s in shared:
        mine, theirs = runs.at[s, "labels_to_target"], base.at[s, "labels_to_target"]
        if _reached(mine) and _reached(theirs):
            ratios.append(float(theirs) / float(mine))
        else:
            censored += 1
    if not shared:
        notes.append("no seed shared with a random run: no efficiency")
    elif censored:
        notes.append(f"efficiency: {censored} paired seed(s) left out because one of the pair "
                     f"never reached the target (censored)")
    return ratios


def group_intervals(frame: pd.DataFrame, *, confidence: float = CONFIDENCE,
                    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """One row per group, with intervals across its seeds:

    - ``aulc_mean`` with a Student-t ``confidence`` interval (``aulc_low`` / ``aulc_high``);
    - labels to the target: mean and t-interval over the seeds that *reached* it, with
      ``reached_target`` ("k/n"). Runs that never reached it are censored (their true value is
      beyond their label budget, not known), so they are left out and counted, not averaged
      as if they had reached it; the mean over the others is optimistic when k < n;
    - labelling ``efficiency`` against random: random's labels to the target over this
      group's, per seed, against the random run of the same seed and settings; the geometric
      mean over the seeds where both reached the target, with a bootstrap percentile
      interval. None where fewer than 2 such seeds (``note`` says why).

    Intervals are None for a group with one seed."""
    if frame is None or len(frame) == 0:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    rows = []
    for group, sub in in_natural_order(frame):  # hybrid 0%, 20%, 100%
        notes = []
        runs = _per_seed(sub)
        if len(runs) < len(sub):
            notes.append(f"{len(sub) - len(runs)} run(s) repeat a seed; the first run of each seed is used")
        n = len(runs)
        aulc, aulc_low, aulc_high = t_interval(runs["aulc"], confidence, bounds=(0.0, 1.0))
        if n < 2:
            notes.append("one seed: no interval")
        reached = runs["labels_to_target"][runs["labels_to_target"].map(_reached)].astype(float)
        labels = labels_low = labels_high = None
        if len(reached):
            labels, labels_low, labels_high = t_interval(reached, confidence, bounds=(0.0, None))
        if len(reached) < n:
            notes.append(f"{n - len(reached)} of {n} run(s) never reached the target: censored, "
                         f"left out of the labels mean" + (" (which is optimistic)" if len(reached) else ""))

        efficiency = eff_low = eff_high = None
        key = sub["key"].iloc[0]
        base = frame[frame["key"].map(lambda k, mine=key.settings: k.is_baseline and k.settings == mine)]
        base = _per_seed(base) if len(base) else base
        if key.is_baseline:
            notes.append("random is the baseline (efficiency 1 by definition)")
            ratios = [1.0] * len(reached) if len(reached) >= 2 else []
        else:
            ratios = _efficiency_ratios(runs, base, notes)
        if len(ratios) >= 2:
            efficiency, eff_low, eff_high = geometric_mean_interval(ratios, resamples=resamples, seed=seed,
                                                                    confidence=confidence)
            if len(ratios) < 5:
                notes.append(f"efficiency interval from {len(ratios)} seeds: rough")
        elif not key.is_baseline and not base.empty and any(s in base.index for s in runs.index):
            notes.append(f"efficiency needs at least 2 seeds where both this group and random reached "
                         f"the target; {len(ratios)} did")
        rows.append({"group": group, "seeds": n, "aulc_mean": aulc, "aulc_low": aulc_low, "aulc_high": aulc_high,
                     "reached_target": f"{len(reached)}/{n}", "labels_mean": labels,
                     "labels_low": labels_low, "labels_high": labels_high, "efficiency": efficiency,
                     "efficiency_low": eff_low, "efficiency_high": eff_high, "efficiency_seeds": len(ratios),
                     "note": "; ".join(notes)})
    out = pd.DataFrame(rows, columns=GROUP_COLUMNS)
    numeric = [c for c in GROUP_COLUMNS if c not in ("group", "reached_target", "note")]
    out[numeric] = out[numeric].astype(float)  # None -> NaN, so tables format them as numbers
    out["seeds"] = out["seeds"].astype(int)
    out["efficiency_seeds"] = out["efficiency_seeds"].astype(int)
    return out


# -------------------------------------------------------------------- pairwise

def _wilcoxon(diff: np.ndarray) -> tuple[float, str]:
    """Two-sided Wilcoxon signed-rank p-value of paired differences, and how it was computed."""
    from scipy import stats

    if np.all(diff == 0):
        return 1.0, "all equal"
    nonzero = diff[diff != 0]
    ties = len(np.unique(np.abs(nonzero))) < len(nonzero) or len(nonzero) < len(diff)
    # scipy's "auto": exact null distribution for n <= 50 without ties or zeros; with them, an
    # exhaustive permutation for n <= 13; otherwise the normal approximation
    if not ties and len(diff) <= 50:
        method = "exact"
    elif ties and len(diff) <= 13:
        method = "permutation"
    else:
        method = "normal approx."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.wilcoxon(diff, method="auto").pvalue)
    return p, method


def _ttest(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    """Paired t-test p-value; None where it is undefined (under 2 pairs, or every difference equal)."""
    from scipy import stats

    diff = a - b
    if len(diff) < 2 or np.all(diff == diff[0]):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_rel(a, b).pvalue)
    return None if math.isnan(p) else p


def _direction(diff: np.ndarray) -> float:
    """Sign of the Wilcoxon statistic: rank sum of positive minus negative differences."""
    from scipy.stats import rankdata

    nonzero = diff[diff != 0]
    if not len(nonzero):
        return 0.0
    ranks = rankdata(np.abs(nonzero))
    return float(ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum())


def pairwise_tests(frame: pd.DataFrame, *, alpha: float = ALPHA) -> tuple[pd.DataFrame, list[str]]:
    """Paired tests on AULC between every two groups with the same non-strategy settings
    and at least one shared seed. Returns (table, notes).

    The table has a row for each *ordered* pair (row, column): ``n_seeds`` paired seeds,
    ``mean_diff`` (row minus column AULC, mean over the pairs), ``win_fraction`` (share of the
    seeds where row's AULC is higher), two-sided ``wilcoxon_p`` (scipy.stats.wilcoxon, exact
    for small tie-free samples) and ``t_p`` (scipy.stats.ttest_rel), ``holm_p`` (the Wilcoxon
    p-value after Holm correction over the unordered pairs tested) and ``verdict``: "better" /
    "worse" where ``holm_p`` < ``alpha``, else "not separable". The verdict follows the
    Wilcoxon test, which assumes nothing about the shape of the differences; the t-test is
    shown beside it. Pairs with fewer than 2 paired seeds are listed but not tested."""
    empty = pd.DataFrame(columns=PAIR_COLUMNS)
    notes: list[str] = []
    if frame is None or len(frame) == 0:
        return empty, ["No runs: nothing to compare."]
    groups = sorted(frame["group"].unique())
    if len(groups) < 2:
        return empty, [f"Only one group ({groups[0]}): pairwise tests need two strategies."]
    per_group = {g: _per_seed(frame[frame["group"] == g]) for g in groups}
    keys = keys_by_group(frame)
    tested = []  # (a, b, diff-array, a-values, b-values)
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            if keys[a].settings != keys[b].settings:
                continue
            shared = sorted(set(per_group[a].index) & set(per_group[b].index))
            if not shared:
                notes.append(f"{a} and {b} share no seed: not compared (paired tests pair runs by seed).")
                continue
            x = per_group[a].loc[shared, "aulc"].to_numpy(dtype=float)
            y = per_group[b].loc[shared, "aulc"].to_numpy(dtype=float)
            tested.append((a, b, x, y))
    if not tested:
        if not notes:
            notes.append("No two groups have the same settings (dataset, model, batch size, pool): "
                         "nothing to pair.")
        return empty, notes

    results = []
    for a, b, x, y in tested:
        diff = x - y
        if len(diff) >= 2:
            p_w, method = _wilcoxon(diff)
        else:
            p_w, method = None, "not run"
        results.append({"a": a, "b": b, "n": len(diff), "diff": diff, "p_w": p_w, "method": method,
                        "p_t": _ttest(x, y)})
    testable = [r for r in results if r["p_w"] is not None]
    for r, adj in zip(testable, holm([r["p_w"] for r in testable])):
        r["holm"] = float(adj)
    rows = []
    for r in results:
        holm_p = r.get("holm")
        direction = _direction(r["diff"])
        if holm_p is not None and holm_p < alpha and direction != 0:
            verdicts = ("better", "worse") if direction > 0 else ("worse", "better")
        else:
            verdicts = ("not separable", "not separable")
        note = "" if r["p_w"] is not None else "fewer than 2 paired seeds: not tested"
        for (row, col, sign, verdict) in ((r["a"], r["b"], 1, verdicts[0]), (r["b"], r["a"], -1, verdicts[1])):
            d = sign * r["diff"]
            rows.append({"row": row, "column": col, "n_seeds": r["n"], "mean_diff": float(d.mean()),
                         "win_fraction": float((d > 0).mean()), "wilcoxon_p": r["p_w"],
                         "wilcoxon_method": r["method"], "t_p": r["p_t"], "holm_p": holm_p,
                         "verdict": verdict, "note": note})
    table = pd.DataFrame(rows, columns=PAIR_COLUMNS).sort_values(["row", "column"], ignore_index=True)
    numeric = ["mean_diff", "win_fraction", "wilcoxon_p", "t_p", "holm_p"]
    table[numeric] = table[numeric].astype(float)  # None -> NaN
    table.attrs["comparisons"] = len(testable)
    table.attrs["alpha"] = alpha
    return table, notes


def seed_warnings(pairs: pd.DataFrame, *, alpha: float = ALPHA) -> list[str]:
    """A plain sentence for each pair whose seeds are too few for any verdict but "not
    separable", whatever the data: the exact Wilcoxon test's smallest p-value with n pairs
    is 2 / 2**n, and after Holm correction over m pairs the smallest adjusted p-value is at
    least m times the smallest p-value of all the pairs."""
    if pairs is None or len(pairs) == 0:
        return []
    once = pairs[pairs["row"] < pairs["column"]]
    m = int(pairs.attrs.get("comparisons", (once["wilcoxon_p"].notna()).sum()))
    n_max = int(once["n_seeds"].max())
    out = []
    for _, r in once.iterrows():
        n = int(r["n_seeds"])
        head = f"{r['row']} vs {r['column']}: {n} paired seed{'s' if n != 1 else ''}"
        if min_wilcoxon_p(n) >= alpha:
            t_part = (" (the paired t-test has 1 degree of freedom)" if n == 2 else
                      " (no paired t-test is possible)" if n < 2 else "")
            out.append(f"{head}; a Wilcoxon test cannot reach p < {alpha:g} with fewer than "
                       f"{seeds_needed(alpha)}, so these two cannot be told apart yet{t_part}.")
        elif m > 1 and max(min_wilcoxon_p(n), m * min_wilcoxon_p(n_max)) >= alpha:
            out.append(f"{head}; after Holm correction over {m} comparisons a Wilcoxon test cannot reach "
                       f"p < {alpha:g} with fewer than {seeds_needed(alpha, m)}, so these two cannot be "
                       f"told apart yet.")
    return out


def seed_statistics(frame: pd.DataFrame, *, alpha: float = ALPHA, confidence: float = CONFIDENCE,
                    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> SeedStatistics:
    """Group intervals, pairwise tests and seed warnings of a :func:`~alcore.analysis.metrics.metrics_frame`."""
    groups = group_intervals(frame, confidence=confidence, resamples=resamples, seed=seed)
    pairs, notes = pairwise_tests(frame, alpha=alpha)
    if frame is not None and len(frame) == 1:
        notes.insert(0, "One run only: intervals and tests need several seeds.")
    if frame is not None and len(frame) and not frame["key"].map(lambda k: k.is_baseline).any():
        notes.append("No random run: labelling efficiency against random cannot be computed.")
    return SeedStatistics(groups=groups, pairs=pairs, warnings=seed_warnings(pairs, alpha=alpha), notes=notes)


# ---------------------------------------------------------------- one setting swept

SETTING_COLUMNS = ["value", "seeds", "aulc_mean", "aulc_low", "aulc_high", "reached_target",
                   "labels_mean", "labels_low", "labels_high", "final_accuracy_mean"]


@dataclass
class SettingEffect:
    """What :func:`setting_effect` returns.

    ``runs``: one row per run (``value``, ``seed``, ``aulc``, ``labels_to_target``,
    ``final_accuracy``, ``final_labels``). ``summary``: one row per value of the setting, with
    t intervals over seeds (labels to target over the runs that reached it, as in
    :func:`group_intervals`). ``friedman_p``: do the values differ at all in AULC (Friedman
    test, seeds as blocks); ``page_p``: does AULC rise steadily with the value (Page's trend
    test, one-sided; ``page_falls_p`` for falling). Tests use only seeds run at every value
    (``blocks`` of them) and are None with fewer than 2 blocks or 3 values. ``notes``: why."""

    field: str
    runs: pd.DataFrame
    summary: pd.DataFrame
    blocks: int = 0
    friedman_p: Optional[float] = None
    page_p: Optional[float] = None
    page_falls_p: Optional[float] = None
    notes: list[str] = field(default_factory=list)


# Config fields whose effect can be plotted against their value (numbers users sweep).
SWEPT_SETTINGS = ("hybrid_fraction", "batch_size", "initial", "candidates", "mc_passes", "pool_size",
                  "learning_rate", "dropout", "max_epochs", "filters", "margin_cluster_factor", "l2",
                  "weight_decay", "min_steps", "max_steps", "kernel_size", "augment_shift", "augment_rotation",
                  "augment_zoom")


def swept_settings(results) -> list[str]:
    """The numeric config fields (of :data:`SWEPT_SETTINGS`) that take at least 3 values among
    ``results`` while every run has the same strategy otherwise (a hybrid fraction only means
    something among hybrid runs)."""
    if not results:
        return []
    out = []
    for name in SWEPT_SETTINGS:
        values = {getattr(r.config, name) for r in results}
        if None in values or len(values) < 3:
            continue
        readers = fields_used_by(name)  # a strategy's own setting only means something among its runs
        if readers and any(r.config.strategy not in readers for r in results):
            continue
        out.append(name)
    return out


def setting_effect(results, setting: str, target: float, *, confidence: float = CONFIDENCE) -> SettingEffect:
    """AULC and labels to ``target`` against the value of one config field ``setting``
    (e.g. ``hybrid_fraction``): per value, the mean over seeds with a t interval, and tests of
    whether the values differ (Friedman) or AULC rises or falls with the value (Page), paired
    by seed: within a seed every value starts from the same labels and weights."""
    from scipy import stats as sst

    from alcore.analysis.metrics import metrics_frame

    if setting not in SWEPT_SETTINGS:
        raise ValueError(f"{setting!r} is not a setting whose effect can be plotted; "
                         f"choose one of {', '.join(SWEPT_SETTINGS)}")
    frame = metrics_frame(results, target)
    runs = pd.DataFrame({"value": [float(getattr(r.config, setting)) for r in results],
                         "seed": frame["seed"].astype(int), "aulc": frame["aulc"].astype(float),
                         "labels_to_target": frame["labels_to_target"],
                         "final_accuracy": frame["final_accuracy"].astype(float),
                         "final_labels": frame["final_labels"].astype(int)})
    notes = []
    repeated = runs.duplicated(["value", "seed"])
    if repeated.any():
        notes.append(f"{int(repeated.sum())} run(s) repeat a value and seed; the first of each is used")
        runs = runs[~repeated].reset_index(drop=True)
    rows = []
    for value, sub in runs.groupby("value", sort=True):
        aulc, lo, hi = t_interval(sub["aulc"], confidence, bounds=(0.0, 1.0))
        reached = sub["labels_to_target"][sub["labels_to_target"].map(_reached)].astype(float)
        labels = l_lo = l_hi = None
        if len(reached):
            labels, l_lo, l_hi = t_interval(reached, confidence, bounds=(0.0, None))
        rows.append({"value": value, "seeds": len(sub), "aulc_mean": aulc, "aulc_low": lo, "aulc_high": hi,
                     "reached_target": f"{len(reached)}/{len(sub)}", "labels_mean": labels,
                     "labels_low": l_lo, "labels_high": l_hi, "final_accuracy_mean": sub["final_accuracy"].mean()})
    summary = pd.DataFrame(rows, columns=SETTING_COLUMNS)
    numeric = [c for c in SETTING_COLUMNS if c != "reached_target"]
    summary[numeric] = summary[numeric].astype(float)
    summary["seeds"] = summary["seeds"].astype(int)
    if (summary["reached_target"].map(lambda s: s.split("/")[0] != s.split("/")[1])).any():
        notes.append("Runs that never reached the target are censored: left out of the labels mean (which is "
                     "then optimistic) and drawn at the top of the plot.")

    table = runs.pivot(index="seed", columns="value", values="aulc").dropna()  # seeds run at every value
    effect = SettingEffect(field=setting, runs=runs, summary=summary, blocks=len(table), notes=notes)
    if table.shape[1] < 3:
        notes.append("Tests across values need at least 3 values.")
    elif len(table) < 2:
        notes.append("Tests across values need at least 2 seeds run at every value.")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = table.to_numpy()
            if np.ptp(data, axis=1).max() == 0:
                effect.friedman_p, effect.page_p, effect.page_falls_p = 1.0, 1.0, 1.0
            else:
                effect.friedman_p = float(sst.friedmanchisquare(*data.T).pvalue)
                effect.page_p = float(sst.page_trend_test(data).pvalue)
                effect.page_falls_p = float(sst.page_trend_test(data[:, ::-1]).pvalue)
        if len(table) < len(runs["seed"].unique()):
            notes.append(f"Tests use the {len(table)} seeds run at every value.")
    return effect


def aggregate_curves(frame: pd.DataFrame, band: str = "ci95") -> pd.DataFrame:
    """Mean accuracy per group and label count across runs, with a band.

    ``band``: "ci95" is the 95% confidence interval of the mean (Student t over
    the runs at that point), "std" is +- one standard deviation, "minmax" the range;
    clipped to [0, 1], where accuracies lie."""
    out = []
    for (group, n), sub in frame.groupby(["group", "n_labeled"], sort=True):
        a = sub["test_accuracy"].to_numpy(dtype=float)
        mean = a.mean()
        if len(a) < 2:
            low = high = mean
        elif band == "std":
            low, high = mean - a.std(ddof=1), mean + a.std(ddof=1)
        elif band == "minmax":
            low, high = a.min(), a.max()
        elif band == "ci95":
            _, low, high = t_interval(a, 0.95)
        else:
            raise ValueError(f"unknown band {band!r}; choose ci95, std or minmax")
        # an accuracy lies in [0, 1]: with two or three seeds the t band is wide, and unclipped it
        # stretched the axis to -200%..200% and flattened every curve
        out.append({"group": group, "n_labeled": n, "mean": mean, "low": max(low, 0.0), "high": min(high, 1.0),
                    "runs": len(a)})
    return pd.DataFrame(out, columns=["group", "n_labeled", "mean", "low", "high", "runs"])


# ------------------------------------------------------------ accuracy at a budget

BUDGET_COLUMNS = ["group", "versus", "n_labeled", "n_seeds", "mean", "versus_mean", "mean_diff", "win_fraction",
                  "wilcoxon_p", "wilcoxon_method", "t_p", "holm_p", "verdict"]


def tests_at_budgets(curves: pd.DataFrame, budgets: Sequence[int], versus: str, *,
                     alpha: float = ALPHA) -> pd.DataFrame:
    """Paired tests of test accuracy at given label counts: every group of a
    :func:`~alcore.analysis.groups.curve_frame` against the group ``versus`` (e.g. random) with
    the same settings, at each of ``budgets`` where both ran, paired by seed. The same tests as
    :func:`pairwise_tests` on AULC (two-sided Wilcoxon signed-rank, paired t beside it), Holm-
    corrected over every (group, budget) comparison in the table; ``verdict`` "better" / "worse"
    where ``holm_p`` < ``alpha``, else "not separable". One row per comparison; empty where
    ``versus`` is not among the groups."""
    if curves is None or not len(curves) or versus not in set(curves["group"]):
        return pd.DataFrame(columns=BUDGET_COLUMNS)
    keys = keys_by_group(curves)

    def at(group, n):
        sub = curves[(curves["group"] == group) & (curves["n_labeled"] == n)]
        return sub.drop_duplicates("seed", keep="first").set_index("seed")["test_accuracy"].astype(float)

    rows = []
    for group, _ in in_natural_order(curves):
        if group == versus or keys[group].settings != keys[versus].settings:
            continue
        for n in budgets:
            mine, theirs = at(group, n), at(versus, n)
            shared = sorted(set(mine.index) & set(theirs.index))
            if not shared:
                continue
            x, y = mine.loc[shared].to_numpy(), theirs.loc[shared].to_numpy()
            diff = x - y
            p_w, method = _wilcoxon(diff) if len(diff) >= 2 else (None, "not run")
            rows.append({"group": group, "versus": versus, "n_labeled": int(n), "n_seeds": len(diff),
                         "mean": float(x.mean()), "versus_mean": float(y.mean()), "mean_diff": float(diff.mean()),
                         "win_fraction": float((diff > 0).mean()), "wilcoxon_p": p_w, "wilcoxon_method": method,
                         "t_p": _ttest(x, y), "holm_p": None, "verdict": "not separable", "_direction": _direction(diff)})
    tested = [r for r in rows if r["wilcoxon_p"] is not None]
    for r, adjusted in zip(tested, holm([r["wilcoxon_p"] for r in tested])):
        r["holm_p"] = float(adjusted)
        if adjusted < alpha and r["_direction"] != 0:
            r["verdict"] = "better" if r["_direction"] > 0 else "worse"
    table = pd.DataFrame(rows, columns=BUDGET_COLUMNS)
    numeric = ["mean", "versus_mean", "mean_diff", "win_fraction", "wilcoxon_p", "t_p", "holm_p"]
    table[numeric] = table[numeric].astype(float)
    table.attrs["comparisons"] = len(tested)
    return table
