"""UHerding's temperature calibrated each round, as the paper's reference code does it
(BorealisAI/uherding, deep-al/tools/train_al.py with --temp_scale and
pycls/calibration/temperature_scaling.py): the ECE and the temperature search as pure functions,
then the real loop on scikit-learn digits with the convex softmax: the held-out model, the
reasons it is skipped, that the round's own model is what the strategy reads, the result file,
continuing a run and stopping one part way."""
from __future__ import annotations

import json

import numpy as np
import pytest

from alcore.config import ExperimentConfig
from alcore.data.datasets import load_dataset
from alcore.engine import cancel
from alcore.engine.loop import Experiment
from alcore.engine.race import Race
from alcore.results.records import RoundResult, load_result, to_json
from alcore.strategies.base import Need, make_strategy
from alcore.strategies.coverage import (TEMPERATURES, UHerdingStrategy, calibrated_temperature,
                                        expected_calibration_error, tempered)

CFG = ExperimentConfig(strategy="uherding", uherding_temperature=None, initial=2, rounds=6)  # digits, softmax, batches of 10; calibrated


@pytest.fixture(scope="module")
def digits():
    return load_dataset(CFG)


@pytest.fixture(scope="module")
def calibrated(digits):
    exp = Experiment(CFG, dataset=digits)
    list(exp.run())
    return exp


def picks(exp) -> list[list[int]]:
    return [r.selected for r in exp.rounds]


# ------------------------------------------------------------------- the pure functions

def test_ece_by_hand():
    # 3 classes -> 3 bins (0, 1/3], (1/3, 2/3], (2/3, 1]
    p = np.array([[0.5, 0.3, 0.2],     # conf 0.5, right   (bin 2)
                  [0.4, 0.35, 0.25],   # conf 0.4, wrong   (bin 2)
                  [0.9, 0.05, 0.05],   # conf 0.9, right   (bin 3)
                  [0.8, 0.1, 0.1]])    # conf 0.8, wrong   (bin 3)
    y = np.array([0, 1, 0, 2])
    # bin 2: |0.45 - 0.5| x 2/4; bin 3: |0.85 - 0.5| x 2/4
    assert expected_calibration_error(p, y) == pytest.approx(0.025 + 0.175)


def test_ece_bins_hold_their_upper_edge():
    # conf 0.5 lies in (0, 0.5], not with 0.7 in (0.5, 1]: |0.5 - 1| / 2 + |0.7 - 0| / 2 = 0.6 (together: 0.1)
    p = np.array([[0.5, 0.5], [0.7, 0.3]])
    assert expected_calibration_error(p, np.array([0, 1])) == pytest.approx(0.6)
    assert expected_calibration_error(p, np.array([0, 1]), n_bins=1) == pytest.approx(0.1)


def reference_ece(probs, labels):
    """The reference code's ECELoss (pycls/calibration/metrics.py), transcribed to numpy."""
    n_bins = probs.shape[1]
    edges = np.linspace(0, 1, n_bins + 1)
    conf, pred = probs.max(1), probs.argmax(1)
    acc = pred == labels
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.mean() > 0:
            ece += abs(conf[in_bin].mean() - acc[in_bin].mean()) * in_bin.mean()
    return ece


@pytest.mark.parametrize("seed", range(5))
def test_ece_is_the_reference_codes(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))
    z = rng.standard_normal((50, k)) * rng.uniform(0.1, 5)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    p[:5] = np.eye(k)[rng.integers(0, k, 5)]  # confidence exactly 1: the last bin
    y = rng.integers(0, k, 50)
    assert expected_calibration_error(p, y) == pytest.approx(reference_ece(p, y), abs=1e-12)


def test_over_confident_logits_get_a_temperature_above_one():
    rng = np.random.default_rng(0)
    m, k = 400, 10
    y = rng.integers(0, k, m)
    logits = rng.standard_normal((m, k))
    right = rng.random(m) < 0.6  # 60% right, each with a large logit gap: confident near 1
    top = np.where(right, y, (y + 1) % k)
    logits[np.arange(m), top] += 8.0
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    t, ece = calibrated_temperature(p, y)
    assert t > 1.5
    assert ece < expected_calibration_error(p, y) - 0.1
    brute = [expected_calibration_error(tempered(p, s), y) for s in TEMPERATURES]
    assert ece == pytest.approx(min(brute)) and t == TEMPERATURES[int(np.argmin(brute))]


def test_under_confident_probabilities_keep_one():
    p = np.array([[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.3, 0.3, 0.4]])  # all right, conf 0.4
    t, ece = calibrated_temperature(p, np.array([0, 1, 2]))
    assert t == 1.0 and ece == pytest.approx(0.6)


