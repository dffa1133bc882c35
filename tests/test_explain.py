"""alcore.analysis.explain: scores and ranks, recovered rounds, overlap of picks, the pool map; and
the figures the Replay page draws from them."""
import json

import numpy as np
import pytest

from alcore import ExperimentConfig
from alcore.analysis.explain import (MEASURES, ReplayError, candidate_scores, dataset_problem, embed_pool, jaccard,
                            jaccard_matrix, picks_overlap, pool_map, record_mismatches, recover_round_probs,
                            replay_refusal, round_pool_map, round_sets, run_keep, score_ranks)
from alcore.figures import overlap_figure, pool_map_figure, probability_bars_figure, score_rank_frame
from alcore.results.records import load_result, to_json
from alcore.strategies.base import UNCERTAINTY_SCORES, top_k

# Five candidates, three classes: sure, a two-way tie, leaning, uniform, fairly sure.
PROBS = np.array([[0.90, 0.05, 0.05],
                  [0.40, 0.40, 0.20],
                  [0.50, 0.30, 0.20],
                  [1 / 3, 1 / 3, 1 / 3],
                  [0.60, 0.30, 0.10]])
POOL_INDEX = np.array([3, 7, 8, 20, 31])


# ---------------------------------------------------------------- scores and ranks

def test_scores_are_the_strategies_own_and_ranks_follow_them():
    cs = candidate_scores(PROBS, POOL_INDEX)
    assert list(cs.scores) == list(MEASURES) == ["least_confidence", "margin", "ratio", "entropy"]
    for m in MEASURES:
        np.testing.assert_array_equal(cs.scores[m], UNCERTAINTY_SCORES[m](PROBS))
    # worked by hand: 1 - max = .10 .60 .50 .667 .40; margins 1-(p1-p2) = .15 1 .80 1 .70;
    # ratios p2/p1 = .056 1 .60 1 .50; entropy is highest for the uniform row
    assert cs.ranks["least_confidence"].tolist() == [5, 2, 3, 1, 4]
    assert cs.ranks["margin"].tolist() == [5, 1, 3, 1, 4]  # a tie shares the best rank
    assert cs.ranks["ratio"].tolist() == [5, 1, 3, 1, 4]
    assert cs.ranks["entropy"].tolist() == [5, 2, 3, 1, 4]
    for m in MEASURES:  # what the strategy would pick first has rank 1
        first = top_k(cs.scores[m], 1, np.random.default_rng(0))[0]
        assert cs.ranks[m][first] == 1


def test_one_image_explained_by_its_pool_index():
    ex = candidate_scores(PROBS, POOL_INDEX).explain(31)
    assert ex.pool_index == 31 and ex.predicted == 0 and ex.n_candidates == 5
    np.testing.assert_allclose(ex.probs, PROBS[4])
    assert ex.scores["margin"] == pytest.approx(0.7) and ex.ranks["margin"] == 4
    assert ex.scores["ratio"] == pytest.approx(0.5) and ex.ranks["entropy"] == 4
    with pytest.raises(ValueError, match="pool image 9 was not among this round's 5 scored candidates"):
        candidate_scores(PROBS, POOL_INDEX).explain(9)
    assert 20 in candidate_scores(PROBS, POOL_INDEX) and 21 not in candidate_scores(PROBS, POOL_INDEX)


def test_competition_ranking_and_bad_input():
    assert score_ranks([0.5, 0.9, 0.5, 0.1]).tolist() == [2, 1, 2, 4]
    with pytest.raises(ValueError, match="NaN"):
        score_ranks([0.1, np.nan])
    with pytest.raises(ValueError, match="3 candidate indices for 5 rows"):
        candidate_scores(PROBS, [1, 2, 3])
    with pytest.raises(ValueError, match="increasing and distinct"):
        candidate_scores(PROBS, [1, 2, 2, 3, 4])
    with pytest.raises(ValueError, match="sum to 1"):
        candidate_scores(PROBS * 0.5)


# ------------------------------------------------------------ recovering a past round

@pytest.fixture(scope="module")
def race_with_scores(digits, cache):
    """A tiny digits race (margin, entropy, random on seed 0), with the candidates and
    probabilities each live experiment scored in every round (Experiment.last_scored)."""
    from alcore.engine.race import Race

    # early stopping on a 20% split, as when this was written: its margin and entropy picks do not overlap
    race = Race(ExperimentConfig(rounds=2, max_epochs=10, validation="split"), ["margin", "entropy", "random"], [0],
                dataset_for=lambda cfg: digits, cache=cache)
    live = {}
    while race.step() is not None:
        exp, rnd = race.last
        live[(exp.config.strategy, rnd.round)] = (exp.last_scored[0].copy(), exp.last_scored[1].copy())
    return race, live


