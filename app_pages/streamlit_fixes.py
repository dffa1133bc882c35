"""A Streamlit habit that a TensorFlow dashboard with several sessions cannot live with.

After every script run, of every session, Streamlit 1.67 calls ``keras.backend.clear_session()``
(``script_runner._clean_problem_modules``, written for Keras 2 apps that rebuilt their
model on each run). In Keras 3 with TensorFlow that resets Keras' global state, clears
TensorFlow's eager kernel cache and pending eager nodes, process-wide, and runs a full
garbage collection. Our models live across script runs (``TrainerCache``) and other
sessions train in their own threads while it happens:

- ``python bench/bench_clear_session.py``: two threads racing the cnn on digits took
  206 s with clear_session every 0.2 s against 102 s without (2 cores);
- the collection stretches the gap between a script run and its queued rerun, where a
  click on another page can be overridden by that rerun.

Nothing in the dashboard relies on it: models are built once and cached, not per run.
"""
from __future__ import annotations

import sys


def keep_keras_state() -> bool:
    """Make Streamlit's after-run cleanup leave Keras alone (it still closes matplotlib
    figures, the other thing it cleans). Idempotent; False where this Streamlit has no
    such cleanup (nothing to undo)."""
    from streamlit.runtime.scriptrunner import script_runner

    current = getattr(script_runner, "_clean_problem_modules", None)
    if current is None:
        return False
    if getattr(current, "keeps_keras", False):
        return True

    def clean_problem_modules_but_keras() -> None:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")

    clean_problem_modules_but_keras.keeps_keras = True
    script_runner._clean_problem_modules = clean_problem_modules_but_keras
    return True
