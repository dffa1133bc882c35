"""Setups shared as links: a session opened with a setup in its address starts from it, and
the sidebar shows the setup with the link that reopens it (alcore.serve.share encodes and
decodes; dashboard.state.sync_link keeps the address in line)."""
from __future__ import annotations

import streamlit as st

from alcore import ExperimentConfig
from alcore.serve.share import OWNED, LinkSetup, decode, left_out, share_url
from dashboard.data import DATA_AMOUNT, DATA_CHOICE, kept_data, stays_on
from dashboard.display import config_caption, plain
from dashboard.limits import deployment_limits
from dashboard.state import address, config, race_ceiling, race_settings, setup_params, sync_link, use_setup
from dashboard.widgets import WIDGET_RANGES

LINK_OPENED, LINK_NOTES = "link_opened", "link_notes"
MAX_LINK_PROBLEMS = 12  # a link with hundreds of junk parameters gets a count, not a wall of warnings


def keep_data(current: ExperimentConfig, setup: LinkSetup) -> str | None:
    """Where the link's data cannot be had here while the session's can (MNIST offline, with no
    copy on this server): the link's data settings are refused, the rest of it still applies, and
    what to say is returned (markdown: why, what to do, what the setup stays on). A session
    opened from such a link stood on data no page could load, and its sidebar and link said so."""
    why = kept_data(current, setup.config)
    if why is None:
        return None
    names = [n for n in setup.applied if n in DATA_CHOICE + DATA_AMOUNT]
    setup.config = setup.config.replace(**{n: getattr(current, n) for n in DATA_CHOICE + DATA_AMOUNT})
    setup.applied = [n for n in setup.applied if n not in names]
    setup.refused += names
    return (f"{why} The link's {' and '.join(f'`{n}`' for n in names)} {'was' if len(names) == 1 else 'were'} "
            f"not applied. {stays_on(current)}")


def open_link(page) -> None:
    """On a session's first script run, the setup in the address it was opened with becomes its
    setup (validated; what cannot apply is refused by name and the rest applies; data that cannot
    be had here is refused with why: keep_data). What was applied and refused is said at the top
    of that page until another page is opened."""
    if not st.session_state.get(LINK_OPENED):
        setup = decode(address(), config(), ranges=WIDGET_RANGES, limits=deployment_limits())
        kept = keep_data(config(), setup)
        if setup.applied:
            use_setup(setup.config, setup.strategies, setup.seeds, setup.ceiling)  # the setup pages' widgets show it
        for name in setup.refused:
            if name not in OWNED and name in st.query_params:
                del st.query_params[name]  # once: the address (and a link copied from it) drops it
        if setup.applied or setup.problems or kept:
            st.session_state[LINK_NOTES] = (page.title, setup.applied, setup.problems, kept)
        st.session_state[LINK_OPENED] = True  # last: a run cut short by a click applies the link again
    notes = st.session_state.get(LINK_NOTES)
    if not notes:
        return
    title, applied, problems, kept = notes
    if title != page.title:
        del st.session_state[LINK_NOTES]
        return
    if kept:
        st.error(kept, icon=":material/cloud_off:")
    if applied:
        st.info("Setup opened from the link: " + ", ".join(plain(a) for a in applied) + ".", icon=":material/link:")
    for problem in problems[:MAX_LINK_PROBLEMS]:
        st.warning(plain(problem), icon=":material/link_off:")
    if len(problems) > MAX_LINK_PROBLEMS:
        more = len(problems) - MAX_LINK_PROBLEMS
        st.warning(f"{more} more parameter{'s' if more > 1 else ''} of the link {'were' if more > 1 else 'was'} "
                   f"not applied.", icon=":material/link_off:")


def sidebar_summary(slot) -> None:
    """The setup in the sidebar, with the link that reopens it; the address is brought in line
    with it first (the frame calls this before and after the page)."""
    sync_link()
    cfg, rs = config(), race_settings()
    with slot.container():
        st.caption("Current setup")
        st.markdown(config_caption(cfg))
        st.markdown("Racing: " + ", ".join(f"`{s}`" for s in rs["strategies"]) + f"\u00a0·\u00a0{rs['seeds']}\u00a0seed(s)"
                    + ("\u00a0· oracle\u00a0ceiling" if race_ceiling()["ceiling"] else ""))
        st.caption("Link to this setup, on one line (the copy button at the box's right copies it whole; the "
                   "address bar holds the same):")
        # one line that scrolls: a URL wrapped in the narrow sidebar broke mid-word (no break points to choose
        # without changing what the copy button copies)
        st.code(share_url(st.context.url, setup_params()), language=None, wrap_lines=False)
        if missing := left_out(cfg):
            st.caption(f"The link leaves out {' and '.join(missing)}: whoever opens it chooses the data on the "
                       f"Dataset page; every other setting applies.")
        limits = deployment_limits()
        if limits.active:
            caps = limits.describe()
            with st.expander(f"Limits on this server ({len(caps)})"):  # folded: 15 caps pushed the setup away
                st.caption(" · ".join(caps))
