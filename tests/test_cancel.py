"""A round stopped part way (alcore.engine.cancel): it stops within about a second however long
it would have trained, leaves its run as before the round, and the run then continues to the
picks of an uninterrupted one; a round cut into several compiled calls trains bit for bit the same."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from alcore import ExperimentConfig
from alcore.engine import cancel, training
from alcore.engine.loop import Experiment
from alcore.engine.models import ModelSpec
from alcore.engine.race import Race
from alcore.engine.training import Trainer

# 100 000 gradient steps of a 1.1-million-weight network: minutes of training, were it not stopped.
ENDLESS = ExperimentConfig(model="mlp", hidden_units=[1024, 1024], rounds=3, min_steps=100_000, max_steps=None,
                           train_batch_size=1)


def in_thread(fn):
    """Run ``fn`` on a daemon thread; (thread, box) where box gets "result", "error" and "seconds"."""
    box: dict = {}

    def target():
        t0 = time.perf_counter()
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: BLE001 (the test looks at what it was)
            box["error"] = e
        box["seconds"] = time.perf_counter() - t0

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def compiled(exp: Experiment) -> Experiment:
    """``exp`` with its training function compiled (a first call, which no check can interrupt,
    takes seconds for a large model): its first round is stopped after that call."""
    calls = []

    def after_the_first_call():
        calls.append(1)
        if len(calls) == 2:
            raise cancel.Cancelled("compiled")

    with pytest.raises(cancel.Cancelled):
        with cancel.stop_when(after_the_first_call):
            exp.step()
    return exp


def test_a_long_round_stops_within_a_second_of_the_flag_and_leaves_the_run_as_it_was(digits, cache):
    exp = compiled(Experiment(ENDLESS, dataset=digits, cache=cache))
    flag, training_steps = cancel.CancelFlag(), threading.Event()

    def check():
        training_steps.set()
        flag.check()

    def round_():
        with cancel.stop_when(check):
            return exp.step()

    thread, box = in_thread(round_)
    assert training_steps.wait(timeout=60)
    time.sleep(1.0)  # well into the steps
    flag.cancel("the visitor pressed Stop")
    asked = time.perf_counter()
    thread.join(timeout=20)
    answered = time.perf_counter() - asked
    assert not thread.is_alive(), "the round did not stop"
    assert isinstance(box.get("error"), cancel.Cancelled) and str(box["error"]) == "the visitor pressed Stop"
    assert answered < 2.0, f"stopped {answered:.2f} s after the flag"
    assert exp.rounds == [] and exp.status == "ready" and exp.n_labeled == ENDLESS.initial


def test_the_time_limit_stops_a_round_and_names_the_limit(digits, cache):
    exp = compiled(Experiment(ENDLESS, dataset=digits, cache=cache))

    def round_():
        with cancel.time_limit(4):
            return exp.step()

    thread, box = in_thread(round_)
    thread.join(timeout=30)
    assert not thread.is_alive(), "the round ran past its limit"
    e = box.get("error")
    assert isinstance(e, cancel.TimeLimitExceeded), e
    assert "more than 4 s" in str(e) and "max_round_seconds" in str(e)
    assert 4 <= box["seconds"] < 6.5 and exp.rounds == []


def test_checks_belong_to_the_thread_that_installed_them(digits, cache):
    """Another session's Stop (a check installed on its own thread) never stops this one."""
    stopped = cancel.CancelFlag()
    stopped.cancel("another session")
    ready, done = threading.Event(), threading.Event()

    def other_session():
        with cancel.stop_when(stopped.check):
            ready.set()
            done.wait(timeout=60)

    other = threading.Thread(target=other_session, daemon=True)
    other.start()
    assert ready.wait(timeout=10)
    try:
        assert not cancel.active()
        cancel.checkpoint()  # nothing installed here: nothing raises
        exp = Experiment(ExperimentConfig(model="mlp", hidden_units=[16], rounds=1, max_epochs=5, min_steps=0),
                         dataset=digits, cache=cache)
        assert exp.step().round == 0
    finally:
        done.set()
        other.join(timeout=10)
    with pytest.raises(cancel.Cancelled):
        with cancel.stop_when(stopped.check):
            cancel.checkpoint()
    cancel.checkpoint()  # uninstalled again at the block's end


