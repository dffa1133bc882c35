"""Bayesian disagreement strategies from stochastic forward passes (MC dropout).

With dropout left active at prediction time, every forward pass uses a different
thinned network; T passes are T samples from an approximate posterior over the
model (Gal & Ghahramani 2016). The strategies here score a candidate by how much
those T predictions *disagree*, which plain uncertainty scores on one averaged
prediction cannot see: a candidate whose passes are each confident but contradict
one another (the model does not know) looks, after averaging, just like one whose
passes all agree on a flat prediction (the image is ambiguous).

Each strategy is a pure score function on ``mc_probs`` of shape (T, n, C) --
``T`` passes, ``n`` candidates, ``C`` classes -- plus a :class:`Strategy` that asks
the loop for ``Need.MC_PASSES`` with ``passes = T`` and picks the top ``batch_size``
scores with :func:`alcore.strategies.base.top_k` (seeded tie-breaking).

The model needs dropout: ``mlp`` or ``cnn`` with ``dropout > 0``. Without it every
pass is the same and all three scores are 0 for every candidate.

References
----------
Gal, Y., Islam, R. & Ghahramani, Z. (2017). Deep Bayesian active learning with
image data. ICML.

Gal, Y. & Ghahramani, Z. (2016). Dropout as a Bayesian approximation:
representing model uncertainty in deep learning. ICML.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from alcore.config import check_model_has_dropout
from alcore.strategies.base import Need, Selection, Strategy, StrategyInput, register, top_k

DEFAULT_PASSES = 10


# ------------------------------------------------------------------ input checks

def check_mc_probs(mc_probs) -> np.ndarray:
    """(T, n, C) stochastic-pass probabilities as float64, after checking them.

    T >= 2 passes, C >= 2 classes, finite values in [0, 1], and every pass's row
    summing to 1 (tolerance 1e-3, as :func:`alcore.strategies.base.check_probs`).
    """
    if mc_probs is None:
        raise ValueError("this strategy needs mc_probs (stochastic forward passes with dropout "
                         "active, shape (passes, candidates, classes)) but got None")
    p = np.asarray(mc_probs, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError(f"mc_probs must have shape (passes, candidates, classes), a 3-D array, "
                         f"got {p.ndim}-D shape {p.shape}")
    if p.shape[0] < 2:
        raise ValueError(f"mc_probs needs at least 2 stochastic passes to measure disagreement, "
                         f"got {p.shape[0]}")
    if p.shape[2] < 2:
        raise ValueError(f"mc_probs needs at least 2 classes, got {p.shape[2]}")
    if not np.isfinite(p).all():
        raise ValueError("mc_probs hold NaN or infinite values")
    if (p < -1e-6).any() or (p > 1 + 1e-6).any():
        raise ValueError("mc_probs must lie in [0, 1]")
    if p.size and not np.allclose(p.sum(axis=2), 1.0, atol=1e-3):
        raise ValueError("each pass's row of mc_probs must sum to 1 over the classes")
    return p


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy over the last axis, natural log, 0 log 0 = 0."""
    positive = p > 0
    logs = np.log(np.where(positive, p, 1.0))
    return -(np.where(positive, p * logs, 0.0)).sum(axis=-1)


# ------------------------------------------------------------------------ scores

def bald_scores(mc_probs) -> np.ndarray:
    r"""BALD: the mutual information between the label and the model parameters.

    .. math::

        s(x) = \mathbb{H}\Big[\tfrac{1}{T}\textstyle\sum_t p_t(\cdot \mid x)\Big]
               - \tfrac{1}{T}\textstyle\sum_t \mathbb{H}\big[p_t(\cdot \mid x)\big],
        \qquad \mathbb{H}[p] = -\textstyle\sum_c p_c \log p_c

    (natural log, :math:`0 \log 0 = 0`): the entropy of the mean prediction minus
    the mean entropy of the passes. It is high when the passes are individually
    confident but disagree, and 0 when they all agree. By Jensen's inequality it
    lies in [0, log C]; negatives of rounding size are clipped to 0.

    Parameters
    ----------
    mc_probs : array of shape (T, n, C)
        Class probabilities of ``n`` candidates from ``T >= 2`` stochastic passes.

    Returns
    -------
    ndarray of shape (n,)

    References
    ----------
    Houlsby, N., Huszár, F., Ghahramani, Z. & Lengyel, M. (2011). Bayesian active
    learning for classification and preference learning. arXiv:1112.5745.
    Gal, Islam & Ghahramani (2017), eq. (2) ("BALD").
    """
    p = check_mc_probs(mc_probs)
    mutual_information = _entropy(p.mean(axis=0)) - _entropy(p).mean(axis=0)
    return np.maximum(mutual_information, 0.0)


def var_ratios_scores(mc_probs) -> np.ndarray:
    r"""Variation ratios: the share of passes that did not vote for the modal class.

    .. math::

        s(x) = 1 - \frac{f_m(x)}{T}, \qquad
        f_m(x) = \max_c \big|\{t : \arg\max_{c'} p_t(c' \mid x) = c\}\big|

    Each pass votes for its most probable class; :math:`f_m` is the number of votes
    of the modal (most voted) class. 0 when every pass votes alike, at most
    :math:`1 - \lceil T / C \rceil / T` (e.g. 0.5 for two passes that disagree).

    Ties are deterministic: a pass whose top probabilities tie votes for the lowest
    class index (``argmax``); when several classes share the most votes, ``f_m`` is
    that shared count, so the score does not depend on which of them is "the" mode.

    Parameters
    ----------
    mc_probs : array of shape (T, n, C)

    Returns
    -------
    ndarray of shape (n,)

    References
    ----------
    Freeman, L. C. (1965). Elementary Applied Statistics for Students in
    Behavioral Science. Wiley.
    Gal, Islam & Ghahramani (2017), eq. (3) ("Variation Ratios").
    """
    p = check_mc_probs(mc_probs)
    T, _, C = p.shape
    votes = p.argmax(axis=2)  # (T, n): each pass's class
    counts = (votes[:, :, None] == np.arange(C)).sum(axis=0)  # (n, C): votes per class
    return 1.0 - counts.max(axis=1) / T


