"""Why this image? Looking back at a finished run, round by round.

Four pure pieces the Replay page (or a notebook) puts together:

- :func:`candidate_scores`: every candidate's score under least confidence, margin,
  ratio and entropy (the functions of :mod:`alcore.strategies.base`, not copies of their
  formulas) and its rank under each among the round's candidates;
- :func:`recover_round_probs`: the candidates' class probabilities of a past round.
  Result files do not store them, so round ``r``'s model is trained again: with cold
  start (the default) it is a deterministic function of the labels known at round ``r``
  and the run's seed, exactly as :meth:`alcore.engine.loop.Experiment.resume` relies on;
  warm-start runs are refused (the weights they started from are not saved);
- :func:`picks_overlap`: how much the batches of several strategies overlap (Jaccard)
  in one round, for runs of one seed (they start from the same labels and weights);
- :func:`embed_pool` / :func:`pool_map`: a 2-D map of the pool (PCA, or t-SNE on a
  bounded subsample) with each point's status in a round (labeled, unlabeled, picked)
  and class, so picks can be seen landing on class boundaries.

References
----------
Jaccard, P. (1912). The distribution of the flora in the alpine zone. New Phytologist 11(2).
van der Maaten, L. & Hinton, G. (2008). Visualizing data using t-SNE. JMLR 9.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from alcore.results.records import RoundResult, RunResult, run_label
from alcore.strategies.base import UNCERTAINTY_SCORES, check_probs

MEASURES: tuple[str, ...] = tuple(UNCERTAINTY_SCORES)  # least_confidence, margin, ratio, entropy
POOL_STATUSES: tuple[str, ...] = ("unlabeled", "labeled", "picked")


class ReplayError(ValueError):
    """A past round cannot be rebuilt; the message says why and what would work."""


# ---------------------------------------------------------------- scores and ranks

def score_ranks(scores) -> np.ndarray:
    """Rank of each score among all of them, 1 = highest (most informative, picked first).

    Equal scores share the best rank among them (competition ranking: 1, 2, 2, 4), so a
    rank says how many candidates scored strictly higher, plus one. (Which of several
    tied candidates a strategy takes is decided by its seeded tie-break, see
    :func:`alcore.strategies.base.top_k`.)"""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores must be a vector, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores hold NaN or infinite values")
    descending = np.sort(-s)
    return np.searchsorted(descending, -s, side="left").astype(np.int64) + 1


@dataclass(frozen=True)
class ImageExplanation:
    """One candidate of a round: its class probabilities, and its score and rank
    (1 = picked first) under each uncertainty measure among ``n_candidates``."""

    pool_index: int
    probs: np.ndarray
    predicted: int
    n_candidates: int
    scores: dict[str, float]
    ranks: dict[str, int]


@dataclass(frozen=True)
class CandidateScores:
    """Every candidate's score and rank under each measure of :data:`MEASURES`.

    ``candidates[i]`` is the pool index of row ``i`` of ``probs``, ``scores[m][i]`` and
    ``ranks[m][i]`` its score and rank under measure ``m``."""

    candidates: np.ndarray
    probs: np.ndarray
    scores: dict[str, np.ndarray]
    ranks: dict[str, np.ndarray]

    def position(self, pool_index: int) -> int:
        """Row of ``pool_index`` among the candidates; a ValueError when it was not one."""
        pos = int(np.searchsorted(self.candidates, pool_index))
        if pos >= len(self.candidates) or self.candidates[pos] != pool_index:
            raise ValueError(f"pool image {pool_index} was not among this round's {len(self.candidates):,} "
                             f"scored candidates (it was labeled already, or not in the round's subset)")
        return pos

    def __contains__(self, pool_index) -> bool:
        pos = int(np.searchsorted(self.candidates, pool_index))
        return pos < len(self.candidates) and self.candidates[pos] == pool_index

    def explain(self, pool_index: int) -> ImageExplanation:
        i = self.position(int(pool_index))
        return ImageExplanation(
            pool_index=int(pool_index), probs=np.asarray(self.probs[i], dtype=np.float64),
            predicted=int(np.argmax(self.probs[i])), n_candidates=len(self.candidates),
            scores={m: float(self.scores[m][i]) for m in MEASURES},
            ranks={m: int(self.ranks[m][i]) for m in MEASURES})


def candidate_scores(probs, candidates=None) -> CandidateScores:
    """Scores and ranks of a round's candidates under least confidence, margin, ratio and
    entropy, computed by the functions in :data:`alcore.strategies.base.UNCERTAINTY_SCORES`
    (formulas and references there). ``candidates``: the pool index of each row of
    ``probs``, increasing (the loop scores them in pool order); default ``0..n-1``."""
    p = check_probs(probs)
    cand = np.arange(len(p), dtype=np.int64) if candidates is None else np.asarray(candidates, dtype=np.int64)
    if cand.shape != (len(p),):
        raise ValueError(f"{len(cand)} candidate indices for {len(p)} rows of probabilities")
    if len(cand) > 1 and (np.diff(cand) <= 0).any():
        raise ValueError("candidate pool indices must be increasing and distinct")
    scores = {m: UNCERTAINTY_SCORES[m](p) for m in MEASURES}
    return CandidateScores(candidates=cand, probs=p, scores=scores,
                           ranks={m: score_ranks(s) for m, s in scores.items()})


# ------------------------------------------------------------ a past round's model

@dataclass(frozen=True)
class RoundProbs:
    """The class probabilities round ``round`` gave its candidates (pool indices,
    increasing), recomputed by retraining that round's model."""

    round: int
    candidates: np.ndarray
    probs: np.ndarray

    def scores(self) -> CandidateScores:
        return candidate_scores(self.probs, self.candidates)


