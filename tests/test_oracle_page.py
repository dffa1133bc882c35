"""AppTest of the "Be the oracle" page with the real engine on a tiny digits setup: click a
label for every image, submit, and the curve gains a point; mistakes are counted and
costed; limits and run slots are respected; a downloaded run continues in a new session."""
import json
import re

from streamlit.testing.v1 import AppTest

from alcore import ExperimentConfig
from conftest import ROOT, npz_with_classes, session_upload
from test_app_pages import fresh_run_slots  # noqa: F401 (a fixture: the process-wide run slots, emptied)

APP = str(ROOT / "app.py")
TINY = ExperimentConfig(rounds=2, max_epochs=10)
EVIL = ["<img src=x onerror=alert(1)>", "[click](http://evil)", ":material/home: **bold**"]


def oracle_page(config=TINY, **state):
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["config"] = config
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page("app_pages/oracle.py").run()
    assert not at.exception, at.exception
    return at


def started(config=TINY):
    at = oracle_page(config)
    at.button(key="oracle_start").click().run()
    assert not at.exception, at.exception
    return at


def label_buttons(at, pos):
    return [b for b in at.button if re.fullmatch(rf"oracle_label_\d+_{pos}_\d+", b.key or "")]


def label_batch(at, labels):
    """Click one label per image of the waiting batch, as a person would."""
    for pos, c in enumerate(labels):
        label_buttons(at, pos)[int(c)].click().run()
        assert not at.exception, at.exception


