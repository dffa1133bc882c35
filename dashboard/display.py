"""How the pages show things: text from files as text, figures and tables with one-click
downloads, alcore's problems and pitfalls as alerts, a setup in one line."""
from __future__ import annotations

import re

import streamlit as st

from alcore import ExperimentConfig

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


def show_problems(problems: list[str], icon=":material/block:", where=None) -> None:
    for p in problems:
        (where or st).error(sentence(p), icon=icon)


def config_caption(cfg: ExperimentConfig) -> str:
    from alcore.serve.uploads import shown_name

    budget = f"{cfg.rounds} rounds" if cfg.rounds is not None else f"budget {cfg.label_budget}"
    # a user's file by its name (never the folder it is kept in on the server)
    data = f"**{cfg.dataset}** {plain(shown_name(cfg.data_file))}" if cfg.data_file else f"**{cfg.dataset}**"
    return (f"{data} · model **{cfg.model}** · {cfg.initial} initial labels · "
            f"batches of {cfg.batch_size} · {budget} · seed {cfg.seed}")


def file_stem(name: str) -> str:
    """A name as a download's file name: letters, digits, '-' and '_' only."""
    return re.sub(r"[^A-Za-z0-9-]+", "_", str(name)).strip("_")[:80] or "download"


def show_figure(fig, name: str, *, key: str, where=None, **kwargs):
    """A Plotly figure with one-click downloads named ``name``: PNG from the modebar's camera
    (Plotly's toImageButtonOptions, at twice the on-screen resolution) and SVG from the button
    that figure_downloads() puts beside it. Both are drawn by Plotly in the browser: no
    kaleido or Chrome on the server. ``key``: the chart's own, always (without one, Streamlit
    derives its id from the figure, and the same figure drawn twice in a script run stops the
    page). ``where``: a column or container (default: the page); other arguments go to
    st.plotly_chart."""
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
    shown, kwargs["column_config"] = _missing_as_dash(frame, kwargs.get("column_config"))
    out = where.dataframe(shown, **kwargs)
    if download:
        stem = file_stem(name)
        where.download_button("CSV", frame.to_csv(index=not kwargs["hide_index"]), f"{stem}.csv", "text/csv",
                              key=f"csv_{stem}", on_click="ignore", icon=":material/download:", type="tertiary",
                              help=f"Download this table as {stem}.csv")
    return out


MISSING = "–"  # a number a table does not have (never reached, no baseline): shown as a dash


def _number_text(fmt):
    if fmt == "percent":
        return "{:.2%}".format
    if isinstance(fmt, str) and fmt.startswith("%"):
        return lambda v: fmt % v
    return "{:,.4g}".format


def _missing_as_dash(frame, column_config):
    """Streamlit draws a missing number as the word "None" (a pandas Styler's text does not reach
    the browser for a number column), so a column with missing numbers is shown as text in its
    own format with a dash where a number is missing. Such a column then sorts as text; columns
    without a gap stay numbers."""
    import pandas as pd
    import streamlit as st

    config = dict(column_config or {})
    if not isinstance(frame, pd.DataFrame) or frame.size > 100_000 or not frame.columns.is_unique:
        return frame, column_config
    changed = {}
    for col in frame.columns:
        values = frame[col]
        if not values.isna().any() or not all(isinstance(v, (int, float)) for v in values.dropna()):
            continue
        spec = config.get(col)
        type_config = spec.get("type_config") if isinstance(spec, dict) else None
        shown = _number_text((type_config or {}).get("format"))
        changed[col] = [MISSING if pd.isna(v) else shown(v) for v in values]
        label = spec.get("label") if isinstance(spec, dict) else spec if isinstance(spec, str) else None
        help_text = spec.get("help") if isinstance(spec, dict) else None
        config[col] = st.column_config.TextColumn(label or str(col), help=help_text)
    if not changed:
        return frame, column_config
    return frame.assign(**changed), config


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


def caption_names(class_names) -> list[str]:
    """Class names as a gallery caption shows them: cut short (alcore.figures.short_name), then
    escaped (plain), so an escape is never cut in two."""
    from alcore.figures import short_name

    return [plain(short_name(n)) for n in class_names]


def show_gallery(images, captions=None, where=None, size: int | None = None) -> None:
    """A wrapping row of pool images, each enlarged nearest-neighbour to at least ``size`` px
    (default alcore.figures.GALLERY_PX) and sent as PNG (Streamlit's JPEG blurs the enlarged
    pixels), with the gap page_style() puts between them. ``captions``: one or two lines each
    (alcore.figures.gallery_caption); the rest goes in show_gallery_details()."""
    from alcore.figures import GALLERY_PX, upscale

    tiles = upscale(images, size or GALLERY_PX)
    (where or st).image(list(tiles), caption=captions, width=int(tiles.shape[2]), output_format="PNG")


