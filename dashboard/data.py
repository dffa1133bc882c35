"""The prepared dataset of a config, within this server's limits. Prepared datasets are
shared read-only by every session of the process and bounded by bytes; nothing else is."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from alcore import ExperimentConfig
from alcore.data.datasets import Dataset, DatasetCache, DatasetUnavailableError, load_raw
from alcore.serve.limits import DeploymentLimits, whole_pool_size
from alcore.serve.uploads import MAX_AGE_S
from dashboard.display import plain, show_problems
from dashboard.limits import deployment_limits
from dashboard.state import config
from dashboard.uploads import session_folder, session_uploads


@st.cache_resource(show_spinner=False)
def _dataset_cache(max_mb: int | None) -> DatasetCache:
    # One cache for every session of this process, bounded by bytes (the deployer's
    # dataset_cache_mb). Arrays come back read-only: every session may share them, none
    # may change them.
    return DatasetCache(max_bytes=(1 << 62) if max_mb is None else max_mb * 1024 * 1024)


@st.cache_data(max_entries=16, show_spinner=False)
def _whole_pool_size(key: tuple, _config: ExperimentConfig) -> int:
    # Only the raw arrays' length, so a capped server refuses an oversized whole split
    # before preparing (and caching) it.
    raw = load_raw(_config)
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
            whole = _whole_pool_size((cfg.dataset, cfg.data_dir, cfg.data_file, cfg.test_size), cfg)
        problems = limits.pool_problems(cfg, whole) + limits.dataset_problems(cfg)
    if problems:
        return None, problems
    return _dataset_cache(limits.dataset_cache_mb).get(cfg), []


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
        where.error(f"**{cfg.dataset} is not available here.** {plain(e)}", icon=":material/cloud_off:")
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
