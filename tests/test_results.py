import json
import os

import pytest

from alcore import Experiment
from alcore.results import (ResultFileError, SCHEMA_VERSION, curves_csv, load_result, save_result,
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
    (lambda r: _mutate(r, lambda d: d["rounds"][2].update(n_labeled=1)), "n_labeled went down"),
    (lambda r: _mutate(r, lambda d: d["rounds"][0].update(selected=[1, 2])), "2 selected indices but"),
    (lambda r: _mutate(r, lambda d: d["rounds"][0].update(selected=[10 ** 7] * 10)), "outside the pool"),
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
