"""Query strategies: pure functions on arrays.

Three layers, as in modAL: a per-sample *score* from class probabilities (higher
means more informative), a deterministic *top-k* with seeded tie-breaking, and a
:class:`Strategy` object that says which model outputs it needs and returns a
:class:`Selection` (the chosen candidate positions and every candidate's score).

A strategy states what it needs in ``needs``, a set of :class:`Need`:

- ``Need.PROBS``: class probabilities of the candidates, shape (n, classes);
- ``Need.EMBEDDINGS``: the model's penultimate-layer features, shape (n, d), and
  ``Need.LABELED_EMBEDDINGS`` for the labeled set (diversity strategies);
- ``Need.MC_PASSES``: ``passes`` stochastic forward passes with dropout active,
  shape (passes, n, classes) (Bayesian strategies);
- ``Need.HELD_OUT``: a :class:`HeldOut`: the last :data:`HELD_OUT_FRACTION` of the labels (in
  the order they were acquired) scored by a model trained like the round's on the rest
  (UHerding's temperature calibration).

The loop computes exactly what is asked for. A strategy is one class that describes
itself (name, family, description, formula, needs, the config fields it reads,
``from_config``); the :func:`register` decorator puts it in :data:`STRATEGIES`, the one
registry the CLI, config validation, the Strategy page and the pitfall checks read.

References
----------
Settles, B. (2009). Active Learning Literature Survey. University of
Wisconsin-Madison, Computer Sciences Technical Report 1648.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, ClassVar, Mapping, Optional, Sequence

import numpy as np


# The share of the labeled images held out for Need.HELD_OUT: the last int(0.3 |L|) in the order
# they were labeled, as UHerding's reference code holds them out (lSet[-int(0.3 * len(lSet)):]).
HELD_OUT_FRACTION = 0.3


@dataclass(frozen=True)
class HeldOut:
    """Labels a model never saw, for judging its probabilities (``Need.HELD_OUT``).

    ``probs``: (m, classes) class probabilities of the held-out labeled images by a model trained,
    the way the round's model is, on the other labeled images (``n_train`` of them, the fixed
    validation labels aside); ``labels``: their (m,) labels; ``seconds``: what training and
    scoring that model took. Where no model could be judged, ``skipped`` says why (in plain
    words) and ``probs`` / ``labels`` are empty."""

    probs: np.ndarray
    labels: np.ndarray
    n_train: int = 0
    seconds: float = 0.0
    skipped: str = ""

    @classmethod
    def none(cls, why: str, seconds: float = 0.0) -> "HeldOut":
        return cls(np.empty((0, 0)), np.empty(0, dtype=np.int64), 0, seconds, why)


@dataclass(frozen=True)
class StrategyInput:
    """What a strategy may look at. Unrequested fields are None."""

    probs: Optional[np.ndarray] = None
    embeddings: Optional[np.ndarray] = None
    labeled_embeddings: Optional[np.ndarray] = None
    mc_probs: Optional[np.ndarray] = None
    held_out: Optional[HeldOut] = None

    @property
    def n_candidates(self) -> int:
        for a in (self.probs, self.embeddings):
            if a is not None:
                return len(a)
        if self.mc_probs is not None:
            return self.mc_probs.shape[1]
        raise ValueError("strategy input holds no candidate arrays")


@dataclass(frozen=True)
class Selection:
    """``indices``: chosen positions into the candidate arrays, in pick order.
    ``scores``: one informativeness score per candidate (higher = picked first).
    ``record``: what the strategy chose on its own this round, by the name of the
    :class:`~alcore.results.records.RoundResult` field that keeps it (ProbCover's
    ``probcover_radius``, UHerding's ``uherding_temperature``), so the result file and the pages
    can show it."""

    indices: np.ndarray
    scores: np.ndarray
    record: Mapping[str, object] = field(default_factory=dict)


# ------------------------------------------------------------------ probability checks

def check_probs(probs) -> np.ndarray:
    """(n, classes) finite probabilities in [0, 1], rows summing to 1 (tolerance 1e-3)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probabilities must have shape (candidates, classes>=2), got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("probabilities hold NaN or infinite values")
    if (p < -1e-6).any() or (p > 1 + 1e-6).any():
        raise ValueError("probabilities must lie in [0, 1]")
    if len(p) and not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("each row of probabilities must sum to 1")
    return p


def _top2(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    part = np.partition(p, p.shape[1] - 2, axis=1)
    return part[:, -1], part[:, -2]


# ----------------------------------------------------------------------- scores

def least_confidence_scores(probs) -> np.ndarray:
    r"""Least confidence: :math:`s(x) = 1 - \max_c p(c \mid x)`.

    Lewis, D. D. & Gale, W. A. (1994). A sequential algorithm for training text
    classifiers. SIGIR. (Settles 2009, eq. 2.1.)
    """
    p = check_probs(probs)
    return 1.0 - p.max(axis=1)


def margin_scores(probs) -> np.ndarray:
    r"""Margin: :math:`s(x) = 1 - (p(\hat y_1 \mid x) - p(\hat y_2 \mid x))`, with
    :math:`\hat y_1, \hat y_2` the two most probable classes; a small margin
    between them means a high score.

    Scheffer, T., Decomain, C. & Wrobel, S. (2001). Active hidden Markov models for
    information extraction. IDA. (Settles 2009, eq. 2.2.)
    """
    p = check_probs(probs)
    first, second = _top2(p)
    return 1.0 - (first - second)


def ratio_scores(probs) -> np.ndarray:
    r"""Ratio of confidence: :math:`s(x) = p(\hat y_2 \mid x) / p(\hat y_1 \mid x)`,
    in [0, 1]; 1 when the two most probable classes tie.

    Monarch, R. (2021). Human-in-the-Loop Machine Learning, ch. 3 ("ratio of
    confidence").
    """
    p = check_probs(probs)
    first, second = _top2(p)
    return second / np.maximum(first, 1e-12)


def entropy_scores(probs) -> np.ndarray:
    r"""Entropy: :math:`s(x) = -\sum_c p(c \mid x) \log p(c \mid x)` (natural log,
    :math:`0 \log 0 = 0`).

    Shannon, C. E. (1948). A mathematical theory of communication.
    (Settles 2009, eq. 2.3.)
    """
    p = check_probs(probs)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=1)


UNCERTAINTY_SCORES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "least_confidence": least_confidence_scores,
    "margin": margin_scores,
    "ratio": ratio_scores,
    "entropy": entropy_scores,
}


