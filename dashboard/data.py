"""The prepared dataset of a config, within this server's limits. Prepared datasets are
shared read-only by every session of the process and bounded by bytes; nothing else is."""
from __future__ import annotations

import functools
import os
from pathlib import Path

import streamlit as st

from pydantic import ValidationError

from alcore import ExperimentConfig
from alcore.config import DATA_DIR_DATASETS, FILE_DATASETS
from alcore.data.datasets import Dataset, DatasetCache, DatasetUnavailableError, load_dataset, load_raw
from alcore.serve.limits import DeploymentLimits, whole_pool_size
from alcore.serve.uploads import MAX_AGE_S
from dashboard.display import plain, sentence, show_problems
from dashboard.limits import deployment_limits
from dashboard.state import config
from dashboard.uploads import session_folder, session_uploads


@st.cache_resource(show_spinner=False)
def _dataset_cache(max_mb: int | None, image_limits) -> DatasetCache:
    # One cache for every session of this process, bounded by bytes (the deployer's
    # dataset_cache_mb). Arrays come back read-only: every session may share them, none
    # may change them. A .zip of images is read within this server's image limits.
    return DatasetCache(max_bytes=(1 << 62) if max_mb is None else max_mb * 1024 * 1024,
                        loader=functools.partial(load_dataset, image_limits=image_limits))


@st.cache_resource(show_spinner=False)
def _embedding_cache(folder: str, max_bytes: int):
    from alcore.engine.embeddings import EmbeddingCache

    return EmbeddingCache(folder, max_bytes)


def embedding_cache():
    """The embeddings on this server's disk ($ALCORE_CACHE_DIR, bounded by
    $ALCORE_EMBEDDING_CACHE_MB), one object for every session: two sessions asking for the same
    embedding at once compute it once."""
    from alcore.engine.embeddings import default_cache_bytes, default_cache_dir

    return _embedding_cache(str(default_cache_dir()), default_cache_bytes())


def embedding_progress(where=None):
    """A progress bar in ``where`` (a container; default: the page) that computing an embedding
    moves: a callback for alcore.engine.embeddings.compute_embeddings, and the bar to empty."""
    bar = (where or st).empty()

    def show(p) -> None:
        bar.progress(p.fraction, text=p.text())  # a Streamlit call: a click here abandons the training

    return show, bar


def embedding_source(cfg: ExperimentConfig, data: Dataset) -> str:
    """What a picture of the pool (Replay's map, Dataset's clusters) can place, in words: the
    config's embedding where it is here without computing it (in this server's cache, or its file),
    else the pixels."""
    if cfg.embedding == "pixels" or cfg.model == "transfer":
        return "pixels"
    from alcore.engine.embeddings import cached

    try:
        here = cfg.embedding == "file" and os.path.isfile(cfg.embedding_file or "") or \
            cached(data, cfg, embedding_cache()) is not None
    except OSError:
        here = False
    return f"{cfg.embedding} embedding" if here else "pixels"


def embedding_if_here(cfg: ExperimentConfig, data: Dataset):
    """(the pool's rows of the config's embedding, or its pixels; :func:`embedding_source`)."""
    what = embedding_source(cfg, data)
    if what == "pixels":
        return data.x_pool, what
    from alcore.engine.embeddings import compute_embeddings

    try:
        return compute_embeddings(data, cfg, cache=embedding_cache())[0].features_pool, what
    except (OSError, ValueError):  # DatasetUnavailableError is an OSError
        return data.x_pool, "pixels"


@st.cache_data(max_entries=16, show_spinner=False)
def _whole_pool_size(key: tuple, _config: ExperimentConfig, _image_limits) -> int:
    # Only the raw arrays' length, so a capped server refuses an oversized whole split
    # before preparing (and caching) it.
    raw = load_raw(_config, image_limits=_image_limits)
    return whole_pool_size(len(raw.y_train), raw.x_test is not None, _config.test_size)


def _gone(cfg: ExperimentConfig, limits: DeploymentLimits) -> list[str]:
    """This session's upload the config names, where it is no longer kept (said without its path)."""
    if limits.allow_server_paths or not cfg.data_file or session_uploads().holds(cfg.data_file):
        return []
    return [f"your upload {Path(cfg.data_file).name} is no longer kept on this server (an upload goes when "
            f"its session ends, after {MAX_AGE_S / 3600:.0f} hours unused, or when the server needs the room): "
            f"upload it again"]


def _prepared(cfg: ExperimentConfig, limits: DeploymentLimits) -> tuple[Dataset | None, list[str]]:
    """The prepared dataset, or the limits problems that refuse it (DatasetUnavailableError and
    ValueError propagate)."""
    problems = limits.path_problems(cfg, session_folder()) or _gone(cfg, limits)
    if not problems:
        whole = None
        if limits.max_pool_size is not None and cfg.pool_size is None:
            whole = _whole_pool_size((cfg.dataset, cfg.data_dir, cfg.data_file, cfg.test_size, cfg.image_size,
                                      limits.image_limits()), cfg, limits.image_limits())
        problems = limits.pool_problems(cfg, whole) + limits.dataset_problems(cfg)
    if problems:
        return None, problems
    return _dataset_cache(limits.dataset_cache_mb, limits.image_limits()).get(cfg), []


