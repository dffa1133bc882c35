"""Sweeps: every cell of a grid of configs, one result file each, run on worker processes.

A sweep spec is a TOML file::

    name = "strategies on digits"
    [base]                      # ExperimentConfig fields shared by every cell (an axis overrides them)
    dataset = "digits"
    rounds = 20
    [axes]                      # fields to cross: one cell per combination
    strategy = ["random", "margin", "entropy"]
    seed = [0, 1, 2, 3, 4]

``[[grid]]`` tables (each one an ``[axes]``) list several grids whose cells are pooled, for
axes that only make sense together (``hybrid_fraction`` only matters to ``hybrid``); a cell
that two grids both produce runs once.

Every cell is an :class:`~alcore.engine.loop.Experiment` in a Dask worker process: a
``distributed.LocalCluster`` of ``workers`` processes, or an existing cluster at a scheduler
address. Dask schedules, retries lost workers and reports errors; nothing here is a
scheduler. The client writes each finished cell's result file (atomically) into the output
folder, so a remote cluster needs no shared disk; local workers also save their cell after
every round, so an interrupted sweep continues mid-cell. Re-running a spec skips the cells
whose file is complete with the same settings.

Paired design: a cell's initial labels, initial weights, validation splits and candidate
subsets all derive from its seed (see :mod:`alcore.engine.loop`), so within a seed every strategy
starts from the same labels and the same weights, whichever worker runs it.
"""
from __future__ import annotations

import itertools
import math
import os
import re
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alcore.config import ExperimentConfig, with_none

MAX_CELLS = 100_000  # a typo like seed = [0, ..., 99999] x 20 strategies is refused, not queued
PLUGIN = "alcore-sweep"
# Config fields holding paths: relative ones in a spec are relative to the spec's folder.
PATH_FIELDS = ("data_dir", "data_file")


class SweepSpecError(ValueError):
    """A spec that cannot be run; the message names the file, the field and the problem."""


class SweepSpec(BaseModel):
    """What a spec file holds (validated; unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    description: str = ""
    base: dict[str, Any] = Field(default_factory=dict)
    axes: Optional[dict[str, list[Any]]] = None
    grid: Optional[list[dict[str, list[Any]]]] = None

    @field_validator("base")
    @classmethod
    def _known_base(cls, v):
        unknown = sorted(set(v) - set(ExperimentConfig.model_fields))
        if unknown:
            raise ValueError(f"unknown config field(s) in [base]: {', '.join(unknown)}")
        return v

    @model_validator(mode="after")
    def _one_grid(self):
        if (self.axes is None) == (self.grid is None):
            raise ValueError("give the cells as one [axes] table or as [[grid]] tables (not both, not neither)")
        for i, axes in enumerate(self.grids()):
            where = "[axes]" if self.axes is not None else f"[[grid]] number {i + 1}"
            if not axes:
                raise ValueError(f"{where} is empty: name at least one config field to vary")
            for name, values in axes.items():
                if name not in ExperimentConfig.model_fields:
                    raise ValueError(f"{where}: unknown config field {name!r}")
                if not values:
                    raise ValueError(f"{where}: {name} has no values")
                if len({repr(x) for x in values}) != len(values):
                    raise ValueError(f"{where}: {name} lists a value twice")
        return self

    def grids(self) -> list[dict[str, list[Any]]]:
        return [self.axes] if self.axes is not None else list(self.grid or [])


@dataclass(frozen=True)
class Cell:
    """One run of a sweep: its config, the axis values that make it, its file's stem."""

    name: str
    config: ExperimentConfig
    axes: tuple[tuple[str, Any], ...]

    def describe(self) -> str:
        return ", ".join(f"{k}={_value_text(v)}" for k, v in self.axes)


def _value_text(v) -> str:
    if isinstance(v, (list, tuple)):
        return "-".join(_value_text(x) for x in v)
    if isinstance(v, float):
        return format(v, "g")
    return str(v)


def _stem_part(v) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", _value_text(v)).strip("-") or "none"