# ------------------------------------------------------------------------ top-k

def check_batch(batch_size: int, n_candidates: int) -> None:
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if n_candidates == 0:
        raise ValueError("the pool is empty: no unlabeled candidates left to pick from")
    if batch_size > n_candidates:
        raise ValueError(f"batch_size {batch_size} is larger than the {n_candidates} "
                         f"unlabeled candidates left")


def check_whole(value, field: str, minimum: int = 1) -> int:
    """``value`` as an int when it is a whole number >= ``minimum`` (not a bool); ValueError naming
    ``field`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{field} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def top_k(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of the k highest scores, best first; equal scores are ordered by
    a random key drawn from ``rng``, so ties break the same way for the same seed."""
    scores = np.asarray(scores, dtype=np.float64)
    check_batch(k, len(scores))
    tiebreak = rng.random(len(scores))
    order = np.lexsort((tiebreak, -scores))
    return order[:k]


# -------------------------------------------------------------------- strategies

class Need(Enum):
    """A model output a strategy reads; the loop computes only what a strategy needs
    (a strategy that needs nothing, like random, gets an empty set)."""

    PROBS = "probs"                            # class probabilities of the candidates (n, classes)
    EMBEDDINGS = "embeddings"                  # penultimate-layer features of the candidates (n, d)
    LABELED_EMBEDDINGS = "labeled_embeddings"  # the same features of the labeled images (m, d)
    MC_PASSES = "mc_probs"                     # stochastic forward passes with dropout (passes, n, classes)
    HELD_OUT = "held_out"                      # a model trained on 70% of the labels, scored on the rest (HeldOut)


