"""Be the oracle: the model asks you about its batch, retrains on your labels, and shows
what your mistakes cost beside the simulated oracle of the same seed (alcore.engine.oracle)."""
import numpy as np
import pandas as pd
import streamlit as st

from alcore.figures import oracle_curve_figure, upscale
from alcore.engine.oracle import OracleRun, confusions, cost_summary
from alcore.results.records import strategy_label
from dashboard import labelling, oracle_session as oracle
from dashboard.label_export import export_buttons
from dashboard.display import caption_names, config_caption, plain, show_figure, show_gallery, show_table
from dashboard.state import config, race_lock, race_settings
from dashboard.uploads import download_json, result_uploads, results_on_local_data

IMAGE_PX = 144  # an 8x8 digit drawn 18x, a 28x28 MNIST digit about 5x

st.title("Be the oracle")
st.markdown("The model asks **you** for the labels of the images it is least sure about. Click a label for "
            "each, submit, and it retrains on what you said, right or wrong. The simulated oracle (the "
            "dataset's own labels) runs the same seed beside you, so you see what your mistakes cost.")
cfg, rs = config(), race_settings()
if (unlabeled := labelling.unlabeled_images(cfg)) is not None:  # your own images without labels
    labelling.show(cfg, rs["strategies"], unlabeled)
    st.stop()

# ------------------------------------------------------------------------ setup
run: OracleRun | None = oracle.current()
setup = st.container(border=True)
with setup:
    s1, s2 = st.columns([2, 3], vertical_alignment="bottom")
    choices = list(rs["strategies"])
    titles = {s: strategy_label(cfg.replace(strategy=s)) for s in choices}  # format_func: no page globals
    strategy = s1.selectbox("Strategy that asks", choices, format_func=titles.__getitem__,
                            key="oracle_strategy",
                            help="One of the strategies chosen on the Strategy page; one seed (the Dataset page's).")
    oc = cfg.replace(strategy=strategy)
    s2.markdown(config_caption(oc))
    b1, b2 = st.columns([1, 4])
    # no tooltip: Streamlit draws it above the button, over the strategy box, and it stays there
    # while the pointer rests on the button (as after a click); the info below says what Start does
    pressed = b1.button("Start over" if run is not None else "Start labelling", type="primary" if run is None else
                        "secondary", key="oracle_start")
    with b2.expander("Continue labelling from a result file", icon=":material/upload_file:"):
        mine = result_uploads("Your run's result file (JSON), downloaded from this page", key="oracle_file",
                              multiple=False, check=oracle.labelled_by_a_person)
        mine_here = results_on_local_data(mine.runs, "oracle_data")  # a file's data: asked for, never read by path
        reopen = st.button("Continue this run", key="oracle_reopen", disabled=not mine.uploaded or mine_here is None)
if (pressed and oracle.start(oc)) or (reopen and mine_here and oracle.resume(mine_here[0])):
    st.rerun()  # once, so the setup's button says "Start over"
run = oracle.current()
if run is None:
    st.info("Press **Start labelling**: round 0 trains on the initial labels (given, as in every run), and "
            "the model then asks you about its first batch. From then on you are the oracle.",
            icon=":material/touch_app:")
    st.stop()

with race_lock():  # a retrain still finishing from this session's previous script run
    pass
oracle.submit_if_requested(run)

ds = run.dataset
names = ds.class_names
shown = [plain(n) for n in names]  # button labels and captions render markdown; names come from files
rc = run.config
if rc != oc:
    st.caption(f"This run: {config_caption(rc)} · **{plain(strategy_label(rc))}**. The setup has changed "
               f"since; **Start over** to label with it.")
keyboard = len(names) <= 10 and list(names) == [str(c) for c in range(len(names))]
records, costs = run.labels(), run.costs()

# ------------------------------------------------- the curves and what the mistakes cost
chart, numbers = st.columns([3, 2], gap="large")
show_figure(oracle_curve_figure(costs, strategy=rc.strategy), "oracle_curves", where=chart, key="oracle_curve")
with numbers:
    wrong = sum(not x.right for x in records)
    last = costs[-1]
    timed = [x.seconds for x in records if x.seconds is not None]
    m1, m2 = st.columns(2)
    m1.metric("Labels you gave", len(records))
    m2.metric("Your mistakes", f"{wrong}" + (f" ({wrong / len(records):.0%})" if records else ""))
    m3, m4 = st.columns(2)
    m3.metric("Seconds per label", f"{np.mean(timed):.1f} s" if timed else "-", help="Mean over your labels.")
    helped = last.mistakes and last.cost < 0  # by chance: a cost of -7.5 pts read oddly
    m4.metric("Mistakes helped, by chance" if helped else "Mistakes cost",
              f"{abs(last.cost) * 100:.1f} pts" if last.mistakes and last.cost else "nothing",
              help="Test accuracy of this round's model trained on the same images with their true labels, "
                   "against with yours (percentage points).")
    m5, m6 = st.columns(2)
    m5.metric("Accuracy, your labels", f"{last.accuracy:.1%}")
    m6.metric("Simulated oracle", "-" if last.simulated_accuracy is None else f"{last.simulated_accuracy:.1%}",
              help="The same strategy and seed with the dataset's labels: same start, its own picks.")
    st.markdown(plain(cost_summary(records, costs)))
    mixups = confusions(records, names)
    if mixups:
        st.caption("Your mix-ups: " + "; ".join(f"{t} labelled {g}" + (f" ({n}x)" if n > 1 else "")
                                               for t, g, n in ((plain(t), plain(g), n) for t, g, n in mixups)))
    st.download_button("Download your run's result file (JSON)", download_json(run.result()),
                       f"{rc.dataset}_{rc.strategy}_seed{rc.seed}_person.json", "application/json",
                       on_click="ignore", key="oracle_download", icon=":material/download:")
    export_buttons(run.result(), ds, f"{rc.dataset}_{rc.strategy}_seed{rc.seed}_person", "oracle_labels")

