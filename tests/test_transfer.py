"""The transfer model: frozen MobileNetV2 features computed once, a dense head per round.

Offline here, so the backbone uses deterministic random weights; the ImageNet path is
checked for its offline message."""
import numpy as np
import pytest

from alcore import Experiment, ExperimentConfig
from alcore.data.datasets import DatasetUnavailableError
from alcore.engine.race import Race
from alcore.engine.transfer import with_backbone_features

CFG = ExperimentConfig(model="transfer", backbone_weights="random", backbone_size=32, hidden_units=(32,),
                       rounds=2, max_epochs=10)


@pytest.fixture(scope="module")
def featured(digits):
    return with_backbone_features(digits, CFG)


def test_features_are_computed_once_and_images_kept(featured, digits):
    assert featured.features_pool.shape == (len(digits.y_pool), 1280)
    assert featured.features_test.shape == (len(digits.y_test), 1280)
    assert np.isfinite(featured.features_pool).all() and not featured.features_pool.flags.writeable
    assert featured.x_pool is digits.x_pool  # galleries still show the images
    assert with_backbone_features(featured, CFG) is featured
    again = with_backbone_features(digits, CFG)  # deterministic random weights
    np.testing.assert_array_equal(again.features_pool[:20], featured.features_pool[:20])


def test_rounds_train_only_the_head_on_features(featured, cache):
    exp = Experiment(CFG, dataset=featured, cache=cache)
    rounds = list(exp)
    assert len(rounds) == 3 and rounds[-1].n_labeled == 30
    assert exp.trainer.spec.input_shape == (1280,)
    assert exp.trainer.count_params() == 1280 * 32 + 32 + 32 * 10 + 10
    assert all(0 <= r.test_accuracy <= 1 for r in rounds)


def test_a_race_shares_one_feature_set(digits, cache):
    race = Race(CFG.replace(rounds=1), ["margin", "random"], [0], dataset_for=lambda c: digits, cache=cache)
    a, b = race.experiments
    assert a.dataset is b.dataset and a.dataset.features_pool is not None


def test_offline_imagenet_weights_are_explained(monkeypatch, digits):
    from alcore._tf import keras

    def offline(**kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: Temporary failure")

    monkeypatch.setattr(keras.applications, "MobileNetV2", offline)
    with pytest.raises(DatasetUnavailableError, match="ImageNet weights.*offline.*backbone_weights='random'"):
        with_backbone_features(digits, CFG.replace(backbone_weights="imagenet"))
