"""Reference experiments: presets' race setups, and the page that opens or runs them."""
import textwrap

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import alcore.sweep.presets
from alcore.engine.loop import Experiment
from alcore.sweep.presets import list_presets
from alcore.results.records import save_result
from conftest import ROOT

SPEC = """
name = "Batch sizes on digits"
description = '''What it showed: margin beats random.

What it got wrong: one seed, and the test set chose the epochs.'''
[base]
dataset = "digits"
pool_size = 300
test_size = 150
rounds = 2
max_epochs = 5
[axes]
seed = [0, 1]
batch_size = [10, 20]
strategy = ["random", "margin"]
"""


@pytest.fixture
def preset_dir(tmp_path, monkeypatch, cache):
    folder = tmp_path / "batches"
    folder.mkdir()
    (folder / "spec.toml").write_text(textwrap.dedent(SPEC))
    preset = list_presets(tmp_path)[0] if list_presets(tmp_path) else None
    assert preset is None  # no result files yet: not a preset
    from alcore.sweep.runner import load_spec

    _, cells = load_spec(folder / "spec.toml")
    for cell in cells[:2]:
        exp = Experiment(cell.config, cache=cache)
        for _ in exp:
            pass
        save_result(exp.result(), folder / f"{cell.name}.json")
    monkeypatch.setattr(alcore.sweep.presets, "PRESETS_DIR", tmp_path)
    return tmp_path


def test_a_presets_race_setup_takes_strategies_and_seeds_from_its_axes(preset_dir):
    preset = list_presets()[0]
    assert len(preset.cells) == 8 and len(preset.files) == 2
    assert preset.choices() == {"batch_size": [10, 20]}
    setup = preset.race_setup()
    assert (setup.base.batch_size, setup.base.seed, setup.strategies, setup.seeds) == (10, 0, ["random", "margin"], [0, 1])
    cfg = preset.race_setup({"batch_size": 20}).base
    assert cfg.batch_size == 20 and cfg.pool_size == 300 and cfg.rounds == 2
    with pytest.raises(ValueError, match="no axis colour"):
        preset.race_setup({"colour": "red"})
    with pytest.raises(ValueError, match="no cell has"):
        preset.race_setup({"batch_size": 30})


def test_reference_page_opens_a_presets_results_on_compare(preset_dir):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("app_pages/reference.py").run()
    assert not at.exception, at.exception
    assert [s.value for s in at.subheader] == ["Batch sizes on digits"]
    texts = [m.value for m in at.markdown]
    assert any("What it got wrong" in t for t in texts)  # one paragraph each
    assert any("2 complete run(s) of 8" in c.value for c in at.caption)
    assert [e.label for e in at.main.expander] == [
        "Confusion matrices: the last round's test predictions, summed over the seeds"]
    at.button(key="ref_compare_batches").click().run()
    assert not at.exception, at.exception
    assert at.session_state["compare_preset"] == "batches"
    assert at.selectbox(key="compare_preset").value == "batches"
    assert any("2 run(s) loaded" in c.value for c in at.caption)


def test_reference_page_loads_a_setup_and_the_run_page_races_it(preset_dir):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("app_pages/reference.py").run()
    at.selectbox(key="ref_batches_batch_size").set_value(20).run()
    at.button(key="ref_run_batches").click().run(timeout=300)
    assert not at.exception, at.exception
    cfg = at.session_state["config"]
    assert (cfg.dataset, cfg.batch_size, cfg.pool_size, cfg.rounds) == ("digits", 20, 300, 2)
    assert at.session_state["race_settings"] == {"strategies": ["random", "margin"], "seeds": 2}
    race = at.session_state["race"]  # the Run page started it without another click
    assert sorted((e.config.strategy, e.config.seed) for e in race.experiments) == [
        ("margin", 0), ("margin", 1), ("random", 0), ("random", 1)]
    assert race.done and all(len(e.rounds) == 3 for e in race.experiments)
    assert "autostart" not in at.session_state  # once: coming back to Run does not start another


def test_group_confusions_sum_each_groups_last_round_over_its_seeds(preset_dir):
    from alcore.analysis.metrics import group_confusions, group_metrics, metrics_frame
    from alcore.sweep.presets import load_preset

    results = load_preset(list_presets()[0])  # random and margin, seed 0, batch 10
    groups = ["same group", "same group"]
    merged = group_confusions(results, groups)
    matrix, runs = merged["same group"]
    assert runs == 2
    assert (matrix == sum(np.asarray(r.rounds[-1].confusion) for r in results)).all()
    assert matrix.sum() == sum(r.dataset.n_test for r in results) == 2 * 150
    alone = group_confusions(results)
    assert len(alone) == 2 and all(n == 1 for _, n in alone.values())
    # the diagonal share of each group's summed matrix is its runs' mean final accuracy (equal test sets)
    frame = group_metrics(metrics_frame(results, 0.9))
    for group, (m, _) in alone.items():
        acc = frame.loc[frame["group"] == group, "final_accuracy"].iloc[0]
        assert np.trace(m) / m.sum() == pytest.approx(acc)


