"""What a reader notices across the pages (issue 18's rough edges): one name and one format per
concept, advice that fits this server, one colour per strategy, legible galleries. AppTest with
the real alcore on tiny configurations (tests/test_app_pages.py's helpers)."""
import json

import pytest

from alcore import ExperimentConfig
from alcore.analysis.metrics import default_target
from alcore.cli import build_parser
from alcore.engine.race import Race
from test_app_pages import TINY, app, metric, race_app, race_on, shown

TARGET = "Target accuracy (%)"


def target_input(at):
    return next(n for n in at.number_input if n.label == TARGET)


def test_target_accuracy_has_one_name_and_is_in_percent_on_every_page():
    """Results asked for the target of 'labels to target' on a 0.92 slider and Compare as a number
    0.92, under other names than the Strategy page's target_accuracy (0.920)."""
    at = race_app()
    race = at.session_state["race"]
    best = max(r.rounds[-1].test_accuracy for r in race.results())
    at.switch_page("app_pages/results.py").run()
    assert not any("arget" in s.label for s in at.slider)
    on_results = target_input(at)
    assert on_results.value == pytest.approx(round(best * 0.95, 2) * 100) and on_results.max == 100.0
    on_results.set_value(50.0).run()
    assert not at.exception, at.exception
    at.switch_page("app_pages/compare.py").run()
    assert target_input(at).value == on_results.proto.default  # the same default, the same format

    at = app(ExperimentConfig(target_accuracy=0.9), page="strategy")
    w = at.number_input(key="w_target_accuracy")
    assert w.label.startswith("Target accuracy (%") and w.value == 90.0
    w.set_value(85.5).run()
    assert at.session_state["config"].target_accuracy == 0.855  # the config (link, JSON) keeps the fraction


def test_labels_to_target_starts_at_the_runs_own_target_accuracy():
    race = Race(TINY.replace(rounds=None, target_accuracy=0.3, label_budget=40), ["margin", "random"], [0])
    race.step()
    assert default_target(race.results()) == 0.3
    plain = Race(TINY, ["margin"], [0])
    plain.step()
    best = plain.results()[0].rounds[-1].test_accuracy
    assert default_target(plain.results()) == max(0.05, round(best * 0.95, 2))


def test_the_cli_calls_it_target_accuracy_and_keeps_the_old_flag():
    parser = build_parser()
    assert parser.parse_args(["summarize", "r.json", "--target-accuracy", "0.9"]).target_accuracy == 0.9
    assert parser.parse_args(["summarize", "r.json", "--target", "0.9"]).target_accuracy == 0.9


def offline(monkeypatch, name: str) -> None:
    """keras.datasets.<name> as on a machine without a network (and no copy cached)."""
    from alcore._tf import keras

    def fail():
        raise Exception("URL fetch failure: Temporary failure in name resolution")

    monkeypatch.setattr(getattr(keras.datasets, name), "load_data", fail)


def test_offline_advice_fits_what_this_server_allows(monkeypatch, idx_folder):
    """The offline message said "point data_dir" where the Data dir box is hidden (a server that
    reads no folders of its own)."""
    offline(monkeypatch, "mnist")
    at = app()
    at.selectbox(key="w_dataset").set_value("mnist").run()
    said = shown(at.error[0].value)
    assert said.startswith("**mnist is not available here.** Could not load mnist through keras.datasets")
    assert "data_dir" not in said.lower() and "data dir" not in said.lower() and not at.text_input
    assert "choose **digits**" in said and ".npz" in said

    monkeypatch.setenv("ALCORE_ALLOW_SERVER_PATHS", "1")  # a machine whose folders are the visitor's own
    at = app()
    at.selectbox(key="w_dataset").set_value("mnist").run()
    said = shown(at.error[0].value)
    assert "Point **Data dir** on the Dataset page at a folder of its idx files" in said
    at.text_input(key="w_data_dir").set_value(str(idx_folder)).run()  # the box is there to do it
    assert not at.error and metric(at, "Pool images") == "90"
    assert at.session_state["config"].dataset == "mnist"


