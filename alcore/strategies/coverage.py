"""Typicality and coverage strategies: what to label first when labels are few.

With a handful of labels per class a model's uncertainty is mostly noise; what helps most
then is labelling *typical* images that together *cover* the pool, and only at larger
budgets does uncertainty take over (the "phase transition" of Hacohen et al. 2022). The
strategies here read the features of the unlabeled candidates and of the labeled images:

- ``typiclust``: k-means into (labeled + batch) clusters; from the largest clusters with
  the fewest labels, the most typical image (Hacohen, Dekel & Weinshall 2022);
- ``probcover``: greedy maximum coverage with balls of radius delta around the picks,
  delta chosen by the purity rule (Yehuda, Dekel, Hacohen & Weinshall 2022);
- ``maxherding``: greedy kernel herding of a Gaussian-kernel coverage (Bae, Noh &
  Sutherland 2024);
- ``uherding``: the same coverage weighted by each image's uncertainty (Bae, Sutherland &
  Oliveira 2025).

Features are scaled to unit length first, as the papers' reference code scales its
self-supervised features (``normalize=False`` keeps them as they are), so distances lie in
[0, 2] and a radius or kernel width means the same on every dataset.

Memory stays bounded on large pools: distances are computed in blocks of at most
:data:`~alcore.strategies.diversity.CHUNK_ELEMENTS` entries (32 MiB of float64), never as a
candidates x candidates matrix or a stored neighbour graph. Besides one block, a strategy
keeps the unit-length features (n x d) and a few length-n vectors: O(CHUNK_ELEMENTS + n d).

References
----------
Hacohen, G., Dekel, A. & Weinshall, D. (2022). Active learning on a budget: opposite
strategies suit high and low budgets. ICML. (Reference code: github.com/avihu111/TypiClust.)
Yehuda, O., Dekel, A., Hacohen, G. & Weinshall, D. (2022). Active learning through a
covering lens. NeurIPS.
Bae, W., Noh, J. & Sutherland, D. J. (2024). Generalized coverage for more robust
low-budget active learning. ECCV.
Bae, W., Sutherland, D. J. & Oliveira, G. L. (2025). Uncertainty herding: one active
learning method for all label budgets. ICLR. (Reference code: github.com/BorealisAI/uherding.)
Minoux, M. (1978). Accelerated greedy algorithms for maximizing submodular set functions.
Optimization Techniques, LNCS 7.
"""
from __future__ import annotations

import heapq
from typing import Optional

import numpy as np

from alcore.strategies.base import (HELD_OUT_FRACTION, UNCERTAINTY_SCORES, HeldOut, Need, Selection, Strategy,
                                   StrategyInput, check_batch, check_whole, register, top_k)
from alcore.strategies.diversity import (CHUNK_ELEMENTS, MINIBATCH_THRESHOLD, _float_array, _thread_limit,
                                        check_embeddings, fit_kmeans, min_sq_distances, row_sq_norms,
                                        sq_distance_block)

# TypiClust (the reference code's constants): typicality's neighbours, the most clusters,
# and the size up to which a cluster is an outlier, skipped while larger clusters remain.
TYPICALITY_NEIGHBORS = 20
MAX_CLUSTERS = 500
MIN_CLUSTER_SIZE = 5
# Guard against a zero mean distance (duplicates) in typicality, as scikit-activeml's.
TYPICALITY_EPS = 1e-7

# ProbCover: the radii the purity rule chooses among, on unit-length features (distances
# lie in [0, 2]; the paper's chosen radii are 0.55-0.75), and the purity it asks for.
RADII = np.round(np.arange(1, 201) * 0.01, 2)
PURITY = 0.95

# Herding: the Gaussian kernel's width on unit-length features when none is set (MaxHerding's
# default in the reference code), and UHerding's uncertainty measure.
HERDING_BANDWIDTH = 1.0
# UHerding's temperature calibration: the temperatures searched, 1.0, 1.1, ..., 19.9 (the reference
# code's np.arange(1.0, 20, 0.1), without its rounding drift: 1.2000000000000002 there is 1.2 here).
TEMPERATURES = np.arange(10, 200) / 10


# ------------------------------------------------------------------------- inputs

def unit_rows(x) -> np.ndarray:
    """The rows of ``x`` scaled to unit Euclidean length (all-zero rows stay zero), as a new
    array of ``x``'s float dtype."""
    x = _float_array(x)
    norms = np.sqrt(row_sq_norms(x))
    return x / np.where(norms > 0, norms, 1)[:, None]


def _features(inputs: StrategyInput, name: str, normalize: bool) -> tuple[np.ndarray, np.ndarray]:
    """(candidates, labeled) features, checked, unit-length unless ``normalize`` is False; the
    labeled rows are (0, d) when there are none."""
    n = len(inputs.probs) if inputs.probs is not None else None
    cand, _ = check_embeddings(inputs.embeddings, n)
    if inputs.labeled_embeddings is None:
        raise ValueError(f"{name} needs labeled_embeddings: the features of the labeled images")
    lab = np.asarray(inputs.labeled_embeddings)
    lab = np.empty((0, cand.shape[1]), dtype=cand.dtype) if lab.size == 0 else lab
    lab, _ = check_embeddings(lab, what="labeled_embeddings", n_features=cand.shape[1])
    lab = lab.astype(cand.dtype, copy=False)
    return (unit_rows(cand), unit_rows(lab)) if normalize else (cand, lab)


