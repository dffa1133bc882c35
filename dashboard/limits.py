"""The deployer's limits (alcore.serve.limits) as the pages meet them: read from secrets.toml
and the environment on every call, and the run slots every session of the server shares."""
from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from typing import Callable

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError
from streamlit.runtime.scriptrunner_utils.script_run_context import get_run_yield_check

from alcore import ExperimentConfig
from alcore.engine import cancel
from alcore.serve.limits import DeploymentLimits, DeploymentLimitsError, RunSlots
from dashboard.display import plain, sentence
from dashboard.state import session_owner


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


def busy_message(slots: RunSlots) -> str:
    n = slots.in_use()
    return (f"{n} {'run is' if n == 1 else 'runs are'} in progress on this server (the limit is "
            f"{slots.capacity}); try again in a minute.")


def claim_run_slot() -> str | None:
    """Take (or keep) this session's run slot; the message for the visitor when every
    slot is taken. A race claims before each step, which keeps its slot from lapsing."""
    slots = run_slots()
    return None if slots.try_acquire(session_owner()) else busy_message(slots)


def race_refusal(base: ExperimentConfig, strategies: list[str], n_runs: int, **ceiling) -> list[str]:
    """Why this session may not compute this race now (this server's limits, or every run
    slot taken), in sentences; empty when it may, and it then holds a run slot. ``ceiling``: the
    oracle ceiling's costs (RaceConfig.ceiling_costs). No st.* calls: button callbacks use it."""
    problems = deployment_limits().run_problems(base, strategies, n_runs, **ceiling)
    if problems:
        return [sentence(p) for p in problems]
    busy = claim_run_slot()
    return [busy] if busy else []


def release_run_slot() -> None:
    run_slots().release(session_owner())


def run_slot_releaser() -> Callable[[], None]:
    """A function that gives this session's run slot back and makes no Streamlit call: for a
    script run that was asked to end, as it unwinds (there every Streamlit call, st.session_state
    included, raises StopException again)."""
    slots, owner = run_slots(), session_owner()
    return lambda: slots.release(owner)


@contextmanager
def stoppable():
    """Within the block, a computation (a round's training steps, its scoring chunks: the
    checkpoints of alcore.engine.cancel) stops within about a second once this script run is
    asked to end: Stop or any other click, another page, the tab closed, the server shutting
    down. Streamlit's own StopException or RerunException then unwinds the computation and
    ends the run silently, as it would at the next Streamlit call (which a long round does
    not make). Outside a script run (a test calling the code directly) nothing is installed."""
    check = get_run_yield_check()
    with cancel.stop_when(check) if check is not None else nullcontext():
        yield


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
