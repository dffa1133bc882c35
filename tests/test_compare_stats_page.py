"""AppTest of the Compare page's "Statistics across seeds" section, on uploaded real result files."""
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT

APP = str(ROOT / "app.py")


@pytest.fixture(scope="module")
def files(three_seed_results):
    return [(f"{r.config.strategy}_seed{r.config.seed}.json", r.model_dump_json().encode(), "application/json")
            for r in three_seed_results]


def test_compare_page_shows_statistics_across_seeds(files):
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception, at.exception
    at.file_uploader(key="compare_files").set_value(files).run()
    assert not at.exception, at.exception
    assert "6 run(s) loaded" in at.caption[0].value
    assert "Statistics across seeds" in [s.value for s in at.subheader]
    assert len(at.get("plotly_chart")) == 2  # the curves and the pairwise heatmap
    assert len(at.dataframe) >= 3  # per group, per run, intervals (+ the pairwise numbers)
    assert any("3 paired seeds" in w.value and "cannot be told apart" in w.value for w in at.warning)


def test_a_six_setting_preset_reads_in_order_without_none_or_stacked_warnings():
    """Issue 18: the hybrid legend ran 0%, 100%, 20%; 15 near-identical warnings stacked (one
    per pair of settings); missing numbers showed as the word None."""
    import json

    import pyarrow as pa

    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("app_pages/compare.py").run()
    at.selectbox(key="compare_preset").set_value("hybrid_fraction_fashion").run()
    assert not at.exception, at.exception
    curves = json.loads(at.get("plotly_chart")[0].proto.spec)
    legend = [t["name"].split(" (")[0] for t in curves["data"] if t.get("showlegend", True) is not False]
    assert legend == ["hybrid 0%", "hybrid 20%", "hybrid 40%", "hybrid 60%", "hybrid 80%", "hybrid 100%"]
    told_apart = [w.value for w in at.warning if "cannot be told apart" in w.value]
    assert len(told_apart) == 1 and "15 pairs" in told_apart[0] and "hybrid 0% vs hybrid 100%" in told_apart[0]
    stats = next(d for d in at.dataframe if "efficiency" in d.value.columns)
    assert stats.value["efficiency"].isna().all()  # no random run: no efficiency
    shown = pa.ipc.open_stream(stats.proto.arrow_data.styler.display_values).read_pandas()
    assert set(shown["efficiency"]) == {"–"} and "None" not in shown.to_string()


def test_an_empty_setting_is_named_for_what_it_means_in_a_group(three_seed_results):
    from alcore.analysis.groups import group_labels

    margin = [r for r in three_seed_results if r.config.strategy == "margin"]
    whole = margin[0].model_copy(update={"config": margin[0].config.replace(test_size=None)})
    some = margin[1].model_copy(update={"config": margin[1].config.replace(test_size=100)})
    assert group_labels([whole, some]) == ["margin · test_size=all", "margin · test_size=100"]
