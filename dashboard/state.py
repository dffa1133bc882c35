"""This browser session's setup and objects, kept in st.session_state (never in module
globals, which every session of the server would share).

One ExperimentConfig lives in st.session_state["config"] and the race's own settings
(strategies, seeds) beside it; the page address mirrors both (alcore.serve.share), so a
copied address reopens the setup.
"""
from __future__ import annotations

import re
import secrets
import threading
import uuid
from typing import Callable

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from alcore import ExperimentConfig
from alcore.serve.share import OWNED, RACE_DEFAULTS, encode

CONFIG, RACE_SETTINGS, RACE, RUNNING = "config", "race_settings", "race", "running"
RACE_LOCK = "race_lock"
AUTOSTART = "autostart"  # set by Reference experiments: the Run page starts the race set up
REFERENCE_ACCURACY = "reference_accuracy"  # the Model page's accuracy on every pool label
WIDGET_PREFIX = "w_"  # a setup widget's key: "w_<field>" (dashboard.widgets.bind)


def config() -> ExperimentConfig:
    if CONFIG not in st.session_state:
        st.session_state[CONFIG] = ExperimentConfig()
    return st.session_state[CONFIG]


def race_settings() -> dict:
    return st.session_state.setdefault(RACE_SETTINGS, {"strategies": list(RACE_DEFAULTS["strategies"]),
                                                       "seeds": RACE_DEFAULTS["seeds"]})


CEILING_FIELDS = ("ceiling", "ceiling_candidates", "ceiling_validation")  # RaceConfig's oracle ceiling


def race_ceiling() -> dict:
    """This session's oracle-ceiling settings (RaceConfig's fields; off unless turned on)."""
    from alcore.config import RaceConfig

    rs = race_settings()
    return {f: rs.get(f, RaceConfig.model_fields[f].default) for f in CEILING_FIELDS}


def race_setup(cfg: ExperimentConfig | None = None):
    """The race this session's setup describes (a RaceConfig: ``cfg`` or the stored config, the
    strategies, the seeds counted from its seed, the oracle ceiling)."""
    from alcore.config import RaceConfig

    rs = race_settings()
    return RaceConfig.counted(cfg or config(), rs["strategies"], rs["seeds"], **race_ceiling())


def use_setup(cfg: ExperimentConfig, strategies: list[str] | None = None, seeds: int | None = None,
              ceiling: dict | None = None) -> None:
    """Make ``cfg`` (and, where given, the strategies and seeds raced, and the oracle ceiling's
    settings) this session's setup, as a link, a reopened race or a reference experiment does; the
    setup pages' widgets then show it."""
    st.session_state[CONFIG] = cfg
    rs = race_settings()
    rs.update(ceiling or {})
    if strategies:
        rs["strategies"] = list(strategies)
    if seeds:
        rs["seeds"] = seeds
    for key in [k for k in st.session_state if str(k).startswith(WIDGET_PREFIX)]:
        del st.session_state[key]


def setup_params() -> dict:
    """This session's setup as query parameters (alcore.serve.share.encode)."""
    rs = race_settings()
    return encode(config(), rs["strategies"], rs["seeds"], race_ceiling())


def address() -> dict[str, list[str]]:
    """The page address's query parameters, every value as a list."""
    return {k: st.query_params.get_all(k) for k in st.query_params}


def sync_link() -> None:
    """Write this session's setup into the page address (the settings that differ from the
    defaults, named as the config fields), keeping every other parameter (the Run page's
    ``run``) as it is. Sends nothing when the address already says it."""
    current = {k: v for k, v in address().items() if k.lower() not in ("embed", "embed_options")}
    wanted = {k: v for k, v in current.items() if k not in OWNED}
    wanted.update({k: [v] if isinstance(v, str) else list(v) for k, v in setup_params().items()})
    if wanted != current:
        st.query_params.from_dict(wanted)


VISITOR = "visitor_key"  # this browser's secret: it owns the races it starts (alcore.engine.store)
VISITOR_COOKIE = "alcore_visitor"
_KEY = re.compile(r"[A-Za-z0-9_-]{32,64}")
VISITOR_DAYS = 7  # as long as a saved race is kept (alcore.engine.store.RunStore.max_age_s)


def visitor_key() -> str:
    """The secret that lets this browser continue the races it started: kept in this session's
    state and, where the browser accepts the cookie :func:`remember_visitor` sets, in the browser,
    so a reloaded tab or a restarted server still knows it. Never in an address: a link shows
    a race, the key continues it."""
    key = st.session_state.get(VISITOR)
    if key is None:
        cookie = st.context.cookies.get(VISITOR_COOKIE)
        key = cookie if isinstance(cookie, str) and _KEY.fullmatch(cookie) else secrets.token_urlsafe(32)
        st.session_state[VISITOR] = key
    return key