def test_a_dataset_that_cannot_load_leaves_the_setup_and_the_race_as_they_were(monkeypatch):
    """The Dataset page switched the session to a dataset that could not load: the sidebar, the
    link and every page then stood on it."""
    offline(monkeypatch, "cifar10")
    at = race_app()
    race, before = at.session_state["race"], at.session_state["config"]
    at.switch_page("app_pages/dataset.py").run()
    at.selectbox(key="w_dataset").set_value("cifar10").run()
    assert not at.exception, at.exception
    said = shown(at.error[0].value)
    assert "cifar10 is not available here" in said and "The setup stays on **digits**" in said
    assert at.session_state["config"] == before and at.session_state["race"] is race
    assert "**digits**" in at.sidebar.markdown[0].value and "dataset" not in at.query_params
    at.switch_page("app_pages/results.py").run()  # what was computed is still there
    assert not at.exception and any(s.value == "Inside a round" for s in at.subheader)
    at.switch_page("app_pages/dataset.py").run()
    assert at.selectbox(key="w_dataset").value == "digits" and metric(at, "Pool images") == "1,438"


def test_a_link_to_data_that_cannot_load_keeps_the_sessions_data_and_says_why(monkeypatch):
    """Issue 18: a link naming MNIST on a server that cannot have it (offline, no copy of its own)
    became the session's setup: the sidebar, the link and every page stood on data no page could
    load. Its data settings are refused with why and what to do; the rest of the link applies."""
    from test_share_page import opened

    offline(monkeypatch, "mnist")
    at = opened({"dataset": "mnist", "pool_size": "500", "strategies": ["entropy", "random"], "batch_size": "20"},
                page="dataset")
    said = shown(at.error[0].value)
    assert said.startswith("**mnist is not available here.** Could not load mnist through keras.datasets")
    assert "choose **digits**" in said and "The link's `dataset` and `pool_size` were not applied." in said
    assert "The setup stays on **digits**" in said
    cfg = at.session_state["config"]
    assert (cfg.dataset, cfg.pool_size, cfg.batch_size) == ("digits", None, 20)  # the rest of the link applies
    assert at.session_state["race_settings"]["strategies"] == ["entropy", "random"]
    assert shown(at.info[0].value) == "Setup opened from the link: strategies, batch_size."
    assert "dataset" not in at.query_params and "pool_size" not in at.query_params
    assert at.query_params["batch_size"] == "20"
    assert "**digits**" in at.sidebar.markdown[0].value
    assert metric(at, "Pool images") == "1,438"  # the page draws the data the session stays on
    at.switch_page("app_pages/strategy.py").run()
    assert not at.error  # said once, on the page the link opened


def test_a_link_to_data_this_server_has_opens_on_it(monkeypatch):
    from conftest import SHARED, shared_mnist
    from test_share_page import opened

    shared_mnist()
    offline(monkeypatch, "mnist")  # no download: the deployer's own copy
    monkeypatch.setenv("ALCORE_DATA_DIR", str(SHARED))
    at = opened({"dataset": "mnist", "pool_size": "500"}, page="dataset")
    assert not at.error and at.session_state["config"].dataset == "mnist"
    assert metric(at, "Pool images") == "500" and at.query_params["dataset"] == "mnist"


def test_start_labelling_has_no_tooltip_to_cover_the_strategy_box():
    """Streamlit draws a button's tooltip above it, over Be the oracle's strategy box, and it stayed
    there while the pointer rested on the button after the click (tests/e2e/test_oracle_e2e.py
    looks in the browser)."""
    at = app(TINY, page="oracle")
    start = at.button(key="oracle_start")
    assert start.label == "Start labelling" and not start.help
    assert any("round 0 trains on the initial labels" in i.value for i in at.info)  # said where it covers nothing
    start.click().run()
    assert not at.exception, at.exception
    assert at.button(key="oracle_start").label == "Start over" and not at.button(key="oracle_start").help


