"""Run page: race the chosen strategies live, one round at a time."""
import time
from contextlib import nullcontext

import streamlit as st

from alcore.figures import learning_curve_figure
from alcore.analysis.pitfalls import not_better_than_random, setup_pitfalls, unstable_curves
from app_pages.common import (AUTOSTART, CONFIG, RACE, RACE_SETTINGS, RUNNING, claim_run_slot, config, config_caption,
                              dataset, dataset_sizes, deployment_limits, plain, race_lock, race_refusal, race_settings,
                              release_run_slot, run_store, sentence, show_figure, show_pitfalls, show_table,
                              trainer_cache)

RACE_ID = "race_id"  # the saved race's id; also the page address's ?run= parameter
SAVED = "race_saved_rounds"  # rounds on disk per run of the saved race

st.title("Run")
cfg, rs = config(), race_settings()
st.markdown(config_caption(cfg) + " · racing " + ", ".join(f"**{s}**" for s in rs["strategies"])
            + f" over {rs['seeds']} seed(s)")
st.caption("Change the setup on the Dataset, Model and Strategy pages. Stop keeps every finished round; "
           "you can leave this page and come back, the race waits for you.")

STEP_SECONDS = 0.3  # redraw at least this often while rounds are fast
REFUSED = "race_refused"  # why Start / Continue did nothing, or why the race stopped


def start():
    refused = race_refusal(cfg, rs["strategies"], len(rs["strategies"]) * rs["seeds"])
    if refused:
        st.session_state[REFUSED] = refused
        return
    st.session_state["start_requested"] = True
    st.session_state[RUNNING] = True


def resume():
    race = st.session_state[RACE]
    refused = race_refusal(race.base, [e.config.strategy for e in race.experiments], len(race.experiments))
    if refused:
        st.session_state[REFUSED] = refused
        return
    st.session_state[RUNNING] = True


def stop():
    st.session_state[RUNNING] = False
    release_run_slot()


def load(seeded):
    ds = dataset(seeded)
    if ds is None:
        raise ValueError(f"dataset {seeded.dataset} is not available")
    return ds


def new_race():
    from alcore.engine.race import Race

    seeds = [cfg.seed + i for i in range(rs["seeds"])]
    with st.spinner("Loading TensorFlow and the data..."):
        race = Race(cfg, rs["strategies"], seeds, dataset_for=load, cache=trainer_cache())
    race_id = run_store().new_id()
    try:
        run_store().create(race_id, cfg, rs["strategies"], seeds)
    except OSError as e:  # the race still runs; only the saved copy is missing
        st.warning(f"This race cannot be saved on the server ({plain(e.strerror or e)}); download its "
                   f"results from **Results** before closing the tab.")
        race_id = None
    st.session_state[RACE_ID] = race_id
    if race_id:
        st.query_params["run"] = race_id
    return race


def saved_rounds(race_id: str | None) -> dict:
    """Rounds on disk per run of the saved race ``race_id`` (this session's record)."""
    saved = st.session_state.setdefault(SAVED, {})
    if saved.get("race") != race_id:
        saved.clear()
        saved["race"] = race_id
    return saved


def store_rounds(race, race_id: str, saved: dict) -> str | None:
    """Rewrite (atomically) the result file of every run with rounds not yet on disk; why
    saving failed, or None. No Streamlit calls (st.session_state included): every one is a
    point where a click ends the script run, and none may fall between a round and its file."""
    for i, exp in enumerate(race.experiments):
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


def reopen(race_id: str) -> bool:
    """Make the saved race ``race_id`` this session's race (stopped, ready to continue)."""
    from alcore.engine.store import SavedRaceError

    try:
        m = run_store().manifest(race_id)
        problems = deployment_limits().run_problems(m.base, m.strategies, len(m.strategies) * len(m.seeds))
        if problems:
            raise SavedRaceError(" ".join(sentence(p) for p in problems))
        with st.spinner("Reopening the saved race (loading TensorFlow and the data)..."):
            race = run_store().open(race_id, dataset_for=load, cache=trainer_cache())
    except (SavedRaceError, ValueError) as e:
        st.error(f"The saved race cannot be reopened: {plain(e)}", icon=":material/history:")
        return False
    st.session_state[RACE], st.session_state[RACE_ID], st.session_state[RUNNING] = race, race_id, False
    st.session_state[CONFIG] = race.base
    st.session_state[RACE_SETTINGS] = {"strategies": list(dict.fromkeys(e.config.strategy for e in race.experiments)),
                                       "seeds": len({e.config.seed for e in race.experiments})}
    for key in [k for k in st.session_state if str(k).startswith("w_")]:
        del st.session_state[key]  # the setup pages' widgets show the reopened race's settings
    return True


