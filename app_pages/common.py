"""State and widget helpers shared by the pages (UI only; computation is in alcore).

One ExperimentConfig lives in st.session_state["config"]; widgets are bound to its
fields by name ("w_<field>") and written back through ExperimentConfig's own
validation, so a page shows the same names and limits as the CLI and JSON.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

import streamlit as st
from pydantic import ValidationError
from streamlit.errors import StreamlitSecretNotFoundError
from streamlit.runtime.scriptrunner import get_script_run_ctx

from alcore import ExperimentConfig
from alcore.data.datasets import Dataset, DatasetCache, DatasetUnavailableError, load_raw
from alcore.serve.limits import DeploymentLimits, DeploymentLimitsError, RunSlots, whole_pool_size
from alcore.serve.share import OWNED, RACE_DEFAULTS, decode, encode, left_out, share_url

CONFIG, RACE_SETTINGS, RACE, CACHE, RUNNING = "config", "race_settings", "race", "trainer_cache", "running"
RACE_LOCK = "race_lock"
AUTOSTART = "autostart"  # set by Reference experiments: the Run page starts the race set up


def config() -> ExperimentConfig:
    if CONFIG not in st.session_state:
        st.session_state[CONFIG] = ExperimentConfig()
    return st.session_state[CONFIG]


def race_settings() -> dict:
    return st.session_state.setdefault(RACE_SETTINGS, {"strategies": list(RACE_DEFAULTS["strategies"]),
                                                       "seeds": RACE_DEFAULTS["seeds"]})


# Markdown punctuation, escaped with a backslash so it shows as itself.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&=])")
_WORD_JOINER = "\u2060"  # invisible; breaks what escapes cannot (see plain)


def plain(text) -> str:
    """``text`` as it reads, for elements that render markdown (st.markdown, captions,
    alerts, image captions): no links, images, emphasis, maths or HTML from a file's
    class names, a file name or an error message that echoes them.

    Backslash escapes stop markdown syntax; Streamlit's :emoji: and :material/icon:
    shortcodes and bare http:// / www. / e-mail autolinks are found after escapes are
    undone, so an invisible word joiner after ':', '@' and 'www' breaks them instead."""
    text = _MARKDOWN.sub(r"\\\1", str(text))
    text = re.sub(r"([:@])", r"\1" + _WORD_JOINER, text)
    return re.sub(r"(?i)(www)(\\\.)", r"\1" + _WORD_JOINER + r"\2", text)


def sentence(problem: str) -> str:
    """An alcore limits problem as a sentence (a leading field name such as pool_size keeps
    its spelling)."""
    first = problem.split(" ", 1)[0]
    return (problem if "_" in first else problem[:1].upper() + problem[1:]) + "."


def show_problems(problems: list[str], icon=":material/block:") -> None:
    for p in problems:
        st.error(sentence(p), icon=icon)


def label(field: str) -> str:
    return field.replace("_", " ").capitalize()


def help_text(field: str) -> str:
    return ExperimentConfig.model_fields[field].description or ""


def bind(field: str, to_widget=lambda v: v) -> str:
    """Widget key for a config field, initialised from the stored config."""
    key = "w_" + field
    if key not in st.session_state:
        st.session_state[key] = to_widget(getattr(config(), field))
    return key


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


def optional_float(field: str, what_none: str, **kw) -> float | None:
    key = bind(field, lambda v: 0.0 if v is None else float(v))
    v = st.number_input(f"{label(field)} (0 = {what_none})", min_value=0.0, key=key,
                        help=help_text(field), **kw)
    return None if v == 0 else float(v)


@st.cache_resource(show_spinner=False)
def _dataset_cache(max_mb: int | None) -> DatasetCache:
    # One cache for every session of this process, bounded by bytes (the deployer's
    # dataset_cache_mb). Arrays come back read-only: every session may share them, none
    # may change them.
    return DatasetCache(max_bytes=(1 << 62) if max_mb is None else max_mb * 1024 * 1024)


@st.cache_data(max_entries=16, show_spinner=False)
def _whole_pool_size(key: tuple, _config: ExperimentConfig) -> int:
    # Only the raw arrays' length, so a capped server refuses an oversized whole split
    # before preparing (and caching) it.
    raw = load_raw(_config)
    return whole_pool_size(len(raw.y_train), raw.x_test is not None, _config.test_size)


def _prepared(cfg: ExperimentConfig, limits: DeploymentLimits) -> tuple[Dataset | None, list[str]]:
    """The prepared dataset, or the limits problems that refuse it (DatasetUnavailableError and
    ValueError propagate)."""
    problems = limits.path_problems(cfg, upload_dir())
    if not problems:
        whole = None
        if limits.max_pool_size is not None and cfg.pool_size is None:
            whole = _whole_pool_size((cfg.dataset, cfg.data_dir, cfg.data_file, cfg.test_size), cfg)
        problems = limits.pool_problems(cfg, whole) + limits.dataset_problems(cfg)
    if problems:
        return None, problems
    return _dataset_cache(limits.dataset_cache_mb).get(cfg), []


def dataset(cfg: ExperimentConfig | None = None) -> Dataset | None:
    """The prepared dataset for a config, or None after showing why it is unavailable
    (this deployment's limits included)."""
    cfg = cfg or config()
    limits = deployment_limits()
    try:
        with st.spinner(f"Loading {cfg.dataset}..."):
            ds, problems = _prepared(cfg, limits)
            if ds is not None:
                return ds
    except DatasetUnavailableError as e:
        st.error(f"**{cfg.dataset} is not available here.** {plain(e)}", icon=":material/cloud_off:")
        return None
    except ValueError as e:
        st.error(f"**The dataset cannot be used:** {plain(e)}", icon=":material/warning:")
        return None
    show_problems(problems)
    return None


def dataset_sizes(cfg: ExperimentConfig | None = None) -> tuple[int | None, int | None]:
    """(pool images, test images) of a config's dataset where it can be had without a word
    (the Dataset page says why where it cannot); (None, None) otherwise. For advice, not runs."""
    cfg = cfg or config()
    try:
        with st.spinner(f"Loading {cfg.dataset}..."):
            ds, _ = _prepared(cfg, deployment_limits())
    except (DatasetUnavailableError, ValueError):
        ds = None
    return (None, None) if ds is None else (len(ds.y_pool), len(ds.y_test))


def upload_dir() -> Path:
    return Path(tempfile.gettempdir()) / "alcore-uploads"


def save_upload(data: bytes, name: str) -> str:
    """Keep an uploaded .npz under a name derived from its content, so identical
    uploads share one cache entry. The file is only ever read with allow_pickle=False."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = upload_dir()
    folder.mkdir(exist_ok=True)
    path = folder / f"{digest}-{Path(name).stem[:40]}.npz"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return str(path)


def run_store():
    """Where races are saved round by round ($ALCORE_RUNS_DIR, else the temp dir); each
    race is under its own unguessable id."""
    from alcore.engine.store import RunStore

    return RunStore()


def deployment_limits() -> DeploymentLimits:
    """The deployer's limits: `[limits]` in secrets.toml, overridden by ALCORE_* environment
    variables. Read on every call (cheap; Streamlit parses secrets.toml once and reloads it
    when it changes), so a change in Cloud's secrets editor applies without a reboot.
    A setting that cannot be read stops the page with its name: no limit is dropped silently."""
    try:
        secrets = st.secrets.to_dict()
    except StreamlitSecretNotFoundError as e:
        if getattr(e, "error_id", None) != "no-secrets-found":
            st.error(f"**The server's secrets.toml cannot be read:** {plain(e)}", icon=":material/error:")
            st.stop()
        secrets = {}  # no secrets file: a local run
    try:
        return DeploymentLimits.from_sources(os.environ, secrets)
    except DeploymentLimitsError as e:
        st.error(f"**This server's limits are misconfigured:** {plain(e)}", icon=":material/error:")
        st.stop()


@st.cache_resource(show_spinner=False)
def _run_slots(capacity: int | None) -> RunSlots:
    # One table for every session of this process: the point is to count them all.
    return RunSlots(capacity)


def run_slots() -> RunSlots:
    return _run_slots(deployment_limits().max_concurrent_runs)


def session_owner() -> str:
    """This browser session's id, the owner of its run slot."""
    ctx = get_script_run_ctx()
    if ctx is not None:
        return ctx.session_id
    return st.session_state.setdefault("_owner", uuid.uuid4().hex)


def busy_message(slots: RunSlots) -> str:
    n = slots.in_use()
    return (f"{n} {'run is' if n == 1 else 'runs are'} in progress on this server (the limit is "
            f"{slots.capacity}); try again in a minute.")


def race_lock() -> threading.Lock:
    """Held while this session's race computes rounds. A click (Stop, another page) starts
    the next script run at once, on another thread, while the previous one finishes the
    round in progress: the lock keeps a second run from stepping the same race, and lets a
    page wait for that round before it reads the race."""
    if RACE_LOCK not in st.session_state:
        st.session_state[RACE_LOCK] = threading.Lock()
    return st.session_state[RACE_LOCK]


def claim_run_slot() -> str | None:
    """Take (or keep) this session's run slot; the message for the visitor when every
    slot is taken. A race claims before each step, which keeps its slot from lapsing."""
    slots = run_slots()
    return None if slots.try_acquire(session_owner()) else busy_message(slots)


def race_refusal(base: ExperimentConfig, strategies: list[str], n_runs: int) -> list[str]:
    """Why this session may not compute this race now (this server's limits, or every run
    slot taken), in sentences; empty when it may, and it then holds a run slot.
    No st.* calls: button callbacks use it."""
    problems = deployment_limits().run_problems(base, strategies, n_runs)
    if problems:
        return [sentence(p) for p in problems]
    busy = claim_run_slot()
    return [busy] if busy else []


def release_run_slot() -> None:
    run_slots().release(session_owner())


@contextmanager
def one_call_within_labels(labels: int, what: str, fix: str):
    """Yields True where a computation of one script run that trains on ``labels`` labels may
    go ahead: within this server's ``max_labels`` (else it says "{what} is over this server's
    limit ...: {fix}", where ``fix`` may name the limit as ``{cap}``) and with a run slot."""
    cap = deployment_limits().max_labels
    if cap is not None and labels > cap:
        st.error(f"{what} is over this server's limit of {cap:,} labels per run: {fix.format(cap=f'{cap:,}')}.",
                 icon=":material/block:")
        yield False
        return
    with run_slot_for_one_call() as ok:
        yield ok


@contextmanager
def run_slot_for_one_call():
    """A run slot for a computation that runs within one script run (it cannot renew):
    held until the block ends, even past the lease time. Yields False (after saying why)
    when every slot is taken."""
    slots, owner = run_slots(), session_owner()
    if not slots.try_acquire(owner, expires=False):
        st.error(busy_message(slots), icon=":material/hourglass_top:")
        yield False
        return
    try:
        yield True
    finally:
        slots.release(owner)


def trainer_cache():
    """This browser session's compiled models (never shared with another session)."""
    if CACHE not in st.session_state:
        from alcore.engine.training import TrainerCache  # imports TensorFlow on first use

        st.session_state[CACHE] = TrainerCache(max_entries=3)
    return st.session_state[CACHE]


def config_caption(cfg: ExperimentConfig) -> str:
    budget = f"{cfg.rounds} rounds" if cfg.rounds is not None else f"budget {cfg.label_budget}"
    return (f"**{cfg.dataset}** · model **{cfg.model}** · {cfg.initial} initial labels · "
            f"batches of {cfg.batch_size} · {budget} · seed {cfg.seed}")


def sidebar_summary(slot) -> None:
    """The setup in the sidebar, with the link that reopens it; the address is brought in line
    with it first (the frame calls this before and after the page)."""
    sync_link()
    cfg, rs = config(), race_settings()
    with slot.container():
        st.caption("Current setup")
        st.markdown(config_caption(cfg))
        st.markdown("Racing: " + ", ".join(f"`{s}`" for s in rs["strategies"]) + f" · {rs['seeds']} seed(s)")
        st.caption("Link to this setup (the copy button is at the box's right; the address bar holds the same):")
        st.code(share_url(st.context.url, setup_params()), language=None, wrap_lines=True)
        if missing := left_out(cfg):
            st.caption(f"The link leaves out {' and '.join(missing)}: whoever opens it chooses the data on the "
                       f"Dataset page; every other setting applies.")
        limits = deployment_limits()
        if limits.active:
            st.caption("Limits on this server: " + " · ".join(limits.describe()))


# ------------------------------------------------------------------ shareable setups

LINK_OPENED, LINK_NOTES = "link_opened", "link_notes"
MAX_LINK_PROBLEMS = 12  # a link with hundreds of junk parameters gets a count, not a wall of warnings

# The limits of the dashboard's widgets where they are narrower than ExperimentConfig's own
# (a widget refuses to draw a value outside them). A link's value beyond them is refused by
# name; tests/test_share_page.py checks these against the widgets the pages draw.
WIDGET_RANGES = {
    "batch_size": (1, 100_000), "dropout": (0.0, 0.9), "dense_dropout": (0.0, 0.9), "learning_rate": (1e-6, 10.0),
    "momentum": (0.0, 0.99),
    "patience": (1, 1000), "validation_fraction": (0.05, 0.5), "uncertainty_threshold": (0.0, 0.99),
    "changed_threshold": (0.0, 0.99), "seeds": (1, 20),
}


def setup_params() -> dict:
    """This session's setup as query parameters (alcore.serve.share.encode)."""
    rs = race_settings()
    return encode(config(), rs["strategies"], rs["seeds"])


def _address() -> dict[str, list[str]]:
    return {k: st.query_params.get_all(k) for k in st.query_params}


def sync_link() -> None:
    """Write this session's setup into the page address (the settings that differ from the
    defaults, named as the config fields), keeping every other parameter (the Run page's
    ``run``) as it is. Sends nothing when the address already says it."""
    current = {k: v for k, v in _address().items() if k.lower() not in ("embed", "embed_options")}
    wanted = {k: v for k, v in current.items() if k not in OWNED}
    wanted.update({k: [v] if isinstance(v, str) else list(v) for k, v in setup_params().items()})
    if wanted != current:
        st.query_params.from_dict(wanted)


def open_link(page) -> None:
    """On a session's first script run, the setup in the address it was opened with becomes its
    setup (validated; what cannot apply is refused by name and the rest applies). What was
    applied and refused is said at the top of that page until another page is opened."""
    if not st.session_state.get(LINK_OPENED):
        params = _address()
        setup = decode(params, config(), ranges=WIDGET_RANGES, limits=deployment_limits())
        if setup.applied:
            st.session_state[CONFIG] = setup.config
            rs = race_settings()
            if setup.strategies:
                rs["strategies"] = setup.strategies
            if setup.seeds:
                rs["seeds"] = setup.seeds
            for key in [k for k in st.session_state if str(k).startswith("w_")]:
                del st.session_state[key]  # the setup pages' widgets show the link's settings
        for name in setup.refused:
            if name not in OWNED and name in st.query_params:
                del st.query_params[name]  # once: the address (and a link copied from it) drops it
        if setup.applied or setup.problems:
            st.session_state[LINK_NOTES] = (page.title, setup.applied, setup.problems)
        st.session_state[LINK_OPENED] = True  # last: a run cut short by a click applies the link again
    notes = st.session_state.get(LINK_NOTES)
    if not notes:
        return
    title, applied, problems = notes
    if title != page.title:
        del st.session_state[LINK_NOTES]
        return
    if applied:
        st.info("Setup opened from the link: " + ", ".join(plain(a) for a in applied) + ".", icon=":material/link:")
    for problem in problems[:MAX_LINK_PROBLEMS]:
        st.warning(plain(problem), icon=":material/link_off:")
    if len(problems) > MAX_LINK_PROBLEMS:
        more = len(problems) - MAX_LINK_PROBLEMS
        st.warning(f"{more} more parameter{'s' if more > 1 else ''} of the link {'were' if more > 1 else 'was'} "
                   f"not applied.", icon=":material/link_off:")


# ------------------------------------------------------------------ figures and tables

def file_stem(name: str) -> str:
    """A name as a download's file name: letters, digits, '-' and '_' only."""
    return re.sub(r"[^A-Za-z0-9-]+", "_", str(name)).strip("_")[:80] or "download"


def show_figure(fig, name: str, *, where=None, key=None, **kwargs):
    """A Plotly figure with one-click downloads named ``name``: PNG from the modebar's camera
    (Plotly's toImageButtonOptions, at twice the on-screen resolution) and SVG from the button
    that figure_downloads() puts beside it. Both are drawn by Plotly in the browser: no
    kaleido or Chrome on the server. ``where``: a column or container (default: the page);
    other arguments go to st.plotly_chart."""
    config = {"toImageButtonOptions": {"format": "png", "filename": file_stem(name), "scale": 2},
              "displaylogo": False}
    return (where or st).plotly_chart(fig, key=key, config=config, **kwargs)


def show_table(frame, name: str, *, where=None, download: bool = True, **kwargs):
    """st.dataframe with a one-click CSV download of ``frame`` under it (``name``.csv; the
    values as computed, unrounded, with the frame's own column names). ``download=False`` where
    the table is redrawn within one script run (a download button there would repeat its key);
    the table's own toolbar still exports what it shows. Other arguments go to st.dataframe."""
    where = where or st
    kwargs.setdefault("hide_index", True)
    out = where.dataframe(frame, **kwargs)
    if download:
        stem = file_stem(name)
        where.download_button("CSV", frame.to_csv(index=not kwargs["hide_index"]), f"{stem}.csv", "text/csv",
                              key=f"csv_{stem}", on_click="ignore", icon=":material/download:", type="tertiary",
                              help=f"Download this table as {stem}.csv")
    return out


# Plotly's modebar has one image button (the camera, PNG here); config cannot add a second,
# since a custom button needs a JavaScript click function. This adds an SVG button beside the
# camera when the pointer first enters a figure: it asks the camera for one SVG download by
# switching Plotly's toImageButtonOptions.format for that click (read synchronously by the
# camera). Installed once per browser tab; where it fails, the camera still gives PNG. (No '<'
# before a letter or '/' in the script: Streamlit's HTML sanitizer drops a script that has one.)
_SVG_BUTTON = """<script>
(() => {
  if (window.__alcoreSvgDownloads) return;
  window.__alcoreSvgDownloads = true;
  const PNG = '.modebar-btn[data-title="Download plot as a PNG"]';
  const add = (plot) => {
    const camera = plot.querySelector(PNG);
    if (!camera || camera.parentNode.querySelector('[data-alcore-svg]')) return;
    const button = document.createElement(camera.tagName);  // a button element in plotly.js 3
    button.className = 'modebar-btn';
    if (camera.tagName === 'BUTTON') button.setAttribute('type', 'button');
    button.setAttribute('rel', 'tooltip');
    button.setAttribute('data-gravity', camera.getAttribute('data-gravity') || 'n');
    button.setAttribute('data-title', 'Download plot as an SVG');
    button.setAttribute('data-alcore-svg', '1');
    button.setAttribute('aria-label', 'Download plot as an SVG');
    const NS = 'http://www.w3.org/2000/svg';
    const icon = document.createElementNS(NS, 'svg');
    const label = document.createElementNS(NS, 'text');
    Object.entries({viewBox: '0 0 30 16', height: '1em', width: '1.9em'}).forEach(([k, v]) => icon.setAttribute(k, v));
    Object.entries({x: '1', y: '12.5', 'font-size': '11', 'font-family': 'sans-serif', 'font-weight': '700',
      fill: getComputedStyle(camera.querySelector('path') || camera).fill || 'currentColor'})
      .forEach(([k, v]) => label.setAttribute(k, v));
    label.textContent = 'SVG';
    icon.appendChild(label);
    button.appendChild(icon);
    button.addEventListener('click', (event) => {
      event.preventDefault();
      event.stopPropagation();
      const context = plot._context;
      const cam = plot.querySelector(PNG);
      if (!context || !cam) return;
      const keep = context.toImageButtonOptions || {};
      context.toImageButtonOptions = Object.assign({}, keep, {format: 'svg'});
      try { cam.dispatchEvent(new MouseEvent('click', {bubbles: true})); }
      finally { context.toImageButtonOptions = keep; }
    });
    camera.parentNode.insertBefore(button, camera.nextSibling);
  };
  document.addEventListener('mouseover', (event) => {
    const plot = event.target.closest && event.target.closest('.js-plotly-plot');
    if (plot) add(plot);
  }, true);
})();
</script>"""


def figure_downloads() -> None:
    """Put the SVG button beside every figure's PNG camera (see show_figure())."""
    st.sidebar.html(_SVG_BUTTON, unsafe_allow_javascript=True)


# ------------------------------------------------------------------ pitfalls

def metric_columns() -> dict:
    """How the metrics tables (alcore.analysis.metrics.metrics_frame / group_metrics) show
    their columns, on every page that draws them."""
    from alcore.analysis.metrics import DROP_AFTER_LABELS, DROP_POINTS

    number = st.column_config.NumberColumn
    return {"final_labels": number("labels used", format="%d"),
            "final_accuracy": number("final accuracy", format="percent"),
            "aulc": number("AULC", format="%.4f", help="mean accuracy over the label budget"),
            "labels_to_target": number("labels to target", format="%d"),
            "labels_saved_vs_random": number("labels saved vs random", format="%d"),
            "drops": number("curve drops", format="%d", help=(
                f"rounds after the first {DROP_AFTER_LABELS} labels whose test accuracy fell more than "
                f"{DROP_POINTS * 100:g} points below the previous round's: 0 for a stable learner"))}


def show_pitfalls(pitfalls, where=None) -> None:
    """alcore.analysis.pitfalls warnings as the page shows them: what is wrong, then the fix."""
    for p in pitfalls:
        (where or st).warning(f"{plain(p.message)} **Fix:** {plain(p.fix)}", icon=":material/warning:")
