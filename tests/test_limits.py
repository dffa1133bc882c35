"""Deployment limits: reading the deployer's settings, the checks, and the run-slot table."""
import os
import re
import threading
import time

import pytest

from alcore import ExperimentConfig
from alcore.data.datasets import load_dataset
from alcore.serve.limits import (DeploymentLimits, DeploymentLimitsError, RunSlots,
                           whole_pool_size)


# ------------------------------------------------------------------------- reading

def test_nothing_set_means_safe_defaults_and_no_server_paths():
    limits = DeploymentLimits.from_sources({}, None)
    assert limits == DeploymentLimits()
    assert limits.allow_server_paths is False and limits.active
    assert limits.max_concurrent_runs == 2 and limits.max_parameters == 5_000_000
    assert len(limits.check(ExperimentConfig(pool_size=60_000, rounds=5000, mc_passes=200), ["bald"], 500)) >= 4
    assert limits.check(ExperimentConfig(), ["margin", "random"], 2) == []  # the dashboard's own defaults


def test_none_lifts_every_cap():
    env = {DeploymentLimits.env_name(f): "none" for f in DeploymentLimits.model_fields
           if f not in ("allow_server_paths", "dataset_cache_mb")}
    limits = DeploymentLimits.from_sources(env)
    assert limits == DeploymentLimits.unlimited() and not limits.active
    assert limits.check(ExperimentConfig(pool_size=60_000, rounds=5000, mc_passes=200), ["bald"], 500) == []


def test_the_round_time_limit_is_stated_and_lifted_like_the_others():
    assert DeploymentLimits().max_round_seconds == 300 and "300 s per round" in DeploymentLimits().describe()
    assert DeploymentLimits.from_sources({"ALCORE_MAX_ROUND_SECONDS": "60"}).max_round_seconds == 60
    assert DeploymentLimits.from_sources({}, {"limits": {"max_round_seconds": 90}}).max_round_seconds == 90
    assert DeploymentLimits.from_sources({"ALCORE_MAX_ROUND_SECONDS": "none"}).max_round_seconds is None
    with pytest.raises(DeploymentLimitsError, match="ALCORE_MAX_ROUND_SECONDS must be a whole number of at least 1"):
        DeploymentLimits.from_sources({"ALCORE_MAX_ROUND_SECONDS": "0"})


def test_environment_variables_set_every_limit():
    env = {"ALCORE_ALLOW_SERVER_PATHS": "yes", "ALCORE_MAX_POOL_SIZE": "20_000", "ALCORE_MAX_ROUNDS": " 50 ",
           "ALCORE_MAX_LABELS": "1000", "ALCORE_MAX_MC_PASSES": "20", "ALCORE_MAX_RUNS_PER_RACE": "8",
           "ALCORE_MAX_CONCURRENT_RUNS": "2", "ALCORE_DATA_DIR": "/data", "PATH": "/bin"}
    limits = DeploymentLimits.from_sources(env)
    assert limits == DeploymentLimits(allow_server_paths=True, max_pool_size=20_000, max_rounds=50, max_labels=1000,
                                      max_mc_passes=20, max_runs_per_race=8, max_concurrent_runs=2)
    assert limits.describe()[:6] == ["20,000 pool images", "50 rounds per run", "1,000 labels per run",
                                     "20 mc_passes", "8 runs per race", "2 runs at once on the server"]


def test_secrets_table_and_the_environment_winning_over_it():
    secrets = {"some_api_key": "x", "limits": {"allow_server_paths": True, "max_pool_size": 5000,
                                               "max_concurrent_runs": 3}}
    assert DeploymentLimits.from_sources({}, secrets) == DeploymentLimits(
        allow_server_paths=True, max_pool_size=5000, max_concurrent_runs=3)
    env = {"ALCORE_MAX_POOL_SIZE": "none", "ALCORE_ALLOW_SERVER_PATHS": "0"}
    assert DeploymentLimits.from_sources(env, secrets) == DeploymentLimits(max_pool_size=None, max_concurrent_runs=3)


@pytest.mark.parametrize("env, secrets, words", [
    ({"ALCORE_MAX_POOL_SIZE": "lots"}, None, "environment variable ALCORE_MAX_POOL_SIZE must be a whole number"),
    ({"ALCORE_MAX_POOL_SIZE": "0"}, None, "ALCORE_MAX_POOL_SIZE must be a whole number of at least 1"),
    ({"ALCORE_MAX_ROUNDS": "-3"}, None, "ALCORE_MAX_ROUNDS"),
    ({"ALCORE_MAX_LABELS": "1e4"}, None, "ALCORE_MAX_LABELS"),
    ({"ALCORE_MAX_MC_PASSES": "1"}, None, "ALCORE_MAX_MC_PASSES must be a whole number of at least 2"),
    ({"ALCORE_ALLOW_SERVER_PATHS": "maybe"}, None, "ALCORE_ALLOW_SERVER_PATHS must be 1 / true"),
    ({}, {"limits": {"max_runs_per_race": 2.5}}, "max_runs_per_race in [limits] of secrets.toml"),
    ({}, {"limits": {"max_concurrent_runs": True}}, "max_concurrent_runs in [limits]"),
    ({}, {"limits": {"allow_server_paths": "sometimes"}}, "allow_server_paths in [limits]"),
    ({}, {"limits": {"max_pool": 100}}, "unknown key(s) 'max_pool' in [limits]"),
    ({}, {"limits": {"ALCORE_MAX_POOL_SIZE": 100}}, "the settings are allow_server_paths, max_pool_size"),
    ({}, {"limits": 5}, "[limits] in secrets.toml must be a table"),
])
def test_a_bad_setting_is_refused_by_name(env, secrets, words):
    with pytest.raises(DeploymentLimitsError) as e:
        DeploymentLimits.from_sources(env, secrets)
    assert words in str(e.value)