@pytest.mark.parametrize("model", ["mlp", "cnn"])  # XLA-compiled, and a plain graph
def test_a_round_cut_into_calls_trains_bit_for_bit_the_same(digits, model, monkeypatch):
    trainer = Trainer(ModelSpec.from_config(ExperimentConfig(model=model, dropout=0.3, filters=8),
                                            digits.image_shape, digits.n_classes))
    x, y = digits.x_pool[:100], digits.y_pool[:100]
    settings = [dict(max_epochs=12, patience=3), dict(max_epochs=12, patience=3, max_steps=29),
                dict(max_epochs=30, patience=2, x_val=digits.x_pool[200:260], y_val=digits.y_pool[200:260],
                     val_capacity=64)]

    def fit(first_chunk, **kw):
        trainer.set_weights(trainer.initial_weights(0))
        trainer.reset_optimizer(0.01)
        if first_chunk is None:  # no check installed: the whole round in one call
            return trainer.fit(x, y, rng=np.random.default_rng(0), **kw), trainer.get_weights()
        monkeypatch.setattr(training, "FIRST_CHUNK", first_chunk)
        monkeypatch.setattr(cancel, "CHECK_SECONDS", 1e-6)  # the next calls as short as they get: one step
        calls = []
        with cancel.stop_when(lambda: calls.append(1)):
            report = trainer.fit(x, y, rng=np.random.default_rng(0), **kw)
        assert len(calls) > 5  # it was cut
        return report, trainer.get_weights()

    for kw in settings:
        whole, whole_weights = fit(None, **kw)
        for first in (1, 7):
            report, weights = fit(first, **kw)
            assert report == whole
            assert all(np.array_equal(a, b) for a, b in zip(weights, whole_weights))


def test_a_race_stopped_at_every_checkpoint_continues_to_the_picks_of_an_uninterrupted_one(digits, cache):
    """Stopped at the 1st, 2nd, ... checkpoint of its second round (training, testing, scoring),
    then continued: with warm start too, whose weights and pool predictions must be put back."""
    cfg = ExperimentConfig(model="mlp", hidden_units=[16], rounds=3, max_epochs=5, min_steps=40,
                           warm_start=True, changed_threshold=0.0001)
    whole = Race(cfg, ["margin"], [1], dataset_for=lambda c: digits, cache=cache)
    while not whole.done:
        whole.step()
    expected = [(r.selected, r.test_accuracy, r.pool.changed_fraction) for r in whole.experiments[0].rounds]

    for stop_at in range(1, 8):
        race = Race(cfg, ["margin"], [1], dataset_for=lambda c: digits, cache=cache)
        race.step()
        seen = []

        def check():
            seen.append(1)
            if len(seen) == stop_at:
                raise cancel.Cancelled("stopped")

        try:
            with cancel.stop_when(check):
                race.step()
        except cancel.Cancelled:
            assert len(race.experiments[0].rounds) == 1
        else:  # the round had fewer checkpoints than stop_at: it finished
            assert len(race.experiments[0].rounds) == 2
        while not race.done:
            race.step()
        got = [(r.selected, r.test_accuracy, r.pool.changed_fraction) for r in race.experiments[0].rounds]
        assert got == expected, f"stopped at checkpoint {stop_at}"


def test_a_stopped_race_lets_go_of_its_models_and_builds_them_again_with_the_same_results(digits):
    from alcore.engine.training import TrainerCache

    cfg = ExperimentConfig(model="mlp", hidden_units=[16], rounds=3, max_epochs=5, min_steps=0)
    whole = Race(cfg, ["margin", "random"], [0], dataset_for=lambda c: digits, cache=TrainerCache())
    while not whole.done:
        whole.step()
    cache = TrainerCache()
    race = Race(cfg, ["margin", "random"], [0], dataset_for=lambda c: digits, cache=cache)
    race.step()
    first = race.experiments[0].trainer
    race.release_models()
    assert len(cache) == 0 and all(e._trainer is None for e in race.experiments)
    while not race.done:
        race.step()
    assert race.experiments[0].trainer is not first
    assert [[r.selected for r in e.rounds] for e in race.experiments] == \
           [[r.selected for r in e.rounds] for e in whole.experiments]
