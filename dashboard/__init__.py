"""The dashboard's own code that is not a page: everything that imports streamlit besides
app.py and app_pages/. alcore never imports it; it never imports app_pages (both checked by
import-linter, pyproject.toml).

    state          this session's setup and objects in st.session_state, mirrored in the address
    display        text as text, figures and tables with their downloads, warnings
    widgets        widgets bound to ExperimentConfig's fields (names, options, help, ranges)
    links          a setup opened from a link; the sidebar's setup and link
    limits         the deployer's limits and the run slots, as the pages meet them
    data           the prepared dataset of a config, shared read-only between sessions
    uploads        uploaded .npz files kept on disk; result files loaded or refused
    race_session   RaceSession: start, stop, continue, save and reopen this session's race
    oracle_session the person's run on Be the oracle: open, label, submit
    replay_session a round's model retrained (kept per session), pool maps, clicks on the map
    streamlit_fixes  a long-lived server: Keras left alone after each run, large arrays mmapped
"""