# ------------------------------------------------------------------------ checking

def test_server_paths_are_refused_unless_allowed(tmp_path):
    idx = ExperimentConfig(dataset="idx", data_dir=str(tmp_path))
    mnist_dir = ExperimentConfig(dataset="mnist", data_dir=str(tmp_path))
    off, on = DeploymentLimits.unlimited(), DeploymentLimits.unlimited(allow_server_paths=True)
    assert any("dataset 'idx' reads a folder on the server" in p for p in off.data_problems(idx))
    assert off.data_problems(mnist_dir) == ["data_dir names a folder on the server, which this deployment "
                                            "does not allow: leave it empty"]
    assert off.data_problems(ExperimentConfig(dataset="mnist")) == []
    assert on.data_problems(idx) == [] and on.data_problems(mnist_dir) == []


def test_a_data_file_must_be_an_upload_unless_server_paths_are_allowed(tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    inside = ExperimentConfig(dataset="npz", data_file=str(uploads / "abc-x.npz"))
    outside = ExperimentConfig(dataset="npz", data_file="/etc/passwd")
    sneaky = ExperimentConfig(dataset="npz", data_file=str(uploads / ".." / "secret.npz"))
    off = DeploymentLimits.unlimited()
    assert off.data_problems(inside, upload_dir=uploads) == []
    for cfg in (outside, sneaky):
        assert off.data_problems(cfg, upload_dir=uploads) == [
            "data_file is a path on the server, which this deployment does not allow: upload the .npz file instead"]
    assert off.data_problems(inside) != []  # no upload folder given: no path is trusted
    assert DeploymentLimits.unlimited(allow_server_paths=True).data_problems(outside) == []


def test_pool_size_cap_covers_an_empty_pool_size():
    limits = DeploymentLimits(max_pool_size=1000)
    assert limits.data_problems(ExperimentConfig(pool_size=1000)) == []
    assert limits.data_problems(ExperimentConfig(pool_size=1001)) == [
        "pool_size 1,001 is over this server's limit of 1,000 pool images: set it to 1,000 or fewer"]
    whole = ExperimentConfig(dataset="mnist")
    assert limits.data_problems(whole, pool_images=900) == []
    assert limits.data_problems(whole, pool_images=60_000) == [
        "the whole training split of mnist is 60,000 images, over this server's limit of 1,000 pool images: "
        "set pool_size to 1,000 or fewer"]
    assert "the whole training split of mnist is 60,000 images" in limits.data_problems(whole)[0]  # known size
    unknown = ExperimentConfig(dataset="npz", data_file="missing.npz")
    assert "pool_size is empty" in limits.pool_problems(unknown)[0]  # size unknown: refused, not guessed


def test_rounds_and_labels_caps_follow_the_config_stopping_rules():
    limits = DeploymentLimits(max_rounds=20, max_labels=300)
    assert limits.run_problems(ExperimentConfig(rounds=20, batch_size=10)) == []  # 10 + 20 x 10 = 210 labels
    over = limits.run_problems(ExperimentConfig(rounds=39))
    assert over == ["the run makes 39 rounds, over this server's limit of 20 rounds per run: lower rounds "
                    "(or label_budget)",
                    "the run can reach 400 labels, over this server's limit of 300 labels per run: lower "
                    "rounds, batch_size or label_budget"]
    budget = ExperimentConfig(rounds=None, label_budget=200, batch_size=10)  # (200 - 10) / 10 = 19 rounds
    assert budget.acquisition_rounds() == 19 and limits.run_problems(budget) == []
    fixed = ExperimentConfig(rounds=None, label_budget=250, validation="fixed", validation_size=20)
    assert fixed.acquisition_rounds() == 22  # ceil((250 - 10 - 20) / 10)
    endless = ExperimentConfig(rounds=None, target_accuracy=0.9)
    assert endless.acquisition_rounds() is None
    assert [p.split(";")[0] for p in limits.run_problems(endless)] == [
        "the run has neither rounds nor label_budget, so nothing bounds it",
        "the run has neither rounds nor label_budget, so nothing bounds its labels"]


def test_mc_passes_cap_applies_only_when_a_bayesian_strategy_races():
    limits = DeploymentLimits(max_mc_passes=8)
    cfg = ExperimentConfig(model="mlp", mc_passes=20)
    assert limits.run_problems(cfg, ["margin", "random", "coreset"]) == []
    assert limits.run_problems(cfg, ["margin", "bald", "var_ratios", "bald"], 4) == [
        "mc_passes 20 is over this server's limit of 8 (used by bald, var_ratios): set it to 8 or fewer"]
    assert limits.run_problems(cfg.replace(mc_passes=8), ["bald"]) == []


def test_runs_per_race_cap():
    limits = DeploymentLimits(max_runs_per_race=6)
    assert limits.run_problems(ExperimentConfig(), ["margin", "random"], 6) == []
    assert limits.run_problems(ExperimentConfig(), ["margin", "random"], 8) == [
        "the race has 8 runs (strategies x seeds), over this server's limit of 6 runs per race: "
        "race fewer strategies or seeds"]


@pytest.mark.parametrize("changes", [dict(), dict(test_size=300), dict(test_size=1)])
def test_whole_pool_size_is_the_pool_prepare_draws_without_a_test_split(changes):
    ds = load_dataset(ExperimentConfig(**changes))  # digits: no test split, the test set is held out
    assert whole_pool_size(1797, False, changes.get("test_size")) == len(ds.y_pool)


def test_whole_pool_size_is_the_training_split_next_to_a_test_split(idx_folder):
    ds = load_dataset(ExperimentConfig(dataset="idx", data_dir=str(idx_folder), test_size=10))
    assert whole_pool_size(90, True, 10) == len(ds.y_pool) == 90


# ----------------------------------------------------------------------- run slots

class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_run_slots_grant_up_to_capacity_and_free_on_release():
    slots = RunSlots(2, ttl=60, clock=Clock())
    assert slots.try_acquire("a") and slots.try_acquire("b")
    assert not slots.try_acquire("c") and slots.in_use() == 2
    assert slots.try_acquire("a")  # the owner's own slot, not a second one
    slots.release("b")
    assert slots.try_acquire("c") and slots.holds("c") and not slots.holds("b")
    slots.release("nobody")  # harmless
    assert slots.in_use() == 2


def test_a_lease_lapses_unless_renewed():
    clock = Clock()
    slots = RunSlots(1, ttl=60, clock=clock)
    assert slots.try_acquire("tab-closed")
    clock.now = 50
    assert slots.renew("tab-closed") and not slots.try_acquire("other")
    clock.now = 109  # 59 s since the renewal: still held
    assert not slots.try_acquire("other")
    clock.now = 111
    assert slots.in_use() == 0
    assert slots.try_acquire("other") and not slots.renew("tab-closed")
    assert not slots.try_acquire("tab-closed")  # it must wait like everyone else


def test_a_lapsed_lease_nobody_took_can_still_be_renewed():
    clock = Clock()
    slots = RunSlots(1, ttl=10, clock=clock)
    slots.try_acquire("slow-round")
    clock.now = 30  # one long round, nobody asked in between
    assert slots.renew("slow-round") and not slots.try_acquire("other")


def test_a_lease_for_one_call_does_not_lapse():
    clock = Clock()
    slots = RunSlots(1, ttl=10, clock=clock)
    assert slots.try_acquire("training", expires=False)
    clock.now = 1e6
    assert not slots.try_acquire("other") and slots.in_use() == 1
    slots.release("training")
    assert slots.try_acquire("other")


def test_no_capacity_grants_everyone_and_bad_arguments_are_refused():
    slots = RunSlots(None)
    assert all(slots.try_acquire(i) for i in range(100)) and slots.in_use() == 100
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        RunSlots(0)
    with pytest.raises(ValueError, match="ttl must be positive"):
        RunSlots(1, ttl=0)


def test_run_slots_hold_under_concurrent_requests():
    slots = RunSlots(3)
    barrier = threading.Barrier(40)
    granted = []

    def ask(owner):
        barrier.wait()
        if slots.try_acquire(owner):
            granted.append(owner)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 3 and slots.in_use() == 3


# ------------------------------------------------------------------ the resource model

import io  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402

from alcore.serve.resources import (DataShape, KNOWN_SHAPES, data_shape, model_cost, result_file_bytes,  # noqa: E402
                                    steps_per_round)

SERVER = DeploymentLimits()  # the defaults: what a server nobody configured enforces


@pytest.mark.parametrize("changes, image, classes", [
    (dict(model="softmax"), (8, 8, 1), 10),
    (dict(model="mlp", hidden_units=(32,)), (8, 8, 1), 10),
    (dict(model="mlp", hidden_units=(256, 128), dropout=0.0), (28, 28, 1), 10),
    (dict(model="mlp", hidden_units=(64,), augment_shift=0.1), (28, 28, 1), 47),
    (dict(model="cnn"), (28, 28, 1), 10),
    (dict(model="cnn", filters=16, kernel_size=4, dense_dropout=0.5), (32, 32, 3), 10),
    (dict(model="cnn", filters=8, kernel_size=5, dropout=0.0), (13, 17, 1), 3),
    (dict(model="transfer", hidden_units=(128,)), (1280,), 10),
])
def test_parameters_are_counted_as_keras_counts_them(changes, image, classes):
    from alcore.engine.models import ModelSpec, build_model

    cfg = ExperimentConfig(**changes)
    spec = ModelSpec.from_config(cfg, image, classes)
    assert model_cost(cfg, image, classes).parameters == build_model(spec).count_params()


def test_the_forged_model_of_a_link_is_counted_not_built():
    cfg = ExperimentConfig(model="mlp", hidden_units=(16384, 16384))  # digits: 64 inputs
    assert model_cost(cfg, (8, 8, 1), 10).parameters == 269_680_650
    problems = SERVER.model_problems(cfg, (8, 8, 1), 10)
    assert problems[0] == ("the mlp model has 269,680,650 parameters; this server allows at most 5,000,000: "
                           "use fewer hidden_units")
    assert "MB to train or predict" in problems[1]
    wide = ExperimentConfig(model="mlp", hidden_units=(12000, 12000), dataset="mnist")  # the forged Replay file
    assert "parameters; this server allows at most 5,000,000" in SERVER.run_problems(wide)[0]


def test_a_cnn_too_big_or_too_long_and_a_kernel_too_large_are_named():
    big = ExperimentConfig(model="cnn", dataset="mnist", pool_size=1000, filters=512)
    assert any("the cnn model has 11,803,530 parameters" in p and "use fewer filters" in p for p in SERVER.run_problems(big))
    # the attacker's /run link (20 labels, one per step), with the default cap of 1 000 steps lifted
    assert steps_per_round(ExperimentConfig(model="cnn", filters=512, validation="none", max_epochs=10000,
                                            train_batch_size=1, rounds=1)) == 1000
    endless = ExperimentConfig(model="cnn", filters=512, validation="none", max_epochs=10000, train_batch_size=1,
                               rounds=1, max_steps=None)
    assert steps_per_round(endless) == 200_000
    assert SERVER.run_problems(endless) == [
        "a round trains for up to 200,000 gradient steps; this server allows at most 5,000: lower max_epochs "
        "(or set max_steps), or raise train_batch_size"]
    assert steps_per_round(endless.replace(max_steps=1000)) == 1000
    assert steps_per_round(ExperimentConfig(model="cnn", validation="split", refit=True)) == 50 * 13 * 2
    assert steps_per_round(ExperimentConfig()) == 0  # softmax: L-BFGS, no mini-batches
    wide = ExperimentConfig(model="cnn", kernel_size=5)  # digits are 8x8: two 5x5 convolutions do not fit
    assert SERVER.run_problems(wide) == ["cnn with kernel_size 5 needs images of at least 10x10 pixels, these are 8x8"]
    batch = ExperimentConfig(model="cnn", dataset="mnist", pool_size=1000, train_batch_size=8192)
    assert any("MB to train or predict" in p and "smaller train_batch_size" in p for p in SERVER.run_problems(batch))


def test_the_defaults_accept_the_dashboard_defaults_and_the_presets_protocols():
    from alcore.sweep.presets import list_presets

    for model in ("softmax", "mlp", "cnn", "transfer"):
        for dataset in ("digits", "mnist", "fashion_mnist", "cifar10"):
            pool = None if dataset == "digits" else 10_000 if (model, dataset) == ("transfer", "cifar10") else 20_000
            cfg = ExperimentConfig(model=model, dataset=dataset, pool_size=pool)
            assert SERVER.check(cfg, ["margin", "random"], 2) == [], (model, dataset)
    gal = next(p for p in list_presets() if "gal2017" in str(p.files[0]))
    cfg = json.loads(gal.files[0].read_text())["config"]
    cfg = ExperimentConfig(**{k: v for k, v in cfg.items() if k != "data_dir"})
    assert SERVER.cost_problems(cfg, ["bald", "var_ratios", "entropy", "margin", "random"], 15) == []


def test_a_race_of_every_strategy_on_many_seeds_is_refused_with_no_secrets():
    problems = DeploymentLimits.from_sources({}, {}).run_problems(ExperimentConfig(), ["margin"] * 13, 260)
    assert problems == ["the race has 260 runs (strategies x seeds), over this server's limit of 15 runs per race: "
                        "race fewer strategies or seeds"]


def test_images_scored_per_round_count_the_stochastic_passes():
    cfg = ExperimentConfig(dataset="mnist", pool_size=20_000, mc_passes=50, model="mlp")
    assert SERVER.cost_problems(cfg, ["margin"]) == []
    assert SERVER.cost_problems(cfg, ["bald"]) == [
        "each round scores 1,000,000 images (candidates x mc_passes); this server allows at most 200,000: set "
        "candidates lower, or lower mc_passes"]
    assert SERVER.cost_problems(cfg.replace(candidates=2000), ["bald"]) == []
    # mc_evaluation runs the 10 000 test images mc_passes times too, whatever the strategy
    mc = cfg.replace(candidates=2000, mc_evaluation=True)
    assert SERVER.cost_problems(mc, ["margin"]) == [
        "each round scores 502,000 images (candidates x mc_passes, test images x mc_passes); this server allows "
        "at most 200,000: set candidates lower, or lower mc_passes, or turn mc_evaluation off"]
    assert SERVER.cost_problems(mc.replace(mc_passes=10), ["margin"]) == []
    assert SERVER.run_problems(mc.replace(mc_passes=60), ["margin"], 1)[0].startswith(
        "mc_passes 60 is over this server's limit of 50 (used by mc_evaluation)")


def test_the_data_a_race_holds_counts_one_copy_per_seed_that_draws_its_pool():
    cifar = ExperimentConfig(dataset="cifar10", pool_size=20_000)  # (20 000 + 10 000) x 3 072 x 4 bytes
    assert SERVER.dataset_problems(cifar) == []
    assert SERVER.dataset_problems(cifar, seeds=3) == [
        "the prepared data takes 1,055 MB (3 copies (one per seed, each drawing its own pool) of 20,000 pool and "
        "10,000 test images as float32); this server allows at most 400 MB: lower pool_size or test_size, or race "
        "fewer seeds"]
    assert SERVER.dataset_problems(ExperimentConfig(dataset="mnist"), seeds=3) == []  # one shared copy
    assert SERVER.run_problems(cifar, ["margin", "random"], 6)[0].startswith("the prepared data takes 1,055 MB")


def test_a_test_split_over_the_cap_is_refused_unless_test_size_lowers_it():
    shape = DataShape((28, 28, 1), 10, 1000, 50_000)
    cfg = ExperimentConfig()
    assert SERVER.dataset_problems(cfg, shape) == [
        "the run would test on 50,000 images every round; this server allows at most 10,000: set test_size to "
        "10,000 or fewer"]
    assert SERVER.dataset_problems(cfg.replace(test_size=10_000), shape) == []


def forged_npz(path, x_shape, y=None, x_test_shape=None, class_names=None):
    """A .npz whose x_train (and x_test) .npy headers announce ``x_shape`` with almost no data:
    the zip's central directory claims the size the header implies, as a deflated block of
    zeros would (a 668 KB file can unpack to 686 MB). Only headers can be read from it."""
    from test_fuzz import npy_bytes

    y = np.zeros(x_shape[0], np.uint8) if y is None else y
    members = {"x_train.npy": (x_shape, npy_bytes({"descr": "|u1", "fortran_order": False, "shape": x_shape}, b""))}
    if x_test_shape is not None:
        members["x_test.npy"] = (x_test_shape, npy_bytes({"descr": "|u1", "fortran_order": False,
                                                          "shape": x_test_shape}, b""))
    buf = io.BytesIO()
    np.save(buf, y)
    real = {"y_train.npy": buf.getvalue()}
    if x_test_shape is not None:
        real["y_test.npy"] = buf.getvalue()[:0] or _npy(np.zeros(x_test_shape[0], np.uint8))
    if class_names is not None:
        real["class_names.npy"] = _npy(np.array(class_names))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, (_, data) in members.items():
            zf.writestr(name, data)
        for name, data in real.items():
            zf.writestr(name, data)
    raw = bytearray(out.getvalue())
    at = raw.find(b"PK\x01\x02")
    while at >= 0:  # the forged members' central-directory entries claim their full size
        name_len = struct.unpack("<H", raw[at + 28:at + 30])[0]
        name = raw[at + 46:at + 46 + name_len].decode()
        if name in members:
            shape, data = members[name]
            raw[at + 24:at + 28] = struct.pack("<I", (len(data) + math.prod(shape)) % 2**32)
        at = raw.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(raw))
    return path


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


