"""Run page: race the chosen strategies live, one round at a time (dashboard.race_session)."""
import streamlit as st

from alcore.analysis.pitfalls import setup_pitfalls
from dashboard.data import dataset_sizes
from dashboard.display import config_caption, show_pitfalls
from dashboard.race_session import RaceSession
from dashboard.state import AUTOSTART, REFERENCE_ACCURACY, config, race_ceiling, race_settings
from dashboard.uploads import result_uploads, results_on_local_data

st.title("Run")
cfg, rs = config(), race_settings()
st.markdown(config_caption(cfg) + " · racing " + ", ".join(f"**{s}**" for s in rs["strategies"])
            + f" over {rs['seeds']} seed(s)" + (", with the **oracle ceiling**" if race_ceiling()["ceiling"] else ""))
st.caption("Change the setup on the Dataset, Model and Strategy pages. Stop keeps every finished round; "
           "you can leave this page and come back, the race waits for you.")
session = RaceSession()
race_of_setup = (cfg, rs["strategies"], rs["seeds"], race_ceiling())


def setup_advice() -> None:
    """Pitfalls of the setup Start would race: the test set's noise near the accuracy reached so
    far, test data deciding when runs stop, the batch against rounds, budget and pool."""
    race, setup = session.race, config()  # follow_address may have reopened a race
    if race is not None and race.base == setup and race.experiments:
        ds = race.experiments[0].dataset
        n_pool, n_test = len(ds.y_pool), len(ds.y_test)
        reached = [r.test_accuracy for e in race.experiments for r in e.rounds]
        accuracy = max(reached) if reached else st.session_state.get(REFERENCE_ACCURACY)
    else:
        (n_pool, n_test), accuracy = dataset_sizes(setup), st.session_state.get(REFERENCE_ACCURACY)
    show_pitfalls(setup_pitfalls(setup, n_pool, n_test, accuracy))


def continue_from_files() -> None:
    """Upload result files of one race (from Results or the CLI) and continue it here."""
    with st.expander("Continue from result files", icon=":material/upload_file:"):
        st.caption("Result files of one race (the same settings; other strategies or seeds), downloaded "
                   "from **Results** or written by `python -m alcore run --out`. The race goes on from "
                   "their last round and picks what an uninterrupted race would have.")
        files = result_uploads("Result files (JSON)", key="continue_files")
        runs = results_on_local_data(files.runs, "continue_data")  # a file's data: asked for, never read by path
        if not files.uploaded or not st.button("Open these runs", key="open_files",
                                               disabled=session.running or runs is None):
            return
        if not files.refused and runs and session.open_results(runs):  # a refused file is named above
            st.rerun()


def live() -> None:
    """The buttons, then the race as it stands; while it runs, its rounds (RaceSession.show).
    A race Start asked for is made first, so the buttons show whether it runs."""
    started = session.start_if_requested(*race_of_setup)
    race, running = session.race, session.running
    b1, b2, b3, _ = st.columns([1, 1, 1, 3])
    b1.button("Start", type="primary", on_click=session.request_start, args=race_of_setup, disabled=running,
              key="start", help="Start a new race with the current setup")
    b2.button("Stop", on_click=session.stop, disabled=not running, key="stop")
    b3.button("Continue", on_click=session.request_continue, key="continue",
              disabled=running or race is None or race.done or session.read_only,
              help="Only the browser that started a race continues it" if session.read_only else
              "Continue the stopped race")
    for why in session.refusals():
        st.error(why, icon=":material/block:")
    if not started:
        return
    if session.race is None:
        st.info("Press **Start** to race the strategies. On digits a whole race takes well under a minute.")
        return
    session.show()


if st.session_state.pop(AUTOSTART, False) and not session.running:
    session.request_start(*race_of_setup)  # a setup loaded on Reference experiments: one click loads and runs it
session.follow_address()
setup_advice()
race_area = st.container()
continue_from_files()  # below the race, but drawn first: a running race keeps live() busy to its end
with race_area:
    live()
