"""AppTest for every page, with the real alcore on tiny configurations."""
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from alcore import ExperimentConfig
from alcore.strategies import STRATEGIES
from conftest import ROOT

APP = str(ROOT / "app.py")
TINY = ExperimentConfig(rounds=2, max_epochs=10)


def app(config=None, page=None, **state):
    at = AppTest.from_file(APP, default_timeout=180)
    if config is not None:
        at.session_state["config"] = config
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_dataset_page_shows_digits_by_default():
    at = app()
    assert at.title[0].value == "Dataset"
    assert metric(at, "Pool images") == "1,438" and metric(at, "Classes") == "10"
    assert len(at.get("plotly_chart")) == 1
    assert len(at.image) == 10 + 1  # one row of samples per class + the centroids
    assert len(at.image[0].value) == 6
    centroid_captions = at.image[-1].captions
    assert len(centroid_captions) == 10 and all("mostly" in c for c in centroid_captions)


def test_dataset_page_reads_an_idx_folder_and_updates_the_config(idx_folder):
    at = app()
    at.selectbox(key="w_dataset").set_value("idx").run()
    at.text_input(key="w_data_dir").set_value(str(idx_folder)).run()
    assert not at.exception
    assert metric(at, "Pool images") == "90" and metric(at, "Classes") == "3"
    assert at.session_state["config"].dataset == "idx"


def test_an_unavailable_download_is_said_plainly_and_the_page_stays_usable(monkeypatch):
    from alcore._tf import keras

    def offline():
        raise Exception("URL fetch failure: Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    at = app()
    at.selectbox(key="w_dataset").set_value("cifar10").run()
    assert not at.exception
    assert any("cifar10 is not available here" in e.value for e in at.error)
    assert "**cifar10**" in at.sidebar.markdown[0].value  # the sidebar shows what was just chosen
    at.selectbox(key="w_dataset").set_value("digits").run()
    assert metric(at, "Pool images") == "1,438" and not at.error


def test_bad_settings_are_refused_with_the_field_name():
    at = app(page="strategy")
    at.number_input(key="w_label_budget").set_value(3).run()
    assert any("label_budget 3 is below the labels" in e.value for e in at.error)
    assert at.session_state["config"].label_budget is None  # the stored config stays valid


def test_model_page_summary_and_reference_accuracy():
    at = app(page="model")
    assert metric(at, "Parameters") == "650"
    at.selectbox(key="w_model").set_value("mlp").run()
    at.text_input(key="w_hidden_units").set_value("32").run()
    assert metric(at, "Parameters") == f"{64 * 32 + 32 + 32 * 10 + 10:,}"
    at.button[0].click().run()
    acc = float(metric(at, "Test accuracy with every pool label").rstrip("%")) / 100
    assert acc > 0.9


def test_strategy_page_explains_every_strategy():
    at = app(page="strategy")
    assert len(at.latex) == len(STRATEGIES)
    at.multiselect[0].set_value(["entropy", "hybrid", "random"]).run()
    assert at.session_state["race_settings"]["strategies"] == ["entropy", "hybrid", "random"]
    assert at.slider(key="w_hybrid_fraction").value == 0.5


def race_app():
    at = app(TINY, page="run")
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    return at


def test_run_page_races_to_the_end():
    at = race_app()
    assert any("Race finished" in s.value for s in at.success)
    race = at.session_state["race"]
    assert race.done and [len(e.rounds) for e in race.experiments] == [3, 3]
    assert len(at.get("plotly_chart")) == 1
    assert not at.button(key="start").disabled and at.button(key="stop").disabled


def test_continue_finishes_a_stopped_race():
    at = app(ExperimentConfig(rounds=30, max_epochs=5), page="run")
    from alcore.race import Race

    # a race stopped after 3 rounds (as the Stop button leaves it), then Continue
    at.session_state["race"] = Race(at.session_state["config"], ["margin", "random"], [0])
    at.session_state["running"] = False
    at.run()
    race = at.session_state["race"]
    for _ in range(3):
        race.step()
    at.button(key="continue").click().run(timeout=300)
    assert race.done and len(race.experiments[0].rounds) == 31


def test_results_page_galleries_metrics_and_downloads():
    at = race_app()
    at.switch_page("app_pages/results.py").run()
    assert not at.exception, at.exception
    assert [s.value for s in at.subheader] == ["Metrics", "Inside a round", "Confident auto-labelling"]
    assert len(at.dataframe) >= 1 and len(at.get("plotly_chart")) == 3  # confusion, balance, signals
    assert len(at.get("download_button")) == 3  # curves CSV + one result file per run
    assert len(at.image) == 2  # the last round picks nothing: least and most confident only
    next(s for s in at.slider if s.label == "Round").set_value(0).run()
    captions = [c for im in at.image for c in im.captions]
    assert "Least confident" in " ".join(m.value for m in at.markdown)
    assert len(at.image) == 3 and all(c.startswith("#") for c in captions)  # picked, least, most
    assert sum("score" in c for c in at.image[0].captions) == TINY.batch_size
    next(b for b in at.button if b.label == "Auto-label").click().run()
    assert not at.exception, at.exception
    assert any(m.label == "Test accuracy change from pseudo-labels" for m in at.metric)
    assert len(at.get("plotly_chart")) == 4


def test_compare_page_loads_good_files_and_names_bad_ones(tmp_path):
    at = race_app()
    race = at.session_state["race"]
    good = race.results()[0].model_dump_json().encode()
    at.switch_page("app_pages/compare.py").run()
    assert "2 run(s) loaded" in at.caption[0].value  # this session's race is included by default
    at.file_uploader[0].set_value([("run.json", good, "application/json"),
                                   ("broken.json", json.dumps({"schema_version": 99}).encode(), "application/json")])
    at.run()
    assert not at.exception, at.exception
    assert any("broken.json" in e.value and "unknown schema_version 99" in e.value for e in at.error)
    assert "1 run(s) loaded" in at.caption[0].value
    assert len(at.get("plotly_chart")) == 1 and len(at.dataframe) >= 1


def test_model_page_transfer_head_summary_and_reference():
    at = app(page="model")
    at.selectbox(key="w_model").set_value("transfer").run()
    at.selectbox(key="w_backbone_weights").set_value("random").run()  # offline: no ImageNet download
    at.number_input(key="w_backbone_size").set_value(32).run()
    assert not at.exception, at.exception
    assert metric(at, "Parameters") == f"{1280 * 128 + 128 + 128 * 10 + 10:,}"
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert "%" in metric(at, "Test accuracy with every pool label")
