"""Widgets bound to ExperimentConfig's fields.

A setup widget's key is "w_<field>", initialised from the stored config; its label, help and
(for a choice) options come from the field itself, and what the page read is written back
through ExperimentConfig's own validation (commit). So a page shows the same names, choices
and limits as the CLI and the JSON.
"""
from __future__ import annotations

import typing

import streamlit as st
from pydantic import ValidationError

from alcore import ExperimentConfig
from dashboard.display import plain
from dashboard.state import CONFIG, WIDGET_PREFIX, config, sync_link

# The limits of the dashboard's widgets where they are narrower than ExperimentConfig's own
# (a widget refuses to draw a value outside them). A link's value beyond them is refused by
# name (dashboard.links); tests/test_share_page.py checks these against the widgets the pages draw.
WIDGET_RANGES = {
    "batch_size": (1, 100_000), "dropout": (0.0, 0.9), "dense_dropout": (0.0, 0.9), "learning_rate": (1e-6, 10.0),
    "momentum": (0.0, 0.99),
    "patience": (1, 1000), "validation_fraction": (0.05, 0.5), "uncertainty_threshold": (0.0, 0.99),
    "changed_threshold": (0.0, 0.99), "seeds": (1, 20), "probcover_purity": (0.5, 0.99),
}


ACRONYMS = {"mc": "MC", "cv": "CV"}  # a field's words as a label writes them ("Mc passes" read oddly)


def label(field: str) -> str:
    words = field.split("_")
    return " ".join(ACRONYMS.get(w, w) for w in [words[0].capitalize() if words[0] not in ACRONYMS else words[0],
                                                   *words[1:]])


def help_text(field: str) -> str:
    return ExperimentConfig.model_fields[field].description or ""


def options(field: str) -> list:
    """The values a choice field takes, in the order its Literal declares them."""
    return list(typing.get_args(ExperimentConfig.model_fields[field].annotation))


def bind(field: str, to_widget=lambda v: v) -> str:
    """Widget key for a config field, initialised from the stored config."""
    key = WIDGET_PREFIX + field
    if key not in st.session_state:
        st.session_state[key] = to_widget(getattr(config(), field))
    return key


def bounds(field: str) -> tuple:
    """(lowest, highest) value a widget of ``field`` offers: WIDGET_RANGES where the widget is
    narrower, else the field's own inclusive bounds (None where it has none)."""
    if field in WIDGET_RANGES:
        return WIDGET_RANGES[field]
    low = high = None
    for m in ExperimentConfig.model_fields[field].metadata:
        low, high = getattr(m, "ge", low), getattr(m, "le", high)
    return low, high


def choice(field: str, choices: list | None = None, **kw):
    """A selectbox for a choice field: its label, help and options (``choices``: another order,
    or a subset) from ExperimentConfig."""
    return st.selectbox(label(field), options(field) if choices is None else choices, key=bind(field),
                        help=help_text(field), **kw)


def number(field: str, title: str | None = None, **kw):
    """A number input for ``field`` within bounds(field) unless ``kw`` says otherwise."""
    return _bounded(st.number_input, field, title, kw)


def slider(field: str, **kw):
    """A slider for ``field`` over bounds(field) unless ``kw`` says otherwise."""
    return _bounded(st.slider, field, None, kw)


def toggle(field: str):
    return st.toggle(label(field), key=bind(field), help=help_text(field))


def _bounded(widget, field: str, title: str | None, kw: dict):
    low, high = bounds(field)
    kw.setdefault("min_value", low)
    kw.setdefault("max_value", high)
    return widget(title or label(field), key=bind(field), help=help_text(field), **kw)


def commit(values: dict) -> bool:
    """Validate and store changed fields; show what is wrong, in the field's name."""
    try:
        new = config().replace(**values)
    except ValidationError as e:
        for err in e.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            st.error(f"**{label(field) if field in ExperimentConfig.model_fields else plain(field)}**: "
                     f"{plain(err['msg'].removeprefix('Value error, '))}", icon=":material/warning:")
        return False
    if new != config():
        st.session_state[CONFIG] = new
        sync_link()  # now: a page may stop before the frame syncs after it
    return True


