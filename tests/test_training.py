"""Real Keras models, real XLA-compiled training, on real (small) digits data."""
import numpy as np
import pytest

from alcore import ExperimentConfig
from alcore.engine.models import ModelSpec, build_model, summary_rows
from alcore.engine.training import Trainer


def spec_for(ds, **changes):
    cfg = ExperimentConfig(**changes)
    return ModelSpec.from_config(cfg, ds.image_shape, ds.n_classes)


def accuracy(trainer, ds):
    return float((trainer.predict_proba(ds.x_test).argmax(1) == ds.y_test).mean())


def test_training_learns_and_predicts_probabilities(cache, digits):
    trainer = cache.get(spec_for(digits))
    trainer.set_weights(trainer.initial_weights(0))
    trainer.reset_optimizer(0.01)
    before = accuracy(trainer, digits)
    report = trainer.fit(digits.x_pool[:300], digits.y_pool[:300], max_epochs=15, patience=3,
                         rng=np.random.default_rng(0))
    assert report.epochs == 15 and report.best_val_loss is None
    probs = trainer.predict_proba(digits.x_test)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert accuracy(trainer, digits) > 0.85 > before + 0.3


def test_early_stopping_stops_and_restores_the_best_weights(cache, digits):
    trainer = cache.get(spec_for(digits))
    trainer.set_weights(trainer.initial_weights(0))
    trainer.reset_optimizer(0.05)
    # validation labels are shuffled: fitting the training labels makes validation loss rise
    x_val, y_val = digits.x_pool[300:360], np.random.default_rng(1).permutation(digits.y_pool[300:360])
    report = trainer.fit(digits.x_pool[:300], digits.y_pool[:300], x_val, y_val, max_epochs=200,
                         patience=3, rng=np.random.default_rng(0))
    assert report.epochs < 200
    p = np.clip(trainer.predict_proba(x_val)[np.arange(60), y_val], 1e-7, 1)
    assert float(-np.log(p).mean()) == pytest.approx(report.best_val_loss, rel=1e-4)


def test_no_retracing_as_the_labeled_set_grows(digits):
    trainer = Trainer(spec_for(digits))
    for n in (10, 37, 120, 250, 400):
        trainer.set_weights(trainer.initial_weights(0))
        trainer.reset_optimizer(0.01)
        trainer.fit(digits.x_pool[:n], digits.y_pool[:n], digits.x_pool[-20:], digits.y_pool[-20:],
                    max_epochs=5, patience=2, rng=np.random.default_rng(n), capacity=400, val_capacity=20)
    assert trainer._train_fn.experimental_get_tracing_count() == 1
    trainer.predict_proba(digits.x_pool[:7])
    trainer.predict_proba(digits.x_pool[:5000])
    assert trainer._predict_fn.experimental_get_tracing_count() == 1


def test_reset_makes_training_reproducible(cache, digits):
    trainer = cache.get(spec_for(digits))

    def train_once():
        trainer.set_weights(trainer.initial_weights(3))
        trainer.reset_optimizer(0.01)
        trainer.fit(digits.x_pool[:100], digits.y_pool[:100], max_epochs=10, patience=3,
                    rng=np.random.default_rng(5))
        return trainer.predict_proba(digits.x_test)

    np.testing.assert_array_equal(train_once(), train_once())
    # a different seed gives different initial weights
    a, b = trainer.initial_weights(3), trainer.initial_weights(4)
    assert not all(np.array_equal(x, y) for x, y in zip(a, b))


def test_l2_shrinks_the_weights(cache, digits):
    trainer = cache.get(spec_for(digits))
    norms = []
    for l2 in (0.0, 0.05):
        trainer.set_weights(trainer.initial_weights(0))
        trainer.reset_optimizer(0.01)
        trainer.fit(digits.x_pool[:200], digits.y_pool[:200], max_epochs=30, patience=3, l2=l2,
                    rng=np.random.default_rng(0))
        norms.append(float(np.sum(trainer.model.get_layer("probabilities").kernel.numpy() ** 2)))
    assert norms[1] < 0.5 * norms[0]


@pytest.mark.parametrize("model, extra, dim", [
    ("softmax", {}, 64), ("mlp", dict(hidden_units=(32, 16), activation="tanh"), 16),
    ("cnn", dict(filters=4), 128)])
