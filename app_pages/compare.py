"""Compare page: overlay result files from anywhere; mean and band over seeds."""
import streamlit as st

from alcore.analysis.ceiling import split_ceilings
from alcore.analysis.groups import curve_frame
from alcore.figures import SETTING_TITLES, learning_curve_figure, pairwise_figure, setting_effect_figure
from alcore.analysis.metrics import group_metrics, metrics_frame
from alcore.analysis.pitfalls import model_selection, not_better_than_random, tiny_test_set, unstable_curves
from alcore.sweep.presets import list_presets, load_preset
from alcore.results.records import ResultFileError, curves_csv
from alcore.analysis.stats import seed_statistics, setting_effect, swept_settings
from dashboard.display import metric_columns, show_gain_captured, pair_warnings, plain, show_figure, show_pitfalls, show_table
from dashboard.state import RACE
from dashboard.uploads import result_uploads
from dashboard.widgets import target_accuracy


@st.cache_resource(show_spinner="Loading the preset's result files...")
def _preset_results(key: str, stamp: tuple):
    """The preset's runs, parsed once per process (``stamp``: its files' names and times, so
    a re-run sweep is read again). Shared read-only between sessions: pages never change a
    RunResult."""
    preset = next(p for p in list_presets() if p.key == key)
    return load_preset(preset)

st.title("Compare")
st.write("Upload result files from the dashboard or the CLI (`python -m alcore run ... --out run.json`), "
         "from this machine or any other. Runs of the same strategy and settings on different seeds "
         "are averaged, with a shaded band.")

uploads = result_uploads("Result files (JSON)", key="compare_files")
presets = {p.key: p for p in list_presets()}
chosen = st.selectbox("Or load a preset: results shipped with the dashboard", [None, *presets],
                      format_func={None: "none", **{k: p.name for k, p in presets.items()}}.__getitem__,
                      key="compare_preset")  # no page globals (app_pages/results.py)
results, sources = [], []
if chosen is not None:
    preset = presets[chosen]
    if preset.description:
        st.info(plain(preset.description), icon=":material/science:")
    st.caption(f"Made with `{preset.command()}`")
    try:
        loaded = _preset_results(chosen, tuple((f.name, f.stat().st_mtime_ns) for f in preset.files))
    except ResultFileError as e:
        st.error(f"The preset could not be loaded: {plain(e)}", icon=":material/block:")
        loaded = []
    results.extend(loaded)
    sources.extend([f"preset: {preset.name}"] * len(loaded))
results.extend(uploads.runs)
sources.extend(uploads.names)
race = st.session_state.get(RACE)
if race is not None and any(e.rounds for e in race.experiments):
    if st.toggle("Include this session's race", value=not uploads.uploaded and chosen is None):
        for r in race.results() + race.ceiling_results():
            results.append(r)
            sources.append("this session")
frame = curve_frame(results, sources)  # the oracle ceilings' runs too, drawn apart
results, sources, ceilings, _ = split_ceilings(results, sources)  # everything else: the strategies' runs
if not results:
    st.info("No runs to compare yet: upload result files, load a preset, or run a race on the **Run** page.")
    st.stop()

st.caption(f"{len(results)} run(s) loaded: " + ", ".join(plain(s) for s in sorted(set(sources))))
c1, c2, c3 = st.columns(3)
aggregate = c1.toggle("Average seeds", value=True)
band = c2.selectbox("Band", ["ci95", "std", "minmax"], disabled=not aggregate,
                    format_func={"ci95": "95% confidence interval", "std": "± 1 std", "minmax": "min-max"}.get)
target = target_accuracy(results, where=c3)
show_figure(learning_curve_figure(frame, aggregate=aggregate, band=band, target=target,
                                  target_name="target accuracy", title="Test accuracy vs labels"), "compare_learning_curves", key="compare_curves")

metrics = metrics_frame(results, target)
seed_stats = seed_statistics(metrics)
smallest = min(results, key=lambda r: r.dataset.n_test)  # the noisiest test set loaded
tiny = tiny_test_set(smallest.dataset.n_test, float(metrics["final_accuracy"].median()),
                     test_size=smallest.config.test_size, dataset=smallest.config.dataset)
against_random = not_better_than_random(metrics, seed_stats.pairs)
show_pitfalls([p for p in (tiny, model_selection([r.config for r in results])) if p] + unstable_curves(metrics))
fmt = metric_columns()
st.subheader("Per group (mean over seeds)")
show_table(group_metrics(metrics), "compare_metrics_per_group", column_config=fmt)
with st.expander("Per run"):
    metrics.insert(1, "file", sources)
    show_table(metrics.drop(columns=["key", "strategy"]), "compare_metrics_per_run", column_config=fmt)