import math  # noqa: E402
import struct  # noqa: E402
import zipfile  # noqa: E402


def peak_bytes(call) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_npz_bomb_is_refused_from_its_headers_before_anything_is_loaded(tmp_path):
    path = forged_npz(tmp_path / "bomb.npz", (686_000, 25, 40), x_test_shape=(10, 25, 40))
    assert path.stat().st_size < 2000
    cfg = ExperimentConfig(dataset="npz", data_file=str(path), pool_size=100)
    problems = []
    peak = peak_bytes(lambda: problems.extend(SERVER.dataset_problems(cfg)))
    assert problems == ["the .npz file's arrays unpack to 686,696,010 bytes (655 MB); this server allows at most "
                        "256 MB: upload a smaller file"]
    assert peak < 20 * 2**20  # the labels (686 000 bytes) at most: no image data
    assert SERVER.run_problems(cfg) == problems  # nothing more is read of such a file


def test_an_uncapped_test_split_is_refused_before_loading(tmp_path):
    path = forged_npz(tmp_path / "tests.npz", (100, 28, 28), x_test_shape=(200_000, 28, 28))
    cfg = ExperimentConfig(dataset="npz", data_file=str(path))
    assert SERVER.dataset_problems(cfg)[0] == (
        "the run would test on 200,000 images every round; this server allows at most 10,000: set test_size to "
        "10,000 or fewer")
    assert SERVER.dataset_problems(cfg.replace(test_size=5000)) == []


