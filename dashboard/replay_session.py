"""What the Replay page computes and keeps for this session: a round's model retrained
(alcore.analysis.explain), 2-D maps of the pool, the image explained. Each is kept in
st.session_state, a few at a time, so scrubbing back is instant; nothing is shared between
sessions."""
from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict

import streamlit as st

from alcore.analysis.explain import ReplayError, embed_pool, recover_round_probs, run_keep
from dashboard.display import plain, show_problems
from dashboard.limits import deployment_limits, one_call_within_labels, run_slot_for_one_call
from dashboard.state import race_lock, trainer_cache

# session_state keys of the page (per browser session)
PROBS, MAPS, CLICKED = "replay_probs", "replay_maps", "replay_clicked"
RUN, ROUND, MAP = "replay_run", "replay_round", "replay_map"
UPLOADS = "replay_kept_uploads"  # the result files last uploaded: (runs, file names)
KEEP_ROUNDS, KEEP_MAPS = 12, 4  # recomputed rounds and pool maps kept for scrubbing back


def run_key(result, upto: int) -> str:
    """What decides round ``upto``'s model: the settings and every label known at that round."""
    known = [result.initial_indices, result.validation_indices,
             [(x.selected, getattr(x, "given_labels", [])) for x in result.rounds[:upto]]]
    text = result.config.model_dump_json() + json.dumps(known) + json.dumps(result.dataset.class_names)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _remembered(store_key: str) -> OrderedDict:
    return st.session_state.setdefault(store_key, OrderedDict())


def _keep(store: OrderedDict, key, value, most: int) -> None:
    store[key] = value
    while len(store) > most:
        store.popitem(last=False)


def round_probs(result, round_: int, data):
    """Round ``round_``'s candidate probabilities: from this session's store, or retrained
    (within this server's limits) and stored. None after saying why it cannot be had."""
    store, key = _remembered(PROBS), (run_key(result, round_), round_)
    if key in store:
        store.move_to_end(key)
        return store[key]
    labels = result.rounds[round_].n_labeled
    if too_big := deployment_limits().model_problems(result.config, data.image_shape, data.n_classes):
        show_problems(too_big)  # a file can name any model: counted before one is built
        return None
    with one_call_within_labels(labels, f"Retraining round {round_}'s model on {labels:,} labels",
                                "replay an earlier round") as ok:
        if not ok:
            return None
        try:
            with st.spinner(f"Retraining round {round_}'s {result.config.model} model on {labels:,} labels..."), \
                    race_lock():
                found = recover_round_probs(result, round_, dataset=data, cache=trainer_cache())
        except ReplayError as e:
            st.error(f"**Round {round_} cannot be rebuilt:** {plain(e)}", icon=":material/block:")
            return None
    _keep(store, key, found, KEEP_ROUNDS)
    return found


def map_source(cfg, data) -> str:
    """What the pool map places, in words: the run's embedding where it read one and it is here
    without computing it (in this server's cache, or the run's file), else the pixels."""
    if cfg.embedding == "pixels" or cfg.model == "transfer":
        return "pixels"
    from alcore.engine.embeddings import cached
    from dashboard.data import embedding_cache

    try:
        here = cfg.embedding == "file" and os.path.isfile(cfg.embedding_file or "") or \
            cached(data, cfg, embedding_cache()) is not None
    except OSError:
        here = False
    return f"{cfg.embedding} embedding" if here else "pixels"


def map_inputs(cfg, data):
    """(what the pool map places, :func:`map_source`)."""
    what = map_source(cfg, data)
    if what == "pixels":
        return data.x_pool, what
    from alcore.data.datasets import DatasetUnavailableError
    from alcore.engine.embeddings import compute_embeddings
    from dashboard.data import embedding_cache

    try:
        return compute_embeddings(data, cfg, cache=embedding_cache())[0].features_pool, what
    except (OSError, ValueError, DatasetUnavailableError):
        return data.x_pool, "pixels"