def load_spec(source: Union[str, os.PathLike]) -> tuple[SweepSpec, list[Cell]]:
    """Read a spec file and expand it into validated cells (nothing runs yet)."""
    import tomllib

    path = Path(source)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepSpecError(f"{path}: no such spec file") from None
    except UnicodeDecodeError as e:
        raise SweepSpecError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise SweepSpecError(f"{path}: not valid TOML: {e}") from None
    try:
        spec = SweepSpec(**raw)
    except ValidationError as e:
        raise SweepSpecError(f"{path}: " + "; ".join(_error_lines(e))) from None
    return spec, expand(spec, relative_to=path.parent, where=str(path))


def _error_lines(e: ValidationError) -> list[str]:
    out = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        out.append(f"{loc}: {msg}" if loc else msg)
    return out


def expand(spec: SweepSpec, *, relative_to: Optional[Path] = None, where: str = "spec") -> list[Cell]:
    """The cells of ``spec``: each grid's cartesian product in axis order, grids in order,
    a config that an earlier cell already has left out. Every config is validated here,
    so a bad value is reported before anything runs."""
    base = dict(spec.base)
    for key in PATH_FIELDS:
        if base.get(key) and relative_to is not None and not Path(base[key]).expanduser().is_absolute():
            base[key] = str((relative_to / Path(base[key])).resolve())
    total = sum(math.prod(len(v) for v in axes.values()) for axes in spec.grids())
    if total > MAX_CELLS:
        raise SweepSpecError(f"{where}: {total} cells; a sweep may have at most {MAX_CELLS}")
    cells: list[Cell] = []
    seen: dict[ExperimentConfig, str] = {}
    names: set[str] = set()
    for axes in spec.grids():
        keys = list(axes)
        for values in itertools.product(*(axes[k] for k in keys)):
            combo = tuple(zip(keys, values))
            fields = dict(base)
            for k, v in combo:
                if k in PATH_FIELDS and v and relative_to is not None and not Path(v).expanduser().is_absolute():
                    v = str((relative_to / Path(v)).resolve())
                fields[k] = v
            label = ", ".join(f"{k}={_value_text(v)}" for k, v in combo)
            try:
                cfg = ExperimentConfig(**with_none(fields))
            except ValidationError as e:
                raise SweepSpecError(f"{where}: cell {label}: " + "; ".join(_error_lines(e))) from None
            if cfg in seen:
                continue
            name = "__".join(f"{k}={_stem_part(v)}" for k, v in combo)
            if name in names:  # two grids with the same axes but different values after cleaning
                name = f"{name}__{len(cells)}"
            names.add(name)
            seen[cfg] = name
            cells.append(Cell(name=name, config=cfg, axes=combo))
    return cells


# ----------------------------------------------------------------- result files

@dataclass
class CellFile:
    """What the output folder already holds for a cell."""

    state: str  # "missing" | "complete" | "partial" | "other_settings" | "unreadable"
    result: Any = None  # the RunResult for "complete" / "partial"
    problem: str = ""


def cell_path(out: Union[str, os.PathLike], cell: Cell) -> Path:
    return Path(out) / f"{cell.name}.json"


def error_path(out: Union[str, os.PathLike], cell: Cell) -> Path:
    return Path(out) / f"{cell.name}.error.txt"


def inspect_cell_file(out: Union[str, os.PathLike], cell: Cell) -> CellFile:
    """Whether ``cell``'s file is complete with the cell's settings (skip it), a stopped run
    of them (continue it), or something else (run the cell afresh, overwriting it)."""
    from alcore.engine.loop import _resolve
    from alcore.results.records import ResultFileError, load_result

    path = cell_path(out, cell)
    if not path.exists():
        return CellFile("missing")
    try:
        res = load_result(path)
    except ResultFileError as e:
        return CellFile("unreadable", problem=str(e))
    if not res.config.same_experiment(_resolve(cell.config)):
        return CellFile("other_settings", problem="made with other settings")
    if res.status == "complete":
        return CellFile("complete", res)
    if res.config.warm_start:  # cannot be continued from its file (weights are not saved)
        return CellFile("other_settings", problem="a stopped warm-start run cannot be continued")
    return CellFile("partial", res)


# ----------------------------------------------------------------- the worker side

