"""Race stepping, figure builders and metric tables on real runs."""
import numpy as np
import pytest

from alcore import ExperimentConfig
from alcore.analysis.groups import curve_frame, group_labels
from alcore.analysis.stats import aggregate_curves
from alcore.figures import (stopping_signals_figure, class_balance_figure, confusion_figure,
                            gallery, label_distribution_figure, learning_curve_figure)
from alcore.analysis.metrics import group_metrics, metrics_frame
from alcore.engine.race import Race, expected_rounds


@pytest.fixture(scope="module")
def race(digits, cache):
    base = ExperimentConfig(rounds=4, max_epochs=20)
    race = Race(base, ["margin", "random"], [0, 1], dataset_for=lambda cfg: digits, cache=cache)
    steps = 0
    while race.step() is not None:
        steps += 1
        if steps == 3:
            # round-robin: the first rounds of several runs come before any second round
            assert sorted(len(e.rounds) for e in race.experiments) == [0, 1, 1, 1]
    assert steps == 4 * 5 and race.done
    return race


def test_race_progress_and_rows(race):
    p = race.progress()
    assert p.rounds_done == p.rounds_total == 20 and p.fraction == 1.0 and p.seconds_left == 0
    rows = race.curve_rows()
    assert len(rows) == 20 and {r["strategy"] for r in rows} == {"margin", "random"}
    # paired design: within a seed both strategies start from the same labels
    by = {(e.config.strategy, e.config.seed): e for e in race.experiments}
    for seed in (0, 1):
        assert list(by["margin", seed].initial_indices) == list(by["random", seed].initial_indices)
        assert by["margin", seed].rounds[0].test_accuracy == by["random", seed].rounds[0].test_accuracy


def test_expected_rounds():
    assert expected_rounds(ExperimentConfig(rounds=5)) == 6
    assert expected_rounds(ExperimentConfig(rounds=None, label_budget=55, initial=10, batch_size=10)) == 6
    assert expected_rounds(ExperimentConfig(rounds=None, target_accuracy=0.9)) is None


def test_race_refuses_empty_choices(digits):
    with pytest.raises(ValueError, match="at least one strategy"):
        Race(ExperimentConfig(), [], [0], dataset_for=lambda c: digits)
    with pytest.raises(ValueError, match="at least one seed"):
        Race(ExperimentConfig(), ["margin"], [], dataset_for=lambda c: digits)


def test_learning_curves_mean_and_band(race):
    results = race.results()
    frame = curve_frame(results)
    assert set(frame["group"]) == {"margin", "random"} and len(frame) == 20
    agg = aggregate_curves(frame, "ci95")
    first = agg[(agg["group"] == "margin") & (agg["n_labeled"] == 20)].iloc[0]
    vals = frame[(frame["group"] == "margin") & (frame["n_labeled"] == 20)]["test_accuracy"]
    assert first["mean"] == pytest.approx(vals.mean()) and first["runs"] == 2
    assert first["low"] <= first["mean"] <= first["high"]
    fig = learning_curve_figure(frame, aggregate=True, target=0.8)
    names = [t.name for t in fig.data]
    assert "margin (mean of 2)" in names and "random (mean of 2)" in names
    assert sum(t.fill == "toself" for t in fig.data) == 2
    # a band is an area: Plotly's default mode for under 20 points would draw its corners as dots
    assert all(t.mode == "lines" for t in fig.data if t.fill == "toself")
    assert fig.layout.uirevision == "curves"
    single = learning_curve_figure(frame, aggregate=False)
    assert len(single.data) == 4 and all(len(t.x) == 5 for t in single.data)
    # the dotted line says which accuracy it is: Run draws the Model page's every-label reference there,
    # not the target of 'labels to target' (issue 18: three different "targets")
    assert fig.layout.annotations[0].text == "target 80%"
    ref = learning_curve_figure(frame, target=0.97, target_name="with every pool label (Model page)")
    assert ref.layout.annotations[0].text == "with every pool label (Model page) 97%"


