"""What the Replay page computes and keeps for this session: a round's model retrained
(alcore.analysis.explain), 2-D maps of the pool, the image explained. Each is kept in
st.session_state, a few at a time, so scrubbing back is instant; nothing is shared between
sessions."""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict

import numpy as np
import streamlit as st

from alcore import ExperimentConfig
from alcore.analysis.explain import ReplayError, dataset_problem, embed_pool, recover_round_probs, run_keep
from alcore.analysis.pitfalls import accuracy_interval
from alcore.engine.labelling import given_pool_labels, labelled_dataset
from alcore.figures import confident_images
from dashboard import labelling, oracle_session
from dashboard.data import dataset
from dashboard.data import embedding_if_here
from dashboard.display import plain, show_problems
from dashboard.limits import deployment_limits, one_call_within_labels, run_slot_for_one_call
from dashboard.state import RACE, race_lock, trainer_cache
from dashboard.uploads import local_data, result_uploads

# session_state keys of the page (per browser session)
PROBS, MAPS, CLICKED = "replay_probs", "replay_maps", "replay_clicked"
RUN, ROUND, MAP = "replay_run", "replay_round", "replay_map"
SOURCE, DATASETS = "replay_source", "replay_datasets"
UPLOADS = "replay_kept_uploads"  # the result files last uploaded: (runs, file names)
SHOWN_FILES = "replay_uploader_held_files"  # the uploader, as last drawn, held files
KEEP_ROUNDS, KEEP_MAPS, KEEP_DATASETS = 12, 4, 1  # recomputed rounds, pool maps, rebuilt labelling datasets
GALLERY_K = ExperimentConfig.model_fields["inspect_k"].default  # a labelling run's galleries, from its retrained rounds
SOURCES = {"race": "This session's race", "person": "Your runs on Be the oracle", "files": "Result files"}


# ------------------------------------------------------------------------ the runs shown

def _person_runs() -> list:
    """This session's runs a person labelled on Be the oracle that have trained a round: the run on
    images without labels (dashboard.labelling) and the run beside the simulated oracle."""
    runs = [st.session_state.get(labelling.RUN), oracle_session.current()]
    return [x for x in runs if x is not None and x.person is not None and x.person.rounds]


def runs_to_replay() -> tuple[list, list[str], list]:
    """The source radio and the runs it offers: (results, names, their datasets where this session
    holds them, else None: a file's data is asked for when its run is shown)."""
    race = st.session_state.get(RACE)
    offered = {"race": race is not None and any(e.rounds for e in race.experiments),
               "person": bool(_person_runs()), "files": True}
    sources = [k for k, v in offered.items() if v]
    if st.session_state.get(SOURCE) not in sources:
        st.session_state.pop(SOURCE, None)  # the race is gone (a new one not started yet)
    source = st.radio("Runs from", sources, horizontal=True, key=SOURCE, format_func=SOURCES.get)
    if source == "files":
        uploads = result_uploads("Result files (JSON) of one race: several strategies on a seed can be compared",
                                 key="replay_files", on_change=forget_uploads)
        results, files = kept_uploads(uploads)
        return results, [f"{x.label} [{name}]" for x, name in zip(results, files)], [None] * len(results)
    st.session_state[SHOWN_FILES] = False  # the uploader is not drawn
    with race_lock():  # a round the Run page (or a submit on Be the oracle) was still computing is finished first
        # the race's oracle ceilings after its strategies' runs (named 'oracle ceiling (seed N)')
        runs = [e for e in race.runs if e.rounds] if source == "race" else _person_runs()
        results = [e.result() for e in runs]
    names = [r.label + (" on your images without labels" if r.labelled_in_the_loop else "") for r in results]
    return results, names, [e.dataset for e in runs]


def file_dataset(result):
    """The data a result file's run was made on: this session's upload with the file's SHA-256 (asked
    for where the session has none), a labelling run's images rebuilt as it saw them (its audit set
    the test split, with the person's labels; checked against the file). None after saying why not."""
    here = local_data(result.config, result.dataset.file_sha256, "replay_data", result.label)
    if here is None:
        return None
    ds = _labelling_dataset(result, here) if result.labelled_in_the_loop else dataset(here)
    if ds is not None and (problem := dataset_problem(result, ds)):
        st.error(f"**This file's images cannot be shown:** {plain(problem)}.", icon=":material/warning:")
        return None
    return ds


