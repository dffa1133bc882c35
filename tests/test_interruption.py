"""Interrupted runs lose nothing: saved races reopen and continue to the same picks, the
CLI continues a run from its result file, and a crash mid-write keeps the previous file."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from alcore import ExperimentConfig
from alcore.config import RaceConfig
from alcore.cli import main as cli_main
from alcore.data.datasets import load_dataset
from alcore.engine.loop import Experiment
from alcore.engine.race import Race
from alcore.results.records import load_result, save_result
from alcore.engine.store import RunStore, SavedRaceError

from conftest import ROOT

CFG = ExperimentConfig(dataset="digits", initial=10, batch_size=10, rounds=4, max_epochs=10, seed=3)


def picks(experiments):
    return [[r.selected for r in e.rounds] for e in experiments]


def test_saved_race_reopens_and_continues_to_the_same_picks(tmp_path, digits, cache):
    strategies, seeds = ["margin", "random"], [3, 4]
    whole = Race(CFG, strategies, seeds, dataset_for=lambda c: digits, cache=cache)
    while not whole.done:
        whole.step()

    store = RunStore(tmp_path)
    race_id = store.new_id()
    store.create(race_id, RaceConfig(base=CFG, strategies=strategies, seeds=seeds))
    race = Race(CFG, strategies, seeds, dataset_for=lambda c: digits, cache=cache)
    for _ in range(3):  # the tab closes here: runs 0-2 have a round each, run 3 none
        race.step()
        exp = race.last[0]
        store.save_run(race_id, race.experiments.index(exp), exp.result())
    assert sorted(store.results(race_id)) == [0, 1, 2]

    reopened = store.open(race_id, dataset_for=lambda c: digits, cache=cache)
    assert [len(e.rounds) for e in reopened.experiments] == [1, 1, 1, 0]
    assert reopened.progress().rounds_done == 3 and reopened.seconds > 0
    while not reopened.done:
        reopened.step()
    assert picks(reopened.experiments) == picks(whole.experiments)
    assert [e.rounds[-1].test_accuracy for e in reopened.experiments] == \
           [e.rounds[-1].test_accuracy for e in whole.experiments]


def test_downloaded_result_files_become_a_race_that_continues(tmp_path, digits, cache):
    strategies, seeds = ["entropy", "random"], [3, 5]
    whole = Race(CFG, strategies, seeds, dataset_for=lambda c: digits, cache=cache)
    while not whole.done:
        whole.step()
    part = Race(CFG, strategies, seeds, dataset_for=lambda c: digits, cache=cache)
    for _ in range(6):
        part.step()
    files = [e.result() for e in part.experiments if e.rounds]
    store = RunStore(tmp_path)
    race_id = store.import_results(files[::-1])  # any order
    reopened = store.open(race_id, dataset_for=lambda c: digits, cache=cache)
    assert [(e.config.strategy, e.config.seed) for e in reopened.experiments] == \
           [("random", 3), ("entropy", 3), ("random", 5), ("entropy", 5)]  # the files' order
    while not reopened.done:
        reopened.step()
    by_run = lambda race: {(e.config.strategy, e.config.seed): [r.selected for r in e.rounds]  # noqa: E731
                           for e in race.experiments}
    assert by_run(reopened) == by_run(whole)
    with pytest.raises(SavedRaceError, match="two files"):
        store.import_results([files[0], files[0]])
    other = files[1].model_copy(update={"config": files[1].config.replace(batch_size=5)})
    with pytest.raises(SavedRaceError, match="other settings"):
        store.import_results([files[0], other])


def test_a_saved_run_from_other_settings_is_refused(tmp_path, digits, cache):
    store = RunStore(tmp_path)
    race_id = store.new_id()
    store.create(race_id, RaceConfig(base=CFG, strategies=["margin"], seeds=[3]))
    other = Experiment(CFG.replace(strategy="entropy"), dataset=digits, cache=cache)
    other.step()
    store.save_run(race_id, 0, other.result())
    with pytest.raises(ValueError, match="other settings"):
        store.open(race_id, dataset_for=lambda c: digits, cache=cache)
    store.save_run(race_id, 5, other.result())
    with pytest.raises(SavedRaceError, match="more runs"):
        store.open(race_id, dataset_for=lambda c: digits, cache=cache)


@pytest.mark.parametrize("race_id", ["../../etc", "short", "a/b" * 10, "", "x" * 65, "spaces in the id here"])
def test_malformed_race_ids_never_touch_a_path(tmp_path, race_id):
    store = RunStore(tmp_path / "runs")
    with pytest.raises(SavedRaceError, match="malformed"):
        store.manifest(race_id)
    assert not store.exists(race_id)


def test_unknown_and_broken_saved_races_are_explained(tmp_path):
    store = RunStore(tmp_path)
    race_id = store.new_id()
    with pytest.raises(SavedRaceError, match="no race is saved"):
        store.open(race_id)
    store.create(race_id, RaceConfig(base=CFG, strategies=["margin"], seeds=[0]))
    (tmp_path / race_id / "run00.json").write_text('{"schema_version": 1, "created": ')
    with pytest.raises(SavedRaceError, match="run00.json"):
        store.open(race_id)
    (tmp_path / race_id / "race.json").write_text("[]")
    with pytest.raises(SavedRaceError, match="settings cannot be read"):
        store.manifest(race_id)


def test_old_races_are_pruned_by_age_and_count(tmp_path):
    store = RunStore(tmp_path, max_age_s=100, max_races=3)
    ids = [store.new_id() for _ in range(5)]
    now = time.time()
    for i, rid in enumerate(ids):
        store.folder(rid).mkdir(parents=True)
        os.utime(store.folder(rid), (now - 10 * (5 - i), now - 10 * (5 - i)))  # ids[4] is the newest
    os.utime(store.folder(ids[4]), (now - 1000, now - 1000))  # ...but too old
    removed = store.prune(now=now)
    assert sorted(removed) == sorted([ids[4], ids[0]])
    assert {p.name for p in tmp_path.iterdir()} == {ids[1], ids[2], ids[3]}


# --------------------------------------------------------------------------- CLI

def test_cli_continues_a_stopped_run_from_its_file(tmp_path, cache):
    cfg = CFG.replace(strategy="margin")
    data = load_dataset(cfg)  # the split the CLI will prepare for this seed
    whole = Experiment(cfg, dataset=data, cache=cache)
    list(whole)
    stopped = Experiment(cfg, dataset=data, cache=cache)
    list(stopped.run(max_rounds=2))
    path = save_result(stopped.result(), tmp_path / "run.json")
    assert load_result(path).status == "stopped"

    assert cli_main(["run", "--resume", str(path)]) == 0
    done = load_result(path)
    assert done.status == "complete"
    assert [r.selected for r in done.rounds] == [r.selected for r in whole.rounds]
    assert [r.test_accuracy for r in done.rounds] == [r.test_accuracy for r in whole.rounds]


def test_continuing_on_a_differently_split_pool_is_refused(digits, cache):
    """The digits fixture is split with seed 0; a seed-3 run's file does not fit it."""
    exp = Experiment(CFG, dataset=load_dataset(CFG), cache=cache)
    list(exp.run(max_rounds=1))
    with pytest.raises(ValueError, match="dataset differs"):
        Experiment.resume(exp.result(), dataset=digits, cache=cache)


