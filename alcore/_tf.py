"""Lazy, configured TensorFlow / Keras import.

Importing this module imports TensorFlow (several seconds), so only modules that
train or predict import it, and only when they are first used. Thread pools are
sized once, before any TensorFlow op runs: ALCORE_THREADS, else the CPU count.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402
import keras  # noqa: E402


def _configure_threads() -> None:
    n = int(os.environ.get("ALCORE_THREADS", "0") or 0) or (os.cpu_count() or 1)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        # At least 2: with a single inter-op thread, a dashboard session's round could wait
        # forever inside a compiled call while another session's ran or compiled (seen as a
        # hang after reopening a race whose closed tab was mid-round).
        tf.config.threading.set_inter_op_parallelism_threads(max(2, n))
    except RuntimeError:
        # TensorFlow was already initialised by the host program: keep its settings.
        pass


_configure_threads()

__all__ = ["tf", "keras"]
