"""AppTest for every page, with the real alcore on tiny configurations."""
import json
import os
import re

import pytest
from streamlit.testing.v1 import AppTest

from alcore import ExperimentConfig
from alcore.config import RaceConfig
from alcore.strategies.base import STRATEGIES
from conftest import ROOT, npz_with_classes

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


def race_on(at, max_passes: int = 3000):
    """Run the page again while the race is still marked running. One script run computes
    a whole race; another is needed where it ended early (a page left mid-race)."""
    for _ in range(max_passes):
        if not ("running" in at.session_state and at.session_state["running"]):
            return at
        at.run(timeout=300)
        assert not at.exception, at.exception
    raise AssertionError("the race was still running")


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def shown(markdown: str) -> str:
    """What a reader sees of text escaped by dashboard.display.plain (backslash escapes and
    invisible word joiners)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def test_dataset_page_shows_digits_by_default():
    at = app()
    assert at.title[0].value == "Dataset"
    assert metric(at, "Pool images") == "1,438" and metric(at, "Classes") == "10"
    assert len(at.get("plotly_chart")) == 1
    assert len(at.image) == 10 + 1  # one row of samples per class + the centroids
    assert len(at.image[0].value) == 6
    centroid_captions = at.image[-1].captions
    assert len(centroid_captions) == 10 and all("mostly" in c for c in centroid_captions)


FIRST_PAGE = """
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=180)
at.run()
assert not at.exception, at.exception
drawn = [m.value for m in at.metric if m.label == "Pool images"] + [len(at.image[-1].captions)]
print(drawn, sorted(m for m in ("tensorflow", "keras", "sklearn", "scipy", "pandas") if m in sys.modules))
"""


def test_the_first_page_waits_for_no_tensorflow_scikit_learn_scipy_or_pandas():
    """Issue 18: the first page was fully drawn 4.8-9.1 s after launch on two cores, most of it
    importing scikit-learn (which imports scipy.stats and pandas) for the digits, their split and
    their clusters; TensorFlow waits for the first model. A fresh process, as a new server's."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", FIRST_PAGE, APP], capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "['1,438', 10] []"  # all drawn, centroids too; none imported


def test_dataset_page_reads_an_idx_folder_and_updates_the_config(idx_folder, monkeypatch):
    monkeypatch.setenv("ALCORE_ALLOW_SERVER_PATHS", "1")  # a local run that reads the server's folders
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
    # the setup stays on what loads (issue 18; tests/test_page_details.py)
    assert "**digits**" in at.sidebar.markdown[0].value
    at.selectbox(key="w_dataset").set_value("digits").run()
    assert metric(at, "Pool images") == "1,438" and not at.error


def test_bad_settings_are_refused_with_the_field_name():
    at = app(page="strategy")
    at.number_input(key="w_label_budget").set_value(3).run()
    assert any("label_budget 3 is below the labels" in shown(e.value) for e in at.error)
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


def test_model_page_offers_mc_evaluation_only_for_models_with_dropout():
    at = app(page="model")
    assert not [t for t in at.toggle if t.key == "w_mc_evaluation"]  # softmax: no dropout, no passes
    at.selectbox(key="w_model").set_value("mlp").run()
    at.toggle(key="w_mc_evaluation").set_value(True).run()
    assert not at.exception and at.session_state["config"].mc_evaluation
    at.selectbox(key="w_model").set_value("softmax").run()  # switching back turns it off, no error
    assert not at.exception and not at.error and not at.session_state["config"].mc_evaluation


def test_strategy_page_explains_every_strategy():
    at = app(page="strategy")
    assert len(at.latex) == len(STRATEGIES)
    at.multiselect[0].set_value(["entropy", "hybrid", "random"]).run()
    assert at.session_state["race_settings"]["strategies"] == ["entropy", "hybrid", "random"]
    assert at.slider(key="w_hybrid_fraction").value == 0.5


