"""The training protocol of mlp / cnn / transfer: step schedule, augmentation, weight decay,
early stopping only on enough validation images, class-balanced initial labels.
Real Keras models on real (small) digits."""
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from alcore import Experiment, ExperimentConfig
from alcore.config import MIN_VALIDATION
from alcore.engine.models import ModelSpec, build_model
from alcore.engine.training import schedule
from alcore.results.records import load_result

# A small cnn that augments: the whole new protocol, quick on 8x8 digits.
AUGMENTING_CNN = dict(model="cnn", filters=4, augment_shift=0.15, augment_rotation=15.0, augment_zoom=0.1,
                      min_steps=40, max_steps=120, max_epochs=10, weight_decay=1.0, validation="none")


def run(cfg, digits, cache):
    exp = Experiment(cfg, dataset=digits, cache=cache)
    return exp, list(exp)


# ------------------------------------------------------------------------ schedule

@pytest.mark.parametrize("n, expected", [
    (10, (500, 500)),      # one step per epoch: 500 epochs to make the minimum of 500 steps
    (100, (125, 500)),     # 4 steps per epoch
    (1000, (50, 1600)),    # 32 steps per epoch x 50 epochs, between the bounds
    (5000, (13, 2000)),    # 157 steps per epoch: capped at 2000 steps, the last epoch cut short
])
def test_step_schedule_scales_with_the_labeled_set(n, expected):
    assert schedule(n, 32, 50, min_steps=500, max_steps=2000) == expected


def test_step_schedule_without_bounds_is_max_epochs():
    assert schedule(10, 32, 50) == (50, 50)
    assert schedule(320, 32, 50) == (50, 500)
    with pytest.raises(ValueError):
        schedule(0, 32, 50)


def test_a_round_trains_the_scheduled_steps(digits, cache):
    """10 labels are one mini-batch: the round runs min_steps epochs; at 60 labels (2 batches)
    the cap of max_steps ends the last epoch part way."""
    cfg = ExperimentConfig(model="mlp", hidden_units=(16,), initial=10, batch_size=50, rounds=1,
                           max_epochs=25, min_steps=30, max_steps=45, train_batch_size=32)
    _, rounds = run(cfg, digits, cache)
    # 25 epochs of 1 step raised to 30 steps; 25 epochs of 2 steps cut to 45 steps = 22.5 epochs
    assert [r.epochs for r in rounds] == [30, 23]
    assert all(r.n_validation == 0 for r in rounds)


def test_the_schedule_keeps_one_compiled_training_call_all_run(digits):
    """Epoch counts fall from min_steps epochs to a few as labels grow; the arrays stay padded to
    one shape, so the graph is traced once for the whole run."""
    from alcore.engine.training import TrainerCache

    cfg = ExperimentConfig(model="mlp", hidden_units=(16,), initial=10, batch_size=40, rounds=3, max_epochs=3,
                           min_steps=20, max_steps=30)
    exp, rounds = run(cfg, digits, TrainerCache())
    assert [r.epochs for r in rounds] == [20, 10, 7, 4]  # 20 steps of 1, 2, 3 and 5 per epoch (10..130 labels)
    assert exp.trainer._train_fn.experimental_get_tracing_count() == 1


# ---------------------------------------------------------------- determinism

def test_augmenting_cnn_same_config_and_seed_give_same_weights_and_picks(digits, cache):
    cfg = ExperimentConfig(rounds=2, strategy="margin", seed=3, **AUGMENTING_CNN)
    a, ra = run(cfg, digits, cache)
    wa = a.trainer.get_weights()
    b, rb = run(cfg, digits, cache)
    assert all(np.array_equal(x, y) for x, y in zip(wa, b.trainer.get_weights()))
    assert [r.selected for r in ra] == [r.selected for r in rb]
    assert [r.test_accuracy for r in ra] == [r.test_accuracy for r in rb]
    # the augmentation is really drawn: without it the same seed trains other weights
    plain = ExperimentConfig(**{**cfg.model_dump(), "augment_shift": 0.0, "augment_rotation": 0.0,
                                "augment_zoom": 0.0})
    c, _ = run(plain, digits, cache)
    assert not all(np.array_equal(x, y) for x, y in zip(wa, c.trainer.get_weights()))


def test_augmentation_state_is_reset_with_the_weights(digits, cache):
    """The random layers' seed state is a model variable: resetting the weights replays the
    same augmentations, so retraining a round gives the same model."""
    cfg = ExperimentConfig(rounds=0, initial=40, **AUGMENTING_CNN)
    exp = Experiment(cfg, dataset=digits, cache=cache)
    spec = ModelSpec.from_config(cfg, digits.image_shape, digits.n_classes)
    names = [v.path for v in build_model(spec, seed=0).variables]
    assert sum("seed_generator" in n for n in names) >= 3 + 2  # 3 augmentation layers + 2 dropouts
    first = exp.step().test_accuracy
    assert exp.retrain(0) == pytest.approx((first, exp.rounds[0].test_loss), abs=0)


