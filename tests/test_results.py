import json
import os

import pytest

from alcore import Experiment

from alcore.results import records as results
from alcore.results.records import (ResultFileError, SCHEMA_VERSION, curves_csv, load_result, save_result,
                            to_json)


@pytest.fixture(scope="module")
def result(digits_config, digits, cache):
    exp = Experiment(digits_config, dataset=digits, cache=cache)
    list(exp)
    return exp.result()


def test_round_trip_keeps_everything(tmp_path, result):
    path = save_result(result, tmp_path / "sub" / "r.json")
    loaded = load_result(path)
    assert loaded == result
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    for key in ("n_labeled", "test_accuracy", "test_loss", "train_seconds", "query_seconds", "selected"):
        assert key in data["rounds"][0]
    assert set(data["environment"]) >= {"alcore", "tensorflow", "keras", "numpy"}
    assert load_result(path.read_bytes(), name="upload.json") == result


def _mutate(result, fn):
    data = json.loads(to_json(result))
    fn(data)
    return json.dumps(data).encode()


@pytest.mark.parametrize("make, words", [
    (lambda r: b"", "the file is empty"),
    (lambda r: b"\xff\xfe{}", "not UTF-8"),
    (lambda r: to_json(r).encode()[:200], "not valid JSON"),
    (lambda r: b"[1, 2]", "JSON object"),
    (lambda r: b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (lambda r: _mutate(r, lambda d: d.pop("schema_version")), "missing 'schema_version'"),
    (lambda r: _mutate(r, lambda d: d.update(schema_version=99)), "unknown schema_version 99"),
    (lambda r: _mutate(r, lambda d: d["rounds"][0].pop("test_accuracy")), "missing field 'rounds.0.test_accuracy'"),
    (lambda r: _mutate(r, lambda d: d["rounds"][1].update(test_accuracy="high")), "rounds.1.test_accuracy"),
    (lambda r: _mutate(r, lambda d: d["rounds"][1].update(test_accuracy=1.5)), "less than or equal to 1"),
    (lambda r: _mutate(r, lambda d: d["config"].update(strategy="psychic")), "unknown strategy 'psychic'"),
    (lambda r: _mutate(r, lambda d: d.update(surprise=1)), "unknown field 'surprise'"),
    (lambda r: _mutate(r, lambda d: d["rounds"][2].update(n_labeled=d["rounds"][2]["n_labeled"] + 1)),
     "but the labels picked so far"),
    (lambda r: _mutate(r, lambda d: d["rounds"][0].update(selected=[1, 2])), "2 selected indices but"),
    (lambda r: _mutate(r, lambda d: d["rounds"][0].update(selected=list(range(10 ** 7, 10 ** 7 + 10)))),
     "outside the pool"),
    (lambda r: _mutate(r, lambda d: d["rounds"][0].update(selected=[5] * 10)), "picks the same pool image twice"),
    (lambda r: _mutate(r, lambda d: d["rounds"][1]["selected"].__setitem__(0, d["initial_indices"][0])),
     "labeled twice"),
    (lambda r: _mutate(r, lambda d: d.update(rounds=[])), "the file holds no rounds"),
    (lambda r: _mutate(r, lambda d: d["rounds"].reverse()), "rounds must be numbered 0, 1, 2"),
    (lambda r: _mutate(r, lambda d: d["rounds"][0]["confusion"][0].__setitem__(0, 10 ** 6)),
     "confusion matrix counts"),
    (lambda r: _mutate(r, lambda d: d["rounds"][0]["confusion"][0].__setitem__(0, -1)), "greater than or equal to 0"),
    (lambda r: _mutate(r, lambda d: d["rounds"][0].update(test_accuracy=0.999)),
     "does not match its confusion matrix"),
    (lambda r: _mutate(r, lambda d: d["rounds"][0]["least_confident"][0].update(predicted=10)), "class outside 0..9"),
    (lambda r: _mutate(r, lambda d: d["dataset"]["class_names"].pop()), "9 names for 10 classes"),
    (lambda r: _mutate(r, lambda d: d["dataset"]["class_names"].__setitem__(0, "x" * 500)), "at most 200 characters"),
    (lambda r: _mutate(r, lambda d: d["rounds"][0].update(test_loss="Infinity")), "rounds.0.test_loss': Input should be a valid number"),
    (lambda r: _mutate(r, lambda d: d["rounds"][0].update(epochs="5")), "rounds.0.epochs': Input should be a valid integer"),
    (lambda r: _mutate(r, lambda d: d.update(initial_indices=d["initial_indices"][:-1])),
     "initial_indices has 9 entries but config.initial is 10"),
    (lambda r: _mutate(r, lambda d: d.update(schema_version="1")), "unknown schema_version '1'; this alcore"),
    (lambda r: _mutate(r, lambda d: d.update(schema_version=True)), "unknown schema_version True"),
    (lambda r: _mutate(r, lambda d: d.update(schema_version="9" * 10 ** 5)), "unknown schema_version '9999"),
    (lambda r: _mutate(r, lambda d: d["config"].update(batch_size=0)), "'config.batch_size': Input should be greater"),
    (lambda r: to_json(r).replace('"test_loss": ', '"test_loss": 1e999, "x": ', 1).encode(), "1e999 is too large"),
    (lambda r: to_json(r).replace('"epochs": ', '"epochs": 1' + "0" * 30 + ', "x": ', 1).encode(), "31 digits) is too large"),
    (lambda r: to_json(r).replace('"epochs": ', '"epochs": 1' + "0" * 5000 + ', "x": ', 1).encode(), "is too large"),
    (lambda r: to_json(r).replace('"status": ', '"status": "complete", "status": ', 1).encode(), "'status' appears twice"),
    (lambda r: to_json(r).replace('"test_loss": ', '"test_loss": NaN, "x": ', 1).encode(), "not valid JSON"),
])
def test_bad_files_are_refused_naming_file_and_problem(result, make, words):
    with pytest.raises(ResultFileError) as e:
        load_result(make(result), name="their_run.json")
    assert str(e.value).startswith("their_run.json: ")
    assert words in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ResultFileError, match="nope.json: cannot be read"):
        load_result(tmp_path / "nope.json")
    with pytest.raises(ResultFileError, match="not a regular file"):
        load_result(tmp_path)