def mean_std_scores(mc_probs) -> np.ndarray:
    r"""Mean standard deviation: the spread of each class probability over the
    passes, averaged over classes.

    .. math::

        s(x) = \frac{1}{C}\sum_c \sqrt{\frac{1}{T}\sum_t
               \big(p_t(c \mid x) - \bar p(c \mid x)\big)^2},
        \qquad \bar p(c \mid x) = \frac{1}{T}\sum_t p_t(c \mid x)

    The standard deviation is the *population* one (divisor T, numpy ``ddof=0``),
    as in the Gal, Islam & Ghahramani (2017) formula; it is 0 when every pass
    agrees and at most 0.5.

    Parameters
    ----------
    mc_probs : array of shape (T, n, C)

    Returns
    -------
    ndarray of shape (n,)

    References
    ----------
    Kampffmeyer, M., Salberg, A.-B. & Jenssen, R. (2016). Semantic segmentation of
    small objects and modeling of uncertainty in urban remote sensing images using
    deep convolutional neural networks. CVPR Workshops.
    Gal, Islam & Ghahramani (2017), eq. (4) ("Mean STD").
    """
    p = check_mc_probs(mc_probs)
    return p.std(axis=0, ddof=0).mean(axis=1)


BAYESIAN_SCORES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "bald": bald_scores,
    "var_ratios": var_ratios_scores,
    "mean_std": mean_std_scores,
}


# -------------------------------------------------------------------- strategies

class BayesianStrategy(Strategy):
    """Top-k by a disagreement score over ``passes`` stochastic forward passes.

    Subclasses set ``name`` and ``score`` (a function of ``mc_probs``).
    """

    family = "bayesian"
    needs = frozenset({Need.MC_PASSES})
    config_fields = ("mc_passes",)
    score: Callable[[np.ndarray], np.ndarray]

    def __init__(self, passes: int = DEFAULT_PASSES):
        if isinstance(passes, bool) or not isinstance(passes, (int, np.integer)) or passes < 2:
            raise ValueError(f"{self.name}: passes must be a whole number >= 2 (stochastic forward "
                             f"passes with dropout active), got {passes!r}")
        self.passes = int(passes)

    @classmethod
    def from_config(cls, config=None) -> "BayesianStrategy":
        """``config.mc_passes`` passes (10 without a config). With a config, a model without
        dropout is refused here, before any training, with a message that names the fix."""
        if config is None:
            return cls(DEFAULT_PASSES)
        check_model_has_dropout(f"strategy {cls.name!r}", config)
        return cls(getattr(config, "mc_passes", DEFAULT_PASSES))

    def select(self, inputs: StrategyInput, batch_size: int, rng: np.random.Generator) -> Selection:
        p = check_mc_probs(inputs.mc_probs)
        if p.shape[0] != self.passes:
            raise ValueError(f"{self.name} asked for {self.passes} stochastic passes but mc_probs "
                             f"holds {p.shape[0]}")
        scores = self.score(p)
        return Selection(top_k(scores, batch_size, rng), scores)


@register
class BaldStrategy(BayesianStrategy):
    """BALD (Houlsby et al. 2011): entropy of the mean prediction minus mean entropy."""

    name = "bald"
    description = ("Run the network several times with dropout switched on and label the images where "
                   "these runs are each sure of themselves but disagree with one another.")
    formula = (r"s(x) = \mathbb{H}\Big[\tfrac{1}{T}\sum_t p_t(\cdot \mid x)\Big]"
               r" - \tfrac{1}{T}\sum_t \mathbb{H}\big[p_t(\cdot \mid x)\big],"
               r"\quad \mathbb{H}[p] = -\sum_c p_c \log p_c")
    score = staticmethod(bald_scores)


@register
class VarRatiosStrategy(BayesianStrategy):
    """Variation ratios (Freeman 1965): 1 - (votes of the modal class) / passes."""

    name = "var_ratios"
    description = ("Run the network several times with dropout switched on, let each run vote for "
                   "a class, and label the images where the fewest runs vote for the winning class.")
    formula = (r"s(x) = 1 - \frac{f_m(x)}{T},\quad f_m(x) = \max_c \big|\{t : "
               r"\arg\max_{c'} p_t(c' \mid x) = c\}\big|")
    score = staticmethod(var_ratios_scores)


@register
class MeanStdStrategy(BayesianStrategy):
    """Mean STD (Kampffmeyer et al. 2016): per-class std over passes, averaged."""

    name = "mean_std"
    description = ("Run the network several times with dropout switched on and label the images whose "
                   "class probabilities jump around the most from run to run.")
    formula = (r"s(x) = \frac{1}{C}\sum_c \sqrt{\frac{1}{T}\sum_t \big(p_t(c \mid x)"
               r" - \bar p(c \mid x)\big)^2}")
    score = staticmethod(mean_std_scores)
