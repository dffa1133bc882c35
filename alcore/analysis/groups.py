"""Run groups: which runs are alike enough to average, and their curves as tables.

A group is keyed by its strategy plus every setting that differs between the loaded
runs (a :class:`~alcore.results.records.GroupKey`), so unlike runs are never averaged
together; its name is derived from the key. These tables feed the metrics, the
statistics and the figures: each row carries its group's name (``group``) and key (``key``).
"""
from __future__ import annotations

import re
from typing import Mapping, Optional, Sequence

import pandas as pd

from alcore.config import ExperimentConfig
from alcore.data.datasets import dataset_title
from alcore.results.records import CEILING, GroupKey, RunResult, run_label

# Config fields that never split groups: the run's own identity (seed, strategy, already in
# the strategy label with the hybrid fraction), where the data was read from (the same MNIST
# from two machines' folders), how many gallery images were kept, and fields shown above in
# their own words.
_NOT_A_GROUP_SETTING = {"seed", "strategy", "hybrid_fraction", "data_dir", "data_file", "inspect_k",
                        "dataset", "model", "batch_size", "pool_size"}


def _settings(r: RunResult) -> list[tuple[str, object]]:
    """Every setting that may split groups, in the order a group's name lists them."""
    out = [("dataset", dataset_title(r.dataset.name)), ("model", r.config.model), ("batch_size", r.config.batch_size),
           ("n_pool", r.dataset.n_pool),
           # a person's labels (with their mistakes) are never averaged with the simulated oracle's
           ("oracle", r.oracle)]
    out += [(name, getattr(r.config, name)) for name in ExperimentConfig.model_fields
            if name not in _NOT_A_GROUP_SETTING]
    return out



def natural_order(name) -> list:
    """Sort key that orders the numbers in a name by value: hybrid 0%, 20%, 100% (not 0%, 100%, 20%)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(name))]


def in_natural_order(frame):
    """``frame``'s groups (``frame.groupby("group")``) in :func:`natural_order`."""
    return sorted(frame.groupby("group", sort=False), key=lambda item: natural_order(item[0]))

def group_keys(results: Sequence[RunResult]) -> list[GroupKey]:
    """Each run's group: its strategy, plus dataset / model / batch size / pool and every other
    config setting (``activation=sigmoid``) that differs between the runs, so unlike runs are
    never averaged together."""
    every = [_settings(r) for r in results]
    differs = [len({s[i][1] for s in every}) > 1 for i in range(len(every[0]))] if every else []
    return [GroupKey.of(r.config, tuple(s for s, d in zip(settings, differs) if d))
            for r, settings in zip(results, every)]


def group_labels(results: Sequence[RunResult]) -> list[str]:
    """The names of :func:`group_keys` ('margin · mnist · activation=sigmoid')."""
    return [key.label for key in group_keys(results)]


def keys_by_group(frame: pd.DataFrame) -> Mapping[str, GroupKey]:
    """Each group name of a frame (from :func:`curve_frame` or ``metrics_frame``) to its key."""
    return dict(zip(frame["group"], frame["key"]))


def curve_frame(results: Sequence[RunResult], sources: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Long table of every round of every run: group, key, run, seed, n_labeled, test_accuracy. An
    oracle ceiling's run is the group 'oracle ceiling' (with the settings that set it apart)."""
    keys = [GroupKey(CEILING, CEILING, key.settings) if res.ceiling is not None else key  # the oracle ceiling's
            for res, key in zip(results, group_keys(results))]
    rows = []
    for i, (res, key) in enumerate(zip(results, keys)):
        for r in res.rounds:
            run = res.label if res.ceiling is not None else run_label(res.config)
            rows.append({"group": key.label, "key": key, "run": run, "seed": res.config.seed,
                         "source": sources[i] if sources else "", "run_id": i,
                         "n_labeled": r.n_labeled, "test_accuracy": r.test_accuracy})
    return pd.DataFrame(rows, columns=["group", "key", "run", "seed", "source", "run_id", "n_labeled",
                                       "test_accuracy"])
