"""A setup as a link: the settings that differ from the defaults, as query parameters named
after the ExperimentConfig fields (the same names as the CLI flags and the result-file keys).

    ?strategies=margin&strategies=entropy&seeds=3&batch_size=20&rounds=none&label_budget=200

The race's oracle ceiling (:class:`alcore.config.RaceConfig`) is ``ceiling=true``, with
``ceiling_candidates`` and ``ceiling_validation`` where they are not their defaults.

:func:`encode` gives the parameters of a setup; :func:`decode` reads them back, validated by
ExperimentConfig itself: each parameter that cannot be applied is refused with a sentence
naming it and why, and every other parameter still applies. Nothing here raises on what a
link holds, and nothing here imports streamlit.

Value spelling: numbers as Python writes them (``0.003``, ``1e-05``: floats read back
exactly), ``true`` / ``false``, ``none`` for an optional setting that is not set (empty works
too), and a list (``hidden_units``, the race's ``strategies``) as the same key repeated
(``hidden_units=256&hidden_units=128``; ``hidden_units=256,128`` is read as well).

A link never carries a path on the server: ``data_dir``, ``data_file`` and ``embedding_file`` are left out, and so is
a dataset that needs one (``idx``, ``npz``): whoever opens the link chooses that data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Union, get_args
from urllib.parse import urlencode, urlsplit

from pydantic import ValidationError

from alcore.config import ExperimentConfig
from alcore.serve.limits import DeploymentLimits

# The race's own settings (dashboard.state.race_settings): which strategies run, on how many
# seeds. Their defaults are the dashboard's: margin against random, one seed.
RACE_DEFAULTS = {"strategies": ("margin", "random"), "seeds": 1}
PATHS = ("data_dir", "data_file", "embedding_file")  # paths on the server: never in a link
FILE_DATASETS = ("idx", "npz", "images")  # datasets that need one of those paths
# ExperimentConfig.strategy is one run's strategy; a race names its runs' strategies with
# ``strategies``, so a link has that one name for the concept.
SINGLE_STRATEGY = "strategy"
LINK_FIELDS = tuple(f for f in ExperimentConfig.model_fields if f not in PATHS + (SINGLE_STRATEGY,))
LIST_FIELDS = ("hidden_units", "strategies")
# Every parameter this module reads and writes; a page keeps the others (e.g. the Run page's
# ``run``) as they are.
# The race's oracle ceiling (alcore.config.RaceConfig's fields; off by default).
CEILING_LINK = ("ceiling", "ceiling_candidates", "ceiling_validation")
OWNED = frozenset(LINK_FIELDS) | frozenset(RACE_DEFAULTS) | frozenset(CEILING_LINK)
# Parameters of other parts of the dashboard (the Run page's saved race) and of Streamlit
# itself: not settings, never reported as unknown.
OTHER_PARAMS = frozenset({"run", "embed", "embed_options"})
MAX_VALUE_CHARS = 200  # longer is not a setting; refused before parsing
SHOWN_CHARS = 40  # how much of a refused value a message quotes

Params = Mapping[str, Union[str, Sequence[str]]]


@dataclass
class LinkSetup:
    """What :func:`decode` read from a link.

    ``config``: the base config with every applicable setting of the link applied.
    ``strategies`` / ``seeds``: the race's, or None where the link does not set them.
    ``applied``: the parameter names applied. ``problems``: one plain sentence per parameter
    that was refused (it names the parameter, the value and why). ``refused``: those names."""

    config: ExperimentConfig
    strategies: Optional[list[str]] = None
    seeds: Optional[int] = None
    ceiling: dict = field(default_factory=dict)  # the oracle ceiling's fields the link sets
    applied: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- encode

def _text(value) -> Union[str, list[str]]:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    if isinstance(value, (tuple, list)):
        return [str(v) for v in value]
    return str(value)


def encode(config: ExperimentConfig, strategies: Sequence[str] = RACE_DEFAULTS["strategies"],
           seeds: int = RACE_DEFAULTS["seeds"], ceiling: Optional[Mapping] = None) -> dict[str, Union[str, list[str]]]:
    """The query parameters of a setup: the race's strategies and seeds where they are not the
    defaults, its oracle ceiling's settings (``ceiling``: RaceConfig's fields) where they are not,
    then every config field (in declaration order) whose value is not its default.
    Paths, and a dataset that needs one, are left out (see :func:`left_out`)."""
    from alcore.config import RaceConfig

    out: dict[str, Union[str, list[str]]] = {}
    if tuple(strategies) != RACE_DEFAULTS["strategies"]:
        out["strategies"] = list(strategies)
    if int(seeds) != RACE_DEFAULTS["seeds"]:
        out["seeds"] = str(int(seeds))
    for name, value in (ceiling or {}).items():
        if name in CEILING_LINK and value != RaceConfig.model_fields[name].default:
            out[name] = _text(value)
    default = ExperimentConfig()
    for name in LINK_FIELDS:
        value = getattr(config, name)
        if value == getattr(default, name) or (name == "dataset" and value in FILE_DATASETS) or (
                name == "embedding" and value == "file"):
            continue
        out[name] = _text(value)
    return out


def left_out(config: ExperimentConfig) -> list[str]:
    """The settings of ``config`` a link cannot carry, as plain phrases (empty when none)."""
    out = []
    if config.dataset in FILE_DATASETS:
        out.append(f"the dataset ({config.dataset}: "
                   + {"npz": "an uploaded .npz file", "images": "an uploaded .zip of images"}.get(
                       config.dataset, "a folder on the server") + ")")
    elif config.data_dir:
        out.append("the data folder on the server (data_dir)")
    if config.embedding == "file":
        out.append("the embeddings (an uploaded .npz file)")
    return out


def query_string(params: Mapping[str, Union[str, Sequence[str]]]) -> str:
    """``params`` as Streamlit writes them into the address (repeated keys for lists)."""
    return urlencode({k: (v if isinstance(v, str) else list(v)) for k, v in params.items()}, doseq=True)


def share_url(base_url: Optional[str], params: Mapping[str, Union[str, Sequence[str]]]) -> str:
    """The link to a page (``base_url``, without a query; None gives a relative link) with ``params``."""
    query = query_string(params)
    base = base_url or ""
    if base and not urlsplit(base).path:
        base += "/"  # http://host:8501 -> http://host:8501/
    return base + (f"?{query}" if query else "")


# ---------------------------------------------------------------------------- decode

def _shown(text: str) -> str:
    """A value from a link as a message quotes it: printable characters only, and short."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return clean if len(clean) <= SHOWN_CHARS else clean[:SHOWN_CHARS] + "..."


