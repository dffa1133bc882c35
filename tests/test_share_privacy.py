"""What a shared file or link gives away (issue 19, item 6): a result file carries no path of the
server, only its data file's name and SHA-256; a result file naming a path, another visitor's
upload included, never makes the dashboard read it; a saved race's link shows the race, and only
the browser that started it continues it."""
import hashlib
import json
import re
import zipfile

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from alcore import ExperimentConfig
from alcore.config import RaceConfig
from alcore.engine.race import Race
from alcore.engine.store import RunStore
from alcore.results.records import load_result, without_server_paths
from conftest import ROOT, npz_with_classes, session_upload
from dashboard.uploads import upload_root

APP = str(ROOT / "app.py")
CLASSES = ["ant", "bee", "cat"]
MINE = npz_with_classes(CLASSES, n=90)  # visitor A's own data
SHA = hashlib.sha256(MINE).hexdigest()


def shown(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def page(name: str, config=None, query=None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240)
    if config is not None:
        at.session_state["config"] = config
    for k, v in state.items():
        at.session_state[k] = v
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    at.switch_page(f"app_pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def rerun(element) -> AppTest:
    at = element.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="module")
def visitor_a():
    """Visitor A's session uploads holding A's .npz, and a finished race on it."""
    mine, path = session_upload(MINE, "mine.npz", ".npz")
    cfg = ExperimentConfig(dataset="npz", data_file=path, initial=6, batch_size=6, rounds=2, max_epochs=5)
    race = Race(cfg, ["margin", "random"], [0])
    while not race.done:
        race.step()
    return mine, path, race


@pytest.fixture
def files_opened(monkeypatch):
    """Every file path a zip (a .npz or a .zip of images) is opened from, while the test runs."""
    opened = []
    real = zipfile.ZipFile.__init__

    def recording(self, file, *args, **kwargs):
        if isinstance(file, str):
            opened.append(file)
        return real(self, file, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "__init__", recording)
    return opened


def test_a_result_file_names_its_data_file_by_name_and_hash_not_by_path(visitor_a):
    _, path, race = visitor_a
    res = race.results()[0]
    assert res.config.data_file == path and res.dataset.file_sha256 == SHA  # the server's own copy
    shared = json.loads(without_server_paths(res).model_dump_json())
    assert shared["config"]["data_file"] == "mine.npz" and shared["dataset"]["file_sha256"] == SHA
    assert str(upload_root()) not in json.dumps(shared) and shared["dataset"]["source"] == "npz file mine.npz"
    # the CLI writes paths as typed (the user's own machine): data_dir is kept there, not in a download
    local = res.model_copy(update={"config": ExperimentConfig(dataset="mnist", data_dir="/home/me/data")})
    assert without_server_paths(local).config.data_dir is None


def test_every_result_file_a_visitor_downloads_is_without_server_paths(visitor_a, monkeypatch):
    mine, path, race = visitor_a
    downloads = []
    real = MemoryMediaFileStorage.load_and_get_id

    def recording(self, data, mimetype, kind, filename=None):
        downloads.append((filename, data))
        return real(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    at = page("results", race.base, race=race, uploads=mine)
    results = [(f, d) for f, d in downloads if f and f.endswith(".json")]
    assert len(results) == 2
    for name, data in results:
        text = data.decode() if isinstance(data, bytes) else data
        assert str(upload_root()) not in text and mine.session not in text, name
        got = load_result(text.encode())
        assert got.config.data_file == "mine.npz" and got.dataset.file_sha256 == SHA
    assert at.session_state["race"].base.data_file == path  # the session itself still reads its own copy


def test_a_forged_result_file_never_reads_another_visitors_upload(visitor_a, files_opened):
    """Visitor B holds a result file of A's (they are meant to be shared), edited to name A's
    upload on the server: Replay asks B for the file, refuses another one by its hash, and shows
    images only from B's own copy."""
    _, path_a, race = visitor_a
    forged = json.loads(race.results()[0].model_dump_json())
    forged["config"]["data_file"] = path_a  # A's upload, where the server keeps it
    at = page("replay")
    at = rerun(at.file_uploader(key="replay_files").set_value(
        [("forged.json", json.dumps(forged).encode(), "application/json")]))
    asked = next(i.value for i in at.info if "which this session has not uploaded" in i.value)
    assert "mine.npz" in shown(asked) and SHA[:12] in asked
    assert not at.image and path_a not in files_opened
    other = npz_with_classes(CLASSES, n=60)
    at = rerun(at.file_uploader(key="replay_data").set_value(("mine.npz", other, "application/octet-stream")))
    assert any("its SHA-256 differs" in shown(e.value) for e in at.error) and not at.image
    at = rerun(at.file_uploader(key="replay_data").set_value(("copy of mine.npz", MINE, "application/octet-stream")))
    assert len(at.image[0].value) == 6  # round 0's batch, from B's own copy
    uploads_read = [f for f in files_opened if f.startswith(str(upload_root()))]
    assert uploads_read and all(f.startswith(str(at.session_state["uploads"].folder)) for f in uploads_read)


def test_an_older_result_file_with_a_path_loads_and_its_path_is_ignored(visitor_a, files_opened):
    _, _, race = visitor_a
    legacy = upload_root() / f"{SHA[:16]}-mine.npz"  # where versions before 0.x kept every upload
    legacy.write_bytes(MINE)
    old = json.loads(race.results()[0].model_dump_json())
    del old["dataset"]["file_sha256"]  # written before files were fingerprinted
    old["config"]["data_file"] = path_a = str(legacy)
    at = page("replay")
    at = rerun(at.file_uploader(key="replay_files").set_value(
        [("old.json", json.dumps(old).encode(), "application/json")]))
    assert at.selectbox(key="replay_run").options == ["margin (seed 0) [old.json]"]  # it loads: curves, metrics
    assert any("named by a path on the machine that made it, which the dashboard does not read" in shown(i.value)
               for i in at.info)
    assert not at.image and path_a not in files_opened and at.metric
    legacy.unlink()


def test_continuing_result_files_asks_for_their_data_instead_of_reading_a_path(visitor_a, files_opened, tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("ALCORE_RUNS_DIR", str(tmp_path))
    _, path_a, race = visitor_a
    part = Race(race.base, ["margin", "random"], [0])
    part.step()
    files = [(f"{r.config.strategy}.json", r.model_dump_json().encode(), "application/json") for r in part.results()]
    files_opened.clear()  # what the test itself read to make them
    at = page("run")
    at = rerun(at.file_uploader(key="continue_files").set_value(files))
    assert at.button(key="open_files").disabled and not list(tmp_path.iterdir())
    assert path_a not in files_opened
    at = rerun(at.file_uploader(key="continue_data").set_value(("mine.npz", MINE, "application/octet-stream")))
    at = rerun(at.button(key="open_files").click())
    reopened = at.session_state["race"]
    assert [len(e.rounds) for e in reopened.experiments] == [1] and not at.session_state["race_read_only"]
    assert reopened.base.data_file.startswith(str(at.session_state["uploads"].folder))
    assert path_a not in files_opened


# ------------------------------------------------------------------------- ?run=<id>

KEY_A = "A" * 43  # visitor A's browser key (dashboard.state.visitor_key)


def saved_race(root, owner=KEY_A) -> str:
    """A race of margin and random on digits, stopped after its first round, saved as the Run
    page saves it; its id."""
    cfg = ExperimentConfig(rounds=3, max_epochs=5)
    race = Race(cfg, ["margin", "random"], [0])
    race.step()
    store = RunStore(root)
    race_id = store.new_id()
    store.create(race_id, RaceConfig(base=cfg, strategies=["margin", "random"], seeds=[0]), owner=owner)
    for i, e in enumerate(race.experiments):
        if e.rounds:
            store.save_run(race_id, i, e.result())
    return race_id


def test_only_the_browser_that_started_a_race_continues_it_from_its_link(tmp_path, monkeypatch):
    monkeypatch.setenv("ALCORE_RUNS_DIR", str(tmp_path))
    race_id = saved_race(tmp_path)
    manifest = (tmp_path / race_id / "race.json").read_text()
    assert KEY_A not in manifest and hashlib.sha256(KEY_A.encode()).hexdigest() in manifest

    b = page("run", query={"run": race_id})  # anyone holding the address
    assert b.session_state["race_read_only"] and b.button(key="continue").disabled
    assert any("opened read-only" in i.value and "only the browser that started it" in i.value for i in b.info)
    b.session_state["running"] = True  # what a forged Continue (the button is disabled) would ask for
    b = rerun(b)
    assert not b.session_state["running"] and any("opened read-only" in e.value for e in b.error)
    assert [len(e.rounds) for e in b.session_state["race"].experiments] == [1, 0]
    assert b.session_state["visitor_key"] not in json.dumps(dict(b.query_params))

    a = page("run", query={"run": race_id}, visitor_key=KEY_A)  # A's browser (its key from the cookie)
    assert not a.session_state["race_read_only"] and not a.button(key="continue").disabled
    assert any("Press **Continue** to go on" in i.value for i in a.info)
    a = rerun(a.button(key="continue").click())
    while a.session_state["running"]:
        a = rerun(a)
    assert a.session_state["race"].done


def test_a_race_saved_before_owners_were_kept_opens_read_only(tmp_path, monkeypatch):
    monkeypatch.setenv("ALCORE_RUNS_DIR", str(tmp_path))
    race_id = saved_race(tmp_path, owner=None)
    at = page("run", query={"run": race_id}, visitor_key=KEY_A)
    assert at.session_state["race_read_only"] and at.button(key="continue").disabled
    assert RunStore(tmp_path).owned_by(race_id, KEY_A) is False
    assert RunStore(tmp_path).owned_by(race_id, None) is False


def test_a_race_started_here_is_owned_by_this_browser(tmp_path, monkeypatch):
    monkeypatch.setenv("ALCORE_RUNS_DIR", str(tmp_path))
    at = page("run", ExperimentConfig(rounds=1, max_epochs=5))
    at = rerun(at.button(key="start").click())
    while at.session_state["running"]:
        at = rerun(at)
    race_id = at.session_state["race_id"]
    store = RunStore(tmp_path)
    assert store.owned_by(race_id, at.session_state["visitor_key"])
    assert not store.owned_by(race_id, KEY_A)
    assert any("anyone else you give it to can look at the race, not continue" in c.value for c in at.caption)
