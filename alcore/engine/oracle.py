"""A person as the oracle: the model asks, a person labels, the model retrains.

An :class:`OracleRun` is two runs of one config and seed: the person's
(``Experiment(..., oracle="person")``, which trains on the labels the person gives,
right or wrong) and the simulated oracle's (the dataset's labels), stepped round for
round. Both start from the same initial labels and initial weights, so round 0 is the
same model; a person who never errs makes the simulated run's picks exactly.

The truth is known here, so every label is checked, and what the mistakes cost is
measured two ways, each round:

- **the mistakes alone**: the round's model trained again on the same images with their
  true labels (:meth:`alcore.engine.loop.Experiment.retrain` with ``truth=True``), against the
  model trained on the person's labels;
- **everything they led to**: the simulated oracle's run of the same seed, which also
  picked other images once its models differed.

Seconds per label are measured by :class:`BatchAnswers` from when the batch is shown.
No Streamlit here: the "Be the oracle" page and a test drive the same objects.
"""
from __future__ import annotations

import statistics
from collections import Counter
from typing import Optional, Sequence

import numpy as np
from pydantic import BaseModel

from alcore.config import ExperimentConfig
from alcore.data.datasets import Dataset
from alcore.engine.loop import Experiment
from alcore.results.records import RoundResult, RunResult


class BatchAnswers:
    """The person's answers for one batch as they come in, with the seconds each took.

    A label's time runs from when the batch was shown, or from the person's previous
    answer, to the answer that sets it; answering an image again (a correction) adds that
    time to the same image. Times come from the caller's clock (``time.monotonic()``)."""

    def __init__(self, indices: Sequence[int], shown_at: float):
        self.indices = [int(i) for i in indices]
        self.labels: list[Optional[int]] = [None] * len(self.indices)
        self.seconds = [0.0] * len(self.indices)
        self._last = float(shown_at)

    def answer(self, position: int, label: int, now: float) -> None:
        if not 0 <= position < len(self.indices):
            raise IndexError(f"position {position} is outside the batch of {len(self.indices)}")
        self.seconds[position] += max(float(now) - self._last, 0.0)
        self._last = max(float(now), self._last)
        self.labels[position] = int(label)

    @property
    def complete(self) -> bool:
        return all(c is not None for c in self.labels)

    @property
    def next_open(self) -> Optional[int]:
        """The first image still without a label (the one keyboard shortcuts label)."""
        return next((i for i, c in enumerate(self.labels) if c is None), None)

    @property
    def n_answered(self) -> int:
        return sum(c is not None for c in self.labels)


class LabelRecord(BaseModel):
    """One label the person gave."""

    round: int  # the round whose model asked
    index: int  # pool index
    given: int
    truth: int
    predicted: Optional[int] = None  # what the asking model predicted
    seconds: Optional[float] = None

    @property
    def right(self) -> bool:
        return self.given == self.truth


class RoundCost(BaseModel):
    """One round of the person's run beside the simulated oracle's."""

    round: int
    n_labeled: int
    person_labels: int  # labels the person gave that this round's model trained on
    mistakes: int  # ... of which wrong
    accuracy: float  # test accuracy, trained on the person's labels
    truth_accuracy: float  # same images, their true labels
    simulated_accuracy: Optional[float] = None  # the simulated oracle's run (its own picks)

    @property
    def cost(self) -> float:
        """Test accuracy the mistakes cost this round (negative: they happened to help)."""
        return self.truth_accuracy - self.accuracy


