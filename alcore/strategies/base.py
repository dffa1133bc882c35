"""Query strategies: pure functions on arrays.

Three layers, as in modAL: a per-sample *score* from class probabilities (higher
means more informative), a deterministic *top-k* with seeded tie-breaking, and a
:class:`Strategy` object that says which model outputs it needs and returns a
:class:`Selection` (the chosen candidate positions and every candidate's score).

A strategy states what it needs in ``needs``:

- ``"probs"``: class probabilities of the candidates, shape (n, classes);
- ``"embeddings"``: the model's penultimate-layer features, shape (n, d), and
  ``"labeled_embeddings"`` for the labeled set (diversity strategies);
- ``"mc_probs"``: ``passes`` stochastic forward passes with dropout active,
  shape (passes, n, classes) (Bayesian strategies).

The loop computes exactly what is asked for, so new strategies plug in by
registering a factory in :data:`STRATEGIES`.

References
----------
Settles, B. (2009). Active Learning Literature Survey. University of
Wisconsin-Madison, Computer Sciences Technical Report 1648.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np


@dataclass(frozen=True)
class StrategyInput:
    """What a strategy may look at. Unrequested fields are None."""

    probs: Optional[np.ndarray] = None
    embeddings: Optional[np.ndarray] = None
    labeled_embeddings: Optional[np.ndarray] = None
    mc_probs: Optional[np.ndarray] = None

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
    ``scores``: one informativeness score per candidate (higher = picked first)."""

    indices: np.ndarray
    scores: np.ndarray


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


def top_k(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of the k highest scores, best first; equal scores are ordered by
    a random key drawn from ``rng``, so ties break the same way for the same seed."""
    scores = np.asarray(scores, dtype=np.float64)
    check_batch(k, len(scores))
    tiebreak = rng.random(len(scores))
    order = np.lexsort((tiebreak, -scores))
    return order[:k]


# -------------------------------------------------------------------- strategies

class Strategy:
    """Base class: ``needs`` names the model outputs used; ``select`` picks a batch."""

    name: str = ""
    needs: frozenset = frozenset({"probs"})
    passes: int = 0  # stochastic forward passes wanted (with "mc_probs")

    def select(self, inputs: StrategyInput, batch_size: int, rng: np.random.Generator) -> Selection:
        raise NotImplementedError


class RandomStrategy(Strategy):
    """Random sampling: every candidate gets a uniform random score; the batch is
    the top ``batch_size`` of them (a uniform sample without replacement)."""

    name = "random"
    needs = frozenset()

    def select(self, inputs, batch_size, rng):
        n = inputs.n_candidates
        check_batch(batch_size, n)
        scores = rng.random(n)
        return Selection(np.argsort(-scores, kind="stable")[:batch_size], scores)


class UncertaintyStrategy(Strategy):
    """Top-k by one uncertainty score (least_confidence, margin, ratio, entropy)."""

    def __init__(self, measure: str):
        if measure not in UNCERTAINTY_SCORES:
            raise ValueError(f"unknown uncertainty measure {measure!r}; choose one of "
                             f"{', '.join(UNCERTAINTY_SCORES)}")
        self.name = measure
        self.measure = measure

    def select(self, inputs, batch_size, rng):
        scores = UNCERTAINTY_SCORES[self.measure](inputs.probs)
        return Selection(top_k(scores, batch_size, rng), scores)


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

    def __init__(self, fraction: float, measure: str = "margin"):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"hybrid_fraction must lie in [0, 1], got {fraction}")
        if measure not in UNCERTAINTY_SCORES:
            raise ValueError(f"unknown hybrid_measure {measure!r}; choose one of {', '.join(UNCERTAINTY_SCORES)}")
        self.fraction = fraction
        self.measure = measure

    def select(self, inputs, batch_size, rng):
        scores = UNCERTAINTY_SCORES[self.measure](inputs.probs)
        n = len(scores)
        check_batch(batch_size, n)
        k_unc = int(round(self.fraction * batch_size))
        uncertain = top_k(scores, k_unc, rng) if k_unc > 0 else np.empty(0, dtype=np.int64)
        rest = np.setdiff1d(np.arange(n), uncertain, assume_unique=True)
        randoms = rng.permutation(rest)[: batch_size - k_unc]
        return Selection(np.concatenate([uncertain, randoms]).astype(np.int64), scores)


STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "random": lambda cfg=None: RandomStrategy(),
    "least_confidence": lambda cfg=None: UncertaintyStrategy("least_confidence"),
    "margin": lambda cfg=None: UncertaintyStrategy("margin"),
    "ratio": lambda cfg=None: UncertaintyStrategy("ratio"),
    "entropy": lambda cfg=None: UncertaintyStrategy("entropy"),
    "hybrid": lambda cfg=None: HybridStrategy(
        cfg.hybrid_fraction if cfg is not None else 0.5,
        cfg.hybrid_measure if cfg is not None else "margin"),
}

DESCRIPTIONS: dict[str, str] = {
    "random": "Label images picked uniformly at random: the baseline every strategy must beat.",
    "least_confidence": "Label the images whose most likely class has the lowest probability: "
                        "score = 1 - max_c p(c|x).",
    "margin": "Label the images where the two most likely classes are closest: "
              "score = 1 - (p1 - p2).",
    "ratio": "Like margin, but relative: score = p2 / p1, the runner-up's probability over the winner's.",
    "entropy": "Label the images whose whole predicted distribution is most spread out: "
               "score = -sum_c p(c|x) log p(c|x).",
    "hybrid": "Take a set share of each batch by an uncertainty measure and fill the rest at random, "
              "trading informativeness against redundancy.",
}


FORMULAS: dict[str, str] = {
    "random": r"s(x) \sim \mathcal{U}(0, 1)",
    "least_confidence": r"s(x) = 1 - \max_c p(c \mid x)",
    "margin": r"s(x) = 1 - \big(p(\hat y_1 \mid x) - p(\hat y_2 \mid x)\big)",
    "ratio": r"s(x) = p(\hat y_2 \mid x) \,/\, p(\hat y_1 \mid x)",
    "entropy": r"s(x) = -\sum_c p(c \mid x) \log p(c \mid x)",
    "hybrid": r"\text{batch} = \text{top}_{\lfloor f b \rceil}\, s_{\text{measure}}(x) \;\cup\; \text{random}_{b - \lfloor f b \rceil}",
}


def make_strategy(name: str, config=None) -> Strategy:
    """The strategy registered under ``name``, configured from ``config``."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name](config)


def register(module) -> None:
    """Add a strategy family module's FACTORIES, DESCRIPTIONS and FORMULAS to the registry
    (done for the built-in families when the ``alcore`` package is imported)."""
    STRATEGIES.update(module.FACTORIES)
    DESCRIPTIONS.update(module.DESCRIPTIONS)
    FORMULAS.update(module.FORMULAS)
