"""The person's run on Be the oracle (alcore.engine.oracle.OracleRun), kept in this session's
st.session_state: opened within the server's limits, labelled one click at a time, submitted."""
from __future__ import annotations

import time

import streamlit as st

from alcore import ExperimentConfig
from alcore.engine.oracle import BatchAnswers, OracleRun
from alcore.results.records import ResultFileError, RunResult
from dashboard.data import dataset
from dashboard.display import show_problems
from dashboard.limits import deployment_limits, one_call_within_labels
from dashboard.state import race_lock, trainer_cache
from dashboard.uploads import refuse

RUN, ANSWERS, SUBMIT = "oracle_run", "oracle_answers", "oracle_submit"


def current() -> OracleRun | None:
    return st.session_state.get(RUN)


def _open(cfg: ExperimentConfig, labels: int, what: str, spinner: str, make) -> bool:
    """Make ``make(dataset)``, an OracleRun of ``cfg`` that trains on ``labels`` labels, this
    session's run: within the server's limits and holding a run slot while it computes. False
    (after saying why) where it may not or cannot."""
    problems = deployment_limits().run_problems(cfg, [cfg.strategy], 2)  # the person's run and the simulated one
    if problems:
        show_problems(problems)
        return False
    ds = dataset(cfg)
    if ds is None:
        return False
    with one_call_within_labels(labels, what, "start a run with fewer labels") as ok:
        if not ok:
            return False
        try:
            with race_lock(), st.spinner(spinner):
                run = make(ds)
        except ValueError as e:
            refuse(e)
            return False
    st.session_state[RUN] = run
    st.session_state.pop(ANSWERS, None)
    return True


def start(oc: ExperimentConfig) -> bool:
    """A new person's run of ``oc`` with its simulated twin, round 0 of both trained."""
    def make(ds):
        run = OracleRun(oc, dataset=ds, cache=trainer_cache())
        run.start()
        return run

    first = oc.initial + (oc.validation_size if oc.validation == "fixed" else 0)
    return _open(oc, first, f"Training on {first:,} initial labels", "Training round 0 on the initial labels "
                 "(the first time also loads TensorFlow and compiles the model)...", make)


def labelled_by_a_person(result: RunResult, name: str) -> None:
    """Refuse (ResultFileError) a result file the simulated oracle labelled (dashboard.uploads)."""
    if result.oracle != "person":
        raise ResultFileError(f"{name}: {result.label} was labelled by the simulated oracle, "
                              f"not a person; open it on Results or Compare")


def resume(result: RunResult) -> bool:
    """Continue a person's run from its downloaded result file."""
    labels = result.rounds[-1].n_labeled
    return _open(result.config, labels, f"Training on the file's {labels:,} labels",
                 "Replaying the file's rounds and the simulated oracle's...",
                 lambda ds: OracleRun.resume(result, dataset=ds, cache=trainer_cache()))


def answers_for(run: OracleRun) -> BatchAnswers:
    """This batch's answers; a new batch starts its clock now, as it is drawn."""
    answers = st.session_state.get(ANSWERS)
    if answers is None or answers.indices != run.batch.tolist():
        answers = st.session_state[ANSWERS] = BatchAnswers(run.batch, shown_at=time.monotonic())
    return answers


def give(batch: tuple, position: int, label: int) -> None:
    """A label button's callback: the click time is taken here, at the start of the script run it causes."""
    answers = st.session_state.get(ANSWERS)
    if answers is not None and tuple(answers.indices) == batch:  # a click on a batch already submitted is dropped
        answers.answer(position, label, time.monotonic())


def give_next(batch: tuple, label: int) -> None:
    """A keyboard shortcut's callback: label the first image still without one."""
    answers = st.session_state.get(ANSWERS)
    if answers is not None and tuple(answers.indices) == batch and answers.next_open is not None:
        answers.answer(answers.next_open, label, time.monotonic())


def request_submit() -> None:
    st.session_state[SUBMIT] = True


def submit_requested() -> bool:
    return bool(st.session_state.get(SUBMIT))


def submit_if_requested(run: OracleRun) -> None:
    """Retrain on the submitted batch (once: a second click while the first retrained is dropped)."""
    if not st.session_state.pop(SUBMIT, False):
        return
    answers = st.session_state.get(ANSWERS)
    if answers is None or answers.indices != run.batch.tolist() or not answers.complete:
        return  # a second click on Submit while the first retrained: that batch is done
    labels = run.person.n_labeled
    with one_call_within_labels(labels, f"Training on {labels:,} labels", "start over with a smaller setup") as ok:
        if ok:
            with race_lock(), st.spinner("Retraining on your labels (and the simulated oracle's run)..."):
                run.submit(answers)
