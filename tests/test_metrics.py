import pytest

from alcore.analysis.metrics import accuracy_at, final_accuracy, labels_to_target, normalized_aulc


def test_aulc_is_mean_accuracy_over_the_budget():
    assert normalized_aulc([10, 20, 30], [0.5, 0.5, 0.5]) == pytest.approx(0.5)
    # linear rise from 0.2 to 0.8: area = 0.5
    assert normalized_aulc([0, 100], [0.2, 0.8]) == pytest.approx(0.5)
    # uneven spacing is weighted by labels, not by points
    assert normalized_aulc([0, 10, 100], [0.0, 1.0, 1.0]) == pytest.approx((5 + 90) / 100)
    assert normalized_aulc([10], [0.7]) == pytest.approx(0.7)


def test_labels_to_target_and_final():
    n, a = [10, 20, 30, 40], [0.5, 0.91, 0.89, 0.95]
    assert labels_to_target(n, a, 0.9) == 20
    assert labels_to_target(n, a, 0.95) == 40
    assert labels_to_target(n, a, 0.99) is None
    assert final_accuracy(n, a) == 0.95
    assert accuracy_at(n, a, 30) == 0.89 and accuracy_at(n, a, 35) is None


@pytest.mark.parametrize("n, a, words", [
    ([], [], "empty"), ([1, 2], [0.5], "one length"), ([20, 10], [0.5, 0.6], "decrease")])
def test_bad_curves(n, a, words):
    with pytest.raises(ValueError, match=words):
        normalized_aulc(n, a)


def test_a_drop_is_a_round_past_50_labels_that_loses_more_than_5_points():
    from alcore.analysis.metrics import curve_drops

    n = [10, 20, 30, 40, 50, 60, 70, 80]
    # a 9-point fall at 40 labels (too early to count), an exact 5-point fall at 60 (not more),
    # a 5.1-point fall at 70 and a 12-point fall at 80
    a = [0.30, 0.50, 0.60, 0.51, 0.60, 0.55, 0.489, 0.369]
    assert curve_drops(n, a) == 2
    assert curve_drops(n, a, points=0.10) == 1
    assert curve_drops(n, a, after=30) == 3
    assert curve_drops([10, 60], [0.9, 0.2]) == 1 and curve_drops([60], [0.5]) == 0
    rising = [0.1 * i for i in range(8)]
    assert curve_drops(n, rising) == 0


def test_the_metrics_tables_count_drops_per_run_and_group(three_seed_results):
    from alcore.analysis.metrics import curve_drops, group_metrics, metrics_frame, summarize

    frame = metrics_frame(three_seed_results, 0.8)
    assert list(frame["drops"]) == [curve_drops(*r.curve()) for r in three_seed_results]
    groups = group_metrics(frame)
    assert groups["drops"].sum() == frame["drops"].sum()
    assert summarize(three_seed_results[0])["drops"] == frame["drops"].iloc[0]