def show_gallery_details(sections: dict, class_names, name: str, *, given: bool = False) -> None:
    """Under a page's galleries: everything their captions leave out (alcore.figures.gallery_details),
    folded. ``given``: the labels are a person's (images without labels)."""
    from alcore.figures import gallery_details

    frame = gallery_details({k: v for k, v in sections.items() if v}, class_names, given=given)
    if len(frame):
        with st.expander("Details of these images (whole class names, confidence, score)"):
            show_table(frame, name, download=False, column_config={
                "confidence": st.column_config.NumberColumn(format="percent"),
                "score": st.column_config.NumberColumn(format="%.4f")})


# The page's own CSS, the same on every page: a gap between the images of a gallery (Streamlit lays
# an image list edge to edge, which made a row of digits one black band).
_STYLE = """<style>
[data-testid="stImage"] { column-gap: 12px; }
</style>"""


def page_style() -> None:
    st.html(_STYLE)


def show_pitfalls(pitfalls, where=None) -> None:
    """alcore.analysis.pitfalls warnings as the page shows them: what is wrong, then the fix."""
    for p in pitfalls:
        (where or st).warning(f"{plain(p.message)} **Fix:** {plain(p.fix)}", icon=":material/warning:")


def pair_warnings(warnings: list[str]) -> list[str]:
    """Warnings about pairs of groups ("a vs b: 3 paired seeds; ... these two cannot be told
    apart yet.") that say the same of several pairs, as one warning that lists the pairs: a
    preset of 6 settings would otherwise stack 15 near-identical boxes."""
    said: dict[str, list[str]] = {}
    for w in warnings:
        pair, sep, rest = w.partition(": ")
        of_a_pair = bool(sep) and " vs " in pair
        if of_a_pair:
            said.setdefault(rest.strip(), []).append(pair)
        else:
            said[w] = [""]
    out = []
    for rest, pairs in said.items():
        if len(pairs) < 2:
            out.append(f"{pairs[0]}: {rest}" if pairs[0] else rest)
        else:
            out.append(f"{len(pairs)} pairs of groups: {rest.replace('these two', 'these pairs')} The pairs: "
                       + "; ".join(pairs) + ".")
    return out


def show_gain_captured(results) -> None:
    """Compare's table of the share of the oracle ceiling's gain over random each strategy captures
    (alcore.analysis.ceiling), where the runs include an oracle ceiling; nothing otherwise."""
    from alcore.analysis.ceiling import gain_captured
    from dashboard.widgets import CEILING_SHARE_HELP

    table = gain_captured(results)
    if not len(table):
        return
    st.subheader("Share of the oracle's gain over random captured")
    st.caption(CEILING_SHARE_HELP + " 100% is as much gain as the oracle ceiling, 0% no more than random. The "
               "ceiling is greedy (a lower bound on the best sequence of batches) and peeks at validation labels "
               "from the pool, which no real strategy can: a reference, not a contender.")
    num = st.column_config.NumberColumn
    show_table(table, "compare_gain_captured", column_config={
        "seeds": num("seeds", format="%d"), "share_mean": num("share of the oracle's gain", format="percent"),
        "share_low": num("share low", format="percent"), "share_high": num("share high", format="percent")})


def temperatures_text(temps) -> str:
    """A uherding run's temperatures by round, short: '**1.6** (rounds so far: median 1.1, 1-3.2)'."""
    import numpy as np

    last = f"**{temps[-1]:g}**"
    if len(temps) < 2 or min(temps) == max(temps):
        return last
    return f"{last} (rounds so far: median {float(np.median(temps)):g}, {min(temps):g}-{max(temps):g})"


def temperature_caption(rnd, config) -> str:
    """What a round says of uherding's temperature ('' for a round without one)."""
    from alcore.strategies.coverage import UHerdingStrategy

    if rnd.uherding_temperature is None:
        return ""
    if rnd.uherding_calibration is not None:
        return ("uherding scaled the probabilities by a temperature calibrated this round on held-out labels: "
                + plain(rnd.uherding_calibration.text(rnd.uherding_temperature)) + ".")
    return (f"uherding scaled the probabilities by temperature **{rnd.uherding_temperature:g}**, "
            + plain(UHerdingStrategy.temperature_origin(config)) + ".")
