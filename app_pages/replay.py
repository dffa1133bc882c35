"""Replay page: scrub through the rounds of a run; why each image was picked."""
import streamlit as st

from alcore.analysis.explain import (candidate_scores, picks_overlap, record_mismatches, replay_refusal,
                                     round_pool_map, round_sets)
from alcore.figures import (gallery, gallery_caption, overlap_figure, picked_images, pool_map_figure,
                            probability_bars_figure, score_rank_frame, upscale)
from alcore.strategies.base import strategy_class
from alcore.strategies.coverage import ProbCoverStrategy
from dashboard import ceiling_view
from dashboard import replay_session as replay
from dashboard.data import embedding_source
from dashboard.display import (caption_names, plain, show_figure, show_gallery, show_gallery_details, show_table,
                               temperature_caption)
from dashboard.replay_session import MAP, ROUND, RUN

st.title("Replay")
st.write("Scrub through the rounds of a run: the batch it picked, the images it was most and least sure "
         "about, and where the picks lie in a map of the pool. **Why this image?** retrains that round's "
         "model (cold start makes it the same model the run had) and shows the image's class probabilities "
         "and its score and rank under each uncertainty measure.")

results, names, datasets = replay.runs_to_replay()  # a file's data is loaded below, for the run shown only
if not results:
    st.info("No runs to replay yet: upload result files (from **Results**, **Compare** or the CLI), "
            "or race strategies on the **Run** page.")
    st.stop()

replay.valid_choice(RUN, len(results))
c1, c2 = st.columns([2, 3])
which = c1.selectbox("Run", range(len(results)), format_func=list(names).__getitem__, key=RUN)  # options are plain text
res = results[which]
n_rounds = len(res.rounds)
replay.valid_choice(ROUND, n_rounds)  # another run with fewer rounds: the slider would refuse to draw
if n_rounds > 1:
    r = c2.slider("Round", 0, n_rounds - 1, key=ROUND, help="Drag to scrub through the run's rounds.")
else:
    r = 0
    c2.caption("This run has one round.")
rnd, cfg, given = res.rounds[r], res.config, res.labelled_in_the_loop  # given: every label a person's

m1, m2, m3, m4 = st.columns(4)
m1.metric("Labels", rnd.n_labeled)
accuracy_name, audit_note = replay.accuracy_text(res, r)
m2.metric(accuracy_name, f"{rnd.test_accuracy:.2%}", f"{rnd.test_accuracy - res.rounds[r - 1].test_accuracy:+.2%}" if r else None)
m3.metric("Picked this round", len(rnd.selected))
m4.metric("Candidates scored", f"{rnd.pool.n_scored:,}" if rnd.pool is not None else "-")
if audit_note:
    st.caption(audit_note)

# a file's data: this session's upload of the file it names by its SHA-256, never its path
ds = datasets[which] if datasets[which] is not None else replay.file_dataset(res)
labels = None if ds is None else replay.pool_labels(res, ds)  # a person's where a person labelled, -1 unknown
refusal = replay_refusal(res)
# a labelling run's file keeps no galleries (nobody knew the truth): its retrained round gives them
found = replay.round_probs(res, r, ds) if given and ds is not None and not refusal else None
most, least = replay.galleries(res, rnd, labels, found)

# ------------------------------------------------------------------ what the round shows
names_shown = caption_names(res.dataset.class_names)  # captions render markdown; names come from files
if ds is not None:
    picked = picked_images(rnd, labels)
    if picked:
        st.markdown(ceiling_view.batch_heading(res, rnd, f"in round {r}"))
        if rnd.probcover_radius is not None:
            st.caption(f"probcover covered the pool with balls of radius **{rnd.probcover_radius:g}**, "
                       + plain(ProbCoverStrategy.radius_origin(cfg)) + ".")
        if rnd.uherding_temperature is not None:
            st.caption(temperature_caption(rnd, cfg))
        show_gallery(ds.display_images(ds.x_pool[rnd.selected]),
                     [gallery_caption(p.index, names_shown, p.predicted, p.label, given=given) for p in picked])
        if res.oracle == "person" and not rnd.given_labels:
            st.caption("This batch was still waiting for the person's labels when the run was saved.")
    else:
        st.caption("This round picks nothing: the run stopped here (" + plain(res.stop_reason or "stopped") + ").")
    for refs, title in ((least, "Least confident unlabeled images"), (most, "Most confident unlabeled images")):
        if refs:
            imgs, caps = gallery(ds.display_images(ds.x_pool[[x.index for x in refs]]), refs, names_shown, given=given)
            st.markdown(f"**{title}**")
            show_gallery(imgs, caps)
    if given:
        st.caption("Captions say the label the person gave (in any round) where there is one; none, where "
                   "nobody labelled the image. The confident images are from this round's model, retrained.")
    show_gallery_details({"picked": picked, "least confident": least, "most confident": most},
                         res.dataset.class_names, f"images_round{r}", given=given)
ceiling_view.show_candidates(res, rnd, f"replay_round{r}")  # from the file alone: no dataset needed

# ---------------------------------------------------------------------- why this image?
st.subheader("Why this image?")
roles = replay.explainable(rnd, replay.clicked(which, r), most, least)
options = list(roles)
chosen = None
if refusal:
    st.info(plain(refusal) + ".", icon=":material/info:")
elif ds is None:
    st.info("The run's dataset is needed to retrain its rounds; it is not available here.", icon=":material/info:")
