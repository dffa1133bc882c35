"""Figure builders: pure functions from data to Plotly figures (and image galleries).

The dashboard renders what these return; tests check the traces; the CLI or a
notebook can reuse them. No Streamlit here.
"""
from __future__ import annotations

import html
import zlib
from typing import TYPE_CHECKING, Mapping, NamedTuple, Optional, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from alcore.results.records import CEILING, ImageRef, RunResult
from alcore.strategies.base import STRATEGIES, is_baseline

if TYPE_CHECKING:  # pandas is imported where a frame is made or read: the Dataset page, the
    import pandas as pd  # dashboard's first, draws its figures without it (0.3-1 s to import)

PALETTE = qualitative.Plotly
RANDOM_COLOR = "#7f7f7f"


def text(value) -> str:
    """A string as Plotly shows it literally. Plotly renders a subset of HTML in titles,
    tick labels, legends and hover text (<b>, <br>, <a href=...>) and decodes &lt; / &gt; /
    &amp;; class names, file names and dataset names come from files, so they are escaped."""
    return html.escape(str(value), quote=False)


# ------------------------------------------------------------------------- curves

# One colour per strategy on every figure of every page: the baseline grey, every other strategy a
# colour of its own in the registry's order (alcore.strategies.base.STRATEGIES), so a strategy keeps
# its colour from race to race and page to page. Plotly's ten, and two more for the twelve.
# Plotly's own ten first (the strategies registered first keep the colours they always had), then
# Dark24's (its near-black left out: random is the grey one), so 17 and more strategies each have
# their own colour.
STRATEGY_PALETTE = tuple(dict.fromkeys(tuple(qualitative.Plotly) + ("#8C564B", "#1F3A93")
                                       + tuple(c for c in qualitative.Dark24 if c != "#222A2A")))


CEILING_COLOR = "#222A2A"  # the oracle ceiling: near-black, dashed, a reference rather than a contender (random is
# the grey one, and a grey ceiling beside it read as a second baseline; no strategy has this colour)


def strategy_color(name: str) -> str:
    """The colour of strategy ``name`` (a registry name: 'margin', 'hybrid') wherever it is drawn.
    A name the registry does not know (a file from another version) gets a colour of its own name."""
    if name == CEILING:
        return CEILING_COLOR
    if is_baseline(name):
        return RANDOM_COLOR
    others = [s for s in STRATEGIES if not is_baseline(s)]
    i = others.index(name) if name in others else zlib.crc32(str(name).encode())
    return STRATEGY_PALETTE[i % len(STRATEGY_PALETTE)]


def _shade(hex_color: str, t: float) -> str:
    """``hex_color`` mixed with white (t > 0) or black (t < 0) by |t|."""
    h = hex_color.lstrip("#")
    rgb = [int(h[i:i + 2], 16) for i in (0, 2, 4)]
    target = 255 if t > 0 else 0
    return "#" + "".join(f"{round(c + (target - c) * abs(t)):02x}" for c in rgb)


def _strategy_of(group: str, strategies: Mapping[str, str]) -> str:
    return strategies.get(group) or str(group).split(" ", 1)[0]


def group_colors(groups: Sequence[str], strategies: Mapping[str, str]) -> dict[str, str]:
    """Each group in its strategy's colour (:func:`strategy_color`; ``strategies``: group ->
    registry name, else the group's first word); groups of one strategy (hybrid 0%, 20%, 100%)
    in shades of it, darker to lighter in the order given."""
    of = {g: _strategy_of(g, strategies) for g in groups}
    colors = {}
    for name in dict.fromkeys(of.values()):
        mine = [g for g in groups if of[g] == name]
        base = strategy_color(name)
        for i, g in enumerate(mine):
            colors[g] = base if len(mine) == 1 else _shade(base, -0.35 + 0.75 * i / (len(mine) - 1))
    return colors


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# The trace's (escaped) name, not the name pasted into the template, where "%{...}" in a
# file name would be read as a placeholder.
HOVER_CURVE = "%{x} labels: %{y:.2%}<extra>%{fullData.name}</extra>"


