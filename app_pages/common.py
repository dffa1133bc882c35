"""State and widget helpers shared by the pages (UI only; computation is in alcore).

One ExperimentConfig lives in st.session_state["config"]; widgets are bound to its
fields by name ("w_<field>") and written back through ExperimentConfig's own
validation, so a page shows the same names and limits as the CLI and JSON.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import streamlit as st
from pydantic import ValidationError

from alcore import ExperimentConfig
from alcore.data import Dataset, DatasetUnavailableError, load_dataset

CONFIG, RACE_SETTINGS, RACE, CACHE, RUNNING = "config", "race_settings", "race", "trainer_cache", "running"


def config() -> ExperimentConfig:
    if CONFIG not in st.session_state:
        st.session_state[CONFIG] = ExperimentConfig()
    return st.session_state[CONFIG]


def race_settings() -> dict:
    return st.session_state.setdefault(RACE_SETTINGS, {"strategies": ["margin", "random"], "seeds": 1})


def label(field: str) -> str:
    return field.replace("_", " ").capitalize()


def help_text(field: str) -> str:
    return ExperimentConfig.model_fields[field].description or ""


def bind(field: str, to_widget=lambda v: v) -> str:
    """Widget key for a config field, initialised from the stored config."""
    key = "w_" + field
    if key not in st.session_state:
        st.session_state[key] = to_widget(getattr(config(), field))
    return key


def commit(values: dict) -> bool:
    """Validate and store changed fields; show what is wrong, in the field's name."""
    try:
        new = config().replace(**values)
    except ValidationError as e:
        for err in e.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            st.error(f"**{label(field) if field in ExperimentConfig.model_fields else field}**: "
                     f"{err['msg'].removeprefix('Value error, ')}", icon=":material/warning:")
        return False
    if new != config():
        st.session_state[CONFIG] = new
    return True


def optional_int(field: str, what_none: str, **kw) -> int | None:
    """A number input where 0 stands for 'not set' (None)."""
    key = bind(field, lambda v: 0 if v is None else int(v))
    v = st.number_input(f"{label(field)} (0 = {what_none})", min_value=0, step=1, key=key,
                        help=help_text(field), **kw)
    return None if v == 0 else int(v)


def optional_float(field: str, what_none: str, **kw) -> float | None:
    key = bind(field, lambda v: 0.0 if v is None else float(v))
    v = st.number_input(f"{label(field)} (0 = {what_none})", min_value=0.0, key=key,
                        help=help_text(field), **kw)
    return None if v == 0 else float(v)


@st.cache_resource(max_entries=4, show_spinner=False)
def _cached_dataset(key: tuple, _config: ExperimentConfig) -> Dataset:
    # Arrays come back read-only: every session may share them, none may change them.
    return load_dataset(_config)


def dataset(cfg: ExperimentConfig | None = None) -> Dataset | None:
    """The prepared dataset for a config, or None after showing why it is unavailable."""
    cfg = cfg or config()
    try:
        with st.spinner(f"Loading {cfg.dataset}..."):
            return _cached_dataset(cfg.data_key(), cfg)
    except DatasetUnavailableError as e:
        st.error(f"**{cfg.dataset} is not available here.** {e}", icon=":material/cloud_off:")
    except ValueError as e:
        st.error(f"**The dataset cannot be used:** {e}", icon=":material/warning:")
    return None


def save_upload(data: bytes, name: str) -> str:
    """Keep an uploaded .npz under a name derived from its content, so identical
    uploads share one cache entry. The file is only ever read with allow_pickle=False."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "alcore-uploads"
    folder.mkdir(exist_ok=True)
    path = folder / f"{digest}-{Path(name).stem[:40]}.npz"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return str(path)


def trainer_cache():
    """This browser session's compiled models (never shared with another session)."""
    if CACHE not in st.session_state:
        from alcore.training import TrainerCache  # imports TensorFlow on first use

        st.session_state[CACHE] = TrainerCache(max_entries=3)
    return st.session_state[CACHE]


def config_caption(cfg: ExperimentConfig) -> str:
    budget = f"{cfg.rounds} rounds" if cfg.rounds is not None else f"budget {cfg.label_budget}"
    return (f"**{cfg.dataset}** · model **{cfg.model}** · {cfg.initial} initial labels · "
            f"batches of {cfg.batch_size} · {budget} · seed {cfg.seed}")


def sidebar_summary(slot) -> None:
    cfg, rs = config(), race_settings()
    with slot.container():
        st.caption("Current setup")
        st.markdown(config_caption(cfg))
        st.markdown("Racing: " + ", ".join(f"`{s}`" for s in rs["strategies"]) + f" · {rs['seeds']} seed(s)")