def test_a_recovered_round_has_the_probabilities_the_live_run_had(race_with_scores, digits, cache):
    race, live = race_with_scores
    for exp in race.experiments:
        res = load_result(to_json(exp.result()).encode())  # through the file, as an upload would
        for r in range(len(res.rounds)):
            got = recover_round_probs(res, r, dataset=digits, cache=cache)
            cand, probs = live[(exp.config.strategy, r)]
            np.testing.assert_array_equal(got.candidates, cand)
            np.testing.assert_allclose(got.probs, probs, rtol=0, atol=1e-6)
            assert record_mismatches(got, res.rounds[r]) == []


def test_a_subset_of_candidates_and_fixed_validation_are_replayed_too(digits, cache):
    from alcore.engine.loop import Experiment

    cfg = ExperimentConfig(rounds=2, max_epochs=10, candidates=300, validation="fixed", validation_size=10,
                           strategy="least_confidence")
    exp = Experiment(cfg, dataset=digits, cache=cache)
    live = []
    for _ in exp.run():
        live.append(exp.last_scored)
    for r, (cand, probs) in enumerate(live):
        got = recover_round_probs(exp.result(), r, dataset=digits, cache=cache)
        assert len(got.candidates) == 300
        np.testing.assert_array_equal(got.candidates, cand)
        np.testing.assert_allclose(got.probs, probs, rtol=0, atol=1e-6)
        picked = got.scores().explain(exp.rounds[r].selected[0]) if exp.rounds[r].selected else None
        if picked is not None:  # the first pick is least confidence's top candidate
            assert picked.ranks["least_confidence"] == 1
            assert picked.scores["least_confidence"] == pytest.approx(exp.rounds[r].selected_scores[0], abs=1e-6)


def test_record_mismatches_name_the_images_that_disagree(race_with_scores, digits, cache):
    race, _ = race_with_scores
    res = race.experiments[0].result()
    got = recover_round_probs(res, 0, dataset=digits, cache=cache)
    ref = res.rounds[0].most_confident[0]
    forged = res.rounds[0].model_copy(update={"most_confident": [ref.model_copy(update={"confidence": 0.5})]})
    problems = record_mismatches(got, forged)
    assert len(problems) == 1 and problems[0].startswith(f"image {ref.index}: recorded 0.5000")


def test_rounds_that_cannot_be_rebuilt_are_refused_with_the_reason(race_with_scores, digits, cache):
    race, _ = race_with_scores
    res = race.experiments[0].result()
    warm = res.model_copy(update={"config": res.config.replace(warm_start=True)})
    assert "warm-start run" in replay_refusal(warm) and replay_refusal(res) is None
    with pytest.raises(ReplayError, match="margin \\(seed 0\\) is a warm-start run: .* cannot be rebuilt"):
        recover_round_probs(warm, 1, dataset=digits, cache=cache)
    with pytest.raises(ReplayError, match="round 3 is not in margin \\(seed 0\\), which has rounds 0 to 2"):
        recover_round_probs(res, 3, dataset=digits, cache=cache)
    gone = res.model_copy(update={"config": res.config.replace(dataset="npz", data_file="/nowhere/mine.npz")})
    with pytest.raises(ReplayError, match="the dataset of margin \\(seed 0\\) \\(npz\\) cannot be loaded here.*"
                                          "does not exist"):
        recover_round_probs(gone, 1, cache=cache)
    from alcore.data.datasets import load_dataset

    other = load_dataset(res.config.replace(seed=1))  # another split of digits: same sizes, other images
    assert "other labels" in dataset_problem(res, other) and dataset_problem(res, digits) is None
    for r in (0, 2):  # round 0 too, before any gallery of an earlier round could tell
        with pytest.raises(ReplayError, match="margin \\(seed 0\\) cannot be rebuilt here: the pool images "
                                              "here have other labels"):
            recover_round_probs(res, r, dataset=other, cache=cache)


# ------------------------------------------------------------------------ overlap

def test_jaccard_on_known_sets():
    assert jaccard({1, 2, 3}, {2, 3, 4}) == 0.5
    assert jaccard([1, 2], [3]) == 0.0 and jaccard([5], [5]) == 1.0
    assert np.isnan(jaccard([], []))
    m = jaccard_matrix([{1, 2}, {2, 3}, {1, 2}, set()])
    assert m.shape == (4, 4) and np.allclose(m, m.T, equal_nan=True)
    assert m[0, 1] == pytest.approx(1 / 3) and m[0, 2] == 1.0 and m[0, 3] == 0.0 and np.isnan(m[3, 3])