def test_architectures_build_train_and_embed(cache, digits, model, extra, dim):
    spec = spec_for(digits, model=model, **extra)
    trainer = cache.get(spec, optimizer="sgd", momentum=0.9, train_batch_size=16)
    trainer.set_weights(trainer.initial_weights(0))
    trainer.reset_optimizer(0.05)
    trainer.fit(digits.x_pool[:200], digits.y_pool[:200], max_epochs=10, patience=3, rng=np.random.default_rng(0))
    assert accuracy(trainer, digits) > 0.5
    assert trainer.embed(digits.x_pool[:6]).shape == (6, dim)
    rows = summary_rows(trainer.model)
    assert rows[-1]["layer"] == "probabilities" and sum(r["parameters"] for r in rows) == trainer.count_params()


def test_stochastic_passes_need_dropout(cache, digits):
    cnn = cache.get(spec_for(digits, model="cnn", filters=4, dropout=0.5))
    cnn.set_weights(cnn.initial_weights(0))
    mc = cnn.predict_proba_mc(digits.x_pool[:20], passes=4)
    assert mc.shape == (4, 20, 10)
    assert not np.allclose(mc[0], mc[1])
    soft = cache.get(spec_for(digits))
    with pytest.raises(ValueError, match="no dropout"):
        soft.predict_proba_mc(digits.x_pool[:5], passes=2)


def test_mc_mean_is_the_mean_of_the_passes_and_leaves_the_next_passes_unchanged(cache, digits):
    mlp = cache.get(spec_for(digits, model="mlp", hidden_units=[32], dropout=0.5))
    mlp.set_weights(mlp.initial_weights(0))
    x = digits.x_pool[:300]
    mean = mlp.predict_proba_mc_mean(x, passes=6)
    passes = mlp.predict_proba_mc(x, passes=6)  # the same masks: the mean put their state back
    np.testing.assert_allclose(mean, passes.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mean.sum(1), 1.0, atol=1e-5)
    assert not np.allclose(mean, mlp.predict_proba(x), atol=1e-3)  # not the one pass with dropout off
    mlp.set_weights(mlp.initial_weights(0))
    without = mlp.predict_proba_mc(x, passes=3)
    mlp.set_weights(mlp.initial_weights(0))
    mlp.predict_proba_mc_mean(x, passes=5)
    np.testing.assert_array_equal(mlp.predict_proba_mc(x, passes=3), without)
    with pytest.raises(ValueError, match="no dropout"):
        cache.get(spec_for(digits)).predict_proba_mc_mean(x, passes=2)


def test_cnn_refuses_tiny_images():
    spec = ModelSpec(model="cnn", input_shape=(4, 4, 1), n_classes=3, filters=2)
    with pytest.raises(ValueError, match="at least 6x6"):
        build_model(spec)


def test_a_pool_hands_a_compiled_trainer_from_one_owner_to_the_next_with_the_same_results(digits):
    """An ended session's trainer serves the next session: no model built or compiled again, and
    the next race picks exactly what it would on a fresh trainer (every round sets its weights)."""
    from alcore.engine.race import Race
    from alcore.engine.training import TrainerCache, TrainerPool

    cfg = ExperimentConfig(model="mlp", hidden_units=[32], rounds=3, max_epochs=5, min_steps=0)

    def race(seed, cache):
        r = Race(cfg, ["margin", "random"], [seed], dataset_for=lambda c: digits, cache=cache)
        while not r.done:
            r.step()
        return [[x.selected for x in e.rounds] for e in r.experiments], r

    fresh = race(7, TrainerCache())[0]
    pool = TrainerPool()
    first = TrainerCache(pool=pool)
    _, r = race(3, first)
    trainer = r.experiments[0].trainer
    r.release_models()  # the first session ended: its trainer goes back to the pool
    assert len(first) == 0 and len(pool) == 1
    second = TrainerCache(pool=pool)
    picks, r = race(7, second)
    assert r.experiments[0].trainer is trainer and len(pool) == 0  # reused, not built
    assert trainer._train_fn.experimental_get_tracing_count() == 1  # nor compiled again
    assert picks == fresh


def test_a_pool_keeps_no_large_model_idle(digits):
    from alcore.engine.training import TrainerCache, TrainerPool

    pool = TrainerPool(max_mb=1)  # 65 536 parameters at 16 bytes each
    cache = TrainerCache(pool=pool)
    small = cache.get(spec_for(digits, model="mlp", hidden_units=[16]))
    large = cache.get(spec_for(digits, model="mlp", hidden_units=[1024]))
    assert small.count_params() < 65_536 < large.count_params()
    cache.clear()
    assert len(pool) == 1 and pool._idle[0][1] is small
