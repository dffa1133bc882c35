"""Replay of a labelling run (images without labels, a person labelling everything in the loop):
its file downloaded as a visitor downloads it, the zip this session's upload. The data rebuilt
as the run saw it (the audit set as the test split), the person's labels in the captions and
on the map (none where nobody gave one), rounds retrained on those labels, and forged files
refused by name (issue 16)."""
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from alcore import ExperimentConfig
from alcore.analysis.pitfalls import accuracy_interval
from alcore.data.images import load_images
from alcore.engine.labelling import LabellingRun, given_pool_labels, labelled_dataset
from alcore.results.records import load_result
from conftest import ROOT, session_upload
from test_images import COLOURS, blob, encode, make_zip
from test_labelling import label
from test_replay_page import charts, image_box, rerun, scores_table, shown, values

APP = str(ROOT / "app.py")
CLASSES = tuple(COLOURS)
NBSP = "\u00a0"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """(the zip's bytes, this session's uploads holding it, the run): 80 images without labels, an
    audit set of 50; round 0's first pick labelled wrong on purpose; round 2's batch still waiting."""
    members = {f"{c}{i:02d}.png": encode(blob(col, seed=i)) for c, col in COLOURS.items() for i in range(16)}
    path = make_zip(tmp_path_factory.mktemp("u") / "u.zip", members)
    data = open(path, "rb").read()
    uploads, kept = session_upload(data, "u.zip", ".zip")
    cfg = ExperimentConfig(dataset="images", data_file=kept, image_size=12, model="softmax", initial=6,
                           batch_size=4, rounds=3, seed=3)
    run = LabellingRun(cfg, load_images(kept, 12).raw, CLASSES, audit_size=50)
    while run.phase != "rounds":
        label(run)
    label(run, wrong=1)  # round 0's batch: its first image labelled as the next class
    label(run)
    assert run.phase == "rounds" and len(run.person.rounds) == 3 and len(run.batch) == 4  # round 2's waits
    return data, uploads, run


def downloaded(run) -> dict:
    from dashboard.uploads import download_json

    saved = json.loads(download_json(run.result()))
    assert saved["config"]["data_file"] == "u.zip"  # no server path in it
    return saved


def replay(uploads, saved: dict, **state):
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["uploads"] = uploads
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page("app_pages/replay.py").run()
    if saved is not None:
        at.file_uploader(key="replay_files").set_value([("lab.json", json.dumps(saved).encode(), "application/json")])
        at.run()
    assert not at.exception, at.exception
    return at


def captions_of(at, i) -> list[str]:
    return [shown(c) for c in at.image[i].captions]