# ---------------------------------------------------------------------- TypiClust

def typicality(x: np.ndarray, k: int, chunk_elements: int = CHUNK_ELEMENTS) -> np.ndarray:
    r"""Typicality of each row of ``x`` among the others: the inverse of its mean Euclidean
    distance to its k nearest other rows (Hacohen et al. 2022, eq. 3),

    .. math:: \operatorname{Typicality}(x) = \Big(\frac{1}{k} \sum_{x_i \in \text{kNN}(x)}
              \lVert x - x_i \rVert\Big)^{-1}

    computed as ``k / (sum + 1e-7)`` like scikit-activeml's. k is capped at len(x) - 1; a
    single row has typicality 1. Distances in blocks of at most ``chunk_elements``.
    """
    x = _float_array(x)
    n = len(x)
    if n == 1:
        return np.ones(1)
    k = min(int(k), n - 1)
    sq = row_sq_norms(x)
    sums = np.empty(n)
    rows = max(1, chunk_elements // n)
    for s in range(0, n, rows):
        block = sq_distance_block(x[s:s + rows], x, sq[s:s + rows], sq)
        block[np.arange(len(block)), np.arange(s, s + len(block))] = np.inf  # not its own neighbour
        nearest = np.partition(block, k - 1, axis=1)[:, :k]
        sums[s:s + rows] = np.sqrt(nearest).sum(axis=1)
    return k / (sums + TYPICALITY_EPS)


def _cluster_neighbors(size: int, k: int) -> int:
    """TypiClust's reference code uses min(k, size // 2) neighbours in a cluster of ``size``
    unlabeled images ("density among half of the cluster"); scikit-activeml uses min(k, size - 1)."""
    return min(k, max(1, size // 2))


def typiclust_select(candidates: np.ndarray, labeled: np.ndarray, batch_size: int, rng: np.random.Generator,
                     k: int = TYPICALITY_NEIGHBORS, min_cluster_size: int = MIN_CLUSTER_SIZE,
                     max_clusters: int = MAX_CLUSTERS,
                     minibatch_threshold: int = MINIBATCH_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    r"""TypiClust (Hacohen et al. 2022, Algorithm 1 and the reference code).

    1. k-means (:func:`~alcore.strategies.diversity.fit_kmeans`, seeded by the first draw from
       ``rng``) of the labeled and candidate rows together into
       :math:`\min(|L| + b, \text{max\_clusters})` clusters;
    2. the clusters ordered by fewest labeled rows, then largest (ties at random), leaving
       out clusters of at most ``min_cluster_size`` rows (outliers) while there are others;
    3. the i-th pick is the most typical free candidate (:func:`typicality` among the
       cluster's unlabeled rows, :func:`_cluster_neighbors` neighbours) of the
       (i mod clusters)-th cluster in that order.

    With |L| + b clusters at least b clusters hold no label, so every pick comes from an
    uncovered cluster, the largest first: scikit-activeml's ``TypiClust`` rule. Returns the
    picks (candidate positions, in pick order) and each candidate's typicality in its
    cluster before any pick.
    """
    candidates, labeled = _float_array(candidates), _float_array(labeled)
    n, m = len(candidates), len(labeled)
    check_batch(batch_size, n)
    x = np.concatenate([labeled, candidates]) if m else candidates
    n_clusters = min(m + batch_size, max_clusters, len(x))
    clusters = fit_kmeans(x, n_clusters, rng, minibatch_threshold).labels_
    sizes = np.bincount(clusters, minlength=n_clusters)
    labeled_counts = np.bincount(clusters[:m], minlength=n_clusters)
    cand_clusters = clusters[m:]
    members = {int(c): np.flatnonzero(cand_clusters == c) for c in np.unique(cand_clusters)}
    scores = np.empty(n)
    for c, idx in members.items():
        scores[idx] = typicality(candidates[idx], _cluster_neighbors(len(idx), k))

    eligible = np.flatnonzero(sizes > min_cluster_size)
    if not len(eligible):
        eligible = np.flatnonzero(sizes > 0)
    order = eligible[np.lexsort((rng.random(len(eligible)), -sizes[eligible], labeled_counts[eligible]))]
    taken = np.zeros(n, dtype=bool)
    visited: set[int] = set()
    picks: list[int] = []
    i = misses = 0
    while len(picks) < batch_size:
        c = int(order[i % len(order)])
        i += 1
        idx = members.get(c, np.empty(0, dtype=np.int64))
        idx = idx[~taken[idx]]
        if not len(idx):
            misses += 1
            if misses >= len(order):  # the left-out small clusters hold the free candidates
                order = np.array([c for c in members if not taken[members[c]].all()])
                i = misses = 0
            continue
        misses = 0
        typ = scores[idx] if c not in visited else typicality(candidates[idx], _cluster_neighbors(len(idx), k))
        visited.add(c)
        j = int(idx[top_k(typ, 1, rng)[0]])
        picks.append(j)
        taken[j] = True
    return np.asarray(picks, dtype=np.int64), scores


@register
class TypiClustStrategy(Strategy):
    r"""TypiClust: label the most typical image of each of the largest clusters that hold no
    label yet (Hacohen, Dekel & Weinshall 2022; :func:`typiclust_select`).

    .. math:: \operatorname{Typicality}(x) = \Big(\frac{1}{K} \sum_{x_i \in \text{KNN}(x)}
              \lVert h(x) - h(x_i) \rVert\Big)^{-1}

    The features are clustered into (labeled + batch) clusters by k-means, so each batch goes
    to the clusters no label covers yet, and within each to its densest point rather than an
    outlier. Scores are each candidate's typicality within its cluster.

    Differences from the references, on purpose: distances are Euclidean as in the paper
    (its reference code averages squared distances); a cluster of fewer than 2K unlabeled
    images uses half of them as neighbours, as the reference code does (scikit-activeml uses
    all but one); clusters of at most 5 images are skipped while larger ones remain, as in the
    reference code (scikit-activeml keeps them); at most 500 clusters, as in the reference code.
    """

    name = "typiclust"
    family = "coverage"
    description = ("Cluster the pool into as many groups as there will be labels and label, in the largest "
                   "groups without a label, the most typical image: the one closest to its neighbours.")
    formula = (r"\begin{gathered}\text{k-means}_{|L| + b}\big(h(L \cup U)\big),\ \text{largest uncovered first} \\ "
               r"x^\ast = \arg\max_{x} \Big(\tfrac{1}{K} \textstyle\sum_{x_i \in \text{KNN}(x)} "
               r"\lVert h(x) - h(x_i) \rVert\Big)^{-1}\end{gathered}")
    needs = frozenset({Need.EMBEDDINGS, Need.LABELED_EMBEDDINGS})
    config_fields = ("typiclust_neighbors",)

    def __init__(self, neighbors: int = TYPICALITY_NEIGHBORS, normalize: bool = True,
                 min_cluster_size: int = MIN_CLUSTER_SIZE, minibatch_threshold: int = MINIBATCH_THRESHOLD):
        self.neighbors = check_whole(neighbors, "typiclust_neighbors")
        self.normalize = normalize
        self.min_cluster_size = min_cluster_size
        self.minibatch_threshold = minibatch_threshold

    @classmethod
    def from_config(cls, config=None) -> "TypiClustStrategy":
        return cls(config.typiclust_neighbors if config is not None else TYPICALITY_NEIGHBORS)

    def select(self, inputs, batch_size, rng):
        with _thread_limit():
            cand, lab = _features(inputs, self.name, self.normalize)
            check_batch(batch_size, len(cand))
            picks, scores = typiclust_select(cand, lab, batch_size, rng, self.neighbors, self.min_cluster_size,
                                             minibatch_threshold=self.minibatch_threshold)
            return Selection(picks, scores)


# ---------------------------------------------------------------------- ProbCover

def other_label_distances(x: np.ndarray, labels: np.ndarray, chunk_elements: int = CHUNK_ELEMENTS) -> np.ndarray:
    """Each row's squared distance to the nearest row with another label (``inf`` when every
    row has its label). A ball around row i is pure (holds one label) exactly while its
    radius is below the square root of this. O(n^2 d) time in blocks of ``chunk_elements``."""
    x = _float_array(x)
    labels = np.asarray(labels)
    n = len(x)
    sq = row_sq_norms(x)
    out = np.full(n, np.inf)
    rows = max(1, chunk_elements // max(n, 1))
    for s in range(0, n, rows):
        block = sq_distance_block(x[s:s + rows], x, sq[s:s + rows], sq)
        block[labels[s:s + rows, None] == labels[None, :]] = np.inf
        out[s:s + rows] = block.min(axis=1)
    return out


def ball_purity(other_sq: np.ndarray, radii) -> np.ndarray:
    r"""Purity of the balls of each radius: the share of rows whose closed ball
    :math:`B_\delta(x) = \{x' : \lVert x - x' \rVert \le \delta\}` holds no row of another
    label, from :func:`other_label_distances`. Never grows with the radius."""
    radii = np.asarray(radii, dtype=np.float64)
    return (other_sq[None, :] > radii[:, None] ** 2).mean(axis=1)


def purity_radius(x: np.ndarray, labels: np.ndarray, purity: float = PURITY, radii=RADII) -> float:
    """The purity rule of Yehuda et al. (2022): the largest of ``radii`` whose balls are at least
    ``purity`` pure under ``labels`` (the paper's k-means pseudo-labels); the smallest radius
    when none is (scikit-activeml's fallback)."""
    radii = np.sort(np.asarray(radii, dtype=np.float64))
    ok = np.flatnonzero(ball_purity(other_label_distances(x, labels), radii) >= purity)
    return float(radii[ok[-1]] if len(ok) else radii[0])


def _count_within(x: np.ndarray, x_sq: np.ndarray, cols: np.ndarray, r2: float,
                  chunk_elements: int = CHUNK_ELEMENTS, among: Optional[np.ndarray] = None) -> np.ndarray:
    """For every row of ``x``: how many rows ``cols`` (where ``among`` holds, if given) lie within
    squared distance ``r2``, in blocks of at most ``chunk_elements`` distances."""
    n = len(x)
    out = np.zeros(n, dtype=np.int64)
    if not len(cols):
        return out
    c, c_sq = x[cols], x_sq[cols]
    step = max(1, chunk_elements // len(cols))
    for s in range(0, n, step):
        near = sq_distance_block(x[s:s + step], c, x_sq[s:s + step], c_sq) <= r2
        if among is not None:
            near &= among[None, :]
        out[s:s + step] = np.count_nonzero(near, axis=1)
    return out


def max_coverage(x: np.ndarray, n_labeled: int, radius: float, batch_size: int, rng: np.random.Generator,
                 chunk_elements: int = CHUNK_ELEMENTS) -> tuple[np.ndarray, np.ndarray]:
    r"""ProbCover's greedy maximum coverage (Yehuda et al. 2022, Algorithm 1) on the rows of
    ``x``: the ``n_labeled`` labeled rows first, then the candidates.

    Every row within ``radius`` of a labeled row is covered. Then, ``batch_size`` times, the
    candidate whose ball :math:`B_\delta(x) = \{x' : \lVert x - x' \rVert \le \delta\}` holds
    the most uncovered rows (its degree) is picked, ties at random, and its ball is covered.
    The ball graph is never stored: the degrees come from one pass over distance blocks, and
    after a pick only the rows it newly covers are compared with every row, to subtract them
    from the degrees of the balls they are in; all picks together cost at most one more pass.
    Memory: one block of ``chunk_elements`` distances plus a few length-n vectors. Once
    everything is covered every degree is 0 and the rest of the batch is uniform at random,
    as in scikit-activeml. Returns the picks (candidate positions) and each candidate's degree
    before the first pick.
    """
    x = _float_array(x)
    n_all = len(x)
    n = n_all - n_labeled
    check_batch(batch_size, n)
    x_sq = row_sq_norms(x)
    r2 = float(radius) ** 2
    uncovered = np.ones(n_all, dtype=bool)
    if n_labeled:
        uncovered &= min_sq_distances(x, x[:n_labeled], x_sq, chunk_elements) > r2
    degree = _count_within(x, x_sq, np.flatnonzero(uncovered), r2, chunk_elements)
    initial = degree[n_labeled:].astype(np.float64)
    priority = rng.random(n)
    free = np.ones(n, dtype=bool)
    picks = np.empty(batch_size, dtype=np.int64)
    for t in range(batch_size):
        cand_degree = np.where(free, degree[n_labeled:], -1)
        best = np.flatnonzero(cand_degree == cand_degree.max())
        j = int(best[np.argmin(priority[best])])
        picks[t] = j
        free[j] = False
        v = n_labeled + j
        ball = sq_distance_block(x[v:v + 1], x, x_sq[v:v + 1], x_sq)[0] <= r2
        newly = np.flatnonzero(ball & uncovered)
        if len(newly):
            uncovered[newly] = False
            degree -= _count_within(x, x_sq, newly, r2, chunk_elements)
            np.maximum(degree, 0, out=degree)  # a pair at the radius to rounding, seen from its two ends
    return picks, initial


@register
class ProbCoverStrategy(Strategy):
    r"""ProbCover: cover the pool with balls of radius :math:`\delta` around the labeled images,
    greedily adding the candidate whose ball covers the most images not yet covered
    (Yehuda, Dekel, Hacohen & Weinshall 2022; :func:`max_coverage`).

    .. math:: x_t = \arg\max_{x \in U} \big|B_\delta(x) \setminus
              \textstyle\bigcup_{c \in L \cup \{x_1..x_{t-1}\}} B_\delta(c)\big|

    :math:`\delta` is ``probcover_radius`` when set, else chosen by the paper's purity rule on
    the first round and kept for the run (:func:`purity_radius`): k-means of the labeled and
    candidate features into as many clusters as there are classes gives pseudo-labels, and
    :math:`\delta` is the largest radius on a grid of 0.01 steps (0.01-2.00, the features are
    unit-length) whose balls hold one pseudo-label for at least ``probcover_purity`` (0.95) of
    the images. The radius used is recorded in every round (``probcover_radius``) and taken
    back when a run is continued. Scores are each candidate's count of uncovered images in its
    ball before the first pick. For features that change every round (mlp, cnn) the radius
    chosen on the first round's features is kept.
    """

    name = "probcover"
    family = "coverage"
    description = ("Draw a ball of fixed radius around every image and label the image whose ball covers the "
                   "most images no labeled image covers yet; the radius keeps 95% of balls within one k-means "
                   "cluster.")
    formula = (r"\begin{gathered}x_t = \arg\max_{x \in U} \big|B_\delta(x) \setminus "
               r"\textstyle\bigcup_{c \in L \cup S} B_\delta(c)\big| \\ "
               r"\delta = \max\{\delta : P(B_\delta \text{ pure}) \ge \alpha\}\end{gathered}")
    needs = frozenset({Need.PROBS, Need.EMBEDDINGS, Need.LABELED_EMBEDDINGS})
    config_fields = ("probcover_radius", "probcover_purity")

    def __init__(self, radius: Optional[float] = None, purity: float = PURITY, normalize: bool = True,
                 radii=RADII, minibatch_threshold: int = MINIBATCH_THRESHOLD):
        if radius is not None and not (np.isfinite(radius) and radius > 0):
            raise ValueError(f"probcover_radius must be a number > 0 (or empty), got {radius!r}")
        if not 0 < purity < 1:
            raise ValueError(f"probcover_purity must lie strictly between 0 and 1, got {purity!r}")
        self.radius = None if radius is None else float(radius)
        self.purity = float(purity)
        self.normalize = normalize
        self.radii = radii
        self.minibatch_threshold = minibatch_threshold
        self.radius_ = self.radius  # the radius in use: set, or chosen on the first select

    @classmethod
    def from_config(cls, config=None) -> "ProbCoverStrategy":
        if config is None:
            return cls()
        return cls(config.probcover_radius, config.probcover_purity)

    @staticmethod
    def radius_origin(config) -> str:
        """How the radius of a run with ``config`` came about, as the CLI and the pages say it."""
        if config.probcover_radius is not None:
            return "as set (probcover_radius)"
        return (f"chosen by the purity rule: the largest radius whose balls hold one k-means cluster for "
                f"at least {config.probcover_purity:.0%} of the images")

    def restore(self, rounds) -> None:
        if self.radius is None:
            self.radius_ = next((r.probcover_radius for r in reversed(rounds)
                                 if getattr(r, "probcover_radius", None) is not None), None)

    def choose_radius(self, x: np.ndarray, classes: int, rng: np.random.Generator) -> float:
        """The purity rule on ``x``, with k-means pseudo-labels of ``classes`` clusters."""
        pseudo = fit_kmeans(x, min(max(int(classes), 2), len(x)), rng, self.minibatch_threshold).labels_
        return purity_radius(x, pseudo, self.purity, self.radii)

    def select(self, inputs, batch_size, rng):
        with _thread_limit():
            cand, lab = _features(inputs, self.name, self.normalize)
            check_batch(batch_size, len(cand))
            x = np.concatenate([lab, cand]) if len(lab) else cand
            if self.radius_ is None:
                if inputs.probs is None:
                    raise ValueError("probcover needs probs to choose its radius: their columns are the classes")
                self.radius_ = self.choose_radius(x, np.shape(inputs.probs)[1], rng)
            picks, degree = max_coverage(x, len(lab), self.radius_, batch_size, rng)
            return Selection(picks, degree, record={"probcover_radius": self.radius_})


# ------------------------------------------------------------------------ herding

def check_bandwidth(bandwidth, optional: bool = False) -> Optional[float]:
    """A kernel width: a finite number > 0 (or None where ``optional``); ValueError naming
    herding_bandwidth otherwise."""
    if bandwidth is None and optional:
        return None
    if bandwidth is None or not (np.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"herding_bandwidth must be a number > 0{' (or empty)' if optional else ''}, "
                         f"got {bandwidth!r}")
    return float(bandwidth)


def gaussian_gains(x: np.ndarray, rows: np.ndarray, gamma: float, floor: np.ndarray, weights: np.ndarray,
                   x_sq: Optional[np.ndarray] = None, chunk_elements: int = CHUNK_ELEMENTS) -> np.ndarray:
    r"""For each row i in ``rows``: :math:`\sum_j w_j \max\big(k(x_i, x_j) - f_j, 0\big)` with
    :math:`k(a, b) = \exp(-\gamma \lVert a - b \rVert^2)`, over every row j of ``x``
    (``floor`` f: each row's best kernel value so far; ``weights`` w). In blocks of at most
    ``chunk_elements`` kernel values."""
    if x_sq is None:
        x_sq = row_sq_norms(x)
    n = len(x)
    weights = np.asarray(weights, dtype=x.dtype)  # float32 blocks stay float32 (no copy per block)
    out = np.empty(len(rows))
    step = max(1, chunk_elements // max(n, 1))
    for s in range(0, len(rows), step):
        r = rows[s:s + step]
        block = sq_distance_block(x[r], x, x_sq[r], x_sq)
        block *= -gamma
        np.exp(block, out=block)
        block -= floor[None, :]
        np.maximum(block, 0, out=block)
        out[s:s + step] = block @ weights
    return out


def herding_select(candidates: np.ndarray, labeled: np.ndarray, batch_size: int, rng: np.random.Generator,
                   bandwidth: float = HERDING_BANDWIDTH, weights: Optional[np.ndarray] = None,
                   chunk_elements: int = CHUNK_ELEMENTS) -> tuple[np.ndarray, np.ndarray]:
    r"""Greedy maximisation of the (weighted) generalized coverage of Bae et al.:

    .. math:: C(S) = \frac{1}{n} \sum_{j \in U} w_j \max_{s \in L \cup S} k(x_j, x_s), \qquad
              k(a, b) = \exp\!\big(-\lVert a - b \rVert^2 / h^2\big)

    over the candidates U (the labeled rows L start the max; none: 0). Each pick is the
    candidate of largest gain :math:`\frac{1}{n}\sum_j w_j \max(k(x, x_j) - f_j, 0)`, f the
    current max, ties at random (MaxHerding: w = 1; UHerding: w = uncertainty). C is monotone
    submodular, so a gain never grows as picks are added: the lazy greedy of Minoux (1978)
    recomputes a gain only when its stale value is on top, and picks exactly what the plain
    greedy does, after one O(n^2 d) pass in blocks plus O(n d) per recomputed gain. Returns
    the picks (candidate positions) and each candidate's gain before the first pick.
    """
    candidates, labeled = _float_array(candidates), _float_array(labeled)
    n = len(candidates)
    check_batch(batch_size, n)
    gamma = 1.0 / check_bandwidth(bandwidth) ** 2
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / n  # the gains are means over the candidates, as scikit-activeml's utilities
    x_sq = row_sq_norms(candidates)
    floor = np.zeros(n)
    if len(labeled):
        floor = np.exp(-gamma * min_sq_distances(candidates, labeled, x_sq, chunk_elements).astype(np.float64))
    floor = floor.astype(candidates.dtype)
    gains = gaussian_gains(candidates, np.arange(n), gamma, floor, w, x_sq, chunk_elements)
    priority = rng.random(n)
    heap = [(-g, p, i) for i, (g, p) in enumerate(zip(gains.tolist(), priority.tolist()))]
    heapq.heapify(heap)
    stamp = np.zeros(n, dtype=np.int64)  # the pick count when each gain was computed
    picks: list[int] = []
    while len(picks) < batch_size:
        neg, p, i = heapq.heappop(heap)
        if stamp[i] == len(picks):  # up to date, and no stale bound above it: the greedy pick
            picks.append(i)
            sq_i = sq_distance_block(candidates[i:i + 1], candidates, x_sq[i:i + 1], x_sq)[0]
            np.maximum(floor, np.exp(-gamma * sq_i).astype(floor.dtype), out=floor)
            continue
        stamp[i] = len(picks)
        g = gaussian_gains(candidates, np.array([i]), gamma, floor, w, x_sq, chunk_elements)[0]
        heapq.heappush(heap, (-g, p, i))
    return np.asarray(picks, dtype=np.int64), gains


def adaptive_bandwidth(labeled: np.ndarray, chunk_elements: int = CHUNK_ELEMENTS) -> Optional[float]:
    """UHerding's adaptive kernel width: the smallest distance between two distinct labeled rows
    (Bae et al. 2025; rows closer than rounding are the same image). None with fewer than two
    distinct rows."""
    x = _float_array(labeled)
    m = len(x)
    if m < 2:
        return None
    sq = row_sq_norms(x)
    tol = 8 * np.finfo(x.dtype).eps * max(1.0, float(sq.max()))
    best = np.inf
    step = max(1, chunk_elements // m)
    for s in range(0, m, step):
        block = sq_distance_block(x[s:s + step], x, sq[s:s + step], sq)
        block[block <= tol] = np.inf  # itself, and duplicates
        best = min(best, float(block.min()))
    return float(np.sqrt(best)) if np.isfinite(best) else None


def tempered(probs, temperature: float) -> np.ndarray:
    r"""Temperature scaling from probabilities: :math:`\operatorname{softmax}(\log p / T)`, which
    equals :math:`\operatorname{softmax}(z / T)` for the logits z (softmax ignores a per-row
    constant). T = 1 returns the probabilities as they are."""
    p = np.asarray(probs, dtype=np.float64)
    if temperature == 1:
        return p
    with np.errstate(divide="ignore"):
        z = np.log(p) / float(temperature)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def expected_calibration_error(probs, labels, n_bins: Optional[int] = None) -> float:
    r"""Expected calibration error (Naeini, Cooper & Hauskrecht 2015; Guo et al. 2017):

    .. math:: \operatorname{ECE} = \sum_{b=1}^{B} \frac{|S_b|}{m}\,
              \big|\operatorname{acc}(S_b) - \operatorname{conf}(S_b)\big|

    over B equal-width bins of the confidence :math:`\max_c p(c \mid x)`, bin b holding the
    images with confidence in :math:`((b-1)/B,\ b/B]`; acc is the share predicted right
    (prediction: the most probable class, the first on a tie), conf the mean confidence. B is
    ``n_bins``, by default the number of classes, as UHerding's reference code (its ``ECELoss``)."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2 or len(p) != len(y) or not len(y):
        raise ValueError(f"expected_calibration_error needs (m, classes) probabilities and m labels, m >= 1; "
                         f"got {p.shape} and {y.shape}")
    n_bins = p.shape[1] if n_bins is None else check_whole(n_bins, "n_bins")
    conf, right = p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
    # bin b holds edges[b] < conf <= edges[b + 1]; a confidence outside (0, 1] is in none (as in the reference)
    bins = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1), conf, side="left") - 1
    inside = (bins >= 0) & (bins < n_bins)
    gaps = np.bincount(bins[inside], weights=conf[inside] - right[inside], minlength=n_bins)
    return float(np.abs(gaps).sum() / len(y))  # sum_b |S_b|/m |conf(S_b) - acc(S_b)|


def calibrated_temperature(probs, labels, temperatures=TEMPERATURES) -> tuple[float, float]:
    r"""UHerding's temperature (Bae, Sutherland & Oliveira 2025, the reference code's
    ``obtain_temperature``): the T of ``temperatures`` whose scaled probabilities
    :func:`tempered` (``probs``, T) have the lowest :func:`expected_calibration_error` on
    ``labels``, the first (smallest, in the grid's order) on a tie. Returns (T, its ECE).

    ``probs`` are a model's probabilities for images it was not trained on; a model that is
    over-confident on them gets T > 1, which evens its probabilities out. The grid starts at 1,
    so an under-confident model keeps T = 1."""
    temperatures = np.asarray(temperatures, dtype=np.float64)
    if not len(temperatures) or not (np.isfinite(temperatures).all() and (temperatures > 0).all()):
        raise ValueError("temperatures must be finite numbers > 0, at least one")
    eces = [expected_calibration_error(tempered(probs, t), labels) for t in temperatures]
    best = int(np.argmin(eces))  # the first of equal minima, as the reference code's strict '<'
    return float(temperatures[best]), float(eces[best])


@register
class MaxHerdingStrategy(Strategy):
    r"""MaxHerding: greedily add the candidate that most raises the generalized coverage
    :math:`\frac{1}{n}\sum_{j} \max_{s \in L \cup S} k(x_j, x_s)`, a Gaussian kernel k on the
    unit-length features (Bae, Noh & Sutherland 2024; :func:`herding_select` with w = 1).

    Unlike ProbCover's all-or-nothing balls, near images count more than far ones. The kernel
    width is ``herding_bandwidth`` (empty: 1.0, the reference code's default);
    scikit-activeml's ``MaxHerding`` uses scikit-learn's default :math:`\gamma = 1/d` instead
    of :math:`1/h^2`. Scores are each candidate's gain before the first pick.
    """

    name = "maxherding"
    family = "coverage"
    description = ("Label the image that most raises how well the labeled images cover the pool, where an "
                   "image counts as covered by its most similar labeled image (a Gaussian kernel).")
    formula = (r"\begin{gathered}x_t = \arg\max_{x \in U} \tfrac{1}{n} \textstyle\sum_{j \in U} g(x, x_j) \\ "
               r"g(x, x_j) = \max\big(k(x, x_j) - \max_{c \in L \cup S} k(x_c, x_j),\, 0\big) \\ "
               r"k(a, b) = e^{-\lVert h(a) - h(b) \rVert^2 / \sigma^2}\end{gathered}")
    needs = frozenset({Need.EMBEDDINGS, Need.LABELED_EMBEDDINGS})
    config_fields = ("herding_bandwidth",)

    def __init__(self, bandwidth: Optional[float] = None, normalize: bool = True):
        self.bandwidth = check_bandwidth(bandwidth, optional=True)
        self.normalize = normalize

    @classmethod
    def from_config(cls, config=None) -> "MaxHerdingStrategy":
        return cls(config.herding_bandwidth if config is not None else None)

    def select(self, inputs, batch_size, rng):
        with _thread_limit():
            cand, lab = _features(inputs, self.name, self.normalize)
            h = HERDING_BANDWIDTH if self.bandwidth is None else self.bandwidth
            picks, gains = herding_select(cand, lab, batch_size, rng, h)
            return Selection(picks, gains)


@register
class UHerdingStrategy(Strategy):
    r"""Uncertainty Herding: MaxHerding's coverage with every candidate weighted by the model's
    uncertainty about it (Bae, Sutherland & Oliveira 2025, Algorithm 1; :func:`herding_select`
    with w = the uncertainty).

    .. math:: x_t = \arg\max_{x \in U} \frac{1}{n}\sum_{j \in U} u(x_j)\,
              \max\big(k(x, x_j) - \max_{c \in L \cup S} k(x_c, x_j),\, 0\big)

    u is ``uherding_measure`` (margin, as in the paper: :math:`1 - (p_1 - p_2)`) of the
    probabilities scaled by a temperature T (:func:`tempered`). At tiny budgets the
    uncertainties are alike and it covers the pool like MaxHerding; as the model improves it
    covers the uncertain regions, like margin with diversity. The kernel width is
    ``herding_bandwidth``, or when empty the paper's adaptive one: the smallest distance
    between two labeled images (:func:`adaptive_bandwidth`; 1.0 with fewer than two).
    Uncertainties that are all zero (or not finite) fall back to pure coverage. Scores are
    each candidate's gain before the first pick.

    The temperature is ``uherding_temperature`` (default 1: the probabilities as the model gives
    them; the calibration below did not help with this package's learners, see the README and
    bench/uherding_calibration.py). Empty, it is calibrated every round
    as in the paper's reference code (``train_al.py`` with ``--temp_scale``): the loop trains a
    fresh model, the way it trains the round's, on the first 70% of the labels in the order they
    were acquired and scores the last 30% with it (``Need.HELD_OUT``); T is the one of 1.0, 1.1,
    ..., 19.9 whose scaled probabilities have the lowest expected calibration error on them
    (:func:`calibrated_temperature`; this round's value alone, the reference's window of 1).
    Where ``int(0.3 |L|)`` is 0 or the first 70% hold one class, T = 1 and the round says why.
    Each round records its T (``uherding_temperature``) and how it was chosen
    (``uherding_calibration``).

    Differences from the reference code: the calibration model's training holds out nothing more
    (the reference validates it each epoch on the same 30% but scores its last epoch, which is
    what it uses here too); a warm-started run's calibration model still starts fresh, as the
    reference's always does; with 1-3 labels the reference trains on none, here T = 1.
    """

    name = "uherding"
    family = "coverage"
    description = ("Like maxherding, but each unlabeled image counts as much as the model is unsure about it "
                   "(margin; the probabilities' temperature as set, or calibrated on held-out labels each round): "
                   "cover the pool first, then the uncertain regions as the model improves.")
    formula = (r"\begin{gathered}x_t = \arg\max_{x \in U} \tfrac{1}{n} \textstyle\sum_{j \in U} u(x_j)\, g(x, x_j) \\ "
               r"g(x, x_j) = \max\big(k(x, x_j) - \max_{c \in L \cup S} k(x_c, x_j),\, 0\big) \\ "
               r"u(x) = 1 - \big(p_T(\hat y_1 \mid x) - p_T(\hat y_2 \mid x)\big) \\ "
               r"T = 1 \text{ or as set; empty: } \arg\min_{T} \operatorname{ECE}\big(p_T;\ L_{30\%}\big)"
               r"\end{gathered}")
    needs = frozenset({Need.PROBS, Need.EMBEDDINGS, Need.LABELED_EMBEDDINGS, Need.HELD_OUT})
    config_fields = ("herding_bandwidth", "uherding_measure", "uherding_temperature")

    def __init__(self, bandwidth: Optional[float] = None, measure: str = "margin",
                 temperature: Optional[float] = None, normalize: bool = True, temperatures=TEMPERATURES):
        if measure not in UNCERTAINTY_SCORES:
            raise ValueError(f"unknown uherding_measure {measure!r}; choose one of {', '.join(UNCERTAINTY_SCORES)}")
        if temperature is not None and not (np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"uherding_temperature must be a number > 0 (or empty), got {temperature!r}")
        self.bandwidth = check_bandwidth(bandwidth, optional=True)
        self.measure = measure
        self.temperature = None if temperature is None else float(temperature)
        self.normalize = normalize
        self.temperatures = temperatures
        if self.temperature is not None:  # a set temperature: no model on held-out labels to train
            self.needs = type(self).needs - {Need.HELD_OUT}

    @classmethod
    def from_config(cls, config=None) -> "UHerdingStrategy":
        if config is None:
            return cls()
        return cls(config.herding_bandwidth, config.uherding_measure, config.uherding_temperature)

    @staticmethod
    def temperature_origin(config) -> str:
        """How the temperature of a run with ``config`` comes about, as the CLI and the pages say it."""
        if config.uherding_temperature is not None:
            return "as set (uherding_temperature)"
        return (f"calibrated each round: the lowest expected calibration error on the last "
                f"{HELD_OUT_FRACTION:.0%} of the labels, of a model trained on the rest")

    def choose_temperature(self, held_out: Optional[HeldOut]) -> tuple[float, dict]:
        """(T, the record of how it was chosen) for this round: the set temperature, or the one
        :func:`calibrated_temperature` finds on ``held_out`` (1.0 where there is none)."""
        if self.temperature is not None:
            return self.temperature, {}
        if held_out is None:
            held_out = HeldOut.none("no held-out labels were given")
        if held_out.skipped or not len(held_out.labels):
            return 1.0, {"held_out": 0, "seconds": held_out.seconds,
                         "skipped": held_out.skipped or "no held-out labels were given"}
        t, ece = calibrated_temperature(held_out.probs, held_out.labels, self.temperatures)
        return t, {"held_out": len(held_out.labels), "n_train": held_out.n_train, "ece": ece,
                   "ece_at_1": expected_calibration_error(held_out.probs, held_out.labels),
                   "seconds": held_out.seconds}

    def uncertainties(self, probs, temperature: Optional[float] = None) -> np.ndarray:
        """u for each candidate: the measure of the probabilities tempered by ``temperature``
        (default: the set one, else 1); all ones where they carry no information (all zero or not
        finite)."""
        t = temperature if temperature is not None else (self.temperature or 1.0)
        u = UNCERTAINTY_SCORES[self.measure](tempered(probs, t))
        if not np.isfinite(u).all() or np.allclose(u, 0.0):
            return np.ones(len(u))
        return u

    def select(self, inputs, batch_size, rng):
        with _thread_limit():
            if inputs.probs is None:
                raise ValueError("uherding needs probs: the class probabilities of the candidates")
            cand, lab = _features(inputs, self.name, self.normalize)
            check_batch(batch_size, len(cand))
            t, calibration = self.choose_temperature(inputs.held_out)
            h = self.bandwidth if self.bandwidth is not None else (adaptive_bandwidth(lab) or HERDING_BANDWIDTH)
            picks, gains = herding_select(cand, lab, batch_size, rng, h, weights=self.uncertainties(inputs.probs, t))
            record = {"uherding_temperature": t}
            if calibration:
                record["uherding_calibration"] = calibration
            return Selection(picks, gains, record=record)
