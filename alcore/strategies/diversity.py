"""Diversity query strategies: batches spread over the model's feature space.

Uncertainty sampling takes the top-k scores, so a batch often holds near-copies
of one confusing image. The strategies here look at the model's penultimate-layer
features ``h(x)`` (``"embeddings"``) and spread the batch out:

- ``kmeans``: k-means on the candidates' features, one pick per cluster;
- ``coreset``: greedy k-center, each pick the candidate farthest from everything
  labeled or picked so far (Sener & Savarese 2018);
- ``badge``: k-means++ seeding on gradient embeddings, which mixes uncertainty
  (gradient size) and diversity (gradient direction) (Ash et al. 2020);
- ``margin_cluster``: the most uncertain candidates by margin, clustered, one
  pick per cluster (Zhdanov 2019).

Each strategy is a :class:`~alcore.strategies.base.Strategy` over pure functions on
arrays. Randomness comes only from the ``rng`` passed to ``select``, so the same
seed gives the same picks. Each class registers itself in
:data:`alcore.strategies.base.STRATEGIES`.

Distances are squared Euclidean, computed as
:math:`\\lVert a - b \\rVert^2 = \\lVert a \\rVert^2 + \\lVert b \\rVert^2 - 2\\, a \\cdot b`
(one matrix-vector product per new centre instead of an n x d difference array),
clipped at 0 against rounding. Float32 features (what Keras returns) are kept in
float32, which halves the memory traffic; float64 stays float64; anything else is
converted to float64. No function builds a candidates x candidates matrix.

References
----------
Sener, O. & Savarese, S. (2018). Active learning for convolutional neural
networks: a core-set approach. ICLR.
Ash, J. T., Zhang, C., Krishnamurthy, A., Langford, J. & Agarwal, A. (2020).
Deep batch active learning by diverse, uncertain gradient lower bounds. ICLR.
Zhdanov, F. (2019). Diverse mini-batch active learning. arXiv:1901.05954.
Arthur, D. & Vassilvitskii, S. (2007). k-means++: the advantages of careful
seeding. SODA.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Optional

import numpy as np

from alcore.strategies.base import (Need, Selection, Strategy, StrategyInput, check_batch, check_probs, check_whole,
                                   margin_scores, register, top_k)

# Largest temporary distance block, in elements (2**22 float64 = 32 MiB).
CHUNK_ELEMENTS = 2 ** 22

# BLAS / OpenMP threads while a diversity strategy selects (None: the libraries'
# defaults, one per core). One thread by default, for two reasons. The
# greedy loops make thousands of short BLAS calls and k-means many short OpenMP
# regions; when the cores are busy with other work (other runs, other dashboard
# sessions), threads spin-waiting for each other made the 2-core machine 3-7x
# slower for coreset and badge and 14-20x slower for k-means at a load average
# of 3 (bench/bench_strategies.py --threads 0 against the default). And k-means sums
# in a per-thread order, so one thread gives the same picks for the same seed on
# machines with different core counts.
THREADS: Optional[int] = 1

# Above this many points k-means runs as MiniBatchKMeans (Sculley 2010). Measured
# on 128-d features, 100 clusters, one thread: KMeans 0.25 / 0.5 / 1.1 s at
# 5 000 / 10 000 / 20 000 points, MiniBatchKMeans 0.16 / 0.24 / 0.27 s with about
# 1% higher inertia; full KMeans grows linearly with the pool, mini-batches barely.
MINIBATCH_THRESHOLD = 10_000


# ----------------------------------------------------------------------- checks

def _thread_limit():
    """Context limiting BLAS / OpenMP threads to :data:`THREADS` (process-wide while active)."""
    if THREADS is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    return threadpool_limits(limits=THREADS)


def _float_array(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype in (np.float32, np.float64):
        return a
    try:
        return a.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"expected an array of numbers, got dtype {a.dtype}") from None


def row_sq_norms(x: np.ndarray) -> np.ndarray:
    """:math:`\\lVert x_i \\rVert^2` for every row, without an n x d temporary."""
    return np.einsum("ij,ij->i", x, x)


def sq_distance_block(a: np.ndarray, b: np.ndarray, a_sq: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Squared distances :math:`\\lVert a_i - b_j \\rVert^2` (len(a), len(b)), as
    :math:`\\lVert a_i \\rVert^2 + \\lVert b_j \\rVert^2 - 2\\, a_i \\cdot b_j` in one matrix product,
    clipped at 0 against rounding. The caller keeps len(a) * len(b) within its block size."""
    block = a @ b.T
    block *= -2
    block += a_sq[:, None]
    block += b_sq[None, :]
    np.maximum(block, 0, out=block)
    return block


