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