def learning_curve_figure(frame: pd.DataFrame, *, aggregate: bool = True, band: str = "ci95",
                          target: Optional[float] = None, title: str = "Test accuracy vs labels",
                          target_name: str = "target", max_labels: Optional[int] = None) -> go.Figure:
    """Accuracy-versus-labels curves. With ``aggregate``, runs of one group (several
    seeds) become a mean line with a shaded band; otherwise one line per run. The labels axis
    starts at 0 and, given ``max_labels`` (a race's planned labels), ends there from the first
    point on, so a live race's curves grow into a fixed frame. Rows of the oracle ceiling (key
    strategy :data:`~alcore.results.records.CEILING`) are drawn as a dashed grey line of that name."""
    from alcore.analysis.groups import natural_order
    from alcore.analysis.stats import aggregate_curves

    fig = go.Figure()
    groups = sorted(frame["group"].unique(), key=natural_order) if len(frame) else []
    strategies = {g: key.strategy for g, key in zip(frame["group"], frame["key"])} if "key" in frame else {}
    colors = group_colors(groups, strategies)
    dash = {g: "dash" if is_baseline(_strategy_of(g, strategies)) else "solid" for g in groups}  # random's
    dash.update({g: "longdash" for g in groups if _strategy_of(g, strategies) == CEILING})
    if aggregate and len(frame):
        agg = aggregate_curves(frame, band)
        for g in groups:
            sub = agg[agg["group"] == g]
            color = colors[g]
            if (sub["runs"] > 1).any():
                fig.add_trace(go.Scatter(
                    x=np.concatenate([sub["n_labeled"], sub["n_labeled"][::-1]]),
                    y=np.concatenate([sub["high"], sub["low"][::-1]]),
                    # mode "lines": Plotly's default for a trace of under 20 points adds markers, which
                    # drew the band's corners as dots in its default colours on a race of few rounds
                    mode="lines", fill="toself", fillcolor=_rgba(color, 0.18), line=dict(width=0),
                    hoverinfo="skip", showlegend=False, name=text(f"{g} band"), legendgroup=g))
            runs = int(sub["runs"].max())
            fig.add_trace(go.Scatter(
                x=sub["n_labeled"], y=sub["mean"], mode="lines+markers",
                name=text(f"{g} (mean of {runs})" if runs > 1 else g),
                line=dict(color=color, width=2.5, dash=dash[g]),
                marker=dict(size=4), legendgroup=g, hovertemplate=HOVER_CURVE))
    else:
        for run_id, sub in frame.groupby("run_id", sort=True):
            g = sub["group"].iloc[0]
            color = colors[g]
            name = sub["run"].iloc[0] + (f" [{sub['source'].iloc[0]}]" if sub["source"].iloc[0] else "")
            fig.add_trace(go.Scatter(
                x=sub["n_labeled"], y=sub["test_accuracy"], mode="lines+markers", name=text(name),
                line=dict(color=color, width=2, dash=dash[g]),
                marker=dict(size=4), legendgroup=g, hovertemplate=HOVER_CURVE))
    if target is not None:
        fig.add_hline(y=target, line=dict(color="#444", dash="dot", width=1),
                      annotation_text=f"{text(target_name)} {target:.0%}", annotation_position="bottom right")
    if max_labels:
        fig.update_xaxes(range=[0, max_labels * 1.03])  # a little room for the last marker
    else:
        fig.update_xaxes(rangemode="tozero")
    # an accuracy lies in 0-100%: one point alone was drawn on an axis from -50% to 100%
    fig.update_yaxes(autorangeoptions=dict(minallowed=0, maxallowed=1.01))
    fig.update_layout(title=text(title), xaxis_title="Labels used", yaxis_title="Test accuracy",
                      yaxis_tickformat=".0%", uirevision="curves", hovermode="x unified",
                      showlegend=True,  # Plotly hides the legend of a one-curve figure: name it anyway
                      legend=LEGEND_BELOW,
                      margin=dict(l=10, r=10, t=60, b=10), height=460)
    return fig


# ------------------------------------------------------------------ classes & data

def label_distribution_figure(labels: np.ndarray, class_names: Sequence[str], title: str = "Labels in the pool") -> go.Figure:
    """Bar chart and pie chart of how many images each class has."""
    counts = np.bincount(np.asarray(labels), minlength=len(class_names))
    fig = make_subplots(rows=1, cols=2, specs=[[{"type": "xy"}, {"type": "domain"}]],
                        subplot_titles=("Images per class", "Share"))
    names = [text(c) for c in class_names]
    fig.add_trace(go.Bar(x=names, y=counts, marker_color=PALETTE[0], name="images",
                         hovertemplate="%{x}: %{y}<extra></extra>"), row=1, col=1)
    # each slice names its class (there is no legend); beyond a dozen classes the names would
    # overlap, so they are left to the hover and the bars beside
    fig.add_trace(go.Pie(labels=names, values=counts, sort=False, name="share",
                         textinfo="label+percent" if len(names) <= 12 else "percent",
                         hovertemplate="%{label}: %{value} (%{percent})<extra></extra>"), row=1, col=2)
    fig.update_layout(title=text(title), showlegend=False, height=360, margin=dict(l=10, r=10, t=60, b=10))
    fig.update_xaxes(type="category", row=1, col=1)
    return fig


