import pytest

from alcore import Experiment, ExperimentConfig
from alcore.engine.autolabel import auto_label


def test_auto_labelling_reports_its_own_accuracy_and_effect(digits, cache):
    exp = Experiment(ExperimentConfig(rounds=39), dataset=digits, cache=cache)
    rounds = list(exp)
    report = auto_label(exp, per_step=100, steps=3)
    first, last = report.steps[0], report.steps[-1]
    # step 0 is the run's last model again: same labels, same seed stream, same accuracy
    assert first.n_pseudo == 0 and first.test_accuracy == rounds[-1].test_accuracy
    assert [s.n_pseudo for s in report.steps] == [0, 100, 200, 300]
    assert all(s.n_real == 400 for s in report.steps)
    # a 96%-accurate model is right about the images it is surest of, and they help a little
    assert last.pseudo_accuracy >= 0.98 and report.steps[1].min_confidence > 0.9
    assert report.gain == pytest.approx(last.test_accuracy - first.test_accuracy) and report.gain >= 0
    # the run itself is untouched: the same images are still unlabeled
    assert exp.n_labeled == 400 and len(exp.rounds) == 40


def test_confidence_floor_and_bad_arguments(digits, cache):
    exp = Experiment(ExperimentConfig(rounds=1, max_epochs=5), dataset=digits, cache=cache)
    with pytest.raises(ValueError, match="at least one active-learning round"):
        auto_label(exp, 10, 2)
    list(exp)
    report = auto_label(exp, per_step=50, steps=3, min_confidence=0.999999)
    assert "confidence >= 0.999999" in report.stop_reason and len(report.steps) < 4
    with pytest.raises(ValueError, match="min_confidence"):
        auto_label(exp, 10, 2, min_confidence=1.0)
    with pytest.raises(ValueError, match="at least 1"):
        auto_label(exp, 0, 2)