def _labelling_dataset(result, here: ExperimentConfig):
    """alcore.engine.labelling.labelled_dataset on this session's copy of the images, kept for the
    session (preparing a large pool again at every scrub would cost seconds)."""
    key = hashlib.sha256(json.dumps([here.data_file, here.image_size, here.normalization, result.audit_indices,
                                     result.audit_labels, result.dataset.class_names,
                                     result.images_sha256]).encode()).hexdigest()
    store = _remembered(DATASETS)
    if key in store:
        return store[key]
    try:
        ds = labelled_dataset(result, labelling.upload_images(here))
    except ValueError as e:
        st.error(f"**This file's images cannot be shown:** {plain(e)}.", icon=":material/warning:")
        return None
    _keep(store, key, ds, KEEP_DATASETS)
    return ds


def pool_labels(result, data) -> np.ndarray:
    """The label of each pool image as Replay shows it: the dataset's, or for a run on images without
    labels the one the person gave (-1 where none was)."""
    return given_pool_labels(result) if result.labelled_in_the_loop else np.asarray(data.y_pool)


def accuracy_text(result, round_: int) -> tuple[str, str | None]:
    """The test accuracy's name, and for a labelling run what it was measured on: its audit set,
    with the Wilson 95% interval of that many images."""
    if not result.labelled_in_the_loop:
        return "Test accuracy", None
    acc, n = result.rounds[round_].test_accuracy, result.dataset.n_test
    lo, hi = accuracy_interval(acc, n)
    return "Accuracy on the audit set", (
        f"Test accuracy is measured on the audit set: {n} images the person labelled first, drawn at random and "
        f"never trained on. 95% Wilson interval {lo:.1%} to {hi:.1%}: differences inside it are noise.")


def label_caption(index: int, label: int, class_names, given: bool) -> str:
    """Under the image explained: its class, or for a labelling run the person's label (or that none was given)."""
    if label < 0:
        return f"#{index}: no label given (nobody labelled this image)"
    return f"#{index}: {'labelled' if given else 'true class'} {plain(class_names[label])}"


def galleries(result, rnd, labels, found) -> tuple[list, list]:
    """A round's most and least confident unlabeled images: the file's, or for a labelling run (whose
    file keeps none: the truth was unknown) the retrained round's (``found``), with the person's labels."""
    if rnd.most_confident or rnd.least_confident or found is None or not result.labelled_in_the_loop:
        return rnd.most_confident, rnd.least_confident
    return confident_images(found.probs, found.candidates, labels, GALLERY_K)


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


def pool_map(results, result, data, method: str):
    """A 2-D map of ``result``'s pool (``method``: "pca" or "tsne"; t-SNE within a run slot) that
    holds every image any run of ``results`` on the same pool labeled; None after saying why."""
    cfg = result.config
    same_pool = [x for x in results if x.config.data_key() == cfg.data_key() and x.dataset.n_pool == result.dataset.n_pool]
    keep = run_keep(same_pool)  # every image any of these runs labeled is always on the map
    x, what = embedding_if_here(cfg, data)
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
    """The uploader's files changed: forget the kept ones where the visitor removed files it showed
    (new files replace them in kept_uploads anyway). Drawn again empty after the race was shown,
    the uploader can report a change of its own (the browser sends its fresh empty value, and
    Streamlit had forgotten the old one): that one keeps them."""
    if st.session_state.get(SHOWN_FILES):
        st.session_state.pop(UPLOADS, None)


def kept_uploads(uploads) -> tuple[list, list[str]]:
    """The result files to replay: those in the uploader, or, when it comes back empty because
    the race was shown in between (Streamlit forgets a widget that is not drawn), those it
    held before, until the visitor changes its files."""
    st.session_state[SHOWN_FILES] = bool(uploads.uploaded)
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


def explainable(rnd, clicked_index: int | None, most=None, least=None) -> dict[int, str]:
    """The images "Why this image?" offers for round ``rnd``, in order, each with its role: the
    one clicked on the map (where it is none of the others), the picks, the least and the most
    confident (``most``, ``least``: the galleries shown; default the round's own)."""
    most = rnd.most_confident if most is None else list(most)
    least = rnd.least_confident if least is None else list(least)
    roles = {}
    if clicked_index is not None and clicked_index not in set(rnd.selected) | {x.index for x in least + most}:
        roles[clicked_index] = "clicked on the map"
    for i, s in zip(rnd.selected, rnd.selected_scores):
        roles[i] = f"picked, score {s:.3f}"
    for refs, role in ((least, "least confident"), (most, "most confident")):
        for ref in refs:
            roles.setdefault(ref.index, f"{role}, {ref.confidence:.0%} sure")
    return roles
