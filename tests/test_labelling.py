"""Images without labels, labelled in the loop (alcore.engine.labelling): the classes named up front,
the audit set labelled first and never trained on, every label the person's, the file resumes."""
import io
import json
import zipfile

import numpy as np
import pytest

from alcore import ExperimentConfig
from alcore.analysis.pitfalls import accuracy_interval
from alcore.data.datasets import RawData
from alcore.data.images import load_images
from alcore.engine.labelling import AUDIT_MAX, LabellingRun, draw_audit, parse_class_names
from alcore.engine.oracle import BatchAnswers
from alcore.results.labels import label_rows, labels_zip
from alcore.results.records import load_result, to_json
from test_images import COLOURS, blob, encode, make_zip

CLASSES = tuple(COLOURS)


@pytest.fixture(scope="module")
def unlabeled(tmp_path_factory):
    """80 images of 5 colours without class folders: the file name tells the test the truth."""
    members = {f"{c}{i:02d}.png": encode(blob(col, seed=i)) for c, col in COLOURS.items() for i in range(16)}
    path = make_zip(tmp_path_factory.mktemp("u") / "u.zip", members)
    s = load_images(path, 12)
    assert not s.labeled
    cfg = ExperimentConfig(dataset="images", data_file=path, image_size=12, model="softmax", initial=6,
                           batch_size=4, rounds=2, seed=3)
    return cfg, s.raw


def truth_of(files) -> list[int]:
    return [CLASSES.index(f.split("/")[-1][:3]) for f in files]


def label(run: LabellingRun, wrong: int = 0):
    """Answer the waiting batch truthfully (the first ``wrong`` of them with the next class), 1 s each."""
    batch = run.batch
    files = (run.dataset.test_files if run.phase == "audit" else run.dataset.pool_files)
    given = truth_of([files[i] for i in batch])
    given[:wrong] = [(c + 1) % 5 for c in given[:wrong]]
    answers = BatchAnswers(batch, shown_at=0.0)
    for pos, c in enumerate(given):
        answers.answer(pos, c, now=pos + 1.0)
    return run.submit(answers)


def test_class_names_are_parsed_and_checked():
    assert parse_class_names(" cat, dog ,bird") == ("cat", "dog", "bird")
    assert parse_class_names("cat,dog,") == ("cat", "dog")  # a trailing comma is forgiven
    for bad, words in [("cat", "at least two"), ("", "at least two"), ("cat,,dog", "empty class name"),
                       ("cat, Cat", "named twice")]:
        with pytest.raises(ValueError, match=words):
            parse_class_names(bad)


def test_the_audit_set_is_uniform_seeded_and_bounded():
    a = draw_audit(1000, 100, 0)
    assert len(set(a)) == 100 and (np.diff(a) > 0).all() and a.max() < 1000
    assert (draw_audit(1000, 100, 0) == a).all() and not (draw_audit(1000, 100, 1) == a).all()
    hits = np.bincount(np.concatenate([draw_audit(100, 50, s) for s in range(400)]), minlength=100)
    assert hits.min() > 140 and hits.max() < 260  # each image drawn about 200 times in 400 seeds
    for n, size in [(1000, 49), (1000, AUDIT_MAX + 1), (50, 50)]:
        with pytest.raises(ValueError):
            draw_audit(n, size, 0)


def test_the_wilson_interval_matches_known_values():
    lo, hi = accuracy_interval(0.8, 10)  # Wilson (1927); Newcombe (1998) table I: 8/10 -> 0.4902-0.9433
    assert round(lo, 4) == 0.4902 and round(hi, 4) == 0.9433
    lo, hi = accuracy_interval(1.0, 50)
    assert hi == 1.0 and round(lo, 4) == 0.9287


