"""Looking inside a round: confidence galleries and k-means centroids of the pool."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from alcore.results.records import ImageRef, PoolSummary


def confidence_order(probs: np.ndarray, pool_indices: np.ndarray) -> np.ndarray:
    """Rows of ``probs`` from the most confident (highest class probability) to the least, ties
    broken by pool index (``pool_indices[i]``: row ``i``'s), so galleries are deterministic."""
    return np.lexsort((np.asarray(pool_indices), -np.asarray(probs).max(axis=1)))


def confidence_extremes(probs: np.ndarray, pool_indices: np.ndarray, labels: np.ndarray,
                        k: int) -> tuple[list[ImageRef], list[ImageRef]]:
    """The ``k`` most and ``k`` least confident images among scored pool images.

    Confidence is the highest class probability. ``pool_indices[i]`` is the pool
    index of row ``i`` of ``probs``; ``labels`` are their true labels. Ties are
    broken by pool index, so the galleries are deterministic."""
    probs = np.asarray(probs)
    if len(probs) == 0 or k <= 0:
        return [], []
    conf = probs.max(axis=1)
    pred = probs.argmax(axis=1)
    order = confidence_order(probs, pool_indices)

    def ref(i):
        return ImageRef(index=int(pool_indices[i]), predicted=int(pred[i]),
                        confidence=float(min(max(conf[i], 0.0), 1.0)), label=int(labels[i]))

    k = min(k, len(order))
    most = [ref(i) for i in order[:k]]
    least = [ref(i) for i in order[::-1][:k]]
    return most, least


def pool_summary(probs: np.ndarray, changed_fraction: Optional[float] = None) -> Optional[PoolSummary]:
    """Mean / median confidence, share below 0.5, mean uncertainty and entropy of scored
    images; ``changed_fraction`` is passed through (the loop knows the previous round)."""
    probs = np.asarray(probs, dtype=np.float64)
    if len(probs) == 0:
        return None
    conf = probs.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0).sum(axis=1)
    return PoolSummary(n_scored=int(len(probs)), mean_confidence=float(conf.mean()),
                       median_confidence=float(np.median(conf)),
                       low_confidence_fraction=float((conf < 0.5).mean()),
                       mean_entropy=float(ent.mean()), mean_uncertainty=float(1.0 - conf.mean()),
                       changed_fraction=changed_fraction)


@dataclass(frozen=True)
class Centroids:
    """k-means cluster centres of pool images, shown as images.

    ``images``: (k, H, W[, C]) centres in the prepared pixel space, largest cluster
    first; ``sizes``: images per cluster; ``majority``: most common true label in
    each cluster; ``purity``: that label's share of the cluster."""

    images: np.ndarray
    sizes: np.ndarray
    majority: np.ndarray
    purity: np.ndarray
    assignments: np.ndarray