def confusion_figure(confusion, class_names: Sequence[str],
                     title: str = "Confusion matrix (test set)") -> go.Figure:
    """Heatmap of true (rows) against predicted (columns) classes; each row is
    coloured by its share so small classes are readable, counts are printed. ``confusion``:
    a matrix, or a round's stored one in either form (alcore.results.records.Confusion)."""
    from alcore.results.records import confusion_matrix

    m = confusion_matrix(confusion).astype(float)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    names = [text(c) for c in class_names]
    fig = go.Figure(go.Heatmap(z=share, x=names, y=names, text=m.astype(int), texttemplate="%{text}",
                               colorscale="Blues", zmin=0, zmax=1, colorbar=dict(title="row share"),
                               hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>"))
    fig.update_layout(title=text(title), xaxis_title="Predicted", yaxis_title="True", height=460,
                      yaxis_autorange="reversed", margin=dict(l=10, r=10, t=60, b=10))
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return fig


def class_balance_figure(counts: dict[str, np.ndarray], class_names: Sequence[str],
                         title: str = "Class balance of the acquired labels",
                         strategies: Optional[Mapping[str, str]] = None) -> go.Figure:
    """Grouped bars: labels acquired per class, one bar group per run, in its strategy's colour
    (``strategies``: run -> registry name; see :func:`group_colors`)."""
    groups = list(counts)
    colors = group_colors(groups, strategies or {})
    fig = go.Figure()
    names = [text(c) for c in class_names]
    for g in groups:
        fig.add_trace(go.Bar(x=names, y=counts[g], name=text(g), marker_color=colors[g]))
    fig.update_layout(title=text(title), barmode="group", xaxis_title="Class", yaxis_title="Labels",
                      height=380, margin=dict(l=10, r=10, t=60, b=10))
    fig.update_xaxes(type="category")
    return fig


GALLERY_PX = 112  # a gallery image's side on screen, at least: an 8x8 digit 14x, a 28x28 one 4x
CAPTION_NAME = 10  # characters of a class name in a gallery caption; the details table has the whole name


def upscale(images: np.ndarray, min_size: int = 56) -> np.ndarray:
    """Nearest-neighbour enlargement so 8x8 or 28x28 images stay crisp on screen."""
    images = np.asarray(images)
    if images.ndim < 3:
        raise ValueError(f"expected a stack of images, got shape {images.shape}")
    factor = max(1, int(np.ceil(min_size / max(images.shape[1], images.shape[2]))))
    if factor == 1:
        return images
    return images.repeat(factor, axis=1).repeat(factor, axis=2)


def short_name(name, limit: int = CAPTION_NAME) -> str:
    """A class name cut to ``limit`` characters ("Ankle bo…") for a caption under a small image."""
    name = str(name)
    return name if len(name) <= limit else name[:limit - 1] + "…"


def known(label: Optional[int]) -> bool:
    """Whether an image's label is known: a class, not None or -1 (images without labels)."""
    return label is not None and int(label) >= 0


def gallery_caption(index: int, class_names: Sequence[str], predicted: Optional[int] = None,
                    label: Optional[int] = None, confidence: Optional[float] = None, *, given: bool = False) -> str:
    """One or two lines under a gallery image: "#219: 5 (20%), true 8": its pool index, the
    predicted class with its confidence where known, and the true class where the prediction is
    wrong (or unknown). ``given``: ``label`` is the one a person gave (images without labels), shown
    whether or not the model agrees ("labelled 8"), since a caption without it then says none was
    given. A label of -1 (or None) is unknown and not shown. ``class_names`` as they are to be
    shown (short, escaped by the caller)."""
    text = f"#{index}:"
    if predicted is not None:  # no-break spaces: a line breaks after the comma, not inside "true 8"
        text += f" {class_names[predicted]}" + (f"\u00a0({confidence:.0%})" if confidence is not None else "")
    if known(label) and (given or label != predicted):
        text += ("," if predicted is not None else "") + f" {'labelled' if given else 'true'}\u00a0{class_names[label]}"
    return text


def gallery(images: np.ndarray, refs: Sequence[ImageRef], class_names: Sequence[str], *,
            given: bool = False) -> tuple[list[np.ndarray], list[str]]:
    """Images (already in [0, 1]) and their captions (:func:`gallery_caption`) for a gallery of
    pool images."""
    captions = [gallery_caption(r.index, class_names, r.predicted, r.label, r.confidence, given=given) for r in refs]
    return [np.asarray(im) for im in images], captions


class GalleryImage(NamedTuple):
    """A pool image as a gallery shows it where the round recorded no ImageRef (its picks)."""
    index: int
    predicted: Optional[int]
    label: int
    confidence: Optional[float] = None
    score: Optional[float] = None


def picked_images(rnd, labels: np.ndarray) -> list[GalleryImage]:
    """A round's picks with their predicted class (where the file records it), true class
    (``labels``: the pool's, -1 where unknown) and score."""
    predicted = rnd.selected_predicted or [None] * len(rnd.selected)
    return [GalleryImage(int(i), None if p is None else int(p), int(labels[i]), None, float(s))
            for i, p, s in zip(rnd.selected, predicted, rnd.selected_scores)]


def confident_images(probs: np.ndarray, candidates: np.ndarray, labels: np.ndarray,
                     k: int) -> tuple[list[GalleryImage], list[GalleryImage]]:
    """The ``k`` most and ``k`` least confident of a round's candidates (``candidates[i]``: the pool
    index of row ``i`` of ``probs``), in the order the loop's galleries use
    (:func:`alcore.engine.inspect.confidence_order`), for a round whose file keeps no galleries (a
    run on images without labels); ``labels``: the pool's, -1 where unknown."""
    from alcore.engine.inspect import confidence_order

    probs, candidates = np.asarray(probs), np.asarray(candidates)
    if not len(probs) or k <= 0:
        return [], []
    order = confidence_order(probs, candidates)

    def image(row) -> GalleryImage:
        i = int(candidates[row])
        return GalleryImage(i, int(np.argmax(probs[row])), int(labels[i]), float(np.max(probs[row])))

    return [image(r) for r in order[:k]], [image(r) for r in order[::-1][:k]]


def gallery_details(sections: dict[str, Sequence], class_names: Sequence[str], *, given: bool = False) -> pd.DataFrame:
    """What the short captions of a page's galleries leave out, one row per image: the gallery
    (``sections``' key), pool index, predicted class and confidence, true class, whether the
    prediction is right, and the strategy's score. Each item has ``index``, ``predicted``,
    ``label`` and, where known, ``confidence`` and ``score`` (an ImageRef does). ``given``: the
    labels are a person's ("label given", "agrees"); a label of -1 is unknown (empty)."""
    import pandas as pd

    label_col, right_col = ("label given", "agrees") if given else ("true class", "right")
    rows = []
    for title, items in sections.items():
        for it in items:
            predicted, confidence = getattr(it, "predicted", None), getattr(it, "confidence", None)
            has = known(it.label)
            rows.append({"gallery": title, "pool index": int(it.index),
                         "predicted": None if predicted is None else class_names[predicted],
                         "confidence": confidence, label_col: class_names[it.label] if has else None,
                         right_col: None if predicted is None or not has else bool(predicted == it.label),
                         "score": getattr(it, "score", None)})
    return pd.DataFrame(rows, columns=["gallery", "pool index", "predicted", "confidence", label_col, right_col,
                                       "score"])


def stopping_signals_figure(result: RunResult) -> go.Figure:
    """The label-free stopping signals of a run next to its true test accuracy.

    Top: test accuracy (known only in simulation). Below: the mean uncertainty of the
    unlabeled pool (1 - highest class probability), the share of pool predictions that
    changed since the last round (stabilizing predictions; Bloodgood & Vijay-Shanker 2009),
    and the change of test accuracy since the last round (the plateau signal)."""
    n = [r.n_labeled for r in result.rounds]
    acc = [r.test_accuracy for r in result.rounds]
    unc = [r.pool.mean_uncertainty if r.pool is not None else None for r in result.rounds]
    changed = [r.pool.changed_fraction if r.pool is not None else None for r in result.rounds]
    delta = [None] + [b - a for a, b in zip(acc[:-1], acc[1:])]
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.05,
                        subplot_titles=("Test accuracy (true; unknown in real use)",
                                        "Mean pool uncertainty", "Pool predictions changed",
                                        "Accuracy change since last round"))
    for row, (y, name, color) in enumerate([(acc, "test accuracy", PALETTE[0]), (unc, "uncertainty", PALETTE[1]),
                                            (changed, "changed", PALETTE[2]), (delta, "accuracy change", PALETTE[3])], 1):
        fig.add_trace(go.Scatter(x=n, y=y, mode="lines+markers", name=name, line=dict(color=color),
                                 marker=dict(size=4)), row=row, col=1)
    cfg = result.config
    if cfg.target_accuracy is not None:
        fig.add_hline(y=cfg.target_accuracy, line=dict(dash="dot", color="#444"), row=1, col=1)
    if cfg.uncertainty_threshold is not None:
        fig.add_hline(y=cfg.uncertainty_threshold, line=dict(dash="dot", color="#444"), row=2, col=1)
    if cfg.changed_threshold is not None:
        fig.add_hline(y=cfg.changed_threshold, line=dict(dash="dot", color="#444"), row=3, col=1)
    fig.update_yaxes(tickformat=".0%", row=1, col=1)
    fig.update_yaxes(tickformat=".0%", row=3, col=1)
    fig.update_yaxes(tickformat="+.1%", row=4, col=1)  # in points of accuracy, as the panels above
    fig.data[3].hovertemplate = "%{x} labels: %{y:+.2%}<extra></extra>"
    fig.update_xaxes(title_text="Labels used", row=4, col=1)
    fig.update_layout(height=720, showlegend=False, title=text(f"Stopping signals: {result.label}"),
                      margin=dict(l=10, r=10, t=80, b=10))
    return fig


def autolabel_figure(report) -> go.Figure:
    """Confident auto-labelling: test accuracy and pseudo-label accuracy against the
    number of pseudo-labels (step 0: real labels only)."""
    n = [s.n_pseudo for s in report.steps]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=n, y=[s.test_accuracy for s in report.steps], mode="lines+markers",
                             name="test accuracy", line=dict(color=PALETTE[0], width=2.5)))
    fig.add_trace(go.Scatter(x=n, y=[s.pseudo_accuracy for s in report.steps], mode="lines+markers",
                             name="pseudo-labels right (all so far)", line=dict(color=PALETTE[1], dash="dash")))
    fig.add_trace(go.Scatter(x=n, y=[s.batch_accuracy for s in report.steps], mode="markers",
                             name="pseudo-labels right (this batch)", marker=dict(color=PALETTE[1], size=8)))
    fig.update_layout(title="Confident auto-labelling", xaxis_title="Pseudo-labels added",
                      yaxis_title="Accuracy", yaxis_tickformat=".0%", showlegend=True, height=400,
                      legend=LEGEND_BELOW,
                      margin=dict(l=10, r=10, t=70, b=10))
    return fig