def _named(result: RunResult) -> str:
    """The run as messages name it: 'margin (seed 0)'; 'oracle ceiling (seed 0)' for an oracle
    ceiling (whose config names random, the strategy it draws its random candidates with)."""
    return result.label if result.ceiling is not None else run_label(result.config)


def replay_refusal(result: RunResult) -> Optional[str]:
    """Why no round of this run can be rebuilt (None when they can)."""
    if result.config.warm_start:
        return (f"{_named(result)} is a warm-start run: each round's model started from the "
                f"previous round's weights, which the result file does not keep, so a past round's model "
                f"cannot be rebuilt (cold-start runs, warm_start off, can be)")
    return None


def dataset_problem(result: RunResult, dataset) -> Optional[str]:
    """Why ``dataset`` is not the one the run was made on (None when nothing says so): its pool
    size and classes, and the true labels of the images in the run's galleries, a fingerprint
    that catches another split or shuffle of the same data before its images are shown; for a
    user's file, its SHA-256 where both are known."""
    ds = result.dataset
    here = getattr(dataset, "file_sha256", None)
    if ds.file_sha256 and here and here != ds.file_sha256:
        return (f"the data file here is not the one {_named(result)} was made on (its SHA-256 "
                f"differs: {here[:12]}... against {ds.file_sha256[:12]}...)")
    if len(dataset.y_pool) != ds.n_pool or dataset.n_classes != ds.n_classes:
        return (f"the dataset here has {len(dataset.y_pool):,} pool images in {dataset.n_classes} classes, but "
                f"{_named(result)} was made on {ds.n_pool:,} in {ds.n_classes}")
    refs = [ref for r in result.rounds for ref in (*r.most_confident, *r.least_confident)]
    if refs and (np.asarray(dataset.y_pool)[[ref.index for ref in refs]] != [ref.label for ref in refs]).any():
        return (f"the pool images here have other labels than those {_named(result)} recorded: "
                f"it was made on another split or version of {result.config.dataset}")
    return None


