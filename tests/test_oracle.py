"""A person as the oracle (alcore.engine.oracle and Experiment(oracle="person")) on real digits
with real Keras training: the person's labels are what the model learns from, mistakes
are counted and costed, and the result file keeps them so the run resumes exactly."""
import json

import numpy as np
import pytest

from alcore import Experiment
from alcore.engine.oracle import BatchAnswers, OracleRun, confusions, cost_summary
from alcore.results.records import ResultFileError, load_result, save_result, to_json


def answer(run: OracleRun, labels, seconds=None) -> BatchAnswers:
    """Answers for the waiting batch: ``labels`` in batch order, each taking ``seconds``."""
    answers = BatchAnswers(run.batch, shown_at=0.0)
    t = 0.0
    for pos, c in enumerate(labels):
        t += 1.0 if seconds is None else seconds[pos]
        answers.answer(pos, int(c), now=t)
    return answers


def truth(run: OracleRun) -> np.ndarray:
    return run.dataset.y_pool[run.batch]


def wrong(labels: np.ndarray, positions, k: int = 10) -> np.ndarray:
    """``labels`` with the given positions changed to another class."""
    out = np.array(labels)
    out[list(positions)] = (out[list(positions)] + 1) % k
    return out


def test_a_person_who_gives_the_true_labels_makes_the_simulated_runs_picks(digits_config, digits, cache):
    run = OracleRun(digits_config, dataset=digits, cache=cache)
    run.start()
    while not run.done:
        run.submit(answer(run, truth(run)))
    person, simulated = run.person.rounds, run.simulated.rounds
    assert [r.selected for r in person] == [r.selected for r in simulated]
    assert [r.test_accuracy for r in person] == [r.test_accuracy for r in simulated]
    assert [r.test_loss for r in person] == [r.test_loss for r in simulated]
    assert all(c.cost == 0 and c.mistakes == 0 for c in run.costs())
    assert cost_summary(run.labels(), run.costs()).startswith("All 30 of your labels are right")

    # the default path writes the file it always wrote: no oracle fields, so older readers load it
    plain = json.loads(to_json(run.simulated.result()))
    assert "oracle" not in plain and not any("given_labels" in r or "label_seconds" in r for r in plain["rounds"])
    mine = json.loads(to_json(run.result()))
    assert mine["oracle"] == "person" and [len(r.get("given_labels", [])) for r in mine["rounds"]] == [10, 10, 10, 0]


@pytest.mark.parametrize("model", ["mlp", "softmax"])
def test_the_model_trains_and_validates_on_the_persons_labels(digits_config, digits, cache, monkeypatch, model):
    # validation 'none': a network's round is one fit on every label (early stopping would need 50
    # validation images, more than this run has)
    exp = Experiment(digits_config.replace(model=model, validation="none"), dataset=digits, cache=cache,
                     oracle="person")
    first = exp.step()
    batch = np.asarray(first.selected)
    given = wrong(digits.y_pool[batch], range(10))  # every label wrong
    exp.give_labels(given)
    assert (exp.labels_of(batch) == given).all() and (exp.labels_of(batch, truth=True) == digits.y_pool[batch]).all()

    seen = []
    fit = exp.trainer.fit

    def spy(x, y, *args, **kw):
        seen.append((np.asarray(y).copy(), None if not args or args[1] is None else np.asarray(args[1]).copy()))
        return fit(x, y, *args, **kw)

    monkeypatch.setattr(exp.trainer, "fit", spy)
    exp.step()
    expected = np.concatenate([digits.y_pool[exp.initial_indices], given])
    ((y_all, y_val),) = seen  # one fit, on every label, none held out
    assert y_val is None and sorted(expected) == sorted(y_all)
    assert sorted(y_all) != sorted(digits.y_pool[exp.labeled_indices[:20]])  # not the truth


