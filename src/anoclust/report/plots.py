"""Inline SVG figures of the report: the 2-D map of the embeddings and the dendrogram."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

LINKAGES = ("ward", "average", "complete")  # methods whose tree scipy can redraw
MIXED = "#9a9a9a"  # a dendrogram branch holding several clusters; a map point set apart as normal


# Distinct colours for the first clusters, then golden-angle steps around the hue wheel.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def cluster_colour(c: int) -> str:
    if c < len(PALETTE):
        return PALETTE[c]
    return f"hsl({(c * 137.508) % 360:.0f},60%,40%)"


def pca_2d(x: np.ndarray) -> np.ndarray:
    """First two principal coordinates of the rows of x (zeros where x has less variation)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(0)
    out = np.zeros((len(x), 2))
    if len(x) > 1:
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        comps = vt[:2]
        out[:, : len(comps)] = x @ comps.T
    return out


def map_svg(
    xy: np.ndarray, clusters: np.ndarray, titles: Sequence[str], odd: np.ndarray, size=(560, 420), margin=14
) -> str:
    """Scatter plot, equal axis scales, one clickable point per image linking to `#img-<i>`."""
    w, h = size
    lo, hi = xy.min(0), xy.max(0)
    span = np.maximum(hi - lo, 1e-12)
    scale = min((w - 2 * margin) / span[0], (h - 2 * margin) / span[1])
    off = (np.array([w, h]) - span * scale) / 2
    pts = (xy - lo) * scale + off
    pts[:, 1] = h - pts[:, 1]  # y up
    r = 4.0 if len(xy) <= 300 else 2.8
    parts = [
        f'<svg id="map" class="plot" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="2-D map of the embeddings">',
        f'<rect width="{w}" height="{h}" fill="#fff"/>',
    ]
    # Normal images (negative label) first, then the largest cluster, so the points of small
    # clusters stay on top and clickable.
    for i in np.lexsort((np.arange(len(xy)), clusters)):
        c = int(clusters[i])
        cls = ' class="odd"' if odd[i] else ""
        parts.append(
            f'<a href="#img-{i}"><circle{cls} cx="{pts[i, 0]:.1f}" cy="{pts[i, 1]:.1f}" r="{r}" '
            f'fill="{cluster_colour(c) if c >= 0 else MIXED}"><title>{escape(titles[i])}</title></circle></a>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _node_clusters(z: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Cluster of every node of the tree (-1: mixed), bottom-up."""
    n = len(clusters)
    node_cluster = np.empty(2 * n - 1, dtype=np.int64)
    node_cluster[:n] = clusters
    for j, (a, b) in enumerate(z[:, :2].astype(np.int64)):
        node_cluster[n + j] = node_cluster[a] if node_cluster[a] == node_cluster[b] else -1
    return node_cluster


def dendrogram(
    x: np.ndarray,
    clusters: np.ndarray,
    method: str,
    ids: np.ndarray | None = None,
    max_leaves: int = 60,
    size=(560, 420),
    margin=14,
    by_k: Sequence[np.ndarray] = (),
) -> tuple[str, list[dict]]:
    """The hierarchical tree of the embeddings as an SVG, truncated to its top `max_leaves - 1`
    merges: branches whose images all share one cluster take its colour, a dashed line marks the
    cut, leaves link to their image (`#img-<ids[row]>`) or cluster. Also how it looks under each
    of the other clusterings `by_k` (labels of the same rows): per clustering {"c": cluster of each drawn branch (the SVG's paths, in order)
    then of each leaf bar (left to right), -1 for mixed; "y": the height of the cut line, or None}.
    With `by_k` the cut line is always drawn (hidden when this clustering has no cut), so the
    page's script can move it."""
    from scipy.cluster.hierarchy import linkage

    n = len(x)
    if n < 3:
        return "", []
    z = linkage(np.asarray(x, dtype=np.float64), method)
    node_cluster = _node_clusters(z, clusters)
    p = min(max_leaves, n)
    first_shown = 2 * n - 1 - (p - 1)  # internal nodes drawn: the last p-1 merges

    def height(node: int) -> float:
        return float(z[node - n, 2]) if node >= first_shown else 0.0

    leaves: list[int] = []
    stack = [2 * n - 2]
    while stack:  # left-to-right leaf order, as a depth-first walk
        node = stack.pop()
        if node >= first_shown:
            a, b = z[node - n, :2].astype(np.int64)
            stack += [int(b), int(a)]
        else:
            leaves.append(node)

    w, h = size
    bottom, top = h - margin - 10, margin
    y_scale = (bottom - top) / max(float(z[-1, 2]), 1e-12)
    step = (w - 2 * margin) / p
    xpos = {leaf: margin + step * (i + 0.5) for i, leaf in enumerate(leaves)}

    def colour(node: int) -> str:
        return MIXED if node_cluster[node] < 0 else cluster_colour(int(node_cluster[node]))

    def cut_y(labels: np.ndarray) -> float | None:
        k = int(labels.max()) + 1
        if not 1 < k < n:
            return None
        return round(float(bottom - (z[n - k - 1, 2] + z[n - k, 2]) / 2 * y_scale), 1)

    lines = []
    for node in range(first_shown, 2 * n - 1):  # merges in order: children are placed first
        a, b = (int(v) for v in z[node - n, :2])
        xpos[node] = (xpos[a] + xpos[b]) / 2
        y = bottom - height(node) * y_scale
        ya, yb = bottom - height(a) * y_scale, bottom - height(b) * y_scale
        lines.append(
            f'<path d="M{xpos[a]:.1f} {ya:.1f}V{y:.1f}H{xpos[b]:.1f}V{yb:.1f}" stroke="{colour(node)}"/>'
        )
    marks = []
    bar = max(2.0, step * 0.8)
    for leaf in leaves:
        count = 1 if leaf < n else int(z[leaf - n, 3])
        c = int(node_cluster[leaf])
        target = f"#img-{leaf if ids is None else int(ids[leaf])}" if leaf < n else (f"#cluster-{c}" if c >= 0 else "#clusters")
        what = f"image {leaf}" if leaf < n else f"{count} images"
        where = f"cluster {c}" if c >= 0 else "several clusters"
        marks.append(
            f'<a href="{target}"><rect x="{xpos[leaf] - bar / 2:.1f}" y="{bottom + 2:.1f}" width="{bar:.1f}" '
            f'height="8" fill="{colour(leaf)}"><title>{what}, {where}</title></rect></a>'
        )
    cut = ""
    k, yc = int(clusters.max()) + 1, cut_y(clusters)
    if yc is not None or by_k:
        hide = "" if yc is not None else ' display="none"'
        cut = (
            f'<line x1="{margin}" x2="{w - margin}" y1="{yc or 0:.1f}" y2="{yc or 0:.1f}" stroke="#333" '
            f'stroke-dasharray="5 4"{hide}>'
            f"<title>cut into {k} clusters</title></line>"
        )
    drawn = list(range(first_shown, 2 * n - 1)) + leaves
    per_k = []
    for labels in by_k:
        nodes = _node_clusters(z, np.asarray(labels))
        per_k.append({"c": [int(nodes[v]) for v in drawn], "y": cut_y(np.asarray(labels))})
    svg = (
        f'<svg id="dendrogram" class="plot" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="{escape(method)} dendrogram">'
        f'<rect width="{w}" height="{h}" fill="#fff"/>'
        f'<g fill="none" stroke-width="1.4">{"".join(lines)}</g>{cut}{"".join(marks)}</svg>'
    )
    return svg, per_k


def k_curve_svg(ks: Sequence[int], values: Sequence[float | None], chosen: int | None, shown: int,
                criterion: str = "", height: int = 44) -> str:
    """The k criterion's value against k (higher is better) as a small inline figure for the
    toolbar: one column per k (`data-k`, clicked to show that k), the chosen k ringed, the shown k
    highlighted (class "on", which the page's script moves). Values that are not finite are left
    out of the line."""
    ks = [int(k) for k in ks]
    vals = [float(v) if v is not None and np.isfinite(v) else None for v in values]
    finite = [v for v in vals if v is not None]
    step = 14 if len(ks) <= 20 else max(6, 280 // len(ks))
    mx, top, bottom = 8, 6, height - 14
    w = 2 * mx + step * max(len(ks) - 1, 0)
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0

    def xy(j: int, v: float) -> tuple[float, float]:
        return mx + step * j, bottom - (v - lo) / span * (bottom - top)

    line, pen = [], "M"
    for j, v in enumerate(vals):
        if v is None:
            pen = "M"
            continue
        x, y = xy(j, v)
        line.append(f"{pen}{x:.1f} {y:.1f}")
        pen = "L"
    cols = []
    for j, (k, v) in enumerate(zip(ks, vals)):
        x = mx + step * j
        cls = "kpt" + (" chosen" if k == chosen else "") + (" on" if k == shown else "")
        tip = f"k = {k}: " + (f"{v:.4g}" if v is not None else "no value")
        tip += " (the run's choice)" if k == chosen else ""
        dot = ""
        if v is not None:
            cy = xy(j, v)[1]
            dot = f'<circle class="dot" cx="{x:.1f}" cy="{cy:.1f}" r="2.5"/>'
            if k == chosen:
                dot += f'<circle class="ring" cx="{x:.1f}" cy="{cy:.1f}" r="5.5"/>'
        ticks = j == 0 or j == len(ks) - 1 or k == chosen or (len(ks) <= 12)
        label = f'<text x="{x:.1f}" y="{height - 3}">{k}</text>' if ticks else ""
        cols.append(
            f'<g class="{cls}" data-k="{k}"><rect class="hit" x="{x - step / 2:.1f}" y="0" width="{step}" '
            f'height="{height}"/>{dot}{label}<title>{escape(tip)}</title></g>'
        )
    what = f"{criterion} criterion" if criterion else "criterion"
    return (
        f'<svg id="k-curve" class="kcurve" viewBox="0 0 {w} {height}" width="{w}" height="{height}" role="img" '
        f'aria-label="{escape(what)} against k, higher is better; click a k to show it">'
        f'<path class="line" d="{" ".join(line)}"/>{"".join(cols)}</svg>'
    )
