"""AppTest of the Replay page with the real engine on tiny digits runs."""
import base64
import json
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from alcore import ExperimentConfig
from conftest import ROOT

APP = str(ROOT / "app.py")
TINY = ExperimentConfig(rounds=2, max_epochs=10)


def app(**state):
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["config"] = TINY
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page("app_pages/replay.py").run()
    assert not at.exception, at.exception
    return at


def rerun(element):
    at = element.run()
    assert not at.exception, at.exception
    return at


def image_box(at):
    return next(s for s in at.selectbox if s.label.startswith("Image"))


def shown(markdown: str) -> str:
    """What a reader sees of text escaped by dashboard.display.plain."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def values(data) -> list:
    """A Plotly array as the browser gets it (plain list, or base64 typed array) as a list."""
    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)


def listed(box) -> list[int]:
    """The pool indices a selectbox of images offers ("#12 (picked, ...)")."""
    return [int(o.split(" ")[0][1:]) for o in box.options]


def charts(at) -> dict:
    """The page's Plotly figures by title."""
    out = {}
    for c in at.get("plotly_chart"):
        spec = json.loads(c.proto.spec)
        out[spec["layout"]["title"]["text"]] = spec
    return out


def scores_table(at):
    return next(d.value for d in at.dataframe if "measure" in d.value.columns)


@pytest.fixture(scope="module")
def finished_race(digits, cache):
    """margin against random on seed 0, two acquisition rounds (three evaluations)."""
    from alcore.engine.race import Race

    race = Race(TINY, ["margin", "random"], [0], dataset_for=lambda cfg: digits, cache=cache)
    while race.step() is not None:
        pass
    return race