def recover_round_probs(result: RunResult, round_: int, *, dataset=None, cache=None) -> RoundProbs:
    """Retrain round ``round_``'s model of a run and score that round's candidates.

    With cold start a round's model depends only on the labels known at that round (the
    initial ones, fixed validation labels and the picks of earlier rounds), the seed and
    the settings: the run is rebuilt up to that round with :meth:`Experiment.resume`
    (which checks that ``dataset`` is the one the run was made on) and the round is
    trained as the loop trained it, on the labels the oracle gave (a person's, where a person
    labelled: a labelling run trains on them alone). ``dataset``: the prepared dataset (loaded
    from the config when None); ``cache``: a :class:`alcore.engine.training.TrainerCache` to reuse
    compiled models. Raises :class:`ReplayError` naming the reason when the round cannot
    be rebuilt (warm start, a round the run does not have, a dataset that cannot be
    loaded or differs from the run's)."""
    from alcore.data.datasets import DatasetUnavailableError
    from alcore.engine.labelling import first_labels, run_dataset
    from alcore.engine.loop import Experiment

    refusal = replay_refusal(result)
    if refusal:
        raise ReplayError(refusal)
    n = len(result.rounds)
    if not 0 <= round_ < n:
        raise ReplayError(f"round {round_} is not in {_named(result)}, which has rounds 0 to {n - 1}")
    if dataset is None:
        try:
            dataset = run_dataset(result)  # a labelling run's images: its audit set checked
        except DatasetUnavailableError as e:
            raise ReplayError(f"the dataset of {_named(result)} ({result.config.dataset}) cannot be "
                              f"loaded here, so its rounds cannot be retrained: {e}") from e
        except ValueError as e:
            raise ReplayError(f"the dataset of {_named(result)} ({result.config.dataset}) cannot be "
                              f"used: {e}") from e
    if problem := dataset_problem(result, dataset):
        raise ReplayError(f"{_named(result)} cannot be rebuilt here: {problem}")
    # The run as it stood when round_ trained: its earlier rounds only. Marked complete so
    # resume does not also retrain the last kept round (it would only do that to recover the
    # predictions that round_'s changed_fraction compares against, which are not needed here).
    head = result.model_copy(update={"rounds": list(result.rounds[:round_]), "status": "complete"})
    # A labelling run's pool has no labels: every image it trains on has the person's, those of the
    # initial and validation images kept apart from the rounds' given_labels.
    given = first_labels(result) if result.labelled_in_the_loop else None
    try:
        exp = Experiment.resume(head, dataset=dataset, cache=cache, given=given)
    except (ValueError, DatasetUnavailableError) as e:  # e.g. the transfer model's backbone weights, offline
        raise ReplayError(f"{_named(result)} cannot be rebuilt here: {e}") from e
    trainer = exp.trainer
    with trainer.lock:
        exp._train_round(round_)  # the loop's own training of that round: same splits, shuffles, epochs
        _, cand = exp._candidates(round_)
        probs = trainer.predict_proba(exp.dataset.inputs_pool[cand])
    return RoundProbs(round=round_, candidates=np.asarray(cand, dtype=np.int64), probs=probs)


def record_mismatches(recovered: RoundProbs, record: RoundResult, tol: float = 1e-4) -> list[str]:
    """Where the recomputed probabilities disagree with what the run recorded in that round:
    the galleries' confidences and predicted classes, and the picks' predicted classes.
    Empty when they agree (within ``tol``); otherwise a different TensorFlow version or
    machine trained a different model, and the scores shown are not the run's."""
    problems = []
    pos = {int(i): k for k, i in enumerate(recovered.candidates)}
    for ref in (*record.most_confident, *record.least_confident):
        k = pos.get(ref.index)
        if k is None:
            problems.append(f"gallery image {ref.index} is not among the recomputed candidates")
            continue
        row = recovered.probs[k]
        if int(np.argmax(row)) != ref.predicted or abs(float(np.max(row)) - ref.confidence) > tol:
            problems.append(f"image {ref.index}: recorded {ref.confidence:.4f} for class {ref.predicted}, "
                            f"recomputed {float(np.max(row)):.4f} for class {int(np.argmax(row))}")
    for i, c in zip(record.selected, record.selected_predicted):
        k = pos.get(int(i))
        if k is None:
            problems.append(f"picked image {i} is not among the recomputed candidates")
        elif int(np.argmax(recovered.probs[k])) != c:
            problems.append(f"picked image {i}: recorded prediction {c}, recomputed "
                            f"{int(np.argmax(recovered.probs[k]))}")
    return problems


# ------------------------------------------------------------------------ overlap

def jaccard(a: Iterable[int], b: Iterable[int]) -> float:
    """:math:`|A \\cap B| / |A \\cup B|`; NaN when both sets are empty (nothing to compare)."""
    a, b = set(map(int, a)), set(map(int, b))
    union = len(a | b)
    return len(a & b) / union if union else float("nan")


def jaccard_matrix(sets: Sequence[Iterable[int]]) -> np.ndarray:
    """Jaccard index of every pair of sets, (n, n), symmetric, 1 on the diagonal of a
    non-empty set."""
    sets = [set(map(int, s)) for s in sets]
    n = len(sets)
    m = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(i, n):
            m[i, j] = m[j, i] = jaccard(sets[i], sets[j])
    return m


@dataclass(frozen=True)
class PickOverlap:
    """Jaccard overlap of the picks of several runs in one round.

    ``labels[i]`` names run ``i``, ``sizes[i]`` is how many images it picked, and
    ``matrix[i, j]`` the Jaccard index of runs i and j; ``left_out`` names runs that have
    no such round (they stopped earlier)."""

    round: int
    cumulative: bool
    labels: list[str]
    sizes: list[int]
    matrix: np.ndarray
    left_out: list[str]


