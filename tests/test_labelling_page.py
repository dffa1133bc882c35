"""AppTest of Be the oracle on an upload without labels (dashboard.labelling): the classes are
named and checked, the audit set is labelled first and counted in the sidebar, keys label the
first open image, the audit accuracy shows its Wilson interval, and the file continues."""
import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from alcore import ExperimentConfig
from alcore.engine.oracle import BatchAnswers
from conftest import ROOT, session_upload
from test_images import COLOURS, blob, encode, make_zip
from test_labelling import truth_of

APP = str(ROOT / "app.py")


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    members = {f"{c}{i:02d}.png": encode(blob(col, seed=i)) for c, col in COLOURS.items() for i in range(16)}
    path = make_zip(tmp_path_factory.mktemp("u") / "u.zip", members)
    global UPLOADS
    UPLOADS, path = session_upload(open(path, "rb").read(), "u.zip", ".zip")  # where the Dataset page keeps it
    return ExperimentConfig(dataset="images", data_file=path, image_size=12, model="softmax", initial=6,
                            batch_size=10, rounds=2, seed=3)


UPLOADS = None  # the uploads of the sessions below (one folder: the test's "same visitor")


def page(cfg):
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["config"] = cfg
    at.session_state["uploads"] = UPLOADS
    at.run()
    at.switch_page("app_pages/oracle.py").run()
    assert not at.exception, at.exception
    return at


def answer_directly(run):
    """The waiting batch answered truthfully without the page (the audit set is 50 clicks)."""
    files = run.dataset.test_files if run.phase == "audit" else run.dataset.pool_files
    answers = BatchAnswers(run.batch, 0.0)
    for pos, c in enumerate(truth_of([files[i] for i in run.batch])):
        answers.answer(pos, c, 1.0)
    run.submit(answers)


def test_images_without_labels_are_labelled_on_be_the_oracle(cfg):
    at = page(cfg)
    assert any("you are the oracle for all of them" in m.value for m in at.markdown)
    assert at.button(key="labelling_start").disabled  # no classes named yet
    at.text_input(key="labelling_classes").input("ant, ant").run()
    assert any("named twice" in e.value for e in at.error)
    at.text_input(key="labelling_classes").input(", ".join(COLOURS))
    assert at.number_input(key="labelling_audit").value == 64  # 80 images less 6 initial and a batch of 10
    at.number_input(key="labelling_audit").set_value(50).run()
    at.button(key="labelling_start").click().run()
    assert not at.exception, at.exception
    run = at.session_state["labelling_run"]
    assert run.phase == "audit" and run.n_audit == 50
    assert any("Audit set: images 1-10 of 50" in s.value for s in at.subheader)
    # keys 1-5 label the first open image, in order; the submit button retrains nothing yet
    truth = truth_of([run.dataset.test_files[i] for i in run.batch])
    keys = {b.key: b for b in at.button if re.fullmatch(r"labelling_key_.*", b.key or "")}
    assert [(b.label, b.proto.shortcut) for b in keys.values()] == list(zip(COLOURS, "12345"))
    for c in truth:
        next(b for b in at.button if (b.key or "").startswith("labelling_key_") and b.key.endswith(f"_{c}")).click().run()
    assert at.session_state["oracle_answers"].labels == truth
    assert at.button(key="labelling_submit_button").label == "Submit labels"
    at.button(key="labelling_submit_button").click().run()
    assert not at.exception, at.exception
    assert len(run.audit_labels) == 10 and any("10 of 50 audit labels" in c.value for c in at.sidebar.caption)
    while run.phase == "audit":
        answer_directly(run)
    at.run()
    assert at.button(key="labelling_submit_button").label == "Submit labels and retrain"  # 6 initial images
    for pos, c in enumerate(truth_of([run.dataset.pool_files[i] for i in run.batch])):
        at.button(key=next(b.key for b in at.button if re.fullmatch(rf"labelling_label_.*_{pos}_{c}", b.key or ""))) \
            .click().run()
    at.button(key="labelling_submit_button").click().run()
    assert not at.exception, at.exception
    assert run.phase == "rounds" and any("Batch 1" in s.value for s in at.subheader)
    assert any(m.label == "Accuracy on the audit set" for m in at.metric)
    assert any("95% Wilson interval" in c.value for c in at.caption)
    assert {"labelling_download", "labelling_labels_csv", "labelling_labels_zip"} <= \
        {b.key for b in at.get("download_button")}

    # the result file continues in a new session, the same batch waiting, on this server's copy of the zip
    saved = json.loads(run.result().model_dump_json())
    saved["config"]["data_file"] = "/another/server/u.zip"
    data = json.dumps(saved).encode()
    other = page(cfg)
    other.file_uploader(key="labelling_file").set_value(("mine.json", data, "application/json")).run()
    other.button(key="labelling_reopen").click().run()
    assert not other.exception, other.exception
    back = other.session_state["labelling_run"]
    assert back.batch.tolist() == run.batch.tolist() and back.phase == "rounds"
    assert back.config.data_file == cfg.data_file and not other.warning


def test_the_servers_pool_limit_holds_for_an_upload_without_labels(cfg, monkeypatch):
    monkeypatch.setenv("ALCORE_MAX_POOL_SIZE", "20")
    at = page(cfg)
    at.text_input(key="labelling_classes").input(", ".join(COLOURS))
    at.number_input(key="labelling_audit").set_value(50).run()
    at.button(key="labelling_start").click().run()
    assert not at.exception, at.exception
    assert any("leaves 30 images to pick from" in e.value and "at most 20 pool images" in e.value for e in at.error)
    assert "labelling_run" not in at.session_state


def test_a_path_on_the_server_is_not_read_unless_the_server_allows_it(cfg, tmp_path):
    import shutil

    elsewhere = shutil.copy(cfg.data_file, tmp_path / "u.zip")
    at = page(cfg.replace(data_file=str(elsewhere)))
    assert not any("you are the oracle for all of them" in m.value for m in at.markdown)
    assert "labelling_run" not in at.session_state
