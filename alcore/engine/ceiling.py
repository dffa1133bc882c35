"""The oracle ceiling: a greedy reference curve above the strategies of a race.

Each round the ceiling trains on its labels and reports test accuracy like any run. Then it
gathers K candidate batches (``ceiling_candidates``): one from each raced strategy, asked on
the ceiling's own labeled set and model with the random generator that strategy's run would
use that round, and the rest drawn at random. For every candidate it trains the model on its
labels plus that batch and measures accuracy on a validation split drawn once per seed from
the pool with the pool's labels (``ceiling_validation`` images, never picked by the ceiling).
It keeps the candidate with the highest validation accuracy (ties: the lower validation
cross-entropy, then the first proposed), and the next round reports the test accuracy of the
model trained with it, so its curve compares with the strategies' curves.

What it is and is not:

- **It peeks at labels no real strategy has**: the validation images' labels decide each pick.
  The test set is never read to choose (only to report, as for every run).
- **It is greedy**: the best batch one round ahead, among K candidates. The best *sequence*
  of batches can do better, so the ceiling is a lower bound on the true optimum, and it can
  fall below a strategy on the test set (it optimises a validation split of a few hundred
  images, and a batch that helps now may not help later).
- It starts from the same initial labels as the raced runs of its seed (the same cold start,
  drawn from the seed), and its validation images are drawn after them.
- It is deterministic: same config, strategies and seed, same picks.

Its cost is about K + 1 trainings per round (K candidates and the round's own model; a round's
``select_seconds`` includes the candidates' trainings): for the convex softmax on digits a
40-round ceiling takes seconds (``bench/oracle_ceiling.py``).

The share of the ceiling's gain over random that a strategy captures is computed by
:func:`alcore.analysis.ceiling.gain_captured`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from alcore.config import ExperimentConfig
from alcore.data.datasets import Dataset
from alcore.engine import cancel
from alcore.engine.loop import Experiment, round_rng
from alcore.results.records import CEILING, CeilingRound, CeilingSetup, RunResult
from alcore.strategies.base import Selection, StrategyInput, make_strategy

# purposes of the ceiling's own random generators (after alcore.engine.loop's)
_CEILING_VALIDATION, _CEILING_RANDOM = 100, 101
RANDOM = "random"


class OracleCeiling(Experiment):
    """The oracle ceiling of one seed (see the module docstring); an :class:`Experiment` whose
    picks are chosen among candidate batches by their validation accuracy.

    ``config``: the race's base config on this seed (its ``strategy`` is ignored).
    ``strategies``: the raced strategies, each proposing one batch per round. ``candidates``: K,
    the batches tried per round (at least one per strategy; the rest random; default the
    strategies + 2). ``validation``: pool images held out, with their labels, to choose on."""

    def __init__(self, config: ExperimentConfig, strategies: Sequence[str], *, candidates: Optional[int] = None,
                 validation: int = 200, dataset: Optional[Dataset] = None, cache=None, embeddings=None,
                 progress=None):
        strategies = list(dict.fromkeys(strategies))
        if not strategies:
            raise ValueError("the oracle ceiling needs at least one raced strategy to ask for batches")
        k = len(strategies) + 2 if candidates is None else int(candidates)
        if k < len(strategies):
            raise ValueError(f"ceiling_candidates {k} is below the {len(strategies)} strategies raced: each "
                             f"raced strategy proposes one batch; choose at least {len(strategies)}")
        super().__init__(config.replace(strategy=RANDOM), dataset=dataset, cache=cache, embeddings=embeddings,
                         progress=progress)
        free = np.flatnonzero(~self._taken)
        room = len(free) - (self.config.batch_size if self.config.rounds else 0)
        if validation < 1 or validation > room:
            raise ValueError(f"ceiling_validation {validation} does not fit: the pool has {len(free)} images "
                             f"left after the initial labels, and the ceiling must still pick a batch of "
                             f"{self.config.batch_size}; choose 1..{max(room, 0)}")
        self.ceiling_strategies = strategies
        self.ceiling_candidates = k
        self.proposers = [make_strategy(s, self.config.replace(strategy=s)) for s in strategies]
        self.ceiling_indices = np.sort(round_rng(self.config.seed, 0, _CEILING_VALIDATION)
                                       .choice(free, validation, replace=False))
        self._taken[self.ceiling_indices] = True  # never a candidate, never picked

    # ------------------------------------------------------------------ hooks of the round
    def _strategy_input(self, cand: np.ndarray, probs: np.ndarray, strategies=None) -> StrategyInput:
        # everything any proposer reads, from the ceiling's own model of this round
        return super()._strategy_input(cand, probs, self.proposers if strategies is None else strategies)

    def _batches(self, r: int, inputs: StrategyInput, want: int, cand: np.ndarray) -> list[tuple[str, Selection]]:
        """The round's candidate batches: each raced strategy's (with the generator its run uses
        this round), then random ones up to K."""
        out = [(s.name, self._select(r, inputs, want, cand, strategy=s)) for s in self.proposers]
        random = self.strategy  # the config's strategy is random
        for j in range(self.ceiling_candidates - len(out)):
            rng = np.random.default_rng([self.config.seed, r, _CEILING_RANDOM, j])
            out.append((f"{RANDOM} {j + 1}", self._select(r, inputs, want, cand, strategy=random, rng=rng)))
        return out

    def _validation_score(self, r: int, picks: np.ndarray) -> tuple[float, float]:
        """Validation accuracy and mean cross-entropy of the model trained on the labels plus ``picks``
        (pool indices), trained as round r + 1 will train it (hold ``trainer.lock``)."""
        self._train_round(r + 1, labeled=np.concatenate([self.labeled_indices, picks]))
        p = self.trainer.predict_proba(self.dataset.inputs_pool[self.ceiling_indices])
        y = self.dataset.y_pool[self.ceiling_indices]
        loss = float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0)).mean())
        return float((p.argmax(axis=1) == y).mean()), loss

    def _select(self, r: int, inputs: StrategyInput, want: int, cand: np.ndarray, strategy=None, rng=None):
        if strategy is not None:  # one proposer's batch
            return super()._select(r, inputs, want, cand, strategy=strategy, rng=rng)
        batches = self._batches(r, inputs, want, cand)
        scored: dict[frozenset, tuple[float, float]] = {}  # the same batch proposed twice is trained once
        warm = self._warm
        with self.trainer.lock:
            for _, sel in batches:
                cancel.checkpoint()
                key = frozenset(cand[np.asarray(sel.indices, dtype=np.int64)].tolist())
                if key not in scored:
                    self._warm = warm  # warm_start: every candidate starts from this round's model
                    scored[key] = self._validation_score(r, np.array(sorted(key), dtype=np.int64))
        self._warm = warm
        scores = [scored[frozenset(cand[np.asarray(sel.indices, dtype=np.int64)].tolist())] for _, sel in batches]
        # highest validation accuracy; ties: lower validation loss, then the first proposed
        best = min(range(len(batches)), key=lambda i: (-scores[i][0], scores[i][1], i))
        record = CeilingRound(proposers=[name for name, _ in batches],
                              validation_accuracy=[a for a, _ in scores], validation_loss=[loss for _, loss in scores],
                              chosen=best)
        return Selection(batches[best][1].indices, batches[best][1].scores, {"ceiling": record})

    # ----------------------------------------------------------------------- results
    def _result_extra(self) -> dict:
        return {"ceiling": CeilingSetup(strategies=self.ceiling_strategies, candidates=self.ceiling_candidates,
                                        validation_indices=[int(i) for i in self.ceiling_indices])}

    @property
    def label(self) -> str:
        return f"{CEILING} (seed {self.config.seed})"

    @classmethod
    def resume(cls, result: RunResult, *, dataset: Optional[Dataset] = None, cache=None, given=None,
               embeddings=None, progress=None) -> "OracleCeiling":
        """Continue a stopped oracle ceiling from its result file, as :meth:`Experiment.resume`."""
        if result.ceiling is None:
            raise ValueError(f"{result.label} is not an oracle ceiling's run")
        if result.config.warm_start and result.rounds:
            raise ValueError("a warm-start run cannot be continued from its file: the weights "
                             "it would start from are not saved")
        c = result.ceiling
        exp = cls(result.config, c.strategies, candidates=c.candidates, validation=len(c.validation_indices),
                  dataset=dataset, cache=cache, embeddings=embeddings, progress=progress)
        if exp.ceiling_indices.tolist() != list(c.validation_indices):
            raise ValueError("the dataset differs from the one this oracle ceiling was made on: "
                             "its validation images do not match")
        return cls._replay(exp, result)


def ceiling_of(result: RunResult) -> bool:
    """Whether a result file's run is an oracle ceiling (drawn as a reference, never averaged
    with the strategies' runs)."""
    return result.ceiling is not None