def test_augmentation_is_off_at_prediction_and_for_transfer(digits, cache):
    cfg = ExperimentConfig(rounds=0, initial=40, **AUGMENTING_CNN)
    exp = Experiment(cfg, dataset=digits, cache=cache)
    exp.step()
    x = digits.x_test[:16]
    np.testing.assert_array_equal(exp.trainer.predict_proba(x), exp.trainer.predict_proba(x))
    transfer = ModelSpec.from_config(cfg.replace(model="transfer"), (1280,), 10)
    assert not transfer.augments and transfer.input_shape == (1280,)
    assert not ModelSpec.from_config(cfg.replace(model="softmax"), digits.image_shape, 10).augments


def test_weight_decay_shrinks_the_kernels(digits, cache):
    norms = []
    for wd in (0.0, 20.0):
        cfg = ExperimentConfig(model="mlp", hidden_units=(16,), initial=100, rounds=0, min_steps=60,
                               max_epochs=1, weight_decay=wd)
        exp = Experiment(cfg, dataset=digits, cache=cache)
        exp.step()
        norms.append(sum(float(np.sum(k.numpy() ** 2)) for k in exp.trainer._kernels))
    assert norms[1] < 0.7 * norms[0]


# ------------------------------------------------------------ early stopping guard

@pytest.mark.parametrize("changes, words", [
    (dict(validation="split", initial=10), "would hold out 2 of the 10 initial labels"),
    (dict(validation="split", initial=200), f"at least {MIN_VALIDATION} validation images"),
    (dict(validation="fixed", validation_size=20), "validation_size 20 is too small"),
])
def test_early_stopping_on_a_handful_of_images_is_refused(digits, changes, words):
    cfg = ExperimentConfig(model="mlp", **changes)
    with pytest.raises(ValueError, match=words):
        Experiment(cfg, dataset=digits)


def test_early_stopping_on_enough_images_runs(digits, cache):
    cfg = ExperimentConfig(model="mlp", hidden_units=(16,), validation="split", initial=250, rounds=0,
                           max_epochs=30)
    _, rounds = run(cfg, digits, cache)
    assert rounds[0].n_validation == 50 and rounds[0].validation_loss is not None


def test_result_files_made_with_a_small_split_still_load():
    """The hybrid-fraction preset's cnn runs used early stopping on a 20% split of 20 labels."""
    path = sorted((Path(__file__).resolve().parents[1] / "presets" / "hybrid_fraction_fashion").glob("*.json"))[0]
    result = load_result(path)
    assert result.config.model == "cnn" and result.config.validation == "split"
    assert result.config.min_steps == 0 and result.config.augment_shift == 0.0


# ------------------------------------------------------------------ initial labels

def test_balanced_initial_labels_take_the_same_number_per_class(digits, cache):
    cfg = ExperimentConfig(initial=20, initial_strategy="balanced", rounds=0, seed=4)
    exp = Experiment(cfg, dataset=digits, cache=cache)
    assert np.bincount(digits.y_pool[exp.initial_indices], minlength=10).tolist() == [2] * 10
    again = Experiment(cfg, dataset=digits, cache=cache)
    assert again.initial_indices.tolist() == exp.initial_indices.tolist()
    other = Experiment(cfg.replace(seed=5), dataset=digits, cache=cache)
    assert other.initial_indices.tolist() != exp.initial_indices.tolist()
    counts = np.bincount(digits.y_pool[Experiment(cfg.replace(initial=25), dataset=digits).initial_indices],
                         minlength=10)
    assert counts.sum() == 25 and set(counts.tolist()) == {2, 3}


def test_balanced_initial_labels_need_enough_of_every_class():
    from alcore.data.datasets import RawData, prepare

    rng = np.random.default_rng(0)
    y = np.array([0] * 50 + [1] * 5)
    cfg = ExperimentConfig(initial=20, initial_strategy="balanced", rounds=0)
    ds = prepare(RawData(rng.integers(0, 255, (55, 8, 8)), y, None, None, ("a", "b"), "lopsided"), cfg)
    with pytest.raises(ValueError, match="needs 10 images of class 1 but the pool has 4 free"):
        Experiment(cfg, dataset=ds)


# -------------------------------------------------------------- config and models