def test_strategy_page_offers_the_coverage_strategies_settings():
    at = app(page="strategy")
    assert "w_probcover_radius" not in at.session_state  # drawn only for the strategies that read them
    at.multiselect[0].set_value(["typiclust", "probcover", "maxherding", "uherding", "random"]).run()
    assert not at.exception, at.exception
    shown_text = " ".join(m.value for m in at.markdown)
    assert all(f"**{name}**" in shown_text for name in ("typiclust", "probcover", "maxherding", "uherding"))
    assert at.number_input(key="w_typiclust_neighbors").value == 20
    assert at.number_input(key="w_probcover_radius").value == 0.0  # 0: chosen by the purity rule
    assert at.slider(key="w_probcover_purity").value == 0.95
    assert at.selectbox(key="w_uherding_measure").value == "margin"
    at.number_input(key="w_probcover_radius").set_value(0.4).run()
    at.number_input(key="w_herding_bandwidth").set_value(0.5).run()
    at.number_input(key="w_typiclust_neighbors").set_value(10).run()
    cfg = at.session_state["config"]
    assert (cfg.probcover_radius, cfg.herding_bandwidth, cfg.typiclust_neighbors) == (0.4, 0.5, 10)
    at.number_input(key="w_probcover_radius").set_value(0.0).run()
    assert at.session_state["config"].probcover_radius is None
    assert at.number_input(key="w_uherding_temperature").value == 1.0  # the default: T = 1
    assert at.session_state["config"].uherding_temperature == 1.0
    at.number_input(key="w_uherding_temperature").set_value(0.0).run()  # 0: calibrated each round
    assert at.session_state["config"].uherding_temperature is None
    at.number_input(key="w_uherding_temperature").set_value(2.5).run()
    assert at.session_state["config"].uherding_temperature == 2.5


def test_run_page_shows_the_radius_probcover_chose():
    at = app(TINY, page="run", race_settings={"strategies": ["probcover", "random"], "seeds": 2})
    race_on(at.button(key="start").click().run())
    race = at.session_state["race"]
    radii = [r for _, r in race.probcover_radii()]
    assert len(radii) == 2 and all(0 < r < 2 for r in radii)
    caption = next(shown(c.value) for c in at.caption if "ball radius" in c.value)
    assert "purity rule" in caption
    assert all(f"probcover (seed {seed}) **{r:g}**" in caption for seed, r in zip((0, 1), radii))


def test_run_and_results_pages_show_the_temperature_uherding_calibrated():
    at = app(TINY.replace(initial=20, uherding_temperature=None), page="run",
             race_settings={"strategies": ["uherding", "random"], "seeds": 1})
    race_on(at.button(key="start").click().run())
    (cfg, temps), = at.session_state["race"].uherding_temperatures()
    assert len(temps) == 2 and all(t >= 1 for t in temps)
    caption = next(shown(c.value) for c in at.caption if "uherding's temperature" in c.value)
    assert "calibrated each round" in caption and f"uherding (seed 0) **{temps[-1]:g}**" in caption
    at.switch_page("app_pages/results.py").run()
    assert not at.exception, at.exception
    at.selectbox[0].set_value(next(i for i, e in enumerate(at.session_state["race"].experiments)
                                   if e.config.strategy == "uherding")).run()
    at.slider[0].set_value(0).run()  # round 0: 20 labels, the last 6 held out
    texts = [shown(c.value) for c in at.caption]
    assert any("calibrated this round on held-out labels" in t and "on the last 6 of 20 labels" in t for t in texts)


def race_app():
    at = app(TINY, page="run")
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    return race_on(at)


def _draw_the_board_three_times():
    import streamlit as st

    from dashboard.race_session import LiveBoard

    board = LiveBoard()
    for _ in range(3):  # a round that left the curves as they were: the same figure again
        board.draw(st.session_state["race"], live=True)


def test_the_live_board_draws_an_unchanged_race_again_within_one_script_run():
    """The Run page redraws its board between rounds within one script run. A multi-seed race
    whose round left the seed mean unchanged redraws a byte-identical figure; without a key of
    its own each time, Streamlit stopped the page with StreamlitDuplicateElementId."""
    from alcore.engine.race import Race

    race = Race(TINY, ["margin", "random"], [0, 1])
    for _ in range(4):
        race.step()
    at = AppTest.from_function(_draw_the_board_three_times, default_timeout=60)
    at.session_state["race"] = race
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1  # one board, drawn over
    assert at.progress[0].value is not None


def test_a_race_over_several_seeds_runs_to_the_end_on_the_run_page():
    at = app(TINY, page="run", race_settings={"strategies": ["margin", "random"], "seeds": 2})
    race_on(at.button(key="start").click().run())
    assert any("Race finished" in s.value for s in at.success)
    assert [len(e.rounds) for e in at.session_state["race"].experiments] == [3, 3, 3, 3]
    # the count is of every run's rounds, and says so (alone, "Round 12 of 12" read as 12 rounds)
    assert at.progress[0].proto.text.startswith("Round 12 of 12 (4 runs of 3 rounds) · ")


def test_run_page_races_to_the_end():
    at = race_app()
    assert any("Race finished" in s.value for s in at.success)
    race = at.session_state["race"]
    assert race.done and [len(e.rounds) for e in race.experiments] == [3, 3]
    assert len(at.get("plotly_chart")) == 1
    assert not at.button(key="start").disabled and at.button(key="stop").disabled


