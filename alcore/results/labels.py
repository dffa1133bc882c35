"""The labels a run has, taken away: a CSV with one row per labelled pool image, and a ``.zip``
in the one-folder-per-class layout that ``keras.utils.image_dataset_from_directory`` (and
:mod:`alcore.data.images`) read back.

Every label is one row: the pool index, the file the image came from (where the dataset has
files: the images loader), the class, who gave it (``source``), what it was for (``kind``),
the first round that trained on it, and when and how fast a person gave it where that was
recorded.

- ``source``: ``person`` (given on Be the oracle: every label of a run on images without
  labels, :mod:`alcore.engine.labelling`), ``simulated`` (the dataset's own label:
  every label of a simulated run, and the initial and validation labels of a person's run
  on a labeled dataset) or ``auto`` (a pseudo-label from confident auto-labelling, which
  result files do not hold: pass them in).
- ``kind``: ``initial``, ``validation`` (fixed validation labels), ``queried`` (a strategy's
  pick), ``pseudo``, or ``audit`` (the audit set of a run on images without labels: the test
  split, never trained on; its rows have no pool index but an ``audit_index``).
- ``round``: the first round whose model trained on the label (0: the initial and validation
  labels; a batch picked by round r is trained on from round r + 1; pseudo-labels count as
  after the last round).
- ``labelled_at``: when the person submitted the batch (UTC); empty for the dataset's labels
  and for files written before it was recorded. ``seconds``: the person's time on that image.

The zip holds PNG files of the pool images **as the dataset holds them** (after the images
loader scaled and padded them to ``image_size``; the original files' bytes are not kept in
memory), one folder per class named after the class, each file named by its pool index and,
where known, its original file name.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import astuple, dataclass, fields
from typing import Optional, Sequence

import numpy as np

from alcore.data.datasets import Dataset
from alcore.results.records import RunResult

SOURCES = ("person", "simulated", "auto")
KINDS = ("initial", "validation", "queried", "pseudo", "audit")


@dataclass(frozen=True)
class LabelRow:
    """One labelled pool image (the CSV's columns, in order)."""

    pool_index: Optional[int]
    file_name: Optional[str]
    label: str  # the class name
    class_index: int
    source: str  # SOURCES
    kind: str  # KINDS
    round: int
    labelled_at: Optional[str] = None
    seconds: Optional[float] = None
    audit_index: Optional[int] = None  # kind "audit": the index in the audit set (the test split)


COLUMNS = tuple(f.name for f in fields(LabelRow))


def label_rows(result: RunResult, dataset: Dataset,
               pseudo: Optional[tuple[Sequence[int], Sequence[int]]] = None) -> list[LabelRow]:
    """Every label ``result`` has, oldest first: initial, validation, each round's batch (a
    person's run: only batches the person has labelled), then ``pseudo`` (pool indices, classes)
    from auto-labelling. ``dataset`` is the run's own (its labels answer for the simulated oracle)."""
    if len(dataset.y_pool) != result.dataset.n_pool or dataset.n_classes != result.dataset.n_classes:
        raise ValueError("the dataset differs from the one this result was made on")
    names, y, files = dataset.class_names, dataset.y_pool, dataset.pool_files
    person = result.oracle == "person"

    def row(i: int, c: int, source: str, kind: str, rnd: int, at=None, sec=None) -> LabelRow:
        if not 0 <= c < len(names):
            raise ValueError(f"pool image {i} has no label (class {c})")
        return LabelRow(int(i), files[i] if files is not None else None, names[c], int(c), source, kind,
                        rnd, at, None if sec is None else float(sec))

    if result.labelled_in_the_loop:  # images without labels: the person gave these too
        rows = _audit_rows(result, dataset)
        rows += [row(i, c, "person", "initial", 0) for i, c in zip(result.initial_indices, result.initial_labels)]
        rows += [row(i, c, "person", "validation", 0)
                 for i, c in zip(result.validation_indices, result.validation_labels)]
    else:
        rows = [row(i, int(y[i]), "simulated", "initial", 0) for i in result.initial_indices]
        rows += [row(i, int(y[i]), "simulated", "validation", 0) for i in result.validation_indices]
    for r in result.rounds:
        if person and not r.given_labels:
            continue  # a batch still waiting for the person
        given = r.given_labels or [int(y[i]) for i in r.selected]
        secs = r.label_seconds or [None] * len(given)
        rows += [row(i, c, "person" if person else "simulated", "queried", r.round + 1,
                     r.labelled_at if person else None, s) for i, c, s in zip(r.selected, given, secs)]
    if pseudo is not None:
        after = len(result.rounds)
        rows += [row(int(i), int(c), "auto", "pseudo", after) for i, c in zip(*pseudo)]
    return rows


def _audit_rows(result: RunResult, dataset: Dataset) -> list[LabelRow]:
    files, names = dataset.test_files, dataset.class_names
    return [LabelRow(None, files[k] if files is not None else None, names[c], int(c), "person", "audit", 0,
                     audit_index=k) for k, c in enumerate(result.audit_labels)]


def labels_csv(rows: Sequence[LabelRow]) -> str:
    """The rows as CSV text with a header row (COLUMNS); empty cells where nothing was recorded."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow(["" if v is None else (f"{v:.3f}" if isinstance(v, float) else v) for v in astuple(r)])
    return out.getvalue()


_UNSAFE = re.compile(r"[^\w.\- ]+")


def _safe(name: str, fallback: str) -> str:
    """A name usable as one path component on every system: no separators, no leading dot."""
    text = _UNSAFE.sub("_", name).strip(" .")[:80]
    return text or fallback


def class_folders(class_names: Sequence[str]) -> list[str]:
    """A folder name per class: the class name with unsafe characters replaced, made unique."""
    out: list[str] = []
    for c, name in enumerate(class_names):
        folder = _safe(name, f"class_{c}")
        while folder.lower() in (f.lower() for f in out):
            folder = f"{folder}_{c}"
        out.append(folder)
    return out


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    pixels = np.clip(np.rint(np.asarray(image, np.float64) * 255.0), 0, 255).astype(np.uint8)
    b = io.BytesIO()
    Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB").save(b, "PNG")
    return b.getvalue()


def member_name(row: LabelRow, folder: str) -> str:
    """``folder/<pool index>[_<original file's stem>].png`` (``audit<index>`` for the audit set)."""
    stem = ""
    if row.file_name:
        base = row.file_name.replace("\\", "/").rsplit("/", 1)[-1]
        stem = "_" + _safe(base.rsplit(".", 1)[0], "")
    number = f"audit{row.audit_index:04d}" if row.pool_index is None else f"{row.pool_index:06d}"
    return f"{folder}/{number}{stem.rstrip('_')}.png"


def labels_zip(rows: Sequence[LabelRow], dataset: Dataset) -> bytes:
    """A .zip of the labelled pool images as PNG files, one folder per class (only classes with
    a label have a folder; ``image_dataset_from_directory`` then numbers the classes it finds)."""
    folders = class_folders(dataset.class_names)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:  # PNG is compressed already
        for r in rows:
            x, i = (dataset.x_test, r.audit_index) if r.pool_index is None else (dataset.x_pool, r.pool_index)
            image = dataset.display_images(x[i: i + 1])[0]
            z.writestr(member_name(r, folders[r.class_index]), _png(image))
    return out.getvalue()