def test_size_limit_is_checked_before_reading(tmp_path, result, monkeypatch):
    path = save_result(result, tmp_path / "big.json")
    monkeypatch.setattr(results, "MAX_FILE_BYTES", 1000)
    monkeypatch.setattr(results, "open", lambda *a, **k: pytest.fail("opened a file over the limit"), raising=False)
    with pytest.raises(ResultFileError, match=r"big.json: \d+ bytes is over the 1000-byte limit"):
        load_result(path)
    with pytest.raises(ResultFileError, match="over the 1000-byte limit"):
        load_result(b" " * 1001, name="up.json")


def test_a_byte_order_mark_is_fine(result):
    assert load_result(b"\xef\xbb\xbf" + to_json(result).encode()) == result


def test_messages_stay_short(result):
    data = json.loads(to_json(result))
    for r in data["rounds"]:
        r.update(test_accuracy="x" * 10_000, epochs=[1] * 10_000, surprise="y" * 10_000)
    with pytest.raises(ResultFileError) as e:
        load_result(json.dumps(data).encode(), name="r.json")
    assert len(str(e.value)) < 1000 and "more problem(s)" in str(e.value)


def test_write_is_atomic(tmp_path, result, monkeypatch):
    path = save_result(result, tmp_path / "r.json")
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_result(result.model_copy(update={"stop_reason": "changed"}), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["r.json"]


def test_curves_csv(result):
    lines = curves_csv([result, result]).splitlines()
    assert lines[0] == "strategy,seed,round,n_labeled,test_accuracy,test_loss,train_seconds,query_seconds"
    assert len(lines) == 1 + 2 * len(result.rounds)
    assert lines[1].startswith("margin,0,0,10,")
