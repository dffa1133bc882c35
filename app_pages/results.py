"""Results page: look inside every round of the race; metrics; downloads."""
import numpy as np
import streamlit as st

from alcore.figures import (autolabel_figure, class_balance_figure, confusion_figure, gallery, gallery_caption,
                            picked_images, stopping_signals_figure)
from alcore.analysis.ceiling import split_ceilings
from alcore.analysis.metrics import group_metrics, metrics_frame
from alcore.results.records import curves_csv
from dashboard import ceiling_view
from dashboard.label_export import export_buttons
from dashboard.display import (caption_names, metric_columns, plain, show_figure, show_gallery,
                               show_gallery_details, show_table, temperature_caption)
from dashboard.limits import one_call_within_labels
from dashboard.state import RACE, race_lock
from dashboard.uploads import download_json
from dashboard.widgets import target_accuracy

st.title("Results")
race = st.session_state.get(RACE)
if race is None or not any(e.rounds for e in race.experiments):
    st.info("No results yet: start a race on the **Run** page (or load result files on **Compare**).")
    st.stop()

with race_lock():  # a round the Run page was computing when the visitor came here is finished first
    runs = [e for e in race.runs if e.rounds]  # the oracle ceilings after the strategies' runs
    results = [e.result() for e in runs]
labels = [r.label for r in results]
raced, _, ceilings, _ = split_ceilings(results)  # the metrics are the strategies' alone

st.subheader("Metrics")
target = target_accuracy(raced, where=st.columns([1, 3])[0])
frame = metrics_frame(raced, target)
fmt = metric_columns()
show_table(frame.drop(columns=["group", "key", "strategy"]), "metrics_per_run", column_config=fmt)
if len(raced) > len(set(frame["group"])):
    st.caption("Mean over seeds")
    show_table(group_metrics(frame).drop(columns=["final_accuracy_std"]), "metrics_mean_over_seeds", column_config=fmt)
if ceilings:
    st.caption("The oracle ceiling is not in the metrics: it peeks at validation labels, a reference and not a "
               "strategy. Inspect it below; **Compare** gives the share of its gain each strategy captures.")

d1, d2 = st.columns(2)
d1.download_button("Download curves (CSV)", curves_csv(results), "curves.csv", "text/csv", on_click="ignore")
with d2:
    for i, res in enumerate(results):  # the oracle ceilings' files too, for Compare to draw them
        st.download_button(f"Download {res.label} result file (JSON)", download_json(res),
                           f"{ceiling_view.file_stem(res)}.json",
                           "application/json", on_click="ignore", key=f"dl_{i}")

st.subheader("Inside a round")
c1, c2 = st.columns([2, 3])
# format_func: never a function defined in this page. Streamlit keeps a widget's format_func, and a
# page-defined one holds this page's globals (the race with its arrays) for as long as the widget
# lives: the soak kept every finished race alive that way (README, "A server that runs all day").
which = c1.selectbox("Run", range(len(runs)), format_func=list(labels).__getitem__)
exp, res = runs[which], results[which]
r_idx = c2.slider("Round", 0, len(res.rounds) - 1, len(res.rounds) - 1) if len(res.rounds) > 1 else 0
rnd = res.rounds[r_idx]
ds = exp.dataset
names = ds.class_names
names_shown = caption_names(names)  # captions render markdown; class names come from files
m1, m2, m3, m4 = st.columns(4)
m1.metric("Labels", rnd.n_labeled)
m2.metric("Test accuracy", f"{rnd.test_accuracy:.2%}",
          f"{rnd.test_accuracy - res.rounds[r_idx - 1].test_accuracy:+.2%}" if r_idx else None)
m3.metric("L-BFGS iterations" if res.config.model == "softmax" else "Epochs", rnd.epochs)
m4.metric("Train + query", f"{rnd.train_seconds + rnd.query_seconds:.3f} s")


def show(refs, title):
    if not refs:
        st.caption(f"{title}: none this round.")
        return
    imgs, caps = gallery(ds.display_images(ds.x_pool[[ref.index for ref in refs]]), refs, names_shown)
    st.markdown(f"**{title}**")
    show_gallery(imgs, caps)


st.caption("Under each image: its pool index, the predicted class (with its confidence), and the true class "
           "where the prediction is wrong. The details are under the images.")