def check_embeddings(embeddings, n_rows: Optional[int] = None, what: str = "embeddings",
                     n_features: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """A finite (rows, features) float array and its squared row norms.

    Raises ValueError when ``embeddings`` is missing, not 2-D, has another number
    of rows than ``n_rows`` (the candidates) or of columns than ``n_features``, or
    holds NaN or infinite values. The finiteness check uses the row norms (O(n)
    memory): a norm that overflows is reported too, as distances would overflow.
    """
    if embeddings is None:
        raise ValueError(f"{what} are missing: this strategy needs the model's penultimate-layer "
                         f"features (declare it in Strategy.needs)")
    e = _float_array(embeddings)
    if e.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (rows, features), got shape {e.shape}")
    if n_rows is not None and len(e) != n_rows:
        raise ValueError(f"{what} have {len(e)} rows but there are {n_rows} candidates "
                         f"(rows of probs); they must match one to one")
    if len(e) and e.shape[1] == 0:
        raise ValueError(f"{what} have no feature columns (shape {e.shape})")
    if n_features is not None and len(e) and e.shape[1] != n_features:
        raise ValueError(f"{what} have {e.shape[1]} features but the candidate embeddings have "
                         f"{n_features}; both must come from the same layer")
    with np.errstate(over="ignore", invalid="ignore"):
        sq = row_sq_norms(e)
    if not np.isfinite(sq).all():
        bad = int(np.flatnonzero(~np.isfinite(sq))[0])
        raise ValueError(f"{what} hold NaN or infinite values, or values too large to square "
                         f"(first in row {bad})")
    return e, sq


def _candidate_embeddings(inputs: StrategyInput) -> tuple[np.ndarray, np.ndarray]:
    n = len(inputs.probs) if inputs.probs is not None else None
    return check_embeddings(inputs.embeddings, n)


# ----------------------------------------------------------- k-means + nearest pick

def fit_kmeans(x: np.ndarray, k: int, rng: np.random.Generator,
               minibatch_threshold: int = MINIBATCH_THRESHOLD):
    """k-means on the rows of ``x`` (scikit-learn, k-means++ init), fitted: its ``cluster_centers_``
    and ``labels_`` (each row's cluster).

    Minimises :math:`\\sum_i \\min_j \\lVert x_i - \\mu_j \\rVert^2` (Lloyd 1982;
    Arthur & Vassilvitskii 2007 seeding). Up to ``minibatch_threshold`` rows it is
    :class:`sklearn.cluster.KMeans`; above, :class:`~sklearn.cluster.MiniBatchKMeans`
    (Sculley 2010) with mini-batches of max(1024, 2k) rows, which is several times
    faster at a slightly higher inertia. One initialisation, seeded by the first draw
    from ``rng`` (``rng.integers(2**31 - 1)``), so a peer given that seed fits the same clusters.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning

    # in float64: scikit-learn's k-means++ casts float32 rows to float64 whole in each of its
    # k x (2 + ln k) distance calls, which made typiclust's k-means twice as slow (bench/low_budget_browser.py)
    x = np.asarray(_float_array(x), dtype=np.float64)
    check_batch(k, len(x))
    seed = int(rng.integers(2 ** 31 - 1))
    if len(x) > minibatch_threshold:
        model = MiniBatchKMeans(n_clusters=k, n_init=1, random_state=seed,
                                batch_size=max(1024, 2 * k))
    else:
        model = KMeans(n_clusters=k, n_init=1, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x)
    return model


def kmeans_centroids(x: np.ndarray, k: int, rng: np.random.Generator,
                     minibatch_threshold: int = MINIBATCH_THRESHOLD) -> np.ndarray:
    """Centroids (k, d) of k-means on the rows of ``x`` (:func:`fit_kmeans`), in ``x``'s dtype.
    With fewer distinct rows than k some centroids coincide (no warning is shown);
    :func:`nearest_distinct` still gives k distinct picks.
    """
    x = _float_array(x)
    return np.asarray(fit_kmeans(x, k, rng, minibatch_threshold).cluster_centers_, dtype=x.dtype)


def nearest_distinct(x: np.ndarray, centroids: np.ndarray, x_sq: Optional[np.ndarray] = None,
                     chunk_elements: int = CHUNK_ELEMENTS) -> tuple[np.ndarray, np.ndarray]:
    """One distinct row of ``x`` per centroid, the nearest one still free.

    Centroids are served in order of the distance to their nearest row (ties: lower
    centroid index first); each takes its nearest row not taken yet (ties: lower row
    index), so when two centroids share a nearest row the farther centroid takes
    its next nearest. Only each centroid's min(k, n) nearest rows are kept, which is
    enough, as at most k - 1 are taken by others. Distances are computed in blocks
    of at most ``chunk_elements`` entries.

    Returns
    -------
    picks : (k,) int64
        Row positions, in the order the centroids were served.
    nearest_sq : (n,) float
        Every row's squared distance to its nearest centroid.
    """
    x = _float_array(x)
    c = np.asarray(centroids, dtype=x.dtype)
    n, k = len(x), len(c)
    check_batch(k, n)
    if x_sq is None:
        x_sq = row_sq_norms(x)
    c_sq = row_sq_norms(c)
    keep = min(k, n)
    near_idx = np.empty((k, keep), dtype=np.int64)
    near_d = np.empty((k, keep), dtype=np.float64)
    nearest_sq = np.full(n, np.inf, dtype=x.dtype)
    rows = max(1, chunk_elements // n)
    for s in range(0, k, rows):
        block = sq_distance_block(c[s:s + rows], x, c_sq[s:s + rows], x_sq)
        np.minimum(nearest_sq, block.min(axis=0), out=nearest_sq)
        if keep < n:
            part = np.argpartition(block, keep - 1, axis=1)[:, :keep]
        else:
            part = np.broadcast_to(np.arange(n), block.shape)
        d = np.take_along_axis(block, part, axis=1)
        order = np.lexsort((part, d), axis=1)  # by distance, then row index
        near_idx[s:s + rows] = np.take_along_axis(part, order, axis=1)
        near_d[s:s + rows] = np.take_along_axis(d, order, axis=1)
    taken = np.zeros(n, dtype=bool)
    picks = np.empty(k, dtype=np.int64)
    for t, j in enumerate(np.lexsort((np.arange(k), near_d[:, 0]))):
        free = np.flatnonzero(~taken[near_idx[j]])
        i = near_idx[j, free[0]]
        picks[t] = i
        taken[i] = True
    return picks, nearest_sq


def cluster_picks(x: np.ndarray, k: int, rng: np.random.Generator,
                  minibatch_threshold: int = MINIBATCH_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """k-means on ``x`` into k clusters, then the distinct row nearest each centroid.

    Returns the picks (k,) and every row's distance (not squared) to its nearest
    centroid. See :func:`kmeans_centroids` and :func:`nearest_distinct`.
    """
    x = _float_array(x)
    centroids = kmeans_centroids(x, k, rng, minibatch_threshold)
    picks, nearest_sq = nearest_distinct(x, centroids)
    return picks, np.sqrt(nearest_sq)


@register
class KMeansStrategy(Strategy):
    r"""k-means sampling: cluster the candidates' features into ``batch_size``
    clusters and pick the candidate nearest each centroid.

    .. math:: \mu = \operatorname{k-means}_b\big(h(x_1), \dots, h(x_n)\big), \qquad
              x_j^\ast = \arg\min_{x \text{ free}} \lVert h(x) - \mu_j \rVert

    Scores are :math:`-\min_j \lVert h(x) - \mu_j \rVert`, the negative distance to
    the nearest centroid: the higher, the more typical of its cluster (the picks
    are the candidates nearest the centroids). KMeans up to
    ``minibatch_threshold`` candidates, MiniBatchKMeans above.

    References: DeepAL's ``KMeansSampling`` (Huang, K.-H. 2021, DeepAL: deep
    active learning in Python, arXiv:2111.15258); Zhdanov (2019), whose method is
    this one with a margin prefilter and informativeness weights (see
    :class:`MarginClusterStrategy`).
    """

    name = "kmeans"
    family = "diversity"
    description = ("Group the unlabeled images into as many clusters of similar features as the batch size "
                   "and label the image closest to each cluster's centre, so the batch covers the pool.")
    # Two equations each, stacked so they fit a narrow column (KaTeX `gathered`).
    formula = (r"\begin{gathered}\mu_1..\mu_b = \text{k-means}_b\big(h(\text{pool})\big) \\ "
               r"x_j^\ast = \arg\min_{x} \lVert h(x) - \mu_j \rVert\end{gathered}")
    needs = frozenset({Need.EMBEDDINGS})

    def __init__(self, minibatch_threshold: int = MINIBATCH_THRESHOLD):
        self.minibatch_threshold = minibatch_threshold

    def select(self, inputs, batch_size, rng):
        with _thread_limit():
            x, _ = _candidate_embeddings(inputs)
            check_batch(batch_size, len(x))
            picks, dist = cluster_picks(x, batch_size, rng, self.minibatch_threshold)
            return Selection(picks, -dist.astype(np.float64))


# ---------------------------------------------------------------------- core-set

def min_sq_distances(x: np.ndarray, centres: np.ndarray, x_sq: Optional[np.ndarray] = None,
                     chunk_elements: int = CHUNK_ELEMENTS) -> np.ndarray:
    """Each row's squared distance to its nearest centre, :math:`\\min_c \\lVert x_i - c \\rVert^2`.

    Computed in blocks of at most ``chunk_elements`` distances (O(n m d) time,
    never an n x m matrix at once), clipped at 0. Rows of ``x`` get ``inf`` when
    there are no centres.
    """
    x = _float_array(x)
    centres = np.asarray(centres, dtype=x.dtype)
    n, m = len(x), len(centres)
    out = np.full(n, np.inf, dtype=x.dtype)
    if m == 0 or n == 0:
        return out
    if x_sq is None:
        x_sq = row_sq_norms(x)
    c_sq = row_sq_norms(centres)
    cols = min(m, chunk_elements)
    rows = max(1, chunk_elements // cols)
    for i in range(0, n, rows):
        for j in range(0, m, cols):
            block = sq_distance_block(x[i:i + rows], centres[j:j + cols], x_sq[i:i + rows], c_sq[j:j + cols])
            np.minimum(out[i:i + rows], block.min(axis=1), out=out[i:i + rows])
    return out


def kcenter_greedy(x: np.ndarray, labeled: np.ndarray, k: int, priority: Optional[np.ndarray] = None,
                   chunk_elements: int = CHUNK_ELEMENTS) -> tuple[np.ndarray, np.ndarray]:
    r"""Greedy k-center (Sener & Savarese 2018, Algorithm 1; Gonzalez, T. F. 1985,
    Clustering to minimize the maximum intercluster distance, TCS 38).

    With :math:`\delta(x) = \min_{c \in C} \lVert x - c \rVert^2` and the centres
    C starting as the labeled rows, repeat k times:

    .. math:: x_t = \arg\max_{x \in U} \delta(x), \qquad
              \delta(x) \leftarrow \min\big(\delta(x), \lVert x - x_t \rVert^2\big)

    Only the new centre's distances are computed at each step: O(n k d) time plus
    O(n m d) for the labeled set (in blocks, see :func:`min_sq_distances`), O(n)
    extra memory. Picked rows get :math:`\delta = -1`, so they are never picked
    again. Among equal :math:`\delta` the row with the smallest ``priority`` wins
    (default: the row index). With no labeled rows every :math:`\delta` starts at
    infinity, so the first pick is the lowest-priority row.

    Returns
    -------
    picks : (k,) int64
        Row positions of ``x``, in pick order.
    initial_sq : (n,) float
        :math:`\delta` before the first pick (squared distance to the nearest
        labeled row; ``inf`` without labeled rows).
    """
    x = _float_array(x)
    n = len(x)
    check_batch(k, n)
    labeled = np.asarray(labeled, dtype=x.dtype)
    if labeled.size == 0:
        labeled = np.empty((0, x.shape[1]), dtype=x.dtype)
    elif labeled.ndim != 2 or labeled.shape[1] != x.shape[1]:
        raise ValueError(f"labeled rows must have shape (m, {x.shape[1]}) like x, got {labeled.shape}")
    if priority is None:
        priority = np.arange(n)
    priority = np.asarray(priority)
    if priority.shape != (n,):
        raise ValueError(f"priority needs one value per row ({n}), got shape {priority.shape}")
    x_sq = row_sq_norms(x)
    initial = min_sq_distances(x, labeled, x_sq, chunk_elements)
    delta = initial.copy()
    picks = np.empty(k, dtype=np.int64)
    new = np.empty(n, dtype=x.dtype)
    for t in range(k):
        j = int(np.argmax(delta))
        ties = np.flatnonzero(delta == delta[j])
        if len(ties) > 1:
            j = int(ties[np.argmin(priority[ties])])
        picks[t] = j
        if t == k - 1:
            break
        np.matmul(x, x[j], out=new)
        new *= -2
        new += x_sq
        new += x_sq[j]
        np.maximum(new, 0, out=new)
        np.minimum(delta, new, out=delta)
        delta[j] = -1
    return picks, initial


@register
class CoresetStrategy(Strategy):
    r"""Core-set: greedy k-center on the features, with the labeled images as the
    first centres (Sener & Savarese 2018).

    Each pick is the candidate farthest from every labeled image and every earlier
    pick, which keeps the covering radius
    :math:`\max_{x \in U} \min_{c \in L \cup S} \lVert h(x) - h(c) \rVert` of the
    labeled set L plus the batch S within a factor 2 of the smallest possible
    (Gonzalez 1985; see :func:`kcenter_greedy`). Scores are each candidate's distance to its
    nearest labeled image before picking (without labeled images: the distance to
    the first pick, which is then random). Ties break by a random priority drawn
    from ``rng``.
    """

    name = "coreset"
    family = "diversity"
    description = ("Again and again label the image farthest from everything already labeled or picked "
                   "(greedy k-center), so no region of the feature space is left without a nearby label.")
    formula = (r"\begin{gathered}x_t = \arg\max_{x \in U} \min_{c} \lVert h(x) - h(c) \rVert \\ "
               r"c \in L \cup \{x_1, \dots, x_{t-1}\}\end{gathered}")
    needs = frozenset({Need.EMBEDDINGS, Need.LABELED_EMBEDDINGS})

    def select(self, inputs, batch_size, rng):
        with _thread_limit():
            x, _ = _candidate_embeddings(inputs)
            check_batch(batch_size, len(x))
            lab = inputs.labeled_embeddings
            if lab is None:
                raise ValueError("coreset needs labeled_embeddings: the features of the labeled images")
            lab = np.asarray(lab)
            if lab.size == 0:
                lab = np.empty((0, x.shape[1]), dtype=x.dtype)
            lab, _ = check_embeddings(lab, what="labeled_embeddings", n_features=x.shape[1])
            priority = rng.random(len(x))
            picks, initial = kcenter_greedy(x, lab, batch_size, priority)
            if len(lab) == 0:
                initial = min_sq_distances(x, x[picks[:1]])
            return Selection(picks, np.sqrt(initial.astype(np.float64)))


# ------------------------------------------------------------------------- BADGE

def gradient_embedding_factors(probs, embeddings) -> tuple[np.ndarray, np.ndarray]:
    r"""The two factors of BADGE's gradient embeddings (Ash et al. 2020).

    The gradient of the cross-entropy loss at the predicted label
    :math:`\hat y = \arg\max_c p_c` with respect to the last layer's weights is
    :math:`g = q \otimes h` with :math:`q = p - e_{\hat y}` (sign dropped, it does
    not change distances) and h the penultimate features. Returns q (n, classes,
    float64) and h (n, d; float32 stays float32, which halves the memory traffic of
    the n x d products); g itself, (n, classes * d), is never built.
    """
    q = check_probs(probs).copy()
    h, _ = check_embeddings(embeddings, len(q))
    q[np.arange(len(q)), q.argmax(axis=1)] -= 1.0
    return q, h


def gradient_sq_norms(q: np.ndarray, h: np.ndarray) -> np.ndarray:
    r""":math:`\lVert g_i \rVert^2 = \lVert q_i \rVert^2 \lVert h_i \rVert^2`."""
    return row_sq_norms(q) * row_sq_norms(h)


def gradient_sq_distances(q: np.ndarray, h: np.ndarray, j: int,
                          sq_norms: Optional[np.ndarray] = None) -> np.ndarray:
    r"""Squared distances from every :math:`g_i` to :math:`g_j`, factorised:

    .. math:: \lVert g_i - g_j \rVert^2 = \lVert g_i \rVert^2 + \lVert g_j \rVert^2
              - 2\, \langle q_i, q_j \rangle \langle h_i, h_j \rangle

    since :math:`\langle q_i \otimes h_i, q_j \otimes h_j \rangle =
    \langle q_i, q_j \rangle \langle h_i, h_j \rangle`. O(n (classes + d)) time and
    memory; clipped at 0.
    """
    if sq_norms is None:
        sq_norms = gradient_sq_norms(q, h)
    d = (q @ q[j]) * (h @ h[j]).astype(np.float64)
    d *= -2
    d += sq_norms
    d += sq_norms[j]
    np.maximum(d, 0, out=d)
    return d


def badge_seeding(q: np.ndarray, h: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    r"""k-means++ seeding over the gradient embeddings :math:`g_i = q_i \otimes h_i`.

    The first pick is the largest :math:`\lVert g_i \rVert` (ties broken by ``rng``),
    as in the BADGE reference code; each next pick is drawn with probability

    .. math:: P(i) = D(g_i)^2 \,/\, \textstyle\sum_l D(g_l)^2, \qquad
              D(g_i)^2 = \min_{s \in S} \lVert g_i - g_s \rVert^2

    over the picks S so far only: there is no extra centre at the origin (the
    scikit-activeml "ghost centre", issue #588), and picked points get
    :math:`D^2 = 0` exactly, so none is drawn twice. When every remaining
    :math:`D^2` is 0 (duplicates of picks, or all gradients zero) the next pick is
    uniform over the candidates not yet picked. Each step updates the n distances
    in O(n (classes + d)).
    """
    n = len(q)
    check_batch(k, n)
    sq = gradient_sq_norms(q, h)
    picks = np.empty(k, dtype=np.int64)
    picks[0] = top_k(sq, 1, rng)[0]
    d2 = None
    for t in range(1, k):
        new = gradient_sq_distances(q, h, picks[t - 1], sq)
        d2 = new if d2 is None else np.minimum(d2, new, out=d2)
        d2[picks[:t]] = 0.0
        cum = np.cumsum(d2)
        total = cum[-1]
        if total > 0 and np.isfinite(total):
            i = int(np.searchsorted(cum, rng.random() * total, side="right"))
            i = min(i, n - 1)
            if d2[i] <= 0:  # rounding at the very end of cum; take the last positive one
                i = int(np.flatnonzero(d2 > 0)[-1])
        else:
            free = np.setdiff1d(np.arange(n), picks[:t], assume_unique=True)
            i = int(rng.choice(free))
        picks[t] = i
    return picks


@register
class BadgeStrategy(Strategy):
    r"""BADGE: Batch Active learning by Diverse Gradient Embeddings (Ash et al. 2020).

    Each candidate becomes :math:`g_x = (p(\cdot \mid x) - e_{\hat y}) \otimes h(x)`,
    the last-layer gradient its predicted label would cause: large when the model
    is unsure, pointing in different directions for different kinds of images.
    k-means++ seeding (:func:`badge_seeding`) then picks a batch of large and
    mutually distant gradients. Scores are :math:`\lVert g_x \rVert`.
    """

    name = "badge"
    family = "diversity"
    description = ("Describe each image by the last-layer gradient its predicted label would cause, then pick "
                   "large and mutually different gradients (k-means++): uncertain and diverse at once.")
    formula = (r"\begin{gathered}g_x = \big(p(\cdot \mid x) - e_{\hat y}\big) \otimes h(x) \\ "
               r"P(x_t = x) \propto \min_{s < t} \lVert g_x - g_{x_s} \rVert^2\end{gathered}")
    needs = frozenset({Need.PROBS, Need.EMBEDDINGS})

    def select(self, inputs, batch_size, rng):
        with _thread_limit():
            if inputs.probs is None:
                raise ValueError("badge needs probs: the class probabilities of the candidates")
            q, h = gradient_embedding_factors(inputs.probs, inputs.embeddings)
            check_batch(batch_size, len(q))
            picks = badge_seeding(q, h, batch_size, rng)
            return Selection(picks, np.sqrt(gradient_sq_norms(q, h)))


# ----------------------------------------------------------------- margin cluster

@register
class MarginClusterStrategy(Strategy):
    r"""Margin, then clusters: the ``factor * batch_size`` candidates with the
    highest margin score (all of them if fewer), k-means on their features into
    ``batch_size`` clusters, and the candidate nearest each centroid.

    .. math:: U = \operatorname{top}_{f b}\, s_{\text{margin}}(x), \qquad
              x_j^\ast = \arg\min_{x \in U \text{ free}} \lVert h(x) - \mu_j \rVert,
              \quad \mu = \operatorname{k-means}_b\big(h(U)\big)

    The batch is uncertain (only U is eligible) and diverse (one pick per
    cluster). Scores are the margin scores; picks are listed most uncertain first.
    Zhdanov (2019) prefilters the top :math:`\beta k` the same way (then weights
    k-means by informativeness; this version is unweighted); Google's
    active-learning playground's ``margin_cluster_mean`` (sampling_methods/
    represent_cluster_centers.py) clusters the candidates inside the classifier's
    margin, after Xu, Z., Yu, K., Tresp, V., Xu, X. & Wang, J. (2003),
    Representative sampling for text classification using support vector
    machines, ECIR.
    """

    name = "margin_cluster"
    family = "diversity"
    description = ("Take the most uncertain images by margin (factor x batch size of them), cluster "
                   "them and label the one closest to each cluster's centre: uncertain and diverse.")
    formula = (r"\begin{gathered}U = \text{top}_{f b}\, s_{\text{margin}}(x),\ "
               r"\mu = \text{k-means}_b\big(h(U)\big) \\ "
               r"x_j^\ast = \arg\min_{x \in U} \lVert h(x) - \mu_j \rVert\end{gathered}")
    needs = frozenset({Need.PROBS, Need.EMBEDDINGS})
    config_fields = ("margin_cluster_factor",)

    def __init__(self, factor: int = 10, minibatch_threshold: int = MINIBATCH_THRESHOLD):
        self.factor = check_whole(factor, "margin_cluster_factor")
        self.minibatch_threshold = minibatch_threshold

    @classmethod
    def from_config(cls, config=None) -> "MarginClusterStrategy":
        return cls(config.margin_cluster_factor if config is not None else 10)

    def select(self, inputs, batch_size, rng):
        with _thread_limit():
            if inputs.probs is None:
                raise ValueError("margin_cluster needs probs: the class probabilities of the candidates")
            scores = margin_scores(inputs.probs)
            x, _ = check_embeddings(inputs.embeddings, len(scores))
            check_batch(batch_size, len(x))
            m = min(self.factor * batch_size, len(x))
            pool = top_k(scores, m, rng)
            if m == batch_size:
                return Selection(pool, scores)
            local, _ = cluster_picks(x[pool], batch_size, rng, self.minibatch_threshold)
            picks = pool[np.sort(local)]  # pool is in descending-margin order
            return Selection(picks, scores)