@pytest.mark.parametrize("classes", [2000, 100_000])
def test_many_classes_are_refused_from_the_labels_or_the_names(tmp_path, classes):
    labels = np.arange(2 * classes) % classes
    by_labels = forged_npz(tmp_path / "labels.npz", (2 * classes, 8, 8), y=labels.astype(np.int32))
    problem = f"the dataset has {classes:,} classes; this server allows at most 100"
    assert problem in SERVER.dataset_problems(ExperimentConfig(dataset="npz", data_file=str(by_labels)))
    by_names = forged_npz(tmp_path / "names.npz", (10, 8, 8), class_names=[str(i) for i in range(classes)])
    assert problem in SERVER.dataset_problems(ExperimentConfig(dataset="npz", data_file=str(by_names)))


def test_result_uploads_are_refused_by_size_before_parsing():
    mb = 2**20
    assert SERVER.upload_problems([("run.json", int(1.4 * mb))]) == [None]
    assert SERVER.upload_problems([("huge.json", int(63.9 * mb))]) == [
        "huge.json is 64 MB; this server reads result files of at most 16 MB"]
    many = SERVER.upload_problems([(f"r{i}.json", 6 * mb) for i in range(3)])
    assert many[:2] == [None, None] and many[2].startswith("r2.json (6.0 MB) would take the result files read at "
                                                           "once to 18 MB; this server reads at most 16 MB at once")
    assert DeploymentLimits.unlimited().upload_problems([("huge.json", 10**9)]) == [None]


