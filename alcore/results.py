"""Round records and the versioned JSON result file.

The same pydantic models are what :class:`alcore.loop.Experiment` streams and what
a result file stores, so the dashboard, the CLI and an uploaded file from another
machine all see the same fields. Files are validated on load (a malformed file, a
missing field or an unknown ``schema_version`` gets an error naming the file and
the problem) and written atomically.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import __version__
from .config import ExperimentConfig

SCHEMA_VERSION = 1
MAX_FILE_BYTES = 64 * 1024 * 1024


class ResultFileError(ValueError):
    """A result file that cannot be used; the message names the file and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageRef(_Strict):
    """One pool image in a gallery: its pool index, prediction and truth."""

    index: int = Field(ge=0)
    predicted: int = Field(ge=0)
    confidence: float = Field(ge=0.0, le=1.0)
    label: int = Field(ge=0)
    score: Optional[float] = None


class PoolSummary(_Strict):
    """Confidence (highest class probability) over the unlabeled images scored."""

    n_scored: int = Field(ge=0)
    mean_confidence: float
    median_confidence: float
    low_confidence_fraction: float = Field(description="share with confidence below 0.5")
    mean_entropy: float
    mean_uncertainty: Optional[float] = Field(None, description="mean of 1 - confidence")
    changed_fraction: Optional[float] = Field(
        None, description="share of these images whose predicted class changed since the last round")


class RoundResult(_Strict):
    """One round: train on the current labels, evaluate, pick the next batch."""

    round: int = Field(ge=0)
    n_labeled: int = Field(ge=1, description="labels used so far, validation labels included")
    n_train: int = Field(ge=1)
    n_validation: int = Field(ge=0)
    test_accuracy: float = Field(ge=0.0, le=1.0)
    test_loss: float = Field(ge=0.0)
    confusion: list[list[int]]
    epochs: int = Field(ge=0)
    validation_loss: Optional[float] = None
    train_seconds: float = Field(ge=0.0)
    score_seconds: float = Field(ge=0.0)
    select_seconds: float = Field(ge=0.0)
    query_seconds: float = Field(ge=0.0)
    eval_seconds: float = Field(ge=0.0)
    selected: list[int] = Field(default_factory=list, description="pool indices picked this round")
    selected_scores: list[float] = Field(default_factory=list)
    selected_predicted: list[int] = Field(default_factory=list)
    pool: Optional[PoolSummary] = None
    most_confident: list[ImageRef] = Field(default_factory=list)
    least_confident: list[ImageRef] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self):
        if len(self.selected_scores) != len(self.selected):
            raise ValueError(f"round {self.round}: {len(self.selected)} selected indices but "
                             f"{len(self.selected_scores)} scores")
        if self.selected_predicted and len(self.selected_predicted) != len(self.selected):
            raise ValueError(f"round {self.round}: selected_predicted has the wrong length")
        k = len(self.confusion)
        if any(len(row) != k for row in self.confusion):
            raise ValueError(f"round {self.round}: confusion matrix is not square")
        if any(v < 0 for row in self.confusion for v in row):
            raise ValueError(f"round {self.round}: confusion matrix holds negative counts")
        return self


class Environment(_Strict):
    alcore: str
    tensorflow: Optional[str] = None
    keras: Optional[str] = None
    numpy: str
    python: str
    platform: str


class DatasetInfo(_Strict):
    name: str
    source: str = ""
    n_pool: int = Field(ge=1)
    n_test: int = Field(ge=1)
    n_classes: int = Field(ge=2)
    class_names: list[str]
    image_shape: list[int]


class RunResult(_Strict):
    """A whole run: what a result file holds."""

    schema_version: Literal[1] = SCHEMA_VERSION
    created: str
    status: Literal["running", "stopped", "complete"]
    stop_reason: str = ""
    config: ExperimentConfig
    environment: Environment
    dataset: DatasetInfo
    initial_indices: list[int]
    validation_indices: list[int] = Field(default_factory=list)
    n_parameters: Optional[int] = None
    rounds: list[RoundResult]

    @model_validator(mode="after")
    def _consistent(self):
        prev = 0
        for i, r in enumerate(self.rounds):
            if r.round != i:
                raise ValueError(f"rounds[{i}] says round {r.round}; rounds must be numbered 0, 1, 2, ...")
            if r.n_labeled < prev:
                raise ValueError(f"round {i}: n_labeled went down from {prev} to {r.n_labeled}")
            prev = r.n_labeled
            if len(r.confusion) != self.dataset.n_classes:
                raise ValueError(f"round {i}: confusion matrix is {len(r.confusion)}x{len(r.confusion)} "
                                 f"for {self.dataset.n_classes} classes")
            if any(j >= self.dataset.n_pool for j in r.selected):
                raise ValueError(f"round {i}: a selected index is outside the pool of {self.dataset.n_pool}")
        if len(self.dataset.class_names) != self.dataset.n_classes:
            raise ValueError("dataset.class_names does not match dataset.n_classes")
        return self

    # convenient views
    @property
    def label(self) -> str:
        return run_label(self.config)

    def curve(self) -> tuple[list[int], list[float]]:
        return [r.n_labeled for r in self.rounds], [r.test_accuracy for r in self.rounds]