def curve(at, name):
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return next(t for t in spec["data"] if t["name"] == name)


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def shown(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def test_label_a_batch_by_clicking_and_the_curve_gains_a_point():
    at = started()
    run = at.session_state["oracle_run"]
    batch = run.batch.tolist()
    assert len(batch) == TINY.batch_size and len(at.image) == TINY.batch_size
    assert all(len(label_buttons(at, pos)) == 10 for pos in range(len(batch)))
    assert at.button(key="oracle_submit_button").disabled
    assert len(curve(at, "you")["x"]) == 1 and len(curve(at, "simulated oracle (same seed)")["x"]) == 1

    truth = run.dataset.y_pool[batch]
    given = truth.copy()
    given[[0, 4]] = (given[[0, 4]] + 3) % 10  # two mistakes
    label_batch(at, given)
    assert at.session_state["oracle_answers"].labels == given.tolist()
    assert [b.proto.type for b in label_buttons(at, 0)].count("primary") == 1  # the chosen label stands out
    at.button(key="oracle_submit_button").click().run()
    assert not at.exception, at.exception

    you = curve(at, "you")
    assert you["x"] == [10, 20] and len(curve(at, "simulated oracle (same seed)")["x"]) == 2
    assert curve(at, "your images, true labels")["x"] == [10, 20]
    assert run.person.rounds[0].given_labels == given.tolist()
    assert metric(at, "Labels you gave") == "10" and metric(at, "Your mistakes") == "2 (20%)"
    assert metric(at, "Seconds per label").endswith(" s")
    words = " ".join(shown(m.value) for m in at.markdown)
    assert "2 of your 10 labels are wrong (20%)." in words
    assert "Your mistakes" in [s.value for s in at.subheader]
    assert len(at.image[-1].captions) == 2 and "you said" in at.image[-1].captions[0]
    assert at.session_state["oracle_run"].batch.tolist() != batch  # the next batch waits
    assert at.get("download_button")[0].label == "Download your run's result file (JSON)"
    assert {b.key for b in at.get("download_button")} >= {"oracle_labels_csv", "oracle_labels_zip"}
    assert next(b for b in at.get("download_button") if b.key == "oracle_labels_csv").label == \
        f"Labels (CSV, {TINY.initial + 10} rows)"  # the initial labels and the person's batch

    # the last batch, all right: the run completes and says so
    label_batch(at, run.dataset.y_pool[run.batch])
    at.button(key="oracle_submit_button").click().run()
    assert not at.exception, at.exception
    assert run.done and curve(at, "you")["x"] == [10, 20, 30]
    assert any("The run is complete" in s.value for s in at.success)


def test_keyboard_shortcuts_label_the_first_open_image_when_the_classes_are_digits():
    at = started()
    keys = lambda: [b for b in at.button if (b.key or "").startswith("oracle_key_")]  # noqa: E731
    assert [b.proto.shortcut for b in keys()] == [str(c) for c in range(10)]
    assert all(b.label == "" for b in keys())  # the shortcut shows the key; a label showed it twice (issue 18)
    assert all(b.proto.shortcut == "" for pos in range(10) for b in label_buttons(at, pos))  # mouse only
    keys()[3].click().run()
    keys()[5].click().run()
    assert at.session_state["oracle_answers"].labels[:3] == [3, 5, None]  # in order, the first open image
    label_buttons(at, 0)[8].click().run()  # a correction, by mouse
    assert at.session_state["oracle_answers"].labels[:3] == [8, 5, None]
    assert at.button(key="oracle_submit_button").proto.shortcut == ""  # Enter only once all are labelled
    for _ in range(8):
        keys()[1].click().run()
    assert at.session_state["oracle_answers"].labels == [8, 5] + [1] * 8
    assert at.button(key="oracle_submit_button").proto.shortcut.lower() == "enter"
    assert not at.button(key="oracle_submit_button").disabled and all(b.disabled for b in keys())


def test_any_dataset_with_class_names_shows_them_as_text_without_digit_keys():
    mine, path = session_upload(npz_with_classes(EVIL, n=90), "evil.npz", ".npz")
    cfg = ExperimentConfig(dataset="npz", data_file=path, initial=6, batch_size=3, rounds=1, max_epochs=5)
    at = oracle_page(cfg, uploads=mine)
    at.button(key="oracle_start").click().run()
    assert not at.error, [e.value for e in at.error]
    names = [b.label for b in label_buttons(at, 0)]
    assert [shown(n) for n in names] == EVIL  # reads as the name; escaped, so nothing renders from it
    assert not any(re.search(r"(?<!\\)[\[\]<>*]", n) for n in names)
    assert not any((b.key or "").startswith("oracle_key_") for b in at.button)  # keys only where classes are digits
    label_batch(at, [0, 1, 2])
    at.button(key="oracle_submit_button").click().run()
    assert not at.exception, at.exception
    assert len(curve(at, "you")["x"]) == 2


def test_the_servers_limits_and_run_slots_hold_for_a_person_too(monkeypatch, fresh_run_slots):
    from dashboard.limits import run_slots

    monkeypatch.setenv("ALCORE_MAX_LABELS", "20")
    at = started()  # 10 + 2 x 10 = 30 labels
    assert any("over this server's limit of 20 labels per run" in e.value for e in at.error)
    assert "oracle_run" not in at.session_state

    monkeypatch.delenv("ALCORE_MAX_LABELS")
    monkeypatch.setenv("ALCORE_MAX_CONCURRENT_RUNS", "1")
    assert run_slots().try_acquire("another visitor's session")
    at.button(key="oracle_start").click().run()
    assert [e.value for e in at.error] == ["1 run is in progress on this server (the limit is 1); try again in a minute."]
    assert "oracle_run" not in at.session_state
    run_slots().release("another visitor's session")
    at.button(key="oracle_start").click().run()
    assert "oracle_run" in at.session_state and run_slots().in_use() == 0  # the slot is held only while training


def test_a_downloaded_run_continues_in_a_new_session():
    at = started()
    run = at.session_state["oracle_run"]
    label_batch(at, run.dataset.y_pool[run.batch])
    at.button(key="oracle_submit_button").click().run()
    waiting = run.batch.tolist()
    data = run.result().model_dump_json().encode()

    other = oracle_page()
    other.file_uploader(key="oracle_file").set_value(("mine.json", data, "application/json")).run()
    other.button(key="oracle_reopen").click().run()
    assert not other.exception, other.exception
    back = other.session_state["oracle_run"]
    assert back.batch.tolist() == waiting and len(curve(other, "you")["x"]) == 2

    simulated = run.simulated.result().model_dump_json().encode()
    other.file_uploader(key="oracle_file").set_value(("sim.json", simulated, "application/json")).run()
    other.button(key="oracle_reopen").click().run()
    assert any("labelled by the simulated oracle, not a person" in shown(e.value) for e in other.error)


def test_mistakes_that_happened_to_help_are_not_a_negative_cost(monkeypatch):
    """Issue 18: "Mistakes cost -7.5 pts" read oddly; say they helped, by chance, and by how much."""
    from alcore.engine.oracle import OracleRun, RoundCost

    at = started()
    helped = RoundCost(round=1, n_labeled=20, person_labels=10, mistakes=2, accuracy=0.8, truth_accuracy=0.725)
    monkeypatch.setattr(OracleRun, "costs", lambda self: [helped])
    at.run()
    assert not at.exception, at.exception
    m = next(m for m in at.metric if m.label.startswith("Mistakes"))
    assert (m.label, m.value) == ("Mistakes helped, by chance", "7.5 pts")
    cost = helped.model_copy(update={"accuracy": 0.7})
    monkeypatch.setattr(OracleRun, "costs", lambda self: [cost])
    at.run()
    m = next(m for m in at.metric if m.label.startswith("Mistakes"))
    assert (m.label, m.value) == ("Mistakes cost", "2.5 pts")