def link_section():
    """Keep ?run=<id> in the address while a saved race is shown; reopen one from a link."""
    link_id = st.query_params.get("run")
    if st.session_state.get(RACE) is None and link_id:
        if reopen(link_id):
            race = st.session_state[RACE]
            st.info(f"Reopened the race saved at this address: {race.progress().rounds_done} finished "
                    f"rounds. Press **Continue** to go on, or look at it on **Results**.",
                    icon=":material/history:")
    race_id = st.session_state.get(RACE_ID)
    if st.session_state.get(RACE) is not None and st.query_params.get("run") != race_id:
        if race_id:
            st.query_params["run"] = race_id
        else:  # this race is not saved: the address must not reopen another one
            st.query_params.pop("run", None)


def continue_from_files():
    """Upload result files of one race (from Results or the CLI) and continue it here."""
    from alcore.results.records import ResultFileError, load_result
    from alcore.engine.store import SavedRaceError

    with st.expander("Continue from result files", icon=":material/upload_file:"):
        st.caption("Result files of one race (the same settings; other strategies or seeds), downloaded "
                   "from **Results** or written by `python -m alcore run --out`. The race goes on from "
                   "their last round and picks what an uninterrupted race would have.")
        ups = st.file_uploader("Result files (JSON)", type=["json"], accept_multiple_files=True,
                               max_upload_size=64, key="continue_files")
        if not ups or not st.button("Open these runs", key="open_files",
                                    disabled=st.session_state.get(RUNNING, False)):
            return
        if too_big := [r for r in deployment_limits().upload_problems([(u.name, u.size) for u in ups]) if r]:
            st.error(f"Refused: {plain(too_big[0])}.", icon=":material/block:")  # before parsing any
            return
        try:
            results = [load_result(u.getvalue(), name=u.name) for u in ups]
            race_id = run_store().import_results(results)
        except (ResultFileError, SavedRaceError) as e:
            st.error(f"Refused: {plain(e)}", icon=":material/block:")
            return
        except OSError as e:
            st.error(f"The runs cannot be saved on the server ({plain(e.strerror or e)}).")
            return
        if reopen(race_id):
            st.rerun()


def live():
    """The buttons, progress, curves and table; while a race runs, its rounds.

    One script run computes the whole race, redrawing the board after at most STEP_SECONDS
    of rounds. A click (Stop, another page) ends that script run at its next Streamlit
    call, which comes after the rounds in progress are computed and saved: no round is
    lost and none is half-saved. The race is not driven by st.rerun() after every few
    rounds: Streamlit 1.67 runs a rerun that is already queued when a click arrives on a
    second thread beside the click's, and that rerun can put the Run page back over the
    page the visitor clicked (tests/e2e/test_sessions_e2e.py clicks Results as a race ends)."""
    race = st.session_state.get(RACE)
    running = st.session_state.get(RUNNING, False)
    b1, b2, b3, _ = st.columns([1, 1, 1, 3])
    b1.button("Start", type="primary", on_click=start, disabled=running, key="start",
              help="Start a new race with the current setup")
    b2.button("Stop", on_click=stop, disabled=not running, key="stop")
    b3.button("Continue", on_click=resume, key="continue",
              disabled=running or race is None or race.done, help="Continue the stopped race")
    for why in st.session_state.pop(REFUSED, []):
        st.error(why, icon=":material/block:")
    if st.session_state.pop("start_requested", False):
        try:
            race = st.session_state[RACE] = new_race()
        except ValueError as e:
            stop()
            st.error(f"The race cannot start: {plain(e)}")
            return
    if race is None:
        st.info("Press **Start** to race the strategies. On digits a whole race takes well under a minute.")
        return
    race_id = st.session_state.get(RACE_ID)
    if race_id:
        st.caption(":material/bookmark: Every finished round is saved on this server: this page's address "
                   "(it ends in `?run=...`) reopens the race, even after the tab is closed.")
    lock = race_lock()
    with lock:
        pass  # a round still being finished by this session's previous script run (Stop, a page switch)
    board = st.empty()
    if not running:
        with board.container():
            draw(race)
        against_random(race)
        return
    saved = saved_rounds(race_id)
    notes = st.container()
    first = not any(e.rounds for e in race.experiments)
    problem = unsaved = None
    while True:
        with board.container():
            draw(race, live=True)  # Streamlit calls: a click made while the rounds were computed ends the run here
        if unsaved:  # the race goes on in this tab only, and says so now and when it ends
            st.session_state[RACE_ID] = None
            st.query_params.pop("run", None)  # the address would reopen the race without its later rounds
            st.session_state.setdefault(REFUSED, []).append(unsaved)
            notes.warning(unsaved, icon=":material/save:")
            unsaved = None
        if race.done or problem:
            break
        if busy := claim_run_slot():  # renewed every step; taken by another session if it lapsed
            problem = busy
            break
        try:
            with st.spinner("Compiling the model (first round only)...") if first else nullcontext():
                with lock:
                    t0 = time.perf_counter()
                    while not race.done and time.perf_counter() - t0 < STEP_SECONDS:
                        race.step()
                        if race_id and (unsaved := store_rounds(race, race_id, saved)):
                            race_id = None
        except Exception as e:  # keep every finished round, say what went wrong
            problem = f"The round failed and the race stopped (finished rounds are kept): {plain(e)}"
        first = False
    if problem:
        st.session_state.setdefault(REFUSED, []).append(problem)
    stop()  # frees the run slot
    st.rerun()  # once, to draw the buttons of a stopped race


