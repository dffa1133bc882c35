"""One setting swept (the hybrid fraction): statistics, figure, presets and the Compare page."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst
from streamlit.testing.v1 import AppTest

from alcore.figures import setting_effect_figure
from alcore.sweep.presets import PRESETS_DIR, list_presets, load_preset
from alcore.results.records import save_result
from alcore.analysis.stats import setting_effect, swept_settings
from conftest import FRACTIONS, ROOT, SEEDS
from test_app_pages import shown


def test_swept_settings_are_the_numbers_that_vary_among_like_runs(fraction_results, three_seed_results):
    assert swept_settings(fraction_results) == ["hybrid_fraction"]
    assert swept_settings(fraction_results[:6]) == ["hybrid_fraction"]  # two seeds: still 3 values
    assert swept_settings([r for r in fraction_results if r.config.hybrid_fraction != 0.5]) == []  # 2 values
    assert swept_settings(three_seed_results) == []  # strategies vary, no number does
    mixed = fraction_results + three_seed_results
    assert "hybrid_fraction" not in swept_settings(mixed)  # margin runs have no fraction to speak of


def test_setting_effect_means_intervals_and_tests_match_scipy(fraction_results):
    from alcore.analysis.metrics import labels_to_target, normalized_aulc

    target = float(np.median([r.rounds[-1].test_accuracy for r in fraction_results]))
    effect = setting_effect(fraction_results, "hybrid_fraction", target)
    assert list(effect.summary["value"]) == list(FRACTIONS)
    assert effect.blocks == 3
    aulc = {(r.config.seed, r.config.hybrid_fraction): normalized_aulc(*r.curve()) for r in fraction_results}
    table = np.array([[aulc[(s, f)] for f in FRACTIONS] for s in SEEDS])
    for j, f in enumerate(FRACTIONS):
        row = effect.summary.iloc[j]
        values = table[:, j]
        assert row["aulc_mean"] == pytest.approx(values.mean())
        half = sst.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
        assert row["aulc_low"] == pytest.approx(max(values.mean() - half, 0.0))
        hits = [labels_to_target(*r.curve(), target) for r in fraction_results if r.config.hybrid_fraction == f]
        reached = [h for h in hits if h is not None]
        assert row["reached_target"] == f"{len(reached)}/3"
        if reached:
            assert row["labels_mean"] == pytest.approx(np.mean(reached))
        else:
            assert pd.isna(row["labels_mean"])
    assert effect.friedman_p == pytest.approx(sst.friedmanchisquare(*table.T).pvalue)
    assert effect.page_p == pytest.approx(sst.page_trend_test(table).pvalue)
    assert effect.page_falls_p == pytest.approx(sst.page_trend_test(table[:, ::-1]).pvalue)


def test_setting_effect_says_why_tests_are_missing(fraction_results):
    two = [r for r in fraction_results if r.config.seed == 0 or r.config.hybrid_fraction == 0.0]
    effect = setting_effect(two, "hybrid_fraction", 0.5)
    assert effect.friedman_p is None and effect.blocks == 1
    assert any("at least 2 seeds run at every value" in n for n in effect.notes)
    with pytest.raises(ValueError, match="not a setting"):
        setting_effect(fraction_results, "seed", 0.5)


def test_setting_effect_figure_draws_seeds_censored_runs_and_the_mean(fraction_results):
    # a target only some runs reach: crosses for the others, at the top
    finals = sorted(r.rounds[-1].test_accuracy for r in fraction_results)
    target = (finals[3] + finals[4]) / 2
    effect = setting_effect(fraction_results, "hybrid_fraction", target)
    fig = setting_effect_figure(effect, "labels_to_target", target)
    names = [t.name for t in fig.data]
    assert names == ["one seed", "never reached (censored)", "mean over seeds"]
    dots, crosses, mean = fig.data
    never = int(effect.runs["labels_to_target"].isna().sum())
    assert len(crosses.x) == never and len(dots.x) == len(fraction_results) - never
    assert min(crosses.y) > max(dots.y)
    assert fig.layout.xaxis.tickformat == ".0%"
    aulc = setting_effect_figure(effect, "aulc")
    assert [t.name for t in aulc.data] == ["one seed", "mean over seeds"]
    assert list(aulc.data[1].y) == pytest.approx(list(effect.summary["aulc_mean"]))
    with pytest.raises(ValueError):
        setting_effect_figure(effect, "final")


def test_presets_are_folders_with_a_spec_and_result_files(tmp_path, fraction_results):
    good = tmp_path / "fractions"
    good.mkdir()
    (good / "spec.toml").write_text('name = "Fractions on digits"\ndescription = "What it showed."\n'
                                    '[base]\nstrategy = "hybrid"\n[axes]\nseed = [0, 1, 2]\n'
                                    'hybrid_fraction = [0.0, 0.5, 1.0]\n')
    for i, r in enumerate(fraction_results):
        save_result(r, good / f"run{i}.json")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "spec.toml").write_text('[axes]\nseed = [0]\n')  # no results: not a preset
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "spec.toml").write_text('[axes\n')
    (tmp_path / "broken" / "x.json").write_text("{}")
    presets = list_presets(tmp_path)
    assert [p.key for p in presets] == ["fractions"]
    p = presets[0]
    assert p.name == "Fractions on digits" and p.description == "What it showed."
    assert p.command() == "python -m alcore sweep presets/fractions/spec.toml --out presets/fractions"
    assert [r.config for r in load_preset(p)] == [r.config for r in fraction_results]


def test_the_shipped_presets_load_and_are_complete():
    for preset in list_presets():
        assert preset.folder.parent == PRESETS_DIR
        assert len(load_preset(preset)) == len(preset.files), f"{preset.key} holds a stopped run"


def test_compare_page_loads_a_preset_and_plots_the_setting(tmp_path, fraction_results, monkeypatch):
    import alcore.sweep.presets

    folder = tmp_path / "fractions"
    folder.mkdir()
    (folder / "spec.toml").write_text('name = "Fractions on digits"\ndescription = "What it <b>showed</b>."\n'
                                      '[axes]\nseed = [0]\n')
    for i, r in enumerate(fraction_results):
        save_result(r, folder / f"run{i}.json")
    monkeypatch.setattr(alcore.sweep.presets, "PRESETS_DIR", tmp_path)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="compare_preset").options == ["none", "Fractions on digits"]
    at.selectbox(key="compare_preset").set_value("fractions").run()
    assert not at.exception, at.exception
    assert "9 run(s) loaded: preset: Fractions on digits" in [shown(c.value) for c in at.caption]
    assert "What it <b>showed</b>." in [shown(i.value) for i in at.info]  # as text, not bold
    assert "Effect of a setting" in [s.value for s in at.subheader]
    effect_chart = at.get("plotly_chart")[-1]
    assert "against Uncertainty fraction" in effect_chart.proto.spec
    assert any("Friedman test" in m.value and "3 seeds run at every value" in m.value for m in at.markdown)
    at.radio(key="compare_setting_metric").set_value("aulc").run()
    assert not at.exception, at.exception
    assert "AULC against" in at.get("plotly_chart")[-1].proto.spec