def test_bands_stay_within_possible_accuracies():
    import pandas as pd

    # two seeds far apart: the t interval (12.7 x the standard error) would reach -250%..+330%
    frame = pd.DataFrame({"group": ["margin"] * 2, "n_labeled": [20, 20], "test_accuracy": [0.1, 0.95]})
    for band in ("ci95", "std", "minmax"):
        row = aggregate_curves(frame, band).iloc[0]
        assert 0.0 <= row["low"] <= row["mean"] <= row["high"] <= 1.0, band
    assert aggregate_curves(frame, "ci95").iloc[0][["low", "high"]].tolist() == [0.0, 1.0]


def test_metrics_tables(race):
    results = race.results()
    frame = metrics_frame(results, target=0.3)
    assert len(frame) == 4
    rnd = frame[frame["strategy"] == "random"]
    assert (rnd["labels_saved_vs_random"].dropna() == 0).all()
    summary = group_metrics(frame)
    assert list(summary["group"]) == ["margin", "random"] and (summary["runs"] == 2).all()


def test_group_labels_separate_unlike_runs(race):
    results = race.results()
    other = results[0].model_copy(update={"config": results[0].config.replace(batch_size=20)})
    labels = group_labels([results[0], other])
    assert labels[0] != labels[1] and "batch 20" in labels[1]


def test_small_figures(digits):
    f = label_distribution_figure(digits.y_pool, digits.class_names)
    assert f.data[0].type == "bar" and f.data[1].type == "pie" and sum(f.data[0].y) == len(digits.y_pool)
    assert "label" in f.data[1].textinfo  # the pie has no legend: its slices name the classes (issue 18)
    many = label_distribution_figure(np.arange(40) % 20, [f"class {i}" for i in range(20)])
    assert many.data[1].textinfo == "percent" and "%{label}" in many.data[1].hovertemplate
    c = confusion_figure(np.eye(3, dtype=int) * 5, ["a", "b", "c"])
    assert c.data[0].type == "heatmap" and c.data[0].z[0][0] == 1.0
    b = class_balance_figure({"margin": np.array([1, 2, 3])}, ["a", "b", "c"])
    assert list(b.data[0].y) == [1, 2, 3]


def test_gallery_captions(race, digits):
    r = race.experiments[0].rounds[-1]
    images, captions = gallery(digits.display_images(digits.x_pool[[m.index for m in r.most_confident]]),
                               r.most_confident, digits.class_names)
    assert len(images) == len(captions) == len(r.most_confident)
    assert captions[0].startswith(f"#{r.most_confident[0].index}: ")


def test_stopping_signals_figure(race):
    res = race.results()[0]
    fig = stopping_signals_figure(res)
    assert [t.name for t in fig.data] == ["test accuracy", "uncertainty", "changed", "accuracy change"]
    assert list(fig.data[0].y) == [r.test_accuracy for r in res.rounds]
    assert fig.data[2].y[0] is None and fig.data[2].y[1] == res.rounds[1].pool.changed_fraction
    # every accuracy panel in % (issue 18: the change since last round was drawn as a fraction)
    assert [fig.layout[f"yaxis{i}"].tickformat for i in ("", 3, 4)] == [".0%", ".0%", "+.1%"]
    assert "%{y:+.2%}" in fig.data[3].hovertemplate


def test_runs_that_differ_in_any_setting_are_never_averaged_together(three_seed_results):
    """A group is the strategy plus every setting that differs (here the activation), not only
    dataset, model, batch size and pool; seeds, data folders and gallery sizes do not split."""
    from alcore.analysis.groups import group_labels

    margin = [r for r in three_seed_results if r.config.strategy == "margin"]
    sigmoid = margin[0].model_copy(update={"config": margin[0].config.replace(activation="sigmoid")})
    moved = margin[1].model_copy(update={"config": margin[1].config.replace(data_dir="/elsewhere", inspect_k=3)})
    assert group_labels([margin[0], sigmoid, moved]) == [
        "margin · activation=relu", "margin · activation=sigmoid", "margin · activation=relu"]
    assert group_labels(margin) == ["margin"] * 3