@pytest.mark.parametrize("changes, field, words", [
    (dict(max_steps=10, min_steps=20), "", "max_steps (10) is below min_steps (20)"),
    (dict(min_steps=-1), "min_steps", "greater than or equal to 0"),
    (dict(augment_shift=0.8), "augment_shift", "less than or equal to 0.5"),
    (dict(augment_rotation=-5), "augment_rotation", "greater than or equal to 0"),
    (dict(augment_zoom=float("nan")), "augment_zoom", "finite number"),
    (dict(weight_decay=-0.1), "weight_decay", "greater than or equal to 0"),
    (dict(dense_dropout=1.0), "dense_dropout", "less than 1"),
    (dict(kernel_size=0), "kernel_size", "greater than or equal to 1"),
    (dict(initial_strategy="stratified"), "initial_strategy", "'balanced'"),
])
def test_new_fields_name_the_problem(changes, field, words):
    with pytest.raises(ValidationError) as e:
        ExperimentConfig(**changes)
    assert field in str(e.value) and words in str(e.value)


def test_gal_architecture_and_kernel_size_limits():
    spec = ModelSpec.from_config(ExperimentConfig(model="cnn", kernel_size=4, dense_dropout=0.5), (28, 28, 1), 10)
    model = build_model(spec)
    assert [tuple(model.get_layer(n).output.shape[1:]) for n in ("conv_1", "conv_2", "pool")] == \
        [(25, 25, 32), (22, 22, 32), (11, 11, 32)]
    assert model.get_layer("dropout_1").rate == 0.25 and model.get_layer("dropout_2").rate == 0.5
    with pytest.raises(ValueError, match="kernel_size 5 needs images of at least 10x10"):
        build_model(ModelSpec.from_config(ExperimentConfig(model="cnn", kernel_size=5), (8, 8, 1), 10))


def test_bald_accepts_a_cnn_whose_only_dropout_is_the_dense_one(digits, cache):
    cfg = ExperimentConfig(model="cnn", filters=4, dropout=0.0, dense_dropout=0.5, strategy="bald", rounds=1,
                           mc_passes=3, max_epochs=10, min_steps=20)
    _, rounds = run(cfg, digits, cache)
    assert len(rounds[0].selected) == 10
    with pytest.raises(ValueError, match="no dropout"):
        Experiment(cfg.replace(dense_dropout=0.0), dataset=digits)


def test_a_preset_made_with_a_small_split_races_live_with_the_step_schedule():
    from alcore.sweep.presets import list_presets

    preset = next(p for p in list_presets() if p.key == "hybrid_fraction_fashion")
    assert all(c.config.validation == "split" for c in preset.cells)
    setup = preset.race_setup()
    cfg = setup.base
    assert cfg.validation == "none" and cfg.model == "cnn" and len(setup.seeds) == 5
    cfg.check_early_stopping()  # what a live race's Experiment checks


def test_every_shipped_preset_spec_describes_its_result_files():
    """The defaults changed, so the older presets pin the protocol they were made with: re-running
    any shipped spec finds every cell complete with its settings and runs nothing again."""
    from alcore.sweep.presets import list_presets
    from alcore.sweep.runner import inspect_cell_file

    presets = list_presets()
    assert {"gal2017_mnist", "hybrid_fraction_fashion"} <= {p.key for p in presets}
    for preset in presets:
        states = {c.name: inspect_cell_file(preset.folder, c).state for c in preset.cells}
        assert set(states.values()) == {"complete"}, (preset.key, states)


def test_a_spec_unsets_an_optional_number_with_none(tmp_path):
    from alcore.sweep.runner import load_spec

    (tmp_path / "spec.toml").write_text('[base]\nmodel = "mlp"\nmax_steps = "none"\nrounds = "None"\n'
                                        'label_budget = 40\n[axes]\nseed = [0]\n')
    _, (cell,) = load_spec(tmp_path / "spec.toml")
    assert cell.config.max_steps is None and cell.config.rounds is None and cell.config.label_budget == 40


def test_a_result_file_made_before_the_new_fields_says_it_trained_without_them(tmp_path):
    import json

    from alcore.config import BEFORE_FIELD_EXISTED

    src = sorted((Path(__file__).resolve().parents[1] / "presets" / "hybrid_fraction_fashion").glob("*.json"))[0]
    data = json.loads(src.read_text())
    assert not set(BEFORE_FIELD_EXISTED) & set(data["config"])  # made before them
    cfg = load_result(src).config
    assert (cfg.min_steps, cfg.max_steps, cfg.weight_decay, cfg.kernel_size) == (0, None, 0.0, 3)
    assert (cfg.augment_shift, cfg.augment_rotation, cfg.augment_zoom, cfg.dense_dropout) == (0, 0, 0, None)