def test_continue_finishes_a_stopped_race():
    at = app(ExperimentConfig(rounds=30, max_epochs=5), page="run")
    from alcore.engine.race import Race

    # a race stopped after 3 rounds (as the Stop button leaves it), then Continue
    at.session_state["race"] = Race(at.session_state["config"], ["margin", "random"], [0])
    at.session_state["running"] = False
    at.run()
    race = at.session_state["race"]
    for _ in range(3):
        race.step()
    race_on(at.button(key="continue").click().run(timeout=300))
    assert race.done and len(race.experiments[0].rounds) == 31


def test_a_stopped_race_says_so_and_a_finished_one_is_not_live():
    """Issue 18: after Stop there was no word that the race stopped, "about 4 s left" stayed,
    and the chart title kept "(live)" after the race ended."""
    from alcore.engine.race import Race

    cfg = ExperimentConfig(rounds=30, max_epochs=5)
    race = Race(cfg, ["margin", "random"], [0])
    for _ in range(3):
        race.step()
    at = app(cfg, page="run", race=race, running=False)  # as Stop leaves it
    assert any("Stopped after round" in i.value and "Continue" in i.value for i in at.info)
    assert "s left" not in at.progress[0].proto.text
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"] == "Test accuracy vs labels"
    assert not at.button(key="continue").disabled

    at = race_app()
    assert "(live)" not in json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]
    assert not any("Stopped after" in i.value for i in at.info)


def test_a_race_saved_at_its_address_reopens_in_a_new_session(tmp_path, monkeypatch):
    monkeypatch.setenv("ALCORE_RUNS_DIR", str(tmp_path))
    cfg = ExperimentConfig(rounds=4, max_epochs=10, seed=2)
    at = app(cfg, page="run")
    from alcore.engine.race import Race

    at.session_state["race"] = race = Race(cfg, ["margin", "random"], [2])
    at.session_state["race_id"] = race_id = "A" * 22
    from alcore.engine.store import RunStore

    RunStore(tmp_path).create(race_id, RaceConfig(base=cfg, strategies=["margin", "random"], seeds=[2]))
    at.run()
    assert at.query_params["run"] in (race_id, [race_id])
    at.session_state["running"] = True
    race_on(at.button(key="continue").click().run(timeout=300))  # the race runs to the end, saving every round
    assert race.done
    assert sorted(p.name for p in (tmp_path / race_id).iterdir()) == ["race.json", "run00.json", "run01.json"]

    other = AppTest.from_file(APP, default_timeout=180)  # the tab was closed: a new session opens the link
    other.query_params["run"] = race_id
    other.run()
    other.switch_page("app_pages/run.py").run()
    assert not other.exception, other.exception
    back = other.session_state["race"]
    assert back.done and [[r.selected for r in e.rounds] for e in back.experiments] == \
           [[r.selected for r in e.rounds] for e in race.experiments]
    reopened = next(i.value for i in other.info if "Reopened the" in i.value)
    assert "finished race" in reopened and "Continue" not in reopened  # Continue is disabled (issue 18)
    assert other.button(key="continue").disabled
    assert other.session_state["config"] == race.base  # the setup pages show the reopened settings

    third = AppTest.from_file(APP, default_timeout=180)
    third.query_params["run"] = "B" * 22
    third.run()
    third.switch_page("app_pages/run.py").run()
    assert any("no race is saved" in e.value for e in third.error)


def test_run_page_continues_a_race_from_uploaded_result_files(tmp_path, monkeypatch):
    monkeypatch.setenv("ALCORE_RUNS_DIR", str(tmp_path))
    cfg = ExperimentConfig(rounds=3, max_epochs=10)
    from alcore.engine.race import Race

    whole = Race(cfg, ["margin", "random"], [0])
    while not whole.done:
        whole.step()
    part = Race(cfg, ["margin", "random"], [0])
    for _ in range(3):
        part.step()
    at = app(cfg, page="run")
    files = [(f"{r.config.strategy}.json", r.model_dump_json().encode(), "application/json") for r in part.results()]
    at.file_uploader(key="continue_files").set_value(files).run()
    at.button(key="open_files").click().run()
    assert not at.exception, at.exception
    race = at.session_state["race"]
    assert [len(e.rounds) for e in race.experiments] == [2, 1] and not race.done
    race_on(at.button(key="continue").click().run(timeout=300))
    assert [[r.selected for r in e.rounds] for e in race.experiments] == \
           [[r.selected for r in e.rounds] for e in whole.experiments]
    at.file_uploader(key="continue_files").set_value([("x.json", b"{", "application/json")]).run()
    at.button(key="open_files").click().run()
    assert any("x.json" in shown(e.value) for e in at.error)