# ------------------------------------------------------------------- statistics

# A horizontal legend under the x axis: above the plot, a legend that wraps onto several rows
# (many groups, long names) covered the title. Plotly grows the bottom margin to fit it.
LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.16, x=0)
SHORT_NAME = 28  # characters of a group name on a heatmap's axes; the hover has the whole name


def _short_names(names: Sequence[str], limit: int = SHORT_NAME) -> list[str]:
    """The names as they are when all fit in ``limit`` characters; otherwise each numbered and cut
    to fit ("3. margin · hybrid_frac…"), so two long names that start alike stay apart."""
    if all(len(n) <= limit for n in names):
        return list(names)
    out = []
    for i, name in enumerate(names):
        head = f"{i + 1}. "
        room = limit - len(head)
        out.append(head + (name if len(name) <= room else name[:room - 1] + "…"))
    return out


def pairwise_figure(pairs: pd.DataFrame, title: str = "Paired tests on AULC across seeds (row − column)") -> go.Figure:
    """Heatmap of :func:`alcore.analysis.stats.pairwise_tests`: rows and columns are groups, colour is
    the mean AULC difference (row minus column) over the paired seeds, each cell says the
    verdict and the Holm-corrected Wilcoxon p-value. Pairs that were not compared are blank."""
    import pandas as pd

    names = sorted(set(pairs["row"]) | set(pairs["column"])) if len(pairs) else []
    pos = {g: i for i, g in enumerate(names)}
    z = np.full((len(names), len(names)), np.nan)
    cell = [["" for _ in names] for _ in names]
    for _, r in pairs.iterrows():
        i, j = pos[r["row"]], pos[r["column"]]
        z[i, j] = r["mean_diff"]
        p = r["holm_p"]
        p_text = "not tested" if p is None or pd.isna(p) else f"p={p:.3g}"
        cell[i][j] = f"{r['verdict']}<br>{p_text}<br>{int(r['n_seeds'])} seeds"
    full = [text(g) for g in names]
    labels = _short_names([str(g) for g in names])  # long group names on the axes: cut, whole in the hover
    labels = [text(g) for g in labels]
    finite = np.abs(z[np.isfinite(z)])
    span = float(finite.max()) if finite.size and finite.max() > 0 else 0.01
    whole = [[[full[i], full[j]] for j in range(len(names))] for i in range(len(names))]
    fig = go.Figure(go.Heatmap(
        z=z, x=labels, y=labels, text=cell, texttemplate="%{text}", colorscale="RdBu", zmid=0,
        zmin=-span, zmax=span, colorbar=dict(title="AULC diff"), hoverongaps=False, customdata=whole,
        hovertemplate="%{customdata[0]} − %{customdata[1]}: %{z:+.4f} AULC<br>%{text}<extra></extra>"))
    fig.update_layout(title=text(title), xaxis_title="Column", yaxis_title="Row", yaxis_autorange="reversed",
                      height=max(320, 90 * len(names) + 140), margin=dict(l=10, r=10, t=60, b=10))
    if not names:
        fig.add_annotation(text="No pairs of groups to compare", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return fig


# ------------------------------------------------------------- replay: why this image?

PREDICTED_COLOR, TRUE_COLOR, OTHER_COLOR = PALETTE[1], PALETTE[2], "#b0b7c3"


def probability_bars_figure(probs: Sequence[float], class_names: Sequence[str], true_label: Optional[int] = None,
                            title: str = "Class probabilities", *, given: bool = False) -> go.Figure:
    """One bar per class: the model's probability for it. The predicted class (highest bar)
    and the true class are coloured and named above their bars; when they differ the model
    is wrong about this image. ``given``: ``true_label`` is the label a person gave ("labelled");
    -1 (or None): no label is known."""
    p = np.asarray(probs, dtype=float)
    if p.ndim != 1 or len(p) != len(class_names):
        raise ValueError(f"{p.shape} probabilities for {len(class_names)} classes")
    predicted = int(np.argmax(p))
    true_label = int(true_label) if known(true_label) else None
    word = "labelled" if given else "true"
    colors, roles = [], []
    for c in range(len(p)):
        if c == predicted:
            colors.append(PREDICTED_COLOR)
            roles.append("predicted" + (f", {word}" if c == true_label else ""))
        elif c == true_label:
            colors.append(TRUE_COLOR)
            roles.append("labelled" if given else "true class")
        else:
            colors.append(OTHER_COLOR)
            roles.append("")
    names = [text(c) for c in class_names]
    labels = [f"{v:.0%}" + (f"<br>{role}" if role else "") for v, role in zip(p, roles)]
    fig = go.Figure(go.Bar(x=names, y=p, marker_color=colors, customdata=roles, text=labels,
                           textposition="outside", cliponaxis=False,
                           hovertemplate="%{x}: %{y:.2%} %{customdata}<extra></extra>"))
    fig.update_layout(title=text(title), xaxis_title="Class", yaxis_title="Probability", yaxis_tickformat=".0%",
                      yaxis_range=[0, 1], height=370, showlegend=False, margin=dict(l=10, r=10, t=100, b=10))
    # a probability ends at 100%: the labels of a tall bar go above the plot area (cliponaxis off),
    # into the top margin, not onto an axis running to 120%; at full size (Plotly would shrink them)
    fig.update_layout(uniformtext=dict(minsize=12, mode="show"))
    fig.update_xaxes(type="category")
    return fig


MEASURE_NAMES = {"least_confidence": "least confidence", "margin": "margin", "ratio": "ratio", "entropy": "entropy"}


def score_rank_frame(explanation, batch_size: Optional[int] = None, strategy: Optional[str] = None) -> pd.DataFrame:
    """The four uncertainty scores of one image (an :class:`alcore.analysis.explain.ImageExplanation`)
    side by side with where it ranks under each among the round's candidates: one row per
    measure with ``score``, ``rank`` (1 = picked first), ``top_share`` (rank / candidates),
    ``in_batch`` (rank within ``batch_size``: a strategy of that measure would have picked it,
    ties aside) and ``strategy`` (True on the row of the run's own measure)."""
    import pandas as pd

    n = explanation.n_candidates
    rows = []
    for m, score in explanation.scores.items():
        rank = explanation.ranks[m]
        rows.append({"measure": MEASURE_NAMES.get(m, m), "score": score, "rank": rank, "candidates": n,
                     "top_share": rank / n if n else float("nan"),
                     "in_batch": None if batch_size is None else bool(rank <= batch_size),
                     "strategy": m == strategy})
    return pd.DataFrame(rows, columns=["measure", "score", "rank", "candidates", "top_share", "in_batch", "strategy"])


def overlap_figure(overlap, title: Optional[str] = None) -> go.Figure:
    """Heatmap of an :class:`alcore.analysis.explain.PickOverlap`: the Jaccard index (shared picks over
    all picks of the two) of every pair of runs, printed in each cell, 0 (disjoint) to 1
    (the same images)."""
    labels = [text(f"{lab} ({k})") for lab, k in zip(overlap.labels, overlap.sizes)]
    m = np.asarray(overlap.matrix, dtype=float)
    cells = [["" if not np.isfinite(v) else f"{v:.2f}" for v in row] for row in m]
    what = f"rounds 0-{overlap.round}" if overlap.cumulative else f"round {overlap.round}"
    fig = go.Figure(go.Heatmap(z=m, x=labels, y=labels, text=cells, texttemplate="%{text}", zmin=0, zmax=1,
                               colorscale="Viridis", colorbar=dict(title="Jaccard"), hoverongaps=False,
                               hovertemplate="%{y} and %{x}: %{z:.2f}<extra></extra>"))
    fig.update_layout(title=text(title or f"Overlap of the picks (Jaccard), {what}"), yaxis_autorange="reversed",
                      height=max(300, 70 * len(labels) + 140), margin=dict(l=10, r=10, t=60, b=10))
    if not labels:
        fig.add_annotation(text="No runs to compare", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return fig


# How each status of a pool-map point is drawn: (legend name, symbol, size, outline width, opacity).
POOL_MAP_STYLE = {
    "unlabeled": ("unlabeled", "circle", 5, 0, 0.35),
    "labeled": ("labeled before this round", "circle", 9, 1, 0.95),
    "picked": ("picked this round", "star", 17, 1.5, 1.0),
}
MAX_CLASS_LEGEND = 20
UNKNOWN_COLOR, NO_LABEL = "#9e9e9e", "no label"  # a pool image whose label nobody gave (images without labels)


def pool_map_figure(frame: pd.DataFrame, class_names: Sequence[str], title: str = "The pool in 2-D",
                    highlight: Optional[int] = None, method: str = "pca", *, given: bool = False) -> go.Figure:
    """Scatter of an :func:`alcore.analysis.explain.pool_map` frame: every point coloured by its true
    class; unlabeled images small and faint, labeled ones solid with an outline, this round's
    picks as large stars, so a batch landing between two class clouds is visible. Each
    point's ``customdata`` is its pool index (for clicks); ``highlight`` rings one image.
    ``given``: the labels are those a person gave (images without labels); a label of -1 is
    unknown and drawn grey as "no label".

    Every trace is WebGL (Scattergl): a few thousand points draw fast, and one renderer keeps
    the layers in trace order (picks on top)."""
    k = len(class_names)
    palette = PALETTE if k <= len(PALETTE) else qualitative.Alphabet
    color = {c: palette[c % len(palette)] for c in range(k)}
    color[-1] = UNKNOWN_COLOR
    names = {c: text(n) for c, n in enumerate(class_names)}
    names[-1] = NO_LABEL
    said = {c: (f"labelled {n}" if given and c >= 0 else n) for c, n in names.items()}
    fig = go.Figure()
    hover = "#%{customdata}: %{text}<extra></extra>"
    unl = frame[frame["status"] == "unlabeled"]
    if k <= MAX_CLASS_LEGEND:  # a legend entry per class: click one to hide its cloud
        for c in [*range(k), -1]:
            sub = unl[unl["label"] == c]
            if c < 0 and not len(sub):
                continue
            fig.add_trace(go.Scattergl(
                x=sub["x"], y=sub["y"], mode="markers", name=names[c], legendgroup=f"class{c}",
                marker=dict(color=color[c], size=POOL_MAP_STYLE["unlabeled"][2],
                            opacity=POOL_MAP_STYLE["unlabeled"][4]),
                customdata=sub["index"], text=[f"{said[c]}, unlabeled"] * len(sub), hovertemplate=hover))
    else:
        fig.add_trace(go.Scattergl(
            x=unl["x"], y=unl["y"], mode="markers", name="unlabeled",
            marker=dict(color=[color[c] for c in unl["label"]], size=POOL_MAP_STYLE["unlabeled"][2],
                        opacity=POOL_MAP_STYLE["unlabeled"][4]),
            customdata=unl["index"], text=[f"{said[c]}, unlabeled" for c in unl["label"]], hovertemplate=hover))
    for status in ("labeled", "picked"):
        legend, symbol, size, outline, opacity = POOL_MAP_STYLE[status]
        sub = frame[frame["status"] == status]
        fig.add_trace(go.Scattergl(
            x=sub["x"], y=sub["y"], mode="markers", name=f"{legend} ({len(sub)})",
            marker=dict(color=[color[c] for c in sub["label"]], size=size, symbol=symbol, opacity=opacity,
                        line=dict(width=outline, color="#111")),
            customdata=sub["index"], text=[f"{said[c]}, {legend}" for c in sub["label"]], hovertemplate=hover))
    if highlight is not None:
        sub = frame[frame["index"] == highlight]
        if len(sub):
            fig.add_trace(go.Scattergl(
                x=sub["x"], y=sub["y"], mode="markers", name=f"#{int(highlight)} (explained)",
                marker=dict(size=28, symbol="circle-open", color="#d62728", line=dict(width=3)),
                customdata=sub["index"], text=["explained below"], hovertemplate=hover))
    axis = {"pca": ("PC 1", "PC 2"), "tsne": ("t-SNE 1", "t-SNE 2")}.get(method, ("", ""))
    fig.update_layout(title=text(title), xaxis_title=axis[0], yaxis_title=axis[1], height=560,
                      legend=dict(itemsizing="constant"), margin=dict(l=10, r=10, t=60, b=10),
                      clickmode="event+select", dragmode="pan")
    return fig


# ---------------------------------------------------------- a person as the oracle

def oracle_curve_figure(costs, title: str = "Test accuracy vs labels", strategy: Optional[str] = None) -> go.Figure:
    """The person's learning curve beside the simulated oracle's of the same seed (same initial
    labels and weights, so both start at one point) and, once the person has made a mistake,
    the curve of the same images with their true labels: the gap to it is what the mistakes
    cost. ``costs``: the :class:`alcore.engine.oracle.RoundCost` rows of an ``OracleRun``; rounds
    whose model trained on a wrong label are drawn with a cross. Both runs of ``strategy`` (the one
    that asks) in its colour (:func:`strategy_color`): yours solid, the simulated oracle's dashed."""
    n = [c.n_labeled for c in costs]
    color = strategy_color(strategy) if strategy else PALETTE[0]
    fig = go.Figure()
    sim = [(c.n_labeled, c.simulated_accuracy) for c in costs if c.simulated_accuracy is not None]
    fig.add_trace(go.Scatter(x=[p[0] for p in sim], y=[p[1] for p in sim], mode="lines+markers",
                             name="simulated oracle (same seed)", line=dict(color=_shade(color, 0.35), width=2, dash="dash"),
                             marker=dict(size=5), hovertemplate=HOVER_CURVE))
    if any(c.mistakes for c in costs):
        fig.add_trace(go.Scatter(x=n, y=[c.truth_accuracy for c in costs], mode="lines+markers",
                                 name="your images, true labels", line=dict(color="#444", width=2, dash="dot"),
                                 marker=dict(size=5), hovertemplate=HOVER_CURVE))
    fig.add_trace(go.Scatter(
        x=n, y=[c.accuracy for c in costs], mode="lines+markers", name="you",
        line=dict(color=color, width=3),
        marker=dict(size=[11 if c.mistakes else 7 for c in costs],
                    symbol=["x" if c.mistakes else "circle" for c in costs]),
        customdata=[c.mistakes for c in costs],
        hovertemplate="%{x} labels: %{y:.2%}, trained on %{customdata} wrong label(s)<extra>you</extra>"))
    fig.update_layout(title=text(title), xaxis_title="Labels used", yaxis_title="Test accuracy",
                      yaxis_tickformat=".0%", yaxis_range=[0, 1.02], xaxis_rangemode="tozero",
                      hovermode="x unified", showlegend=True, uirevision="oracle",
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
                      margin=dict(l=10, r=10, t=50, b=10), height=420)
    return fig


# ------------------------------------------------------------ one setting swept

SETTING_TITLES = {"hybrid_fraction": "Uncertainty fraction (hybrid_fraction)"}


def setting_effect_figure(effect, metric: str = "labels_to_target", target: Optional[float] = None) -> go.Figure:
    """A metric against a swept setting (:func:`alcore.analysis.stats.setting_effect`): every run as a
    dot (hover: seed), the mean over seeds with its 95% t interval as a line with error bars.
    ``metric`` is ``labels_to_target`` (runs that never reached the target are drawn as
    crosses above the rest, labelled "never", and left out of the mean) or ``aulc``."""
    if metric not in ("labels_to_target", "aulc"):
        raise ValueError(f"metric must be 'labels_to_target' or 'aulc', got {metric!r}")
    runs, summary = effect.runs, effect.summary
    name = SETTING_TITLES.get(effect.field, effect.field)
    pct = effect.field == "hybrid_fraction"
    fig = go.Figure()
    if metric == "aulc":
        mean, low, high = summary["aulc_mean"], summary["aulc_low"], summary["aulc_high"]
        y_title, dots = "AULC (mean accuracy over the labels)", runs["aulc"]
    else:
        mean, low, high = summary["labels_mean"], summary["labels_low"], summary["labels_high"]
        y_title = "Labels to reach " + (f"{target:.0%}" if target is not None else "the target")
        dots = runs["labels_to_target"].astype(float)
    reached = dots.notna()
    fig.add_trace(go.Scatter(
        x=runs["value"][reached], y=dots[reached], mode="markers", name="one seed",
        marker=dict(size=8, color="rgba(99,110,250,0.45)"), customdata=runs["seed"][reached],
        hovertemplate="seed %{customdata}: %{y}<extra></extra>"))
    if (~reached).any():
        top = float(np.nanmax([runs["final_labels"].max(), dots.max() if reached.any() else 0]))
        fig.add_trace(go.Scatter(
            x=runs["value"][~reached], y=[top * 1.05] * int((~reached).sum()), mode="markers",
            name="never reached (censored)", marker=dict(symbol="x", size=9, color="#EF553B"),
            customdata=np.stack([runs["seed"][~reached], runs["final_labels"][~reached]], axis=1),
            hovertemplate="seed %{customdata[0]}: not reached within %{customdata[1]} labels<extra></extra>"))
    ok = mean.notna()
    fig.add_trace(go.Scatter(
        x=summary["value"][ok], y=mean[ok], mode="lines+markers", name="mean over seeds",
        line=dict(color="#636EFA", width=3), marker=dict(size=10),
        error_y=dict(type="data", symmetric=False, array=(high - mean)[ok].fillna(0),
                     arrayminus=(mean - low)[ok].fillna(0), thickness=1.5, width=6),
        customdata=summary[["seeds", "reached_target"]][ok].to_numpy(),
        hovertemplate="%{x}: %{y:.4g}<br>%{customdata[0]} seeds, reached %{customdata[1]}<extra></extra>"))
    fig.update_layout(title=text(f"{y_title.split(' (')[0]} against {name}"), xaxis_title=text(name),
                      yaxis_title=text(y_title), legend=LEGEND_BELOW,
                      margin=dict(l=10, r=10, t=70, b=10))
    if pct:
        fig.update_xaxes(tickformat=".0%")
    return fig


# ------------------------------------------------------------------ phase transition

def mark_crossovers(fig: go.Figure, crossovers: Sequence) -> go.Figure:
    """Mark on a learning-curve figure each budget where an uncertainty strategy overtakes a
    typicality one (:class:`alcore.analysis.crossover.Crossover`): a dotted vertical line at the
    crossover, and a shaded vertical band over its interval over seeds. Crossovers that never
    happen, or are there from the start (no transition), are not drawn. Returns ``fig``."""
    for c in crossovers:
        if c.status != "crossed" or c.budget is None:
            continue
        color = strategy_color(c.b_strategy or c.b)
        if c.low is not None and c.high is not None and c.high > c.low:
            fig.add_vrect(x0=c.low, x1=c.high, fillcolor=_rgba(color, 0.10), line_width=0, layer="below",
                          name=text(f"{c.b} overtakes {c.a}: 95% interval"))
        fig.add_vline(x=c.budget, line=dict(color=color, dash="dot", width=1.5),
                      annotation_text=text(f"{c.b} overtakes {c.a}: {c.budget}"), annotation_position="top left",
                      annotation_textangle=-90, name=text(f"{c.b} overtakes {c.a}"))
    return fig