def test_cli_resume_refuses_other_settings_and_finished_runs(tmp_path, cache, capsys):
    exp = Experiment(CFG.replace(rounds=1), dataset=load_dataset(CFG), cache=cache)
    list(exp)
    path = save_result(exp.result(), tmp_path / "done.json")
    assert cli_main(["run", "--resume", str(path), "--batch-size", "5"]) == 2
    assert "drop --batch-size" in capsys.readouterr().err
    assert cli_main(["run", "--resume", str(path)]) == 2
    assert "nothing to continue" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{")
    assert cli_main(["run", "--resume", str(tmp_path / "bad.json")]) == 2
    assert "bad.json" in capsys.readouterr().err


def test_cli_keeps_its_own_paths_and_continues_a_dashboard_download_beside_its_data(tmp_path, cache, capsys,
                                                                                   monkeypatch):
    """Issue 19: the CLI writes the data file's path as typed (the user's own machine) and its
    SHA-256; a file downloaded from the dashboard names the file without a folder, and continues
    with the copy beside it, never with another file of that name."""
    import hashlib
    import json

    from alcore.results.records import without_server_paths
    from conftest import npz_with_classes

    data = npz_with_classes(["ant", "bee", "cat"], n=90)
    (tmp_path / "mine.npz").write_bytes(data)
    out = tmp_path / "cli.json"
    assert cli_main(["run", "--dataset", "npz", "--data-file", str(tmp_path / "mine.npz"), "--initial", "6",
                     "--batch-size", "6", "--rounds", "2", "--max-epochs", "5", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["config"]["data_file"] == str(tmp_path / "mine.npz")
    assert written["dataset"]["file_sha256"] == hashlib.sha256(data).hexdigest()

    cfg = ExperimentConfig(dataset="npz", data_file=str(tmp_path / "mine.npz"), initial=6, batch_size=6, rounds=2,
                           max_epochs=5)
    stopped = Experiment(cfg, cache=cache)
    list(stopped.run(max_rounds=1))
    folder = tmp_path / "downloads"
    folder.mkdir()
    path = save_result(without_server_paths(stopped.result()), folder / "run.json")
    assert json.loads(path.read_text())["config"]["data_file"] == "mine.npz"
    monkeypatch.chdir(tmp_path / "downloads")
    assert cli_main(["run", "--resume", str(path)]) == 2  # no copy of the data yet
    assert "mine.npz" in capsys.readouterr().err
    (folder / "mine.npz").write_bytes(npz_with_classes(["ant", "bee", "cat"], n=60))  # another file, same name
    assert cli_main(["run", "--resume", str(path)]) == 2
    assert "not the file margin (seed 0) was made on (its SHA-256 differs)" in capsys.readouterr().err
    (folder / "mine.npz").write_bytes(data)
    monkeypatch.chdir(tmp_path)  # the copy beside the result file, from another folder
    assert cli_main(["run", "--resume", str(path)]) == 0
    assert load_result(path).status == "complete"


# ------------------------------------------------------------------ atomic writes

WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from alcore.results.records import load_result, save_result
    res = load_result({src!r})
    print("ready", flush=True)
    i = 0
    while True:  # rewrite the file as fast as possible, growing it, until killed
        i += 1
        save_result(res.model_copy(update={{"stop_reason": "x" * (i % 5000)}}), {dst!r})
""")


def test_a_crash_mid_write_leaves_the_previous_file_intact(tmp_path, digits, cache):
    exp = Experiment(CFG.replace(rounds=2), dataset=digits, cache=cache)
    list(exp)
    src = save_result(exp.result(), tmp_path / "src.json")
    dst = tmp_path / "out" / "result.json"
    save_result(exp.result(), dst)
    script = WRITER.format(root=str(ROOT), src=str(src), dst=str(dst))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for delay in (0.05, 0.13, 0.21, 0.37, 0.52):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)  # no clean-up code runs: like a crash or a power cut
        proc.wait(timeout=30)
        loaded = load_result(dst)  # always a whole file: the old one or a complete new one
        assert loaded.rounds == exp.result().rounds


def test_a_failed_write_keeps_the_previous_file_and_no_temporary(tmp_path, digits, cache, monkeypatch):
    exp = Experiment(CFG.replace(rounds=1), dataset=digits, cache=cache)
    list(exp)
    path = save_result(exp.result(), tmp_path / "r.json")
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_result(exp.result().model_copy(update={"stop_reason": "new"}), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
