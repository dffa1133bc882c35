"""Run groups: which runs are alike enough to average, and their curves as tables.

A group is named by its strategy plus every setting that differs between the loaded
runs, so unlike runs are never averaged together. These tables feed the metrics,
the statistics and the figures.
"""
from __future__ import annotations

from typing import Optional, Sequence

import pandas as pd

from alcore.config import ExperimentConfig
from alcore.results.records import RunResult, run_label, strategy_label


# Config fields that never split groups: the run's own identity (seed, strategy, already in
# the strategy label with the hybrid fraction), where the data was read from (the same MNIST
# from two machines' folders), how many gallery images were kept, and fields shown above in
# their own words.
_NOT_A_GROUP_SETTING = {"seed", "strategy", "hybrid_fraction", "data_dir", "data_file", "inspect_k",
                        "dataset", "model", "batch_size", "pool_size"}


def group_labels(results: Sequence[RunResult]) -> list[str]:
    """Name each run's group: its strategy, plus dataset / model / batch size / pool and every
    other config setting (``activation=sigmoid``) that differs between the runs, so unlike
    runs are never averaged together."""
    def differs(get):
        return len({get(r) for r in results}) > 1

    parts = [
        (differs(lambda r: r.dataset.name), lambda r: r.dataset.name),
        (differs(lambda r: r.config.model), lambda r: r.config.model),
        (differs(lambda r: r.config.batch_size), lambda r: f"batch {r.config.batch_size}"),
        (differs(lambda r: r.dataset.n_pool), lambda r: f"pool {r.dataset.n_pool}"),
        # a person's labels (with their mistakes) are never averaged with the simulated oracle's
        (differs(lambda r: r.oracle), lambda r: "a person labelled" if r.oracle == "person" else "simulated"),
    ]
    for name in ExperimentConfig.model_fields:
        if name not in _NOT_A_GROUP_SETTING:
            parts.append((differs(lambda r, n=name: getattr(r.config, n)),
                          lambda r, n=name: f"{n}={_setting_text(getattr(r.config, n), n)}"))
    labels = []
    for r in results:
        extra = [get(r) for on, get in parts if on]
        labels.append(" · ".join([strategy_label(r.config)] + extra))
    return labels


# What an empty (None) setting means, in a group name: "test_size=all", not "test_size=None".
_UNSET_TEXT = {"test_size": "all", "pool_size": "all", "candidates": "all", "dense_dropout": "as dropout"}


def _setting_text(value, name: str = "") -> str:
    if value is None:
        return _UNSET_TEXT.get(name, "none")
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return format(value, "g") if isinstance(value, float) else str(value)


def curve_frame(results: Sequence[RunResult], sources: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Long table of every round of every run: group, run, seed, n_labeled, test_accuracy."""
    groups = group_labels(results)
    rows = []
    for i, (res, group) in enumerate(zip(results, groups)):
        for r in res.rounds:
            rows.append({"group": group, "run": run_label(res.config), "seed": res.config.seed,
                         "source": sources[i] if sources else "", "run_id": i,
                         "n_labeled": r.n_labeled, "test_accuracy": r.test_accuracy})
    return pd.DataFrame(rows, columns=["group", "run", "seed", "source", "run_id", "n_labeled", "test_accuracy"])


def settings_of(group: str) -> str:
    """The non-strategy settings in a group name ('margin · mnist' -> 'mnist'; '' when none):
    runs compared with each other (a strategy and its random baseline) share them."""
    return str(group).partition(" · ")[2]