class OracleRun:
    """The person's run and the simulated oracle's run of the same config and seed."""

    def __init__(self, config: ExperimentConfig, *, dataset: Optional[Dataset] = None, cache=None):
        if config.warm_start:
            raise ValueError("warm_start is not supported with a person as the oracle: the cost of the "
                             "mistakes is measured by training rounds again, which a warm start cannot do")
        self._pair(Experiment(config, dataset=dataset, cache=cache, oracle="person"), cache)

    def _pair(self, person: Experiment, cache) -> None:
        self.person = person
        # the person's run was checked when it started (or is a file made before the check)
        self.simulated = Experiment(person.config, dataset=person.dataset, cache=cache, check_validation=False)
        self._truth: dict[int, tuple[float, float]] = {}  # round -> (accuracy, loss) on true labels

    @classmethod
    def resume(cls, result: RunResult, *, dataset: Optional[Dataset] = None, cache=None) -> "OracleRun":
        """Continue a person's run from its result file. The simulated run and the retrains
        on true labels are computed again (they are deterministic, so they come out the same)."""
        if result.oracle != "person":
            raise ValueError(f"{result.label} was labelled by the simulated oracle, not a person")
        run = cls.__new__(cls)
        run._pair(Experiment.resume(result, dataset=dataset, cache=cache), cache)
        run.catch_up()
        return run

    # ------------------------------------------------------------------ the loop
    @property
    def config(self) -> ExperimentConfig:
        return self.person.config

    @property
    def dataset(self) -> Dataset:
        return self.person.dataset

    @property
    def batch(self) -> np.ndarray:
        """Pool indices of the images the model is asking about now (empty before the start
        and once the run is complete)."""
        return self.person.awaiting

    @property
    def done(self) -> bool:
        return self.person.done

    def start(self) -> RoundResult:
        """Round 0 of both runs (trained on the initial labels); its picks are the first batch."""
        if self.person.rounds:
            raise RuntimeError("this run has started already")
        self.person.step()
        self.catch_up()
        return self.person.rounds[-1]

    def submit(self, answers: BatchAnswers) -> RoundResult:
        """Give the person's labels for the waiting batch, then train the next round of both
        runs (and, where the person made mistakes, the same round on true labels)."""
        batch = [int(i) for i in self.batch]
        if answers.indices != batch:
            raise ValueError("these answers are for another batch than the one waiting")
        if not answers.complete:
            raise ValueError(f"{len(batch) - answers.n_answered} of the {len(batch)} images have no label yet")
        self.person.give_labels(answers.labels, answers.seconds)
        result = self.person.step()
        self.catch_up()
        return result

    def catch_up(self) -> None:
        """Step the simulated run to as many rounds as the person's, and compute the true-label
        accuracy of every round that trained on a wrong label."""
        while len(self.simulated.rounds) < len(self.person.rounds) and not self.simulated.done:
            self.simulated.step()
        wrong = 0
        for r, rnd in enumerate(self.person.rounds):
            if r not in self._truth:
                self._truth[r] = (self.person.retrain(r, truth=True) if wrong
                                  else (rnd.test_accuracy, rnd.test_loss))
            wrong += self._wrong_in(rnd)

    def _wrong_in(self, rnd: RoundResult) -> int:
        y = self.dataset.y_pool
        return sum(int(g != y[i]) for i, g in zip(rnd.selected, rnd.given_labels))

    def result(self) -> RunResult:
        """The person's run as a result file (labels and seconds in every round)."""
        return self.person.result()

    # ----------------------------------------------------------------- reporting
    def labels(self) -> list[LabelRecord]:
        """Every label the person gave, oldest first."""
        y = self.dataset.y_pool
        out = []
        for rnd in self.person.rounds:
            for k, (i, g) in enumerate(zip(rnd.selected, rnd.given_labels)):
                out.append(LabelRecord(
                    round=rnd.round, index=i, given=g, truth=int(y[i]),
                    predicted=rnd.selected_predicted[k] if rnd.selected_predicted else None,
                    seconds=rnd.label_seconds[k] if rnd.label_seconds else None))
        return out

    def costs(self) -> list[RoundCost]:
        """Per round: test accuracy with the person's labels, with the true labels of the same
        images, and the simulated oracle's."""
        out, given, wrong = [], 0, 0
        for r, rnd in enumerate(self.person.rounds):
            sim = self.simulated.rounds[r].test_accuracy if r < len(self.simulated.rounds) else None
            out.append(RoundCost(round=r, n_labeled=rnd.n_labeled, person_labels=given, mistakes=wrong,
                                 accuracy=rnd.test_accuracy, truth_accuracy=self._truth[r][0],
                                 simulated_accuracy=sim))
            given += len(rnd.given_labels)
            wrong += self._wrong_in(rnd)
        return out


# --------------------------------------------------------------------- in words

def confusions(records: Sequence[LabelRecord], class_names: Sequence[str]) -> list[tuple[str, str, int]]:
    """The person's mistakes grouped: (true class, given class, how often), most frequent first."""
    counts = Counter((r.truth, r.given) for r in records if not r.right)
    return [(class_names[t], class_names[g], n) for (t, g), n in
            sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _points(x: float) -> str:
    pts = abs(x) * 100
    return f"{pts:.1f} percentage point" + ("" if round(pts, 1) == 1.0 else "s")


def cost_summary(records: Sequence[LabelRecord], costs: Sequence[RoundCost]) -> str:
    """What the person's labels and their mistakes did, in plain words (for the page and
    the CLI); class names are not part of it."""
    if not records:
        return "No labels given yet."
    n = len(records)
    wrong = sum(not r.right for r in records)
    last = costs[-1]
    sim = last.simulated_accuracy
    parts = []
    if wrong == 0:
        parts.append(f"All {n} of your labels are right, so your model is the one the simulated oracle "
                     f"trains: {last.accuracy:.1%} test accuracy with {last.n_labeled} labels.")
    else:
        parts.append(f"{wrong} of your {n} labels {'is' if wrong == 1 else 'are'} wrong ({wrong / n:.0%}).")
        if last.mistakes == 0:
            parts.append("The model has not trained on them yet.")
        elif last.cost > 0:
            parts.append(f"{'It' if last.mistakes == 1 else 'They'} cost {_points(last.cost)} of test accuracy: "
                         f"the model trained on your labels reaches {last.accuracy:.1%}; trained on the same "
                         f"images with their true labels it would reach {last.truth_accuracy:.1%}.")
        elif last.cost == 0:
            parts.append(f"{'It' if last.mistakes == 1 else 'They'} made no difference to test accuracy this "
                         f"round: {last.accuracy:.1%} either way.")
        else:
            parts.append(f"This time {'it' if last.mistakes == 1 else 'they'} happened not to hurt: the model "
                         f"trained on your labels reaches {last.accuracy:.1%}, {_points(last.cost)} more than "
                         f"with the same images' true labels ({last.truth_accuracy:.1%}).")
        if sim is not None:
            gap = sim - last.accuracy
            than = ("the same as yours" if gap == 0 else
                    f"{_points(gap)} {'more' if gap > 0 else 'less'} than yours")
            parts.append(f"The simulated oracle, which never errs and so also picked other images, reaches "
                         f"{sim:.1%} with as many labels ({than}).")
    timed = [r.seconds for r in records if r.seconds is not None]
    if timed:
        parts.append(f"You took {statistics.fmean(timed):.1f} s per label on average (median "
                     f"{statistics.median(timed):.1f} s), {sum(timed):.0f} s in all.")
    return " ".join(parts)