def pool_map(results, result, data, method: str):
    """A 2-D map of ``result``'s pool (``method``: "pca" or "tsne"; t-SNE within a run slot) that
    holds every image any run of ``results`` on the same pool labeled; None after saying why."""
    cfg = result.config
    same_pool = [x for x in results if x.config.data_key() == cfg.data_key() and x.dataset.n_pool == result.dataset.n_pool]
    keep = run_keep(same_pool)  # every image any of these runs labeled is always on the map
    x, what = map_inputs(cfg, data)
    maps, key = _remembered(MAPS), (cfg.data_key(), what, method, hashlib.sha256(keep.tobytes()).hexdigest()[:16])
    embedding = maps.get(key)
    if embedding is not None:
        return embedding
    try:
        if method == "tsne":
            with run_slot_for_one_call() as ok:
                if ok:
                    with st.spinner(f"t-SNE of {min(2000, len(data.y_pool)):,} pool images..."):
                        embedding = embed_pool(x, keep, method="tsne", random_state=0)
        else:
            with st.spinner("Projecting the pool..."):
                embedding = embed_pool(x, keep, method="pca", random_state=0)
    except ValueError as e:
        st.warning(plain(e), icon=":material/warning:")
    if embedding is not None:
        _keep(maps, key, embedding, KEEP_MAPS)
    return embedding


def forget_uploads() -> None:
    """The visitor changed the uploader's files: from now on it holds what is replayed."""
    st.session_state.pop(UPLOADS, None)


def kept_uploads(uploads) -> tuple[list, list[str]]:
    """The result files to replay: those in the uploader, or, when it comes back empty because
    the race was shown in between (Streamlit forgets a widget that is not drawn), those it
    held before, until the visitor changes its files."""
    if uploads.uploaded:
        st.session_state[UPLOADS] = (uploads.runs, uploads.names)
    runs, names = st.session_state.get(UPLOADS, ([], []))
    if runs and not uploads.uploaded:
        st.caption("Replaying the files uploaded before: " + ", ".join(plain(n) for n in names)
                   + ". Upload files above to replace them.")
    return runs, names


def valid_choice(key: str, n: int) -> None:
    """Keep a widget's value (run or round) within 0..n-1 and send it to the browser, which
    otherwise keeps what it showed before: a file's name in the run box after switching to the
    race (then compared with a number), a slider at 0 while the page shows another round."""
    value = st.session_state.get(key, 0)
    st.session_state[key] = min(value, n - 1) if isinstance(value, int) and value >= 0 else 0


def image_key(run_i, round_) -> str:
    """The key of the "Why this image?" selectbox of a run and round."""
    return f"replay_image_{run_i}_{round_}"


def clicked_on_map():
    """A point clicked on the pool map becomes the image explained (this run and round)."""
    state = st.session_state.get(MAP)
    points = (state or {}).get("selection", {}).get("points", [])
    if not points:
        return
    data = points[0].get("customdata")
    if isinstance(data, (list, tuple)):
        data = data[0] if data else None
    if data is None:
        return
    idx = int(data)
    st.session_state[CLICKED] = (st.session_state.get(RUN, 0), st.session_state.get(ROUND, 0), idx)
    st.session_state[image_key(st.session_state.get(RUN, 0), st.session_state.get(ROUND, 0))] = idx


def clicked(run_i, round_) -> int | None:
    """The pool image last clicked on the map of this run and round, if any."""
    got = st.session_state.get(CLICKED)
    return got[2] if got and got[:2] == (run_i, round_) else None


def explainable(rnd, clicked_index: int | None) -> dict[int, str]:
    """The images "Why this image?" offers for round ``rnd``, in order, each with its role: the
    one clicked on the map (where it is none of the others), the picks, the least and the most
    confident."""
    roles = {}
    if clicked_index is not None and clicked_index not in set(rnd.selected) | \
            {x.index for x in rnd.least_confident + rnd.most_confident}:
        roles[clicked_index] = "clicked on the map"
    for i, s in zip(rnd.selected, rnd.selected_scores):
        roles[i] = f"picked, score {s:.3f}"
    for refs, role in ((rnd.least_confident, "least confident"), (rnd.most_confident, "most confident")):
        for ref in refs:
            roles.setdefault(ref.index, f"{role}, {ref.confidence:.0%} sure")
    return roles
