"""Cap glibc's malloc arenas in a ``streamlit run`` server, from the interpreter's start.

Every thread that allocates while another holds the main heap's lock gets an arena of its
own, up to 8 per core, and freed memory in an arena is rarely handed back to the system. A
dashboard server runs every browser session's script in its own thread and TensorFlow adds
its thread pools, so after many races its memory creeps up: in ``python bench/soak.py`` (20
whole-MNIST races in one server) run 20 peaked 12% above run 2 with glibc's default and 6%
with two arenas (README, "A server that runs all day").

``MALLOC_ARENA_MAX=2`` in the server's environment does that where the deployer starts the
process. Streamlit Community Cloud starts it itself, and from inside the app it is too late:
glibc fixes its arena limit when the heap first fills up with arenas, long before ``app.py``
runs. A ``.pth`` file in site-packages is run by Python at interpreter start, before any
thread exists; ``alcore_malloc_arenas.pth`` calls :func:`apply` there.

It acts only in a ``streamlit run`` process (``streamlit run app.py`` or ``python -m
streamlit run app.py``), not in the tests, the CLI or the sweep's workers, and never
overrides a limit already given to glibc. ``ALCORE_MALLOC_ARENA_MAX`` sets the number of
arenas (default 2); ``0`` leaves glibc's default.

This module must stay importable in a bare interpreter at site time: standard library only,
no exception may escape :func:`apply`.
"""
from __future__ import annotations

import os
import sys

DEFAULT_ARENAS = 2
ENV = "ALCORE_MALLOC_ARENA_MAX"
_M_ARENA_MAX = -8  # mallopt() parameter number in glibc's malloc.h

#: What :func:`apply` did in this process, for the dashboard's diagnostics and the tests:
#: the arena limit it set, or why it set none.
state = "not run"


def streamlit_server(argv: list[str]) -> bool:
    """Whether ``argv`` (``sys.orig_argv``: the interpreter first) starts a Streamlit
    server: the ``streamlit`` console script or ``-m streamlit``, followed by ``run``."""
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "-m" or arg.startswith("-"):
            continue
        name = os.path.basename(arg)
        if name.endswith(".exe"):
            name = name[:-4]
        return name == "streamlit" and argv[i + 1:i + 2] == ["run"]
    return False


def limit_already_set(environ) -> bool:
    """glibc already read a limit from the environment when the process started."""
    tunables = environ.get("GLIBC_TUNABLES", "")
    return "MALLOC_ARENA_MAX" in environ or "glibc.malloc.arena_max" in tunables


def apply(argv: list[str] | None = None, environ=None) -> str:
    """Set glibc's arena limit if this process is a Streamlit server. Returns (and keeps in
    :data:`state`) what was done. Never raises."""
    global state
    try:
        argv = list(getattr(sys, "orig_argv", sys.argv) if argv is None else argv)
        environ = os.environ if environ is None else environ
        if not sys.platform.startswith("linux"):
            state = "left alone: not Linux"
        elif not streamlit_server(argv):
            state = "left alone: not a streamlit run server"
        elif limit_already_set(environ):
            state = "left alone: the environment already sets glibc's arena limit"
        else:
            raw = environ.get(ENV, str(DEFAULT_ARENAS)).strip()
            arenas = int(raw) if raw.isdigit() else -1
            if arenas < 0:
                state = f"left alone: {ENV}={raw!r} is not a whole number"
            elif arenas == 0:
                state = f"left alone: {ENV}=0"
            else:
                state = _mallopt_arena_max(arenas)
    except Exception as exc:  # noqa: BLE001  (a .pth must not stop the interpreter)
        state = f"left alone: {type(exc).__name__}: {exc}"
    return state


def _mallopt_arena_max(arenas: int) -> str:
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt  # glibc's; musl has none
    except (OSError, AttributeError):
        return "left alone: this C library has no mallopt"
    if not mallopt(_M_ARENA_MAX, arenas):
        return "left alone: mallopt refused the arena limit"
    return f"arena limit {arenas}"