def test_results_page_galleries_metrics_and_downloads():
    at = race_app()
    at.switch_page("app_pages/results.py").run()
    assert not at.exception, at.exception
    assert [s.value for s in at.subheader] == ["Metrics", "Inside a round", "Confident auto-labelling",
                                               "Export the labels"]
    assert len(at.dataframe) >= 1 and len(at.get("plotly_chart")) == 3  # confusion, balance, signals
    # curves CSV + one result file per run, and each table's own CSV (dashboard.display.show_table)
    assert sorted(b.key or b.label for b in at.get("download_button")) == \
        ["Download curves (CSV)", "csv_metrics_per_run", "dl_0", "dl_1", "results_0_csv", "results_0_zip"]
    assert len(at.image) == 2  # the last round picks nothing: least and most confident only
    next(s for s in at.slider if s.label == "Round").set_value(0).run()
    captions = [c for im in at.image for c in im.captions]
    assert "Least confident" in " ".join(m.value for m in at.markdown)
    assert len(at.image) == 3 and all(c.startswith("#") for c in captions)  # picked, least, most
    details = next(e for e in at.expander if e.label.startswith("Details of these images")).dataframe[0].value
    assert (details["gallery"] == "picked").sum() == TINY.batch_size  # the scores are there, not in captions
    next(b for b in at.button if b.label == "Auto-label").click().run()
    assert not at.exception, at.exception
    assert any(m.label == "Test accuracy change from pseudo-labels" for m in at.metric)
    assert len(at.get("plotly_chart")) == 4
    # the export counts the run's labels and, once auto-labelling ran, its pseudo-labels
    rows = next(b for b in at.get("download_button") if b.key == "results_0_csv").label
    pseudo = next(iter(at.session_state["autolabel"].values())).steps[-1].n_pseudo
    assert pseudo > 0 and rows == f"Labels (CSV, {TINY.initial + TINY.batch_size * 2 + pseudo} rows)"


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
    assert any("broken.json" in shown(e.value) and "unknown schema_version 99" in shown(e.value) for e in at.error)
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


def test_model_page_computes_self_supervised_embeddings_then_reads_them_from_the_cache(monkeypatch, tmp_path):
    """Choose the self-supervised embedding: a button trains the encoder (a progress bar while it
    does), the layer table is a head on its 16 numbers; a second browser session on the same pool
    is told the embeddings were read from the cache, without a click."""
    monkeypatch.setenv("ALCORE_CACHE_DIR", str(tmp_path))
    at = app(page="model")
    at.selectbox(key="w_embedding").set_value("self_supervised").run()
    at.number_input(key="w_encoder_steps").set_value(10).run()
    at.number_input(key="w_embedding_dim").set_value(16).run()
    assert not at.exception, at.exception
    assert not at.metric  # nothing built before the embedding is there
    next(b for b in at.button if b.label == "Compute the embeddings").click().run()
    assert not at.exception, at.exception
    assert any("computed in" in s.value for s in at.success), [s.value for s in at.success]
    assert metric(at, "Parameters") == f"{16 * 10 + 10:,}"
    other = app(config=at.session_state["config"], page="model")
    assert any("read from the cache" in s.value for s in other.success), [s.value for s in other.success]
    assert metric(other, "Parameters") == f"{16 * 10 + 10:,}"


def test_dataset_page_clusters_the_embedding_once_it_is_here(digits):
    """With the self-supervised embedding cached, the Dataset page clusters it (its toggle on) and
    draws members; before it is computed, only the pixels."""
    from alcore.engine.embeddings import EmbeddingCache, compute_embeddings

    cfg = ExperimentConfig(embedding="self_supervised", encoder_steps=5, embedding_dim=8, encoder_seed=7)
    at = app(config=cfg, page="dataset")
    assert not [t for t in at.toggle if t.key == "centroids_on_embedding"]
    compute_embeddings(digits, cfg, cache=EmbeddingCache())  # the dashboard's folder ($ALCORE_CACHE_DIR)
    at = app(config=cfg, page="dataset")
    assert at.toggle(key="centroids_on_embedding").value
    assert any("Clusters of the self_supervised embedding" in c.value for c in at.caption)


