"""How much of the oracle ceiling's gain over random each strategy captures.

For a strategy s on seed k, with random's run r and the oracle ceiling c of the same seed and
settings (:mod:`alcore.engine.ceiling`), every curve is test accuracy against labels, and

    share_k(s) = (A(s) - A(r)) / (A(c) - A(r)),    A(x) = integral of x's accuracy over labels

with each area taken by the trapezoid rule over the labels all three curves reached (each curve
interpolated linearly at the others' label counts). 1 means the strategy gained as much over
random as the ceiling did; 0, no more than random; below 0, less than random; above 1, more than
the greedy ceiling (which is possible: it is a lower bound on the best sequence of batches, and
it chooses on a validation split, not on the test set). A seed where the ceiling gained nothing
over random (A(c) <= A(r)) has no share and is left out, with a note.

The table gives, per strategy, the mean of the shares over seeds and its 95% Student-t interval
(:func:`alcore.analysis.stats.t_interval`).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from alcore.analysis.groups import group_keys, in_natural_order
from alcore.analysis.stats import CONFIDENCE, t_interval
from alcore.results.records import CeilingRound, RunResult

SHARE_COLUMNS = ["group", "seeds", "share_mean", "share_low", "share_high", "note"]
CANDIDATE_COLUMNS = ["candidate", "proposer", "validation_accuracy", "validation_loss", "kept"]


def split_ceilings(results: Sequence[RunResult], sources: Optional[Sequence[str]] = None):
    """(the strategies' runs, their sources, the oracle ceilings' runs, their sources)."""
    sources = list(sources) if sources is not None else [""] * len(results)
    runs = [(r, s) for r, s in zip(results, sources) if r.ceiling is None]
    ceilings = [(r, s) for r, s in zip(results, sources) if r.ceiling is not None]
    return [r for r, _ in runs], [s for _, s in runs], [r for r, _ in ceilings], [s for _, s in ceilings]


def candidates_frame(record: CeilingRound) -> pd.DataFrame:
    """The candidate batches of one round of an oracle ceiling (its ``RoundResult.ceiling``), one
    row each in the order proposed: ``candidate`` (1..K), ``proposer`` (a raced strategy, or
    'random 1', 'random 2', ...), the ``validation_accuracy`` and ``validation_loss`` (mean
    cross-entropy) on the ceiling's validation images of the model trained with that batch, and
    ``kept``: the one chosen (the highest accuracy; ties: the lower loss, then the first proposed)."""
    n = len(record.proposers)
    return pd.DataFrame({"candidate": np.arange(1, n + 1), "proposer": list(record.proposers),
                         "validation_accuracy": list(record.validation_accuracy),
                         "validation_loss": list(record.validation_loss),
                         "kept": [i == record.chosen for i in range(n)]}, columns=CANDIDATE_COLUMNS)


def curve_area(labels: Sequence[float], accuracy: Sequence[float], low: float, high: float) -> float:
    """Area under the curve (trapezoids) between ``low`` and ``high`` labels, the curve linearly
    interpolated at both ends and at every label count between."""
    x = np.asarray(labels, dtype=float)
    y = np.asarray(accuracy, dtype=float)
    grid = np.unique(np.concatenate([[low, high], x[(x > low) & (x < high)]]))
    return float(np.trapezoid(np.interp(grid, x, y), grid))


Curve = tuple[Sequence[float], Sequence[float]]  # (labels, test accuracy), as RunResult.curve() gives it


def share_of_gain(strategy: Curve, random: Curve, ceiling: Curve) -> Optional[float]:
    """``share_k(s)`` of the module's docstring for one seed, from three (labels, accuracy) curves;
    None where the ceiling gained nothing over random on the labels all three reached (or those
    labels are a single count)."""
    curves = [strategy, random, ceiling]
    low = max(min(x) for x, _ in curves)
    high = min(max(x) for x, _ in curves)
    if high <= low:
        return None
    a_s, a_r, a_c = (curve_area(x, y, low, high) for x, y in curves)
    if a_c - a_r <= 0:
        return None
    return (a_s - a_r) / (a_c - a_r)


def gain_captured(results: Sequence[RunResult], *, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """One row per strategy group (random and the ceilings aside): the share of the oracle
    ceiling's gain over random it captures, mean over the seeds with a random run and a ceiling
    of the same settings, with a ``confidence`` Student-t interval over seeds (none with one seed).
    Empty where ``results`` hold no oracle ceiling."""
    results = list(results)
    keys = group_keys(results)  # over every run: the ceilings' settings are those of the runs they ceil
    ceilings, randoms = {}, {}
    for res, key in zip(results, keys):
        where = (key.settings, res.config.seed)
        if res.ceiling is not None:
            ceilings.setdefault(where, res)
        elif key.is_baseline:
            randoms.setdefault(where, res)
    if not ceilings:
        return pd.DataFrame(columns=SHARE_COLUMNS)
    frame = pd.DataFrame([{"group": key.label, "res": res, "key": key} for res, key in zip(results, keys)
                          if res.ceiling is None and not key.is_baseline], columns=["group", "res", "key"])
    rows = []
    for group, sub in in_natural_order(frame) if len(frame) else []:
        shares, notes, seeds = [], [], set()
        for res, key in zip(sub["res"], sub["key"]):
            seed = res.config.seed
            if seed in seeds:
                continue
            seeds.add(seed)
            where = (key.settings, seed)
            if where not in ceilings or where not in randoms:
                notes.append(f"seed {seed}: no " + ("oracle ceiling" if where not in ceilings else "random run")
                             + " of the same settings")
                continue
            share = share_of_gain(res.curve(), randoms[where].curve(), ceilings[where].curve())
            if share is None:
                notes.append(f"seed {seed}: the oracle ceiling gained nothing over random")
                continue
            shares.append(share)
        mean = low = high = None
        if shares:
            mean, low, high = t_interval(shares, confidence)
            if len(shares) < 2:
                notes.append("one seed: no interval")
        rows.append({"group": group, "seeds": len(shares), "share_mean": mean, "share_low": low,
                     "share_high": high, "note": "; ".join(notes)})
    out = pd.DataFrame(rows, columns=SHARE_COLUMNS)
    out[["share_mean", "share_low", "share_high"]] = out[["share_mean", "share_low", "share_high"]].astype(float)
    out["seeds"] = out["seeds"].astype(int)
    return out
