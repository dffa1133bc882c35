"""Compare page: overlay result files from anywhere; mean and band over seeds."""
import streamlit as st

from alcore.figures import curve_frame, learning_curve_figure
from alcore.metrics import group_metrics, metrics_frame
from alcore.results import ResultFileError, curves_csv, load_result
from app_pages.common import RACE, plain

st.title("Compare")
st.write("Upload result files from the dashboard or the CLI (`python -m alcore run ... --out run.json`), "
         "from this machine or any other. Runs of the same strategy and settings on different seeds "
         "are averaged, with a shaded band.")

uploads = st.file_uploader("Result files (JSON)", type=["json"], accept_multiple_files=True,
                           max_upload_size=64, key="compare_files")
results, sources, seen = [], [], {}
for up in uploads or []:
    digest = hash(up.getvalue())
    if digest in seen:
        st.warning(f"{plain(up.name)} is the same file as {plain(seen[digest])}: loaded once.")
        continue
    seen[digest] = up.name
    try:
        results.append(load_result(up.getvalue(), name=up.name))
        sources.append(up.name)
    except ResultFileError as e:
        st.error(f"Refused {plain(e)}", icon=":material/block:")
race = st.session_state.get(RACE)
if race is not None and any(e.rounds for e in race.experiments):
    if st.toggle("Include this session's race", value=not uploads):
        for r in race.results():
            results.append(r)
            sources.append("this session")
if not results:
    st.info("No runs to compare yet: upload result files, or run a race on the **Run** page.")
    st.stop()

st.caption(f"{len(results)} run(s) loaded: " + ", ".join(plain(s) for s in sorted(set(sources))))
c1, c2, c3 = st.columns(3)
aggregate = c1.toggle("Average seeds", value=True)
band = c2.selectbox("Band", ["ci95", "std", "minmax"], disabled=not aggregate,
                    format_func={"ci95": "95% confidence interval", "std": "± 1 std", "minmax": "min-max"}.get)
best = max(r.rounds[-1].test_accuracy for r in results)
target = c3.number_input("Target accuracy", 0.05, 1.0, float(round(best * 0.95, 2)), 0.01)
frame = curve_frame(results, sources)
st.plotly_chart(learning_curve_figure(frame, aggregate=aggregate, band=band, target=target,
                                      title="Test accuracy vs labels"), key="compare_curves")

metrics = metrics_frame(results, target)
fmt = {"final_labels": st.column_config.NumberColumn("labels used", format="%d"),
       "final_accuracy": st.column_config.NumberColumn("final accuracy", format="percent"),
       "aulc": st.column_config.NumberColumn("AULC", format="%.4f"),
       "labels_to_target": st.column_config.NumberColumn("labels to target", format="%d"),
       "labels_saved_vs_random": st.column_config.NumberColumn("labels saved vs random", format="%d")}
st.subheader("Per group (mean over seeds)")
st.dataframe(group_metrics(metrics), hide_index=True, column_config=fmt)
with st.expander("Per run"):
    metrics.insert(1, "file", sources)
    st.dataframe(metrics.drop(columns=["strategy"]), hide_index=True, column_config=fmt)
st.download_button("Download these curves (CSV)", curves_csv(results), "compare_curves.csv", "text/csv",
                   on_click="ignore")