def test_gallery_captions_are_short_and_say_the_truth_only_where_the_model_is_wrong():
    from alcore.figures import gallery_caption, gallery_details, picked_images, short_name

    names = [str(c) for c in range(10)]
    assert gallery_caption(219, names, 5, 8, 0.2) == "#219: 5\u00a0(20%), true\u00a08"  # breaks after the comma
    assert gallery_caption(807, names, 4, 4) == "#807: 4"
    assert gallery_caption(3, names, None, 7) == "#3: true\u00a07"  # a file without predicted classes
    assert short_name("Ankle boot and more") == "Ankle boo…" and short_name("Sandal") == "Sandal"
    race = Race(TINY, ["margin"], [0])
    race.step()
    rnd, ds = race.experiments[0].rounds[0], race.experiments[0].dataset
    picked = picked_images(rnd, ds.y_pool)
    assert [p.index for p in picked] == rnd.selected and [p.score for p in picked] == rnd.selected_scores
    table = gallery_details({"picked": picked, "least confident": rnd.least_confident}, ds.class_names)
    assert len(table) == len(picked) + len(rnd.least_confident)
    assert table["score"].notna().sum() == len(picked) and table["confidence"].notna().sum() == len(rnd.least_confident)


def test_galleries_are_sent_as_png_with_captions_of_one_or_two_lines():
    """8x8 digits were sent as JPEG 84 px wide (blurred edges) with captions of 3-4 lines; the
    browser test (tests/e2e/test_dashboard_e2e.py) measures the sizes, gaps and lines."""
    at = race_app()
    at.switch_page("app_pages/results.py").run()
    next(s for s in at.slider if s.label == "Round").set_value(0).run()
    assert len(at.image) == 3  # picked, least and most confident
    for gallery in at.image:
        assert all(url.endswith(".png") for url in gallery.value)
        assert all(len(c) <= 24 for c in gallery.captions), gallery.captions  # 2 lines of a 112-px image
    at.switch_page("app_pages/dataset.py").run()
    centroids = at.image[-1]
    assert all(url.endswith(".png") for url in centroids.value) and all(len(c) <= 28 for c in centroids.captions)


def trace_colors(chart) -> dict[str, str]:
    """Legend name -> colour of a drawn Plotly chart's lines, bars or markers."""
    out = {}
    for t in json.loads(chart.proto.spec)["data"]:
        color = (t.get("line") or {}).get("color") or (t.get("marker") or {}).get("color")
        if t.get("name") and isinstance(color, str) and t.get("showlegend", True):
            out[t["name"]] = color
    return out


def test_every_strategy_has_a_colour_of_its_own_and_random_is_grey():
    from alcore.figures import RANDOM_COLOR, group_colors, strategy_color
    from alcore.strategies.base import STRATEGIES

    colors = [strategy_color(s) for s in STRATEGIES]
    assert len(set(colors)) == len(STRATEGIES) and strategy_color("random") == RANDOM_COLOR
    hybrids = group_colors(["hybrid 0%", "hybrid 20%", "hybrid 100%", "random"], {})
    assert len(set(hybrids.values())) == 4 and hybrids["random"] == RANDOM_COLOR  # shades of hybrid's colour
    assert group_colors(["margin"], {})["margin"] == group_colors(["entropy", "margin", "random"], {})["margin"] \
        == strategy_color("margin")


