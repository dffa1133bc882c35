"""The loop end to end on real digits with real Keras training."""
import numpy as np
import pytest

from alcore import Experiment, ExperimentConfig
from alcore.results.records import load_result, save_result
from alcore.strategies.base import STRATEGIES, Need, Selection, Strategy
from conftest import shared_mnist


def run(cfg, digits, cache, **kw):
    exp = Experiment(cfg, dataset=digits, cache=cache)
    return exp, list(exp.run(**kw))


def test_rounds_stream_and_labels_grow(digits_config, digits, cache):
    exp, rounds = run(digits_config, digits, cache)
    assert [r.round for r in rounds] == [0, 1, 2, 3]
    assert [r.n_labeled for r in rounds] == [10, 20, 30, 40]
    assert exp.done and "3 acquisition rounds" in exp.stop_reason
    assert rounds[-1].selected == [] and all(len(r.selected) == 10 for r in rounds[:-1])
    picked = np.concatenate([exp.initial_indices] + [r.selected for r in rounds])
    assert len(np.unique(picked)) == len(picked) == 40
    for r in rounds:
        assert r.n_train == r.n_labeled and r.n_validation == 0  # softmax: every label trains, none validates
        assert np.array(r.confusion).sum() == len(digits.y_test)
        assert np.trace(np.array(r.confusion)) / len(digits.y_test) == pytest.approx(r.test_accuracy)
        assert r.query_seconds == pytest.approx(r.score_seconds + r.select_seconds)
        assert len(r.most_confident) == len(r.least_confident) == digits_config.inspect_k
        assert r.most_confident[0].confidence >= r.least_confident[0].confidence
        assert r.pool.n_scored == len(digits.y_pool) - r.n_labeled
    # margin picks are the highest-scored candidates
    assert rounds[0].selected_scores == sorted(rounds[0].selected_scores, reverse=True)


def test_margin_beats_random_on_digits(digits, cache):
    base = ExperimentConfig(rounds=15, validation="none", max_epochs=30, learning_rate=0.01)
    finals = {}
    for strategy in ("margin", "random"):
        accs = []
        for seed in (0, 1):
            _, rounds = run(base.replace(strategy=strategy, seed=seed), digits, cache)
            accs.append(np.mean([r.test_accuracy for r in rounds[-5:]]))
        finals[strategy] = np.mean(accs)
    assert finals["margin"] > finals["random"] + 0.01, finals


def test_same_config_and_seed_give_identical_runs(digits_config, digits, cache):
    _, a = run(digits_config, digits, cache)
    _, b = run(digits_config, digits, cache)
    assert [r.selected for r in a] == [r.selected for r in b]
    assert [r.test_accuracy for r in a] == [r.test_accuracy for r in b]
    _, c = run(digits_config.replace(seed=1), digits, cache)
    assert [r.selected for r in a] != [r.selected for r in c]


def test_stop_and_continue_matches_an_uninterrupted_run(digits_config, digits, cache):
    _, whole = run(digits_config, digits, cache)
    exp = Experiment(digits_config, dataset=digits, cache=cache)
    for r in exp:
        if r.round == 1:
            exp.stop()
    assert exp.status == "stopped" and len(exp.rounds) == 2
    rest = list(exp)
    assert [r.selected for r in exp.rounds] == [r.selected for r in whole]
    assert len(rest) == 2 and exp.done


def test_continue_from_a_result_file(tmp_path, digits_config, digits, cache):
    _, whole = run(digits_config, digits, cache)
    exp = Experiment(digits_config, dataset=digits, cache=cache)
    list(exp.run(max_rounds=2))
    save_result(exp.result(), tmp_path / "part.json")
    loaded = load_result(tmp_path / "part.json")
    assert loaded.status == "stopped"
    resumed = Experiment.resume(loaded, dataset=digits, cache=cache)
    list(resumed)
    assert [r.selected for r in resumed.rounds] == [r.selected for r in whole]
    assert [r.test_accuracy for r in resumed.rounds] == [r.test_accuracy for r in whole]
    assert [r.pool for r in resumed.rounds] == [r.pool for r in whole]  # label-free signals too
    with pytest.raises(RuntimeError, match="complete"):
        resumed.step()


def test_label_budget_takes_a_partial_last_batch(digits, cache):
    cfg = ExperimentConfig(rounds=None, label_budget=35, max_epochs=5)
    exp, rounds = run(cfg, digits, cache)
    assert [r.n_labeled for r in rounds] == [10, 20, 30, 35]
    assert "label budget" in exp.stop_reason


def test_fixed_validation_counts_against_the_budget(digits, cache):
    cfg = ExperimentConfig(model="mlp", validation="fixed", validation_size=50, rounds=1, max_epochs=5)
    exp, rounds = run(cfg, digits, cache)
    assert rounds[0].n_labeled == 60 and rounds[0].n_train == 10 and rounds[0].n_validation == 50
    assert not set(exp.validation_indices) & set(exp.labeled_indices)
    # softmax validates nothing: the fixed validation labels are labels like any other, and it trains on them
    exp, rounds = run(cfg.replace(model="softmax", validation_size=15), digits, cache)
    assert rounds[0].n_labeled == 25 and rounds[0].n_train == 25 and rounds[0].n_validation == 0


