"""Reference experiments: the studies this dashboard grew from, replayed; their results in one click."""
from pathlib import Path

import numpy as np
import streamlit as st

from alcore.figures import confusion_figure
from alcore.analysis.metrics import group_confusions, group_metrics, metrics_frame
from alcore.sweep.presets import list_presets, load_preset
from alcore.results.records import ResultFileError
from dashboard.data import kept_data, stays_on
from dashboard.display import plain, show_figure, show_table
from dashboard.limits import deployment_limits
from dashboard.state import AUTOSTART, RUNNING, config, use_setup

st.title("Reference experiments")
st.write("Experiments from the notebooks and studies this dashboard grew from, replayed with the same "
         "engine. Each comes with its result files, so its curves and statistics open at once on "
         "**Compare**; or load its setup and watch it run live (smaller settings run faster; the heavy ones "
         "can take a long time on a laptop, and a public server's limits may refuse them).")


@st.cache_resource(show_spinner="Loading the result files...")
def _results(key: str, stamp: tuple):
    """A preset's runs, parsed once per process (``stamp``: file names and times). Read-only."""
    return load_preset(next(p for p in list_presets() if p.key == key))


presets = list_presets()
if not presets:
    st.info("This copy of the dashboard has no result files under `presets/`.")
    st.stop()
limits = deployment_limits()
running = st.session_state.get(RUNNING, False)
for preset in presets:
    with st.container(border=True):
        st.subheader(plain(preset.name))
        for paragraph in preset.description.split("\n\n"):
            st.markdown(plain(" ".join(paragraph.split())))
        try:
            results = _results(preset.key, tuple((f.name, f.stat().st_mtime_ns) for f in preset.files))
        except ResultFileError as e:
            st.error(f"Its result files cannot be read: {plain(e)}", icon=":material/block:")
            continue
        if results:
            best = max(r.rounds[-1].test_accuracy for r in results)
            table = group_metrics(metrics_frame(results, best))[["group", "runs", "final_accuracy",
                                                                 "final_accuracy_std", "aulc"]]
            show_table(table, f"reference_{preset.key}", column_config={
                "final_accuracy": st.column_config.NumberColumn("final accuracy (mean)", format="percent"),
                "final_accuracy_std": st.column_config.NumberColumn("± std over seeds", format="percent"),
                "aulc": st.column_config.NumberColumn("AULC", format="%.4f")})
            with st.expander("Confusion matrices: the last round's test predictions, summed over the seeds"):
                names = results[0].dataset.class_names
                cols = st.columns(2)
                for i, (group, (matrix, runs)) in enumerate(group_confusions(results).items()):
                    acc = np.trace(matrix) / max(matrix.sum(), 1)
                    cols[i % 2].markdown(f"**{plain(group)}**")  # in full: a figure title would be cut
                    show_figure(confusion_figure(matrix, names, f"{acc:.2%} correct over {runs} run(s)"),
                                f"confusion_{preset.key}_{group}", where=cols[i % 2], key=f"ref_cm_{preset.key}_{i}")
        st.caption(f"{len(results)} complete run(s) of {len(preset.cells)}; made with `{preset.command()}`")
        c1, c2 = st.columns(2)
        if c1.button("Open the results on Compare", key=f"ref_compare_{preset.key}", icon=":material/monitoring:",
                     disabled=not results):
            st.session_state["compare_preset"] = preset.key
            st.switch_page("app_pages/compare.py")
        with c2:
            chosen = {name: st.selectbox(name, values, key=f"ref_{preset.key}_{name}")
                      for name, values in preset.choices().items()}
            if st.button("Load this setup and run it live", key=f"ref_run_{preset.key}", icon=":material/play_arrow:",
                         disabled=running, help="Stop the race on the Run page first" if running else None):
                setup = preset.race_setup(chosen)
                cfg = setup.base
                if cfg.data_dir and (not limits.allow_server_paths or not Path(cfg.data_dir).is_dir()):
                    cfg = cfg.replace(data_dir=None)  # this server's own copy ($ALCORE_DATA_DIR) or a download
                if why := kept_data(config(), cfg):  # e.g. MNIST offline: nothing is loaded, Run is left as it is
                    st.error(f"{why} Nothing was loaded. {stays_on(config())}", icon=":material/cloud_off:")
                else:
                    use_setup(cfg, setup.strategies, len(setup.seeds))  # the setup pages' widgets show the loaded settings
                    st.session_state[AUTOSTART] = True
                    st.switch_page("app_pages/run.py")