def remember_visitor() -> None:
    """Have the browser keep :func:`visitor_key` in a first-party cookie (set by a script, once
    per session that did not bring it). Without cookies the key lasts as long as the session."""
    key = visitor_key()
    if st.context.cookies.get(VISITOR_COOKIE) == key or st.session_state.get(VISITOR_COOKIE) == key:
        return
    st.session_state[VISITOR_COOKIE] = key
    secure = "; Secure" if str(st.context.url or "").startswith("https:") else ""
    st.sidebar.html(f"<script>document.cookie = '{VISITOR_COOKIE}={key}; path=/; "
                    f"max-age={VISITOR_DAYS * 86400}; SameSite=Lax{secure}';</script>", unsafe_allow_javascript=True)


def session_owner() -> str:
    """This browser session's id, the owner of its run slot."""
    ctx = get_script_run_ctx()
    if ctx is not None:
        return ctx.session_id
    return st.session_state.setdefault("_owner", uuid.uuid4().hex)


def race_lock() -> threading.Lock:
    """Held while this session's race computes rounds. A click (Stop, another page) starts
    the next script run at once, on another thread, while the previous one stops the round
    in progress (within about a second, dashboard.limits.stoppable): the lock keeps a second
    run from stepping the same race, and lets a page wait for that round before it reads the race."""
    if RACE_LOCK not in st.session_state:
        st.session_state[RACE_LOCK] = threading.Lock()
    return st.session_state[RACE_LOCK]


class SessionModels:
    """This browser session's compiled models: its trainer cache, and the race whose runs hold
    models from it (with the lock its rounds are computed under). Kept in a session-scoped
    st.cache_resource, whose release hook hands them back when the session ends.

    Models are kept while the session lasts, across races, and come from the server's pool of
    compiled trainers (trainer_pool): a model built again costs its compilation and keeps about
    23 MB that TensorFlow never returns (alcore.engine.training.TrainerPool)."""

    def __init__(self):
        self._cache = None
        self.race = None
        self.race_lock: threading.Lock | None = None

    @property
    def cache(self):
        if self._cache is None:
            from alcore.engine.training import TrainerCache  # imports TensorFlow on first use

            self._cache = TrainerCache(max_entries=3, pool=trainer_pool())
        return self._cache


@st.cache_resource(show_spinner=False)
def trainer_pool():
    """Compiled trainers that ended sessions handed back, for the next sessions (one pool for
    the server: each trainer is used by one session at a time)."""
    from alcore.engine.training import TrainerPool

    return TrainerPool()


def session_ended(models: SessionModels) -> None:
    """The session ended (its tab closed; Streamlit calls this on the event loop's thread): hand
    its models back to the server's pool (or let go of them), unless its race is computing a
    round (that script run, asked to end, does it as it unwinds:
    dashboard.race_session.stopped_computing), and return the memory on a thread of its own, so
    that no other session waits for the garbage collection."""
    from dashboard.streamlit_fixes import return_free_memory

    lock = models.race_lock
    if models.race is not None and lock is not None:
        if not lock.acquire(blocking=False):
            return
        try:
            models.race.release_models()
        finally:
            lock.release()
    if models._cache is not None:
        models._cache.clear()
    threading.Thread(target=return_free_memory, name="alcore-free-session-memory", daemon=True).start()


@st.cache_resource(scope="session", show_spinner=False, on_release=session_ended)
def session_models() -> SessionModels:
    return SessionModels()


def trainer_cache():
    """This browser session's compiled models (never shared with another session), let go of
    when the session ends."""
    return session_models().cache


def hold_race(race) -> None:
    """``race`` is this session's race now: its models are let go of when the session ends."""
    models = session_models()
    models.race, models.race_lock = race, race_lock()


def session_gone_check() -> Callable[[], bool]:
    """A function telling whether this browser session has ended (its tab closed), made now: it
    makes no Streamlit call, for a script run that was asked to end, as it unwinds."""
    session_id = session_owner()

    def gone() -> bool:
        return runtime.exists() and not runtime.get_instance().is_active_session(session_id)

    return gone


def release_models(race) -> None:
    """Let go of the race's compiled models and this session's trainer cache (the race was
    given it) and return the freed memory to the system: when the session ended while the race
    computed. No Streamlit call: it runs as a script run that was asked to end unwinds."""
    from dashboard.streamlit_fixes import return_free_memory

    race.release_models()
    return_free_memory()