def test_model_page_reads_uploaded_embeddings_and_names_what_does_not_fit():
    """embedding 'file': the uploaded .npz is checked and kept, its rows are what softmax reads
    (10 numbers per image here); one with too few rows is refused in words, not a traceback."""
    import io

    import numpy as np

    def npz(**arrays):
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    at = app(page="model")
    at.selectbox(key="w_embedding").set_value("file").run()
    assert any("Upload a .npz of embeddings" in i.value for i in at.info)
    uploader = at.get("file_uploader")[0]
    uploader.set_value([("short.npz", npz(train=np.zeros((100, 10))), "application/octet-stream")]).run()
    assert not at.exception, at.exception
    assert any("'train' has 100 rows" in shown(e.value) for e in at.error), [e.value for e in at.error]
    uploader = at.get("file_uploader")[0]
    uploader.set_value([("mine.npz", npz(train=np.random.default_rng(0).normal(size=(1797, 10))),
                         "application/octet-stream")]).run()
    assert not at.exception, at.exception
    assert any("read from mine.npz" in s.value for s in at.success), [s.value for s in at.success]
    assert metric(at, "Parameters") == f"{10 * 10 + 10:,}"


def test_model_page_transfer_offline_says_so_without_a_traceback(monkeypatch):
    """transfer with ImageNet weights on a machine that cannot download them: "Train on every pool
    label" says what the dataset pages say when offline, not a red box of traceback (issue 18, 2)."""
    monkeypatch.setenv("KERAS_HOME", "/nonexistent-keras-home")  # nothing cached: the download is tried
    at = app(page="model")
    at.selectbox(key="w_model").set_value("transfer").run()
    at.number_input(key="w_backbone_size").set_value(32).run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    shown_errors = [shown(e.value) for e in at.error]
    assert any("not available here" in e and "backbone_weights='random'" in e for e in shown_errors), shown_errors
    assert not any("Traceback" in e for e in shown_errors)


# ------------------------------------------------------------- a public deployment

@pytest.fixture
def fresh_run_slots():
    """The process-wide run-slot table, emptied before and after (AppTests share the process)."""
    from dashboard.limits import _run_slots

    _run_slots.clear()
    yield
    _run_slots.clear()


def test_server_folders_are_offered_only_when_the_deployer_allows_them(monkeypatch, idx_folder):
    at = app()
    assert "Folder of idx files" not in at.selectbox(key="w_dataset").options
    assert "Upload a .npz" in at.selectbox(key="w_dataset").options
    # a config that still names a server folder (e.g. from before the switch) is not used
    at = app(ExperimentConfig(dataset="idx", data_dir=str(idx_folder)))
    assert any("idx dataset is not available" in w.value for w in at.warning)
    assert at.session_state["config"].dataset == "digits" and metric(at, "Pool images") == "1,438"
    at = app()
    at.session_state["config"] = ExperimentConfig(dataset="mnist", data_dir=str(idx_folder))  # digits would drop it
    at.switch_page("app_pages/model.py").run()
    assert any("data_dir names a folder on the server" in e.value for e in at.error)
    assert not at.metric  # nothing was loaded
    at.switch_page("app_pages/dataset.py").run()
    assert any("Data dir was cleared" in w.value for w in at.warning)
    assert at.session_state["config"].data_dir is None and not at.text_input

    monkeypatch.setenv("ALCORE_ALLOW_SERVER_PATHS", "1")
    at = app()
    assert "Folder of idx files" in at.selectbox(key="w_dataset").options
    at.selectbox(key="w_dataset").set_value("mnist").run()
    assert at.text_input(key="w_data_dir").label == "Data dir"


def test_a_pool_over_the_deployers_cap_is_refused_with_the_limit():
    at = AppTest.from_file(APP, default_timeout=180)
    at.secrets["limits"] = {"max_pool_size": 500}  # .streamlit/secrets.toml on the server
    at.run()
    assert not at.exception, at.exception
    assert any("The whole training split of digits is 1,438 images, over this server's limit of 500 pool "
               "images" in e.value for e in at.error)
    assert not at.metric and not at.image  # not loaded, not drawn
    assert at.number_input(key="w_pool_size").max == 500
    assert "500 pool images" in " ".join(c.value for c in at.sidebar.caption)
    at.number_input(key="w_pool_size").set_value(400).run()
    assert not at.error and metric(at, "Pool images") == "400"


def test_a_limit_the_server_cannot_read_stops_every_page_with_its_name(monkeypatch):
    monkeypatch.setenv("ALCORE_MAX_CONCURRENT_RUNS", "two")
    at = app()
    assert any("ALCORE_MAX_CONCURRENT_RUNS must be a whole number" in shown(e.value) for e in at.error)
    assert not at.title  # no page ran