def _worker_caches():
    """This worker process's dataset and model caches (see :mod:`alcore.sweep.worker`)."""
    from alcore.sweep.worker import WorkerCaches

    try:
        from distributed import get_worker

        plugin = get_worker().plugins.get(PLUGIN)
    except ValueError:  # not on a Dask worker: a direct call (tests, debugging)
        plugin = None
    return (plugin or WorkerCaches()).ready()


def run_cell(cell: Cell, checkpoint: Optional[str] = None, partial=None) -> dict:
    """Run one cell to completion where it is called (a Dask worker) and return
    ``{"result": RunResult | None, "error": str, "traceback": str, "seconds": {...}}``.

    ``checkpoint``: a file to rewrite after every round (local workers share the client's
    disk); ``partial``: a stopped RunResult of this cell to continue instead of starting.
    Errors are caught and returned, so the client can report them and go on."""
    t_task = time.perf_counter()
    seconds = {"import": 0.0, "data": 0.0, "run": 0.0, "total": 0.0}
    first_import = "tensorflow" not in sys.modules
    try:
        t0 = time.perf_counter()
        from alcore import _tf  # noqa: F401  (TensorFlow, configured; seconds on a worker's first cell)
        from alcore.engine.loop import Experiment
        from alcore.results.records import save_result
        seconds["import"] = time.perf_counter() - t0 if first_import else 0.0

        caches = _worker_caches()
        t0 = time.perf_counter()
        dataset = caches.datasets.get(cell.config)
        seconds["data"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        if partial is not None:
            from alcore.engine.loop import _resolve

            # its config as this machine resolves it (the data may sit elsewhere than where it was made)
            partial = partial.model_copy(update={"config": _resolve(cell.config)})
            exp = Experiment.resume(partial, dataset=dataset, cache=caches.trainers)
        else:
            exp = Experiment(cell.config, dataset=dataset, cache=caches.trainers)
        for _ in exp:
            if checkpoint:
                save_result(exp.result(), checkpoint)
        seconds["run"] = time.perf_counter() - t0
        result, error, tb = exp.result(), "", ""
    except Exception as e:  # noqa: BLE001  (reported per cell; the other cells go on)
        result, error, tb = None, f"{type(e).__name__}: {e}", traceback.format_exc()
    seconds["total"] = time.perf_counter() - t_task
    return {"result": result, "error": error, "traceback": tb, "seconds": seconds,
            "pid": os.getpid(), "first_import": first_import}


# ----------------------------------------------------------------- the client side

@dataclass
class CellOutcome:
    cell: Cell
    status: str  # "done" | "skipped" | "failed"
    error: str = ""
    seconds: dict = field(default_factory=dict)
    resumed_from: int = 0  # rounds taken over from a stopped file
    pid: Optional[int] = None


@dataclass
class SweepReport:
    cells: list[Cell]
    outcomes: list[CellOutcome]
    cluster_start_seconds: float = 0.0
    wall_seconds: float = 0.0
    workers: int = 0
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def local_cluster(workers: int, *, threads: Optional[int] = None, quiet: bool = True):
    """A ``distributed.LocalCluster`` of ``workers`` single-task processes whose TensorFlow
    uses ``threads`` threads each (default: the CPUs shared out), so N workers do not
    oversubscribe the cores."""
    import logging

    from distributed import LocalCluster

    if workers < 1:
        raise ValueError(f"workers must be 1 or more, got {workers}")
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    # dashboard_address ":0": any free port, so two sweeps at once do not clash over 8787
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                        silence_logs=logging.ERROR if quiet else logging.WARNING,
                        env={"ALCORE_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "2",
                             "OMP_NUM_THREADS": str(threads)})