def test_replay_opens_a_labelling_runs_downloaded_file(labelled, monkeypatch):
    import alcore.analysis.explain
    import dashboard.replay_session

    _, uploads, run = labelled
    res = run.result()
    person = given_pool_labels(res)
    retrained = []
    real = alcore.analysis.explain.recover_round_probs
    monkeypatch.setattr(dashboard.replay_session, "recover_round_probs",  # where the page calls it
                        lambda r, k, **kw: retrained.append(k) or real(r, k, **kw))
    at = replay(uploads, downloaded(run))
    assert not at.error and not at.warning, [e.value for e in at.error]
    assert at.selectbox(key="replay_run").options == ["margin (seed 3, a person labelled) [lab.json]"]
    assert at.slider(key="replay_round").max == 2

    # the test accuracy is the audit set's, with its Wilson interval
    acc = next(m for m in at.metric if m.label == "Accuracy on the audit set")
    assert acc.value == f"{res.rounds[0].test_accuracy:.2%}"
    lo, hi = accuracy_interval(res.rounds[0].test_accuracy, 50)
    assert any(f"95% Wilson interval {lo:.1%} to {hi:.1%}" in c.value and "audit set" in c.value for c in at.caption)

    # round 0's picks captioned with the person's labels, the wrong one included; the confident
    # images (the file has none) from the retrained round, labelled where the person labelled them
    picks, given = res.rounds[0].selected, res.rounds[0].given_labels
    truth = [CLASSES.index(run.dataset.pool_files[i].split("/")[-1][:3]) for i in picks]
    assert given[0] != truth[0] and given[1:] == truth[1:]
    caps = captions_of(at, 0)
    assert [c.split(":")[0] for c in caps] == [f"#{i}" for i in picks]
    assert all(c.endswith(f"labelled{NBSP}{CLASSES[g]}") for c, g in zip(caps, given)), caps
    assert not any("true" in c for k in range(3) for c in captions_of(at, k))
    for k in (1, 2):  # least, most confident: 8 each of the round's 24 candidates
        caps = captions_of(at, k)
        assert len(caps) == 8
        for c in caps:
            i = int(c.split(":")[0][1:])
            assert ("labelled" in c) == (person[i] >= 0) and (person[i] < 0 or c.endswith(CLASSES[person[i]]))
    assert retrained == [0]

    # why this image: round 0's model retrained on the person's labels reproduces the recorded picks
    assert image_box(at).value == picks[0]
    assert len(scores_table(at)) == 4
    assert at.image[3].captions == [f"#{picks[0]}: labelled {CLASSES[given[0]]}"]
    bars = charts(at)[f"Round 0's model on image #{picks[0]}"]
    assert any("labelled" in t for t in bars["data"][0]["text"]) and not any("true" in t for t in bars["data"][0]["text"])

    # the map: colours only where a label is known, the rest grey "no label"
    pool = charts(at)["Round 0: all 30 pool images"]
    grey = next(t for t in pool["data"] if t["name"] == "no label")
    assert sorted(values(grey["customdata"])) == sorted(
        i for i in range(30) if person[i] < 0 and i not in set(res.initial_indices) | set(picks))
    star = next(t for t in pool["data"] if t["name"].startswith("picked this round"))
    assert dict(zip(values(star["customdata"]), star["text"])) == {
        i: f"labelled {CLASSES[g]}, picked this round" for i, g in zip(picks, given)}
    assert any("the label the person gave" in c.value for c in at.caption)

    # round 2: its batch is still waiting for the person, so its picks have no label yet
    at = rerun(at.slider(key="replay_round").set_value(2))
    assert not at.error and not at.warning
    caps = captions_of(at, 0)
    assert [c.split(":")[0] for c in caps] == [f"#{i}" for i in res.rounds[2].selected]
    assert not any("labelled" in c for c in caps)
    assert any("still waiting for the person's labels" in c.value for c in at.caption)
    assert at.image[3].captions == [f"#{res.rounds[2].selected[0]}: no label given (nobody labelled this image)"]
    assert retrained == [0, 2]
    assert len(scores_table(at)) == 4


@pytest.mark.parametrize("forge, says", [
    (lambda f: f.update(audit_indices=[f["audit_indices"][0] + 1 if f["audit_indices"][0] + 1 not in f["audit_indices"]
                                       else 79, *f["audit_indices"][1:]]),
     "audit_indices are not the audit set the run's seed draws from these images"),
    (lambda f: f.update(images_sha256="0" * 64), "the fingerprint of their pixels differs"),
])
def test_a_forged_labelling_file_is_refused_by_name(labelled, forge, says):
    _, uploads, run = labelled
    saved = downloaded(run)
    forge(saved)
    saved["audit_indices"] = sorted(saved["audit_indices"])
    load_result(json.dumps(saved).encode(), "lab.json")  # a well-formed file: only the images say it is forged
    at = replay(uploads, saved)
    errors = [shown(e.value) for e in at.error]
    assert len(errors) == 1 and "This file's images cannot be shown" in errors[0] and says in errors[0], errors
    assert not at.image and not any(d for d in at.dataframe if "measure" in d.value.columns)
    assert any("dataset is needed to retrain" in i.value for i in at.info)


def test_a_file_of_another_zip_asks_for_that_zip_and_refuses_this_one(labelled):
    data, uploads, run = labelled
    saved = downloaded(run)
    saved["dataset"]["file_sha256"] = "ab" * 32
    at = replay(uploads, saved)
    assert any("which this session has not uploaded" in shown(i.value) and "abababababab" in i.value for i in at.info)
    assert not at.image
    at = rerun(at.file_uploader(key="replay_data").set_value(("u.zip", data, "application/zip")))
    assert any("u.zip is not the file that was asked for: its SHA-256 differs" in shown(e.value) for e in at.error)
    assert not at.image