def test_a_race_over_the_limits_does_not_start(monkeypatch):
    monkeypatch.setenv("ALCORE_MAX_ROUNDS", "5")
    monkeypatch.setenv("ALCORE_MAX_MC_PASSES", "4")
    cfg = ExperimentConfig(rounds=30, model="mlp", mc_passes=10)
    at = app(cfg, page="strategy", race_settings={"strategies": ["bald", "random"], "seeds": 1})
    assert at.number_input(key="w_rounds").max == 5 and at.number_input(key="w_mc_passes").max == 4
    assert at.session_state["config"].mc_passes == 4 and at.session_state["config"].rounds == 5
    at.session_state["config"] = cfg  # as if the caps had been lowered after the setup was made
    at.switch_page("app_pages/run.py").run()
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert "The run makes 30 rounds, over this server's limit of 5 rounds per run: lower rounds (or label_budget)." \
        in errors
    assert any(e.startswith("mc_passes 10 is over this server's limit of 4 (used by bald)") for e in errors)
    assert "race" not in at.session_state and not at.button(key="start").disabled


def test_a_second_run_waits_while_another_session_holds_the_only_slot(monkeypatch, fresh_run_slots):
    from dashboard.limits import run_slots

    monkeypatch.setenv("ALCORE_MAX_CONCURRENT_RUNS", "1")
    assert run_slots().try_acquire("another visitor's session")
    at = app(TINY, page="run")
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["1 run is in progress on this server (the limit is 1); try again in a minute."]
    assert "race" not in at.session_state and not at.button(key="start").disabled

    run_slots().release("another visitor's session")
    race_on(at.button(key="start").click().run())
    assert any("Race finished" in s.value for s in at.success)
    assert run_slots().in_use() == 0  # a finished race gives its slot back
    assert run_slots().try_acquire("another visitor's session")


def test_stop_gives_the_slot_back_and_continue_takes_it_again(monkeypatch, fresh_run_slots):
    from alcore.engine.race import Race
    from dashboard.limits import run_slots

    monkeypatch.setenv("ALCORE_MAX_CONCURRENT_RUNS", "1")
    cfg = ExperimentConfig(rounds=20, max_epochs=5)
    at = app(cfg, page="run", race=Race(cfg, ["margin", "random"], [0]), running=False)
    assert run_slots().try_acquire("another visitor's session")
    at.button(key="continue").click().run()
    assert "1 run is in progress" in at.error[0].value and not at.session_state["running"]
    run_slots().release("another visitor's session")
    race_on(at.button(key="continue").click().run(timeout=300))
    assert at.session_state["race"].done and run_slots().in_use() == 0


def test_a_round_over_the_time_limit_stops_the_race_with_the_limits_name_and_keeps_finished_rounds(
        monkeypatch, fresh_run_slots):
    from alcore.engine.race import Race
    from dashboard.limits import run_slots

    # 50 epochs of one image a step: 500 steps on the 10 initial labels, then 50 500 on 1 010,
    # many seconds on any machine, over a 1 s limit
    cfg = ExperimentConfig(model="mlp", hidden_units=[64], train_batch_size=1, max_epochs=50, min_steps=0,
                           max_steps=None, batch_size=1000, rounds=1)
    race = Race(cfg, ["margin", "random"], [0])
    race.step(), race.step()  # one finished round each, made before the limit was set
    monkeypatch.setenv("ALCORE_MAX_STEPS_PER_ROUND", "none")
    monkeypatch.setenv("ALCORE_MAX_ROUND_SECONDS", "1")
    at = app(cfg, page="run", race=race, running=False)
    assert "1 s per round" in " ".join(c.value for c in at.sidebar.caption)
    at.button(key="continue").click().run(timeout=300)
    assert not at.exception, at.exception
    assert [shown(e.value) for e in at.error] == [
        "The round was stopped: a round ran for more than 1 s, over this server's limit of 1 s per round "
        "(max_round_seconds): lower max_epochs or max_steps, raise train_batch_size, or set candidates lower. "
        "Every finished round is kept."]
    assert [len(e.rounds) for e in race.experiments] == [1, 1] and not at.session_state["running"]
    assert not at.button(key="continue").disabled and run_slots().in_use() == 0
    # the session keeps its models for Continue: one built again costs its compilation and memory
    assert all(e._trainer is not None for e in race.experiments)


@pytest.mark.parametrize("computing", [False, True])
def test_a_session_that_ends_lets_go_of_its_models_unless_its_round_is_being_stopped(computing):
    """Streamlit's release hook of the session's models (dashboard.state.session_ended); while a
    round computes, the script run computing it lets go of them as it unwinds instead."""
    import threading

    from alcore.engine.race import Race
    from dashboard.state import SessionModels, session_ended, trainer_pool

    models = SessionModels()
    models.race = race = Race(TINY.replace(model="mlp"), ["margin", "random"], [0], cache=models.cache)
    models.race_lock = threading.Lock()
    race.step(), race.step()
    trainer = race.experiments[0].trainer
    assert len(models.cache) == 1 and all(e._trainer is not None for e in race.experiments)
    if computing:
        models.race_lock.acquire()
    session_ended(models)
    assert (all(e._trainer is None for e in race.experiments) and len(models.cache) == 0) is not computing
    if not computing:  # handed back to the server's pool for the next session
        assert any(t is trainer for _, t in trainer_pool()._idle)