def test_replay_a_race_from_the_run_page(monkeypatch):
    import alcore.analysis.explain
    import dashboard.replay_session

    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["config"] = TINY
    at.run()
    at.switch_page("app_pages/run.py").run()
    at.button(key="start").click().run()
    while at.session_state["running"] if "running" in at.session_state else False:
        at.run()
    race = at.session_state["race"]
    assert race.done
    retrained = []
    real = alcore.analysis.explain.recover_round_probs
    # where the page calls it (an earlier test in the process may have imported the module already)
    monkeypatch.setattr(dashboard.replay_session, "recover_round_probs",
                        lambda res, r, **kw: retrained.append((res.config.strategy, r)) or real(res, r, **kw))
    at.switch_page("app_pages/replay.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Replay"
    assert [s.value for s in at.subheader] == ["Why this image?", "The pool in 2-D",
                                               "Do the strategies pick the same images?"]
    margin = race.experiments[0]
    assert at.selectbox(key="replay_run").value == 0 and at.slider(key="replay_round").value == 0

    # round 0: the batch, large, then the two galleries
    assert len(at.image[0].value) == TINY.batch_size and all(c.startswith("#") for c in at.image[0].captions)
    assert [c.split(":")[0] for c in at.image[0].captions] == [f"#{i}" for i in margin.rounds[0].selected]
    picks = margin.rounds[0].selected
    assert listed(image_box(at))[:len(picks)] == picks and image_box(at).value == picks[0]
    table = scores_table(at)
    assert table["measure"].tolist() == ["least confidence", "margin", "ratio", "entropy"]
    row = table.set_index("measure").loc["margin"]
    # margin picked it first: it ranks first among the candidates under margin, its own measure
    assert row["rank"] == 1 and row["strategy"] and row["candidates"] == margin.rounds[0].pool.n_scored
    assert row["score"] == pytest.approx(margin.rounds[0].selected_scores[0], abs=1e-6)
    figs = charts(at)
    assert f"Round 0's model on image #{picks[0]}" in figs  # the probability bars
    pool = figs["Round 0: all 1,438 pool images"]
    picked = next(t for t in pool["data"] if t["name"].startswith("picked this round"))
    assert sorted(values(picked["customdata"])) == sorted(picks) and picked["marker"]["symbol"] == "star"
    labeled = next(t for t in pool["data"] if t["name"].startswith("labeled before"))
    assert sorted(values(labeled["customdata"])) == sorted(margin.initial_indices)
    overlap = next(v for k, v in figs.items() if k.startswith("Overlap of the picks"))
    assert [x.split(" (seed")[0] for x in overlap["data"][0]["x"]] == ["margin", "random"]
    assert retrained == [("margin", 0)]

    # scrub to round 1 and choose another picked image
    at = rerun(at.slider(key="replay_round").set_value(1))
    picks1 = margin.rounds[1].selected
    assert [c.split(":")[0] for c in at.image[0].captions] == [f"#{i}" for i in picks1]
    at = rerun(image_box(at).set_value(picks1[3]))
    table = scores_table(at).set_index("measure")
    assert table.loc["margin", "rank"] <= TINY.batch_size and table.loc["margin", "in_batch"]
    figs = charts(at)
    assert f"Round 1's model on image #{picks1[3]}" in figs
    pool = figs["Round 1: all 1,438 pool images"]
    picked = next(t for t in pool["data"] if t["name"].startswith("picked this round"))
    assert sorted(values(picked["customdata"])) == sorted(picks1)
    ring = next(t for t in pool["data"] if t["name"].endswith("(explained)"))
    assert values(ring["customdata"]) == [picks1[3]]

    # scrubbing back is instant: round 0's model is not trained again
    at = rerun(at.slider(key="replay_round").set_value(0))
    assert scores_table(at).set_index("measure").loc["margin", "rank"] == 1
    assert retrained == [("margin", 0), ("margin", 1)]

    # the last round picks nothing; its galleries can still be explained
    at = rerun(at.slider(key="replay_round").set_value(2))
    assert any("This round picks nothing" in c.value for c in at.caption)
    assert image_box(at).value == margin.rounds[2].least_confident[0].index
    assert "least confident" in image_box(at).options[image_box(at).index]
    assert len(scores_table(at)) == 4

    # the other run, and the overlap of all picks so far
    at = rerun(at.selectbox(key="replay_run").set_value(1))
    assert any("does not pick by these scores" in c.value for c in at.caption)  # random
    at = rerun(at.toggle(key="replay_cumulative").set_value(True))
    overlap = next(v for k, v in charts(at).items() if k.startswith("Overlap of the picks"))
    assert "rounds 0-2" in overlap["layout"]["title"]["text"]


def test_a_point_clicked_on_the_map_is_explained(finished_race):
    margin = finished_race.experiments[0]
    labeled = margin.initial_indices[0]
    unlabeled = next(i for i in range(1438) if i not in set(margin.initial_indices) | set(margin.rounds[0].selected))
    at = app(race=finished_race, replay_clicked=(0, 0, unlabeled))
    assert image_box(at).options[0] == f"#{unlabeled} (clicked on the map)"
    at = rerun(image_box(at).set_value(unlabeled))
    assert scores_table(at)["candidates"].tolist() == [1428] * 4
    at.session_state["replay_clicked"] = (0, 0, int(labeled))
    at = rerun(at)
    at = rerun(image_box(at).set_value(int(labeled)))
    assert any(f"Image #{labeled} was labeled before round 0" in shown(i.value) for i in at.info)


def test_replay_an_uploaded_race_and_refuse_a_broken_file(finished_race):
    files = [(f"{r.config.strategy}.json", r.model_dump_json().encode(), "application/json")
             for r in finished_race.results()]
    at = app()
    assert at.radio(key="replay_source").options == ["Result files"]  # no race in this session
    assert any("No runs to replay yet" in i.value for i in at.info)
    at = rerun(at.file_uploader(key="replay_files").set_value(files + [("broken.json", b"{", "application/json")]))
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "broken.json" in shown(errors[0]) and "not valid JSON" in shown(errors[0])
    assert at.selectbox(key="replay_run").options == ["margin (seed 0) [margin.json]", "random (seed 0) [random.json]"]
    at = rerun(at.slider(key="replay_round").set_value(1))
    margin = finished_race.experiments[0]
    picks = margin.rounds[1].selected
    at = rerun(image_box(at).set_value(picks[1]))
    assert scores_table(at).set_index("measure").loc["margin", "rank"] <= TINY.batch_size
    figs = charts(at)
    assert "Round 1: all 1,438 pool images" in figs and f"Round 1's model on image #{picks[1]}" in figs
    assert any(k.startswith("Overlap of the picks") for k in figs)
    assert not at.warning  # the retrained model agrees with the run's record

    future = json.dumps({"schema_version": 99}).encode()
    at = rerun(at.file_uploader(key="replay_files").set_value([("broken.json", future, "application/json")]))
    assert any("broken.json" in shown(e.value) and "unknown schema_version 99" in shown(e.value) for e in at.error)
    assert any("No runs to replay yet" in i.value for i in at.info)


def test_the_map_of_a_run_on_an_embedding_places_the_embedding(digits, cache, monkeypatch, tmp_path):
    """A race on the self-supervised embedding, replayed from its files: the map says it places the
    embedding (read from the cache, not trained again) and its points are not the pixels' PCA."""
    from alcore.engine import simclr
    from alcore.engine.embeddings import EmbeddingCache
    from alcore.engine.race import Race

    monkeypatch.setenv("ALCORE_CACHE_DIR", str(tmp_path))
    cfg = TINY.replace(embedding="self_supervised", encoder_steps=10, embedding_dim=16)
    race = Race(cfg, ["margin"], [0], dataset_for=lambda c: digits, cache=cache, embeddings=EmbeddingCache())
    while race.step() is not None:
        pass
    files = [("ssl.json", race.results()[0].model_dump_json().encode(), "application/json")]

    def no_training(*args, **kwargs):
        raise AssertionError("the encoder was trained again")

    monkeypatch.setattr(simclr, "train_encoder", no_training)
    at = app()
    at = rerun(at.file_uploader(key="replay_files").set_value(files))
    assert any("map of the pool's self_supervised embedding" in c.value for c in at.caption), \
        [c.value for c in at.caption]
    on_map = charts(at)["Round 0: all 1,438 pool images"]
    xs = [x for trace in on_map["data"] for x in values(trace["x"])]
    pixel_race = Race(TINY, ["margin"], [0], dataset_for=lambda c: digits, cache=cache)
    pixel_race.step()
    at2 = app()
    at2 = rerun(at2.file_uploader(key="replay_files").set_value(
        [("px.json", pixel_race.results()[0].model_dump_json().encode(), "application/json")]))
    assert any("map of the pool's pixels" in c.value for c in at2.caption)
    xs_pixels = [x for trace in charts(at2)["Round 0: all 1,438 pool images"]["data"] for x in values(trace["x"])]
    assert sorted(xs) != pytest.approx(sorted(xs_pixels), abs=1e-3)


def test_what_cannot_be_replayed_says_why(finished_race, digits, cache, monkeypatch):
    from alcore.engine.loop import Experiment

    warm = Experiment(TINY.replace(warm_start=True), dataset=digits, cache=cache)
    for _ in warm.run():
        pass
    elsewhere = finished_race.results()[0].model_copy(
        update={"config": TINY.replace(dataset="npz", data_file="/srv/data/mine.npz")})
    files = [("warm.json", warm.result().model_dump_json().encode(), "application/json"),
             ("elsewhere.json", elsewhere.model_dump_json().encode(), "application/json")]
    at = rerun(app().file_uploader(key="replay_files").set_value(files))
    assert any("margin (seed 0) is a warm-start run" in shown(i.value) and "cannot be rebuilt" in shown(i.value)
               for i in at.info)
    assert not any(d for d in at.dataframe if "measure" in d.value.columns)
    assert len(at.image[0].value) == TINY.batch_size  # its batch and map are still shown
    at = rerun(at.selectbox(key="replay_run").set_value(1))
    assert any("which the dashboard does not read" in shown(i.value) for i in at.info)  # the path is ignored
    assert any("dataset is needed to retrain" in i.value for i in at.info)
    assert not at.image and at.metric  # nothing to draw images from; the round's numbers are shown

    # a server capped at 15 labels per run retrains round 0 (10 labels) but not round 1 (20)
    monkeypatch.setenv("ALCORE_MAX_LABELS", "15")
    at = app(race=finished_race)
    assert len(scores_table(at)) == 4
    at = rerun(at.slider(key="replay_round").set_value(1))
    assert any("Retraining round 1's model on 20 labels is over this server's limit of 15 labels per run"
               in shown(e.value) for e in at.error)
    assert not any(d for d in at.dataframe if "measure" in d.value.columns)


@pytest.fixture
def fresh_run_slots():
    """The process-wide run-slot table, emptied before and after (AppTests share the process)."""
    from dashboard.limits import _run_slots

    _run_slots.clear()
    yield
    _run_slots.clear()


def test_a_tsne_map_waits_for_a_run_slot_and_keeps_every_pick(finished_race, monkeypatch, fresh_run_slots):
    from dashboard.limits import run_slots

    monkeypatch.setenv("ALCORE_MAX_CONCURRENT_RUNS", "1")
    at = app(race=finished_race)
    assert charts(at)["Round 0: all 1,438 pool images"]["layout"]["xaxis"]["title"]["text"] == "PC 1"
    assert run_slots().try_acquire("another visitor's session")
    at = rerun(at.radio(key="replay_map_method").set_value("tsne"))
    assert any(e.value == "1 run is in progress on this server (the limit is 1); try again in a minute."
               for e in at.error)
    assert not any(title.startswith("Round 0:") for title in charts(at))  # no map until a slot is free
    run_slots().release("another visitor's session")
    at = rerun(at)
    pool = charts(at)["Round 0: all 1,438 pool images"]
    assert pool["layout"]["xaxis"]["title"]["text"] == "t-SNE 1"
    picked = next(t for t in pool["data"] if t["name"].startswith("picked this round"))
    assert sorted(values(picked["customdata"])) == sorted(finished_race.experiments[0].rounds[0].selected)
    assert run_slots().in_use() == 0


def test_uploads_and_the_race_take_turns_without_losing_either(finished_race):
    """Issue 18: after replaying uploaded files, back on the race, the Round slider crashed
    (the run box kept a file's name); the uploads were thrown away on the way."""
    files = [(f"{r.config.strategy}.json", r.model_dump_json().encode(), "application/json")
             for r in finished_race.results()]
    at = app(race=finished_race)
    at = rerun(at.radio(key="replay_source").set_value("files"))
    at = rerun(at.file_uploader(key="replay_files").set_value(files))
    at = rerun(at.selectbox(key="replay_run").set_value(1))
    at = rerun(at.slider(key="replay_round").set_value(2))
    assert any("This round picks nothing" in c.value for c in at.caption)
    # back on the race, the browser still sends the file's name it showed in the run box, and
    # Streamlit gives it back as is where it is none of the options
    at.session_state["replay_run"] = "random (seed 0) [random.json]"
    at = rerun(at.radio(key="replay_source").set_value("race"))
    assert at.selectbox(key="replay_run").options == ["margin (seed 0)", "random (seed 0)"]
    at = rerun(at.slider(key="replay_round").set_value(1))
    assert at.slider(key="replay_round").value == 1
    assert [c.split(":")[0] for c in at.image[0].captions] == [
        f"#{i}" for i in finished_race.experiments[at.selectbox(key="replay_run").index].rounds[1].selected]
    at = rerun(at.radio(key="replay_source").set_value("files"))
    assert at.selectbox(key="replay_run").options == ["margin (seed 0) [margin.json]", "random (seed 0) [random.json]"]
    assert not any("No runs to replay yet" in i.value for i in at.info)


def test_a_stale_run_name_from_the_browser_is_not_compared_with_a_number(finished_race):
    """Issue 18: the browser sends back the file name its run box showed; Streamlit hands it to
    the page as a string where it is none of the options ('>=' between str and int)."""
    at = app(race=finished_race, replay_run="random (seed 0) [random.json]", replay_round="7")
    assert at.selectbox(key="replay_run").value == 0 and at.slider(key="replay_round").value == 0
    at = rerun(at.slider(key="replay_round").set_value(1))
    assert at.slider(key="replay_round").value == 1


def test_a_probcover_round_says_the_radius_it_covered_with(digits, cache):
    from alcore.engine.race import Race

    race = Race(TINY.replace(probcover_radius=0.35), ["probcover"], [0], dataset_for=lambda cfg: digits,
                cache=cache)
    race.step()
    at = app(race=race)
    caption = next(shown(c.value) for c in at.caption if "radius" in c.value)
    assert "balls of radius **0.35**, as set (probcover_radius)" in caption


def test_a_uherding_round_says_the_temperature_it_scaled_by(digits, cache):
    from alcore.engine.race import Race

    race = Race(TINY.replace(uherding_temperature=2.5), ["uherding"], [0], dataset_for=lambda cfg: digits,
                cache=cache)
    race.step()
    at = app(race=race)
    caption = next(shown(c.value) for c in at.caption if "temperature" in c.value)
    assert "temperature **2.5**, as set (uherding_temperature)" in caption
