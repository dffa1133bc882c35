"""Deployment limits: reading the deployer's settings, the checks, and the run-slot table."""
import threading

import pytest

from alcore import ExperimentConfig
from alcore.data.datasets import load_dataset
from alcore.serve.limits import (DeploymentLimits, DeploymentLimitsError, RunSlots, acquisition_rounds,
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
    assert acquisition_rounds(budget) == 19 and limits.run_problems(budget) == []
    fixed = ExperimentConfig(rounds=None, label_budget=250, validation="fixed", validation_size=20)
    assert acquisition_rounds(fixed) == 22  # ceil((250 - 10 - 20) / 10)
    endless = ExperimentConfig(rounds=None, target_accuracy=0.9)
    assert acquisition_rounds(endless) is None
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