EVIL = ["<img src=x onerror=alert(1)>", "[click](http://evil)", ":material/home: **bold** $x$"]


def test_a_refused_npz_says_why_right_under_the_upload():
    """Issue 18: the reason showed below the whole settings column, about 1000 px under the
    page's warning; it is now in that column, right under the uploader."""
    at = app()
    at.selectbox(key="w_dataset").set_value("npz").run()
    at.file_uploader[0].set_value(("broken.npz", b"not a zip file", "application/octet-stream")).run()
    assert not at.exception, at.exception
    left = at.columns[0]
    assert [e.value for e in left.error] == [e.value for e in at.error] and len(at.error) == 1
    assert shown(at.error[0].value) == "Refused: broken.npz: not a readable .npz file (BadZipFile: File is not a zip file)"
    kinds = [type(x).__name__ for x in left]
    assert kinds.index("Error") == kinds.index("FileUploader") + 1  # right under the file
    assert not (at.session_state["uploads"].folder).exists()  # checked in memory: nothing was written (issue 19)


def test_refused_uploads_leave_nothing_on_disk_and_a_replaced_one_goes(tmp_path, monkeypatch):
    """Issue 19: three refused 95 MB junk files left 283 MB on the server; now each is refused
    from its bytes before anything is written, and a replaced upload is removed."""
    import tempfile

    from test_limits import _disk_bytes, _junk_uploads, _npz_bytes

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "server"))  # the server's upload folder, empty
    root = tmp_path / "server" / "alcore-uploads"
    at = app()
    for data, name, suffix in _junk_uploads(tmp_path):
        at.selectbox(key="w_dataset").set_value("npz" if suffix == ".npz" else "images").run()
        at.file_uploader[0].set_value((name, data, "application/octet-stream")).run()
        assert not at.exception, at.exception
        assert any(shown(e.value).startswith(f"Refused: {name}: ") for e in at.error), [e.value for e in at.error]
    assert _disk_bytes(root) == 0
    at.selectbox(key="w_dataset").set_value("npz").run()
    at.file_uploader[0].set_value(("a.npz", _npz_bytes(60, seed=1), "application/octet-stream")).run()
    assert metric(at, "Pool images") == "48"
    first = at.session_state["config"].data_file
    at.file_uploader[0].set_value(("b.npz", _npz_bytes(90, seed=2), "application/octet-stream")).run()
    assert metric(at, "Pool images") == "72"
    second = at.session_state["config"].data_file
    assert [p.name for p in root.rglob("*.npz")] == ["b.npz"] and second.endswith("b.npz")
    assert not os.path.exists(first)