def test_a_run_whose_result_file_would_be_refused_is_refused_at_the_start():
    shape = DataShape((8, 8, 1), 30, 5000, 1000)
    cfg = ExperimentConfig(rounds=100, batch_size=50, inspect_k=256)
    assert result_file_bytes(cfg, shape, 100) > 16 * 2**20
    assert "each run's result file may reach" in SERVER.result_problems(cfg, shape)[0]
    assert SERVER.result_problems(ExperimentConfig(), shape) == []


def test_the_result_file_estimate_bounds_real_files(tmp_path, digits):
    from alcore.engine.loop import Experiment
    from alcore.results.records import save_result

    cfg = ExperimentConfig(rounds=4, batch_size=7, inspect_k=20)
    exp = Experiment(cfg, dataset=digits)
    list(exp.run())
    path = save_result(exp.result(), tmp_path / "run.json")
    shape = KNOWN_SHAPES["digits"]
    assert path.stat().st_size <= result_file_bytes(cfg, shape, 4) < 4 * path.stat().st_size + 60_000


def test_the_shape_of_a_published_dataset_or_an_npz_is_known_without_loading(tmp_path):
    from alcore.data.datasets import load_dataset

    digits = load_dataset(ExperimentConfig())
    shape = data_shape(ExperimentConfig())
    assert shape.image_shape == digits.image_shape and shape.n_classes == digits.n_classes
    assert shape.pool_images(ExperimentConfig()) == len(digits.y_pool)
    assert shape.test_images(ExperimentConfig()) == len(digits.y_test)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((50, 6, 7, 3), np.uint8), y_train=np.arange(50) % 4 + 1)
    npz = data_shape(ExperimentConfig(dataset="npz", data_file=str(path)))
    assert npz == DataShape((6, 7, 3), 4, 50, None, file_bytes=50 * 6 * 7 * 3 + 50 * 8)
    assert data_shape(ExperimentConfig(dataset="npz", data_file=str(tmp_path / "missing.npz"))) is None