def test_ties_choose_the_smallest_temperature():
    p = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # certain: every temperature gives the same ECE
    t, _ = calibrated_temperature(p, np.array([0, 1, 1]))
    assert t == 1.0
    t, _ = calibrated_temperature(p, np.array([0, 1, 1]), temperatures=[2.5, 3.0, 4.0])
    assert t == 2.5


def test_the_grid_is_the_reference_codes():
    np.testing.assert_allclose(TEMPERATURES, np.arange(1.0, 20, 0.1), atol=1e-12)
    assert TEMPERATURES[2] == 1.2  # without np.arange's 1.2000000000000002


@pytest.mark.parametrize("value, error", [(0.0, "uherding_temperature must be a number > 0"),
                                          (float("nan"), "uherding_temperature must be a number > 0")])
def test_a_bad_temperature_is_refused_by_name(value, error):
    with pytest.raises(ValueError, match=error):
        UHerdingStrategy(temperature=value)


def test_only_an_empty_temperature_needs_held_out_labels():
    assert Need.HELD_OUT in make_strategy("uherding", ExperimentConfig(strategy="uherding",
                                                                       uherding_temperature=None)).needs
    assert Need.HELD_OUT not in make_strategy("uherding", ExperimentConfig(strategy="uherding")).needs  # T = 1


# ----------------------------------------------------------------------------- the loop

def test_each_round_records_its_calibrated_temperature_and_why(calibrated):
    rounds = [r for r in calibrated.rounds if r.selected]
    assert all(r.uherding_temperature is not None and r.uherding_calibration is not None for r in rounds)
    first = rounds[0].uherding_calibration  # 2 labels: int(0.3 x 2) = 0 held out
    assert rounds[0].uherding_temperature == 1.0 and "leave none to hold out" in first.skipped
    for r in rounds[1:]:
        c = r.uherding_calibration
        n = r.n_labeled
        assert (c.held_out, c.n_train) == (int(0.3 * n), n - int(0.3 * n)) and not c.skipped
        assert c.ece <= c.ece_at_1 and r.uherding_temperature in TEMPERATURES
    assert any(r.uherding_temperature > 1 for r in rounds)  # on this seed a round calibrates above 1


def test_the_held_out_model_is_trained_on_the_first_70_percent_and_scores_the_rest(calibrated, digits):
    exp = Experiment(CFG, dataset=digits)
    exp.step()  # 2 + 10 labels: 9 to train on, 3 held out
    held = exp._held_out(len(exp.rounds))
    lab = exp.labeled_indices
    assert (held.n_train, len(held.labels)) == (9, 3)
    np.testing.assert_array_equal(held.labels, digits.y_pool[lab[-3:]])
    from alcore.engine.softmax import SoftmaxLearner

    alone = SoftmaxLearner(64, 10, CFG.penalty_c)
    first = np.sort(lab[:9])  # the loop fits on its labels sorted by pool index
    alone.fit(digits.inputs_pool[first], digits.y_pool[first])
    np.testing.assert_allclose(held.probs, alone.predict_proba(digits.inputs_pool[lab[-3:]]), atol=1e-6)


def test_the_strategy_reads_the_rounds_own_model(calibrated, digits):
    """A run with the temperature set to the one calibrated in a round picks what the calibrated run
    picked there (continued from the calibrated run's file up to that round), and the trainer holds the
    round's model afterwards; the temperature matters: at T = 1 that round picks otherwise."""
    r = next(i for i, x in enumerate(calibrated.rounds) if x.selected and x.uherding_temperature > 1)
    t = calibrated.rounds[r].uherding_temperature
    saved = calibrated.result().model_dump(mode="json")
    saved.update(status="stopped", rounds=saved["rounds"][:r])

    def pick_with(config):
        data = {**saved, "config": config.model_dump(mode="json")}
        exp = Experiment.resume(load_result(json.dumps(data).encode()), dataset=digits)
        return exp, exp.step()

    fixed, rnd = pick_with(CFG.replace(uherding_temperature=t))
    assert rnd.selected == calibrated.rounds[r].selected
    assert rnd.uherding_temperature == t and rnd.uherding_calibration is None
    _, at_one = pick_with(CFG.replace(uherding_temperature=1.0))
    assert at_one.selected != calibrated.rounds[r].selected

    again = Experiment.resume(load_result(json.dumps(saved).encode()), dataset=digits)
    again.step()  # calibrated: the held-out model is trained after the round's probabilities are read
    cand, probs = again.last_scored
    np.testing.assert_allclose(again.trainer.predict_proba(digits.inputs_pool[cand]), probs)


def test_one_class_in_the_first_70_percent_keeps_one_and_says_so(digits):
    cfg = CFG.replace(initial=10, rounds=1)
    exp = Experiment(cfg, dataset=digits)
    exp = Experiment(cfg, dataset=digits, given={int(i): 3 for i in exp.initial_indices})  # a person says 3
    r = exp.step()
    assert r.uherding_temperature == 1.0
    assert r.uherding_calibration.skipped == "the first 7 labels hold one class only"


