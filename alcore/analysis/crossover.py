"""The phase transition: the label budget from which an uncertainty strategy overtakes a
typicality (coverage) strategy for good, with an interval over seeds.

Hacohen, Dekel & Weinshall (2022, "Active learning on a budget") and Yehuda et al. (2022,
ProbCover) found that at tiny budgets labelling typical images that cover the pool beats
uncertainty sampling, and that above a budget which depends on the features, uncertainty
wins. :func:`crossover` finds that budget in a race of two strategies paired by seed.

Definition. Let :math:`a_s(b)` and :math:`u_s(b)` be the test accuracies of strategies A
(typicality) and B (uncertainty) on seed s at budget b, on budgets :math:`b_1 < \\dots < b_K`
both ran on every seed, and :math:`\\bar d(b) = \\frac{1}{S}\\sum_s \\big(u_s(b) - a_s(b)\\big)`
the mean paired difference. The **crossover budget** is the smallest :math:`b_k` with
:math:`\\bar d(b_j) > 0` for every :math:`j \\ge k`: from there to the end of the race B's mean
stays strictly above A's (a tie is not "above"). If :math:`\\bar d(b_K) \\le 0` there is none
within the race ("B never overtakes A within b_K labels"). If A was never strictly ahead before
the crossover (B ahead or tied from the start) no transition was seen: status ``ahead``.

Interval: a paired bootstrap over seeds. Seeds are drawn with replacement (both strategies'
curves of a seed together), the crossover is found again on each resample, and the interval
is the central 95% of the resampled crossover budgets (percentiles, taken as budgets the race
has: ``numpy.percentile`` with ``method="inverted_cdf"``) over the resamples that have one.
The share of resamples with no crossover is reported beside it: where it is large, "never"
is a plausible answer too, and the interval is over the rest only.

No Streamlit here; numpy and pandas only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2_000
BOOTSTRAP_SEED = 0

CROSSED, AHEAD, NEVER = "crossed", "ahead", "never"


@dataclass
class Crossover:
    """What :func:`crossover` returns.

    ``status``: ``crossed`` (A was ahead, then B overtook it for good at ``budget``), ``ahead``
    (B was never behind A: ahead or tied from the first budget, and ahead for good from
    ``budget``), ``never`` (B is not ahead at the last budget; ``budget`` None), or ``""``
    where there is too little to tell (``notes`` says why). ``low`` / ``high``: the bootstrap
    interval of the budget (None with fewer than 2 seeds or where no resample crossed);
    ``no_crossover_share``: the share of resamples with no crossover. ``budgets`` and
    ``mean_diff``: the shared budgets and the mean paired difference (B minus A) at each."""

    a: str
    b: str
    status: str
    budget: Optional[int]
    low: Optional[int] = None
    high: Optional[int] = None
    no_crossover_share: Optional[float] = None
    seeds: int = 0
    last_budget: Optional[int] = None
    budgets: tuple[int, ...] = ()
    mean_diff: tuple[float, ...] = ()
    notes: list[str] = field(default_factory=list)
    b_strategy: str = ""  # B's registry name ('margin'), for its colour; ``b`` is its group's name

    def sentence(self) -> str:
        """The finding in one plain sentence."""
        if not self.status:
            return f"{self.b} against {self.a}: " + ("; ".join(self.notes) or "nothing to compare")
        if self.status == NEVER:
            return (f"{self.b} never overtakes {self.a} within {self.last_budget} labels "
                    f"({self.seeds} paired seeds).")
        interval = ""
        if self.low is not None:
            interval = (f" (95% interval {self.low}-{self.high} labels over seeds"
                        + (f"; {self.no_crossover_share:.0%} of resamples never cross"
                           if self.no_crossover_share else "") + ")")
        if self.status == AHEAD:
            return (f"{self.b} is never behind {self.a} and stays ahead from {self.budget} labels on"
                    f"{interval}: no phase transition within {self.last_budget} labels "
                    f"({self.seeds} paired seeds).")
        return (f"{self.b} overtakes {self.a} at {self.budget} labels{interval}, and stays ahead up to "
                f"{self.last_budget} ({self.seeds} paired seeds).")


def crossover_index(mean_diff: np.ndarray) -> Optional[int]:
    """The first position k of ``mean_diff`` (B minus A, by budget) with every value from k on
    strictly positive; None where the last one is not."""
    d = np.asarray(mean_diff, dtype=float)
    if not len(d) or not d[-1] > 0:
        return None
    behind = np.flatnonzero(~(d > 0))  # NaN counts as not ahead
    return int(behind[-1] + 1) if len(behind) else 0


def _status(diff: np.ndarray, k: Optional[int]) -> str:
    if k is None:
        return NEVER
    return CROSSED if (diff[:k] < 0).any() else AHEAD


def crossover(a: np.ndarray, b: np.ndarray, budgets, *, a_name: str = "A", b_name: str = "B",
              confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES,
              seed: int = BOOTSTRAP_SEED) -> Crossover:
    """The crossover budget of B over A (see the module's docstring) from per-seed curves.

    ``a``, ``b``: accuracies, shape (seeds, budgets), row s of both from seed s; ``budgets``:
    the increasing label counts of the columns. The bootstrap is seeded with ``seed``, so the
    interval is reproducible."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    budgets = np.asarray(budgets)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != len(budgets):
        raise ValueError(f"a and b must both be (seeds, budgets) = (n, {len(budgets)}); got {a.shape} and {b.shape}")
    if len(budgets) and np.any(np.diff(budgets) <= 0):
        raise ValueError(f"budgets must increase; got {budgets.tolist()}")
    out = Crossover(a=a_name, b=b_name, status="", budget=None, seeds=len(a))
    if not len(a) or not len(budgets):
        out.notes.append("no seed or budget both strategies ran")
        return out
    diff = b - a
    mean = diff.mean(axis=0)
    k = crossover_index(mean)
    out.status, out.last_budget = _status(mean, k), int(budgets[-1])
    out.budget = None if k is None else int(budgets[k])
    out.budgets, out.mean_diff = tuple(int(x) for x in budgets), tuple(float(x) for x in mean)
    if len(a) < 2:
        out.notes.append("one seed: no interval")
        return out
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(resamples, len(a)))
    boot = diff[idx].mean(axis=1)  # (resamples, budgets)
    # crossover_index of every row at once: one past the last budget where B is not ahead
    behind = ~(boot > 0)
    last_behind = boot.shape[1] - 1 - np.argmax(behind[:, ::-1], axis=1)
    found = np.where(behind.any(axis=1), last_behind + 1, 0)
    crossed = budgets[found[~behind[:, -1]]]
    out.no_crossover_share = float(1 - len(crossed) / resamples)
    if len(crossed):
        tail = (1 - confidence) / 2 * 100
        low, high = np.percentile(crossed, [tail, 100 - tail], method="inverted_cdf")
        out.low, out.high = int(low), int(high)
    if len(a) < 5:
        out.notes.append(f"interval from {len(a)} seeds: rough")
    return out