def strategy_label(config: ExperimentConfig) -> str:
    """The strategy as users name it: 'margin', 'hybrid 30%'."""
    if config.strategy == "hybrid":
        return f"hybrid {config.hybrid_fraction:.0%}"
    return config.strategy


def run_label(config: ExperimentConfig) -> str:
    """One run: 'margin (seed 0)'."""
    return f"{strategy_label(config)} (seed {config.seed})"


def environment() -> Environment:
    import sys

    import numpy

    tfv = kv = None
    if "tensorflow" in sys.modules:
        tfv = sys.modules["tensorflow"].__version__
    if "keras" in sys.modules:
        kv = sys.modules["keras"].__version__
    return Environment(alcore=__version__, tensorflow=tfv, keras=kv, numpy=numpy.__version__,
                       python=platform.python_version(), platform=platform.platform())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------ writing

def to_json(result: RunResult) -> str:
    return result.model_dump_json(indent=1)


def save_result(result: RunResult, path: Union[str, os.PathLike]) -> Path:
    """Write atomically: a temporary file in the same folder, fsync, then rename, so
    a crash mid-write leaves any previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = to_json(result).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ------------------------------------------------------------------------ reading

def _format_validation(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "missing":
            parts.append(f"missing field '{loc}'")
        elif err["type"] == "extra_forbidden":
            parts.append(f"unknown field '{loc}'")
        else:
            parts.append(f"'{loc}': {msg}")
    more = len(e.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more problem(s)" if more > 0 else "")


def _reject_constant(value):
    raise ValueError(f"{value} is not a number JSON allows")


def load_result(source: Union[str, os.PathLike, bytes, bytearray], name: Optional[str] = None) -> RunResult:
    """Read and validate a result file from a path or from bytes (an upload).

    Raises :class:`ResultFileError` naming the file and the problem."""
    if isinstance(source, (bytes, bytearray)):
        raw = bytes(source)
        name = name or "uploaded file"
    else:
        name = name or os.path.basename(str(source))
        try:
            size = os.path.getsize(source)
            if size > MAX_FILE_BYTES:
                raise ResultFileError(f"{name}: {size} bytes is over the {MAX_FILE_BYTES}-byte limit for result files")
            raw = Path(source).read_bytes()
        except OSError as e:
            raise ResultFileError(f"{name}: cannot be read ({e.strerror or e})") from e
    if len(raw) > MAX_FILE_BYTES:
        raise ResultFileError(f"{name}: {len(raw)} bytes is over the {MAX_FILE_BYTES}-byte limit for result files")
    if not raw.strip():
        raise ResultFileError(f"{name}: the file is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ResultFileError(f"{name}: not UTF-8 text (byte {e.start}); a result file is JSON") from e
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError as e:
        raise ResultFileError(f"{name}: JSON nested too deeply") from e
    except ValueError as e:
        raise ResultFileError(f"{name}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise ResultFileError(f"{name}: expected a JSON object at the top level, got {type(data).__name__}")
    version = data.get("schema_version")
    if version is None:
        raise ResultFileError(f"{name}: missing 'schema_version'; is this an alcore result file?")
    if version != SCHEMA_VERSION:
        raise ResultFileError(f"{name}: unknown schema_version {version!r}; this alcore "
                              f"({__version__}) reads version {SCHEMA_VERSION}")
    try:
        return RunResult.model_validate(data)
    except ValidationError as e:
        raise ResultFileError(f"{name}: {_format_validation(e)}") from e
    except RecursionError as e:
        raise ResultFileError(f"{name}: JSON nested too deeply") from e


# ---------------------------------------------------------------------------- CSV

CSV_COLUMNS = ("strategy", "seed", "round", "n_labeled", "test_accuracy", "test_loss",
               "train_seconds", "query_seconds")


def curve_rows(result: RunResult) -> list[dict]:
    c = result.config
    return [{"strategy": c.strategy, "seed": c.seed, "round": r.round, "n_labeled": r.n_labeled,
             "test_accuracy": r.test_accuracy, "test_loss": r.test_loss,
             "train_seconds": r.train_seconds, "query_seconds": r.query_seconds}
            for r in result.rounds]


def curves_csv(results: list[RunResult]) -> str:
    """The learning curves of one or more runs as CSV text, one row per round."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for res in results:
        for row in curve_rows(res):
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v)
                        for k, v in row.items()})
    return buf.getvalue()
