"""What a long-lived Streamlit server running TensorFlow for many sessions needs set
differently.

**Keras state.** After every script run, of every session, Streamlit 1.67 calls
``keras.backend.clear_session()`` (``script_runner._clean_problem_modules``, written for
Keras 2 apps that rebuilt their model on each run). In Keras 3 with TensorFlow that resets
Keras' global state, clears TensorFlow's eager kernel cache and pending eager nodes,
process-wide, and runs a full garbage collection, while other sessions' races train in their
own threads. ``python bench/bench_clear_session.py``: two threads racing the cnn on digits
took 206 s with it every 0.2 s against 102 s without (2 cores). Nothing here relies on it:
models are built once and cached, not rebuilt per run. :func:`install_after_run_cleanup`
keeps the rest of that cleanup (matplotlib figures are closed) and leaves Keras alone.

**Large arrays and glibc.** By default glibc raises its mmap threshold after each large free
(up to 32 MB), after which arrays of a few MB (a round's probabilities or embeddings for a
60 000-image pool) are carved out of the per-thread arenas, which fragment. In
``python bench/soak.py`` (20 whole-MNIST races in one server) the peak grew from 1,380 MB
(run 2) to 1,639 MB (run 20); with :func:`fixed_mmap_threshold` from 1,266 MB to 1,398 MB by
run 17. The rest of the creep is the arenas themselves: with ``MALLOC_ARENA_MAX=2`` in the
server's environment it stayed flat (README, "A server that runs all day"). That variable
only works from the process's start (glibc fixes the arena limit when the second arena is
made), so it cannot be set from here; ``mallopt(M_ARENA_MAX)`` at this point made no
difference, nor did ``malloc_trim`` after every script run, both measured with the soak.
What does work where the environment cannot be set (Community Cloud) is the same ``mallopt``
at interpreter start, from a ``.pth`` file that requirements.txt installs
(``deploy/malloc_arenas``); this module reports, once per server process, what it did.
"""
from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import functools
import gc
import logging
import os
import sys


# mallopt() parameter numbers in glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20


@functools.lru_cache(maxsize=1)
def _glibc():
    # Looked up once per process: ctypes.util.find_library runs `ldconfig -p` in a subprocess, and
    # app.py asks on every script run (fixed_mmap_threshold), each session's end too
    # (return_free_memory): a fork of the whole server each time (bench/attack_replay.py saw
    # copies of the 0.9-1 GB server, whose pages a process-tree RSS counts twice).
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018  (glibc's; musl and macOS have none)
    except (OSError, AttributeError):
        return None
    return libc


def fixed_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Allocations of ``threshold`` bytes or more always get their own mmap, returned to
    the system when freed. By default glibc raises the threshold after each large free (up
    to 32 MB), after which arrays of a few MB (a round's probabilities or embeddings for a
    60 000-image pool) are carved out of the thread arenas and fragment them."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)))


def return_free_memory() -> bool:
    """Collect garbage, then hand the heap's free pages back to the system (glibc's
    ``malloc_trim``). Called when a session ends, not after every script run (a collection
    holds the interpreter for about 0.35 s with TensorFlow loaded). Keras models are reference
    cycles, freed only by a collection; after a race of a 4.3-million-weight mlp, letting go of
    the model returned nothing by itself, the collection 48 MB and the trim 109 MB more."""
    gc.collect()
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))


def install_after_run_cleanup() -> bool:
    """Replace Streamlit's after-run cleanup with one that leaves Keras alone (see the
    module's docstring). Idempotent; False where this Streamlit has no such cleanup."""
    from streamlit.runtime.scriptrunner import script_runner

    current = getattr(script_runner, "_clean_problem_modules", None)
    if current is None:
        return False
    if getattr(current, "keeps_keras", False):
        return True

    def after_run_cleanup() -> None:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")

    after_run_cleanup.keeps_keras = True
    script_runner._clean_problem_modules = after_run_cleanup
    return True


def exit_without_teardown() -> None:
    """Once a stopped server's main thread is done (SIGTERM, Ctrl-C: Streamlit stops its
    runtime and returns), end the process at once instead of tearing the interpreter down.
    With TensorFlow loaded that teardown took 2.5-3 s (module cleanup, TensorFlow's own
    destructors); a container runtime that sends SIGTERM waits a few seconds, then kills. An
    atexit hook runs after Streamlit has stopped every session (so every round was stopped at
    its checkpoint and every result file written) and before the teardown; it flushes the
    logs and exits with status 0, as the orderly stop would. Only in a server whose runtime
    stopped: a test process or a crash exits as usual."""
    atexit.register(_exit_now_if_stopped)


def _exit_now_if_stopped() -> None:
    from streamlit import runtime

    if not runtime.exists() or runtime.get_instance().state != runtime.RuntimeState.STOPPED:
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


def malloc_arenas_state() -> str:
    """What the arena cap (``deploy/malloc_arenas``, run at interpreter start) did in this
    process: ``"arena limit 2"``, or why it left glibc alone."""
    try:
        import alcore_malloc_arenas
    except ImportError:
        return "not installed (pip install -r requirements.txt installs deploy/malloc_arenas)"
    return alcore_malloc_arenas.state


# Once per server process (a module is imported once): in the server's log, and the exit hook.
print(f"alcore: malloc arenas: {malloc_arenas_state()}", file=sys.stderr, flush=True)
exit_without_teardown()