# ---------------------------------------------------------- class storage and files

def test_many_classes_store_their_confusion_matrix_by_its_cells(tmp_path):
    from alcore.results.records import (DENSE_CONFUSION_MAX_CLASSES, SparseConfusion, confusion_matrix,
                                        confusion_of)

    rng = np.random.default_rng(0)
    k = 2000
    y, pred = rng.integers(0, k, 500), rng.integers(0, k, 500)
    sparse = confusion_of(y, pred, k)
    assert isinstance(sparse, SparseConfusion) and len(sparse.cells) <= 3 * 500
    dense = np.zeros((k, k), np.int64)
    np.add.at(dense, (y, pred), 1)
    assert (confusion_matrix(sparse) == dense).all()
    small = confusion_of(y % 10, pred % 10, 10)
    assert isinstance(small, list) and DENSE_CONFUSION_MAX_CLASSES >= 10  # the old form, unchanged
    with pytest.raises(ValueError, match="increasing"):
        SparseConfusion(classes=3, cells=[1, 1, 2, 0, 0, 1])
    with pytest.raises(ValueError, match="outside"):
        SparseConfusion(classes=3, cells=[3, 0, 1])


def test_a_2000_class_run_writes_a_small_file_that_loads_back(tmp_path):
    from alcore.data.datasets import load_dataset
    from alcore.engine.loop import Experiment
    from alcore.results.records import SparseConfusion, load_result, save_result

    k, rng = 2000, np.random.default_rng(1)
    path = tmp_path / "many.npz"
    np.savez(path, x_train=rng.integers(0, 255, (3 * k, 8, 8)).astype(np.uint8), y_train=np.arange(3 * k) % k,
             x_test=rng.integers(0, 255, (k, 8, 8)).astype(np.uint8), y_test=np.arange(k))
    cfg = ExperimentConfig(dataset="npz", data_file=str(path), rounds=2, initial=20)
    exp = Experiment(cfg, dataset=load_dataset(cfg))
    list(exp.run())
    out = save_result(exp.result(), tmp_path / "many.json")
    assert out.stat().st_size < 2 * 2**20  # the whole matrices were 3 x 4 million numbers, 192 MB
    assert out.stat().st_size <= result_file_bytes(cfg, data_shape(cfg), 2)
    back = load_result(out)
    assert isinstance(back.rounds[0].confusion, SparseConfusion) and back.rounds[-1] == exp.rounds[-1]


def test_the_shipped_presets_still_load_with_their_whole_matrices():
    from alcore.sweep.presets import list_presets, load_preset

    preset = list_presets()[0]
    results = load_preset(preset)
    assert results and all(isinstance(r.rounds[0].confusion, list) for r in results)


def test_result_files_get_the_mode_a_plain_open_gives(tmp_path):
    from alcore.results.records import atomic_write

    old = os.umask(0o027)
    try:
        assert os.stat(atomic_write(tmp_path / "a.json", b"{}")).st_mode & 0o777 == 0o640
        os.umask(0o022)
        assert os.stat(atomic_write(tmp_path / "b.json", b"{}")).st_mode & 0o777 == 0o644
        with open(tmp_path / "plain.json", "wb"):
            pass
        assert os.stat(tmp_path / "plain.json").st_mode == os.stat(tmp_path / "b.json").st_mode
    finally:
        os.umask(old)


def test_stale_temporary_files_of_killed_saves_are_removed_when_a_race_starts(tmp_path):
    from alcore.config import RaceConfig
    from alcore.engine.store import RunStore
    from alcore.results.records import clean_stale_temp

    store = RunStore(tmp_path)
    old_id, new_id = store.new_id(), store.new_id()
    store.create(old_id, RaceConfig(base=ExperimentConfig(), strategies=["margin"], seeds=[0]))
    stale = tmp_path / old_id / ".run00.json.k1ll3d.tmp"
    fresh = tmp_path / old_id / ".run01.json.s4v1ng.tmp"
    stale.write_bytes(b"{half")
    fresh.write_bytes(b"{half")
    hours_ago = time.time() - 2 * 3600
    os.utime(stale, (hours_ago, hours_ago))
    keep = tmp_path / old_id / "notes.tmp"  # not a temporary file of atomic_write
    keep.write_bytes(b"x")
    os.utime(keep, (hours_ago, hours_ago))
    store.create(new_id, RaceConfig(base=ExperimentConfig(), strategies=["margin"], seeds=[0]))
    assert not stale.exists() and fresh.exists() and keep.exists()
    assert clean_stale_temp(tmp_path / "no such folder") == []


# ---------------------------------------------------------------------- npz labels

def test_labels_1_to_10_become_classes_0_to_9_named_after_their_numbers(tmp_path):
    from alcore.data.datasets import load_dataset

    rng = np.random.default_rng(0)
    path = tmp_path / "one-based.npz"
    np.savez(path, x_train=rng.integers(0, 255, (200, 8, 8)).astype(np.uint8), y_train=np.arange(200) % 10 + 1)
    ds = load_dataset(ExperimentConfig(dataset="npz", data_file=str(path)))
    assert ds.class_names == tuple(str(i) for i in range(1, 11)) and ds.n_classes == 10
    assert set(np.unique(ds.y_pool)) == set(range(10))
    assert any("renumbered 0..9" in n for n in ds.notes)
    zero_based = tmp_path / "zero-based.npz"
    np.savez(zero_based, x_train=rng.integers(0, 255, (200, 8, 8)).astype(np.uint8), y_train=np.arange(200) % 10)
    assert load_dataset(ExperimentConfig(dataset="npz", data_file=str(zero_based))).notes == ()