def test_a_continued_run_picks_what_an_uninterrupted_one_does(calibrated, digits):
    exp = Experiment(CFG, dataset=digits)
    list(exp.run(max_rounds=3))
    resumed = Experiment.resume(load_result(to_json(exp.result()).encode()), dataset=digits)
    list(resumed.run())
    assert picks(resumed) == picks(calibrated)
    assert [r.uherding_temperature for r in resumed.rounds] == [r.uherding_temperature for r in calibrated.rounds]


def test_a_round_stopped_during_the_calibration_is_dropped_whole(calibrated, digits):
    exp = Experiment(CFG, dataset=digits)
    exp.step()
    exp.step()
    calls = []

    def stop_in_the_held_out_fit():
        calls.append(1)
        if len(calls) == 2:  # the round's own fit is the first, the held-out model's the second
            raise cancel.Cancelled("stopped")

    with cancel.stop_when(stop_in_the_held_out_fit), pytest.raises(cancel.Cancelled):
        exp.step()
    assert len(exp.rounds) == 2
    list(exp.run())
    assert picks(exp) == picks(calibrated)


def test_old_files_load_and_mean_what_they_meant(calibrated):
    data = calibrated.result().model_dump(mode="json")
    for r in data["rounds"]:  # a file written before the temperature was recorded
        r.pop("uherding_temperature", None)
        r.pop("uherding_calibration", None)
    data["config"]["uherding_temperature"] = 1.0  # the old default, written out
    old = load_result(json.dumps(data).encode())
    assert old.config.uherding_temperature == 1.0 and old.rounds[0].uherding_temperature is None
    assert make_strategy("uherding", old.config).temperature == 1.0
    again = load_result(to_json(calibrated.result()).encode())
    assert again.rounds[1].uherding_calibration == calibrated.rounds[1].uherding_calibration
    another = RoundResult(**{k: v for k, v in dict(calibrated.rounds[1]).items()  # another strategy's round
                             if k not in ("uherding_temperature", "uherding_calibration")})
    assert not {"uherding_temperature", "uherding_calibration"} & set(another.model_dump(mode="json"))


def test_the_race_reports_each_runs_temperatures(digits):
    race = Race(CFG.replace(rounds=3), ["uherding", "margin"], [0], dataset_for=lambda c: digits)
    while race.step() is not None:
        pass
    temps = race.uherding_temperatures()
    assert [c.strategy for c, _ in temps] == ["uherding"] and len(temps[0][1]) == 3


def test_a_warm_started_mlp_keeps_the_rounds_model_and_starts_the_calibration_fresh(digits):
    """Keras: after each round the trainer holds the round's model and the warm start its weights (not the
    held-out model's); the held-out model starts from the seed's initial weights, not the warm ones."""
    from alcore.engine.training import TrainerCache

    cfg = CFG.replace(model="mlp", hidden_units=[16], max_epochs=5, warm_start=True, initial=10, rounds=2)
    exp = Experiment(cfg, dataset=digits, cache=TrainerCache(max_entries=2))
    for _ in range(2):
        r = exp.step()
        assert r.uherding_calibration is not None and not r.uherding_calibration.skipped
        cand, probs = exp.last_scored
        np.testing.assert_array_equal(exp.trainer.predict_proba(digits.inputs_pool[cand]), probs)
        for w, k in zip(exp._warm, exp.trainer.get_weights()):
            np.testing.assert_array_equal(w, k)
    warm = exp._warm
    held = exp._held_out(len(exp.rounds))
    cold = Experiment(cfg.replace(warm_start=False), dataset=digits, cache=TrainerCache(max_entries=2))
    cold._labeled = list(exp._labeled)  # the same labels, no warm weights anywhere
    np.testing.assert_allclose(cold._held_out(len(exp.rounds)).probs, held.probs, atol=1e-6)
    assert exp._warm is warm


def test_the_servers_step_cap_counts_the_calibrations_second_training():
    """A calibrated uherding round with a deep model trains twice: the cap must count both."""
    from alcore.serve.limits import DeploymentLimits

    mlp = CFG.replace(model="mlp", initial=10, rounds=39)  # 400 labels: 50 epochs of 13 batches = 650 steps
    limits = DeploymentLimits(max_steps_per_round=1000)
    problems = limits.run_problems(mlp, ["uherding", "random"], 1)
    assert any("calibrated temperature trains 2 models" in p and "1,300" in p for p in problems)
    assert not limits.run_problems(mlp.replace(uherding_temperature=1.0), ["uherding", "random"], 1)
    assert not limits.run_problems(mlp, ["margin", "random"], 1)  # only uherding calibrates
    assert not limits.run_problems(CFG, ["uherding"], 1)  # softmax: no gradient steps
