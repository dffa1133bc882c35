"""Learning-curve metrics.

All take the curve as two sequences: labels used (increasing) and test accuracy
in [0, 1] at each point.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from alcore.analysis.groups import group_keys, group_labels, in_natural_order, natural_order
from alcore.results.records import GroupKey, confusion_matrix


def _curve(n_labeled: Sequence[float], accuracy: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(n_labeled, dtype=np.float64)
    a = np.asarray(accuracy, dtype=np.float64)
    if n.shape != a.shape or n.ndim != 1:
        raise ValueError(f"n_labeled and accuracy must be vectors of one length, got {n.shape} and {a.shape}")
    if len(n) == 0:
        raise ValueError("the learning curve is empty")
    if np.any(np.diff(n) < 0):
        raise ValueError("n_labeled must not decrease along the curve")
    return n, a


def normalized_aulc(n_labeled: Sequence[float], accuracy: Sequence[float]) -> float:
    r"""Normalised area under the learning curve (AUBC, Zhan et al. 2021):

    .. math:: \mathrm{AULC} = \frac{1}{n_T - n_0}\int_{n_0}^{n_T} \mathrm{acc}(n)\,dn

    by the trapezoid rule, i.e. the mean accuracy over the label budget; in [0, 1].
    A one-point curve returns that point's accuracy.

    Zhan, X., Liu, H., Li, Q. & Chan, A. B. (2021). A comparative survey: benchmarking
    for pool-based active learning. IJCAI.
    """
    n, a = _curve(n_labeled, accuracy)
    if len(n) == 1 or n[-1] == n[0]:
        return float(a[-1])
    return float(np.trapezoid(a, n) / (n[-1] - n[0]))


def labels_to_target(n_labeled: Sequence[float], accuracy: Sequence[float], target: float) -> Optional[int]:
    r"""Labels needed to reach a target accuracy: :math:`\min\{n : \mathrm{acc}(n) \ge a\}`
    over the measured points (Gal et al. 2017, Table 1); None if never reached."""
    n, a = _curve(n_labeled, accuracy)
    hits = np.nonzero(a >= target)[0]
    return int(n[hits[0]]) if len(hits) else None


def default_target(results) -> float:
    """The target accuracy 'labels to target' is measured at until a visitor picks one: the runs'
    own ``target_accuracy`` where every run stopped at the same one (so the metric asks what the
    runs were asked), else 95% of the best final accuracy, to the whole percent (5% at least)."""
    own = {r.config.target_accuracy for r in results}
    if len(own) == 1 and None not in own:
        return float(own.pop())
    best = max((r.rounds[-1].test_accuracy for r in results if r.rounds), default=1.0)
    return max(0.05, min(1.0, round(best * 0.95, 2)))


def final_accuracy(n_labeled: Sequence[float], accuracy: Sequence[float]) -> float:
    """Accuracy at the last point of the curve."""
    _, a = _curve(n_labeled, accuracy)
    return float(a[-1])


def accuracy_at(n_labeled: Sequence[float], accuracy: Sequence[float], n_target: float) -> Optional[float]:
    """Accuracy at exactly ``n_target`` labels, or None when the curve has no such point."""
    n, a = _curve(n_labeled, accuracy)
    hits = np.nonzero(n == n_target)[0]
    return float(a[hits[0]]) if len(hits) else None


# A curve "drop": a round, past the first DROP_AFTER_LABELS labels, whose test accuracy is more
# than DROP_POINTS below the previous round's. A stable learner has none: adding 10 labels does
# not cost 5 points of accuracy unless training stopped at a bad point.
DROP_AFTER_LABELS = 50
DROP_POINTS = 0.05


def curve_drops(n_labeled: Sequence[float], accuracy: Sequence[float], *, after: float = DROP_AFTER_LABELS,
                points: float = DROP_POINTS) -> int:
    r"""Instability of a learning curve: rounds :math:`i` with :math:`n_i > \text{after}` and
    :math:`\mathrm{acc}_i < \mathrm{acc}_{i-1} - \text{points}` (defaults: 50 labels, 5 points)."""
    n, a = _curve(n_labeled, accuracy)
    if len(n) < 2:
        return 0
    return int(np.sum((n[1:] > after) & (a[1:] < a[:-1] - points - 1e-12)))


def summarize(result, target: Optional[float] = None) -> dict:
    """Metrics of one result: final accuracy, normalised AULC, labels to ``target``."""
    n, a = result.curve()
    out = {
        "strategy": result.config.strategy,
        "seed": result.config.seed,
        "rounds": len(n),
        "final_labels": n[-1],
        "final_accuracy": final_accuracy(n, a),
        "aulc": normalized_aulc(n, a),
        "drops": curve_drops(n, a),
    }
    if target is not None:
        out[f"labels_to_{target:g}"] = labels_to_target(n, a, target)
    return out


def metrics_frame(results, target: float, keys: Optional[Sequence[GroupKey]] = None):
    """One row per run: its group's name and key (:func:`alcore.analysis.groups.group_keys`),
    final accuracy, AULC, labels to ``target`` and labels saved against random (random's labels
    to the target minus this run's, with random run on the same seed and group settings; None
    where either never reached it)."""
    import pandas as pd

    from alcore.results.records import run_label, strategy_label

    keys = list(keys) if keys is not None else group_keys(results)
    rows = []
    for res, key in zip(results, keys):
        n, a = res.curve()
        rows.append({
            "group": key.label, "key": key, "run": run_label(res.config), "strategy": strategy_label(res.config),
            "seed": res.config.seed, "final_labels": n[-1], "final_accuracy": final_accuracy(n, a),
            "aulc": normalized_aulc(n, a), "labels_to_target": labels_to_target(n, a, target),
            "drops": curve_drops(n, a),
        })
    frame = pd.DataFrame(rows)
    # the baseline for a run: the random run with the same seed and the same non-strategy settings
    suffix = frame["key"].map(lambda k: k.settings)
    baseline = frame["key"].map(lambda k: k.is_baseline)
    saved = []
    for i, row in frame.iterrows():
        mask = baseline & (frame["seed"] == row["seed"]) & (suffix == suffix[i])
        base = frame.loc[mask, "labels_to_target"]
        if row["labels_to_target"] is None or base.empty or base.iloc[0] is None or pd.isna(base.iloc[0]) \
                or pd.isna(row["labels_to_target"]):
            saved.append(None)
        else:
            saved.append(int(base.iloc[0]) - int(row["labels_to_target"]))
    frame["labels_saved_vs_random"] = saved
    return frame


def group_metrics(frame):
    """Mean over the runs (seeds) of each group; how many runs reached the target."""
    import pandas as pd

    out = []
    for group, sub in in_natural_order(frame):  # hybrid 0%, 20%, 100%
        reached = sub["labels_to_target"].dropna()
        saved = sub["labels_saved_vs_random"].dropna()
        out.append({
            "group": group, "runs": len(sub),
            "final_accuracy": sub["final_accuracy"].mean(),
            "final_accuracy_std": sub["final_accuracy"].std(ddof=1) if len(sub) > 1 else 0.0,
            "aulc": sub["aulc"].mean(),
            "labels_to_target": reached.mean() if len(reached) else None,
            "reached_target": f"{len(reached)}/{len(sub)}",
            "labels_saved_vs_random": saved.mean() if len(saved) else None,
            "drops": int(sub["drops"].sum()),
        })
    return pd.DataFrame(out)


def group_confusions(results, groups: Optional[Sequence[str]] = None) -> dict[str, tuple[np.ndarray, int]]:
    """Per group (sorted as in :func:`group_metrics`), the last round's test confusion matrices
    of its runs summed over the runs (seeds), and how many runs: where a group's errors go,
    counted over every seed's test set."""

    groups = list(groups) if groups is not None else group_labels(results)
    out: dict[str, tuple[np.ndarray, int]] = {}
    for res, group in sorted(zip(results, groups), key=lambda pair: natural_order(pair[1])):
        matrix = confusion_matrix(res.rounds[-1].confusion)
        if group in out:
            total, n = out[group]
            if total.shape != matrix.shape:
                raise ValueError(f"group {group!r}: confusion matrices of shapes {total.shape} and {matrix.shape}")
            out[group] = (total + matrix, n + 1)
        else:
            out[group] = (matrix, 1)
    return out