def dataset(cfg: ExperimentConfig | None = None, where=None) -> Dataset | None:
    """The prepared dataset for a config, or None after showing why it is unavailable
    (this deployment's limits included), in ``where`` (a container; default: the page)."""
    cfg, where = cfg or config(), where or st
    limits = deployment_limits()
    try:
        with st.spinner(f"Loading {cfg.dataset}..."):
            ds, problems = _prepared(cfg, limits)
            if ds is not None:
                return ds
    except DatasetUnavailableError as e:
        where.error(unavailable_text(cfg, e, limits), icon=":material/cloud_off:")
        return None
    except ValueError as e:
        where.error(f"**The dataset cannot be used:** {plain(e)}", icon=":material/warning:")
        return None
    show_problems(problems, where=where)
    return None


def dataset_sizes(cfg: ExperimentConfig | None = None) -> tuple[int | None, int | None]:
    """(pool images, test images) of a config's dataset where it can be had without a word
    (the Dataset page says why where it cannot); (None, None) otherwise. For advice, not runs."""
    cfg = cfg or config()
    try:
        with st.spinner(f"Loading {cfg.dataset}..."):
            ds, _ = _prepared(cfg, deployment_limits())
    except (DatasetUnavailableError, ValueError):
        ds = None
    return (None, None) if ds is None else (len(ds.y_pool), len(ds.y_test))


# What a visitor can do about a dataset this server cannot fetch, where it reads no folders of
# its own (alcore's advice, to point data_dir at a folder, is for a machine whose folders are yours).
WITHOUT_PATHS = ("This server reads no folders of its own: choose **digits** (bundled, works offline), or upload "
                 "the images as a .npz or a .zip of images on the Dataset page.")


def unavailable_text(cfg: ExperimentConfig, e: DatasetUnavailableError, limits: DeploymentLimits) -> str:
    """A dataset that cannot be had here (offline, a missing file): why, and what this server
    lets the visitor do about it (a Data dir only where it reads its own folders; never an
    upload's path on the server)."""
    why, fix = str(getattr(e, "reason", e)).rstrip("."), WITHOUT_PATHS
    if cfg.dataset in FILE_DATASETS:
        if not limits.allow_server_paths:
            why = "The uploaded file is no longer on this server"
        fix = "Upload it again, or choose another dataset."
    elif limits.allow_server_paths and cfg.dataset in DATA_DIR_DATASETS:
        fix = "Point **Data dir** on the Dataset page at a folder of its idx files, or choose another dataset."
    return f"**{cfg.dataset} is not available here.** {sentence(plain(why))} {fix}"


def unavailable(cfg: ExperimentConfig) -> str | None:
    """unavailable_text() where the config's dataset cannot be had here; None where it loads
    or is refused for another reason (a limit, a bad setting: dataset() names it)."""
    limits = deployment_limits()
    try:
        with st.spinner(f"Loading {cfg.dataset}..."):
            _prepared(cfg, limits)
    except DatasetUnavailableError as e:
        return unavailable_text(cfg, e, limits)
    except ValueError:
        return None
    return None


def _loads(cfg: ExperimentConfig) -> bool:
    try:
        return _prepared(cfg, deployment_limits())[0] is not None  # cached where it loaded before
    except (DatasetUnavailableError, ValueError):
        return False


DATA_CHOICE = ("dataset", "data_dir", "data_file", "image_size")  # the fields that say which data
DATA_AMOUNT = ("pool_size", "test_size")  # how much of it: chosen for that data, kept with it


def kept_data(cfg: ExperimentConfig, new: ExperimentConfig) -> str | None:
    """Where ``new`` chooses other data than ``cfg`` and that data cannot be had here while cfg's
    can: why, and what the visitor can do (unavailable_text); the caller keeps cfg's data, so the
    session's race, reference accuracy, sidebar and link stay on data that loads. None where new
    may become the setup (its data loads, is refused for another reason that its page names, or
    cfg's does not load either: there is nothing to keep)."""
    if all(getattr(new, k) == getattr(cfg, k) for k in DATA_CHOICE):
        return None
    why = unavailable(new)
    if why is None or not _loads(cfg):
        return None
    return why


def refused_switch(cfg: ExperimentConfig, values: dict) -> str | None:
    """Where ``values`` (the Dataset page's widgets) choose other data than ``cfg`` and that data
    cannot be had here while cfg's can: what to say (the session keeps cfg: its race, reference
    accuracy and link stay as they were). None where the choice may go ahead."""
    choice = {k: v for k, v in values.items() if k in DATA_CHOICE}
    try:
        new = cfg.replace(**choice)
    except ValidationError:
        return None  # commit names the field
    why = kept_data(cfg, new)
    return None if why is None else f"{why} {stays_on(cfg)}"


def stays_on(cfg: ExperimentConfig) -> str:
    """What a refused choice of data leaves the session on, in the words every page uses."""
    return f"The setup stays on **{cfg.dataset}** (the sidebar, the link and every page use it)."
