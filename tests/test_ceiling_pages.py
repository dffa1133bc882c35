"""AppTest of the oracle ceiling on the pages: turned on on Strategy, drawn on Run, and on Compare
drawn from uploaded result files with the share of its gain each strategy captures."""
import json

from streamlit.testing.v1 import AppTest

from alcore import ExperimentConfig
from alcore.results.records import CEILING
from conftest import ROOT

APP = str(ROOT / "app.py")
TINY = ExperimentConfig(rounds=3)


def app(page, **state):
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["config"] = TINY
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def traces(at, i=0) -> list[dict]:
    return json.loads(at.get("plotly_chart")[i].proto.spec)["data"]


def test_strategy_page_turns_the_ceiling_on_and_names_a_bad_candidate_count():
    at = app("strategy")
    assert not at.session_state["race_settings"].get("ceiling", False)
    at.toggle(key="w_ceiling").set_value(True).run()
    assert at.session_state["race_settings"]["ceiling"] is True
    at.number_input(key="w_ceiling_candidates").set_value(1).run()  # below the 2 strategies raced
    assert any("Ceiling candidates" in e.value and "below the 2 strategies raced" in e.value for e in at.error)
    assert at.session_state["race_settings"].get("ceiling_candidates") is None  # not kept
    at.number_input(key="w_ceiling_candidates").set_value(3).run()
    assert at.session_state["race_settings"]["ceiling_candidates"] == 3 and not at.error


def test_run_page_draws_the_oracle_ceiling_beside_the_race():
    at = app("run", race_settings={"strategies": ["margin", "random"], "seeds": 1, "ceiling": True,
                                   "ceiling_validation": 100})
    assert "oracle ceiling" in at.markdown[0].value
    at.button(key="start").click().run()
    while at.session_state["running"]:
        at.run(timeout=300)
    assert not at.exception, at.exception
    race = at.session_state["race"]
    assert race.done and [len(e.rounds) for e in race.runs] == [4, 4, 4]
    ceiling = [t for t in traces(at) if t["name"].startswith(CEILING)]
    assert len(ceiling) == 1 and ceiling[0]["line"]["dash"] == "longdash"
    last = next(d for d in at.dataframe if "run" in d.value.columns)
    assert f"{CEILING} (seed 0)" in last.value["run"].tolist()


def test_compare_page_draws_uploaded_ceilings_and_the_share_of_gain():
    from alcore.engine.race import Race

    race = Race(TINY, ["random", "margin"], [0, 1], ceiling=True, ceiling_validation=100)
    while not race.done:
        race.step()
    files = [(f"run{i}.json", r.model_dump_json().encode(), "application/json")
             for i, r in enumerate(race.results() + race.ceiling_results())]
    at = app("compare")
    at.file_uploader(key="compare_files").set_value(files).run()
    assert not at.exception, at.exception
    assert "4 run(s) loaded" in at.caption[0].value  # the strategies' runs; the ceilings are drawn apart
    assert any(t["name"].startswith(CEILING) for t in traces(at))
    assert "Share of the oracle's gain over random captured" in [s.value for s in at.subheader]
    share = next(d for d in at.dataframe if "share_mean" in d.value.columns)
    assert share.value["group"].tolist() == ["margin"]
    metrics = next(d for d in at.dataframe if "aulc_mean" in d.value.columns)
    assert CEILING not in " ".join(metrics.value["group"])  # never a contender in the statistics


def test_results_page_offers_the_ceilings_result_files():
    from alcore.engine.race import Race
    from alcore.results.records import load_result

    race = Race(TINY, ["random", "margin"], [0], ceiling=True, ceiling_validation=100)
    while not race.done:
        race.step()
    at = app("results", race=race, running=False)
    labels = [b.proto.label for b in at.get("download_button")]
    assert f"Download {CEILING} (seed 0) result file (JSON)" in labels
    assert sum("result file" in label for label in labels) == 3  # random, margin and the ceiling
    assert load_result(race.ceiling_results()[0].model_dump_json().encode()).ceiling is not None


def finished_race(seeds=(0,)):
    from alcore.engine.race import Race

    race = Race(TINY, ["random", "margin"], list(seeds), ceiling=True, ceiling_validation=100)
    while not race.done:
        race.step()
    return race


