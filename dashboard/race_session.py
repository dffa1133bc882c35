"""RaceSession: this browser session's race on the Run page: start, stop, continue, save on
the server round by round, and reopen (from the page address or from result files).

Everything it keeps is in st.session_state (the race, whether it runs, its saved id), so a
RaceSession made afresh in every script run or button callback sees the same race, and no
other browser session sees it.

One script run computes the whole race, redrawing the board after at most STEP_SECONDS of
rounds. A click (Stop, another page) or a closed tab asks that script run to end, and the
round in progress stops at its next checkpoint (alcore.engine.cancel; dashboard.limits.stoppable),
within about a second: that round is dropped whole, every finished round is kept and saved, and
none is half-saved (a round's file is written between rounds, where no checkpoint falls). So
does a round that runs past the server's max_round_seconds, with a message. The run slot is
given back by the script run that computed, once it has stopped; the models are kept for the
session's next race, and let go of when the session ends (dashboard.state.session_ended).
The race is not driven by st.rerun() after every few rounds: Streamlit 1.67 runs a
rerun that is already queued when a click arrives on a second thread beside the click's, and
that rerun can put the Run page back over the page the visitor clicked
(tests/e2e/test_sessions_e2e.py clicks Results as a race ends).
"""
from __future__ import annotations

import time
from contextlib import nullcontext

import streamlit as st

from alcore import ExperimentConfig
from alcore.engine import cancel
from alcore.analysis.pitfalls import not_better_than_random, unstable_curves
from alcore.figures import learning_curve_figure
from alcore.results.records import run_label
from alcore.strategies.base import is_baseline
from alcore.strategies.coverage import ProbCoverStrategy, UHerdingStrategy
from dashboard.display import plain, sentence, show_figure, show_pitfalls, show_table, temperatures_text
from dashboard.limits import (claim_run_slot, deployment_limits, race_refusal, release_run_slot, run_slot_releaser,
                              stoppable)
from dashboard.state import (CEILING_FIELDS, RACE, REFERENCE_ACCURACY, RUNNING, hold_race, race_lock, release_models, session_gone_check,
                             trainer_cache, use_setup, visitor_key)
from dashboard.uploads import local_data, refuse

RACE_ID = "race_id"  # the saved race's id; also the page address's ?run= parameter
READ_ONLY = "race_read_only"  # the race was reopened from another browser's link: look, not continue
SAVED = "race_saved_rounds"  # rounds on disk per run of the saved race
REFUSED = "race_refused"  # why Start / Continue did nothing, or why the race stopped
START_REQUESTED = "start_requested"
COMPUTING = "race_computing"  # which script run computes this session's race (a Computing, under race_lock)
STEP_SECONDS = 0.3  # redraw at least this often while rounds are fast
NOT_YOURS = ("This race was started in another browser, so it opened read-only here: look at it on **Results** "
             "and **Replay**; only the browser that started it can continue it. **Start** races this setup as "
             "your own.")


def run_store():
    """Where races are saved round by round ($ALCORE_RUNS_DIR, else the temp dir); each
    race is under its own unguessable id."""
    from alcore.engine.store import RunStore

    return RunStore()


def _load(seeded: ExperimentConfig):
    from dashboard.data import dataset

    ds = dataset(seeded)
    if ds is None:
        raise ValueError(f"dataset {seeded.dataset} is not available")
    return ds


class Computing:
    """Which script run of this session computes its race (``run``: a token of that run, None
    when none does); read and written under race_lock. An object kept in st.session_state and
    held by the computing run, so that run can clear it as it unwinds without a Streamlit call."""

    def __init__(self):
        self.run: object | None = None