def test_a_strategy_keeps_its_colour_across_races_and_pages():
    """Colours were handed out in the order of the groups drawn: margin was blue beside random and
    red beside entropy, and the person's curve on Be the oracle was always blue."""
    from alcore.figures import RANDOM_COLOR, strategy_color

    margin, entropy = strategy_color("margin"), strategy_color("entropy")
    for strategies in (["margin", "random"], ["entropy", "margin", "random"]):
        at = app(TINY, page="run", race_settings={"strategies": strategies, "seeds": 1})
        race_on(at.button(key="start").click().run())
        on_run = trace_colors(at.get("plotly_chart")[0])
        assert on_run["margin (seed 0)"] == margin and on_run["random (seed 0)"] == RANDOM_COLOR
        at.switch_page("app_pages/results.py").run()
        balance = trace_colors(next(c for c in at.get("plotly_chart") if "Labels per class" in c.proto.spec))
        assert balance["margin (seed 0)"] == margin and balance["random (seed 0)"] == RANDOM_COLOR
        at.switch_page("app_pages/compare.py").run()
        assert trace_colors(at.get("plotly_chart")[0])["margin"] == margin
    assert on_run["entropy (seed 0)"] == entropy != margin
    at.switch_page("app_pages/oracle.py").run()
    at.button(key="oracle_start").click().run()  # entropy asks: the first strategy raced
    assert not at.exception, at.exception
    assert trace_colors(next(c for c in at.get("plotly_chart")))["you"] == entropy


def _draw_the_live_board():
    import streamlit as st

    from dashboard.race_session import LiveBoard

    LiveBoard().draw(st.session_state["race"], live=True)


def test_the_run_chart_spans_the_planned_labels_from_its_first_point():
    """The first point of a race (one round, 10 labels) sat on an x axis from 9 to 11."""
    from streamlit.testing.v1 import AppTest

    race = Race(TINY, ["margin", "random"], [0])
    race.step()
    assert race.planned_labels() == TINY.initial + 2 * TINY.batch_size
    at = AppTest.from_function(_draw_the_live_board, default_timeout=60)
    at.session_state["race"] = race
    at.run()
    assert not at.exception, at.exception
    layout = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    assert layout["xaxis"]["range"][0] == 0 and layout["xaxis"]["range"][1] >= race.planned_labels()
    assert layout["yaxis"]["autorangeoptions"] == {"minallowed": 0, "maxallowed": 1.01}  # not -50% to 100%

    assert Race(TINY.replace(rounds=None, target_accuracy=0.9), ["margin"], [0]).planned_labels() is None
    assert Race(TINY.replace(rounds=None, label_budget=25), ["margin"], [0]).planned_labels() == 25
    assert Race(TINY.replace(rounds=5000), ["margin"], [0]).planned_labels() == 1438  # no more than the pool
    from alcore.figures import learning_curve_figure

    unbounded = learning_curve_figure(race.curve_frame())  # Compare: no plan, but from 0
    assert unbounded.layout.xaxis.rangemode == "tozero" and unbounded.layout.xaxis.range is None


def test_the_sidebar_link_is_one_line_that_scrolls():
    """The link wrapped in the narrow sidebar broke mid-word ("/or" "acle"); the browser test
    (tests/e2e/test_share_e2e.py) measures that it takes one line."""
    at = app(ExperimentConfig(batch_size=20), page="strategy")
    link = at.sidebar.code[0]
    assert "batch_size=20" in link.value and link.proto.wrap_lines is False


@pytest.mark.parametrize("changes, features_layer", [
    ({"model": "mlp", "hidden_units": (16, 8), "dropout": 0.3}, "dense_1"),
    ({"model": "mlp", "hidden_units": (16,), "dropout": 0.0}, "dense_0"),
    ({"model": "cnn", "filters": 4, "kernel_size": 2, "dropout": 0.25, "dense_dropout": 0.5}, "dense"),
    ({"model": "softmax"}, "flatten"),
])
def test_the_features_are_found_by_their_role_and_every_layer_keeps_its_own_name(changes, features_layer):
    """The layer the diversity strategies read their features from was named "embedding", a
    Dropout among them, and the Model page's layer table showed that name."""
    import numpy as np

    from alcore._tf import keras
    from alcore.data.datasets import load_dataset
    from alcore.engine.models import ModelSpec
    from alcore.engine.training import Trainer

    cfg = ExperimentConfig(**changes)
    ds = load_dataset(cfg.replace(pool_size=200, test_size=50))
    trainer = Trainer(ModelSpec.from_config(cfg, ds.inputs_pool.shape[1:], ds.n_classes))
    names = [layer.name for layer in trainer.model.layers]
    assert "embedding" not in names
    assert all(layer.name.startswith("dropout") for layer in trainer.model.layers
               if isinstance(layer, keras.layers.Dropout))
    x = ds.inputs_pool[:20]
    expected = keras.Model(trainer.model.inputs, trainer.model.get_layer(features_layer).output)(x, training=False)
    assert np.allclose(trainer.embed(x), np.reshape(np.asarray(expected), (len(x), -1)))  # the same features as before