def test_a_loaded_setup_whose_dataset_cannot_load_leaves_run_ready_for_another_start(preset_dir, monkeypatch):
    """Issue 18: the Run page said the race cannot start, yet Start stayed disabled and Stop
    enabled; Stop then showed the previous race under the new setup, at the old ?run= address."""
    import alcore.data.datasets
    from alcore import ExperimentConfig

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["config"] = ExperimentConfig(rounds=1, max_epochs=5)
    at.run()
    at.switch_page("app_pages/run.py").run()
    at.button(key="start").click().run()
    while at.session_state["running"]:
        at.run()
    old_id = at.query_params["run"]
    assert at.session_state["race"].done and old_id

    def offline():
        raise alcore.data.datasets.DatasetUnavailableError("no network here")

    monkeypatch.setattr(alcore.data.datasets, "load_digits_raw", offline)
    from dashboard.data import _dataset_cache

    _dataset_cache.clear()  # the preset's pool, prepared by another test of this process
    at.switch_page("app_pages/reference.py").run()
    at.button(key="ref_run_batches").click().run(timeout=300)
    assert not at.exception, at.exception
    assert any("cannot start" in e.value for e in at.error)
    assert any("not available here" in e.value for e in at.error)  # and why, as the dataset pages say
    assert not at.button(key="start").disabled and at.button(key="stop").disabled
    assert at.session_state["race"] is None  # not the previous race under the new setup's header
    assert "run" not in at.query_params
    assert not any("Race finished" in s.value for s in at.success)


MNIST_SPEC = """
name = "Random on MNIST"
description = "A setup on MNIST, read from the server's folder where it lets a visitor name one."
[base]
dataset = "mnist"
data_dir = "{data_dir}"
pool_size = 300
test_size = 150
rounds = 1
max_epochs = 5
[axes]
seed = [0]
strategy = ["random"]
"""


@pytest.fixture
def mnist_preset(tmp_path, monkeypatch, cache):
    from conftest import SHARED, shared_mnist
    from alcore.sweep.runner import load_spec

    shared_mnist()
    folder = tmp_path / "mnist_random"
    folder.mkdir()
    (folder / "spec.toml").write_text(MNIST_SPEC.format(data_dir=SHARED))
    _, cells = load_spec(folder / "spec.toml")
    exp = Experiment(cells[0].config, cache=cache)
    for _ in exp:
        pass
    save_result(exp.result(), folder / f"{cells[0].name}.json")
    monkeypatch.setattr(alcore.sweep.presets, "PRESETS_DIR", tmp_path)
    return list_presets()[0]


def test_loading_a_setup_whose_data_cannot_be_had_here_keeps_the_session_as_it_was(mnist_preset, monkeypatch):
    """Issue 18, item 4: 'Load this setup and run it live' on an MNIST preset offline made MNIST the
    setup and sent the visitor to a Run page that could not start. Nothing is loaded; the button
    says why and what to do, and the session's setup, race and link stay as they were."""
    from test_page_details import offline

    offline(monkeypatch, "mnist")  # a server without paths drops the preset's folder: Keras would download
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    before = at.session_state["config"]
    at.switch_page("app_pages/reference.py").run()
    at.button(key=f"ref_run_{mnist_preset.key}").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Reference experiments"  # not sent to Run
    said = at.error[0].value
    assert said.startswith("**mnist is not available here.**") and "Nothing was loaded." in said
    assert "The setup stays on **digits**" in said and "upload" in said
    assert at.session_state["config"] == before and "autostart" not in at.session_state
    assert "dataset" not in at.query_params and "**digits**" in at.sidebar.markdown[0].value


def test_loading_a_setup_whose_data_is_here_races_it(mnist_preset, monkeypatch):
    from test_page_details import offline

    offline(monkeypatch, "mnist")
    monkeypatch.setenv("ALCORE_ALLOW_SERVER_PATHS", "1")  # the preset's folder is read: no download needed
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("app_pages/reference.py").run()
    at.button(key=f"ref_run_{mnist_preset.key}").click().run(timeout=300)
    assert not at.exception, at.exception
    assert at.title[0].value == "Run" and not at.error
    assert at.session_state["config"].dataset == "mnist" and at.session_state["race"] is not None