class RaceSession:
    """This session's race, read from and written to st.session_state."""

    def __init__(self):
        self.state = st.session_state

    @property
    def race(self):
        return self.state.get(RACE)

    @property
    def running(self) -> bool:
        return self.state.get(RUNNING, False)

    # ------------------------------------------------------------ button callbacks (no st.* output)

    def request_start(self, cfg: ExperimentConfig, strategies: list[str], seeds: int, ceiling: dict | None = None
                      ) -> None:
        """Start pressed: the race is made by the script run the click causes (start_if_requested).
        ``ceiling``: the oracle ceiling's settings (RaceConfig's fields)."""
        from alcore.config import RaceConfig

        try:
            costs = RaceConfig.counted(cfg, strategies, seeds, **(ceiling or {})).ceiling_costs()
        except ValueError as e:
            self.state[REFUSED] = [plain(e)]
            return
        refused = race_refusal(cfg, strategies, len(strategies) * seeds, **costs)
        if refused:
            self.state[REFUSED] = refused
            return
        self.state[START_REQUESTED] = True
        self.state[RUNNING] = True

    @property
    def read_only(self) -> bool:
        """A race another browser started, opened from its link: shown, never continued here."""
        return self.race is not None and self.state.get(READ_ONLY, False)

    def request_continue(self) -> None:
        race = self.race
        if self.read_only:
            self.state[REFUSED] = [NOT_YOURS]
            return
        refused = race_refusal(race.base, [e.config.strategy for e in race.experiments], len(race.experiments),
                               **race.setup.ceiling_costs())
        if refused:
            self.state[REFUSED] = refused
            return
        self.state[RUNNING] = True

    def stop(self) -> None:
        """Stop pressed (a button callback): the round in progress stops within about a second,
        and the script run that computed it gives the run slot back (show)."""
        self.state[RUNNING] = False

    def refusals(self) -> list[str]:
        """Why Start / Continue did nothing, or why the race stopped (said once)."""
        return self.state.pop(REFUSED, [])

    # ------------------------------------------------------------ making and reopening races

    def start_if_requested(self, cfg: ExperimentConfig, strategies: list[str], seeds: int,
                           ceiling: dict | None = None) -> bool:
        """Make the race Start asked for; False (after saying why) where it cannot start."""
        if not self.state.pop(START_REQUESTED, False):
            return True
        from alcore.data.datasets import DatasetUnavailableError

        try:
            self.state[RACE] = self._new_race(cfg, strategies, seeds, ceiling or {})
        except (ValueError, DatasetUnavailableError) as e:  # e.g. a pretrained backbone's weights, offline
            self.stop()
            release_run_slot()  # Start took it; nothing computes
            # Start replaces the race: the previous one (another setup) is not shown under this
            # setup's header, nor kept in the address (its saved copy stays on the server)
            self.state[RACE], self.state[RACE_ID] = None, None
            st.query_params.pop("run", None)
            st.error(f"The race cannot start: {plain(e)}", icon=":material/block:")
            return False
        return True

    def _new_race(self, cfg: ExperimentConfig, strategies: list[str], n_seeds: int, ceiling: dict):
        from alcore.config import RaceConfig
        from alcore.engine.race import Race

        from dashboard.data import embedding_cache, embedding_progress

        setup = RaceConfig.counted(cfg, strategies, n_seeds, **ceiling)
        progress, bar = embedding_progress()
        with st.spinner("Loading TensorFlow and the data..."):
            race = Race.of(setup, dataset_for=_load, cache=trainer_cache(), embeddings=embedding_cache(),
                           progress=progress)
        bar.empty()
        race_id = run_store().new_id()
        self.state[READ_ONLY] = False
        try:
            run_store().create(race_id, setup, owner=visitor_key())
        except OSError as e:  # the race still runs; only the saved copy is missing
            st.warning(f"This race cannot be saved on the server ({plain(e.strerror or e)}); download its "
                       f"results from **Results** before closing the tab.")
            race_id = None
        self.state[RACE_ID] = race_id
        if race_id:
            st.query_params["run"] = race_id
        hold_race(race)
        return race

    def reopen(self, race_id: str) -> bool:
        """Make the saved race ``race_id`` this session's race (stopped, ready to continue)."""
        from alcore.data.datasets import DatasetUnavailableError
        from alcore.engine.store import SavedRaceError

        try:
            m = run_store().manifest(race_id)
            # a user's file is this session's upload of it (asked for by its fingerprint), never the saved path
            base = local_data(m.base, None, "reopen_data", "The race saved at this address")
            if base is None:
                return False
            problems = deployment_limits().run_problems(base, m.strategies, m.n_runs, **m.ceiling_costs())
            if problems:
                raise SavedRaceError(" ".join(sentence(p) for p in problems))
            from dashboard.data import embedding_cache, embedding_progress

            progress, bar = embedding_progress()
            with st.spinner("Reopening the saved race (loading TensorFlow and the data)..."):
                race = run_store().open(race_id, dataset_for=_load, cache=trainer_cache(), data_file=base.data_file,
                                        embeddings=embedding_cache(), progress=progress)
            bar.empty()
            mine = run_store().owned_by(race_id, visitor_key())
        except (SavedRaceError, ValueError, DatasetUnavailableError) as e:
            st.error(f"The saved race cannot be reopened: {plain(e)}", icon=":material/history:")
            return False
        self.state[RACE], self.state[RACE_ID], self.state[RUNNING] = race, race_id, False
        hold_race(race)
        self.state[READ_ONLY] = not mine
        use_setup(race.base, race.setup.strategies, len(race.setup.seeds),  # the setup pages show the reopened race
                  {f: getattr(race.setup, f) for f in CEILING_FIELDS})
        return True

    def open_results(self, results) -> bool:
        """Save the runs of result files as a race on the server and reopen it here, to continue."""
        from alcore.engine.store import SavedRaceError

        try:
            race_id = run_store().import_results(results, owner=visitor_key())
        except SavedRaceError as e:
            refuse(e)
            return False
        except OSError as e:
            st.error(f"The runs cannot be saved on the server ({plain(e.strerror or e)}).")
            return False
        return self.reopen(race_id)

    def follow_address(self) -> None:
        """Keep ?run=<id> in the address while a saved race is shown; reopen one from a link."""
        link_id = st.query_params.get("run")
        if self.race is None and link_id and self.reopen(link_id):
            done = self.race.progress().rounds_done
            st.info(f"Reopened the finished race saved at this address ({done} rounds): look at it on **Results**."
                    if self.race.done else f"Reopened the race saved at this address: {done} finished rounds. "
                    + (NOT_YOURS if self.read_only else "Press **Continue** to go on, or look at it on **Results**."),
                    icon=":material/history:")
        race_id = self.state.get(RACE_ID)
        if self.race is not None and st.query_params.get("run") != race_id:
            if race_id:
                st.query_params["run"] = race_id
            else:  # this race is not saved: the address must not reopen another one
                st.query_params.pop("run", None)

    # ------------------------------------------------------------ the race as it runs

    def show(self) -> None:
        """The race as it stands; while it runs, its rounds, computed here with the board
        redrawn between them (see the module's docstring)."""
        race = self.race
        if self.state.get(RACE_ID) and not self.read_only:
            st.caption(":material/bookmark: Every finished round is saved on this server: this page's address "
                       "(it ends in `?run=...`) reopens the race, even after the tab is closed. In this browser "
                       "it opens ready to continue; anyone else you give it to can look at the race, not continue "
                       "or stop it.")
        lock = race_lock()
        computing = self.state.setdefault(COMPUTING, Computing())
        if self.running and self.read_only:  # however it was asked for (Continue is disabled for it)
            self.state[RUNNING] = False
            st.error(NOT_YOURS, icon=":material/block:")
        board = LiveBoard()
        if not self.running:
            with lock:  # a round still being stopped by this session's previous script run (Stop, a page switch)
                if computing.run is None:
                    release_run_slot()  # Start or Continue took one, and Stop came before any round
            board.draw(race)
            if not race.done and not self.read_only and any(e.rounds for e in race.experiments):
                st.info(f"Stopped after round {race.progress().rounds_done}: every finished round is kept. "
                        "Press **Continue** to go on.", icon=":material/pause_circle:")
            race_warnings(race)
            return
        me, release_slot, session_gone = object(), run_slot_releaser(), session_gone_check()
        try:
            problem = self._run(race, board, lock, computing, me)
        finally:  # finished, failed, or this script run was asked to end: the computing has stopped
            stopped_computing(race, lock, computing, me, release_slot, session_gone)
        if problem:
            self.state.setdefault(REFUSED, []).append(problem)
        self.stop()
        st.rerun()  # once, to draw the buttons of a stopped race

    def _run(self, race, board: "LiveBoard", lock, computing: Computing, me: object) -> str | None:
        """Step the race to its end (or to a click); why it stopped early, or None."""
        race_id = self.state.get(RACE_ID)
        saved = self._saved_rounds(race_id)
        notes = st.container()
        first = not any(e.rounds for e in race.experiments)
        round_seconds = deployment_limits().max_round_seconds
        problem = unsaved = None
        while True:
            board.draw(race, live=True)  # Streamlit calls: a click made while the rounds were computed ends the run here
            if unsaved:  # the race goes on in this tab only, and says so now and when it ends
                self.state[RACE_ID] = None
                st.query_params.pop("run", None)  # the address would reopen the race without its later rounds
                self.state.setdefault(REFUSED, []).append(unsaved)
                notes.warning(unsaved, icon=":material/save:")
                unsaved = None
            if race.done or problem:
                return problem
            try:
                with st.spinner("Compiling the model (first round only)...") if first else nullcontext():
                    with lock:
                        if busy := claim_run_slot():  # renewed every step; taken by another session if it lapsed
                            return busy
                        computing.run = me  # the slot and the models are this script run's to give back
                        with stoppable():
                            t0 = time.perf_counter()
                            while not race.done and time.perf_counter() - t0 < STEP_SECONDS:
                                with cancel.time_limit(round_seconds):
                                    race.step()
                                if race_id and (unsaved := store_rounds(race, race_id, saved)):
                                    race_id = None
            except cancel.TimeLimitExceeded as e:
                problem = f"The round was stopped: {plain(e)}. Every finished round is kept."
            except Exception as e:  # keep every finished round, say what went wrong
                problem = f"The round failed and the race stopped (finished rounds are kept): {plain(e)}"
            first = False

    def _saved_rounds(self, race_id: str | None) -> dict:
        """Rounds on disk per run of the saved race ``race_id`` (this session's record)."""
        saved = self.state.setdefault(SAVED, {})
        if saved.get("race") != race_id:
            saved.clear()
            saved["race"] = race_id
        return saved


