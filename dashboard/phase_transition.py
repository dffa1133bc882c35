"""Compare page, "Phase transition": the budget at which an uncertainty strategy overtakes a
typicality strategy raced on the same seeds, with its interval over seeds
(:mod:`alcore.analysis.crossover`), as sentences and a table; the page marks it on the curves
(:func:`alcore.figures.mark_crossovers`)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from alcore.analysis.crossover import CONFIDENCE, Crossover
from dashboard.display import plain, show_table

EXPLANATION = (
    "At tiny budgets labelling typical images that cover the pool (typiclust, probcover, maxherding, "
    "uherding) tends to beat uncertainty sampling; past a budget that depends on the features, uncertainty "
    "wins (Hacohen et al. 2022). The crossover is the first budget from which the uncertainty strategy's "
    "mean accuracy, paired by seed, stays above the typicality strategy's to the end of the race. Its "
    f"{CONFIDENCE:.0%} interval: the seeds resampled with replacement (a paired bootstrap) and the crossover "
    "found again each time; the share of resamples that never cross is shown beside it. The dotted line on "
    "the curves is the crossover, the shaded band its interval.")


def crossover_table(crossovers: list[Crossover]) -> pd.DataFrame:
    """One row per (typicality, uncertainty) pair: what the section's table shows."""
    return pd.DataFrame([{"typicality": c.a, "uncertainty": c.b, "seeds": c.seeds,
                          "overtakes at": c.budget if c.status != "never" else None,
                          "low": c.low, "high": c.high, "never crosses": c.no_crossover_share,
                          "race ends at": c.last_budget, "finding": c.sentence()} for c in crossovers],
                        columns=["typicality", "uncertainty", "seeds", "overtakes at", "low", "high",
                                 "never crosses", "race ends at", "finding"])


def show_phase_transition(crossovers: list[Crossover]) -> None:
    """The section, where the runs hold a typicality and an uncertainty strategy raced on at
    least 2 shared seeds (nothing otherwise)."""
    if not crossovers:
        return
    st.subheader("Phase transition")
    st.caption(EXPLANATION)
    for c in crossovers:
        st.markdown(plain(c.sentence()))
    num = st.column_config.NumberColumn
    show_table(crossover_table(crossovers), "compare_phase_transition", column_config={
        "seeds": num("paired seeds", format="%d"), "overtakes at": num("overtakes at (labels)", format="%d"),
        "low": num(f"{CONFIDENCE:.0%} low", format="%d"), "high": num(f"{CONFIDENCE:.0%} high", format="%d"),
        "never crosses": num("resamples that never cross", format="percent"),
        "race ends at": num("race ends at (labels)", format="%d")})