def _reason(err: ValidationError) -> str:
    msg = err.errors()[0]["msg"].removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]


def _optional(name: str) -> bool:
    return type(None) in get_args(ExperimentConfig.model_fields[name].annotation)


def _floaty(name: str) -> bool:
    ann = ExperimentConfig.model_fields[name].annotation
    return ann is float or float in get_args(ann)


_REFUSED = object()  # a parameter's value was refused (and the refusal recorded)


class _Decoder:
    """The state of one :func:`decode`: the setup so far, and the pages' narrower ranges."""

    def __init__(self, base: ExperimentConfig, ranges: Mapping[str, tuple],
                 limits: Optional[DeploymentLimits] = None):
        self.base, self.ranges, self.limits = base, dict(ranges), limits
        self.out = LinkSetup(config=base)
        self.pending: dict[str, object] = {}  # config fields still to apply
        self.raw: dict[str, str] = {}  # each parameter as given, for the messages

    def refuse(self, name: str, why: str, value: Optional[str] = None) -> None:
        head = f"{_shown(name)}={_shown(value)}" if value is not None else _shown(name)
        self.out.problems.append(f"The link's {head} was not applied: {why}.")
        self.out.refused.append(name)

    def in_range(self, name: str, value) -> Optional[str]:
        if name not in self.ranges or value is None:
            return None
        low, high = self.ranges[name]
        if (low is not None and value < low) or (high is not None and value > high):
            return f"the dashboard takes {low:g} to {high:g} here"
        return None

    def refused_name(self, name: str, values: list[str], joined: str) -> bool:
        """Refuse a parameter this dashboard never takes from a link (a path, an unknown name,
        a file dataset, an over-long value); whether it was."""
        why = None
        if name in PATHS:
            self.refuse(name, "a link never carries a path on the server; choose the data on the Dataset page")
            return True
        if name == SINGLE_STRATEGY:
            why = ("a link names the race's strategies with strategies= (repeated for each), "
                   "e.g. strategies=margin&strategies=random")
        elif name not in OWNED:
            why = "this dashboard has no setting of that name"
        elif name == "dataset" and joined in FILE_DATASETS:
            why = ("that dataset needs a file or folder, which a link never carries; choose the data "
                   "on the Dataset page")
        elif any(len(v) > MAX_VALUE_CHARS for v in values):
            why = f"longer than {MAX_VALUE_CHARS} characters"
        if why:
            self.refuse(name, why, joined)
        return why is not None

    def value(self, name: str, values: list[str], joined: str):
        """The parameter's value: a list for list fields, None for 'none' in an optional field,
        else the text (pydantic converts it); :data:`_REFUSED` where it was refused."""
        if name in LIST_FIELDS:
            items = [p.strip() for v in values for p in v.split(",") if p.strip()]
            if not items:
                self.refuse(name, "it is empty", joined)
                return _REFUSED
            return items
        if len(values) != 1:
            self.refuse(name, f"it is given {len(values)} times; a link gives it once", joined)
            return _REFUSED
        text = values[0].strip()
        if (name == "ceiling_candidates" or name in ExperimentConfig.model_fields and _optional(name)) \
                and text.lower() in ("none", ""):
            return None
        if text == "":
            self.refuse(name, "it is empty")
            return _REFUSED
        if name in ExperimentConfig.model_fields and _floaty(name):
            try:
                if not math.isfinite(float(text)):
                    self.refuse(name, "it must be a finite number", text)
                    return _REFUSED
            except ValueError:
                pass  # pydantic says what is wrong with it
        return text

    def strategies(self, value: list[str], joined: str) -> None:
        from alcore.strategies.base import STRATEGIES

        name = "strategies"
        known = list(dict.fromkeys(s for s in value if s in STRATEGIES))
        unknown = [s for s in value if s not in STRATEGIES]
        if unknown:
            why = (f"{', '.join(_shown(s) for s in unknown[:5])} "
                   f"{'is not a strategy' if len(unknown) == 1 else 'are not strategies'} "
                   f"(choose from {', '.join(STRATEGIES)})")
            if known:  # the known ones still race
                self.out.problems.append(f"The link's {name}={_shown(joined)} was applied in part: {why}; "
                                         f"racing {', '.join(known)}.")
            else:
                self.refuse(name, why, joined)
        if known:
            self.out.strategies = known
            self.out.applied.append(name)

    def ceiling(self, name: str, value, joined: str) -> None:
        """One of the oracle ceiling's settings, checked by RaceConfig (against the strategies raced
        when the race starts)."""
        from alcore.config import RaceConfig

        try:
            checked = RaceConfig(base=ExperimentConfig(), strategies=["random"], seeds=[0], **{name: value})
        except ValidationError as e:
            self.refuse(name, _reason(e), joined)
            return
        self.out.ceiling[name] = getattr(checked, name)
        self.out.applied.append(name)

    def seeds(self, value, joined: str) -> None:
        name = "seeds"
        try:
            seeds = int(value)
        except (TypeError, ValueError):
            self.refuse(name, "it must be a whole number", joined)
            return
        why = self.in_range(name, seeds) or ("it must be at least 1" if seeds < 1 else None)
        if why:
            self.refuse(name, why, joined)
            return
        self.out.seeds = seeds
        self.out.applied.append(name)

    def over_limits(self, trial: ExperimentConfig, current: ExperimentConfig) -> Optional[str]:
        """The server's caps ``trial`` goes over that ``current`` does not (None when within them)."""
        if self.limits is None:
            return None
        strategies = self.out.strategies or list(RACE_DEFAULTS["strategies"])
        n_runs = len(strategies) * (self.out.seeds or RACE_DEFAULTS["seeds"])
        before = self.limits.run_problems(current, strategies, n_runs) + self.pool_over(current)
        after = self.limits.run_problems(trial, strategies, n_runs) + self.pool_over(trial)
        if len(after) <= len(before):
            return None
        return "; ".join([p for p in after if p not in before][:2] or after[-1:])

    def pool_over(self, config: ExperimentConfig) -> list[str]:
        """A pool_size over the server's max_pool_size: refused by name, not cut down to the cap
        by the Dataset page's widget without a word. (An empty pool_size, the whole split, is
        the Dataset page's to refuse: the split's size is known once the data is chosen.)"""
        return self.limits.pool_problems(config) if config.pool_size is not None else []

    def within_runs(self) -> None:
        """Refuse the link's seeds (or, without them, its strategies) when strategies x seeds
        is over the server's runs per race."""
        cap = self.limits.max_runs_per_race if self.limits is not None else None
        out = self.out
        strategies = out.strategies or list(RACE_DEFAULTS["strategies"])
        seeds = out.seeds or RACE_DEFAULTS["seeds"]
        if cap is None or len(strategies) * seeds <= cap:
            return
        why = (f"{len(strategies)} strategies x {seeds} seed(s) make {len(strategies) * seeds} runs; this server "
               f"allows at most {cap} runs per race")
        if out.seeds is not None:
            self.refuse("seeds", why, str(out.seeds))
            out.applied.remove("seeds")
            out.seeds = None
        if out.strategies is not None and len(out.strategies) * RACE_DEFAULTS["seeds"] > cap:
            self.refuse("strategies", why.replace(f"x {seeds} seed(s)", f"x {RACE_DEFAULTS['seeds']} seed(s)"),
                        ",".join(out.strategies))
            out.applied.remove("strategies")
            out.strategies = None

    def ceiling_over(self, ceiling: Mapping) -> list[str]:
        """What the race of the link's config, strategies and seeds goes over with the oracle ceiling
        ``ceiling`` (RaceConfig's fields) that it is within without it, checked as Start checks it
        (RaceConfig, then DeploymentLimits.run_problems with RaceConfig.ceiling_costs)."""
        from alcore.config import RaceConfig

        out = self.out
        strategies = out.strategies or list(RACE_DEFAULTS["strategies"])
        seeds = out.seeds or RACE_DEFAULTS["seeds"]
        try:
            race = RaceConfig.counted(out.config, strategies, seeds, **ceiling)
        except ValidationError as e:
            return [_reason(e)]
        if self.limits is None:
            return []
        n_runs = len(strategies) * seeds
        before = self.limits.run_problems(out.config, strategies, n_runs)
        return [p for p in self.limits.run_problems(out.config, strategies, n_runs, **race.ceiling_costs())
                if p not in before]

    def within_ceiling(self) -> None:
        """Refuse the oracle ceiling's settings of the link that Start would refuse with the rest of
        it: ceiling_candidates below the strategies raced, or a limit of this server the ceiling takes
        the race over (its runs per race, gradient steps or images scored per round). The link's
        ceiling_candidates or ceiling_validation go first where the ceiling fits without them (the
        defaults then apply), else ceiling=true itself; each with the sentence of what it goes over."""
        mine = self.out.ceiling
        if not mine.get("ceiling") or not (over := self.ceiling_over(mine)):
            return
        given = [n for n in ("ceiling_candidates", "ceiling_validation") if n in mine]
        tries = [[n] for n in given] + ([given] if len(given) > 1 else [])
        drop = next((t for t in tries if not self.ceiling_over({k: v for k, v in mine.items() if k not in t})),
                    ["ceiling"])
        for name in drop:
            self.refuse(name, "; ".join(over[:2]), self.raw.get(name, _text(mine[name])))
            self.out.applied.remove(name)
            del mine[name]

    def apply_pending(self) -> ExperimentConfig:
        """Fields that are only valid together (rounds=none needs label_budget or a target) apply
        once their partners have: keep passing over the rest until nothing more applies."""
        applied: dict[str, object] = {}
        config = self.base
        last_error: dict[str, str] = {}
        progress = True
        while self.pending and progress:
            progress = False
            for name in list(self.pending):
                try:
                    trial = self.base.replace(**applied, **{name: self.pending[name]})
                except ValidationError as e:
                    last_error[name] = _reason(e)
                    continue
                why = self.in_range(name, getattr(trial, name))
                if why:
                    self.refuse(name, why, self.raw[name])
                    del self.pending[name]
                    continue
                over = self.over_limits(trial, config)
                if over:  # another setting of the link may yet bring it within the caps
                    last_error[name] = over
                    continue
                applied[name] = self.pending.pop(name)
                config = trial
                self.out.applied.append(name)
                progress = True
        for name in self.pending:
            self.refuse(name, last_error.get(name, "it cannot be combined with the other settings"), self.raw[name])
        return config