def _nearest_members(flat: np.ndarray, assign: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """For each centre, the index of its cluster's member nearest it (0 for an empty cluster)."""
    out = np.zeros(len(centres), dtype=np.int64)
    for c, centre in enumerate(centres):
        members = np.flatnonzero(assign == c)
        if len(members):
            out[c] = members[np.argmin(((flat[members] - centre) ** 2).sum(axis=1))]
    return out


def kmeans(x: np.ndarray, k: int, seed: int = 0, n_init: int = 3, max_iter: int = 300,
           tol: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """k-means in numpy: (centres, each row's cluster) of the best of ``n_init`` runs.

    Minimises :math:`\\sum_i \\min_j \\lVert x_i - \\mu_j \\rVert^2` by Lloyd's iterations
    (Lloyd 1982) from k-means++ seeding (Arthur & Vassilvitskii 2007: each next centre drawn with
    probability proportional to its squared distance to the nearest centre chosen), until the
    centres move less than ``tol`` times the data's mean variance (scikit-learn's criterion). An
    emptied cluster restarts at the row farthest from its centre. The Dataset page clusters the
    pool with it: importing scikit-learn's k-means takes about a second, longer than clustering
    a few thousand images."""
    x = np.asarray(x, dtype=np.float32)  # single precision: twice as fast, ample for pixels
    n = len(x)
    rng = np.random.default_rng(seed)
    x_sq = np.einsum("ij,ij->i", x, x)
    threshold = tol * float(np.mean(np.var(x, axis=0)))

    def sq_dist(centres):
        return np.maximum(x_sq[:, None] - 2.0 * x @ centres.T + np.einsum("ij,ij->i", centres, centres)[None, :], 0.0)

    best = None
    for _ in range(n_init):
        centres = np.empty((k, x.shape[1]), dtype=np.float32)
        centres[0] = x[rng.integers(n)]
        nearest = sq_dist(centres[:1])[:, 0]
        for j in range(1, k):
            weights = nearest.astype(np.float64)  # probabilities must sum to 1 in double precision
            total = weights.sum()
            pick = rng.choice(n, p=weights / total) if total > 0 else rng.integers(n)
            centres[j] = x[pick]
            nearest = np.minimum(nearest, sq_dist(centres[j:j + 1])[:, 0])
        for _ in range(max_iter):
            d = sq_dist(centres)
            assign = d.argmin(axis=1)
            sizes = np.bincount(assign, minlength=k)
            members = np.zeros((n, k), dtype=np.float32)
            members[np.arange(n), assign] = 1.0
            new = members.T @ x  # each cluster's sum, by BLAS (np.add.at is row by row)
            filled = sizes > 0
            new[filled] /= sizes[filled, None]
            if not filled.all():
                far = np.argsort(-d[np.arange(n), assign], kind="stable")
                new[~filled] = x[far[:int((~filled).sum())]]
            shift = float(((new - centres) ** 2).sum())
            centres = new
            if shift <= threshold:
                break
        d = sq_dist(centres)
        assign = d.argmin(axis=1)
        inertia = float(d[np.arange(n), assign].sum())
        if best is None or inertia < best[0]:
            best = (inertia, centres, assign)
    return best[1], best[2]


# Up to this many images the pool is clustered in numpy (:func:`kmeans`): the bundled digits and
# small uploads, where importing scikit-learn (about a second) takes longer than the clustering.
# On 10 000 MNIST images scikit-learn's compiled k-means is about twice as fast.
NUMPY_KMEANS_MAX = 3_000


def pool_centroids(x: np.ndarray, k: int, seed: int = 0, labels: Optional[np.ndarray] = None,
                   max_fit: int = 10_000, features: Optional[np.ndarray] = None) -> Centroids:
    """Cluster images with k-means and return the centres as images.

    Up to NUMPY_KMEANS_MAX images with :func:`kmeans`, up to ``max_fit`` with scikit-learn's
    KMeans; larger pools with its MiniBatchKMeans (same objective, mini-batch updates) so a
    60 000-image pool stays interactive; every image is then assigned to its nearest centre for
    the sizes. All three from k-means++ seeding, the best of 3. ``features``: cluster these
    (one row per image, e.g. an embedding) instead of the pixels; a mean of embeddings is no
    image, so each cluster is then drawn as its member nearest the centre."""
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the {n} pool images, got {k}")
    if features is not None and len(features) != n:
        raise ValueError(f"features has {len(features)} rows for {n} pool images")
    flat = x.reshape(n, -1) if features is None else np.asarray(features, dtype=np.float32).reshape(n, -1)
    if n <= min(NUMPY_KMEANS_MAX, max_fit):
        found, assign = kmeans(flat, k, seed=seed)
    else:
        from sklearn.cluster import KMeans, MiniBatchKMeans

        km = (MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=2048) if n > max_fit
              else KMeans(n_clusters=k, random_state=seed, n_init=3))
        assign, found = km.fit(flat).predict(flat), km.cluster_centers_
    sizes = np.bincount(assign, minlength=k)
    order = np.argsort(-sizes, kind="stable")
    remap = np.empty(k, dtype=np.int64)
    remap[order] = np.arange(k)
    if features is None:
        centres = found.reshape((k,) + x.shape[1:])[order].astype(np.float32)
    else:
        centres = x[_nearest_members(flat, assign, found)[order]]
    majority = np.zeros(k, dtype=np.int64)
    purity = np.zeros(k)
    assign = remap[assign]
    if labels is not None:
        labels = np.asarray(labels)
        for c in range(k):
            members = labels[assign == c]
            if len(members):
                counts = np.bincount(members)
                majority[c] = counts.argmax()
                purity[c] = counts.max() / len(members)
    return Centroids(images=centres, sizes=sizes[order], majority=majority, purity=purity,
                     assignments=assign)
