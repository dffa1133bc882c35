"""Sweeps: spec files, cells, and real Dask clusters of worker processes running them."""
import subprocess
import sys
import textwrap

import pytest

from alcore import ExperimentConfig
from alcore.results.records import load_result, save_result
from alcore.sweep.runner import SweepSpecError, cell_path, error_path, inspect_cell_file, load_spec, run_sweep
from conftest import ROOT

SMALL = """
name = "digits smoke"
[base]
dataset = "digits"
pool_size = 300
test_size = 200
rounds = 3
max_epochs = 8
batch_size = 10
"""


def spec_file(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ------------------------------------------------------------------ spec files

@pytest.mark.parametrize("text, message", [
    ("[base]\nrounds = 3\n", "one [axes] table or as [[grid]] tables"),
    ("[axes]\nseed = [0]\n[[grid]]\nseed = [1]\n", "not both"),
    ("[axes]\n", "[axes] is empty"),
    ("[axes]\nsede = [0, 1]\n", "unknown config field 'sede'"),
    ("[base]\nbatchsize = 3\n[axes]\nseed = [0]\n", "unknown config field(s) in [base]: batchsize"),
    ("[axes]\nseed = []\n", "seed has no values"),
    ("[axes]\nseed = [0, 0]\n", "seed lists a value twice"),
    ("[axes]\nseed = 3\n", "axes.seed"),
    ("[axes]\nstrategy = ['margin', 'margn']\n", "cell strategy=margn: strategy: unknown strategy 'margn'"),
    ("[axes]\nbatch_size = [10, -1]\n", "cell batch_size=-1: batch_size"),
    ("[[grid]]\nseed = [0]\n[[grid]]\nsede = [1]\n", "[[grid]] number 2: unknown config field 'sede'"),
    ("colour = 'red'\n[axes]\nseed = [0]\n", "colour"),
    ("[axes\nseed = [0]\n", "not valid TOML"),
    ("[axes]\nseed = " + repr(list(range(400))) + "\ninitial = " + repr(list(range(1, 400))) + "\n",
     "at most 100000"),
])
def test_bad_specs_are_refused_naming_the_problem(tmp_path, text, message):
    with pytest.raises(SweepSpecError) as e:
        load_spec(spec_file(tmp_path, text))
    assert message in str(e.value)
    assert "spec.toml" in str(e.value)


def test_a_missing_or_binary_spec_is_refused(tmp_path):
    with pytest.raises(SweepSpecError, match="no such spec file"):
        load_spec(tmp_path / "nope.toml")
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe[axes]")
    with pytest.raises(SweepSpecError, match="not UTF-8"):
        load_spec(bad)


def test_cells_cross_the_axes_pool_the_grids_and_drop_repeats(tmp_path):
    spec, cells = load_spec(spec_file(tmp_path, SMALL + """
        [[grid]]
        strategy = ["random", "margin"]
        seed = [0, 1]
        [[grid]]
        strategy = ["hybrid"]
        hybrid_fraction = [0.2, 0.5]
        seed = [0, 1]
        [[grid]]
        strategy = ["margin"]
        seed = [1, 2]
    """))
    assert spec.name == "digits smoke"
    names = [c.name for c in cells]
    assert names[:4] == ["strategy=random__seed=0", "strategy=random__seed=1",
                         "strategy=margin__seed=0", "strategy=margin__seed=1"]
    assert "strategy=hybrid__hybrid_fraction=0.2__seed=1" in names
    # margin on seed 1 is already in the first grid: it runs once
    assert names[-1] == "strategy=margin__seed=2" and len(cells) == 4 + 4 + 1
    assert len({c.config for c in cells}) == len(cells)
    assert all(c.config.rounds == 3 and c.config.pool_size == 300 for c in cells)
    assert cells[5].config.hybrid_fraction == 0.2 and cells[5].describe() == "strategy=hybrid, hybrid_fraction=0.2, seed=1"


def test_relative_paths_in_a_spec_are_relative_to_its_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    _, cells = load_spec(spec_file(tmp_path / "sub", """
        [base]
        dataset = "npz"
        data_file = "../data/mine.npz"
        rounds = 2
        [axes]
        seed = [0]
    """))
    assert cells[0].config.data_file == str((tmp_path / "data" / "mine.npz").resolve())


# ------------------------------------------------------------------ real clusters

@pytest.fixture(scope="module")
def cli_sweep(tmp_path_factory):
    """`python -m alcore sweep` end to end: a LocalCluster of 2 worker processes, four
    digits cells (2 strategies x 2 seeds) and one cell whose data file is missing."""
    tmp = tmp_path_factory.mktemp("sweep")
    spec = spec_file(tmp, SMALL + """
        [[grid]]
        strategy = ["random", "margin"]
        seed = [0, 1]
        [[grid]]
        dataset = ["npz"]
        data_file = ["missing.npz"]
        seed = [0]
    """)
    out = tmp / "out"
    proc = subprocess.run([sys.executable, "-m", "alcore", "sweep", str(spec), "--out", str(out),
                           "--workers", "2"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    return spec, out, proc


def test_cli_sweep_runs_every_cell_and_reports_the_failed_one(cli_sweep):
    spec, out, proc = cli_sweep
    assert proc.returncode == 1, proc.stderr  # one cell failed
    assert "on 2 local worker process(es)" in proc.stdout
    assert "4 done, 0 already complete, 1 failed" in proc.stdout
    assert "cells:" in proc.stderr and "failed=1" in proc.stderr  # the progress bar
    assert "failed: dataset=npz, data_file=missing.npz, seed=0" in proc.stderr
    _, cells = load_spec(spec)
    bad = cells[-1]
    assert not cell_path(out, bad).exists()
    text = error_path(out, bad).read_text()
    assert "missing.npz" in text and "Traceback" in text
    for cell in cells[:4]:
        res = load_result(cell_path(out, cell))
        assert res.status == "complete" and len(res.rounds) == 4
        assert res.config.strategy == cell.config.strategy and res.config.seed == cell.config.seed


def test_within_a_seed_every_strategy_starts_from_the_same_labels_and_weights(cli_sweep):
    """Paired design: the cells ran in different worker processes, yet random and margin on
    one seed share the initial labels and their first model (same labels, same initial
    weights: the same round-0 test accuracy and loss); different seeds differ."""
    _, out, _ = cli_sweep
    first = {}
    for seed in (0, 1):
        random_ = load_result(out / f"strategy=random__seed={seed}.json")
        margin = load_result(out / f"strategy=margin__seed={seed}.json")
        assert random_.initial_indices == margin.initial_indices
        assert random_.rounds[0].test_accuracy == margin.rounds[0].test_accuracy
        assert random_.rounds[0].test_loss == margin.rounds[0].test_loss
        assert random_.rounds[0].selected != margin.rounds[0].selected  # then the strategies part
        first[seed] = random_.initial_indices
    assert first[0] != first[1]


def test_dry_run_lists_each_cells_state(cli_sweep, tmp_path):
    spec, out, _ = cli_sweep
    proc = subprocess.run([sys.executable, "-m", "alcore", "sweep", str(spec), "--out", str(out), "--dry-run"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("digits smoke: 5 cells")
    assert sum(line.strip().startswith("complete") for line in lines) == 4
    assert any(line.strip().startswith("missing") and "npz" in line for line in lines)


def test_rerun_on_an_existing_scheduler_skips_complete_cells_and_continues_stopped_ones(cli_sweep, tmp_path):
    """The same spec again, sent to a running Dask cluster (`--scheduler`): complete cells
    are skipped, a stopped cell continues from its file to the picks of the uninterrupted
    run, a file made with other settings or unreadable is run afresh, and the failing cell
    is tried again (and reported again) without stopping the others."""
    from distributed import LocalCluster

    spec, out, _ = cli_sweep
    _, cells = load_spec(spec)
    work = tmp_path / "again"
    work.mkdir()
    for cell in cells[:4]:
        (work / cell_path(out, cell).name).write_bytes(cell_path(out, cell).read_bytes())
    full = load_result(work / f"{cells[1].name}.json")
    stopped = full.model_copy(update={"status": "stopped", "rounds": full.rounds[:2],
                                      "stop_reason": "stopped before a stop condition"})
    save_result(stopped, work / f"{cells[1].name}.json")
    other = load_result(work / f"{cells[2].name}.json")
    save_result(other.model_copy(update={"config": other.config.replace(max_epochs=9)}),
                work / f"{cells[2].name}.json")
    (work / f"{cells[3].name}.json").write_text("{ not json")
    assert [inspect_cell_file(work, c).state for c in cells] == [
        "complete", "partial", "other_settings", "unreadable", "missing"]

    seen = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      env={"ALCORE_THREADS": "1"}) as cluster:
        report = run_sweep(cells, work, scheduler=cluster.scheduler_address,
                           progress=lambda o, r: seen.append((o.cell.name, o.status)))
    assert report.workers == 2 and not report.interrupted
    by_name = {o.cell.name: o for o in report.outcomes}
    assert by_name[cells[0].name].status == "skipped"
    assert {name for name, _ in seen} == {c.name for c in cells[1:]}
    resumed = by_name[cells[1].name]
    assert resumed.status == "done" and resumed.resumed_from == 2
    again = load_result(work / f"{cells[1].name}.json")
    assert again.status == "complete"
    assert [r.selected for r in again.rounds] == [r.selected for r in full.rounds]
    assert [r.test_accuracy for r in again.rounds] == [r.test_accuracy for r in full.rounds]
    for cell in cells[2:4]:
        assert by_name[cell.name].status == "done"
        assert load_result(work / f"{cell.name}.json").config.max_epochs == 8
    assert by_name[cells[4].name].status == "failed" and "missing.npz" in by_name[cells[4].name].error
    assert report.count("done") == 3 and report.count("skipped") == 1 and report.count("failed") == 1


def test_run_sweep_needs_one_place_to_run(tmp_path):
    with pytest.raises(ValueError, match="either workers"):
        run_sweep([], tmp_path)
    with pytest.raises(ValueError, match="either workers"):
        run_sweep([], tmp_path, workers=2, scheduler="tcp://127.0.0.1:1")


def test_cli_sweep_reports_bad_specs_and_worker_counts(tmp_path, capsys):
    from alcore.cli import main

    spec = spec_file(tmp_path, "[axes]\nstrategy = ['nope']\n")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o")]) == 2
    assert "cell strategy=nope" in capsys.readouterr().err
    good = spec_file(tmp_path, SMALL + "[axes]\nseed = [0]\n", name="good.toml")
    assert main(["sweep", str(good), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "--workers must be 1 or more" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_cell_function_runs_in_process_too():
    """run_cell outside Dask (debugging a cell): same result object, errors returned."""
    from alcore.sweep.runner import Cell, run_cell

    cfg = ExperimentConfig(dataset="digits", pool_size=200, test_size=100, rounds=1, max_epochs=3)
    got = run_cell(Cell("x", cfg, (("seed", 0),)))
    assert got["error"] == "" and got["result"].status == "complete" and len(got["result"].rounds) == 2
    bad = run_cell(Cell("y", cfg.replace(dataset="npz", data_file="/nonexistent/x.npz"), ()))
    assert bad["result"] is None and "x.npz" in bad["error"]


def test_a_result_file_made_where_the_data_sat_elsewhere_still_matches_its_cell(tmp_path):
    """A shipped preset (or a colleague's result folder) records the absolute folder MNIST was
    read from on the machine that made it; on another machine the same cell must still read as
    complete. For 'idx' the folder is the data itself, so there it still counts."""
    from alcore.sweep.presets import list_presets

    preset = next(p for p in list_presets() if p.key == "gal2017_mnist")
    cell = preset.cells[0]
    made = load_result(cell_path(preset.folder, cell))
    elsewhere = made.model_copy(update={"config": made.config.replace(data_dir="/another/machine/datasets")})
    save_result(elsewhere, cell_path(tmp_path, cell))
    assert inspect_cell_file(tmp_path, cell).state == "complete"

    idx = ExperimentConfig(dataset="idx", data_dir="/one/folder")
    assert idx.same_experiment(idx.replace(data_dir="/one/folder"))
    assert not idx.same_experiment(idx.replace(data_dir="/another/folder"))
    assert not made.config.same_experiment(made.config.replace(dataset="fashion_mnist"))
    assert not made.config.same_experiment(made.config.replace(data_dir="/x", seed=7))
