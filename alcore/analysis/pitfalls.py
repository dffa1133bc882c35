"""Pitfalls of an active-learning experiment, said in plain words with the fix.

Each rule is a pure function of a setup (an ExperimentConfig and the sizes of its pool and
test set) or of results (a :func:`alcore.analysis.metrics.metrics_frame`); it returns
:class:`Pitfall` records, or nothing when the setup is fine. No Streamlit here: the pages
show them where the setting can be changed, and a test or notebook can call them.

The rules and their thresholds:

- :func:`tiny_test_set`: the 95% Wilson interval of an accuracy near the current one, on this
  many test images, is wider than +-TEST_HALF_WIDTH (5 points). Active learning's gains over
  random are typically a few points (2.9 points at 400 MNIST labels in the README), so a test
  set noisier than that cannot show them in a single accuracy.
- :func:`stops_on_test_data`: ``target_accuracy`` and ``plateau_rounds`` stop the run on *test*
  accuracy. Training and early stopping never see the test set (early stopping watches a
  validation split of the labels, alcore.engine.loop.Experiment._split), so this is only about when
  the run ends.
- :func:`model_selection`: runs that try several settings of one strategy on one dataset;
  choosing among them by their test curves is model selection on the test set.
- :func:`batch_pitfalls`: fewer than MIN_ROUNDS (5) acquisition rounds fit in the rounds /
  label budget / pool (every strategy shares the first point, 1/(2R) of the AULC with R
  rounds: over 10% below 5 rounds); a batch of MAX_BATCH_SHARE (half) or more of the images
  scored (a random batch then shares at least that share of its images with any strategy's,
  on average); a run that can label the whole pool (every strategy then ends on the same
  labels).
- :func:`unstable_curves`: a run whose test accuracy falls more than DROP_POINTS (5 points) from one
  round to the next after DROP_AFTER_LABELS (50) labels (alcore.analysis.metrics.curve_drops).
- :func:`not_better_than_random`: a strategy whose AULC is not significantly higher than the
  random run's of the same seeds and settings (the paired Wilcoxon test of
  :func:`alcore.analysis.stats.pairwise_tests`, Holm-corrected, at ALPHA), with the seeds it would take.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Optional, Sequence

from alcore.config import FIXED_SPLIT_DATASETS, ExperimentConfig
from alcore.strategies.base import STRATEGIES

CONFIDENCE = 0.95
TEST_HALF_WIDTH = 0.05  # +-5 accuracy points: wider than the gains active learning usually brings
TYPICAL_ACCURACY = 0.9  # the accuracy the test set's noise is judged at where none is known yet
MIN_ROUNDS = 5  # below this the shared first point is over 10% of the AULC (1 / (2 R))
MAX_BATCH_SHARE = 0.5  # a batch of half the scored images or more: at least half of it as random's
# Settings that end a run rather than shape it: runs that differ only in these are not
# "several settings tried" (model selection).
STOPPING = ("rounds", "label_budget", "target_accuracy", "plateau_rounds", "plateau_delta",
            "uncertainty_threshold", "changed_threshold")
NOT_SETTINGS = ("seed", "strategy", "data_dir", "data_file", "inspect_k") + STOPPING
# Settings that only matter to some strategies: each field to the strategies that read it
# (from the registry: each strategy declares its config_fields).
STRATEGY_SETTINGS = {field: tuple(n for n, c in STRATEGIES.items() if field in c.config_fields)
                     for field in dict.fromkeys(f for c in STRATEGIES.values() for f in c.config_fields)}


@dataclass(frozen=True)
class Pitfall:
    """One warning: ``rule`` (a stable name), ``message`` (what is wrong, with its numbers),
    ``fix`` (what to change). ``groups``: the result groups it is about, where it is about
    results (a strategy's group and its random baseline's)."""

    rule: str
    message: str
    fix: str
    groups: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.message} Fix: {self.fix}"


# ------------------------------------------------------------------- the test set

def accuracy_interval(accuracy: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of an accuracy measured on ``n`` test images:
    (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), z the normal quantile.
    Unlike p -+ z sqrt(p(1-p)/n) it stays within [0, 1] and is not zero-width at p = 1
    (Wilson 1927; Brown, Cai & DasGupta 2001 recommend it for small n)."""
    if n < 1:
        raise ValueError(f"a test set needs at least 1 image, got {n}")
    p = min(max(float(accuracy), 0.0), 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def half_width(accuracy: float, n: int, confidence: float = CONFIDENCE) -> float:
    low, high = accuracy_interval(accuracy, n, confidence)
    return (high - low) / 2


def images_needed(accuracy: float, limit: float = TEST_HALF_WIDTH, confidence: float = CONFIDENCE) -> int:
    """The fewest test images for which the interval at ``accuracy`` is within +-``limit`` (the
    half-width shrinks as the test set grows: double, then bisect)."""
    low, high = 0, 1
    while half_width(accuracy, high, confidence) > limit:
        low, high = high, high * 2
    while high - low > 1:  # half_width(low) > limit >= half_width(high), or low = 0
        mid = (low + high) // 2
        if half_width(accuracy, mid, confidence) > limit:
            low = mid
        else:
            high = mid
    return high


def _more_test_images(dataset: Optional[str], need: int) -> str:
    """Where more test images come from, in the words of the data's own format."""
    hold_out = f"set test_size to at least {need:,} on the Dataset page"
    if dataset == "images":
        return (f"If your .zip has a test folder, put at least {need:,} images in it (one folder per class "
                f"inside); otherwise 20% of the images are held out: {hold_out}, or upload more images.")
    if dataset == "npz":
        return (f"If your .npz has x_test and y_test, give them at least {need:,} images; otherwise 20% of "
                f"x_train is held out: {hold_out}.")
    if dataset == "idx":
        return (f"If your folder has test files (t10k-*), give them at least {need:,} images; otherwise 20% "
                f"of the training images are held out: {hold_out}.")
    if dataset in FIXED_SPLIT_DATASETS:
        return "This is the dataset's whole test split; no setting makes it larger."
    return f"20% of the images are held out for testing: {hold_out}."


def tiny_test_set(n_test: int, accuracy: Optional[float] = None, *, test_size: Optional[int] = None,
                  limit: float = TEST_HALF_WIDTH, dataset: Optional[str] = None) -> Optional[Pitfall]:
    """A warning when an accuracy near ``accuracy`` (TYPICAL_ACCURACY where None), measured on
    ``n_test`` images, has a 95% interval wider than +-``limit``. ``test_size``: the config's
    (None: the dataset's whole test split, or the 20% held out of one without a split);
    ``dataset``: the config's, so that the fix says where more test images come from."""
    p = TYPICAL_ACCURACY if accuracy is None else float(accuracy)
    half = half_width(p, n_test)
    if half <= limit:
        return None
    low, high = accuracy_interval(p, n_test)
    need = images_needed(p, limit)
    message = (f"The test set is tiny: {n_test:,} images. An accuracy of {p:.0%} measured on it could really be "
               f"anywhere from {low:.1%} to {high:.1%} (95% interval), so each point of the curves, and the labels "
               f"to a target read off them, carry about ±{half * 100:.1f} points of test-set noise. Strategies "
               f"are scored on the same images, which makes their difference less noisy than that, but not "
               f"their level.")
    if test_size is not None:
        fix = (f"Set test_size to at least {need:,} (±{limit * 100:.0f} points at {p:.0%}) on the Dataset page, "
               f"or 0 for the whole test split.")
    else:
        fix = (f"For ±{limit * 100:.0f} points at {p:.0%}, test on at least {need:,} images. "
               + _more_test_images(dataset, need))
    return Pitfall("tiny_test_set", message, fix)


def stops_on_test_data(config: ExperimentConfig) -> list[Pitfall]:
    """Where the test set decides something beyond the reported accuracy: ``target_accuracy``
    and ``plateau_rounds`` end the run on test accuracy. (Training never sees the test set, and
    neither does early stopping: it watches validation labels, or nothing with validation
    'none'; so no setting of validation is a pitfall here.)"""
    out = []
    real = ("A real labelling campaign has no test labels to stop on, so read the stopping round as a best "
            "case. Training and early stopping never see the test set (early stopping watches "
            "validation labels), so the accuracies themselves are fair.")
    fix = ("To stop the way a real campaign could, use a label budget (label_budget) or a label-free signal "
           "(uncertainty_threshold, changed_threshold) instead.")
    if config.target_accuracy is not None:
        out.append(Pitfall("stops_on_test_accuracy",
                           f"The run stops once test accuracy reaches {config.target_accuracy:.1%} "
                           f"(target_accuracy): the test set decides when the run ends. That is fine for "
                           f"measuring labels to a target in a simulation. " + real, fix))
    if config.plateau_rounds is not None:
        out.append(Pitfall("stops_on_test_plateau",
                           f"The run stops when test accuracy has changed by less than {config.plateau_delta:g} "
                           f"for {config.plateau_rounds} rounds (plateau_rounds): the test set decides when the "
                           f"run ends. " + real, fix))
    return out


def _setting_names(config: ExperimentConfig) -> list[str]:
    names = []
    for name in ExperimentConfig.model_fields:
        if name in NOT_SETTINGS or name == "dataset":
            continue
        if name in STRATEGY_SETTINGS and config.strategy not in STRATEGY_SETTINGS[name]:
            continue
        names.append(name)
    return names


def model_selection(configs: Sequence[ExperimentConfig]) -> Optional[Pitfall]:
    """A note when the runs try two or more settings of one strategy on one dataset (seeds and
    stopping settings aside): picking the best of them by their test curves is model selection
    on the test set, and the winner's test accuracy is then optimistic."""
    by_strategy: dict[tuple, dict] = {}
    for c in configs:
        names = _setting_names(c)
        setup = tuple((n, getattr(c, n)) for n in names)
        by_strategy.setdefault((c.dataset, c.strategy), {})[setup] = c
    worst = max(by_strategy.items(), key=lambda kv: len(kv[1]), default=None)
    if worst is None or len(worst[1]) < 2:
        return None
    (dataset, strategy), setups = worst
    tried = list(setups.values())
    varied = [n for n in _setting_names(tried[0])
              if len({getattr(c, n) for c in tried}) > 1]
    shown = ", ".join(f"{n} ({' / '.join(str(v) for v in sorted({getattr(c, n) for c in tried}, key=str))})"
                      for n in varied[:4])
    return Pitfall(
        "model_selection",
        f"These runs try {len(tried)} settings of {strategy} on {dataset}, varying {shown}, all scored on "
        f"the same test set. Comparing them is what the curves are for; but picking the best by these test "
        f"curves is model selection on the test set, and the winner's test accuracy then overstates what it "
        f"would get on new images (the more settings tried, the more).",
        "Choose settings on data the test set never sees (a development split of the training data, as "
        "bench/tune_defaults.py does), or confirm the chosen setting on new seeds and a different test subset "
        "(test_size with another seed) before quoting its accuracy.")


# ------------------------------------------------------------ batch, budget, pool

def batch_pitfalls(config: ExperimentConfig, n_pool: Optional[int] = None) -> list[Pitfall]:
    """Where the batch is so large against the rounds, the label budget or the pool that the
    strategies have little or no room to pick differently from random (see the module notes)."""
    out = []
    first = config.first_round_labels()
    free = None if n_pool is None else max(0, n_pool - first)
    rounds = config.acquisition_rounds(n_pool)
    b = config.batch_size
    pool_ends_it = False
    if rounds is not None and rounds < MIN_ROUNDS:
        without_pool = config.acquisition_rounds()
        if config.rounds is not None and config.rounds == rounds:
            why, fix = (f"rounds is {rounds}",
                        f"Set rounds to at least {MIN_ROUNDS}, with smaller batches (batch_size) for the same labels.")
        elif config.label_budget is not None and without_pool == rounds:
            room = max(0, config.label_budget - first)
            most = room // MIN_ROUNDS
            why = f"the label budget of {config.label_budget} leaves room for {room} labels in batches of {b}"
            fix = (f"Use batches of at most {most} (batch_size) so the budget allows {MIN_ROUNDS} rounds."
                   if most >= 1 else f"Raise label_budget to at least {first + MIN_ROUNDS}.")
        else:
            pool_ends_it = True
            most = (free or 0) // MIN_ROUNDS
            why = f"the pool of {n_pool:,} images runs out after {rounds} batch{'es' if rounds != 1 else ''} of {b}"
            fix = (f"Use batches of at most {most} (batch_size), or a larger pool (pool_size)."
                   if most >= 1 else "Use a larger pool (pool_size).")
        if rounds == 0:
            message = (f"No acquisition round fits ({why}): nothing is picked, so every strategy gives the same "
                       f"single point.")
        else:
            message = (f"Only {rounds} acquisition round{'s' if rounds != 1 else ''} fit{'s' if rounds == 1 else ''} "
                       f"({why}). Every strategy starts from the same {first} labels, so the curves share their "
                       f"first point, and with {rounds} round{'s' if rounds != 1 else ''} that point alone is "
                       f"{1 / (2 * rounds):.0%} of the AULC; each strategy chooses only {rounds} time"
                       f"{'s' if rounds != 1 else ''}, and with models trained on few labels. Active learning has "
                       f"little room to differ from random here.")
        out.append(Pitfall("few_rounds", message, fix))

    scored = None
    if config.candidates is not None:
        scored = config.candidates if free is None else min(config.candidates, free)
    elif free is not None:
        scored = free
    if scored and rounds != 0 and b / scored >= MAX_BATCH_SHARE:
        share = min(1.0, b / scored)
        what = "candidates scored each round" if config.candidates is not None and scored == config.candidates \
            else "unlabeled pool images"
        out.append(Pitfall(
            "batch_comparable_to_pool",
            f"Each batch of {b} takes {share:.0%} of the {scored:,} {what}: a random batch of that size already "
            f"shares {share:.0%} of its images with any strategy's batch on average, so the strategies can differ "
            f"only in the rest (and not at all where a batch takes every image scored).",
            "Use smaller batches (batch_size), or give the strategies more to choose from "
            + ("(candidates, or a larger pool_size)." if config.candidates is not None else "(a larger pool_size).")))

    if n_pool is not None and free and rounds and not pool_ends_it:  # else said above
        most = config.max_labels()  # rounds and label budget, validation labels included
        if most is None or most >= n_pool:
            out.append(Pitfall(
                "labels_whole_pool",
                f"This run can go on until all {n_pool:,} pool images are labeled"
                + (" (nothing but a target or a stopping signal ends it sooner)" if most is None else "")
                + ": there every strategy has the same labels, so the ends of the curves meet and cannot tell the "
                  "strategies apart.",
                f"Set a label budget (label_budget) or rounds well below the pool, e.g. {max(first + 1, n_pool // 4):,} "
                f"labels."))
    return out


# --------------------------------------------------------------- against random

def not_better_than_random(frame, pairs=None, *, alpha: Optional[float] = None) -> list[Pitfall]:
    """One warning per strategy whose AULC is not significantly higher than random's, paired by
    seed within the same settings (rule "worse_than_random", "too_few_seeds" where no test could
    tell with the seeds run, else "not_better_than_random") (``frame``: :func:`alcore.analysis.metrics.metrics_frame`; ``pairs``:
    :func:`alcore.analysis.stats.pairwise_tests`' table of it, computed here when None). "Significantly":
    the Holm-corrected Wilcoxon p-value below ``alpha`` (alcore.analysis.stats.ALPHA, 0.05) with the
    strategy ahead. The fix says how many seeds a verdict would take where the seeds run are too
    few for any test to reach ``alpha``."""
    import pandas as pd

    from alcore.analysis.groups import keys_by_group
    from alcore.analysis.stats import ALPHA, pairwise_tests, seeds_needed

    alpha = ALPHA if alpha is None else alpha
    if frame is None or len(frame) == 0 or not frame["key"].map(lambda k: k.is_baseline).any():
        return []
    if pairs is None:
        pairs, _ = pairwise_tests(frame, alpha=alpha)
    if pairs is None or len(pairs) == 0:
        return []
    m = max(1, int(pairs.attrs.get("comparisons", 1)))
    keys = keys_by_group(frame)
    randoms = {key.settings: group for group, key in keys.items() if key.is_baseline}
    out = []
    for group in sorted(g for g, key in keys.items() if not key.is_baseline):
        base = randoms.get(keys[group].settings)
        if base is None:
            continue
        rows = pairs[(pairs["row"] == group) & (pairs["column"] == base)]
        if rows.empty:
            continue
        r = rows.iloc[0]
        n, verdict = int(r["n_seeds"]), r["verdict"]
        if verdict == "better":
            continue
        wins = int(round(float(r["win_fraction"]) * n))
        diff = float(r["mean_diff"])
        holm_p = r["holm_p"]
        p_text = f" (Wilcoxon p = {holm_p:.3g} after Holm correction)" if pd.notna(holm_p) else ""
        over = "its one seed" if n == 1 else f"{n} paired seeds"
        if verdict == "worse":
            out.append(Pitfall(
                "worse_than_random",
                f"{group} did significantly worse than {base} over {over}: its AULC is {-diff:.3f} lower on "
                f"average and lower on {n - wins} of {n}{p_text}.",
                f"On this setup random picking is the better choice: try another strategy or other settings "
                f"before using {group}.", (group, base)))
            continue
        need = seeds_needed(alpha, m)
        if n < need:
            why = ("with one seed no test is possible" if n < 2 else
                   f"with {n} seeds no test can reach p < {alpha:g}"
                   + (f" after Holm correction over {m} comparisons" if m > 1 else ""))
            out.append(Pitfall(
                "too_few_seeds",
                f"{group} is not significantly better than {base} over {over}: its AULC is {diff:+.3f} on average "
                f"and higher on {wins} of {n}, but {why}.",
                f"Run at least {need} seeds per strategy before calling it better than random.", (group, base)))
        else:
            out.append(Pitfall(
                "not_better_than_random",
                f"{group} is not significantly better than {base} over {over}: its AULC is {diff:+.3f} on average "
                f"and higher on {wins} of {n}{p_text}.",
                "Its gain, if any, is small next to the differences between seeds: more seeds would tell, but on "
                "this setup do not count on it beating random.", (group, base)))
    return out


def unstable_curves(frame) -> list[Pitfall]:
    """One warning per group with curve drops (``frame``: :func:`alcore.analysis.metrics.metrics_frame`):
    rounds after the first DROP_AFTER_LABELS labels whose test accuracy fell more than DROP_POINTS
    below the previous round's. Ten more labels do not cost 5 points of accuracy: such a drop is
    the learner (training stopped at a bad point, too few steps, a tiny validation split), and
    differences between strategies of a few points are then noise."""
    from alcore.analysis.metrics import DROP_AFTER_LABELS, DROP_POINTS

    if frame is None or len(frame) == 0 or "drops" not in frame:
        return []
    out = []
    for group, sub in frame.groupby("group", sort=True):
        bad = sub[sub["drops"] > 0]
        if bad.empty:
            continue
        runs = ", ".join(f"seed {int(r.seed)}: {int(r.drops)} round{'s' if r.drops > 1 else ''}"
                         for r in bad.itertuples())
        out.append(Pitfall(
            "unstable_curve",
            f"{group}: the curve of {len(bad)} of {len(sub)} run{'s' if len(sub) > 1 else ''} dropped more than "
            f"{DROP_POINTS * 100:g} points from one round to the next after {DROP_AFTER_LABELS} labels "
            f"({runs}). Strategy differences of a few points are then the learner's noise.",
            "Train the same way every round: softmax fits to convergence and never drops this way; for mlp / cnn "
            "use validation 'none' (a fixed training schedule) instead of early stopping on a few labels.",
            (group,)))
    return out


def setup_pitfalls(config: ExperimentConfig, n_pool: Optional[int] = None, n_test: Optional[int] = None,
                   accuracy: Optional[float] = None) -> list[Pitfall]:
    """Every rule that needs only a setup: the test set's size (where ``n_test`` is known), test
    data deciding when the run stops, and the batch against the rounds, budget and pool."""
    out = []
    if n_test is not None:
        tiny = tiny_test_set(n_test, accuracy, test_size=config.test_size, dataset=config.dataset)
        if tiny:
            out.append(tiny)
    out += stops_on_test_data(config)
    out += batch_pitfalls(config, n_pool)
    return out