picked = picked_images(rnd, ds.y_pool)
if picked:
    st.markdown(ceiling_view.batch_heading(res, rnd, "after this round"))
    if rnd.uherding_temperature is not None:
        st.caption(temperature_caption(rnd, res.config))
    show_gallery(ds.display_images(ds.x_pool[rnd.selected]),
                 [gallery_caption(p.index, names_shown, p.predicted, p.label) for p in picked])
else:
    st.caption("The last round picks nothing: the run stopped here (" + plain(res.stop_reason or "stopped") + ").")
show(rnd.least_confident, "Least confident unlabeled images")
show(rnd.most_confident, "Most confident unlabeled images")
show_gallery_details({"picked": picked, "least confident": rnd.least_confident,
                      "most confident": rnd.most_confident}, names, f"images_{res.label}_round{r_idx}")
ceiling_view.show_candidates(res, rnd, f"results_{which}_round{r_idx}")

f1, f2 = st.columns(2)
show_figure(confusion_figure(rnd.confusion, names, f"Confusion matrix, round {r_idx}"),
            f"confusion_{res.label}_round{r_idx}", where=f1, key="confusion")
counts = {}
for e, rr in zip(runs, results):
    upto = min(r_idx, len(rr.rounds) - 1)
    taken = np.concatenate([np.asarray(rr.initial_indices), np.asarray(rr.validation_indices, dtype=int)]
                           + [np.asarray(x.selected, dtype=int) for x in rr.rounds[:upto]])
    counts[rr.label] = np.bincount(e.dataset.y_pool[taken.astype(int)], minlength=len(names))
show_figure(class_balance_figure(counts, names, f"Labels per class after round {r_idx}",
                                 {rr.label: ceiling_view.colour_name(rr) for rr in results}),
            f"labels_per_class_round{r_idx}", where=f2, key="balance")

with st.expander("Stopping signals: could this run have known when to stop?"):
    st.write("In real use the test accuracy is unknown. These label-free signals are recorded every "
             "round; a good one flattens when the accuracy does. Set thresholds for them on the Strategy page.")
    show_figure(stopping_signals_figure(res), f"stopping_signals_{res.label}", key="signals")

st.subheader("Confident auto-labelling")
st.write(f"Give the {res.label} model's most confident unlabeled images their predicted class as "
         "pseudo-labels, a batch at a time, retraining after each (CEAL). The truth is known here, "
         "so you see how often the pseudo-labels are right and whether they help or hurt.")
a1, a2, a3 = st.columns(3)
al_batch = a1.number_input("Pseudo-labels per step", 1, 10_000, 100)
al_steps = a2.number_input("Steps", 1, 50, 5)
al_floor = a3.number_input("Minimum confidence", 0.0, 0.999, 0.0, format="%.3f")
reports = st.session_state.setdefault("autolabel", {})
if st.button("Auto-label", type="primary", disabled=not exp.rounds):
    from alcore.engine.autolabel import auto_label

    n_real, n_pseudo = res.rounds[-1].n_labeled, int(al_batch) * int(al_steps)
    with one_call_within_labels(n_real + n_pseudo, f"Training on {n_real:,} labels plus up to {n_pseudo:,} "
                                "pseudo-labels", "ask for fewer pseudo-labels or steps") as ok:
        if ok:
            with st.spinner(f"Pseudo-labelling {al_steps} x {al_batch} images and retraining..."), race_lock():
                reports[res.label] = auto_label(exp, int(al_batch), int(al_steps), float(al_floor))
if res.label in reports:
    rep = reports[res.label]
    st.metric("Test accuracy change from pseudo-labels", f"{rep.steps[-1].test_accuracy:.2%}", f"{rep.gain:+.2%}")
    st.caption(f"Stopped: {plain(rep.stop_reason)}.")
    show_figure(autolabel_figure(rep), f"auto_labelling_{res.label}", key="autolabel")

st.subheader("Export the labels")
st.caption(f"Every label the {plain(res.label)} run has" + (" and its pseudo-labels from auto-labelling above"
                                                            if res.label in reports else "") + ".")
pseudo = (reports[res.label].pseudo_indices, reports[res.label].pseudo_labels) if res.label in reports else None
export_buttons(res, ds, ceiling_view.file_stem(res), f"results_{which}",
               pseudo)