def test_picks_overlap_of_a_race_round(race_with_scores):
    race, _ = race_with_scores
    results = race.results()
    ov = picks_overlap(results, 1)
    assert ov.labels == ["margin (seed 0)", "entropy (seed 0)", "random (seed 0)"] and ov.sizes == [10, 10, 10]
    sets = [set(r.rounds[1].selected) for r in results]
    assert ov.matrix[0, 1] == pytest.approx(jaccard(sets[0], sets[1]))
    assert np.diag(ov.matrix).tolist() == [1.0, 1.0, 1.0]
    both = picks_overlap(results, 1, cumulative=True)
    assert both.sizes == [20, 20, 20] and both.cumulative
    last = picks_overlap(results, 2)  # the last round picks nothing: nothing to compare
    assert last.sizes == [0, 0, 0] and np.isnan(last.matrix).all()
    seed1 = results[1].model_copy(update={"config": results[1].config.replace(seed=1)})
    with pytest.raises(ValueError, match="seeds 0, 1: picks overlap only means something within one seed"):
        picks_overlap([results[0], seed1], 0)
    moved = results[1].model_copy(update={"initial_indices": results[1].initial_indices[::-1][:-1] + [0]})
    with pytest.raises(ValueError, match="starts from other initial labels than margin \\(seed 0\\)"):
        picks_overlap([results[0], moved], 0)
    short = results[0].model_copy(update={"rounds": results[0].rounds[:1]})
    ov = picks_overlap([short, results[1]], 1)
    assert ov.left_out == ["margin (seed 0)"] and ov.labels == ["entropy (seed 0)"]


# ----------------------------------------------------------------------- pool map