def paired_curves(frame: pd.DataFrame, a: str, b: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """The curves of groups ``a`` and ``b`` of a :func:`~alcore.analysis.groups.curve_frame`,
    paired by seed on the budgets both ran on every shared seed: (a, b, budgets, seeds), the
    first two of shape (seeds, budgets). One run per seed and group (the first)."""
    def table(group):
        sub = frame[frame["group"] == group]
        first = sub.groupby("seed")["run_id"].transform("min") == sub["run_id"]
        return sub[first].pivot_table(index="seed", columns="n_labeled", values="test_accuracy", aggfunc="first")

    ta, tb = table(a), table(b)
    seeds = sorted(set(ta.index) & set(tb.index))
    ta, tb = ta.loc[seeds], tb.loc[seeds]
    budgets = [c for c in ta.columns if c in tb.columns and ta[c].notna().all() and tb[c].notna().all()]
    return (ta[budgets].to_numpy(float), tb[budgets].to_numpy(float), np.asarray(budgets, dtype=int),
            [int(s) for s in seeds])


TYPICALITY_FAMILIES = ("coverage",)
UNCERTAINTY_FAMILIES = ("uncertainty", "bayesian")


def family_of(strategy: str) -> str:
    """The strategy registry's family of ``strategy`` ("" for one not registered)."""
    import alcore.strategies  # noqa: F401  (fills the registry)
    from alcore.strategies.base import STRATEGIES

    cls = STRATEGIES.get(strategy)
    return cls.family if cls is not None else ""


def phase_transitions(frame: pd.DataFrame, **kwargs) -> list[Crossover]:
    """:func:`crossover` of every uncertainty group (families :data:`UNCERTAINTY_FAMILIES`: margin,
    entropy, bald, ...) over every typicality group (:data:`TYPICALITY_FAMILIES`: typiclust,
    probcover, maxherding, uherding) of a :func:`~alcore.analysis.groups.curve_frame` with the
    same settings and at least 2 shared seeds. ``kwargs`` go to :func:`crossover`."""
    if frame is None or not len(frame):
        return []
    keys = dict(zip(frame["group"], frame["key"]))
    typical = [g for g, k in keys.items() if family_of(k.strategy) in TYPICALITY_FAMILIES]
    uncertain = [g for g, k in keys.items() if family_of(k.strategy) in UNCERTAINTY_FAMILIES]
    out = []
    for t in typical:
        for u in uncertain:
            if keys[t].settings != keys[u].settings:
                continue
            a, b, budgets, seeds = paired_curves(frame, t, u)
            if len(seeds) >= 2 and len(budgets):
                found = crossover(a, b, budgets, a_name=t, b_name=u, **kwargs)
                found.b_strategy = keys[u].strategy
                out.append(found)
    return out
