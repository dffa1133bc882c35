"""The oracle ceiling where one run is inspected round by round (Results, Replay): its name where
a page names who picked, the candidate batches of a round with who proposed each, their
validation accuracy and loss and the one kept, and a line where a page shows something the
ceiling does otherwise (its validation images on the pool map, the uncertainty scores it does not
pick by). It is a reference, never a strategy: the pages keep it out of their statistics."""
from __future__ import annotations

import streamlit as st

from alcore.analysis.ceiling import candidates_frame
from alcore.results.records import CEILING, RunResult, strategy_label
from dashboard.display import plain, show_table


def is_ceiling(result: RunResult) -> bool:
    return result.ceiling is not None


def picker(result: RunResult) -> str:
    """Who picks the run's batches, as the pages name it: 'margin', 'hybrid 30%', 'oracle ceiling'
    (whose config names random: it draws its random candidate batches with it)."""
    return CEILING if is_ceiling(result) else strategy_label(result.config)


def colour_name(result: RunResult) -> str:
    """The name a figure colours the run by (alcore.figures.group_colors): the ceiling its own."""
    return CEILING if is_ceiling(result) else result.config.strategy


def file_stem(result: RunResult) -> str:
    """The start of a run's download names: 'digits_margin_seed0', 'digits_ceiling_seed0'."""
    what = "ceiling" if is_ceiling(result) else result.config.strategy
    return f"{result.config.dataset}_{what}_seed{result.config.seed}"


def batch_heading(result: RunResult, rnd, when: str) -> str:
    """The heading over the gallery of a round's picks (markdown; ``when``: 'after this round',
    'in round 3'): for the ceiling, the batch it kept and who proposed it."""
    n = len(rnd.selected)
    if rnd.ceiling is None:
        return f"**The batch {plain(picker(result))} picked {when}** ({n} images)"
    c = rnd.ceiling
    return (f"**The batch the {CEILING} kept {when}** ({n} images; candidate {c.chosen + 1} of "
            f"{len(c.proposers)}, proposed by {plain(c.proposers[c.chosen])})")


def show_candidates(result: RunResult, rnd, key: str) -> None:
    """The ceiling's candidate batches of round ``rnd`` as a table (nothing for a strategy's run)."""
    if not is_ceiling(result) or rnd.ceiling is None:
        return  # a round that picks nothing has no candidates: the page says the run stopped
    n_val = len(result.ceiling.validation_indices)
    st.markdown(f"**The {CEILING}'s {len(rnd.ceiling.proposers)} candidate batches this round**")
    num = st.column_config.NumberColumn
    show_table(candidates_frame(rnd.ceiling), f"ceiling_candidates_{key}", column_config={
        "candidate": num("candidate", format="%d"), "proposer": "proposed by",
        "validation_accuracy": num("validation accuracy", format="percent"),
        "validation_loss": num("validation loss", format="%.4f"),
        "kept": st.column_config.CheckboxColumn("kept")})
    st.caption(f"Each candidate: the model trained on the ceiling's labels plus that batch, scored on its {n_val:,} "
               "validation images (labelled pool images it never picks nor trains on); it keeps the most accurate "
               "(ties: the lower loss, then the first proposed). Each raced strategy proposes one batch, asked on the "
               "ceiling's own labels and model; the rest are random. Greedy, and it peeks at labels no strategy has: "
               "a reference, never counted with the strategies.")


def map_note(result: RunResult) -> str | None:
    """What the pool map draws differently for the ceiling (its validation images), in one line."""
    if not is_ceiling(result):
        return None
    return (f"The {CEILING}'s {len(result.ceiling.validation_indices):,} validation images are drawn as unlabeled: "
            "their labels chose its batches, but it never trained on them.")


def not_by_scores(result: RunResult) -> str:
    """Why the uncertainty scores of "Why this image?" are not how the run picked, in one line."""
    if is_ceiling(result):
        return (f"The {CEILING} does not pick by these scores: it keeps the candidate batch whose model is most "
                "accurate on its validation images (the table above). They show how an uncertainty strategy "
                "would have ranked the image in this round.")
    return (f"{plain(picker(result))} does not pick by these scores; they show how an uncertainty strategy would "
            "have ranked the image in this round.")
