"""Router of the active-learning dashboard: `streamlit run app.py`."""
import streamlit as st

# An emoji tab icon: the browser draws it from a data URL, where a :material/...: one is fetched
# from fonts.gstatic.com on every visit (a request an offline or private deployment must not make).
st.set_page_config(page_title="Active learning explorer", page_icon="🎯", layout="wide")

from dashboard.display import figure_downloads, page_style  # noqa: E402
from dashboard.limits import deployment_limits  # noqa: E402
from dashboard.links import open_link, sidebar_summary  # noqa: E402
from dashboard.state import remember_visitor  # noqa: E402
from dashboard.streamlit_fixes import fixed_mmap_threshold, install_after_run_cleanup  # noqa: E402

# Streamlit's own cleanup would clear Keras' and TensorFlow's state after every script run of
# every session; large arrays get their own mmap (dashboard/streamlit_fixes.py, bench/soak.py).
install_after_run_cleanup()
fixed_mmap_threshold()

pages = [
    st.Page("app_pages/dataset.py", title="Dataset", icon=":material/image:", default=True),
    st.Page("app_pages/model.py", title="Model", icon=":material/neurology:"),
    st.Page("app_pages/strategy.py", title="Strategy", icon=":material/target:"),
    st.Page("app_pages/run.py", title="Run", icon=":material/play_arrow:"),
    st.Page("app_pages/oracle.py", title="Be the oracle", icon=":material/touch_app:"),
    st.Page("app_pages/results.py", title="Results", icon=":material/search:"),
    st.Page("app_pages/replay.py", title="Replay", icon=":material/replay:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/monitoring:"),
    st.Page("app_pages/reference.py", title="Reference experiments", icon=":material/school:"),
]
page = st.navigation(pages)
deployment_limits()  # a limit that cannot be read stops every page here, naming the setting
open_link(page)  # a session opened with a setup in its address starts from it (st.query_params)
summary = st.sidebar.empty()
sidebar_summary(summary)  # also writes the setup into the address
figure_downloads()  # an SVG button beside every figure's PNG camera
remember_visitor()  # the browser keeps the key to the races it starts (a cookie; never in an address)
page_style()  # gaps between gallery images
page.run()
sidebar_summary(summary)  # again, now with what the page just stored (a page that stops keeps the first)
