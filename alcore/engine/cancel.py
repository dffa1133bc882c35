"""Ending a round part way: a visitor pressed Stop, their browser session ended, the server
is shutting down, or the round ran past its time limit.

A round's long computations call :func:`checkpoint` between their pieces: the training
loop between calls of its compiled step function (each call at most about
:data:`CHECK_SECONDS` of steps), scoring between prediction chunks and stochastic passes.
Whoever runs the round installs the checks: :func:`stop_when` takes any callable that raises
to stop (a :class:`CancelFlag`'s ``check``, or the dashboard's "has this script run been
asked to end?"), and :func:`time_limit` raises :class:`TimeLimitExceeded` once a deadline
passes. With nothing installed a checkpoint costs one context-variable read.

The checks live in a :class:`contextvars.ContextVar`, so they belong to the thread that
installed them (one browser session's script run, the CLI's main thread) and never stop
another session's computation.

An interrupted round is dropped whole: :meth:`alcore.engine.loop.Experiment.step` puts the
run back as it was before the round, so it continues (or is saved) with every finished
round and picks exactly what an uninterrupted run picks.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Optional

# A compiled training call runs about this long before the checks are asked again: short
# enough that Stop answers within a second or two, long enough that the per-call overhead
# (about a millisecond) is lost in the arithmetic.
CHECK_SECONDS = 0.25

_checks: ContextVar[tuple[Callable[[], None], ...]] = ContextVar("alcore_checks", default=())


class Cancelled(Exception):
    """The computation was asked to stop; the message says why."""


class TimeLimitExceeded(Cancelled):
    """A round ran past its wall-clock limit."""

    def __init__(self, seconds: float, name: str = "max_round_seconds"):
        self.seconds, self.name = seconds, name
        super().__init__(f"a round ran for more than {seconds:,g} s, over this server's limit of {seconds:,g} s "
                         f"per round ({name}): lower max_epochs or max_steps, raise train_batch_size, "
                         f"or set candidates lower")


def checkpoint() -> None:
    """Run the checks installed in this context; each raises to stop the computation."""
    for check in _checks.get():
        check()


def active() -> bool:
    """Whether any check is installed (a caller may then split its work finer)."""
    return bool(_checks.get())


@contextmanager
def stop_when(check: Callable[[], None]) -> Iterator[None]:
    """Within the block, every :func:`checkpoint` also calls ``check`` (which raises to stop)."""
    token = _checks.set(_checks.get() + (check,))
    try:
        yield
    finally:
        _checks.reset(token)


@contextmanager
def time_limit(seconds: Optional[float], name: str = "max_round_seconds",
               clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Within the block, a checkpoint reached more than ``seconds`` after it began raises
    :class:`TimeLimitExceeded` naming the limit ``name``. ``None``: no limit."""
    if seconds is None:
        yield
        return
    deadline = clock() + seconds

    def check() -> None:
        if clock() > deadline:
            raise TimeLimitExceeded(seconds, name)

    with stop_when(check):
        yield


class CancelFlag:
    """A flag any thread may set; :meth:`check` (for :func:`stop_when`) then raises
    :class:`Cancelled` with the reason given."""

    def __init__(self):
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "stopped") -> None:
        self.reason = reason
        self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)