# ------------------------------------------------------------------- the batch
@st.fragment
def batch_area(run: OracleRun) -> None:
    """The images and their label buttons. A fragment: a label click reruns only this part (a
    fraction of a second), not the curves, tables and result file above; Submit reruns the page."""
    if oracle.submit_requested():
        st.rerun(scope="app")
    answers = oracle.answers_for(run)
    batch, r = tuple(answers.indices), len(run.person.rounds) - 1
    st.subheader(f"Batch {r + 1}: label these {len(batch)} images")
    hint = ("Keyboard: **0-9** label the image marked :material/arrow_right_alt: (the first without a label), "
            "**Enter** submits. " if keyboard else "")
    st.caption(hint + "Click another label to correct one; each image shows the label it got (keys typed "
               "faster than the page redraws can land out of order). Time per label runs from when the batch "
               "appears, or from your previous click.")
    pictures = upscale(ds.display_images(ds.x_pool[list(batch)]), IMAGE_PX)
    target = answers.next_open
    if keyboard:
        # One fixed row of buttons carries the keys, for the whole batch: each labels whichever image is
        # the first open one when its key arrives, so keys typed while the page redraws still go to the
        # images in order (keys on the marked image's own buttons moved at every redraw, and keys
        # pressed meanwhile were lost).
        with st.container(horizontal=True, gap="small", vertical_alignment="center", key="oracle_keys"):
            st.markdown("Keys:")
            for c, name in enumerate(shown):
                # no label: the button shows its shortcut, which is the class ("0 0 1 1" with both)
                st.button("", key=f"oracle_key_{r}_{c}", on_click=oracle.give_next, args=(batch, c), type="tertiary",
                          shortcut=str(c), disabled=target is None)
    for pos, idx in enumerate(batch):
        given = answers.labels[pos]
        with st.container(border=True, horizontal=True, vertical_alignment="center", gap="medium",
                          key=f"oracle_item_{pos}"):
            st.image(np.asarray(pictures[pos]), width=IMAGE_PX)
            with st.container():
                mark = ":material/arrow_right_alt: " if keyboard and pos == target else ""
                said = f" · you said **{shown[given]}**" if given is not None else ""
                st.markdown(f"{mark}Image {pos + 1} of {len(batch)} · pool #{idx}{said}")
                with st.container(horizontal=True, gap="small"):
                    for c, name in enumerate(shown):
                        st.button(name, key=f"oracle_label_{r}_{pos}_{c}", on_click=oracle.give, args=(batch, pos, c),
                                  type="primary" if given == c else "secondary")
    st.button("Submit labels and retrain", type="primary", key="oracle_submit_button", on_click=oracle.request_submit,
              disabled=not answers.complete, shortcut="Enter" if answers.complete else None,
              icon=":material/model_training:")
    st.caption(f"{answers.n_answered} of {len(batch)} labelled.")


if run.done:
    st.success(f"The run is complete ({plain(run.person.stop_reason)}). Download it above, or **Start over**.",
               icon=":material/flag:")
else:
    batch_area(run)

mistakes = [x for x in records if not x.right]
if mistakes:
    st.subheader("Your mistakes")
    short = caption_names(names)  # whole names in "Every label you gave" below
    show_gallery(ds.display_images(ds.x_pool[[x.index for x in mistakes]]),
                 [f"#{x.index}: you said {short[x.given]}, true {short[x.truth]}" for x in mistakes])
if records:
    with st.expander("Every label you gave", expanded=False):
        show_table(pd.DataFrame([{"batch": x.round + 1, "pool index": x.index, "your label": names[x.given],
                                  "true label": names[x.truth], "right": x.right,
                                  "model predicted": None if x.predicted is None else names[x.predicted],
                                  "seconds": x.seconds} for x in records]), "oracle_labels_given",
                   column_config={"seconds": st.column_config.NumberColumn(format="%.1f")})
    with st.expander("Round by round", expanded=False):
        pct = st.column_config.NumberColumn(format="percent")
        show_table(pd.DataFrame([{"round": c.round, "labels": c.n_labeled, "yours": c.person_labels,
                                  "wrong": c.mistakes, "your labels": c.accuracy,
                                  "true labels, same images": c.truth_accuracy,
                                  "simulated oracle": c.simulated_accuracy} for c in costs]), "oracle_round_by_round",
                   column_config={"your labels": pct, "true labels, same images": pct, "simulated oracle": pct})