def test_the_model_page_lists_the_layers_by_what_they_are():
    at = app(ExperimentConfig(model="mlp", dropout=0.2), page="model")
    table = at.dataframe[0].value
    assert "embedding" not in set(table["layer"])
    assert list(table.loc[table["type"] == "Dropout", "layer"]) == ["dropout_0"]


def test_the_run_header_names_an_npz_file_once(tmp_path, capsys):
    """`python -m alcore run` began with "npz:npz file kmnist.npz: pool ..."."""
    from alcore.cli import main
    from alcore.data.datasets import dataset_title
    from conftest import npz_with_classes

    data = tmp_path / "kmnist.npz"
    data.write_bytes(npz_with_classes(["a", "b", "c"]))
    assert main(["run", "--dataset", "npz", "--data-file", str(data), "--model", "softmax", "--initial", "9",
                 "--batch-size", "3", "--rounds", "1", "--test-size", "12"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("npz file kmnist.npz: pool ") and header.count("npz") == 2, header
    # result files keep the name they always had; Compare's group names read it once too
    assert dataset_title("npz:npz file kmnist.npz") == "npz file kmnist.npz" and dataset_title("mnist") == "mnist"
    assert dataset_title("idx:idx files in emnist") == "idx files in emnist"


def test_the_dashboards_run_header_names_a_users_file_never_its_folder():
    """The Run page said only "images" for any uploaded .zip; the file it races on is what a
    person with several uploads needs, and the folder it is kept in on the server is not theirs."""
    from dashboard.display import config_caption

    kept = "/tmp/alcore-uploads/3f9c0a/5be1d2/shapes.zip"
    caption = config_caption(ExperimentConfig(dataset="images", data_file=kept)).replace("\\", "")  # as read
    assert caption.startswith("**images** shapes.zip · model **softmax**") and "alcore-uploads" not in caption
    assert config_caption(ExperimentConfig()).startswith("**digits** · model")


def test_every_uploader_states_the_limit_this_server_keeps(monkeypatch):
    """Result-file uploaders said "64MB per file" where the server reads at most 16 MB, and the
    .zip uploader 200 MB where Streamlit refuses anything over server.maxUploadSize (100)."""
    import tomllib

    from conftest import ROOT

    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    at = app(page="compare")
    results = at.get("file_uploader")[0].proto
    assert results.max_upload_size_mb == 16 and "At most 16 MB of result files at once" in results.help
    monkeypatch.setenv("ALCORE_MAX_RESULT_MB", "8")
    at = app(page="compare")
    assert at.get("file_uploader")[0].proto.max_upload_size_mb == 8
    at = app()
    at.selectbox(key="w_dataset").set_value("npz").run()
    npz = at.get("file_uploader")[0].proto
    assert npz.max_upload_size_mb == min(256, server) and "unpack to at most 256 MB" in npz.help
    at.selectbox(key="w_dataset").set_value("images").run()
    assert at.get("file_uploader")[0].proto.max_upload_size_mb == server
    assert any(c.value.startswith(f"At most {server} MB per .zip") for c in at.caption)


def test_widget_labels_write_acronyms_as_acronyms():
    """The Model page's toggle read "Mc evaluation" (and the Strategy page "Mc passes")."""
    from dashboard.widgets import label

    assert [label(f) for f in ("mc_evaluation", "mc_passes", "penalty_cv", "max_epochs")] == [
        "MC evaluation", "MC passes", "Penalty CV", "Max epochs"]
