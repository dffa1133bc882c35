import pytest
from pydantic import ValidationError

from alcore import ExperimentConfig


def test_defaults_are_valid_and_digits():
    cfg = ExperimentConfig()
    assert cfg.dataset == "digits" and cfg.strategy == "margin"
    assert cfg.max_labels() == cfg.initial + cfg.rounds * cfg.batch_size


@pytest.mark.parametrize("changes, field, words", [
    (dict(strategy="bogus"), "strategy", "unknown strategy 'bogus'"),
    (dict(batch_size=0), "batch_size", "greater than or equal to 1"),
    (dict(dataset="imagenet"), "dataset", "digits"),
    (dict(learning_rate=float("nan")), "learning_rate", "finite number"),
    (dict(l2=float("inf")), "l2", "finite number"),
    (dict(hidden_units="12,x"), "hidden_units", "whole numbers"),
    (dict(hidden_units=()), "hidden_units", "1..16384"),
    (dict(dataset="npz"), "", "needs data_file"),
    (dict(rounds=None), "", "never stop"),
    (dict(label_budget=5, initial=10), "", "below the labels"),
    (dict(validation_fraction=1.0), "validation_fraction", "less than 1"),
    (dict(typo_field=3), "typo_field", "Extra inputs"),
])
def test_bad_config_names_the_problem(changes, field, words):
    with pytest.raises(ValidationError) as e:
        ExperimentConfig(**changes)
    assert isinstance(e.value, ValueError)
    text = str(e.value)
    assert field in text and words in text


def test_idx_needs_a_folder(monkeypatch):
    monkeypatch.delenv("ALCORE_DATA_DIR", raising=False)
    with pytest.raises(ValueError, match="needs data_dir"):
        ExperimentConfig(dataset="idx")
    monkeypatch.setenv("ALCORE_DATA_DIR", "/somewhere")
    assert ExperimentConfig(dataset="idx").data_dir is None


def test_hidden_units_parse_and_replace():
    cfg = ExperimentConfig(model="mlp", hidden_units="256, 128")
    assert cfg.hidden_units == (256, 128)
    other = cfg.replace(seed=3)
    assert other.seed == 3 and other.hidden_units == (256, 128) and cfg.seed == 0
    with pytest.raises(ValueError):
        cfg.replace(seed=-1)


def test_max_labels_counts_fixed_validation_and_budget():
    cfg = ExperimentConfig(initial=10, batch_size=5, rounds=4, validation="fixed", validation_size=20)
    assert cfg.max_labels() == 10 + 20 + 20
    assert cfg.replace(label_budget=40).max_labels() == 40
    assert ExperimentConfig(rounds=None, target_accuracy=0.9).max_labels() is None


def test_a_data_location_that_does_not_apply_to_the_dataset_is_not_kept():
    """Upload an .npz on Dataset, switch back to digits, run: the result file must not carry the
    upload's server path (issue 18, item 3). data_dir likewise only for the idx datasets."""
    cfg = ExperimentConfig(dataset="digits", data_file="/tmp/alcore-uploads/ab12-mine.npz", data_dir="/srv/data")
    assert cfg.data_file is None and cfg.data_dir is None
    assert ExperimentConfig(dataset="npz", data_file="/x/mine.npz").replace(dataset="digits").data_file is None
    assert ExperimentConfig(dataset="npz", data_file="/x/mine.npz", data_dir="/srv").data_file == "/x/mine.npz"
    assert ExperimentConfig(dataset="npz", data_file="/x/mine.npz", data_dir="/srv").data_dir is None
    assert ExperimentConfig(dataset="mnist", data_dir="/srv/data", data_file="/x.npz").data_dir == "/srv/data"
    assert ExperimentConfig(dataset="mnist", data_dir="/srv/data", data_file="/x.npz").data_file is None
