"""Compare page, "Phase transition": the budget at which an uncertainty strategy overtakes a
typicality strategy raced on the same seeds, with its interval over seeds
(:mod:`alcore.analysis.crossover`), as sentences and a table; the page marks it on the curves
(:func:`alcore.figures.mark_crossovers`)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from alcore.analysis.crossover import CONFIDENCE, Crossover
from alcore.analysis.stats import tests_at_budgets
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
    """One row per (typicality, uncertainty) pair: what the section's table shows (its sentences
    stand above it)."""
    return pd.DataFrame([{"typicality": c.a, "uncertainty": c.b, "seeds": c.seeds,
                          "overtakes at": c.budget if c.status != "never" else None,
                          "low": c.low, "high": c.high, "never crosses": c.no_crossover_share,
                          "race ends at": c.last_budget} for c in crossovers],
                        columns=["typicality", "uncertainty", "seeds", "overtakes at", "low", "high",
                                 "never crosses", "race ends at"])


EARLY_BUDGETS = 2  # the first budgets of the race, where typicality should lead


def early_tests(crossovers: list[Crossover], frame: pd.DataFrame) -> pd.DataFrame:
    """The paired tests against random (:func:`alcore.analysis.stats.tests_at_budgets`) of the
    strategies in ``crossovers`` at the race's first :data:`EARLY_BUDGETS` budgets; empty
    without a random run of the same settings."""
    groups = {c.a for c in crossovers} | {c.b for c in crossovers}
    budgets = sorted({b for c in crossovers for b in c.budgets})[:EARLY_BUDGETS]
    randoms = [g for g, k in zip(frame["group"], frame["key"]) if k.is_baseline]
    if not randoms:
        return tests_at_budgets(None, budgets, "random")
    table = tests_at_budgets(frame[frame["group"].isin(groups | set(randoms))], budgets, randoms[0])
    return table[table["group"].isin(groups)]


def show_phase_transition(crossovers: list[Crossover], frame: pd.DataFrame) -> None:
    """The section, where the runs hold a typicality and an uncertainty strategy raced on at
    least 2 shared seeds (nothing otherwise): the crossovers, then the paired tests against
    random at the first budgets, where the typicality strategies should lead."""
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
    early = early_tests(crossovers, frame)
    if len(early):
        st.caption(f"Test accuracy against {early['versus'].iloc[0]} at the first budgets, paired by seed (Wilcoxon "
                   f"signed-rank, Holm-corrected over the {early.attrs.get('comparisons', len(early))} comparisons "
                   f"of this table, at 0.05; paired t-test beside it).")
        show_table(early.drop(columns=["versus", "wilcoxon_method"]), "compare_phase_transition_early",
                   column_config={
                       "n_labeled": num("labels", format="%d"), "n_seeds": num("paired seeds", format="%d"),
                       "mean": num("accuracy", format="percent"), "versus_mean": num("random", format="percent"),
                       "mean_diff": num("difference", format="%+.3f"),
                       "win_fraction": num("seeds ahead", format="percent"),
                       "wilcoxon_p": num("Wilcoxon p", format="%.4g"), "t_p": num("t-test p", format="%.4g"),
                       "holm_p": num("Holm p", format="%.4g")})