def test_class_names_and_file_names_from_an_upload_are_shown_as_text():
    at = app()
    at.selectbox(key="w_dataset").set_value("npz").run()
    at.file_uploader[0].set_value(("[x](javascript:alert(1)).npz", npz_with_classes(EVIL), "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert metric(at, "Classes") == "3"
    rows = [m.value for m in at.markdown if m.value.startswith("**") and m.value.endswith("**")][-3:]
    assert [shown(r) for r in rows] == [f"**{n}**" for n in EVIL]  # reads as the name ...
    for r in rows:  # ... and no link, image, HTML tag, icon or maths can form from it
        inner = r[2:-2]
        assert not re.search(r"(?<!\\)[\[\]()<>*$]", inner) and ":material/" not in inner
    source = next(c.value for c in at.caption if c.value.startswith("Source"))
    assert re.fullmatch(r"Source: npz file _x_\(javascript_alert\(1\)\)\.npz", shown(source))  # no path
    assert "](" not in source
    captions = at.image[-1].captions  # k-means centroids: "... mostly <name> (..%)"
    assert all("mostly" in c for c in captions) and not any(re.search(r"(?<!\\)[\[\]<>]", c) for c in captions)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["data"][0]["x"] == ["&lt;img src=x onerror=alert(1)&gt;", "[click](http://evil)",
                                    ":material/home: **bold** $x$"]


def test_script_runs_leave_keras_and_tensorflow_state_alone(monkeypatch):
    """Streamlit calls keras.backend.clear_session() after every script run (it clears
    TensorFlow's kernel cache under every other session's training); app.py replaces that
    cleanup with one that leaves Keras alone."""
    from alcore._tf import keras
    from streamlit.runtime.scriptrunner import script_runner

    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: calls.append(a))
    at = app(TINY, page="run")
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    assert getattr(script_runner._clean_problem_modules, "keeps_keras", False) and calls == []


def test_script_runs_and_a_sessions_end_start_no_process(monkeypatch):
    """app.py sets glibc's mmap threshold on every script run and a session's end hands memory
    back with malloc_trim; finding libc ran `ldconfig -p` in a subprocess each time: a fork of the
    whole server (bench/attack_replay.py saw copies of the 0.9-1 GB server on page loads)."""
    import subprocess

    from dashboard.streamlit_fixes import return_free_memory

    at = app(TINY)  # the process's first script run may look libc up
    started = []

    class NoProcess:
        def __init__(self, *args, **kwargs):
            started.append(args[0] if args else kwargs.get("args"))
            raise OSError("no process may start here")

    monkeypatch.setattr(subprocess, "Popen", NoProcess)
    at.run()
    at.switch_page("app_pages/strategy.py").run()
    return_free_memory()
    assert not at.exception, at.exception
    assert started == []


def test_a_race_whose_rounds_cannot_be_saved_goes_on_and_says_so(tmp_path, monkeypatch):
    from alcore.engine.store import RunStore

    monkeypatch.setenv("ALCORE_RUNS_DIR", str(tmp_path))

    def disk_full(self, race_id, index, result):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RunStore, "save_run", disk_full)
    at = race_app()
    assert not at.exception, at.exception
    race = at.session_state["race"]
    assert race.done and [len(e.rounds) for e in race.experiments] == [3, 3]
    assert at.session_state["race_id"] is None and "run" not in at.query_params
    assert [e.value for e in at.error if "Saving the race" in e.value] == [
        "Saving the race on the server failed (No space left on device); it goes on in this tab only. "
        "Download its results from **Results** before closing the tab."]


def test_finished_races_are_freed_when_the_next_one_starts():
    """A visitor who races again and again (new seed on Dataset, Start, Results: the soak's
    round trip) keeps only the current race in memory. A widget callable defined in a page
    (a selectbox's format_func lambda) held that page's globals, and with them every finished
    race, for as long as Streamlit kept the widget."""
    import gc
    import weakref

    at = app(TINY, page="run")
    races = []
    for seed in (1, 2, 3):
        at.switch_page("app_pages/dataset.py").run()
        at.number_input(key="w_seed").set_value(seed).run()
        at.switch_page("app_pages/run.py").run()
        race_on(at.button(key="start").click().run())
        races.append(weakref.ref(at.session_state["race"]))
        at.switch_page("app_pages/results.py").run()
        assert not at.exception, at.exception
    gc.collect()
    assert [r() is not None for r in races] == [False, False, True]


def test_a_zip_of_images_uploads_with_its_layout_and_skipped_files_under_the_uploader():
    import io
    import zipfile

    from test_images import COLOURS, blob, encode  # the loader's tests' image makers

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for c, col in COLOURS.items():
            for i in range(6):
                z.writestr(f"pets/{c}/{i}.png", encode(blob(col, seed=i)))
        z.writestr("pets/ant/[evil](http://x).png", b"not an image")
        z.writestr("pets/../up.png", b"x")
    at = app()
    assert "Upload a .zip of images" in at.selectbox(key="w_dataset").options
    at.selectbox(key="w_dataset").set_value("images").run()
    assert any("Upload a .zip" in i.value for i in at.info)
    at.file_uploader[0].set_value(("my pets.zip", buf.getvalue(), "application/zip")).run()
    assert not at.exception, at.exception
    assert metric(at, "Pool images") == "24" and metric(at, "Classes") == "5" and metric(at, "Image size") == "32x32x3"
    assert any(c.value.startswith("Layout: one folder per class") for c in at.caption)
    warning = next(w.value for w in at.warning if "Files skipped" in w.value)
    assert "pets/../up.png: a path with '..'" in shown(warning) and "(http:" in shown(warning)
    assert not re.search(r"(?<!\\)[\[\]]", warning)  # the file name cannot form a link
    at.number_input(key="w_image_size").set_value(16).run()
    assert not at.exception and metric(at, "Image size") == "16x16x3"
    flat = io.BytesIO()
    with zipfile.ZipFile(flat, "w") as z:
        for i in range(4):
            z.writestr(f"{i}.png", encode(blob(30 * i, seed=i)))
    at.file_uploader[0].set_value(("flat.zip", flat.getvalue(), "application/zip")).run()
    assert not at.exception, at.exception
    assert any("have no labels" in shown(e.value) for e in at.error)
    assert any(c.value.startswith("Layout: images without labels") for c in at.caption)