show_gain_captured(results + ceilings)
st.download_button("Download these curves (CSV)", curves_csv(results), "compare_curves.csv", "text/csv",
                   on_click="ignore")

st.subheader("Statistics across seeds")
st.caption("Intervals are 95%: Student t over seeds for AULC and labels to target (clipped to what they can "
           "be: an AULC within 0-1, no negative labels); labels to target "
           "counts only the runs that reached it (the others are censored, not averaged in). Efficiency is "
           "random's labels to the target divided by the group's, paired by seed, as a geometric mean with "
           "a bootstrap interval. Pairs of groups with the same settings are tested on AULC, paired by seed "
           "(Wilcoxon signed-rank, Holm-corrected over the pairs, at 0.05; paired t-test beside it).")
for note in seed_stats.notes:
    st.info(plain(note), icon=":material/info:")
num = st.column_config.NumberColumn
show_table(seed_stats.groups, "compare_statistics_per_group", column_config={
    "aulc_mean": num("AULC", format="%.4f"), "aulc_low": num("AULC low", format="%.4f"),
    "aulc_high": num("AULC high", format="%.4f"), "reached_target": "reached target",
    "labels_mean": num("labels to target", format="%.0f"), "labels_low": num("labels low", format="%.0f"),
    "labels_high": num("labels high", format="%.0f"), "efficiency": num("efficiency vs random", format="%.2fx"),
    "efficiency_low": num("efficiency low", format="%.2fx"), "efficiency_high": num("efficiency high", format="%.2fx"),
    "efficiency_seeds": num("seeds in efficiency", format="%d")})
if len(seed_stats.pairs):
    show_figure(pairwise_figure(seed_stats.pairs), "compare_pairwise_tests", key="compare_pairwise")
    with st.expander("Pairwise tests (numbers)"):
        show_table(seed_stats.pairs, "compare_pairwise_tests", column_config={
            "n_seeds": num("paired seeds", format="%d"),
            "mean_diff": num("mean AULC diff (row − column)", format="%+.4f"),
            "win_fraction": num("seeds row wins", format="percent"),
            "wilcoxon_p": num("Wilcoxon p", format="%.4g"), "t_p": num("t-test p", format="%.4g"),
            "holm_p": num("Holm p (Wilcoxon)", format="%.4g")})
for warning in pair_warnings(seed_stats.warnings):  # one warning for the pairs that share one
    st.warning(plain(warning), icon=":material/warning:")
# against random; where the seeds are too few for any verdict, the warning above says so already
said = {w.split(":", 1)[0] for w in seed_stats.warnings}
show_pitfalls([p for p in against_random if p.rule != "too_few_seeds" or " vs ".join(sorted(p.groups)) not in said])

swept = swept_settings(results)
if swept:
    st.subheader("Effect of a setting")
    s1, s2 = st.columns(2)
    setting = s1.selectbox("Setting", swept, format_func={f: SETTING_TITLES.get(f, f) for f in swept}.__getitem__,
                        key="compare_setting")
    metric = s2.radio("Metric", ["labels_to_target", "aulc"], horizontal=True, key="compare_setting_metric",
                      format_func={"labels_to_target": "labels to target", "aulc": "AULC"}.get)
    effect = setting_effect(results, setting, target)
    show_figure(setting_effect_figure(effect, metric, target), f"compare_effect_of_{setting}_{metric}",
                key="compare_setting_effect")
    if effect.friedman_p is not None:
        differ = "differ" if effect.friedman_p < 0.05 else "cannot be told apart"
        trend = ("AULC rises with it" if effect.page_p < 0.05 else
                 "AULC falls as it grows" if effect.page_falls_p < 0.05 else "no steady trend in AULC")
        st.markdown(plain(f"Across the {effect.blocks} seeds run at every value, the values of {setting} "
                          f"{differ} in AULC (Friedman test, p = {effect.friedman_p:.3g}); {trend} "
                          f"(Page's trend test, p = {effect.page_p:.3g} rising, {effect.page_falls_p:.3g} "
                          f"falling). Both pair the runs by seed."))
    for note in effect.notes:
        st.caption(plain(note))
    show_table(effect.summary, f"compare_effect_of_{setting}", column_config={
        "value": num(setting, format="%g"), "seeds": num("seeds", format="%d"),
        "aulc_mean": num("AULC", format="%.4f"), "aulc_low": num("AULC low", format="%.4f"),
        "aulc_high": num("AULC high", format="%.4f"), "reached_target": "reached target",
        "labels_mean": num("labels to target", format="%.0f"), "labels_low": num("labels low", format="%.0f"),
        "labels_high": num("labels high", format="%.0f"),
        "final_accuracy_mean": num("final accuracy", format="percent")})
