"""Racing strategies: several experiments on the same seeds, stepped round-robin.

A :class:`Race` holds one :class:`Experiment` per (strategy, seed). Each
:meth:`Race.step` advances the experiment that has done the fewest rounds, so all
curves grow together and a UI can redraw after every round. Within a seed every
strategy starts from the same pool, the same initial labels and the same initial
weights (they all derive from the seed), so differences come from the strategies (with
``initial_strategy="strategy"`` the coverage strategies pick their own initial labels: that
difference is the strategy's too).

With ``ceiling`` the race also runs the oracle ceiling of every seed
(:class:`alcore.engine.ceiling.OracleCeiling`, in :attr:`Race.ceilings`), stepped with the
other runs: a reference curve, kept apart from the strategies' runs (``experiments``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from alcore.config import ExperimentConfig, RaceConfig
from alcore.data.datasets import Dataset, load_dataset
from alcore.engine.loop import Experiment, _resolve
from alcore.results.records import CEILING, GroupKey, RoundResult, RunResult, run_label, strategy_label


@dataclass(frozen=True)
class RaceProgress:
    rounds_done: int
    rounds_total: Optional[int]  # None when a run stops only on a target / plateau
    max_labels: int
    seconds: float
    seconds_left: Optional[float]

    @property
    def fraction(self) -> float:
        if not self.rounds_total:
            return 0.0
        return min(self.rounds_done / self.rounds_total, 1.0)


def expected_rounds(config: ExperimentConfig) -> Optional[int]:
    """Rounds (evaluations) a run will make, if its stop conditions bound it: one on the initial
    labels plus one per acquisition round (:meth:`ExperimentConfig.acquisition_rounds`)."""
    rounds = config.acquisition_rounds()
    return None if rounds is None else rounds + 1


TREND_ROUNDS = 20  # the recent rounds a run's pace is read from


def run_seconds_left(times: Sequence[float], rounds_left: int) -> float:
    """Seconds a run's next ``rounds_left`` rounds take, from the seconds its rounds took so far
    (``times``, in order): from its last TREND_ROUNDS rounds (its first left out once it has
    another: it carries what happens once, a model's first build took 5 s where the mlp's next
    rounds took 0.4-1 s), their median and their Theil-Sen slope (the median of the slopes between
    every two rounds, kept at 0 or more), summed over the rounds to come; with fewer than 3 rounds
    to read, their mean. A round trains on more labels than the one before, so its time grows:
    one mean of the rounds so far said half the time left early in a digits race, and a
    least-squares line followed the spikes of a busy machine (bench/ceiling_time_left.py)."""
    t = np.asarray(times[1:] if len(times) > 1 else times, dtype=float)[-TREND_ROUNDS:]
    if rounds_left <= 0 or not len(t):
        return 0.0
    if len(t) < 3:
        return float(t.mean() * rounds_left)
    i, j = np.triu_indices(len(t), 1)
    slope = max(float(np.median((t[j] - t[i]) / (j - i))), 0.0)
    coming = np.median(t) + slope * (np.arange(len(t), len(t) + rounds_left) - (len(t) - 1) / 2)
    return float(coming.sum())


def seconds_left(round_seconds: Sequence[Sequence[float]], rounds_left: Sequence[int], n_strategy_runs: int,
                 ceiling_trainings: int = 1, per_run: Callable[[Sequence[float], int], float] = run_seconds_left
                 ) -> Optional[float]:
    """Seconds the rounds still to come of a race will take: the sum over its runs of each one's
    ``rounds_left`` at its own pace (``per_run``: :func:`run_seconds_left` of the seconds its
    rounds took, ``round_seconds``; the strategies' ``n_strategy_runs`` runs first, then the
    oracle ceilings).

    A round of the oracle ceiling trains K + 1 models (``ceiling_trainings``: its K candidate
    batches and its own model) and asks every raced strategy for a batch, where a strategy's
    round trains one model: one mean over every round of the race was pulled down by the
    strategies' rounds and swung with the order the runs are stepped in. Its last round picks
    nothing, so it trains its own model only: 1 / (K + 1) of its pace. A run without 2 rounds
    yet (its first carries one-off costs) goes at the median pace of the strategies' runs that
    have them, times K + 1 for a ceiling; before any run has 2 rounds, at its own or that
    median of first rounds. None where no run has a round yet."""
    n, k1 = n_strategy_runs, ceiling_trainings
    ready = [len(t) >= 2 for t in round_seconds]
    if not any(ready):
        ready = [len(t) >= 1 for t in round_seconds]
    pace = [per_run(t, 1) if r else None for t, r in zip(round_seconds, ready)]
    measured = sorted(x for x in pace[:n] if x is not None) or \
        sorted(x / k1 for x in pace[n:] if x is not None)  # else from the ceilings'
    prior = measured[len(measured) // 2] if measured else None
    left = 0.0
    for i, (times, rest) in enumerate(zip(round_seconds, rounds_left)):
        if rest <= 0:
            continue
        if pace[i] is not None:
            one, coming = pace[i], per_run(times, rest)
        elif prior is None:
            return None
        else:
            one = prior * (k1 if i >= n else 1)
            coming = one * rest
        if i >= n:
            coming -= one * (1 - 1 / k1)  # the ceiling's last round trains its own model only
        left += coming
    return left


class Race:
    """Experiments for every strategy x seed, advanced one round at a time."""

    def __init__(self, base: ExperimentConfig, strategies: Sequence[str], seeds: Sequence[int], *,
                 dataset_for: Optional[Callable[[ExperimentConfig], Dataset]] = None, cache=None,
                 saved: Optional[Mapping[int, RunResult]] = None, embeddings=None, progress=None,
                 ceiling: bool = False, ceiling_candidates: Optional[int] = None, ceiling_validation: int = 200):
        """``saved`` maps a run's index (seed-major: ``i = seed_pos * len(strategies) + strategy_pos``;
        the oracle ceiling of seed ``seed_pos`` after them, ``n_runs + seed_pos``) to its result
        file, to continue an interrupted race (see :mod:`alcore.engine.store`); each
        such run is rebuilt with :meth:`Experiment.resume`, the others start afresh.
        ``ceiling``, ``ceiling_candidates``, ``ceiling_validation``: the oracle ceiling
        (:class:`alcore.config.RaceConfig`).
        ``embeddings`` (an :class:`alcore.engine.embeddings.EmbeddingCache`) and ``progress``: where
        the config's embedding is cached and who hears how computing it goes (once per dataset)."""
        saved = dict(saved or {})
        if not strategies:
            raise ValueError("choose at least one strategy to race")
        if not seeds:
            raise ValueError("choose at least one seed")
        if len(set(strategies)) != len(strategies):
            raise ValueError("each strategy may appear once in a race")
        dataset_for = dataset_for or load_dataset
        self.cache = cache
        self.base = base
        self.setup = RaceConfig(base=base, strategies=list(strategies), seeds=[int(s) for s in seeds],
                                ceiling=ceiling, ceiling_candidates=ceiling_candidates,
                                ceiling_validation=ceiling_validation)
        self.experiments: list[Experiment] = []
        self.ceilings: list = []  # OracleCeiling, one per seed with ceiling
        n_runs = self.setup.n_runs
        inputs: dict[tuple, Dataset] = {}  # (prepared dataset, features) -> the dataset with them
        for seed in seeds:
            seeded = base.replace(seed=int(seed))
            dataset = dataset_for(seeded)
            if base.model == "transfer" or base.embedding != "pixels":
                # backbone features or the embedding once per dataset, shared by every strategy
                # (and by every seed that shares the prepared dataset and the features)
                from alcore.engine.embeddings import features_of, model_inputs
                from alcore.engine.transfer import transfer_features_of

                key = (id(dataset), transfer_features_of(seeded) if base.model == "transfer" else features_of(seeded))
                if key not in inputs:
                    inputs[key] = model_inputs(dataset, seeded, cache=embeddings, progress=progress)
                dataset = inputs[key]
            for strategy in strategies:
                cfg = seeded.replace(strategy=strategy)
                old = saved.pop(len(self.experiments), None)
                if old is None:
                    self.experiments.append(Experiment(cfg, dataset=dataset, cache=cache))
                    continue
                if not old.config.same_experiment(_resolve(cfg)):
                    raise ValueError(f"the saved run {run_label(old.config)} was made with other settings "
                                     f"than this race's {run_label(cfg)}")
                old = old.model_copy(update={"config": _resolve(cfg)})  # its data may sit elsewhere here
                self.experiments.append(Experiment.resume(old, dataset=dataset, cache=cache))
            if ceiling:
                self.ceilings.append(self._ceiling(seeded, saved.pop(n_runs + len(self.ceilings), None),
                                                   dataset, cache))
        if saved:
            raise ValueError(f"{len(saved)} saved run(s) do not belong to this race's strategies and seeds")
        # time already spent in the saved rounds, so progress and time left stay right; per run, in
        # the order of runs, since a round of the oracle ceiling trains K + 1 models (see progress)
        self.round_seconds = [[r.train_seconds + r.query_seconds + r.eval_seconds for r in e.rounds]
                              for e in self.runs]
        self.seconds = sum(map(sum, self.round_seconds))
        self.last: Optional[tuple[Experiment, RoundResult]] = None

    def _ceiling(self, seeded: ExperimentConfig, old: Optional[RunResult], dataset: Dataset, cache):
        """The oracle ceiling of one seed: afresh, or continued from its saved result file."""
        from alcore.engine.ceiling import RANDOM, OracleCeiling

        s = self.setup
        if old is None:
            return OracleCeiling(seeded, s.strategies, candidates=s.ceiling_candidates,
                                 validation=s.ceiling_validation, dataset=dataset, cache=cache)
        c, cfg = old.ceiling, _resolve(seeded.replace(strategy=RANDOM))
        if c is None or not old.config.same_experiment(cfg) or c.strategies != list(dict.fromkeys(s.strategies)) \
                or c.candidates != s.ceiling_batches or len(c.validation_indices) != s.ceiling_validation:
            raise ValueError(f"the saved run {old.label} is not this race's oracle ceiling of seed {seeded.seed}")
        old = old.model_copy(update={"config": cfg})  # its data may sit elsewhere here
        return OracleCeiling.resume(old, dataset=dataset, cache=cache)

    @classmethod
    def of(cls, setup: RaceConfig, **kwargs) -> "Race":
        """The race ``setup`` describes (``kwargs``: as for the constructor)."""
        return cls(setup.base, setup.strategies, setup.seeds, ceiling=setup.ceiling,
                   ceiling_candidates=setup.ceiling_candidates, ceiling_validation=setup.ceiling_validation, **kwargs)

    @property
    def runs(self) -> list[Experiment]:
        """Every run the race steps: the strategies' runs, then the oracle ceilings."""
        return self.experiments + self.ceilings

    @property
    def done(self) -> bool:
        return all(e.done for e in self.runs)

    def step(self) -> Optional[RoundResult]:
        """Advance the run that is furthest behind by one round; None when all are done."""
        pending = [i for i, e in enumerate(self.runs) if not e.done]
        if not pending:
            return None
        i = min(pending, key=lambda j: len(self.runs[j].rounds))
        exp = self.runs[i]
        t0 = time.perf_counter()
        result = exp.step()
        took = time.perf_counter() - t0
        self.round_seconds[i].append(took)
        self.seconds += took
        self.last = (exp, result)
        return result

    def release_models(self) -> None:
        """Let go of every run's compiled model (:meth:`Experiment.release_model`) and empty the
        trainer cache the race was given, e.g. once the race stops: their memory is freed. The
        next round builds the models again, with the same results."""
        for e in self.runs:
            e.release_model()
        if self.cache is not None:
            self.cache.clear()

    def progress(self) -> RaceProgress:
        done = sum(len(e.rounds) for e in self.runs)
        totals = [len(e.rounds) if e.done else expected_rounds(e.config) for e in self.runs]
        total = None if any(t is None for t in totals) else sum(totals)
        left = self._seconds_left(totals) if total is not None and done else None
        labels = max((e.rounds[-1].n_labeled for e in self.experiments if e.rounds), default=0)
        return RaceProgress(done, total, labels, self.seconds, left)

    def _seconds_left(self, totals: Sequence[int]) -> Optional[float]:
        return seconds_left(self.round_seconds, [t - len(e.rounds) for t, e in zip(totals, self.runs)],
                            len(self.experiments), self.setup.ceiling_batches + 1 if self.ceilings else 1)

    def planned_labels(self) -> Optional[int]:
        """The most labels a run of this race can reach (its rounds or label budget, within the
        pool); None where only a target or a label-free signal stops the runs."""
        bounds = [e.config.max_labels() for e in self.experiments]
        if any(b is None for b in bounds):
            return None
        return max(min(b, len(e.dataset.y_pool)) for b, e in zip(bounds, self.experiments))

    def curve_rows(self) -> list[dict]:
        """One row per finished round of every run (for figures and CSV); the oracle ceilings'
        rows are the group :data:`~alcore.results.records.CEILING` (key strategy the same)."""
        rows = []
        ceiling = GroupKey(CEILING, CEILING)
        for i, e in enumerate(self.runs):
            mine = i >= len(self.experiments)
            name = CEILING if mine else strategy_label(e.config)
            for r in e.rounds:
                rows.append({"group": name, "key": ceiling if mine else GroupKey.of(e.config),
                             "run": e.label if mine else run_label(e.config),
                             "strategy": name, "seed": e.config.seed, "source": "",
                             "run_id": i, "round": r.round, "n_labeled": r.n_labeled,
                             "test_accuracy": r.test_accuracy})
        return rows

    def curve_frame(self):
        """The rows as the DataFrame :func:`alcore.figures.learning_curve_figure` draws."""
        import pandas as pd

        return pd.DataFrame(self.curve_rows(), columns=["group", "key", "run", "strategy", "seed", "source", "run_id",
                                                        "round", "n_labeled", "test_accuracy"])

    def probcover_radii(self) -> list[tuple[ExperimentConfig, float]]:
        """(config, ball radius) of every probcover run that has picked a batch: the radius its
        last such round used (set, or chosen by the purity rule on its first round)."""
        out = []
        for e in self.experiments:
            radius = next((r.probcover_radius for r in reversed(e.rounds) if r.probcover_radius is not None), None)
            if radius is not None:
                out.append((e.config, radius))
        return out

    def uherding_temperatures(self) -> list[tuple[ExperimentConfig, list[float]]]:
        """(config, the temperature of each round that picked a batch) of every uherding run that has
        picked one: the set temperature, or the one calibrated that round."""
        out = []
        for e in self.experiments:
            temps = [r.uherding_temperature for r in e.rounds if r.uherding_temperature is not None]
            if temps:
                out.append((e.config, temps))
        return out

    def results(self) -> list[RunResult]:
        """The strategies' runs that have rounds (not the oracle ceilings: :meth:`ceiling_results`)."""
        return [e.result() for e in self.experiments if e.rounds]

    def ceiling_results(self) -> list[RunResult]:
        """The oracle ceilings' runs that have rounds."""
        return [e.result() for e in self.ceilings if e.rounds]
