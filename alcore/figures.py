"""Figure builders: pure functions from data to Plotly figures (and image galleries).

The dashboard renders what these return; tests check the traces; the CLI or a
notebook can reuse them. No Streamlit here.
"""
from __future__ import annotations

import html
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from .results import ImageRef, RunResult, run_label, strategy_label

PALETTE = qualitative.Plotly
RANDOM_COLOR = "#7f7f7f"


def text(value) -> str:
    """A string as Plotly shows it literally. Plotly renders a subset of HTML in titles,
    tick labels, legends and hover text (<b>, <br>, <a href=...>) and decodes &lt; / &gt; /
    &amp;; class names, file names and dataset names come from files, so they are escaped."""
    return html.escape(str(value), quote=False)


# ------------------------------------------------------------------------- curves

def group_labels(results: Sequence[RunResult]) -> list[str]:
    """Name each run's group: its strategy, plus dataset / model / batch size when
    those differ between the runs, so unlike runs are never averaged together."""
    def differs(get):
        return len({get(r) for r in results}) > 1

    parts = [
        (differs(lambda r: r.dataset.name), lambda r: r.dataset.name),
        (differs(lambda r: r.config.model), lambda r: r.config.model),
        (differs(lambda r: r.config.batch_size), lambda r: f"batch {r.config.batch_size}"),
        (differs(lambda r: r.dataset.n_pool), lambda r: f"pool {r.dataset.n_pool}"),
    ]
    labels = []
    for r in results:
        extra = [get(r) for on, get in parts if on]
        labels.append(" · ".join([strategy_label(r.config)] + extra))
    return labels