def picks_overlap(results: Sequence[RunResult], round_: int, *, cumulative: bool = False,
                  labels: Optional[Sequence[str]] = None) -> PickOverlap:
    """How much the batches of several runs overlap in round ``round_`` (Jaccard), or with
    ``cumulative`` all they picked in rounds 0..``round_``.

    Only runs of one seed on one pool are comparable: they start from the same initial
    labels and weights, so their picks differ by strategy alone; others raise ValueError."""
    if not results:
        raise ValueError("no runs to compare")
    labels = list(labels) if labels is not None else [run_label(r.config) for r in results]
    if len(labels) != len(results):
        raise ValueError(f"{len(labels)} labels for {len(results)} runs")
    seeds = sorted({r.config.seed for r in results})
    if len(seeds) > 1:
        raise ValueError(f"the runs have seeds {', '.join(map(str, seeds))}: picks overlap only means something "
                         f"within one seed, where every strategy starts from the same labels")
    first = results[0]
    for r in results[1:]:
        if r.initial_indices != first.initial_indices or r.dataset.n_pool != first.dataset.n_pool:
            raise ValueError(f"{run_label(r.config)} starts from other initial labels than "
                             f"{run_label(first.config)}: they were not made on the same pool")
    kept, sets, left_out = [], [], []
    for lab, r in zip(labels, results):
        if round_ >= len(r.rounds):
            left_out.append(lab)
            continue
        rounds = r.rounds[:round_ + 1] if cumulative else [r.rounds[round_]]
        kept.append(lab)
        sets.append({i for rr in rounds for i in rr.selected})
    return PickOverlap(round=round_, cumulative=cumulative, labels=kept, sizes=[len(s) for s in sets],
                       matrix=jaccard_matrix(sets), left_out=left_out)


# ----------------------------------------------------------------------- pool map

def round_sets(result: RunResult, round_: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool indices labeled when round ``round_`` trained: initial, fixed validation and
    earlier picks; pool indices picked in round ``round_``)."""
    if not 0 <= round_ < len(result.rounds):
        raise ValueError(f"round {round_} is not in {run_label(result.config)}, which has rounds "
                         f"0 to {len(result.rounds) - 1}")
    labeled = [*result.initial_indices, *result.validation_indices]
    for r in result.rounds[:round_]:
        labeled.extend(r.selected)
    return (np.asarray(sorted(labeled), dtype=np.int64),
            np.asarray(sorted(result.rounds[round_].selected), dtype=np.int64))


def run_keep(results: Iterable[RunResult]) -> np.ndarray:
    """Every pool image any of these runs ever labeled (what a pool map must always show)."""
    keep = set()
    for res in results:
        keep.update(res.initial_indices)
        keep.update(res.validation_indices)
        for r in res.rounds:
            keep.update(r.selected)
    return np.asarray(sorted(keep), dtype=np.int64)


@dataclass(frozen=True)
class PoolEmbedding:
    """2-D coordinates of a subset of the pool: ``coords[i]`` is pool image ``index[i]``
    (increasing). ``method``: "pca" or "tsne"; ``n_pool``: the pool's size."""

    index: np.ndarray
    coords: np.ndarray
    method: str
    n_pool: int

    @property
    def subsampled(self) -> bool:
        return len(self.index) < self.n_pool


def _subsample(n_pool: int, keep: np.ndarray, budget: int, rng: np.random.Generator, *,
               fill: bool = False) -> np.ndarray:
    """``keep`` plus other pool images from a fixed random order of the whole pool, sorted.

    By default the first ``budget`` images of that order, whether or not they are in ``keep``:
    the background is then the same whichever round or run asks. With ``fill``, the first
    ``budget`` images of that order not in ``keep``, so exactly ``len(keep) + budget`` are shown."""
    if keep.size and (keep.min() < 0 or keep.max() >= n_pool):
        raise ValueError(f"pool indices to keep must lie in 0..{n_pool - 1}")
    if budget >= n_pool:
        return np.arange(n_pool, dtype=np.int64)
    order = rng.permutation(n_pool)
    if fill:
        order = order[~np.isin(order, keep)]
    mask = np.zeros(n_pool, dtype=bool)
    mask[order[:max(budget, 0)]] = True
    mask[keep] = True
    return np.flatnonzero(mask).astype(np.int64)