def draw(race, live: bool = False) -> None:
    """Progress, curves and last accuracies as they stand. Drawn before the next rounds are
    computed, so the page keeps showing them (not empty placeholders) while a round runs
    (``live``: drawn again within this script run, so the table has no download button)."""
    p = race.progress()
    text = f"Round {p.rounds_done}" + (f" of {p.rounds_total}" if p.rounds_total else "") + \
           f" · {p.max_labels} labels · {p.seconds:.1f} s"
    if p.seconds_left is not None and not race.done:
        text += f" · about {p.seconds_left:.0f} s left"
    st.progress(p.fraction, text=text)
    frame = race.curve_frame()
    ref = st.session_state.get("reference_accuracy")
    # no key: this figure is drawn again within the script run, and a key may appear only once
    show_figure(learning_curve_figure(frame, aggregate=len(race.experiments) > len(set(frame["group"])),
                                      target=ref, title="Test accuracy vs labels (live)"), "learning_curves")
    last = frame.sort_values("round").groupby("run").tail(1)[["run", "n_labeled", "test_accuracy"]]
    show_table(last.rename(columns={"n_labeled": "labels", "test_accuracy": "test accuracy"}), "last_accuracies",
               download=not live, column_config={"test accuracy": st.column_config.NumberColumn(format="percent")})
    if race.done:
        st.success("Race finished. Open **Results** for the picked images, confusion matrices and metrics.")


def against_random(race) -> None:
    """Once the race is finished: runs whose curves dropped (unstable learner), and each strategy
    that is not significantly better than random
    across the seeds run (alcore.analysis.pitfalls), with the seeds a verdict would take. (A stopped race's
    runs may end at different label counts, and their AULCs would not compare.)"""
    from alcore.analysis.metrics import metrics_frame

    results = race.results() if race.done else []
    if not results:
        return
    frame = metrics_frame(results, 1.0)  # AULC and drops only: the target does not matter
    with_random = len(results) > 1 and any(r.config.strategy == "random" for r in results)
    show_pitfalls(unstable_curves(frame) + (not_better_than_random(frame) if with_random else []))


def setup_advice() -> None:
    """Pitfalls of the setup Start would race: the test set's noise near the accuracy reached so
    far, test data deciding when runs stop, the batch against rounds, budget and pool."""
    race, setup = st.session_state.get(RACE), config()  # link_section may have reopened a race
    if race is not None and race.base == setup and race.experiments:
        ds = race.experiments[0].dataset
        n_pool, n_test = len(ds.y_pool), len(ds.y_test)
        reached = [r.test_accuracy for e in race.experiments for r in e.rounds]
        accuracy = max(reached) if reached else st.session_state.get("reference_accuracy")
    else:
        (n_pool, n_test), accuracy = dataset_sizes(setup), st.session_state.get("reference_accuracy")
    show_pitfalls(setup_pitfalls(setup, n_pool, n_test, accuracy))


if st.session_state.pop(AUTOSTART, False) and not st.session_state.get(RUNNING, False):
    start()  # a setup loaded on Reference experiments: one click loads and runs it
link_section()
setup_advice()
race_area = st.container()
continue_from_files()  # below the race, but drawn first: a running race keeps live() busy to its end
with race_area:
    live()
