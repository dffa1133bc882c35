"""AppTest of the Compare page's "Phase transition" section: result files of a typicality and an
uncertainty strategy whose curves cross at a known budget."""
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from alcore.results.records import confusion_matrix
from conftest import ROOT

APP = str(ROOT / "app.py")
# digits runs of 10 initial labels + 3 rounds of 10: accuracy at 10, 20, 30, 40 labels
TYPICLUST = [0.60, 0.70, 0.74, 0.78]
MARGIN = [0.60, 0.64, 0.80, 0.86]  # behind at 20 labels, ahead from 30 on every seed


def scored(round_, accuracy):
    """The round with ``accuracy`` (to the nearest test image) and a confusion matrix that gives it."""
    m = confusion_matrix(round_.confusion)
    rows, total = m.sum(axis=1), int(m.sum())
    right = round(accuracy * total)
    new, wrong = np.diag(rows), total - right
    for c in range(len(rows)):  # the wrong answers moved to the next class
        move = min(wrong, int(rows[c]))
        new[c, c] -= move
        new[c, (c + 1) % len(rows)] += move
        wrong -= move
    return round_.model_copy(update={"test_accuracy": right / total, "confusion": new.tolist()})


def with_curve(result, strategy, accuracies, seed_shift):
    rounds = [scored(r, a + seed_shift) for r, a in zip(result.rounds, accuracies)]
    return result.model_copy(update={"config": result.config.replace(strategy=strategy), "rounds": rounds})


@pytest.fixture(scope="module")
def crossing_files(three_seed_results):
    out = []
    for r in three_seed_results:
        shift = 0.01 * r.config.seed
        if r.config.strategy == "margin":
            made = with_curve(r, "margin", MARGIN, shift)
            out.append(with_curve(r, "typiclust", TYPICLUST, shift))
        else:
            made = r
        out.append(made)
    return [(f"{r.config.strategy}_seed{r.config.seed}.json", r.model_dump_json().encode(), "application/json")
            for r in out]


def compare_with(files):
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("app_pages/compare.py").run()
    at.file_uploader(key="compare_files").set_value(files).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def test_the_budget_where_margin_overtakes_typiclust_is_stated_and_marked_on_the_curves(crossing_files):
    at = compare_with(crossing_files)
    assert "Phase transition" in [s.value for s in at.subheader]
    said = " ".join(m.value for m in at.markdown).replace("\\", "")
    assert "margin overtakes typiclust at 30 labels (95% interval 30-30 labels over seeds)" in said
    table = next(d.value for d in at.dataframe if "overtakes at" in d.value.columns)
    assert table.iloc[0][["typicality", "uncertainty", "overtakes at", "seeds"]].tolist() == [
        "typiclust", "margin", 30, 3]
    curves = json.loads(at.get("plotly_chart")[0].proto.spec)
    lines = [s for s in curves["layout"].get("shapes", []) if s.get("type") == "line" and s.get("x0") == 30]
    assert lines, curves["layout"].get("shapes")
    assert any("overtakes" in a.get("text", "") for a in curves["layout"].get("annotations", []))


def test_no_section_without_a_typicality_strategy(three_seed_results):
    files = [(f"{r.config.strategy}_seed{r.config.seed}.json", r.model_dump_json().encode(), "application/json")
             for r in three_seed_results]  # margin and random only
    at = compare_with(files)
    assert "Phase transition" not in [s.value for s in at.subheader]
    curves = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert not [s for s in curves["layout"].get("shapes", []) if s.get("type") == "line" and s.get("yref") == "paper"]


def test_a_typicality_strategy_that_stays_ahead_is_reported_as_never_overtaken(crossing_files, three_seed_results):
    flipped = []
    for r in three_seed_results:
        if r.config.strategy == "margin":
            shift = 0.01 * r.config.seed
            flipped += [with_curve(r, "margin", TYPICLUST, shift), with_curve(r, "probcover", MARGIN, shift)]
    files = [(f"{r.config.strategy}_seed{r.config.seed}.json", r.model_dump_json().encode(), "application/json")
             for r in flipped]
    at = compare_with(files)
    said = " ".join(m.value for m in at.markdown).replace("\\", "")
    assert "margin never overtakes probcover within 40 labels (3 paired seeds)" in said


def test_the_mnist_preset_shows_margin_overtaking_typicality_on_compare():
    from alcore.sweep.presets import list_presets

    if "phase_transition_mnist" not in {p.key for p in list_presets()}:
        pytest.skip("the phase_transition_mnist preset has no result files in this copy")
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("app_pages/compare.py").run()
    at.selectbox(key="compare_preset").set_value("phase_transition_mnist").run()
    assert not at.exception, at.exception
    assert "40 run(s) loaded" in at.caption[1].value
    table = next(d.value for d in at.dataframe if "overtakes at" in d.value.columns)
    found = {(r["typicality"], r["uncertainty"]): r for _, r in table.iterrows()}
    assert set(found) == {("typiclust", "margin"), ("probcover", "margin")}
    for row in found.values():  # a transition inside the race, not at its ends
        assert 10 < row["overtakes at"] < row["race ends at"] == 300 and row["seeds"] == 10
        assert row["low"] <= row["overtakes at"] <= row["high"]
    early = next(d.value for d in at.dataframe if "win_fraction" in d.value.columns and "n_labeled" in d.value.columns)
    verdicts = {(r["group"], r["n_labeled"]): r["verdict"] for _, r in early.iterrows()}
    assert {k: v for k, v in verdicts.items() if k[0] != "margin"} == {
        ("typiclust", 10): "better", ("typiclust", 20): "better",
        ("probcover", 10): "better", ("probcover", 20): "better"}