def embed_pool(x_pool: np.ndarray, keep: Iterable[int] = (), *, method: str = "pca", max_points: int = 3000,
               random_state: int = 0, fit_points: int = 10_000, tsne_max_points: int = 2000) -> PoolEmbedding:
    """Coordinates of pool images in 2-D, from their flattened pixels (or features).

    ``pca``: scikit-learn's PCA to 2 components, fitted on at most ``fit_points`` pool images
    (a fixed random subset), applied to the images shown: ``max_points`` of the pool drawn at
    random plus every index in ``keep`` (the labeled and picked images, always shown). A
    projection: every image has the same place whatever round or run is shown.

    ``tsne``: t-SNE (van der Maaten & Hinton 2008) of at most ``tsne_max_points`` images
    (``keep`` plus a random fill), after PCA to 50 components; it places only the images it
    is given, so ``keep`` should hold every image the map will mark (all rounds' picks).
    Refused when ``keep`` alone is over ``tsne_max_points`` (use PCA). Slower: seconds for
    2000 points.

    Deterministic for a given ``random_state``."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    from alcore.strategies.diversity import _thread_limit

    if method not in ("pca", "tsne"):
        raise ValueError(f"unknown map method {method!r}; choose pca or tsne")
    if max_points < 1 or fit_points < 2 or tsne_max_points < 5:
        raise ValueError("max_points must be at least 1, fit_points 2 and tsne_max_points 5")
    x = np.asarray(x_pool)
    n = len(x)
    if n < 3:
        raise ValueError(f"a pool map needs at least 3 pool images, got {n}")
    flat = x.reshape(n, -1)
    keep = np.unique(np.asarray(list(keep), dtype=np.int64))
    rng = np.random.default_rng([random_state, 2])
    with _thread_limit():
        if method == "pca":
            shown = _subsample(n, keep, max_points, rng)
            fit_idx = np.sort(np.random.default_rng([random_state, 1]).permutation(n)[:fit_points])
            pca = PCA(n_components=2, random_state=random_state).fit(flat[fit_idx].astype(np.float64))
            coords = pca.transform(flat[shown].astype(np.float64))
        else:
            if len(keep) > tsne_max_points:
                raise ValueError(f"t-SNE maps at most {tsne_max_points:,} images and the runs label "
                                 f"{len(keep):,}: choose PCA")
            shown = _subsample(n, keep, min(max_points, tsne_max_points) - len(keep), rng, fill=True)
            z = flat[shown].astype(np.float64)
            k = min(50, z.shape[1], len(z))
            if k < z.shape[1]:
                z = PCA(n_components=k, random_state=random_state).fit_transform(z)
            perplexity = float(min(30.0, (len(z) - 1) / 3.0))
            coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state,
                          max_iter=750).fit_transform(z)
    return PoolEmbedding(index=shown, coords=np.asarray(coords, dtype=np.float64), method=method, n_pool=n)


def pool_map(embedding: PoolEmbedding, y_pool: np.ndarray, labeled: Iterable[int],
             picked: Iterable[int]) -> pd.DataFrame:
    """The embedded points with their status in a round and class, one row per point:
    ``index`` (pool index), ``x``, ``y``, ``status`` ("unlabeled", "labeled" or "picked":
    picked this round) and ``label`` (true class). Every labeled and picked image must be in
    the embedding (embed with them in ``keep``)."""
    idx = embedding.index
    y_pool = np.asarray(y_pool)
    if len(y_pool) != embedding.n_pool:
        raise ValueError(f"{len(y_pool)} labels for a pool of {embedding.n_pool} images")
    status = np.full(len(idx), "unlabeled", dtype=object)
    for name, members in (("labeled", labeled), ("picked", picked)):
        members = np.asarray(list(members), dtype=np.int64)
        pos = np.searchsorted(idx, members)
        found = (pos < len(idx)) & (idx[np.minimum(pos, len(idx) - 1)] == members)
        if not found.all():
            missing = members[~found][:5].tolist()
            raise ValueError(f"{name} pool images {missing} are not on the map: embed the pool with them kept")
        status[pos] = name
    return pd.DataFrame({"index": idx, "x": embedding.coords[:, 0], "y": embedding.coords[:, 1],
                         "status": status.astype(str), "label": y_pool[idx].astype(np.int64)})


def round_pool_map(result: RunResult, round_: int, embedding: PoolEmbedding, y_pool: np.ndarray) -> pd.DataFrame:
    """:func:`pool_map` for round ``round_`` of a run: labeled before it, picked in it."""
    labeled, picked = round_sets(result, round_)
    return pool_map(embedding, y_pool, labeled, picked)