def test_a_class_only_in_the_test_split_is_named(tmp_path):
    from alcore.data.datasets import load_dataset

    rng = np.random.default_rng(0)
    path = tmp_path / "test-only.npz"
    np.savez(path, x_train=rng.integers(0, 255, (60, 8, 8)).astype(np.uint8), y_train=np.arange(60) % 3,
             x_test=rng.integers(0, 255, (20, 8, 8)).astype(np.uint8), y_test=np.arange(20) % 5,
             class_names=np.array(["cat", "dog", "owl", "yak", "emu"]))
    ds = load_dataset(ExperimentConfig(dataset="npz", data_file=str(path)))
    assert ds.notes == ("2 classes 'yak', 'emu' have 8 test image(s) but no image in the pool: no model trained "
                        "on this pool can predict them, so those test images always count as errors",)


# ------------------------------------------------------------------------ the pages

def _page(page, config=None):
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    if config is not None:
        at.session_state["config"] = config
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def test_the_model_page_counts_an_oversized_model_instead_of_building_it():
    at = _page("model", ExperimentConfig(model="mlp", hidden_units=(16384, 16384)))
    assert any("269,680,650 parameters; this server allows at most 5,000,000" in e.value for e in at.error)
    assert not [m for m in at.metric if m.label == "Parameters"]


def test_compare_refuses_an_oversized_upload_by_its_size():
    at = _page("compare")
    at.file_uploader[0].set_value([("big.json", b" " * (17 * 2**20), "application/json")]).run()
    assert not at.exception, at.exception
    assert any("big.json is 17 MB; this server reads result files of at most 16 MB" in e.value.replace("\\", "")
               for e in at.error)


# --------------------------------------------------------- uploads on the server's disk (issue 19)

def _npz_bytes(n: int = 30, classes: int = 3, seed: int = 0) -> bytes:
    import io

    import numpy as np

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    np.savez(buf, x_train=rng.integers(0, 255, (n, 8, 8)).astype(np.uint8), y_train=np.arange(n) % classes)
    return buf.getvalue()


