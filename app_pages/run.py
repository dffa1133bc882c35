"""Run page: race the chosen strategies live, one round at a time."""
import time
from contextlib import nullcontext

import streamlit as st
from streamlit.errors import StreamlitAPIException

from alcore.figures import learning_curve_figure
from app_pages.common import RACE, RUNNING, config, config_caption, dataset, race_settings, trainer_cache
from app_pages.common import claim_run_slot, plain, race_refusal, release_run_slot  # this server's limits

st.title("Run")
cfg, rs = config(), race_settings()
st.markdown(config_caption(cfg) + " · racing " + ", ".join(f"**{s}**" for s in rs["strategies"])
            + f" over {rs['seeds']} seed(s)")
st.caption("Change the setup on the Dataset, Model and Strategy pages. Stop keeps every finished round; "
           "you can leave this page and come back, the race waits for you.")

STEP_SECONDS = 0.3  # redraw at least this often while rounds are fast
REFUSED = "race_refused"  # why Start / Continue did nothing (this server's limits or run slots)


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


def new_race():
    from alcore.race import Race

    seeds = [cfg.seed + i for i in range(rs["seeds"])]

    def load(seeded):
        ds = dataset(seeded)
        if ds is None:
            raise ValueError(f"dataset {seeded.dataset} is not available")
        return ds

    with st.spinner("Loading TensorFlow and the data..."):
        return Race(cfg, rs["strategies"], seeds, dataset_for=load, cache=trainer_cache())


@st.fragment
def live():
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
    bar, chart, table = st.empty(), st.empty(), st.empty()
    if running and not race.done and (busy := claim_run_slot()):  # its slot lapsed and was taken
        stop()
        st.session_state[REFUSED] = [busy]
        _rerun_fragment()
    if running and not race.done:
        first = not any(e.rounds for e in race.experiments)
        try:
            with st.spinner("Compiling the model (first round only)...") if first else nullcontext():
                t0 = time.perf_counter()
                while not race.done and time.perf_counter() - t0 < STEP_SECONDS:
                    race.step()
        except Exception as e:  # keep every finished round, say what went wrong
            stop()
            running = False
            st.error(f"The round failed and the race stopped (finished rounds are kept): {plain(e)}")
    p = race.progress()
    text = f"Round {p.rounds_done}" + (f" of {p.rounds_total}" if p.rounds_total else "") + \
           f" · {p.max_labels} labels · {p.seconds:.1f} s"
    if p.seconds_left is not None and not race.done:
        text += f" · about {p.seconds_left:.0f} s left"
    bar.progress(p.fraction, text=text)
    frame = race.curve_frame()
    ref = st.session_state.get("reference_accuracy")
    chart.plotly_chart(learning_curve_figure(frame, aggregate=len(race.experiments) > len(set(frame["group"])),
                                             target=ref, title="Test accuracy vs labels (live)"),
                       key="live_curves")
    last = frame.sort_values("round").groupby("run").tail(1)[["run", "n_labeled", "test_accuracy"]]
    table.dataframe(last.rename(columns={"n_labeled": "labels", "test_accuracy": "test accuracy"}),
                    hide_index=True, column_config={"test accuracy": st.column_config.NumberColumn(format="percent")})
    if running:
        if race.done:
            stop()  # frees the run slot; redraw once more so Start is enabled again
        _rerun_fragment()
    if race.done:
        st.success("Race finished. Open **Results** for the picked images, confusion matrices and metrics.")


def _rerun_fragment():
    """Re-enter the fragment; on a full-page run (arriving on this page mid-race) rerun the page."""
    try:
        st.rerun(scope="fragment")
    except StreamlitAPIException:
        st.rerun()


live()
