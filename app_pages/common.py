"""State and widget helpers shared by the pages (UI only; computation is in alcore).

One ExperimentConfig lives in st.session_state["config"]; widgets are bound to its
fields by name ("w_<field>") and written back through ExperimentConfig's own
validation, so a page shows the same names and limits as the CLI and JSON.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

import streamlit as st
from pydantic import ValidationError
from streamlit.errors import StreamlitSecretNotFoundError
from streamlit.runtime.scriptrunner import get_script_run_ctx

from alcore import ExperimentConfig
from alcore.data import Dataset, DatasetCache, DatasetUnavailableError, load_raw
from alcore.limits import DeploymentLimits, DeploymentLimitsError, RunSlots, whole_pool_size

CONFIG, RACE_SETTINGS, RACE, CACHE, RUNNING = "config", "race_settings", "race", "trainer_cache", "running"
RACE_LOCK = "race_lock"
AUTOSTART = "autostart"  # set by Reference experiments: the Run page starts the race set up


def config() -> ExperimentConfig:
    if CONFIG not in st.session_state:
        st.session_state[CONFIG] = ExperimentConfig()
    return st.session_state[CONFIG]


def race_settings() -> dict:
    return st.session_state.setdefault(RACE_SETTINGS, {"strategies": ["margin", "random"], "seeds": 1})


# Markdown punctuation, escaped with a backslash so it shows as itself.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&=])")
_WORD_JOINER = "\u2060"  # invisible; breaks what escapes cannot (see plain)


def plain(text) -> str:
    """``text`` as it reads, for elements that render markdown (st.markdown, captions,
    alerts, image captions): no links, images, emphasis, maths or HTML from a file's
    class names, a file name or an error message that echoes them.

    Backslash escapes stop markdown syntax; Streamlit's :emoji: and :material/icon:
    shortcodes and bare http:// / www. / e-mail autolinks are found after escapes are
    undone, so an invisible word joiner after ':', '@' and 'www' breaks them instead."""
    text = _MARKDOWN.sub(r"\\\1", str(text))
    text = re.sub(r"([:@])", r"\1" + _WORD_JOINER, text)
    return re.sub(r"(?i)(www)(\\\.)", r"\1" + _WORD_JOINER + r"\2", text)


def sentence(problem: str) -> str:
    """An alcore limits problem as a sentence (a leading field name such as pool_size keeps
    its spelling)."""
    first = problem.split(" ", 1)[0]
    return (problem if "_" in first else problem[:1].upper() + problem[1:]) + "."


def show_problems(problems: list[str], icon=":material/block:") -> None:
    for p in problems:
        st.error(sentence(p), icon=icon)


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
            st.error(f"**{label(field) if field in ExperimentConfig.model_fields else plain(field)}**: "
                     f"{plain(err['msg'].removeprefix('Value error, '))}", icon=":material/warning:")
        return False
    if new != config():
        st.session_state[CONFIG] = new
    return True


def optional_int(field: str, what_none: str, **kw) -> int | None:
    """A number input where 0 stands for 'not set' (None)."""
    key = bind(field, lambda v: 0 if v is None else int(v))
    if kw.get("max_value") is not None and st.session_state[key] > kw["max_value"]:
        st.session_state[key] = kw["max_value"]  # a cap lowered mid-session: the widget would refuse to draw
    v = st.number_input(f"{label(field)} (0 = {what_none})", min_value=0, step=1, key=key,
                        help=help_text(field), **kw)
    return None if v == 0 else int(v)


def optional_float(field: str, what_none: str, **kw) -> float | None:
    key = bind(field, lambda v: 0.0 if v is None else float(v))
    v = st.number_input(f"{label(field)} (0 = {what_none})", min_value=0.0, key=key,
                        help=help_text(field), **kw)
    return None if v == 0 else float(v)


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


def dataset(cfg: ExperimentConfig | None = None) -> Dataset | None:
    """The prepared dataset for a config, or None after showing why it is unavailable
    (this deployment's limits included)."""
    cfg = cfg or config()
    limits = deployment_limits()
    problems = limits.path_problems(cfg, upload_dir())
    try:
        with st.spinner(f"Loading {cfg.dataset}..."):
            if not problems:
                whole = None
                if limits.max_pool_size is not None and cfg.pool_size is None:
                    whole = _whole_pool_size((cfg.dataset, cfg.data_dir, cfg.data_file, cfg.test_size), cfg)
                problems = limits.pool_problems(cfg, whole)
            if not problems:
                return _dataset_cache(limits.dataset_cache_mb).get(cfg)
    except DatasetUnavailableError as e:
        st.error(f"**{cfg.dataset} is not available here.** {plain(e)}", icon=":material/cloud_off:")
        return None
    except ValueError as e:
        st.error(f"**The dataset cannot be used:** {plain(e)}", icon=":material/warning:")
        return None
    show_problems(problems)
    return None


def upload_dir() -> Path:
    return Path(tempfile.gettempdir()) / "alcore-uploads"


def save_upload(data: bytes, name: str) -> str:
    """Keep an uploaded .npz under a name derived from its content, so identical
    uploads share one cache entry. The file is only ever read with allow_pickle=False."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = upload_dir()
    folder.mkdir(exist_ok=True)
    path = folder / f"{digest}-{Path(name).stem[:40]}.npz"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return str(path)


def run_store():
    """Where races are saved round by round ($ALCORE_RUNS_DIR, else the temp dir); each
    race is under its own unguessable id."""
    from alcore.store import RunStore

    return RunStore()


def deployment_limits() -> DeploymentLimits:
    """The deployer's limits: `[limits]` in secrets.toml, overridden by ALCORE_* environment
    variables. Read on every call (cheap; Streamlit parses secrets.toml once and reloads it
    when it changes), so a change in Cloud's secrets editor applies without a reboot.
    A setting that cannot be read stops the page with its name: no limit is dropped silently."""
    try:
        secrets = st.secrets.to_dict()
    except StreamlitSecretNotFoundError as e:
        if getattr(e, "error_id", None) != "no-secrets-found":
            st.error(f"**The server's secrets.toml cannot be read:** {plain(e)}", icon=":material/error:")
            st.stop()
        secrets = {}  # no secrets file: a local run
    try:
        return DeploymentLimits.from_sources(os.environ, secrets)
    except DeploymentLimitsError as e:
        st.error(f"**This server's limits are misconfigured:** {plain(e)}", icon=":material/error:")
        st.stop()


@st.cache_resource(show_spinner=False)
def _run_slots(capacity: int | None) -> RunSlots:
    # One table for every session of this process: the point is to count them all.
    return RunSlots(capacity)


def run_slots() -> RunSlots:
    return _run_slots(deployment_limits().max_concurrent_runs)


def session_owner() -> str:
    """This browser session's id, the owner of its run slot."""
    ctx = get_script_run_ctx()
    if ctx is not None:
        return ctx.session_id
    return st.session_state.setdefault("_owner", uuid.uuid4().hex)


def busy_message(slots: RunSlots) -> str:
    n = slots.in_use()
    return (f"{n} {'run is' if n == 1 else 'runs are'} in progress on this server (the limit is "
            f"{slots.capacity}); try again in a minute.")


def race_lock() -> threading.Lock:
    """Held while this session's race computes rounds. A click (Stop, another page) starts
    the next script run at once, on another thread, while the previous one finishes the
    round in progress: the lock keeps a second run from stepping the same race, and lets a
    page wait for that round before it reads the race."""
    if RACE_LOCK not in st.session_state:
        st.session_state[RACE_LOCK] = threading.Lock()
    return st.session_state[RACE_LOCK]


def claim_run_slot() -> str | None:
    """Take (or keep) this session's run slot; the message for the visitor when every
    slot is taken. A race claims before each step, which keeps its slot from lapsing."""
    slots = run_slots()
    return None if slots.try_acquire(session_owner()) else busy_message(slots)


def race_refusal(base: ExperimentConfig, strategies: list[str], n_runs: int) -> list[str]:
    """Why this session may not compute this race now (this server's limits, or every run
    slot taken), in sentences; empty when it may, and it then holds a run slot.
    No st.* calls: button callbacks use it."""
    problems = deployment_limits().run_problems(base, strategies, n_runs)
    if problems:
        return [sentence(p) for p in problems]
    busy = claim_run_slot()
    return [busy] if busy else []


def release_run_slot() -> None:
    run_slots().release(session_owner())


@contextmanager
def one_call_within_labels(labels: int, what: str, fix: str):
    """Yields True where a computation of one script run that trains on ``labels`` labels may
    go ahead: within this server's ``max_labels`` (else it says "{what} is over this server's
    limit ...: {fix}", where ``fix`` may name the limit as ``{cap}``) and with a run slot."""
    cap = deployment_limits().max_labels
    if cap is not None and labels > cap:
        st.error(f"{what} is over this server's limit of {cap:,} labels per run: {fix.format(cap=f'{cap:,}')}.",
                 icon=":material/block:")
        yield False
        return
    with run_slot_for_one_call() as ok:
        yield ok


@contextmanager
def run_slot_for_one_call():
    """A run slot for a computation that runs within one script run (it cannot renew):
    held until the block ends, even past the lease time. Yields False (after saying why)
    when every slot is taken."""
    slots, owner = run_slots(), session_owner()
    if not slots.try_acquire(owner, expires=False):
        st.error(busy_message(slots), icon=":material/hourglass_top:")
        yield False
        return
    try:
        yield True
    finally:
        slots.release(owner)


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
        limits = deployment_limits()
        if limits.active:
            st.caption("Limits on this server: " + " · ".join(limits.describe()))