def test_wrong_labels_are_counted_and_what_they_cost_is_measured(digits_config, digits, cache):
    run = OracleRun(digits_config, dataset=digits, cache=cache)
    run.start()
    first = run.batch.copy()
    run.submit(answer(run, wrong(truth(run), [0, 3, 5]), seconds=[2.0] * 10))
    run.submit(answer(run, truth(run), seconds=[1.0, 3.0] * 5))

    records = run.labels()
    assert len(records) == 20 and sum(not r.right for r in records) == 3
    assert [r.index for r in records[:10]] == first.tolist()
    assert [r.seconds for r in records] == [2.0] * 10 + [1.0, 3.0] * 5
    assert all(r.predicted is not None for r in records)
    assert sum(n for *_, n in confusions(records, digits.class_names)) == 3

    costs = run.costs()
    assert [(c.person_labels, c.mistakes) for c in costs] == [(0, 0), (10, 3), (20, 3)]
    assert costs[0].accuracy == costs[0].truth_accuracy == costs[0].simulated_accuracy  # same start
    # round 1 trained on the first batch: the same images as the simulated oracle's, so true labels
    # on them give exactly the simulated run's model
    assert costs[1].truth_accuracy == costs[1].simulated_accuracy
    assert costs[1].accuracy != costs[1].truth_accuracy
    words = cost_summary(records, costs)
    assert words.startswith("3 of your 20 labels are wrong (15%).")
    assert "trained on the same images with their true labels" in words or "made no difference" in words \
        or "happened not to hurt" in words
    assert "You took 2.0 s per label on average (median 2.0 s), 40 s in all." in words


def test_a_persons_run_round_trips_through_its_file_and_resumes_exactly(tmp_path, digits_config, digits, cache):
    labels = {}

    def labels_for(run):  # the same answers for the same batch, whichever run asks
        key = tuple(run.batch)
        labels.setdefault(key, wrong(truth(run), [len(labels) % 10]))
        return labels[key]

    whole = OracleRun(digits_config, dataset=digits, cache=cache)
    whole.start()
    while not whole.done:
        whole.submit(answer(whole, labels_for(whole), seconds=np.linspace(0.5, 5, 10)))

    part = OracleRun(digits_config, dataset=digits, cache=cache)
    part.start()
    first = labels_for(part)
    part.submit(answer(part, first, seconds=np.linspace(0.5, 5, 10)))
    assert len(part.batch) == 10  # stopped while the second batch waits for the person
    path = save_result(part.result(), tmp_path / "person.json")
    loaded = load_result(path)
    assert loaded.oracle == "person" and loaded.label == "margin (seed 0, a person labelled)"
    assert loaded.rounds[0].given_labels == first.tolist()
    assert loaded.rounds[0].label_seconds == pytest.approx(np.linspace(0.5, 5, 10))
    assert loaded.rounds[1].given_labels == [] and loaded.status == "stopped"

    back = OracleRun.resume(loaded, dataset=digits, cache=cache)
    assert back.batch.tolist() == part.batch.tolist()
    with pytest.raises(RuntimeError, match="waiting for the person's labels"):
        back.person.step()
    while not back.done:
        back.submit(answer(back, labels_for(back), seconds=np.linspace(0.5, 5, 10)))
    assert [r.selected for r in back.person.rounds] == [r.selected for r in whole.person.rounds]
    assert [r.given_labels for r in back.person.rounds] == [r.given_labels for r in whole.person.rounds]
    assert [r.test_accuracy for r in back.person.rounds] == [r.test_accuracy for r in whole.person.rounds]
    assert back.costs() == whole.costs()

    # a file whose last batch was labelled resumes through Experiment alone, too
    done_file = load_result(to_json(whole.result()).encode())
    assert Experiment.resume(done_file, dataset=digits, cache=cache).rounds == whole.person.rounds