def run_sweep(cells: list[Cell], out: Union[str, os.PathLike], *, workers: Optional[int] = None,
              scheduler: Optional[str] = None, threads: Optional[int] = None, checkpoint: Optional[bool] = None,
              progress: Optional[Callable[[CellOutcome, "SweepReport"], None]] = None,
              on_start: Optional[Callable[[int, list[CellOutcome]], None]] = None) -> SweepReport:
    """Run every cell whose file in ``out`` is not complete; return what happened to each.

    Exactly one of ``workers`` (a LocalCluster of that many processes) or ``scheduler``
    (the address of a running Dask scheduler) says where; ``threads``: TensorFlow threads per
    local worker (default: the CPUs shared out). ``checkpoint`` (default: on for
    local workers) has workers save their cell after every round. ``on_start(n_to_run,
    skipped)`` is called once the cluster is up; ``progress(outcome, report)`` after every
    finished or failed cell. A KeyboardInterrupt stops the sweep with every finished cell's
    file written; the report says ``interrupted``."""
    from distributed import Client, as_completed

    from alcore.sweep.worker import WorkerCaches
    from alcore.results.records import clean_stale_temp

    if (workers is None) == (scheduler is None):
        raise ValueError("give either workers (local processes) or scheduler (a Dask cluster's address)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clean_stale_temp(out)  # what a sweep killed mid-save left
    checkpoint = (scheduler is None) if checkpoint is None else checkpoint
    report = SweepReport(cells=cells, outcomes=[])
    todo: list[tuple[Cell, CellFile]] = []
    for cell in cells:
        found = inspect_cell_file(out, cell)
        if found.state == "complete":
            report.outcomes.append(CellOutcome(cell, "skipped"))
        else:
            todo.append((cell, found))
    if not todo:
        if on_start is not None:
            on_start(0, list(report.outcomes))
        return report
    t_wall = time.perf_counter()
    cluster = None
    if scheduler is None:
        cluster = local_cluster(workers, threads=threads)
        client = Client(cluster)
    else:
        client = Client(scheduler, timeout="30s")
    try:
        client.register_plugin(WorkerCaches(), name=PLUGIN)
        client.wait_for_workers(1 if scheduler else workers)
        report.workers = len(client.scheduler_info(n_workers=-1)["workers"])
        report.cluster_start_seconds = time.perf_counter() - t_wall
        if on_start is not None:
            on_start(len(todo), list(report.outcomes))
        futures = {}
        for priority, (cell, found) in enumerate(todo):
            partial = found.result if found.state == "partial" else None  # sent along: no shared disk needed
            fut = client.submit(run_cell, cell, str(cell_path(out, cell)) if checkpoint else None, partial,
                                key=f"alcore-{cell.name}-{uuid.uuid4().hex[:8]}", pure=False,
                                priority=-priority, retries=0)
            futures[fut] = (cell, len(partial.rounds) if partial is not None else 0)
        try:
            for fut in as_completed(list(futures)):
                cell, resumed = futures[fut]
                outcome = _finish_cell(fut, cell, resumed, out)
                report.outcomes.append(outcome)
                if progress is not None:
                    progress(outcome, report)
        except KeyboardInterrupt:
            report.interrupted = True
    finally:
        report.wall_seconds = time.perf_counter() - t_wall
        client.close()
        if cluster is not None:
            cluster.close()
    return report


def _finish_cell(fut, cell: Cell, resumed: int, out: Path) -> CellOutcome:
    """What became of a finished future's cell: its result file written, or its error."""
    from alcore.results.records import save_result

    if fut.status == "error":  # the worker died (e.g. out of memory) rather than the cell failing
        exc = fut.exception()
        outcome = CellOutcome(cell, "failed", error=f"{type(exc).__name__}: {exc}")
        _write_error(out, cell, outcome.error, "")
        return outcome
    got = fut.result()
    outcome = CellOutcome(cell, "failed" if got["result"] is None else "done",
                          error=got["error"], seconds=got["seconds"], resumed_from=resumed, pid=got["pid"])
    if got["result"] is not None:
        save_result(got["result"], cell_path(out, cell))
        error_path(out, cell).unlink(missing_ok=True)
    else:
        _write_error(out, cell, got["error"], got["traceback"])
    return outcome


def _write_error(out: Path, cell: Cell, error: str, tb: str) -> None:
    from alcore.results.records import atomic_write

    text = f"cell {cell.describe()}\n{error}\n\n{tb}".rstrip() + "\n"
    atomic_write(error_path(out, cell), text.encode("utf-8"))