class Strategy:
    """One query strategy, self-describing. A subclass sets, as class attributes:

    - ``name``: the registry key (``ExperimentConfig.strategy``, the CLI's ``--strategy``);
    - ``family``: "baseline", "uncertainty", "hybrid", "diversity", "coverage" or "bayesian";
    - ``description``: one plain sentence; ``formula``: its score in LaTeX;
    - ``needs``: the :class:`Need` model outputs it reads (an instance may read fewer: UHerding with
      a set temperature needs no held-out labels);
    - ``config_fields``: the :class:`~alcore.config.ExperimentConfig` fields it reads;
    - ``is_baseline``: True for the one strategy the others are measured against (random);

    and builds itself with :meth:`from_config`. ``select`` picks a batch.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    description: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    needs: ClassVar[frozenset] = frozenset({Need.PROBS})
    config_fields: ClassVar[tuple[str, ...]] = ()
    is_baseline: ClassVar[bool] = False
    passes: int = 0  # stochastic forward passes wanted (with Need.MC_PASSES)

    @classmethod
    def from_config(cls, config=None) -> "Strategy":
        """The strategy configured from ``config``'s :attr:`config_fields` (defaults without one)."""
        return cls()

    @classmethod
    def label(cls, config, *, percent: bool = True) -> str:
        """The strategy as users name it: 'margin'; strategies whose settings tell runs apart add
        them ('hybrid 30%', or 'hybrid 0.3' without ``percent``)."""
        return cls.name

    @classmethod
    def uncertainty_measure(cls, config) -> Optional[str]:
        """The uncertainty measure (a key of :data:`UNCERTAINTY_SCORES`) it ranks by, if any."""
        return None

    def select(self, inputs: StrategyInput, batch_size: int, rng: np.random.Generator) -> Selection:
        raise NotImplementedError

    def restore(self, rounds: Sequence) -> None:
        """Take back what earlier rounds recorded (their :attr:`Selection.record`, kept in the
        round results) when a run is continued, so it picks what an uninterrupted run would."""


# The registry: every strategy class by name, in the order the CLI and the Strategy page list
# them. Filled by :func:`register` as the family modules are imported (alcore.strategies does).
STRATEGIES: dict[str, type[Strategy]] = {}

_FAMILIES = ("baseline", "uncertainty", "hybrid", "diversity", "coverage", "bayesian")


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: add a strategy class to :data:`STRATEGIES` under its ``name``."""
    if not cls.name or not cls.description or not cls.formula:
        raise ValueError(f"{cls.__name__} needs a name, a description and a formula to be registered")
    if cls.family not in _FAMILIES:
        raise ValueError(f"{cls.__name__}: family must be one of {', '.join(_FAMILIES)}, got {cls.family!r}")
    if cls.name in STRATEGIES and STRATEGIES[cls.name] is not cls:
        raise ValueError(f"strategy {cls.name!r} is registered twice")
    STRATEGIES[cls.name] = cls
    return cls


def strategy_class(name: str) -> type[Strategy]:
    """The class registered under ``name``; ValueError listing the choices otherwise."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def make_strategy(name: str, config=None) -> Strategy:
    """The strategy registered under ``name``, configured from ``config``."""
    return strategy_class(name).from_config(config)


def is_baseline(name: str) -> bool:
    """Whether ``name`` is the baseline the other strategies are measured against (random)."""
    cls = STRATEGIES.get(name)
    return bool(cls is not None and cls.is_baseline)


def strategy_label(config, *, percent: bool = True) -> str:
    """``config``'s strategy as users name it ('margin', 'hybrid 30%'); see :meth:`Strategy.label`."""
    cls = STRATEGIES.get(config.strategy)
    return cls.label(config, percent=percent) if cls is not None else str(config.strategy)


def fields_used_by(field: str) -> tuple[str, ...]:
    """The strategies that read config ``field`` (empty when every strategy ignores it)."""
    return tuple(name for name, cls in STRATEGIES.items() if field in cls.config_fields)


@register
class RandomStrategy(Strategy):
    """Random sampling: every candidate gets a uniform random score; the batch is
    the top ``batch_size`` of them (a uniform sample without replacement)."""

    name = "random"
    family = "baseline"
    description = "Label images picked uniformly at random: the baseline every strategy must beat."
    formula = r"s(x) \sim \mathcal{U}(0, 1)"
    needs = frozenset()
    is_baseline = True

    def select(self, inputs, batch_size, rng):
        n = inputs.n_candidates
        check_batch(batch_size, n)
        scores = rng.random(n)
        return Selection(np.argsort(-scores, kind="stable")[:batch_size], scores)


class UncertaintyStrategy(Strategy):
    """Top-k by one uncertainty score (least_confidence, margin, ratio, entropy).

    Each measure is a registered subclass (:class:`MarginStrategy`, ...); ``UncertaintyStrategy(measure)``
    builds the same strategy from the measure's name."""

    family = "uncertainty"
    measure: ClassVar[str] = ""

    def __init__(self, measure: Optional[str] = None):
        measure = measure if measure is not None else self.measure
        if measure not in UNCERTAINTY_SCORES:
            raise ValueError(f"unknown uncertainty measure {measure!r}; choose one of "
                             f"{', '.join(UNCERTAINTY_SCORES)}")
        self.name = measure
        self.measure = measure

    @classmethod
    def uncertainty_measure(cls, config) -> Optional[str]:
        return cls.measure

    def select(self, inputs, batch_size, rng):
        scores = UNCERTAINTY_SCORES[self.measure](inputs.probs)
        return Selection(top_k(scores, batch_size, rng), scores)