def test_the_persons_labels_are_checked(digits_config, digits, cache):
    exp = Experiment(digits_config, dataset=digits, cache=cache, oracle="person")
    with pytest.raises(RuntimeError, match="no batch is waiting"):
        exp.give_labels([])
    exp.step()
    for labels, seconds, words in [([0] * 9, None, "9 labels for a batch of 10"),
                                   ([10] + [0] * 9, None, r"classes 0\.\.9"),
                                   ([0] * 10, [1.0] * 9, "one per label"),
                                   ([0] * 10, [-1.0] + [1.0] * 9, "finite numbers >= 0")]:
        with pytest.raises(ValueError, match=words):
            exp.give_labels(labels, seconds)
    with pytest.raises(RuntimeError, match="batch of 10 images is waiting"):
        exp.step()
    simulated = Experiment(digits_config, dataset=digits, cache=cache)
    simulated.step()
    with pytest.raises(RuntimeError, match="simulated oracle answers every query itself"):
        simulated.give_labels([0] * 10)
    with pytest.raises(ValueError, match="oracle must be one of simulated, person"):
        Experiment(digits_config, dataset=digits, cache=cache, oracle="crowd")
    with pytest.raises(ValueError, match="warm_start is not supported with a person as the oracle"):
        OracleRun(digits_config.replace(warm_start=True), dataset=digits, cache=cache)


@pytest.fixture(scope="module")
def person_file(digits_config, digits, cache):
    run = OracleRun(digits_config.replace(rounds=2), dataset=digits, cache=cache)
    run.start()
    run.submit(answer(run, wrong(truth(run), [1])))
    run.submit(answer(run, truth(run)))
    return json.loads(to_json(run.result()))


def _edit(data, change):
    data = json.loads(json.dumps(data))
    change(data)
    return json.dumps(data).encode()


@pytest.mark.parametrize("change, words", [
    (lambda d: d["rounds"][0]["given_labels"].__setitem__(0, 10), "given_labels holds a class outside 0..9"),
    (lambda d: d["rounds"][0]["given_labels"].pop(), "10 selected indices but 9 given labels"),
    (lambda d: d["rounds"][0]["label_seconds"].pop(), "10 given labels but 9 label times"),
    (lambda d: d["rounds"][0]["label_seconds"].__setitem__(0, -1.0), "greater than or equal to 0"),
    (lambda d: d["rounds"][0].pop("given_labels"), "round 0: 0 given labels but 10 label times"),
    (lambda d: [d["rounds"][0].pop(k) for k in ("given_labels", "label_seconds")],
     "round 0: the person's labels for its 10 picks are missing"),
    (lambda d: d.pop("oracle"), "belong to a run whose oracle is a person"),
    (lambda d: d.__setitem__("oracle", "crowd"), "'oracle'"),
])
def test_result_files_with_inconsistent_person_labels_are_refused(person_file, change, words):
    assert load_result(json.dumps(person_file).encode()).oracle == "person"
    with pytest.raises(ResultFileError, match=words.replace("(", r"\(").replace(".", r"\.")):
        load_result(_edit(person_file, change), name="edited.json")


def test_answers_time_each_label_from_the_batch_or_the_previous_answer():
    answers = BatchAnswers([7, 3, 9], shown_at=100.0)
    assert answers.next_open == 0 and not answers.complete
    answers.answer(1, 4, now=102.5)  # 2.5 s after the batch was shown
    answers.answer(0, 1, now=103.0)
    answers.answer(1, 5, now=104.0)  # a correction adds its time to the same image
    assert answers.next_open == 2 and answers.n_answered == 2
    answers.answer(2, 0, now=110.0)
    assert answers.complete and answers.labels == [1, 5, 0]
    assert answers.seconds == [0.5, 3.5, 6.0]
    with pytest.raises(IndexError):
        answers.answer(3, 0, now=111.0)


def test_a_persons_run_is_its_own_group_and_not_continued_as_a_race(tmp_path, digits_config, digits, cache):
    """Compare never averages a person's curve (mistakes included) with the simulated
    oracle's of the same strategy, and the Run page's 'continue from result files' sends a
    person's file to its own page instead of racing on without the person."""
    from alcore.analysis.groups import group_labels
    from alcore.engine.store import RunStore, SavedRaceError

    run = OracleRun(digits_config, dataset=digits, cache=cache)
    run.start()
    run.submit(answer(run, wrong(truth(run), [0, 1])))
    person, simulated = run.person.result(), run.simulated.result()
    assert group_labels([person, simulated]) == ["margin · a person labelled", "margin · simulated"]
    assert group_labels([simulated]) == ["margin"]
    with pytest.raises(SavedRaceError, match="labelled by a person.*Be the oracle"):
        RunStore(tmp_path).import_results([person])