def decode(params: Params, base: Optional[ExperimentConfig] = None, *,
           ranges: Optional[Mapping[str, tuple]] = None, limits: Optional[DeploymentLimits] = None) -> LinkSetup:
    """Read a link's query parameters (``{name: value or [values]}``, as
    ``st.query_params.get_all`` gives them) onto ``base`` (default: the defaults).

    Each parameter is validated by ExperimentConfig with the others: a value outside a field's
    limits, of the wrong type, or that no setting of the others can make valid (a label budget
    below the initial labels) is refused with a sentence naming it, and the rest applies.
    Settings that only make sense together (``rounds=none&label_budget=200``) apply in any
    order. ``ranges``: ``{name: (low, high)}`` narrower limits of the page that shows a setting
    (the dashboard's widgets), checked too. Unknown names, paths, repeated single values and
    values over MAX_VALUE_CHARS are refused; the parameters in OTHER_PARAMS are left alone.
    ``limits``: this server's caps; a setting that takes the race over one (a model too large,
    too many gradient steps, runs, rounds...) is refused with the cap's own sentence, before
    anything is built: see :meth:`DeploymentLimits.run_problems`."""
    d = _Decoder(base or ExperimentConfig(), ranges or {}, limits)
    for name, given in params.items():
        values = [given] if isinstance(given, str) else [str(v) for v in given]
        if name in OTHER_PARAMS or name.lower() in ("embed", "embed_options"):
            continue
        joined = ",".join(values)
        if d.refused_name(name, values, joined):
            continue
        value = d.value(name, values, joined)
        if value is _REFUSED:
            continue
        d.raw[name] = joined
        if name == "strategies":
            d.strategies(value, joined)
        elif name == "seeds":
            d.seeds(value, joined)
        elif name in CEILING_LINK:
            d.ceiling(name, value, joined)
        else:
            d.pending[name] = value
    d.within_runs()
    d.out.config = d.apply_pending()
    d.within_ceiling()
    return d.out