def _disk_bytes(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def _junk_uploads(tmp_path) -> list[tuple[bytes, str, str]]:
    """Three files the issue's attacker uploaded (refused 95 MB files left 283 MB), small: bytes
    that are no zip, a zip without one image, and an npz whose headers declare 655 MB."""
    import random

    bomb = forged_npz(tmp_path / "bomb.npz", (686_000, 25, 40)).read_bytes()
    zipped = tmp_path / "notes.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("readme.txt", "no images here")
    return [(random.Random(0).randbytes(200_000), "junk.npz", ".npz"), (zipped.read_bytes(), "notes.zip", ".zip"),
            (bomb, "bomb.npz", ".npz")]


def test_refused_uploads_leave_nothing_on_disk(tmp_path):
    from alcore.serve.uploads import SessionUploads, UploadRefused, UploadStore

    store = UploadStore(tmp_path / "uploads")
    mine = SessionUploads(store)
    words = ["junk.npz: not a readable .npz file", "notes.zip: holds no image file",
             "bomb.npz: the .npz file's arrays unpack to 686,686,000 bytes (655 MB); this server allows at most 256 MB"]
    for (data, name, suffix), said in zip(_junk_uploads(tmp_path), words):
        with pytest.raises(UploadRefused, match=re.escape(said)):
            mine.keep(data, name, suffix, "dataset", SERVER)
    assert _disk_bytes(store.root) == 0
    with pytest.raises(UploadRefused, match="has 200 classes; this server allows at most 100"):
        mine.keep(_npz_bytes(400, classes=200), "many.npz", ".npz", "dataset", SERVER)
    assert _disk_bytes(store.root) == 0


def test_an_upload_is_kept_under_its_session_by_its_hash_and_name(tmp_path):
    import hashlib

    from alcore.serve.uploads import SessionUploads, UploadStore, fingerprint_in_path

    store = UploadStore(tmp_path / "uploads")
    a, b = SessionUploads(store), SessionUploads(store)
    data = _npz_bytes()
    path = a.keep(data, "C:\\Users\\me\\../my data (1).npz", ".npz", "dataset", SERVER)
    sha = hashlib.sha256(data).hexdigest()
    assert path == store.root / a.session / sha / "my data (1).npz" and path.read_bytes() == data
    assert fingerprint_in_path(str(path), store.root) == sha
    assert a.holds(str(path)) and not b.holds(str(path))  # the other session cannot name it
    assert a.find(sha) == path and b.find(sha) is None
    assert a.session != b.session and len(a.session) >= 16


def test_replacing_an_upload_removes_the_old_file(tmp_path):
    from alcore.serve.uploads import SessionUploads, UploadStore

    store = UploadStore(tmp_path / "uploads")
    mine = SessionUploads(store)
    first = mine.keep(_npz_bytes(seed=1), "a.npz", ".npz", "dataset", SERVER)
    second = mine.keep(_npz_bytes(seed=2), "b.npz", ".npz", "dataset", SERVER)
    assert not first.exists() and not first.parent.exists() and second.exists()
    # a file two roles hold stays until neither does
    shared = mine.keep(_npz_bytes(seed=2), "b.npz", ".npz", "result data", SERVER)
    assert shared == second
    third = mine.keep(_npz_bytes(seed=3), "c.npz", ".npz", "dataset", SERVER)
    assert second.exists() and third.exists()
    mine.keep(_npz_bytes(seed=3), "c.npz", ".npz", "result data", SERVER)
    assert not second.exists() and third.exists()
    assert sorted(p.name for p in mine.folder.iterdir()) == [third.parent.name]


def test_a_sessions_uploads_go_when_its_state_is_dropped(tmp_path):
    import gc

    from alcore.serve.uploads import SessionUploads, UploadStore

    store = UploadStore(tmp_path / "uploads")
    mine = SessionUploads(store)
    folder = mine.folder
    mine.keep(_npz_bytes(), "a.npz", ".npz", "dataset", SERVER)
    state = {"uploads": mine}  # as Streamlit holds it, in the session's state
    del mine
    gc.collect()
    assert folder.exists()
    state.clear()  # Streamlit drops a closed session's state
    gc.collect()
    assert not folder.exists()


def test_the_sweep_removes_stale_uploads_and_temporary_files(tmp_path):
    from alcore.serve.uploads import MAX_AGE_S, SessionUploads, UploadStore

    store = UploadStore(tmp_path / "uploads")
    stale, live = SessionUploads(store), SessionUploads(store)
    old_file = stale.keep(_npz_bytes(seed=1), "old.npz", ".npz", "dataset", SERVER)
    live_file = live.keep(_npz_bytes(seed=2), "new.npz", ".npz", "dataset", SERVER)
    killed = live.folder / "ab" / ".x.npz.k1ll3d.tmp"  # a write that was killed, in a live session
    killed.parent.mkdir()
    killed.write_bytes(b"x" * 100)
    legacy = [store.root / "0123456789abcdef-mine.tmp", store.root / "0123456789abcdef-mine.npz"]
    for p in legacy:  # what the versions that kept every upload at the top left there
        p.write_bytes(b"x" * 100)
    now = time.time()
    for p, age in ((stale.folder, MAX_AGE_S + 60), (killed, 2 * 3600), (legacy[0], 2 * 3600), (legacy[1], 2 * 3600)):
        os.utime(p, (now - age, now - age))
    fresh_temp = live.folder / ".y.npz.s4v1ng.tmp"
    fresh_temp.write_bytes(b"y")
    removed = store.sweep(now)
    assert not old_file.exists() and not stale.folder.exists() and not killed.exists()
    assert not any(p.exists() for p in legacy)
    assert live_file.exists() and fresh_temp.exists()
    assert set(removed) >= {stale.session, killed.name, legacy[0].name, legacy[1].name}
    assert store.sweep(now) == []


def test_uploads_over_the_cap_remove_the_least_recently_used_sessions(tmp_path):
    from alcore.serve.uploads import SessionUploads, UploadRefused, UploadStore

    data = [_npz_bytes(200, seed=i) for i in range(4)]
    size = len(data[0])
    store = UploadStore(tmp_path / "uploads", max_bytes=int(2.5 * size))
    a, b, c = SessionUploads(store), SessionUploads(store), SessionUploads(store)
    fa = a.keep(data[0], "a.npz", ".npz", "dataset", SERVER)
    fb = b.keep(data[1], "b.npz", ".npz", "dataset", SERVER)
    then = time.time() - 60
    os.utime(b.folder, (then, then))  # b used its upload longest ago
    fc = c.keep(data[2], "c.npz", ".npz", "dataset", SERVER)
    assert fa.exists() and not fb.exists() and fc.exists()
    assert _disk_bytes(store.root) <= store.max_bytes
    with pytest.raises(UploadRefused, match="this server keeps at most"):
        SessionUploads(UploadStore(tmp_path / "small", max_bytes=size // 2)).keep(
            data[3], "d.npz", ".npz", "dataset", DeploymentLimits.unlimited())
    assert _disk_bytes(tmp_path / "small") == 0


# ------------------------------------------------ image uploads within the deployment's limits (issue 16)

def test_image_uploads_are_held_to_the_deployments_limits_and_none_lifts_them(tmp_path):
    from alcore.data.images import MAX_MEMBERS, MAX_TOTAL_PIXELS, ImageLimits
    from alcore.serve.uploads import SessionUploads, UploadRefused, UploadStore
    from tests.imagesets import class_folder_zip

    lim = SERVER.image_limits()
    assert (lim.max_members, lim.max_total_pixels, lim.max_total_bytes) == (30_000, 300_000_000, 256 * 2**20)
    assert "256 MiB unpacked in all" in lim.describe()
    lifted = DeploymentLimits.from_sources({"ALCORE_MAX_UPLOAD_IMAGES": "none", "ALCORE_MAX_UPLOAD_PIXELS": "none",
                                            "ALCORE_MAX_FILE_MB": "none"}, {}).image_limits()
    assert lifted == ImageLimits() and lifted.max_members == MAX_MEMBERS and lifted.max_total_pixels == MAX_TOTAL_PIXELS

    shapes = class_folder_zip(tmp_path / "shapes.zip", n_images=12, n_classes=3, size=20).read_bytes()
    small = DeploymentLimits.from_sources({"ALCORE_MAX_UPLOAD_IMAGES": "10"}, {})
    store = UploadStore(tmp_path / "uploads")
    with pytest.raises(UploadRefused, match=r"shapes\.zip: 1[2-9] files, over the limit of 10 files per upload"):
        SessionUploads(store).keep(shapes, "shapes.zip", ".zip", "dataset", small)
    assert not any(p.is_file() for p in store.root.rglob("*"))  # refused before it was written
    mine = SessionUploads(store)  # its folder goes with it
    kept = mine.keep(shapes, "shapes.zip", ".zip", "dataset", SERVER)

    # the pixels are read from the headers as the images load: 12 images of 20 x 20 are 4 800
    cfg = ExperimentConfig(dataset="images", data_file=str(kept), image_size=8, test_size=3)
    assert len(load_dataset(cfg, image_limits=SERVER.image_limits()).y_pool) == 9
    few = DeploymentLimits.from_sources({"ALCORE_MAX_UPLOAD_PIXELS": "2000"}, {}).image_limits()
    with pytest.raises(ValueError, match=r"hold [\d,]+ pixels, over the limit of 2,000 in all"):
        load_dataset(cfg, image_limits=few)