def test_replay_offers_this_sessions_labelling_run(labelled):
    _, uploads, run = labelled
    at = replay(uploads, None, labelling_run=run)
    assert at.radio(key="replay_source").options == ["Your runs on Be the oracle", "Result files"]
    assert at.selectbox(key="replay_run").options == ["margin (seed 3, a person labelled) on your images without labels"]
    assert not at.error and any(m.label == "Accuracy on the audit set" for m in at.metric)
    given = run.person.rounds[0].given_labels
    assert [c.split(", ")[-1] for c in captions_of(at, 0)] == [f"labelled{NBSP}{CLASSES[g]}" for g in given]
    assert len(scores_table(at)) == 4


def test_a_labelling_runs_round_is_retrained_on_the_persons_labels(labelled):
    """recover_round_probs gives the run's initial labels (kept apart from the rounds'): without
    them it trained on the pool's -1 and failed."""
    from alcore.analysis.explain import record_mismatches, recover_round_probs

    _, _, run = labelled
    res = load_result(json.dumps(downloaded(run)).encode(), "lab.json")
    ds = labelled_dataset(res, run.raw)
    assert (ds.y_test == np.asarray(res.audit_labels)).all() and (ds.y_pool == -1).all()
    for r in range(3):
        found = recover_round_probs(res, r, dataset=ds)
        assert not record_mismatches(found, res.rounds[r])
        assert len(found.candidates) == 30 - res.rounds[r].n_labeled


def test_figures_never_name_a_class_for_an_unknown_label():
    """-1 is no label: indexing class names with it named the last class ('emu')."""
    import pandas as pd

    from alcore.figures import (GalleryImage, gallery_caption, gallery_details, pool_map_figure,
                                probability_bars_figure)

    assert gallery_caption(3, CLASSES, 1, -1, 0.5) == f"#3: bee{NBSP}(50%)"
    assert gallery_caption(3, CLASSES, 1, -1, 0.5, given=True) == f"#3: bee{NBSP}(50%)"
    assert gallery_caption(3, CLASSES, 1, 1, 0.5, given=True) == f"#3: bee{NBSP}(50%), labelled{NBSP}bee"
    assert gallery_caption(3, CLASSES, 1, 1, 0.5) == f"#3: bee{NBSP}(50%)"  # the truth only where wrong
    table = gallery_details({"picked": [GalleryImage(3, 1, -1), GalleryImage(4, 1, 2)]}, CLASSES, given=True)
    assert table["label given"].isna().tolist() == [True, False] and table["label given"][1] == "cat"
    assert table["agrees"].tolist() == [None, False]
    bars = probability_bars_figure([0.1, 0.6, 0.1, 0.1, 0.1], CLASSES, -1)
    assert list(bars.data[0].customdata) == ["", "predicted", "", "", ""]
    frame = pd.DataFrame({"index": [0, 1, 2], "x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 2.0],
                          "status": ["unlabeled", "labeled", "picked"], "label": [-1, 4, -1]})
    fig = pool_map_figure(frame, CLASSES, given=True)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["no label"].customdata) == [0] and by_name["no label"].marker.color == "#9e9e9e"
    assert list(by_name["picked this round (1)"].text) == ["no label, picked this round"]
    assert list(by_name["labeled before this round (1)"].text) == ["labelled emu, labeled before this round"]
    assert "no label" not in {t.name for t in pool_map_figure(frame.assign(label=[0, 1, 2]), CLASSES).data}


def test_replay_offers_a_run_beside_the_simulated_oracle_too(digits, cache):
    """Be the oracle on a labelled dataset: the person's labels train it, the dataset's are the truth."""
    from alcore.engine.oracle import BatchAnswers, OracleRun

    run = OracleRun(ExperimentConfig(model="softmax", rounds=2, seed=0), dataset=digits, cache=cache)
    run.start()
    answers = BatchAnswers(run.batch, 0.0)
    for pos, i in enumerate(run.batch):
        answers.answer(pos, (int(digits.y_pool[i]) + (pos == 0)) % 10, 1.0)  # the first one wrong
    run.submit(answers)
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["oracle_run"] = run
    at.run()
    at.switch_page("app_pages/replay.py").run()
    assert not at.exception, at.exception
    assert at.radio(key="replay_source").options == ["Your runs on Be the oracle", "Result files"]
    assert at.selectbox(key="replay_run").options == ["margin (seed 0, a person labelled)"]
    assert any(m.label == "Test accuracy" for m in at.metric)  # the dataset's test split, not an audit set
    at = rerun(at.slider(key="replay_round").set_value(1))
    assert len(scores_table(at)) == 4 and not at.error and not at.warning  # round 1 trained on the person's labels
