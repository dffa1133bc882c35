"""Command line: ``python -m alcore run|race|sweep|summarize|autolabel|csv``.

``run``'s flags are generated from :class:`ExperimentConfig`, so every flag is a
config field with dashes (``--batch-size`` is ``batch_size``) and its help text is
the field's description.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import typing
from pathlib import Path
from typing import Optional

from pydantic import ValidationError

from alcore.config import ExperimentConfig


def _flag_type(annotation):
    """(argparse type, choices, is_bool) for a config field's annotation."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Union and len(args) == 1:
        return _flag_type(args[0])
    if origin is typing.Literal:
        return str, list(typing.get_args(annotation)), False
    if annotation is bool:
        return None, None, True
    if annotation in (int, float):
        return annotation, None, False
    return str, None, False


def _optional(typ):
    """An argparse type that also takes 'none' (unset an optional field)."""
    def parse(text: str):
        return None if text.strip().lower() == "none" else typ(text)

    parse.__name__ = typ.__name__
    return parse


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    from alcore.strategies.base import STRATEGIES

    for name, field in ExperimentConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        typ, choices, is_bool = _flag_type(field.annotation)
        default = field.default
        help_text = (field.description or "") + (f" (default: {default})" if default not in (None, ()) else "")
        help_text = help_text.replace("%", "%%")
        if is_bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)
            continue
        if name == "strategy":
            choices = list(STRATEGIES)
        if typ in (int, float) and type(None) in typing.get_args(field.annotation):
            typ = _optional(typ)
            help_text += "; 'none' unsets it"
        parser.add_argument(flag, dest=name, type=typ, choices=choices, default=argparse.SUPPRESS,
                            metavar=None if choices else name.upper(), help=help_text)


def _add_race_flags(parser: argparse.ArgumentParser) -> None:
    """The race's own fields (RaceConfig's, besides the base config) as flags of the same names."""
    from alcore.config import RaceConfig
    from alcore.strategies.base import STRATEGIES

    f = RaceConfig.model_fields
    parser.add_argument("--strategies", nargs="+", choices=list(STRATEGIES), default=["margin", "random"],
                        help="the strategies raced, each on every seed")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="the seeds (a list: 0 1 2)")
    parser.add_argument("--ceiling", action=argparse.BooleanOptionalAction, default=False,
                        help=f["ceiling"].description.replace("%", "%%"))
    parser.add_argument("--ceiling-candidates", dest="ceiling_candidates", type=_optional(int), default=None,
                        help=f["ceiling_candidates"].description + "; 'none' unsets it")
    parser.add_argument("--ceiling-validation", dest="ceiling_validation", type=int,
                        default=f["ceiling_validation"].default, help=f["ceiling_validation"].description)


def parse_assignments(items: list[str]) -> dict:
    """``["max_epochs=20", "validation=none"]`` -> ``{"max_epochs": 20, "validation": "none"}``:
    each value is read as JSON, else kept as a string (benchmarks' ``--set FIELD=VALUE``)."""
    import json

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected FIELD=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _config_from_args(ns: argparse.Namespace) -> ExperimentConfig:
    fields = {k: v for k, v in vars(ns).items() if k in ExperimentConfig.model_fields}
    return ExperimentConfig(**fields)


def _error_text(e: Exception) -> str:
    if isinstance(e, ValidationError):
        parts = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            flag = ("--" + loc.replace("_", "-")) if loc else "config"
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"{flag}: {msg}" + (f" (got {err['input']!r})" if loc and err["type"] != "missing" else ""))
        return "; ".join(parts)
    return str(e)


def _say_what_the_strategy_chose(r, cfg: ExperimentConfig, noted: bool) -> bool:
    """Print what the strategy chose on its own in round ``r``: ProbCover's radius and a set UHerding
    temperature once (they are the run's), a calibrated temperature every round. Whether the run's
    setting has been said (``noted``)."""
    from alcore.strategies.coverage import ProbCoverStrategy, UHerdingStrategy

    if r.probcover_radius is not None and not noted:
        print(f"probcover: ball radius {r.probcover_radius:g}, {ProbCoverStrategy.radius_origin(cfg)}", flush=True)
        return True
    if r.uherding_calibration is not None:  # calibrated this round: T and how
        print(f"uherding: {r.uherding_calibration.text(r.uherding_temperature)}", flush=True)
    elif r.uherding_temperature is not None and not noted:
        print(f"uherding: temperature {r.uherding_temperature:g}, {UHerdingStrategy.temperature_origin(cfg)}",
              flush=True)
        return True
    return noted


