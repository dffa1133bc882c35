"""alcore.analysis.pitfalls: each rule on both sides of its threshold, in the words a user reads."""
import pandas as pd
import pytest
from scipy.stats import binomtest

from alcore import ExperimentConfig
from alcore.results.records import GroupKey
from alcore.analysis.pitfalls import (MIN_ROUNDS, accuracy_interval, batch_pitfalls, half_width,
                             model_selection, not_better_than_random, setup_pitfalls, stops_on_test_data,
                             images_needed, tiny_test_set)


def rules(pitfalls):
    return [p.rule for p in pitfalls]


# ----------------------------------------------------------------- tiny test set

@pytest.mark.parametrize("k, n", [(9, 10), (45, 50), (126, 140), (90, 100), (100, 100), (0, 20)])
def test_the_interval_is_wilsons(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert accuracy_interval(k / n, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_a_test_set_is_tiny_where_an_accuracy_on_it_is_not_known_to_5_points():
    # at 90% (the accuracy assumed when none is known): +-5.02 points on 140 images, +-4.998 on 141
    assert half_width(0.9, 140) > 0.05 >= half_width(0.9, 141)
    assert images_needed(0.9) == 141
    assert tiny_test_set(141) is None
    tiny = tiny_test_set(140, test_size=140)
    assert tiny.rule == "tiny_test_set"
    assert "140 images" in tiny.message and "from 83.9% to 93.9%" in tiny.message and "±5.0 points" in tiny.message
    assert "Set test_size to at least 141" in tiny.fix


def test_the_accuracy_near_the_current_one_decides():
    assert images_needed(0.5) == 381 and images_needed(0.99) < 141
    assert tiny_test_set(360, 0.5) is not None  # digits' 360 test images early in a run, near 50%
    assert tiny_test_set(360, 0.97) is None  # ... and at its end
    whole_split = tiny_test_set(100, 0.5, test_size=None)
    assert "at least 381" in whole_split.fix


@pytest.mark.parametrize("dataset, says", [
    ("images", "put at least 381 images in it (one folder per class inside); otherwise 20% of the images are "
               "held out: set test_size to at least 381 on the Dataset page, or upload more images"),
    ("npz", "If your .npz has x_test and y_test, give them at least 381 images; otherwise 20% of x_train is held "
            "out: set test_size to at least 381"),
    ("idx", "If your folder has test files (t10k-*), give them at least 381 images"),
    ("digits", "20% of the images are held out for testing: set test_size to at least 381 on the Dataset page"),
    ("mnist", "This is the dataset's whole test split; no setting makes it larger"),
])
def test_the_fix_for_a_tiny_test_set_says_where_more_test_images_come_from(dataset, says):
    """Issue 16: an uploaded .zip of images was told to hold out 'x_test, y_test', the .npz's words."""
    fix = tiny_test_set(100, 0.5, dataset=dataset).fix
    assert fix.startswith("For ±5 points at 50%, test on at least 381 images. ") and says in fix
    assert dataset in ("npz",) or "x_test" not in fix


# ----------------------------------------------------------- test data and stopping

def test_only_stopping_on_test_accuracy_is_said_never_validation():
    for validation in ("split", "fixed", "none"):
        assert stops_on_test_data(ExperimentConfig(validation=validation)) == []
    target = stops_on_test_data(ExperimentConfig(target_accuracy=0.9))
    assert rules(target) == ["stops_on_test_accuracy"]
    assert "90.0%" in target[0].message and "never see the test set" in target[0].message
    assert "label_budget" in target[0].fix and "uncertainty_threshold" in target[0].fix
    both = stops_on_test_data(ExperimentConfig(target_accuracy=0.9, plateau_rounds=3))
    assert rules(both) == ["stops_on_test_accuracy", "stops_on_test_plateau"]


def test_trying_two_settings_of_a_strategy_is_model_selection():
    one = ExperimentConfig()
    same = [one.replace(seed=s, strategy=st) for s in range(3) for st in ("margin", "random")]
    assert model_selection(same) is None  # seeds and strategies are what a race compares
    assert model_selection(same + [one.replace(rounds=5, target_accuracy=0.9)]) is None  # stopping only
    assert model_selection(same + [one.replace(mc_passes=20)]) is None  # a setting margin does not use
    assert model_selection(same + [one.replace(seed=9, dataset="mnist", learning_rate=0.01)]) is None  # other data
    tuned = model_selection(same + [one.replace(learning_rate=0.01)])
    assert tuned.rule == "model_selection" and "2 settings of margin" in tuned.message
    assert "learning_rate (0.003 / 0.01)" in tuned.message and "development split" in tuned.fix
    swept = model_selection([one.replace(strategy="hybrid", hybrid_fraction=f) for f in (0.0, 0.5, 1.0)])
    assert "3 settings of hybrid" in swept.message and "hybrid_fraction" in swept.message


# ------------------------------------------------------------ batch, budget and pool

def test_acquisition_rounds_are_bounded_by_rounds_budget_and_pool():
    assert ExperimentConfig().acquisition_rounds() == 39
    assert ExperimentConfig(rounds=None, label_budget=55).acquisition_rounds() == 5  # 45 labels: 4 full + 1 part
    assert ExperimentConfig(validation="fixed", validation_size=20, rounds=None,
                            label_budget=70).acquisition_rounds() == 4  # 30 first
    assert ExperimentConfig().acquisition_rounds(n_pool=60) == 5
    assert ExperimentConfig(rounds=None, target_accuracy=0.9).acquisition_rounds() is None


@pytest.mark.parametrize("cfg, n_pool, few", [
    (ExperimentConfig(rounds=MIN_ROUNDS - 1), 1000, True),
    (ExperimentConfig(rounds=MIN_ROUNDS), 1000, False),
    (ExperimentConfig(rounds=None, label_budget=50), 1000, True),  # 40 labels in batches of 10
    (ExperimentConfig(rounds=None, label_budget=51), 1000, False),  # a fifth, partial batch
    (ExperimentConfig(), 50, True),  # 40 free images
    (ExperimentConfig(), 51, False),
    (ExperimentConfig(rounds=0), None, True),
])
def test_too_few_rounds_at_the_edge(cfg, n_pool, few):
    assert ("few_rounds" in rules(batch_pitfalls(cfg, n_pool))) == few


def test_few_rounds_say_why_and_the_fix():
    (p,) = [p for p in batch_pitfalls(ExperimentConfig(rounds=None, label_budget=50)) if p.rule == "few_rounds"]
    assert "Only 4 acquisition rounds" in p.message and "12% of the AULC" in p.message
    assert "label budget of 50" in p.message and "batches of at most 8" in p.fix
    (p,) = [p for p in batch_pitfalls(ExperimentConfig(rounds=2)) if p.rule == "few_rounds"]
    assert "Set rounds to at least 5" in p.fix
    (p,) = [p for p in batch_pitfalls(ExperimentConfig(batch_size=45), 100) if p.rule == "few_rounds"]
    assert "pool of 100 images runs out after 2 batches" in p.message and "at most 18" in p.fix
    (p,) = batch_pitfalls(ExperimentConfig(rounds=0), None)
    assert "nothing is picked" in p.message


@pytest.mark.parametrize("cfg, n_pool, share", [
    (ExperimentConfig(batch_size=50, rounds=1), 110, True),  # 50 of 100 free images
    (ExperimentConfig(batch_size=49, rounds=1), 110, False),
    (ExperimentConfig(batch_size=50, candidates=100), 10_000, True),
    (ExperimentConfig(batch_size=49, candidates=100), 10_000, False),
    (ExperimentConfig(batch_size=50, candidates=100), None, True),  # the pool not known yet
    (ExperimentConfig(batch_size=50, candidates=500), 110, True),  # fewer free images than candidates
])
def test_a_batch_of_half_the_scored_images_at_the_edge(cfg, n_pool, share):
    pitfalls = batch_pitfalls(cfg, n_pool)
    assert ("batch_comparable_to_pool" in rules(pitfalls)) == share
    if share:
        assert "50%" in next(p.message for p in pitfalls if p.rule == "batch_comparable_to_pool")


@pytest.mark.parametrize("cfg, n_pool, whole", [
    (ExperimentConfig(), 400, True),  # 10 + 39 x 10 labels: the whole pool
    (ExperimentConfig(), 401, False),
    (ExperimentConfig(rounds=None, target_accuracy=0.9), 10_000, True),  # only the target stops it
    (ExperimentConfig(rounds=None, target_accuracy=0.9, label_budget=9_999), 10_000, False),
    (ExperimentConfig(), None, False),  # pool not known
])
def test_a_run_that_can_label_the_whole_pool_at_the_edge(cfg, n_pool, whole):
    assert ("labels_whole_pool" in rules(batch_pitfalls(cfg, n_pool))) == whole


def test_the_defaults_on_digits_are_fine():
    assert setup_pitfalls(ExperimentConfig(), n_pool=1438, n_test=360) == []


# --------------------------------------------------------------- against random

def frame(diffs, strategy="margin", settings=""):
    """A metrics frame of a strategy and random on len(diffs) seeds; diffs: strategy AULC minus random's."""
    setting = (("dataset", settings),) if settings else ()
    base, key = GroupKey("random", "random", setting), GroupKey(strategy, strategy, setting)
    rows = []
    for seed, d in enumerate(diffs):
        rows.append({"group": base.label, "key": base, "strategy": "random", "seed": seed,
                     "aulc": 0.70 + 0.01 * seed, "labels_to_target": None})
        rows.append({"group": key.label, "key": key, "strategy": strategy, "seed": seed,
                     "aulc": 0.70 + 0.01 * seed + d, "labels_to_target": None})
    return pd.DataFrame(rows)


def test_five_winning_seeds_cannot_be_significant_six_can():
    # the exact Wilcoxon test's smallest two-sided p with n pairs is 2 / 2**n: 0.0625 for 5, 0.03125 for 6
    five = not_better_than_random(frame([0.01 * (i + 1) for i in range(5)]))
    assert rules(five) == ["too_few_seeds"]
    assert "higher on 5 of 5" in five[0].message and "with 5 seeds no test can reach p < 0.05" in five[0].message
    assert five[0].fix == "Run at least 6 seeds per strategy before calling it better than random."
    assert five[0].groups == ("margin", "random")
    assert not_better_than_random(frame([0.01 * (i + 1) for i in range(6)])) == []


def test_one_seed_and_a_significant_loss_and_a_small_gain():
    (one,) = not_better_than_random(frame([0.05]))
    assert one.rule == "too_few_seeds" and "over its one seed" in one.message and "with one seed no test is possible" in one.message
    (worse,) = not_better_than_random(frame([-0.01 * (i + 1) for i in range(6)]))
    assert worse.rule == "worse_than_random" and "lower on 6 of 6" in worse.message
    (small,) = not_better_than_random(frame([0.01, -0.01, 0.02, -0.015, 0.003, -0.002, 0.001, 0.004]))
    assert small.rule == "not_better_than_random" and "higher on 5 of 8" in small.message and "Wilcoxon p = " in small.message
    assert "small next to the differences between seeds" in small.fix


def test_only_random_of_the_same_settings_is_the_baseline():
    assert not_better_than_random(frame([0.01, 0.02]).query("strategy != 'random'")) == []  # no random run
    mixed = pd.concat([frame([0.01] * 3, settings="batch 10"),
                       frame([0.01] * 3, strategy="entropy", settings="batch 20").query("strategy != 'random'")])
    assert [p.groups for p in not_better_than_random(mixed)] == [("margin · batch 10", "random · batch 10")]


def test_on_a_real_three_seed_race(three_seed_results):
    from alcore.analysis.metrics import metrics_frame

    (p,) = not_better_than_random(metrics_frame(three_seed_results, 0.8))
    assert p.groups == ("margin", "random") and "3 paired seeds" in p.message
    assert "Run at least 6 seeds" in p.fix


# ----------------------------------------------------------------- unstable curves

def test_a_run_whose_curve_drops_is_named_with_its_seed():
    from alcore.analysis.pitfalls import unstable_curves

    frame = pd.DataFrame({"group": ["margin", "margin", "margin", "random"], "seed": [0, 1, 2, 0],
                          "drops": [0, 2, 1, 0]})
    warned = unstable_curves(frame)
    assert rules(warned) == ["unstable_curve"] and warned[0].groups == ("margin",)
    assert "2 of 3 runs" in warned[0].message and "(seed 1: 2 rounds, seed 2: 1 round)" in warned[0].message
    assert "seed 0" not in warned[0].message
    assert "more than 5 points" in warned[0].message and "after 50 labels" in warned[0].message
    assert unstable_curves(frame.assign(drops=0)) == [] and unstable_curves(None) == []


def test_the_warning_follows_the_metric_at_its_threshold():
    from alcore.analysis.metrics import curve_drops
    from alcore.analysis.pitfalls import unstable_curves

    def frame(a):
        return pd.DataFrame({"group": ["margin"], "seed": [0], "drops": [curve_drops([40, 50, 60, 70], a)]})

    assert unstable_curves(frame([0.5, 0.6, 0.55, 0.56])) == []  # 5 points exactly: not a drop
    assert rules(unstable_curves(frame([0.5, 0.6, 0.549, 0.56]))) == ["unstable_curve"]
    assert unstable_curves(frame([0.7, 0.5, 0.6, 0.7])) == []  # before 50 labels: not counted