def test_a_person_labels_the_audit_the_initial_images_and_every_batch(unlabeled, tmp_path):
    cfg, raw = unlabeled
    run = LabellingRun(cfg, raw, CLASSES, audit_size=50)
    assert run.phase == "audit" and len(run.dataset.y_test) == 50 and len(run.dataset.y_pool) == 30
    assert (run.dataset.y_pool == -1).all()
    while run.phase == "audit":
        assert len(run.batch) <= cfg.batch_size and run.batch_images().shape[1:] == (12, 12, 3)
        assert label(run) is None
    assert (run.dataset.y_test == truth_of(run.dataset.test_files)).all()
    assert run.phase == "initial" and len(run.batch) == 4 and label(run) is None  # 6 initial images: 4, then 2
    first = label(run)
    assert first.round == 0 and run.phase == "rounds" and first.n_labeled == 6
    audit = set(int(i) for i in run.audit_indices)
    assert not audit & {int(run.dataset.pool_origin[i]) for i in run.batch}  # the audit is never picked
    label(run, wrong=1)
    res = run.result()
    assert res.labelled_in_the_loop and res.dataset.n_test == 50 and len(res.audit_labels) == 50
    assert res.initial_labels == truth_of([run.dataset.pool_files[i] for i in res.initial_indices])
    acc, n = run.audit_accuracy()
    assert n == 50 and acc == res.rounds[-1].test_accuracy

    # the file continues on the same images, with the next batch waiting
    back = load_result(to_json(res).encode(), "mine.json")
    again = LabellingRun.resume(back, raw)
    assert again.phase == "rounds" and again.batch.tolist() == run.batch.tolist()
    assert label(again).round == label(run).round == 2 and again.done and run.done
    assert again.result().rounds[-1].test_accuracy == run.result().rounds[-1].test_accuracy
    other = dict(json.loads(to_json(res)))
    other["audit_indices"] = other["audit_indices"][1:] + [other["audit_indices"][0] + 1]
    with pytest.raises(ValueError):
        LabellingRun.resume(load_result(json.dumps(other).encode(), "x.json"), raw)
    x = raw.x_train.copy()
    x[0, 0, 0] ^= 1  # the same count of images, one pixel differs
    with pytest.raises(ValueError, match="the images differ"):
        LabellingRun.resume(back, RawData(x, raw.y_train, None, None, None, raw.source, raw.train_files))

    # every label is the person's, the audit's included, and exports to the zip
    rows = label_rows(again.result(), again.dataset)
    assert {r.source for r in rows} == {"person"} and len(rows) == 50 + 6 + 8
    assert sum(r.kind == "audit" for r in rows) == 50 and sum(r.class_index != truth_of([r.file_name])[0]
                                                                for r in rows) == 1
    with zipfile.ZipFile(io.BytesIO(labels_zip(rows, again.dataset))) as z:
        assert len(z.namelist()) == 64 and sum("/audit" in n for n in z.namelist()) == 50


def test_what_a_labelling_run_refuses(unlabeled):
    cfg, raw = unlabeled
    with pytest.raises(ValueError, match="balanced"):
        LabellingRun(cfg.replace(initial_strategy="balanced"), raw, CLASSES, 50)
    run = LabellingRun(cfg, raw, CLASSES, 50)
    with pytest.raises(RuntimeError, match="round 0"):
        run.result()
    with pytest.raises(ValueError, match="another batch"):
        run.submit(BatchAnswers([99], 0.0))


def test_the_cli_exports_a_labelling_runs_labels_from_its_file(unlabeled, tmp_path):
    import csv
    import shutil

    from test_cli import cli

    cfg, raw = unlabeled
    run = LabellingRun(cfg, raw, CLASSES, audit_size=50)
    while not run.done:
        label(run)
    result = tmp_path / "mine.json"
    result.write_text(to_json(run.result()))
    copy = shutil.copy(cfg.data_file, tmp_path / "here.zip")  # this machine's copy of the upload
    p = cli("labels", str(result), "--data-file", str(copy), "--csv", str(tmp_path / "l.csv"),
            "--zip", str(tmp_path / "l.zip"))
    assert p.returncode == 0, p.stderr
    assert "64 labels of" in p.stderr and "one folder per class" in p.stderr
    rows = list(csv.DictReader(open(tmp_path / "l.csv")))
    assert len(rows) == 64 and all(r["label"] == CLASSES[truth_of([r["file_name"]])[0]] for r in rows)
    with zipfile.ZipFile(tmp_path / "l.zip") as z:
        assert sorted({n.split("/")[0] for n in z.namelist()}) == sorted(CLASSES)
    other = make_zip(tmp_path / "other.zip", {f"{c}{i:02d}.png": encode(blob(col, seed=i + 1))
                                              for c, col in COLOURS.items() for i in range(16)})
    p = cli("labels", str(result), "--data-file", other)
    assert p.returncode == 2 and "the images differ from the ones this run was labelled on" in p.stderr \
        and "Traceback" not in p.stderr