def optional_int(field: str, what_none: str, **kw) -> int | None:
    """A number input where 0 stands for 'not set' (None)."""
    key = bind(field, lambda v: 0 if v is None else int(v))
    if kw.get("max_value") is not None and st.session_state[key] > kw["max_value"]:
        st.session_state[key] = kw["max_value"]  # a cap lowered mid-session: the widget would refuse to draw
    v = st.number_input(f"{label(field)} (0 = {what_none})", min_value=0, step=1, key=key,
                        help=help_text(field), **kw)
    return None if v == 0 else int(v)


def optional_percent(field: str, what_none: str) -> float | None:
    """A number input in percent for a fraction field (target_accuracy: 0.9 is shown as 90),
    where 0 stands for 'not set' (None); the field keeps its fraction (link, CLI, JSON)."""
    key = bind(field, lambda v: 0.0 if v is None else round(float(v) * 100, 4))
    v = st.number_input(f"{label(field)} (%; 0 = {what_none})", min_value=0.0, max_value=100.0, step=0.5,
                        format="%.1f", key=key, help=help_text(field) + " In percent here; a fraction in "
                        "links, on the command line and in result files.")
    return None if v == 0 else round(float(v) / 100, 6)


TARGET_HELP = ("'Labels to target' is how many labels a run used to first reach this test accuracy. "
               "Starts at the runs' own target_accuracy (Strategy page) where they share one, else at 95% "
               "of the best final accuracy; `python -m alcore summarize --target-accuracy` does the same "
               "(as a fraction).")


def target_accuracy(results, where=None, key: str | None = None) -> float:
    """The target accuracy of 'labels to target' (Results, Compare), in percent as every
    accuracy the pages show; returns the fraction."""
    from alcore.analysis.metrics import default_target

    shown = (where or st).number_input(f"{label('target_accuracy')} (%)", min_value=5.0, max_value=100.0,
                                       value=round(default_target(results) * 100, 1), step=0.5, format="%.1f",
                                       key=key, help=TARGET_HELP)
    return round(float(shown) / 100, 6)


def optional_float(field: str, what_none: str, **kw) -> float | None:
    key = bind(field, lambda v: 0.0 if v is None else float(v))
    v = st.number_input(f"{label(field)} (0 = {what_none})", min_value=0.0, key=key,
                        help=help_text(field), **kw)
    return None if v == 0 else float(v)


def ceiling_settings(strategies: list[str]) -> dict:
    """The oracle ceiling's toggle and settings (RaceConfig's ceiling fields), kept in this
    session's race settings; returns them. A value the race would refuse is named and not kept."""
    from alcore.config import RaceConfig
    from dashboard.state import CEILING_FIELDS, race_ceiling, race_settings

    fields, now = RaceConfig.model_fields, race_ceiling()
    keys = {f: WIDGET_PREFIX + f for f in CEILING_FIELDS}
    st.session_state.setdefault(keys["ceiling"], now["ceiling"])
    st.session_state.setdefault(keys["ceiling_candidates"], now["ceiling_candidates"] or 0)
    st.session_state.setdefault(keys["ceiling_validation"], now["ceiling_validation"])
    wanted = {"ceiling": st.toggle("Oracle ceiling", key=keys["ceiling"], help=fields["ceiling"].description + " "
                                   + CEILING_SHARE_HELP)}
    if wanted["ceiling"]:
        k = st.number_input(f"{label('ceiling_candidates')} (0 = the strategies raced + 2)", min_value=0,
                            max_value=64, step=1, key=keys["ceiling_candidates"],
                            help=fields["ceiling_candidates"].description)
        wanted["ceiling_candidates"] = None if k == 0 else int(k)
        wanted["ceiling_validation"] = int(st.number_input(
            label("ceiling_validation"), min_value=10, max_value=100_000, step=10, key=keys["ceiling_validation"],
            help=fields["ceiling_validation"].description))
    try:
        RaceConfig(base=config(), strategies=strategies or ["random"], seeds=[0], **{**now, **wanted})
    except ValidationError as e:
        for err in e.errors():
            st.error(f"**{label(str(err['loc'][0]) if err['loc'] else 'ceiling_candidates')}**: "
                     f"{plain(err['msg'].removeprefix('Value error, '))}", icon=":material/warning:")
        return now
    race_settings().update(wanted)
    return race_ceiling()


CEILING_SHARE_HELP = ("Compare shows, per strategy, the share of the oracle's gain over random it captures: "
                      "per seed, the area between the strategy's curve and random's divided by the area between "
                      "the ceiling's and random's (trapezoids over the labels all three reached), then the mean "
                      "over seeds with a 95% Student-t interval.")
