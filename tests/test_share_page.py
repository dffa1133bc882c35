"""AppTest: setups shared as links, one-click exports of figures and tables, pitfall warnings."""
import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from alcore import ExperimentConfig
from dashboard.widgets import WIDGET_RANGES
from conftest import ROOT

APP = str(ROOT / "app.py")
TINY = ExperimentConfig(rounds=2, max_epochs=10)


def opened(params: dict, page: str = "strategy", config=None) -> AppTest:
    """A new session opened on ``page`` with ``params`` in its address."""
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in params.items():
        at.query_params[k] = v
    if config is not None:
        at.session_state["config"] = config
    at.context["url"] = f"http://localhost:8501/{page}"
    at.switch_page(f"app_pages/{page}.py")
    at.run()
    assert not at.exception, at.exception
    return at


def address(at) -> dict:
    """The page's query parameters, every value as a list."""
    return {k: (v if isinstance(v, list) else [v]) for k, v in at.query_params.items()}


def shown(markdown: str) -> str:
    """What a reader sees of text escaped by dashboard.display.plain."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def test_a_link_opened_on_the_strategy_page_restores_the_setup():
    at = opened({"strategies": ["entropy", "random"], "seeds": "3", "batch_size": "20", "rounds": "none",
                 "label_budget": "200", "model": "mlp", "hidden_units": ["64", "32"], "learning_rate": "0.01"})
    assert at.title[0].value == "Strategy"
    assert at.multiselect[0].value == ["entropy", "random"]
    assert at.number_input(key="w_batch_size").value == 20
    assert at.number_input(key="w_rounds").value == 0  # 0 = no round limit
    assert at.number_input(key="w_label_budget").value == 200
    assert next(n for n in at.number_input if n.label == "Seeds per strategy").value == 3
    assert "Setup opened from the link" in at.info[0].value and not at.warning
    cfg = at.session_state["config"]
    assert (cfg.model, cfg.hidden_units, cfg.learning_rate) == ("mlp", (64, 32), 0.01)
    assert at.sidebar.code[0].value == ("http://localhost:8501/strategy?strategies=entropy&strategies=random&"
                                        "seeds=3&model=mlp&hidden_units=64&hidden_units=32&learning_rate=0.01&"
                                        "batch_size=20&rounds=none&label_budget=200")
    at.switch_page("app_pages/model.py").run()
    assert at.selectbox(key="w_model").value == "mlp" and at.text_input(key="w_hidden_units").value == "64,32"
    assert not at.info or "opened from the link" not in at.info[0].value  # said once, on the page opened


def test_changing_a_setting_updates_the_address_and_keeps_a_saved_race_in_it():
    at = opened({"run": "A" * 22})
    assert address(at) == {"run": ["A" * 22]}
    at.number_input(key="w_batch_size").set_value(25).run()
    assert address(at) == {"run": ["A" * 22], "batch_size": ["25"]}
    at.multiselect[0].set_value(["margin", "entropy", "random"]).run()
    assert address(at)["strategies"] == ["margin", "entropy", "random"]
    at.number_input(key="w_batch_size").set_value(10).run()  # back to the default: out of the link
    assert address(at) == {"run": ["A" * 22], "strategies": ["margin", "entropy", "random"]}
    assert at.sidebar.code[0].value == "http://localhost:8501/strategy?strategies=margin&strategies=entropy&" \
                                       "strategies=random"


def test_a_bad_or_hostile_parameter_is_named_and_the_rest_applies():
    hostile = "<img src=x onerror=alert(1)>"
    at = opened({"batch_size": "-3", "rounds": "7", "foo": hostile, "data_dir": "/etc", "seeds": "999",
                 "model": "[click](http://evil)"})
    said = [shown(w.value) for w in at.warning]
    assert any(w.startswith("The link's batch_size=-3 was not applied: input should be greater than or equal to 1")
               for w in said)
    assert any(w.startswith(f"The link's foo={hostile} was not applied") for w in said)
    assert any("data_dir was not applied: a link never carries a path" in w for w in said)
    assert any("seeds=999 was not applied: the dashboard takes 1 to 20" in w for w in said)
    assert any("model=[click](http://evil) was not applied" in w for w in said)
    # markdown and HTML in a parameter read as text (dashboard.display.plain escapes them)
    assert any("\\<img src\\=x" in w.value for w in at.warning)
    assert all("](http" not in w.value and "<img" not in w.value.replace("\\<img", "") for w in at.warning)
    cfg = at.session_state["config"]
    assert cfg.rounds == 7 and cfg.batch_size == 10 and cfg.data_dir is None and cfg.model == "softmax"
    assert address(at) == {"rounds": ["7"]}  # refused parameters leave the address
    at.number_input(key="w_batch_size").set_value(12).run()
    assert not at.exception and address(at) == {"rounds": ["7"], "batch_size": ["12"]}


def test_the_ranges_of_links_are_the_widgets_own():
    at = opened({"model": "mlp", "optimizer": "sgd", "validation": "split"}, page="model")
    for key in ("dropout", "momentum", "validation_fraction"):
        assert (at.slider(key=f"w_{key}").min, at.slider(key=f"w_{key}").max) == WIDGET_RANGES[key], key
    for key in ("learning_rate", "patience"):
        w = at.number_input(key=f"w_{key}")
        assert (w.min, w.max) == WIDGET_RANGES[key], key
    at.switch_page("app_pages/strategy.py").run()
    for key in ("batch_size", "uncertainty_threshold", "changed_threshold"):
        w = at.number_input(key=f"w_{key}")
        assert (w.min, w.max) == WIDGET_RANGES[key], key
    seeds = next(n for n in at.number_input if n.label == "Seeds per strategy")
    assert (seeds.min, seeds.max) == WIDGET_RANGES["seeds"]
    at.multiselect[0].set_value(["probcover", "random"]).run()
    purity = at.slider(key="w_probcover_purity")
    assert (purity.min, purity.max) == WIDGET_RANGES["probcover_purity"]


@pytest.mark.parametrize("edge", ["high", "over"])
def test_values_at_the_widgets_edges_open_and_beyond_them_are_refused(edge, monkeypatch):
    """A value a widget cannot draw would stop the page; a link's is refused by name instead.
    (On a machine whose owner lifted the server's caps: the widgets go further than they.)"""
    from alcore.serve.limits import DeploymentLimits

    for field in DeploymentLimits.unlimited().model_fields_set - {"allow_server_paths", "dataset_cache_mb"}:
        monkeypatch.setenv(DeploymentLimits.env_name(field), "none")
    over = {"batch_size": "100001", "dropout": "0.95", "learning_rate": "5e-07", "momentum": "0.995",
            "patience": "1001", "validation_fraction": "0.6", "uncertainty_threshold": "0.995",
            "changed_threshold": "0.995", "seeds": "21", "probcover_purity": "0.995"}
    high = {k: repr(v[1]) if isinstance(v[1], float) else str(v[1]) for k, v in WIDGET_RANGES.items()}
    params = {"model": "mlp", "optimizer": "sgd", **(high if edge == "high" else over)}
    at = opened(params, page="model")
    said = [shown(w.value) for w in at.warning]
    refused = {w.split("=")[0].removeprefix("The link's ") for w in said if "was not applied" in w}
    assert refused == (set() if edge == "high" else set(over))
    at.switch_page("app_pages/strategy.py").run()
    assert not at.exception, at.exception


def test_a_pool_size_over_the_servers_cap_is_refused_by_name_not_cut_down():
    """Issue 19, 7: ``?pool_size=999999999`` was applied and the Dataset page's widget cut it to the
    cap (20 000) without a word; on digits the page then said the pool of 20,000 was too large."""
    at = opened({"pool_size": "999999999", "rounds": "7"}, page="dataset")
    said = [shown(w.value) for w in at.warning]
    assert ("The link's pool_size=999999999 was not applied: pool_size 999,999,999 is over this server's limit "
            "of 20,000 pool images: set it to 20,000 or fewer.") in said
    assert not at.error, [e.value for e in at.error]
    cfg = at.session_state["config"]
    assert cfg.pool_size is None and cfg.rounds == 7 and address(at) == {"rounds": ["7"]}
    at = opened({"pool_size": "20000"}, page="strategy")  # at the cap: applied
    assert at.session_state["config"].pool_size == 20000
    assert not [w for w in at.warning if "was not applied" in w.value]


def test_a_link_whose_oracle_ceiling_is_over_the_servers_runs_per_race_is_refused_by_name_when_it_opens():
    """?ceiling=true on 3 strategies x 5 seeds makes 20 runs, over the 15 a server with nothing
    configured allows: it used to apply, and Start then refused the whole race. Now the ceiling is
    refused by name when the link opens, the rest applies, and the Strategy page (which counts as
    Start counts) finds nothing to refuse."""
    at = opened({"strategies": ["random", "margin", "typiclust"], "seeds": "5", "ceiling": "true", "rounds": "7"})
    said = [shown(w.value) for w in at.warning]
    assert ("The link's ceiling=true was not applied: the race has 20 runs (strategies x seeds and an oracle "
            "ceiling per seed), over this server's limit of 15 runs per race: race fewer strategies or seeds, "
            "or turn the oracle ceiling off.") in said
    assert not any("would refuse the race" in w for w in said), said
    rs = at.session_state["race_settings"]
    assert (rs["strategies"], rs["seeds"], rs.get("ceiling", False)) == (["random", "margin", "typiclust"], 5, False)
    assert at.session_state["config"].rounds == 7 and at.toggle(key="w_ceiling").value is False
    assert "ceiling" not in address(at) and "oracle" not in at.sidebar.markdown[1].value
    at = opened({"strategies": ["random", "margin", "typiclust"], "seeds": "3", "ceiling": "true"})  # 9 + 3 runs
    assert not any("was not applied" in w.value or "would refuse" in w.value for w in at.warning)
    assert at.session_state["race_settings"]["ceiling"] is True and at.toggle(key="w_ceiling").value is True


def test_pitfalls_are_said_on_the_dataset_and_strategy_pages():
    at = opened({"test_size": "100"}, page="dataset")
    tiny = [shown(w.value) for w in at.warning if "test set is tiny" in w.value]
    assert len(tiny) == 1 and "100 images" in tiny[0] and "**Fix:** Set test_size to at least 141" in tiny[0]
    at = opened({"rounds": "3", "target_accuracy": "0.9"})
    said = [shown(w.value) for w in at.warning]
    assert any(w.startswith("Only 3 acquisition rounds fit (rounds is 3)") for w in said)
    assert any("the test set decides when the run ends" in w for w in said)
    at.number_input(key="w_rounds").set_value(39).run()
    assert not any("acquisition rounds" in w.value for w in at.warning)


def figure_configs(at) -> list[dict]:
    return [json.loads(c.proto.config) for c in at.get("plotly_chart")]


def csv_buttons(at) -> list[str]:
    return [b.key for b in at.get("download_button") if b.key and b.key.startswith("csv_")]


def test_every_figure_and_table_exports_in_one_click_and_a_race_says_what_it_cannot_tell():
    at = opened({}, page="dataset")
    assert [c["toImageButtonOptions"] for c in figure_configs(at)] == [
        {"format": "png", "filename": "label_distribution", "scale": 2}]
    script = at.sidebar.get("html")[0].proto.body  # the SVG button beside the camera
    assert "Download plot as an SVG" in script
    # Streamlit's sanitizer (DOMPurify) drops a script whose text has '<' before a letter, '/' or '!'
    assert not re.search(r"<[/\w!]", script.removeprefix("<script>").removesuffix("</script>"))
    at.switch_page("app_pages/model.py").run()
    assert csv_buttons(at) == ["csv_layers_softmax"]

    at.session_state["config"] = TINY
    at.switch_page("app_pages/run.py").run()
    at.button(key="start").click().run()
    while at.session_state["running"]:
        at.run(timeout=300)
    assert not at.exception, at.exception
    assert [c["toImageButtonOptions"]["filename"] for c in figure_configs(at)] == ["learning_curves"]
    assert csv_buttons(at) == ["csv_last_accuracies"]
    said = [shown(w.value) for w in at.warning]
    assert any(w.startswith("Only 2 acquisition rounds fit") for w in said)
    assert any(w.startswith("margin is not significantly better than random over its one seed") and
               "**Fix:** Run at least 6 seeds per strategy" in w for w in said)

    at.switch_page("app_pages/results.py").run()
    assert not at.exception, at.exception
    names = [c["toImageButtonOptions"]["filename"] for c in figure_configs(at)]
    assert names[:2] == ["confusion_margin_seed_0_round2", "labels_per_class_round2"]
    assert all(c["toImageButtonOptions"]["format"] == "png" for c in figure_configs(at))
    assert csv_buttons(at) == ["csv_metrics_per_run"]

    at.switch_page("app_pages/compare.py").run()
    assert not at.exception, at.exception
    assert len(figure_configs(at)) >= 1 and all("toImageButtonOptions" in c for c in figure_configs(at))
    assert set(csv_buttons(at)) >= {"csv_compare_metrics_per_group", "csv_compare_metrics_per_run",
                                    "csv_compare_statistics_per_group"}
    assert any("1 paired seed" in w.value for w in at.warning)  # the page's own statistics say it once
    assert not any("over its one seed" in w.value for w in at.warning)


@pytest.mark.parametrize("params", [
    {"pool_size": "1", "test_size": "1", "initial": "100000"},
    {"strategies": ["hybrid", "margin_cluster", "bald"], "hybrid_fraction": "0.33", "mc_passes": "200",
     "margin_cluster_factor": "1000", "model": "cnn", "filters": "512", "candidates": "1"},
    {"strategies": ["typiclust", "probcover", "maxherding", "uherding"], "typiclust_neighbors": "1000",
     "probcover_radius": "2.0", "probcover_purity": "0.99", "herding_bandwidth": "10", "uherding_temperature": "100",
     "uherding_measure": "entropy", "initial_strategy": "typiclust"},
    {"label_budget": "100000000", "rounds": "none", "seed": "2147483647", "train_batch_size": "8192",
     "max_epochs": "10000", "l2": "1000000000", "validation": "fixed", "validation_size": "100000"},
])
def test_extreme_but_valid_settings_from_a_link_open_every_setup_page(params):
    for page in ("dataset", "model", "strategy", "run"):
        at = opened(params, page=page)  # asserts no exception
        assert "Setup opened from the link" in at.info[0].value