def stopped_computing(race, lock, computing: Computing, me: object, release_slot, session_gone) -> None:
    """Give the run slot back, unless a later script run of this session has taken the race over
    meanwhile (a page switch and back); where the session has ended (its tab closed mid-round),
    let go of the race's models too (dashboard.state.session_ended left them to this run). No
    Streamlit call: it runs as a script run that was asked to end unwinds."""
    with lock:
        if computing.run is not me:
            return
        computing.run = None
        release_slot()
    if session_gone():
        release_models(race)


def store_rounds(race, race_id: str, saved: dict) -> str | None:
    """Rewrite (atomically) the result file of every run with rounds not yet on disk; why
    saving failed, or None. No Streamlit calls (st.session_state included): every one is a
    point where a click ends the script run, and none may fall between a round and its file."""
    for i, exp in enumerate(race.runs):  # the oracle ceilings after the strategies' runs
        n = len(exp.rounds)
        if n == saved.get(i, 0):
            continue
        try:
            run_store().save_run(race_id, i, exp.result())
        except OSError as e:
            return (f"Saving the race on the server failed ({plain(e.strerror or e)}); it goes on in this tab "
                    f"only. Download its results from **Results** before closing the tab.")
        saved[i] = n
    return None


class LiveBoard:
    """Progress, curves and last accuracies of a race, in one place on the page, drawn again
    as rounds finish within one script run.

    Every drawing of the figure has its own key (live_curves_<n>, n counting this script run's
    drawings): a key may appear once per script run, and without one Streamlit derives the
    element's id from its content, which repeats when a round leaves the curves as they were
    (a multi-seed race whose seed mean did not move) and stops the page with
    StreamlitDuplicateElementId."""

    def __init__(self):
        self.slot = st.empty()
        self.drawn = 0

    def draw(self, race, live: bool = False) -> None:
        """The board as the race stands (``live``: drawn again within this script run, so the
        table has no download button, whose key would repeat)."""
        with self.slot.container():
            _board(race, f"live_curves_{self.drawn}", live)
        self.drawn += 1