def test_target_accuracy_and_plateau_stop_the_run(digits, cache):
    exp, rounds = run(ExperimentConfig(rounds=30, target_accuracy=0.5, validation="none", max_epochs=30),
                      digits, cache)
    assert rounds[-1].test_accuracy >= 0.5 and all(r.test_accuracy < 0.5 for r in rounds[:-1])
    assert "target" in exp.stop_reason
    exp, rounds = run(ExperimentConfig(rounds=30, plateau_rounds=2, plateau_delta=1.0, max_epochs=5),
                      digits, cache)
    assert len(rounds) == 3 and "less than" in exp.stop_reason


def test_pool_exhaustion_ends_the_run(cache):
    from alcore.data.datasets import RawData, prepare

    rng = np.random.default_rng(0)
    raw = RawData(rng.random((40, 8, 8)).astype(np.float32), np.arange(40) % 2, None, None, None, "tiny")
    cfg = ExperimentConfig(test_size=10, initial=10, batch_size=8, rounds=50, max_epochs=3)
    ds = prepare(raw, cfg)
    exp, rounds = run(cfg, ds, cache)
    assert rounds[-1].n_labeled == 30 and "no unlabeled" in exp.stop_reason
    assert [len(r.selected) for r in rounds] == [8, 8, 4, 0]


def test_candidates_subset_and_warm_start(digits, cache):
    cfg = ExperimentConfig(rounds=2, candidates=200, warm_start=True, max_epochs=5)
    exp, rounds = run(cfg, digits, cache)
    assert all(r.pool.n_scored == 200 for r in rounds)
    with pytest.raises(ValueError, match="warm-start"):
        Experiment.resume(exp.result(), dataset=digits, cache=cache)


@pytest.mark.parametrize("changes, words", [
    (dict(batch_size=5000), "larger than the"),
    (dict(initial=2000), "exceed the pool"),
    (dict(candidates=5, batch_size=10), "at least batch_size"),
])
def test_impossible_runs_are_refused(digits, changes, words):
    with pytest.raises(ValueError, match=words):
        Experiment(ExperimentConfig(**changes), dataset=digits)


def test_strategies_can_ask_for_embeddings(digits, cache, monkeypatch):
    """The interface a diversity strategy uses: it declares needs, the loop provides them."""
    seen = {}

    class FarthestFromLabeled(Strategy):
        """Picks the candidates farthest (in embedding space) from the labeled set's mean."""
        name = "farthest"
        needs = frozenset({Need.EMBEDDINGS, Need.LABELED_EMBEDDINGS})

        def select(self, inputs, batch_size, rng):
            seen["shapes"] = (inputs.embeddings.shape, inputs.labeled_embeddings.shape, inputs.probs)
            d = np.linalg.norm(inputs.embeddings - inputs.labeled_embeddings.mean(0), axis=1)
            return Selection(np.argsort(-d)[:batch_size], d)

    monkeypatch.setitem(STRATEGIES, "farthest", FarthestFromLabeled)
    exp, rounds = run(ExperimentConfig(strategy="farthest", rounds=1, max_epochs=3), digits, cache)
    emb, lab, probs = seen["shapes"]
    assert emb == (len(digits.y_pool) - 10, 64) and lab == (10, 64) and probs is not None
    assert len(rounds[0].selected) == 10


def test_result_object_describes_the_run(digits_config, digits, cache):
    exp, _ = run(digits_config, digits, cache)
    res = exp.result()
    assert res.status == "complete" and res.config == digits_config
    assert res.environment.tensorflow and res.environment.keras and res.dataset.n_pool == len(digits.y_pool)
    assert res.initial_indices == [int(i) for i in exp.initial_indices] and res.n_parameters == 650


def test_mnist_end_to_end_from_the_shared_folder(cache):
    folder = shared_mnist()
    cfg = ExperimentConfig(dataset="mnist", data_dir=str(folder), pool_size=1000, test_size=2000,
                           rounds=3, validation="none", max_epochs=20, learning_rate=3e-3)
    exp = Experiment(cfg, cache=cache)
    rounds = list(exp)
    assert rounds[-1].n_labeled == 40 and rounds[-1].test_accuracy > rounds[0].test_accuracy
    assert rounds[-1].test_accuracy > 0.5


def test_kmeans_cold_start_is_label_free_and_representative(digits, cache):
    exp = Experiment(ExperimentConfig(initial_strategy="kmeans", initial=10, rounds=0, max_epochs=5),
                     dataset=digits, cache=cache)
    again = Experiment(ExperimentConfig(initial_strategy="kmeans", initial=10, rounds=0), dataset=digits)
    rnd = Experiment(ExperimentConfig(initial=10, rounds=0), dataset=digits)
    assert list(exp.initial_indices) == list(again.initial_indices) != list(rnd.initial_indices)
    # digits cluster by class: ten k-means picks cover far more classes than chance would
    assert len(set(digits.y_pool[exp.initial_indices])) >= 8
    assert len(list(exp)) == 1


def test_stopping_signals_are_recorded_and_can_stop(digits, cache):
    exp, rounds = run(ExperimentConfig(rounds=4, max_epochs=10), digits, cache)
    assert rounds[0].pool.changed_fraction is None
    assert all(0.0 <= r.pool.changed_fraction <= 1.0 for r in rounds[1:])
    assert all(r.pool.mean_uncertainty == pytest.approx(1 - r.pool.mean_confidence) for r in rounds)
    exp, rounds = run(ExperimentConfig(rounds=20, uncertainty_threshold=0.99, max_epochs=10), digits, cache)
    assert len(rounds) == 1 and "uncertainty" in exp.stop_reason
    exp, rounds = run(ExperimentConfig(rounds=20, changed_threshold=0.999, max_epochs=10), digits, cache)
    assert len(rounds) == 2 and "changed" in exp.stop_reason