def curve_frame(results: Sequence[RunResult], sources: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Long table of every round of every run: group, run, seed, n_labeled, test_accuracy."""
    groups = group_labels(results)
    rows = []
    for i, (res, group) in enumerate(zip(results, groups)):
        for r in res.rounds:
            rows.append({"group": group, "run": run_label(res.config), "seed": res.config.seed,
                         "source": sources[i] if sources else "", "run_id": i,
                         "n_labeled": r.n_labeled, "test_accuracy": r.test_accuracy})
    return pd.DataFrame(rows, columns=["group", "run", "seed", "source", "run_id", "n_labeled", "test_accuracy"])


def aggregate_curves(frame: pd.DataFrame, band: str = "ci95") -> pd.DataFrame:
    """Mean accuracy per group and label count across runs, with a band.

    ``band``: "ci95" is the 95% confidence interval of the mean (Student t over
    the runs at that point), "std" is +- one standard deviation, "minmax" the range;
    clipped to [0, 1], where accuracies lie."""
    from .stats import t_interval

    out = []
    for (group, n), sub in frame.groupby(["group", "n_labeled"], sort=True):
        a = sub["test_accuracy"].to_numpy(dtype=float)
        mean = a.mean()
        if len(a) < 2:
            low = high = mean
        elif band == "std":
            low, high = mean - a.std(ddof=1), mean + a.std(ddof=1)
        elif band == "minmax":
            low, high = a.min(), a.max()
        elif band == "ci95":
            _, low, high = t_interval(a, 0.95)
        else:
            raise ValueError(f"unknown band {band!r}; choose ci95, std or minmax")
        # an accuracy lies in [0, 1]: with two or three seeds the t band is wide, and unclipped it
        # stretched the axis to -200%..200% and flattened every curve
        out.append({"group": group, "n_labeled": n, "mean": mean, "low": max(low, 0.0), "high": min(high, 1.0),
                    "runs": len(a)})
    return pd.DataFrame(out, columns=["group", "n_labeled", "mean", "low", "high", "runs"])


def _colors(groups: Sequence[str]) -> dict[str, str]:
    colors, i = {}, 0
    for g in groups:
        if g.split(" ")[0] == "random":
            colors[g] = RANDOM_COLOR
        else:
            colors[g] = PALETTE[i % len(PALETTE)]
            i += 1
    return colors


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# The trace's (escaped) name, not the name pasted into the template, where "%{...}" in a
# file name would be read as a placeholder.
HOVER_CURVE = "%{x} labels: %{y:.2%}<extra>%{fullData.name}</extra>"


def learning_curve_figure(frame: pd.DataFrame, *, aggregate: bool = True, band: str = "ci95",
                          target: Optional[float] = None, title: str = "Test accuracy vs labels") -> go.Figure:
    """Accuracy-versus-labels curves. With ``aggregate``, runs of one group (several
    seeds) become a mean line with a shaded band; otherwise one line per run."""
    fig = go.Figure()
    groups = sorted(frame["group"].unique()) if len(frame) else []
    colors = _colors(groups)
    if aggregate and len(frame):
        agg = aggregate_curves(frame, band)
        for g in groups:
            sub = agg[agg["group"] == g]
            color = colors[g]
            if (sub["runs"] > 1).any():
                fig.add_trace(go.Scatter(
                    x=np.concatenate([sub["n_labeled"], sub["n_labeled"][::-1]]),
                    y=np.concatenate([sub["high"], sub["low"][::-1]]),
                    fill="toself", fillcolor=_rgba(color, 0.18), line=dict(width=0),
                    hoverinfo="skip", showlegend=False, name=text(f"{g} band"), legendgroup=g))
            runs = int(sub["runs"].max())
            fig.add_trace(go.Scatter(
                x=sub["n_labeled"], y=sub["mean"], mode="lines+markers",
                name=text(f"{g} (mean of {runs})" if runs > 1 else g),
                line=dict(color=color, width=2.5, dash="dash" if color == RANDOM_COLOR else "solid"),
                marker=dict(size=4), legendgroup=g, hovertemplate=HOVER_CURVE))
    else:
        for run_id, sub in frame.groupby("run_id", sort=True):
            g = sub["group"].iloc[0]
            color = colors[g]
            name = sub["run"].iloc[0] + (f" [{sub['source'].iloc[0]}]" if sub["source"].iloc[0] else "")
            fig.add_trace(go.Scatter(
                x=sub["n_labeled"], y=sub["test_accuracy"], mode="lines+markers", name=text(name),
                line=dict(color=color, width=2, dash="dash" if color == RANDOM_COLOR else "solid"),
                marker=dict(size=4), legendgroup=g, hovertemplate=HOVER_CURVE))
    if target is not None:
        fig.add_hline(y=target, line=dict(color="#444", dash="dot", width=1),
                      annotation_text=f"target {target:.0%}", annotation_position="bottom right")
    fig.update_layout(title=text(title), xaxis_title="Labels used", yaxis_title="Test accuracy",
                      yaxis_tickformat=".0%", uirevision="curves", hovermode="x unified",
                      showlegend=True,  # Plotly hides the legend of a one-curve figure: name it anyway
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
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
    fig.add_trace(go.Pie(labels=names, values=counts, sort=False, textinfo="percent", name="share"), row=1, col=2)
    fig.update_layout(title=text(title), showlegend=False, height=360, margin=dict(l=10, r=10, t=60, b=10))
    fig.update_xaxes(type="category", row=1, col=1)
    return fig


def confusion_figure(confusion: Sequence[Sequence[int]], class_names: Sequence[str],
                     title: str = "Confusion matrix (test set)") -> go.Figure:
    """Heatmap of true (rows) against predicted (columns) classes; each row is
    coloured by its share so small classes are readable, counts are printed."""
    m = np.asarray(confusion, dtype=float)
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
                         title: str = "Class balance of the acquired labels") -> go.Figure:
    """Grouped bars: labels acquired per class, one bar group per run."""
    groups = list(counts)
    colors = _colors(groups)
    fig = go.Figure()
    names = [text(c) for c in class_names]
    for g in groups:
        fig.add_trace(go.Bar(x=names, y=counts[g], name=text(g), marker_color=colors[g]))
    fig.update_layout(title=text(title), barmode="group", xaxis_title="Class", yaxis_title="Labels",
                      height=380, margin=dict(l=10, r=10, t=60, b=10))
    fig.update_xaxes(type="category")
    return fig


def upscale(images: np.ndarray, min_size: int = 56) -> np.ndarray:
    """Nearest-neighbour enlargement so 8x8 or 28x28 images stay crisp on screen."""
    images = np.asarray(images)
    if images.ndim < 3:
        raise ValueError(f"expected a stack of images, got shape {images.shape}")
    factor = max(1, int(np.ceil(min_size / max(images.shape[1], images.shape[2]))))
    if factor == 1:
        return images
    return images.repeat(factor, axis=1).repeat(factor, axis=2)


def gallery(images: np.ndarray, refs: Sequence[ImageRef], class_names: Sequence[str],
            with_score: bool = False) -> tuple[list[np.ndarray], list[str]]:
    """Images (already in [0, 1]) and captions for a gallery of pool images:
    predicted class and confidence, with the true label when the model is wrong."""
    captions = []
    for ref in refs:
        text = f"#{ref.index}: {class_names[ref.predicted]} ({ref.confidence:.0%})"
        if ref.label != ref.predicted:
            text += f" (true {class_names[ref.label]})"
        if with_score and ref.score is not None:
            text += f", score {ref.score:.3f}"
        captions.append(text)
    return [np.asarray(im) for im in images], captions


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
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                      margin=dict(l=10, r=10, t=70, b=10))
    return fig


# ------------------------------------------------------------------- statistics

def pairwise_figure(pairs: pd.DataFrame, title: str = "Paired tests on AULC across seeds (row − column)") -> go.Figure:
    """Heatmap of :func:`alcore.stats.pairwise_tests`: rows and columns are groups, colour is
    the mean AULC difference (row minus column) over the paired seeds, each cell says the
    verdict and the Holm-corrected Wilcoxon p-value. Pairs that were not compared are blank."""
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
    labels = [text(g) for g in names]
    finite = np.abs(z[np.isfinite(z)])
    span = float(finite.max()) if finite.size and finite.max() > 0 else 0.01
    fig = go.Figure(go.Heatmap(
        z=z, x=labels, y=labels, text=cell, texttemplate="%{text}", colorscale="RdBu", zmid=0,
        zmin=-span, zmax=span, colorbar=dict(title="AULC diff"), hoverongaps=False,
        hovertemplate="%{y} − %{x}: %{z:+.4f} AULC<br>%{text}<extra></extra>"))
    fig.update_layout(title=text(title), xaxis_title="Column", yaxis_title="Row", yaxis_autorange="reversed",
                      height=max(320, 90 * len(names) + 140), margin=dict(l=10, r=10, t=60, b=10))
    if not names:
        fig.add_annotation(text="No pairs of groups to compare", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return fig
