"""Exporting a run's labels (alcore.results.labels): the CSV's rows and sources, and the zip of
one folder per class, read back with keras.utils.image_dataset_from_directory to the same labels."""
import csv
import io
import json
import zipfile

import numpy as np
import pytest

from alcore import ExperimentConfig
from alcore.data.datasets import load_dataset
from alcore.engine.autolabel import auto_label
from alcore.engine.loop import Experiment
from alcore.engine.oracle import BatchAnswers, OracleRun
from alcore.results.labels import (COLUMNS, class_folders, label_rows, labels_csv, labels_zip, member_name)
from alcore.results.records import RunResult, load_result, save_result, to_json
from test_images import class_zip


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    path = class_zip(tmp_path_factory.mktemp("pets"), per_class=8)
    cfg = ExperimentConfig(dataset="images", data_file=path, image_size=12, model="softmax", initial=6,
                           batch_size=4, rounds=2, seed=0)
    return cfg, load_dataset(cfg)


def test_the_images_loader_keeps_each_pool_images_file_name(pets):
    _, ds = pets
    assert ds.pool_files is not None and len(ds.pool_files) == len(ds.y_pool)
    for f, c in zip(ds.pool_files, ds.y_pool):
        assert f.startswith(f"pets/{ds.class_names[c]}/")  # the folder is the class
    assert load_dataset(ExperimentConfig(dataset="digits")).pool_files is None


def test_a_simulated_runs_labels_are_the_datasets_own(pets):
    cfg, ds = pets
    exp = Experiment(cfg, dataset=ds)
    list(exp.run())
    res = exp.result()
    rows = label_rows(res, ds)
    assert [r.pool_index for r in rows[:6]] == list(res.initial_indices)
    assert {r.source for r in rows} == {"simulated"}
    assert [r.kind for r in rows].count("queried") == sum(len(r.selected) for r in res.rounds)
    assert all(r.label == ds.class_names[ds.y_pool[r.pool_index]] for r in rows)
    assert len({r.pool_index for r in rows}) == len(rows)
    assert {r.round for r in rows if r.kind == "queried"} <= {1, 2, 3}
    table = list(csv.DictReader(io.StringIO(labels_csv(rows))))
    assert tuple(table[0]) == COLUMNS and len(table) == len(rows)
    assert table[0]["labelled_at"] == "" and table[0]["file_name"] == rows[0].file_name
    # pseudo-labels from auto-labelling are rows of their own
    rep = auto_label(exp, 3, 1)
    more = label_rows(res, ds, (rep.pseudo_indices, rep.pseudo_labels))
    auto = [r for r in more if r.source == "auto"]
    assert len(auto) == 3 and {r.kind for r in auto} == {"pseudo"} and {r.round for r in auto} == {len(res.rounds)}


def test_a_persons_labels_say_who_when_and_how_fast_and_old_files_still_load(pets):
    cfg, ds = pets
    run = OracleRun(cfg, dataset=ds)
    run.start()
    batch = run.batch.tolist()
    answers = BatchAnswers(batch, shown_at=0.0)
    for pos in range(len(batch)):
        answers.answer(pos, (int(ds.y_pool[batch[pos]]) + 1) % ds.n_classes, now=2.0 * (pos + 1))  # all wrong
    run.submit(answers)
    res = run.result()
    assert res.rounds[0].labelled_at and res.rounds[0].labelled_at.endswith("+00:00")
    rows = label_rows(res, ds)
    person = [r for r in rows if r.source == "person"]
    assert [r.pool_index for r in person] == batch and {r.round for r in person} == {1}
    assert [r.seconds for r in person] == [2.0] * len(batch) and person[0].labelled_at == res.rounds[0].labelled_at
    assert all(r.class_index != ds.y_pool[r.pool_index] for r in person)  # the person's label, not the truth
    assert {r.source for r in rows if r.kind == "initial"} == {"simulated"}
    assert len(rows) == cfg.initial + len(batch)  # the batch waiting now is not exported
    # a file written before labelled_at existed loads, and exports without it
    data = json.loads(to_json(res))
    del data["rounds"][0]["labelled_at"]
    old = RunResult.model_validate(data)
    assert [r.labelled_at for r in label_rows(old, ds) if r.source == "person"] == [None] * len(batch)


def test_folder_names_are_safe_and_unique():
    assert class_folders(["cat", "a/b", "..", "Cat", ""]) == ["cat", "a_b", "class_2", "Cat_3", "class_4"]
    from alcore.results.labels import LabelRow

    assert member_name(LabelRow(7, "x/y/IMG 1.jpeg", "cat", 0, "person", "queried", 1), "cat") == "cat/000007_IMG 1.png"
    assert member_name(LabelRow(7, None, "cat", 0, "person", "queried", 1), "cat") == "cat/000007.png"


def test_the_zip_reads_back_with_keras_to_the_same_labels(pets, tmp_path):
    import keras

    cfg, ds = pets
    exp = Experiment(cfg, dataset=ds)
    list(exp.run())
    rows = label_rows(exp.result(), ds)
    data = labels_zip(rows, ds)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        z.extractall(tmp_path / "out")
        assert len(z.namelist()) == len(rows)
    back = keras.utils.image_dataset_from_directory(tmp_path / "out", labels="inferred", shuffle=False,
                                                    image_size=(12, 12), batch_size=None)
    names = back.class_names
    got = {}
    for path, (image, label) in zip(back.file_paths, back.as_numpy_iterator()):
        got[int(path.rsplit("/", 1)[-1][:6])] = (names[int(label)], image)
    assert len(got) == len(rows)
    for r in rows:
        name, image = got[r.pool_index]
        assert name == r.label
        want = np.rint(ds.display_images(ds.x_pool[r.pool_index: r.pool_index + 1])[0] * 255)
        np.testing.assert_allclose(image, want, atol=0.5)  # the pixels the dataset holds


def test_a_result_file_round_trips_with_labelled_at(pets, tmp_path):
    cfg, ds = pets
    run = OracleRun(cfg, dataset=ds)
    run.start()
    answers = BatchAnswers(run.batch, shown_at=0.0)
    for pos, i in enumerate(run.batch):
        answers.answer(pos, int(ds.y_pool[i]), now=1.0)
    run.submit(answers)
    save_result(run.result(), tmp_path / "p.json")
    back = load_result(tmp_path / "p.json")
    assert back.rounds[0].labelled_at == run.result().rounds[0].labelled_at
    assert label_rows(back, ds) == label_rows(run.result(), ds)