def _board(race, key: str, live: bool) -> None:
    p = race.progress()
    runs = len(race.runs)
    # the count is of every run's rounds: "Round 800 of 800" alone read as 800 acquisition rounds
    per_run = f" ({runs} runs of {p.rounds_total // runs} rounds)" if p.rounds_total and runs > 1 \
        and p.rounds_total % runs == 0 else f" ({runs} runs)" if runs > 1 else ""
    text = f"Round {p.rounds_done}" + (f" of {p.rounds_total}" if p.rounds_total else "") + per_run + \
           f" · {p.max_labels} labels · {p.seconds:.1f} s"
    if p.seconds_left is not None and live and not race.done:  # a stopped race has no time left to count
        text += f" · about {p.seconds_left:.0f} s left"
    st.progress(p.fraction, text=text)
    frame = race.curve_frame()
    show_figure(learning_curve_figure(frame, aggregate=len(race.runs) > len(set(frame["group"])),
                                      target=st.session_state.get(REFERENCE_ACCURACY),
                                      target_name="with every pool label (Model page)",
                                      max_labels=race.planned_labels(),
                                      title="Test accuracy vs labels" + (" (live)" if live and not race.done else "")),
                "learning_curves", key=key)
    last = frame.sort_values("round").groupby("run").tail(1)[["run", "n_labeled", "test_accuracy"]]
    show_table(last.rename(columns={"n_labeled": "labels", "test_accuracy": "test accuracy"}), "last_accuracies",
               download=not live, column_config={"test accuracy": st.column_config.NumberColumn(format="percent")})
    radii = race.probcover_radii()
    if radii:
        st.caption("**probcover's ball radius**, " + plain(ProbCoverStrategy.radius_origin(radii[0][0])) + ": "
                   + " · ".join(f"{plain(run_label(c))} **{r:g}**" for c, r in radii))
    temps = race.uherding_temperatures()
    if temps:
        st.caption("**uherding's temperature**, " + plain(UHerdingStrategy.temperature_origin(temps[0][0])) + ": "
                   + " · ".join(f"{plain(run_label(c))} {temperatures_text(t)}" for c, t in temps))
    if race.done:
        st.success("Race finished. Open **Results** for the picked images, confusion matrices and metrics.")


def race_warnings(race) -> None:
    """Once the race is finished: runs whose curves dropped (unstable learner), and each strategy
    that is not significantly better than random across the seeds run (alcore.analysis.pitfalls),
    with the seeds a verdict would take. (A stopped race's runs may end at different label
    counts, and their AULCs would not compare.)"""
    from alcore.analysis.metrics import metrics_frame

    results = race.results() if race.done else []
    if not results:
        return
    frame = metrics_frame(results, 1.0)  # AULC and drops only: the target does not matter
    with_random = len(results) > 1 and any(is_baseline(r.config.strategy) for r in results)
    show_pitfalls(unstable_curves(frame) + (not_better_than_random(frame) if with_random else []))