def blobs(n=5000, k=4, seed=0):
    """n 8x8 images in k classes, each class a bright row: PCA separates them."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.random((n, 8, 8)).astype(np.float32) * 0.3
    for c in range(k):
        x[y == c, 2 * c] += 1.0
    return x, y


def test_a_big_pool_is_subsampled_but_every_labeled_and_picked_image_is_kept():
    x, y = blobs()
    labeled = np.arange(0, 5000, 23)  # 218 images
    picked = np.array([1, 4998, 2500, 77])
    emb = embed_pool(x, np.concatenate([labeled, picked]), max_points=500)
    assert emb.subsampled and emb.method == "pca" and emb.n_pool == 5000
    assert np.isin(labeled, emb.index).all() and np.isin(picked, emb.index).all()
    assert 500 < len(emb.index) <= 500 + len(labeled) + len(picked)
    frame = pool_map(emb, y, labeled, picked)
    assert list(frame.columns) == ["index", "x", "y", "status", "label"]
    counts = frame["status"].value_counts().to_dict()
    assert counts["labeled"] == len(labeled) and counts["picked"] == 4
    assert counts["unlabeled"] == len(frame) - len(labeled) - 4 >= 300
    assert (frame["label"].to_numpy() == y[frame["index"].to_numpy()]).all()
    # the same image lands in the same place whatever else is shown (a projection, fixed seed)
    other = embed_pool(x, [3, 4999], max_points=500)
    common, a, b = np.intersect1d(emb.index, other.index, return_indices=True)
    assert len(common) >= 400 and np.allclose(emb.coords[a], other.coords[b])
    # classes separate on the map: class means lie apart
    means = np.array([frame.loc[frame["label"] == c, ["x", "y"]].mean().to_numpy() for c in range(4)])
    assert min(np.linalg.norm(means[i] - means[j]) for i in range(4) for j in range(i + 1, 4)) > 0.5
    absent = int(np.setdiff1d(np.arange(5000), other.index)[0])
    with pytest.raises(ValueError, match=f"picked pool images \\[{absent}\\] are not on the map"):
        pool_map(other, y, [3], [absent])


def test_a_small_pool_is_shown_whole_and_tsne_is_bounded():
    x, y = blobs(n=300)
    emb = embed_pool(x, [], max_points=3000)
    assert not emb.subsampled and emb.index.tolist() == list(range(300))
    ts = embed_pool(x, [5, 6, 250], method="tsne", tsne_max_points=120)
    assert ts.method == "tsne" and len(ts.index) == 120 and np.isin([5, 6, 250], ts.index).all()
    assert np.isfinite(ts.coords).all()
    np.testing.assert_array_equal(ts.coords, embed_pool(x, [5, 6, 250], method="tsne", tsne_max_points=120).coords)
    with pytest.raises(ValueError, match="t-SNE maps at most 120 images and the runs label 150: choose PCA"):
        embed_pool(x, range(150), method="tsne", tsne_max_points=120)
    with pytest.raises(ValueError, match="unknown map method 'umap'"):
        embed_pool(x, method="umap")


def test_round_sets_and_the_map_of_a_real_round(race_with_scores, digits):
    race, _ = race_with_scores
    res = race.experiments[0].result()
    labeled, picked = round_sets(res, 1)
    assert sorted(labeled.tolist()) == sorted(res.initial_indices + res.rounds[0].selected)
    assert picked.tolist() == sorted(res.rounds[1].selected)
    keep = run_keep(race.results())
    # the shared initial labels and each strategy's two batches (strategies may pick the same image)
    runs = race.results()
    assert sorted(keep.tolist()) == sorted(set(runs[0].initial_indices).union(
        *(r.selected for run in runs for r in run.rounds)))
    assert len(keep) > 10 + 20
    frame = round_pool_map(res, 1, embed_pool(digits.x_pool, keep), digits.y_pool)
    assert len(frame) == len(digits.y_pool)  # digits' 1,438 images are all shown
    assert (frame["status"] == "picked").sum() == 10 and (frame["status"] == "labeled").sum() == 20
    with pytest.raises(ValueError, match="round 7 is not in"):
        round_sets(res, 7)


# ------------------------------------------------------------------------ figures

EVIL = "<b>x</b>"


def test_probability_bars_mark_the_predicted_and_true_class():
    fig = probability_bars_figure([0.1, 0.7, 0.2], ["a", EVIL, "c"], true_label=2)
    bar = fig.data[0]
    assert list(bar.x) == ["a", "&lt;b&gt;x&lt;/b&gt;", "c"] and list(bar.y) == [0.1, 0.7, 0.2]
    assert bar.marker.color[1] != bar.marker.color[0] and bar.marker.color[2] not in (bar.marker.color[0],
                                                                                      bar.marker.color[1])
    assert list(bar.customdata) == ["", "predicted", "true class"]
    assert list(bar.text) == ["10%", "70%<br>predicted", "20%<br>true class"]
    assert list(probability_bars_figure([0.1, 0.9], ["a", "b"], true_label=1).data[0].text) == \
        ["10%", "90%<br>predicted, true"]
    with pytest.raises(ValueError, match="probabilities for 2 classes"):
        probability_bars_figure([0.5, 0.3, 0.2], ["a", "b"])
    assert tuple(fig.layout.yaxis.range) == (0, 1)  # a probability ends at 100% (issue 18: the axis ran to 120%)
    assert bar.cliponaxis is False and fig.layout.uniformtext.mode == "show"  # a tall bar's label stays readable


def test_score_rank_table_rows():
    ex = candidate_scores(PROBS, POOL_INDEX).explain(8)
    table = score_rank_frame(ex, batch_size=3, strategy="margin")
    assert table["measure"].tolist() == ["least confidence", "margin", "ratio", "entropy"]
    assert table["rank"].tolist() == [3, 3, 3, 3] and table["candidates"].tolist() == [5] * 4
    assert table["in_batch"].tolist() == [True] * 4 and table["strategy"].tolist() == [False, True, False, False]
    assert table["top_share"].tolist() == [0.6] * 4
    assert score_rank_frame(ex, batch_size=2)["in_batch"].tolist() == [False] * 4


def test_overlap_heatmap_shows_the_matrix(race_with_scores):
    race, _ = race_with_scores
    ov = picks_overlap(race.results(), 0)
    fig = overlap_figure(ov)
    hm = fig.data[0]
    np.testing.assert_allclose(np.asarray(hm.z, dtype=float), ov.matrix)
    assert list(hm.x) == ["margin (seed 0) (10)", "entropy (seed 0) (10)", "random (seed 0) (10)"]
    assert "round 0" in fig.layout.title.text and hm.text[0][0] == "1.00"


def test_pool_map_figure_layers_and_clickable_indices():
    x, y = blobs(n=400)
    frame = pool_map(embed_pool(x, [1, 2, 3]), y, [1, 2], [3])
    fig = pool_map_figure(frame, ["a", "b", EVIL, "d"], highlight=3)
    names = [t.name for t in fig.data]
    assert names == ["a", "b", "&lt;b&gt;x&lt;/b&gt;", "d", "labeled before this round (2)",
                     "picked this round (1)", "#3 (explained)"]
    assert sum(len(t.x) for t in fig.data[:4]) == 397
    assert list(fig.data[5].customdata) == [3] and fig.data[5].marker.symbol == "star"
    assert sorted(fig.data[4].customdata) == [1, 2]
    y25 = np.arange(300) % 25
    many = pool_map_figure(pool_map(embed_pool(x[:300], []), y25, [], []), [str(i) for i in range(25)])
    assert [t.name for t in many.data] == ["unlabeled", "labeled before this round (0)", "picked this round (0)"]
    json.loads(fig.to_json())  # serialisable for the browser