elif options:
    key = replay.image_key(which, r)
    if st.session_state.get(key) not in options:
        st.session_state.pop(key, None)
    chosen = st.selectbox("Image (or click a point on the map below)", options, key=key,
                          format_func={i: f"#{i} ({roles[i]})" for i in options}.__getitem__)  # no page globals
    found = found if given else replay.round_probs(res, r, ds)  # a labelling run's: retrained above
    if found is not None:
        scored = candidate_scores(found.probs, found.candidates)
        if mismatch := record_mismatches(found, rnd):
            st.warning("The retrained model differs from the one the run recorded (another TensorFlow version "
                       "or machine?), so these numbers are not exactly the run's: " + plain("; ".join(mismatch[:3])),
                       icon=":material/warning:")
        truth = int(labels[chosen])
        left, right = st.columns([1, 3])
        left.image(upscale(ds.display_images(ds.x_pool[[chosen]]), 224)[0], width=224,
                   caption=replay.label_caption(chosen, truth, res.dataset.class_names, given))
        if chosen in scored:
            ex = scored.explain(chosen)
            show_figure(probability_bars_figure(ex.probs, res.dataset.class_names, truth,
                                                f"Round {r}'s model on image #{chosen}", given=given),
                        f"probabilities_round{r}_image{chosen}", where=right, key="replay_bars")
            own = strategy_class(cfg.strategy).uncertainty_measure(cfg)
            table = score_rank_frame(ex, batch_size=len(rnd.selected) or cfg.batch_size, strategy=own)
            num = st.column_config.NumberColumn
            show_table(table, f"scores_round{r}_image{chosen}", column_config={
                "score": num("score", format="%.4f"), "rank": num("rank (1 = picked first)", format="%d"),
                "candidates": num("of candidates", format="%d"),
                "top_share": num("in the top", format="percent"),
                "in_batch": st.column_config.CheckboxColumn("in a batch of this size"),
                "strategy": st.column_config.CheckboxColumn(f"{plain(ceiling_view.picker(res))}'s measure")})
            if own is None:
                st.caption(ceiling_view.not_by_scores(res))
        elif chosen in set(round_sets(res, r)[0].tolist()):
            right.info(f"Image #{chosen} was labeled before round {r}: the model trained on it, so it was not "
                       "a candidate.", icon=":material/info:")
        else:
            right.info(f"Image #{chosen} was not among round {r}'s {len(scored.candidates):,} scored candidates.",
                       icon=":material/info:")
else:
    st.caption("Nothing to explain in this round.")

# ------------------------------------------------------------------------ the pool map
if ds is not None:
    st.subheader("The pool in 2-D")
    method = st.radio("Map", ["pca", "tsne"], horizontal=True, key="replay_map_method",
                      format_func={"pca": "PCA (instant)", "tsne": "t-SNE (seconds; a subsample)"}.get,
                      help="PCA projects the pixels onto their two main directions of variation; t-SNE keeps "
                           "neighbours together and separates classes better, on at most 2,000 images.")
    embedding = replay.pool_map(results, res, ds, method)
    if embedding is not None:
        frame = round_pool_map(res, r, embedding, labels)
        shown = f"{len(embedding.index):,} of {embedding.n_pool:,} pool images" if embedding.subsampled else \
            f"all {embedding.n_pool:,} pool images"
        show_figure(pool_map_figure(frame, res.dataset.class_names, f"Round {r}: {shown}", highlight=chosen,
                                    method=method, given=given),
                    f"pool_map_{method}_round{r}", key=MAP, on_select=replay.clicked_on_map, selection_mode="points")
        st.caption(f"A map of the pool's {embedding_source(res.config, ds)}. "
                   + ("Colour is the label the person gave, in any round (grey: none given). " if given else
                      "Colour is the true class. ") + "Stars are the batch picked this round, outlined dots the images "
                   "labeled before it; click a point to explain it above. Picks of an uncertainty strategy tend "
                   "to sit where two class clouds meet.")
        if note := ceiling_view.map_note(res):
            st.caption(note)

# ------------------------------------------------------------- overlap of strategies
st.subheader("Do the strategies pick the same images?")
seed_runs = [i for i, x in enumerate(results) if x.config.seed == cfg.seed and x.initial_indices == res.initial_indices
             and x.dataset.n_pool == res.dataset.n_pool]
if len(seed_runs) < 2:
    st.info(f"Only one run of seed {cfg.seed} is loaded: race two or more strategies on it (or upload their "
            "result files) to see how much their picks overlap.", icon=":material/info:")
else:
    cumulative = st.toggle("All picks up to this round", key="replay_cumulative",
                           help="Off: the batches of this round only. On: everything each run picked in rounds "
                                f"0 to {r}.")
    overlap = picks_overlap([results[i] for i in seed_runs], r, cumulative=cumulative,
                            labels=[names[i] for i in seed_runs])
    if overlap.left_out:
        st.caption("Stopped before this round: " + ", ".join(plain(x) for x in overlap.left_out) + ".")
    show_figure(overlap_figure(overlap), f"picks_overlap_round{r}", key="replay_overlap")
    st.caption(f"Jaccard index of seed {cfg.seed}'s runs: images both picked over images either picked "
               "(0: nothing in common, 1: the same batch). Every run of a seed starts from the same labels and "
               "weights, so what differs is the strategy.")