def cmd_run(ns: argparse.Namespace) -> int:
    from alcore.data.datasets import DatasetUnavailableError, dataset_title

    from alcore.engine.loop import Experiment
    from alcore.results.records import ResultFileError, curves_csv, load_result, save_result

    t_start = time.perf_counter()
    if ns.resume:
        given = sorted(k for k in vars(ns) if k in ExperimentConfig.model_fields)
        if given:
            print(f"error: --resume continues a run with the settings in its file; drop "
                  f"{', '.join('--' + k.replace('_', '-') for k in given)}", file=sys.stderr)
            return 2
        try:
            with EmbeddingBar(disable=ns.no_progress) as bar:
                exp = Experiment.resume(_data_beside(load_result(ns.resume), ns.resume), progress=bar)
        except (ResultFileError, ValueError, DatasetUnavailableError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if exp.done:
            print(f"error: {ns.resume}: the run is complete ({exp.stop_reason}); nothing to continue",
                  file=sys.stderr)
            return 2
        ns.out = ns.out or ns.resume
        cfg = exp.config
        print(f"continuing {ns.resume} after round {exp.rounds[-1].round} "
              f"({exp.rounds[-1].n_labeled} labels)" if exp.rounds else f"continuing {ns.resume}", flush=True)
    else:
        try:
            cfg = _config_from_args(ns)
        except ValueError as e:
            print(f"error: {_error_text(e)}", file=sys.stderr)
            return 2
        try:
            with EmbeddingBar(disable=ns.no_progress) as bar:
                exp = Experiment(cfg, progress=bar)
        except (ValueError, DatasetUnavailableError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if exp.embedding_report is not None:
            print(exp.embedding_report.text() + (f" ({exp.embedding_report.path})"
                                                 if exp.embedding_report.source != "file" else ""), flush=True)
    ds = exp.dataset
    print(f"{dataset_title(ds.name)}: pool {len(ds.y_pool)}, test {len(ds.y_test)}, {ds.n_classes} classes, "
          f"images {'x'.join(map(str, ds.image_shape))}; model {cfg.model}, strategy {cfg.strategy}, "
          f"seed {cfg.seed}", flush=True)
    _print_image_report(cfg)
    out = Path(ns.out) if ns.out else None
    try:
        noted = False
        for r in exp:
            print(f"round {r.round:3d}  labels {r.n_labeled:6d}  test_accuracy {r.test_accuracy:.4f}  "
                  f"test_loss {r.test_loss:.4f}  epochs {r.epochs:4d}  train {r.train_seconds:6.3f}s  "
                  f"query {r.query_seconds:6.3f}s", flush=True)
            noted = _say_what_the_strategy_chose(r, cfg, noted)
            if out is not None and ns.save_every_round:
                save_result(exp.result(), out)
    except KeyboardInterrupt:
        print("interrupted: keeping the finished rounds", file=sys.stderr)
        exp.status = "stopped"
    total = time.perf_counter() - t_start
    res = exp.result()
    print(f"done: {exp.stop_reason or 'stopped'}; final test_accuracy "
          f"{res.rounds[-1].test_accuracy:.4f} with {res.rounds[-1].n_labeled} labels; {total:.1f}s",
          flush=True)
    if out is not None:
        save_result(res, out)
        print(f"wrote {out}")
    if ns.csv:
        Path(ns.csv).write_text(curves_csv([res]))
        print(f"wrote {ns.csv}")
    return 0 if exp.done else 130


def cmd_race(ns: argparse.Namespace) -> int:
    """Race strategies on seeds (a RaceConfig), optionally with the oracle ceiling of every seed;
    one result file per run in --out, and (with the ceiling) the share of its gain each captures."""
    from alcore.analysis.ceiling import gain_captured
    from alcore.config import RaceConfig
    from alcore.data.datasets import DatasetUnavailableError
    from alcore.engine.race import Race
    from alcore.results.records import save_result

    try:
        cfg = _config_from_args(ns)
        setup = RaceConfig(base=cfg, strategies=ns.strategies, seeds=ns.seeds, ceiling=ns.ceiling,
                           ceiling_candidates=ns.ceiling_candidates, ceiling_validation=ns.ceiling_validation)
    except ValueError as e:
        print(f"error: {_error_text(e)}", file=sys.stderr)
        return 2
    try:
        with EmbeddingBar(disable=ns.no_progress) as bar:
            race = Race.of(setup, progress=bar)
    except (ValueError, DatasetUnavailableError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    seconds = {id(e): 0.0 for e in race.runs}
    try:
        while not race.done:
            t0 = time.perf_counter()
            r = race.step()
            exp = race.last[0]
            seconds[id(exp)] += time.perf_counter() - t0
            name = exp.label if exp in race.ceilings else f"{exp.config.strategy} (seed {exp.config.seed})"
            print(f"{name:<28} round {r.round:3d}  labels {r.n_labeled:6d}  test_accuracy {r.test_accuracy:.4f}",
                  flush=True)
    except KeyboardInterrupt:
        print("interrupted: keeping the finished rounds", file=sys.stderr)
    results = race.results() + race.ceiling_results()
    if ns.out:
        out = Path(ns.out)
        for res in results:
            name = "ceiling" if res.ceiling is not None else res.config.strategy
            save_result(res, out / f"{name}-seed{res.config.seed}.json")
        print(f"wrote {len(results)} result files to {out}")
    for e in race.ceilings:
        print(f"{e.label}: {len(e.rounds)} rounds in {seconds[id(e)]:.1f} s")
    if race.ceilings:
        table = gain_captured(results)
        print("share of the oracle's gain over random captured (mean over seeds, 95% t interval):")
        for _, row in table.iterrows():
            interval = (f" [{row['share_low']:.0%}, {row['share_high']:.0%}]"
                        if row["share_low"] == row["share_low"] else "")
            print(f"  {row['group']:<20} {row['share_mean']:.0%}{interval} over {row['seeds']} seed(s)"
                  + (f"  ({row['note']})" if row["note"] else ""))
    return 0 if race.done else 130


class EmbeddingBar:
    """A progress bar (tqdm, on standard error) for computing an embedding: one bar per stage
    (training the encoder, embedding the images, backbone features), the loss beside it."""

    def __init__(self, disable: bool = False):
        self.disable = disable
        self.bar = None
        self.stage = None

    def __enter__(self):
        return self

    def __call__(self, p) -> None:
        from tqdm import tqdm

        if p.stage != self.stage:
            self.close()
            self.stage = p.stage
            self.bar = tqdm(total=p.total, desc=p.stage, unit="step" if p.loss is not None else "image",
                            disable=self.disable, dynamic_ncols=True, file=sys.stderr)
        self.bar.update(p.done - self.bar.n)
        if p.loss is not None:
            self.bar.set_postfix(loss=f"{p.loss:.3f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __exit__(self, *exc):
        self.close()
        return False


def _print_image_report(cfg: ExperimentConfig) -> None:
    """For your own images: the layout the loader found, and the files it skipped (on stderr)."""
    if cfg.dataset != "images":
        return
    from alcore.data.images import load_report

    report = load_report(cfg.data_file, cfg.image_size)
    if report is None:
        return
    layout, skipped = report
    print(f"layout: {layout}", flush=True)
    if skipped:
        print("skipped (the other images loaded):\n" + "\n".join(f"  {s}" for s in skipped), file=sys.stderr)


def _load_all(paths: list[str]):
    from alcore.results.records import ResultFileError, load_result

    results, failed = [], 0
    for p in paths:
        try:
            results.append(load_result(p))
        except ResultFileError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
    return results, failed


def cmd_summarize(ns: argparse.Namespace) -> int:
    """Table of metrics per result file, and the mean per strategy over seeds."""
    import numpy as np

    from alcore.analysis.metrics import accuracy_at, curve_drops, labels_to_target, normalized_aulc
    from alcore.strategies.base import strategy_label

    results, failed = _load_all(ns.files)
    if not results:
        return 2
    from alcore.results.records import CEILING

    groups: dict[str, list] = {}
    for res in results:  # an oracle ceiling's file is its own row, never averaged into random's
        groups.setdefault(CEILING if res.ceiling is not None else strategy_label(res.config, percent=False),
                          []).append(res)
    at = ns.at
    head = f"{'strategy':<22}{'runs':>5}{'final_acc':>11}{'aulc':>8}{'drops':>7}"
    if at is not None:
        head += f"{'acc@' + str(at):>11}"
    if ns.target_accuracy is not None:
        head += f"{'labels_to_' + format(round(ns.target_accuracy * 100, 4), 'g') + '%':>18}"  # 0.9: labels_to_90%
    print(head)
    for name, rs in sorted(groups.items()):
        curves = [r.curve() for r in rs]
        final = np.mean([a[-1] for _, a in curves])
        aulc = np.mean([normalized_aulc(n, a) for n, a in curves])
        drops = sum(curve_drops(n, a) for n, a in curves)
        line = f"{name:<22}{len(rs):>5}{final:>11.4f}{aulc:>8.4f}{drops:>7d}"
        if at is not None:
            vals = [accuracy_at(n, a, at) for n, a in curves]
            vals = [v for v in vals if v is not None]
            line += f"{np.mean(vals):>11.4f}" if vals else f"{'-':>11}"
        if ns.target_accuracy is not None:
            hits = [labels_to_target(n, a, ns.target_accuracy) for n, a in curves]
            reached = [h for h in hits if h is not None]
            txt = f"{np.mean(reached):.0f}" if reached else "-"
            if len(reached) < len(hits):
                txt += f" ({len(hits) - len(reached)} never)"
            line += f"{txt:>18}"
        print(line)
    return 1 if failed else 0


def cmd_csv(ns: argparse.Namespace) -> int:
    from alcore.results.records import curves_csv

    results, failed = _load_all(ns.files)
    if not results:
        return 2
    text = curves_csv(results)
    if ns.out:
        Path(ns.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 1 if failed else 0


def cmd_autolabel(ns: argparse.Namespace) -> int:
    """Continue a finished run with confident auto-labelling and report each step."""
    from alcore.engine.autolabel import auto_label
    from alcore.data.datasets import DatasetUnavailableError
    from alcore.engine.loop import Experiment
    from alcore.results.records import ResultFileError, load_result

    try:
        result = load_result(ns.file)
        exp = Experiment.resume(result)
        report = auto_label(exp, ns.per_step, ns.steps, ns.min_confidence)
    except (ResultFileError, ValueError, DatasetUnavailableError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{'step':>4}{'pseudo':>8}{'right (all)':>13}{'right (batch)':>15}{'min conf':>10}{'test_accuracy':>15}")
    for s in report.steps:
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        print(f"{s.step:>4}{s.n_pseudo:>8}{fmt(s.pseudo_accuracy):>13}{fmt(s.batch_accuracy):>15}"
              f"{fmt(s.min_confidence):>10}{s.test_accuracy:>15.4f}")
    print(f"done: {report.stop_reason}; test accuracy change {report.gain:+.4f}")
    return 0


def _data_beside(result, result_path: str):
    """The result with its data file as found here: a file downloaded from the dashboard names
    it without a folder (no server's path), so where that name is not found from the working
    folder, the copy beside the result file. A file whose SHA-256 is not the one the result
    recorded is refused (ValueError)."""
    from alcore.data.datasets import sha256_of_file

    path, sha = result.config.data_file, result.dataset.file_sha256
    if path and not os.path.isabs(path) and not os.path.exists(path):
        beside = os.path.join(os.path.dirname(os.path.abspath(result_path)), path)
        if os.path.exists(beside):
            path = beside
            result = result.model_copy(update={"config": result.config.replace(data_file=beside)})
    if path and sha and os.path.isfile(path) and sha256_of_file(path) != sha:
        raise ValueError(f"{path}: not the file {result.label} was made on (its SHA-256 differs)")
    return result


def _run_dataset(result, data_file: Optional[str]):
    """The dataset a result file was made on, loaded here (``data_file``: this machine's copy)."""
    from alcore.engine.labelling import run_dataset

    cfg = result.config if data_file is None else result.config.replace(data_file=data_file)
    try:
        return run_dataset(result, cfg)
    except ValueError as e:
        if not result.labelled_in_the_loop:
            raise
        raise ValueError(f"{cfg.data_file}: {e}") from e


def cmd_labels(ns: argparse.Namespace) -> int:
    """A run's labels as CSV (standard output or --csv) and, with --zip, its images in class folders."""
    from alcore.data.datasets import DatasetUnavailableError
    from alcore.results.labels import label_rows, labels_csv, labels_zip
    from alcore.results.records import ResultFileError, load_result

    try:
        result = load_result(ns.file)
        ds = _run_dataset(result, ns.data_file)
        rows = label_rows(result, ds)
    except (ResultFileError, ValueError, DatasetUnavailableError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = labels_csv(rows)
    if ns.csv:
        Path(ns.csv).write_text(text)
    elif not ns.zip:
        sys.stdout.write(text)
    if ns.zip:
        Path(ns.zip).write_bytes(labels_zip(rows, ds))
    print(f"{len(rows)} labels of {result.label}" + (f" -> {ns.csv}" if ns.csv else "")
          + (f" -> {ns.zip} (PNG files of the images as the dataset holds them, one folder per class)"
             if ns.zip else ""), file=sys.stderr)
    return 0


def cmd_sweep(ns: argparse.Namespace) -> int:
    """Run every cell of a spec on worker processes or a Dask cluster, with a progress bar."""
    import os

    from alcore.sweep.runner import SweepSpecError, inspect_cell_file, load_spec, run_sweep

    try:
        spec, cells = load_spec(ns.spec)
    except SweepSpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if ns.workers is not None and ns.workers < 1:
        print(f"error: --workers must be 1 or more, got {ns.workers}", file=sys.stderr)
        return 2
    title = spec.name or Path(ns.spec).stem
    if ns.dry_run:
        print(f"{title}: {len(cells)} cells into {ns.out}")
        for cell in cells:
            found = inspect_cell_file(ns.out, cell)
            print(f"  {found.state:<15} {cell.describe()}" + (f"  ({found.problem})" if found.problem else ""))
        return 0
    workers = None if ns.scheduler else (ns.workers or os.cpu_count() or 1)
    where = f"the Dask scheduler at {ns.scheduler}" if ns.scheduler else f"{workers} local worker process(es)"
    print(f"{title}: {len(cells)} cells into {ns.out}, on {where}", flush=True)
    bar = None

    def on_start(n_todo, skipped):
        nonlocal bar
        from tqdm import tqdm

        if skipped:
            print(f"skipping {len(skipped)} cell(s) whose result file is already complete", flush=True)
        bar = tqdm(total=n_todo, unit="cell", desc="cells", disable=ns.no_progress or n_todo == 0,
                   dynamic_ncols=True, postfix={"failed": 0})

    def progress(outcome, report):
        if outcome.status == "done":
            line = f"done    {outcome.cell.describe()}  ({outcome.seconds.get('total', 0):.1f} s"
            line += f", continued after round {outcome.resumed_from - 1})" if outcome.resumed_from else ")"
        else:
            line = f"FAILED  {outcome.cell.describe()}: {outcome.error}"
        if bar is not None and not bar.disable:
            bar.write(line)
            bar.set_postfix(failed=report.count("failed"))
            bar.update(1)
        else:
            print(line, flush=True)

    try:
        report = run_sweep(cells, ns.out, workers=workers, scheduler=ns.scheduler, progress=progress,
                           on_start=on_start)
    except OSError as e:  # scheduler unreachable, output folder not writable
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    done, skipped, failed = report.count("done"), report.count("skipped"), report.count("failed")
    left = len(cells) - done - skipped - failed
    print(f"{done} done, {skipped} already complete, {failed} failed"
          + (f", {left} not run (interrupted: run the same command to continue)" if left else "")
          + f"; {report.wall_seconds:.1f} s")
    for o in report.failed:
        print(f"  failed: {o.cell.describe()}: {o.error}", file=sys.stderr)
    if failed:
        print(f"details in {ns.out}/*.error.txt; run the same command to retry the failed cells", file=sys.stderr)
    return 130 if report.interrupted else (1 if failed else 0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m alcore", description="Active-learning experiments.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one experiment, one progress line per round",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_config_flags(run)
    run.add_argument("--out", help="write the result file (JSON) here")
    run.add_argument("--csv", help="write the learning curve (CSV) here")
    run.add_argument("--save-every-round", action="store_true",
                     help="rewrite --out after every round, so an interrupted run keeps its rounds")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bar while an embedding is computed (self_supervised, pretrained)")
    run.add_argument("--resume", metavar="FILE",
                     help="continue the stopped run in this result file with its own settings; picks are "
                          "the same as an uninterrupted run's (writes back to FILE unless --out is given)")
    run.set_defaults(func=cmd_run)
    rc = sub.add_parser("race", help="race strategies on the same seeds, as the dashboard's Run page does, "
                                     "optionally with the oracle ceiling of every seed (--ceiling)",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_config_flags(rc)
    _add_race_flags(rc)
    rc.add_argument("--out", help="folder for the result files: STRATEGY-seedN.json, ceiling-seedN.json")
    rc.add_argument("--no-progress", action="store_true",
                    help="no progress bar while an embedding is computed (self_supervised, pretrained)")
    rc.set_defaults(func=cmd_race)
    sw = sub.add_parser("sweep", help="run every cell of a TOML spec (config axes crossed), one result "
                                      "file per cell, on local worker processes or a Dask cluster; "
                                      "re-running skips complete cells")
    sw.add_argument("spec", help="the sweep spec (TOML: [base] fields, [axes] or [[grid]] to cross)")
    sw.add_argument("--out", required=True, help="folder for the result files (one per cell)")
    where = sw.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local worker processes (default: one per CPU)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="send the cells to this running Dask scheduler instead (its workers need alcore "
                            "and the datasets; result files are written here)")
    sw.add_argument("--dry-run", action="store_true", help="list the cells and what --out holds for each; run nothing")
    sw.add_argument("--no-progress", action="store_true", help="one line per cell, no progress bar")
    sw.set_defaults(func=cmd_sweep)
    s = sub.add_parser("summarize", help="metrics of result files, averaged per strategy (drops: rounds after 50 "
                                          "labels whose accuracy fell over 5 points, summed over the runs)")
    s.add_argument("files", nargs="+")
    s.add_argument("--at", type=int, help="also report mean accuracy at this many labels")
    # the config field's name, as on the dashboard; --target is the name it had before
    s.add_argument("--target-accuracy", "--target", type=float, dest="target_accuracy", metavar="FRACTION",
                   help="also report the labels each run needed to reach this test accuracy (0.9 for 90%%)")
    s.set_defaults(func=cmd_summarize)
    a = sub.add_parser("autolabel", help="pseudo-label the most confident pool images after a run "
                                         "(CEAL) and report what it does to test accuracy")
    a.add_argument("file", help="result file of the run (its dataset must be loadable here)")
    # not --batch-size: that flag is the labels a round acquires, everywhere else
    a.add_argument("--per-step", type=int, default=100, help="pseudo-labels added per step (default: 100)")
    a.add_argument("--steps", type=int, default=5, help="steps (default: 5)")
    a.add_argument("--min-confidence", type=float, default=0.0,
                   help="only pseudo-label images predicted at least this confidently (default: 0)")
    a.set_defaults(func=cmd_autolabel)
    lb = sub.add_parser("labels", help="export the labels a run has: a CSV of every label (who, when, "
                                       "seconds) and, with --zip, the images in one folder per class")
    lb.add_argument("file", help="result file of the run (its dataset must be loadable here)")
    lb.add_argument("--csv", help="write the CSV here (default: standard output unless --zip)")
    lb.add_argument("--zip", help="write the labelled images here, as keras.utils.image_dataset_from_directory reads")
    lb.add_argument("--data-file", help="this machine's copy of the run's data file, if not at the file's path")
    lb.set_defaults(func=cmd_labels)
    c = sub.add_parser("csv", help="learning curves of result files as one CSV")
    c.add_argument("files", nargs="+")
    c.add_argument("--out", help="write here instead of standard output")
    c.set_defaults(func=cmd_csv)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    return ns.func(ns)
