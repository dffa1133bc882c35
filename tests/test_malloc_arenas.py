"""The arena cap that requirements.txt installs (deploy/malloc_arenas): a `streamlit run`
server gets at most 2 glibc malloc arenas from its first instruction, other processes keep
glibc's default, and a limit the deployer already set is left alone.

The end-to-end checks run a real interpreter of this venv whose command line looks like a
Streamlit server (a script named ``streamlit`` given ``run``), start 12 threads that each
malloc, and count the arenas glibc reports (``malloc_stats``)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

arenas = pytest.importorskip(
    "alcore_malloc_arenas",
    reason="alcore-malloc-arenas is not installed in this environment (pip install -r requirements.txt)")

glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"),
    reason="glibc's arenas: Linux with glibc only")


@pytest.mark.parametrize("argv, expected", [
    (["/venv/bin/python3", "/venv/bin/streamlit", "run", "app.py"], True),
    (["python", "-m", "streamlit", "run", "app.py", "--server.port", "8501"], True),
    (["python", "-X", "dev", "-m", "streamlit", "run", "app.py"], False),  # -X takes a value: not parsed
    (["/venv/bin/python3", "/venv/bin/streamlit", "version"], False),
    (["/venv/bin/python3", "/venv/bin/streamlit"], False),
    (["python", "-m", "pytest", "-q"], False),
    (["python", "-m", "alcore", "sweep", "spec.toml"], False),
    (["python", "app.py", "streamlit", "run"], False),
    (["python", "-c", "import streamlit"], False),
    (["python"], False),
])
def test_only_a_streamlit_run_command_counts_as_a_server(argv, expected):
    assert arenas.streamlit_server(argv) is expected


def test_a_limit_in_the_environment_is_left_alone():
    server = ["python", "-m", "streamlit", "run", "app.py"]
    assert "already" in arenas.apply(server, {"MALLOC_ARENA_MAX": "4"})
    assert "already" in arenas.apply(server, {"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"})
    assert arenas.apply(server, {"ALCORE_MALLOC_ARENA_MAX": "0"}) == "left alone: ALCORE_MALLOC_ARENA_MAX=0"
    assert "not a whole number" in arenas.apply(server, {"ALCORE_MALLOC_ARENA_MAX": "two"})
    assert arenas.apply(["python", "-m", "pytest"], {}) == "left alone: not a streamlit run server"


PROBE = textwrap.dedent("""
    import ctypes, sys, threading
    import alcore_malloc_arenas
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    barrier = threading.Barrier(12)
    def worker():
        block = libc.malloc(1 << 16)   # this thread's first malloc picks (or makes) its arena
        barrier.wait()                 # all 12 alive at once
        libc.free(ctypes.c_void_p(block))
    threads = [threading.Thread(target=worker) for _ in range(12)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print(alcore_malloc_arenas.state, flush=True)
    libc.malloc_stats()                # one "Arena N:" block per arena, on stderr
""")


def run_probe(tmp_path, **env) -> tuple[str, int]:
    """Run PROBE as a script named ``streamlit`` given ``run``: the .pth sees a server."""
    script = tmp_path / "streamlit"
    script.write_text(PROBE)
    clean = {k: v for k, v in os.environ.items()
             if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES", arenas.ENV)}
    done = subprocess.run([sys.executable, str(script), "run", "app.py"], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), len(re.findall(r"^Arena \d+:", done.stderr, re.M))


@glibc_only
def test_a_streamlit_server_gets_two_arenas_from_its_start(tmp_path):
    state, capped = run_probe(tmp_path)
    assert state == "arena limit 2"
    assert capped == 2
    state, default = run_probe(tmp_path, ALCORE_MALLOC_ARENA_MAX="0")
    assert state == "left alone: ALCORE_MALLOC_ARENA_MAX=0"
    assert default > 2, "without the cap 12 threads should have made more arenas than 2"
    state, three = run_probe(tmp_path, ALCORE_MALLOC_ARENA_MAX="3")
    assert (state, three) == ("arena limit 3", 3)


@glibc_only
def test_the_deployers_own_limit_wins(tmp_path):
    state, count = run_probe(tmp_path, MALLOC_ARENA_MAX="4")
    assert state == "left alone: the environment already sets glibc's arena limit"
    assert count == 4