@register
class LeastConfidenceStrategy(UncertaintyStrategy):
    """Least confidence: top-k by 1 - max_c p(c|x) (:func:`least_confidence_scores`)."""

    name = measure = "least_confidence"
    description = "Label the images whose most likely class has the lowest probability: score = 1 - max_c p(c|x)."
    formula = r"s(x) = 1 - \max_c p(c \mid x)"


@register
class MarginStrategy(UncertaintyStrategy):
    """Margin: top-k by 1 - (p1 - p2) (:func:`margin_scores`)."""

    name = measure = "margin"
    description = "Label the images where the two most likely classes are closest: score = 1 - (p1 - p2)."
    formula = r"s(x) = 1 - \big(p(\hat y_1 \mid x) - p(\hat y_2 \mid x)\big)"


@register
class RatioStrategy(UncertaintyStrategy):
    """Ratio of confidence: top-k by p2 / p1 (:func:`ratio_scores`)."""

    name = measure = "ratio"
    description = "Like margin, but relative: score = p2 / p1, the runner-up's probability over the winner's."
    formula = r"s(x) = p(\hat y_2 \mid x) \,/\, p(\hat y_1 \mid x)"


@register
class EntropyStrategy(UncertaintyStrategy):
    """Entropy: top-k by -sum_c p log p (:func:`entropy_scores`)."""

    name = measure = "entropy"
    description = ("Label the images whose whole predicted distribution is most spread out: "
                   "score = -sum_c p(c|x) log p(c|x).")
    formula = r"s(x) = -\sum_c p(c \mid x) \log p(c \mid x)"


@register
class HybridStrategy(Strategy):
    r"""A share of each batch by uncertainty, the rest at random.

    ``round(fraction * batch_size)`` candidates are the top-scored under
    ``measure``; the remaining slots are drawn uniformly from the candidates not
    already picked. fraction = 0 is random sampling, 1 is pure uncertainty
    sampling. Mixing in random picks counters the redundancy of top-k batches
    (Kirsch et al. 2019, BatchBALD; Kirsch et al. 2023, "Stochastic batch
    acquisition").
    """

    name = "hybrid"
    family = "hybrid"
    description = ("Take a set share of each batch by an uncertainty measure and fill the rest at random, "
                   "trading informativeness against redundancy.")
    formula = (r"\text{batch} = \text{top}_{\lfloor f b \rceil}\, s_{\text{measure}}(x) \;\cup\; "
               r"\text{random}_{b - \lfloor f b \rceil}")
    config_fields = ("hybrid_fraction", "hybrid_measure")

    def __init__(self, fraction: float, measure: str = "margin"):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"hybrid_fraction must lie in [0, 1], got {fraction}")
        if measure not in UNCERTAINTY_SCORES:
            raise ValueError(f"unknown hybrid_measure {measure!r}; choose one of {', '.join(UNCERTAINTY_SCORES)}")
        self.fraction = fraction
        self.measure = measure

    @classmethod
    def from_config(cls, config=None) -> "HybridStrategy":
        if config is None:
            return cls(0.5, "margin")
        return cls(config.hybrid_fraction, config.hybrid_measure)

    @classmethod
    def label(cls, config, *, percent: bool = True) -> str:
        return f"hybrid {config.hybrid_fraction:.0%}" if percent else f"hybrid {config.hybrid_fraction:g}"

    @classmethod
    def uncertainty_measure(cls, config) -> Optional[str]:
        return config.hybrid_measure

    def select(self, inputs, batch_size, rng):
        scores = UNCERTAINTY_SCORES[self.measure](inputs.probs)
        n = len(scores)
        check_batch(batch_size, n)
        k_unc = int(round(self.fraction * batch_size))
        uncertain = top_k(scores, k_unc, rng) if k_unc > 0 else np.empty(0, dtype=np.int64)
        rest = np.setdiff1d(np.arange(n), uncertain, assume_unique=True)
        randoms = rng.permutation(rest)[: batch_size - k_unc]
        return Selection(np.concatenate([uncertain, randoms]).astype(np.int64), scores)