def candidate_table(at):
    return next(d for d in at.dataframe if "proposer" in d.value.columns).value


def test_results_inspects_the_ceiling_like_a_run_and_keeps_it_out_of_the_metrics():
    """The ceiling was only a download on Results: now it is a run to inspect, with each round's
    candidate batches, and never a row of the metrics (a reference, not a strategy)."""
    from alcore.figures import CEILING_COLOR

    race = finished_race()
    at = app("results", race=race, running=False)
    box = at.selectbox[0]
    assert box.options == ["random (seed 0)", "margin (seed 0)", f"{CEILING} (seed 0)"]
    runs = next(d for d in at.dataframe if "final_accuracy" in d.value.columns).value
    assert len(runs) == 2 and CEILING not in " ".join(map(str, runs.to_numpy().ravel()))
    assert any(c.value.startswith(f"The {CEILING} is not in the metrics") for c in at.caption)
    assert not [d for d in at.dataframe if "proposer" in d.value.columns]  # a strategy's run: no candidates

    at = box.select_index(2).run()
    assert not at.exception, at.exception
    at = at.slider[0].set_value(1).run()  # a round that picked (the last one picks nothing)
    record = race.ceilings[0].rounds[1].ceiling
    table = candidate_table(at)
    assert table["proposer"].tolist() == record.proposers == ["random", "margin", "random 1", "random 2"]
    assert table["validation_accuracy"].tolist() == record.validation_accuracy
    assert table["validation_loss"].tolist() == record.validation_loss
    assert table["kept"].tolist() == [i == record.chosen for i in range(4)]
    heading = next(m.value for m in at.markdown if m.value.startswith("**The batch"))
    assert heading.startswith(f"**The batch the {CEILING} kept after this round** (10 images; candidate "
                              f"{record.chosen + 1} of 4, proposed by {record.proposers[record.chosen]}")
    balance = json.loads(next(c for c in at.get("plotly_chart")
                              if "Labels per class" in c.proto.spec).proto.spec)["data"]
    assert [t["marker"]["color"] for t in balance if t["name"].startswith(CEILING)] == [CEILING_COLOR]
    at = at.slider[0].set_value(3).run()  # TINY: rounds 0 to 3
    assert not [d for d in at.dataframe if "proposer" in d.value.columns]  # the last round tried none
    assert any("picks nothing" in c.value for c in at.caption)


def test_replay_offers_the_ceiling_of_the_race_and_of_uploaded_files_with_its_candidates():
    """Replay left the race's ceiling out, and an uploaded ceiling's batch was 'the batch random
    picked', its scores 'random's measure'."""
    race = finished_race()
    record = race.ceilings[0].rounds[0].ceiling
    at = app("replay", race=race, running=False)
    box = at.selectbox(key="replay_run")
    assert box.options == ["random (seed 0)", "margin (seed 0)", f"{CEILING} (seed 0)"]
    at = box.set_value(2).run()
    assert not at.exception, at.exception
    at = at.slider(key="replay_round").set_value(0).run()
    assert candidate_table(at)["proposer"].tolist() == record.proposers
    assert any(m.value.startswith(f"**The batch the {CEILING} kept in round 0**") for m in at.markdown)
    assert any(c.value.startswith(f"The {CEILING} does not pick by these scores") for c in at.caption)
    assert any(c.value.startswith(f"The {CEILING}'s 100 validation images are drawn as unlabeled") for c in at.caption)
    assert not any("random picked" in m.value for m in at.markdown)

    files = [(f"run{i}.json", r.model_dump_json().encode(), "application/json")
             for i, r in enumerate(race.results() + race.ceiling_results())]
    at.radio(key="replay_source").set_value("files").run()
    at = at.file_uploader(key="replay_files").set_value(files).run()
    box = at.selectbox(key="replay_run")
    assert box.options[2] == f"{CEILING} (seed 0) [run2.json]"
    at = box.set_value(2).run()
    at = at.slider(key="replay_round").set_value(0).run()
    assert not at.exception, at.exception
    table = candidate_table(at)
    assert table["kept"].tolist() == [i == record.chosen for i in range(len(record.proposers))]
    assert any(m.value.startswith(f"**The batch the {CEILING} kept in round 0**") for m in at.markdown)
