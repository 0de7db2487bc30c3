"""Assembling the report's HTML from a run (plain string templates; every text is escaped)."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from html import escape
from pathlib import PurePath

import numpy as np

from .. import __version__
from ..clustering import cluster_centres
from ..labels import NORMAL, cluster_name
from ..metrics import clustering_scores, contingency, hungarian_match
from .assets import CSS, JS
from .plots import LINKAGES, PALETTE, cluster_colour, dendrogram, k_curve_svg, map_svg, pca_2d
from .run import RunData
from .thumbs import Thumb

N_TYPICAL = 8  # members shown under "most typical" before the rest of the cluster
MAX_TREE = 6000  # scipy's linkage keeps all pairwise distances: 6,000 images take 144 MB
# A grid of thumbnails: a list the reviewer selects images in (see the script in assets.py).
GRID = '<div class="grid" role="listbox" aria-multiselectable="true" aria-label="images">'

# The review controls: hidden until the script has set them up (they do nothing without it).
REVIEW_BAR = (
    '<div class="review" id="review" hidden>'
    '<span id="sel-count" aria-live="polite">0 selected</span>'
    '<label>move to <select id="move-target"></select></label>'
    '<button type="button" id="move">Move</button>'
    '<button type="button" id="move-new">New cluster</button>'
    '<button type="button" id="mark-nodefect">Not a defect</button>'
    '<button type="button" id="mark-exclude">Exclude</button>'
    '<span class="sep"></span>'
    '<button type="button" id="undo" disabled>Undo</button>'
    '<button type="button" id="download">Download labels.csv</button>'
    '<button type="button" id="reset">Reset</button>'
    '<span class="hint" title="Click selects an image, Ctrl/Cmd-click adds or removes one, Shift-click '
    "selects a range. Keys on an image: arrows move, Space selects, Shift+arrows extend, Escape clears, "
    'Ctrl/Cmd+A selects the cluster, N moves the selection to a new cluster, D marks it not a defect, X '
    'excludes it, Ctrl/Cmd+Z undoes.">keys</span>'
    '<span id="review-status" role="status"></span>'
    "</div>"
)


def _name(path: str) -> str:
    return PurePath(path).name


def run_key(run: RunData) -> str:
    """Identifies a run's clustering for the page's saved review edits (localStorage is shared by
    every file:// page): the first 16 hex digits of SHA-256 over the image paths as recorded and
    their clusters as in assignments.csv. A rebuilt report of the same run finds the same edits."""
    return clustering_key(run.paths, run.clusters)


def clustering_key(paths: Sequence[str], labels: np.ndarray) -> str:
    """run_key of the images `paths` clustered as `labels`: the page's edits at another k are saved
    under that k's clustering, so `anoclust report RUN --k N` finds the edits made at k = N."""
    items = [[p, cluster_name(int(c))] for p, c in zip(paths, labels)]
    return hashlib.sha256(json.dumps(items).encode("ascii")).hexdigest()[:16]


def _attr(text: str) -> str:
    """Text for a double-quoted attribute; a carriage return survives as a character reference
    (the HTML parser would turn a literal one into a line feed)."""
    return escape(text, quote=True).replace("\r", "&#13;")


def _path_attrs(path: str) -> str:
    """data-path: the file's absolute path, for the labels.csv the page writes. A name that is not
    valid UTF-8 (kept as surrogate escapes) cannot be page text: its bytes go in data-path-bytes
    (hex), which the page writes into the CSV unchanged."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(path)
        return f'data-path="{_attr(raw.decode("utf-8", "replace"))}" data-path-bytes="{raw.hex()}"'
    return f'data-path="{_attr(path)}"'


def _review_data(run: RunData) -> str:
    """The clustering the review starts from, for the page's script (JSON: numbers and names only)."""
    data = {
        "clusters": [int(c) if c >= 0 else cluster_name(int(c)) for c in run.clusters],
        "palette": list(PALETTE),
    }
    text = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return f'<script type="application/json" id="review-data">{text}</script>'


def render(run: RunData, thumbs: Sequence[Thumb], heats: Sequence[str], thumb_size: int = 128) -> str:
    members = run.members_by_typicality()
    majority = run.majority_labels()
    normals = run.normal_members()
    odd = np.zeros(len(run.paths), dtype=bool)
    if run.truth is not None:
        odd = np.array([c >= 0 and run.truth[i] != majority[c] for i, c in enumerate(run.clusters)])
    titles = [
        f"{_name(p)} — " + (f"cluster {c}" if c >= 0 else "set apart as normal")
        + (f", label {run.truth[i]}" if run.truth is not None else "")
        for i, (p, c) in enumerate(zip(run.paths, run.clusters))
    ]
    cfg = run.config
    title = f"anoclust report — {_name(str(cfg.get('input', run.folder)))}"
    ks = _k_views(run)
    overview, tree_by_k = _overview(run, titles, odd, [labels for _, labels in ks])
    kdata = _k_data(run, ks, normals, tree_by_k) if ks else None
    body = [
        _header(run, odd),
        _toolbar(members, len(normals), _k_control(run, kdata) if kdata else "", run.heat_of),
        '<main>',
        overview,
        '<div id="clusters">',
        *(_cluster(run, c, idx, majority[c], odd, thumbs, heats) for c, idx in enumerate(members)),
        "</div>",
        _normal_set(run, normals, thumbs, heats) if len(normals) else "",
        "</main>",
        '<pre id="selfcheck"></pre>',
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="generator" content="anoclust {escape(__version__)}">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f'<body data-run="{run_key(run)}" style="--t:{int(thumb_size)}px">\n'
        + "\n".join(body)
        + f"\n{_review_data(run)}\n{_json_script('k-data', kdata) if kdata else ''}"
        + f"\n<script>{JS}</script></body></html>\n"
    )


def _header(run: RunData, odd: np.ndarray) -> str:
    cfg = run.config
    n_normal = int((run.clusters < 0).sum())  # only a run with a normal threshold has any
    facts = [("images", len(run.paths)), ("clusters", run.n_clusters)]
    facts += [("set apart as normal", n_normal)] if n_normal else []
    facts += [("skipped", cfg.get("n_skipped", 0)), ("normal references", cfg.get("n_normals", 0))]
    if run.metrics:
        facts += [(name.upper(), f"{run.metrics[name]:.3f}") for name in ("nmi", "ari", "f1") if name in run.metrics]
    if run.truth is not None:
        facts.append(("off their cluster's majority label", int(odd.sum())))
    shown = {**cfg.get("settings", {}), **run.resolved}  # as given, then what "auto" became
    settings = " ".join(
        f"<code>{escape(str(k))}={escape(_fmt(v))}</code>"
        for k, v in sorted(shown.items())
        if not isinstance(v, (dict, list))  # diagnostics stay in config.json
    )
    return (
        f"<header><h1>anoclust report</h1>"
        f'<p class="input">{escape(str(cfg.get("input", "")))}</p>'
        '<div class="facts">'
        + "".join(
            f'<span class="fact"{_fact_attr(k)}><b>{escape(str(v))}</b> {escape(k)}</span>' for k, v in facts
        )
        + f'</div><div class="settings">settings: {settings}</div>'
        + (_contingency_table(run) if run.truth is not None else "")
        + "</header>"
    )


# Facts of the header that change with the shown k (the page's script rewrites them).
K_FACTS = {"clusters": "clusters", "NMI": "nmi", "ARI": "ari", "F1": "f1",
           "off their cluster's majority label": "odd"}


def _fact_attr(name: str) -> str:
    return f' data-fact="{K_FACTS[name]}"' if name in K_FACTS else ""


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def _matched_table(truth: Sequence[str], labels: np.ndarray):
    """Clusters by labels in Hungarian-matched order: (table, clusters, classes, row order, column
    order, number of matched pairs); the matched pairs come first, in cluster order."""
    table, clusters, classes = contingency(list(truth), labels)
    match = sorted(hungarian_match(table).items())
    rows = [r for r, _ in match] + [r for r in range(len(clusters)) if r not in dict(match)]
    matched_cols = [c for _, c in match]
    cols = matched_cols + [c for c in range(len(classes)) if c not in matched_cols]
    return table, clusters, classes, rows, cols, len(match)


def _contingency_table(run: RunData) -> str:
    """Clusters by labels, matched pairs first and in the same order, so the diagonal is agreement."""
    clustered = run.clustered  # as the metrics: images set apart as normal are not clustered
    table, clusters, classes, rows, cols, n_match = _matched_table(
        [run.truth[i] for i in clustered], run.clusters[clustered])
    head = "".join(f"<th>{escape(str(classes[c]))}</th>" for c in cols)
    lines = []
    for i, r in enumerate(rows):
        cells = "".join(
            f'<td class="{"diag" if i == j and i < n_match else ("zero" if table[r, c] == 0 else "")}">'
            f"{table[r, c]}</td>"
            for j, c in enumerate(cols)
        )
        cl = int(clusters[r])
        lines.append(
            f'<tr><th><a href="#cluster-{cl}"><span class="chip" style="--c:{cluster_colour(cl)}"></span>'
            f"cluster {cl}</a></th>{cells}</tr>"
        )
    return (
        '<p class="caption">Images per cluster (rows) and label (columns), in Hungarian-matched order: '
        'the diagonal is agreement.</p><table class="cont" id="contingency">'
        f"<tr><th></th>{head}</tr>{''.join(lines)}</table>"
    )


def _toolbar(members: list[np.ndarray], n_normal: int, k_control: str, heat_of: str) -> str:
    links = "".join(
        f'<a href="#cluster-{c}"><span class="chip" style="--c:{cluster_colour(c)}"></span>{c} ({len(idx)})</a>'
        for c, idx in enumerate(members)
    )
    return (
        f'<nav class="toolbar">{k_control}<label class="switch"><input type="checkbox" id="heat-switch">'
        f"heat map of {heat_of}</label>"
        f'<span>clusters:</span> <span id="cluster-links">{links}'
        + (f' <a href="#normal">normal ({n_normal})</a>' if n_normal else "")
        + '</span> <a href="#overview">map</a>'
        + REVIEW_BAR
        + "</nav>"
    )


def _overview(run: RunData, titles, odd, by_k: Sequence[np.ndarray] = ()) -> tuple[str, list[dict]]:
    """The map and the dendrogram; and the dendrogram's colours and cut under each clustering of
    `by_k` (labels of every image), for the k control (empty without a dendrogram)."""
    xy = pca_2d(run.space(np.arange(len(run.paths))))
    parts = [
        '<section id="overview"><div class="figures"><figure>',
        map_svg(xy, run.clusters, titles, odd),
        "<figcaption>Map of the weighted embeddings (first two principal components), coloured by "
        "cluster" + ("; grey: set apart as normal" if (run.clusters < 0).any() else "")
        + ("; black ring: label differs from its cluster's majority" if run.truth is not None else "")
        + ". Click a point to jump to its image.</figcaption></figure>",
    ]
    method = str(run.resolved.get("method", ""))
    polished = method == "ward_kmeans"  # Ward's tree, then k-means steps moved some images
    method = "ward" if polished else method
    rows = run.clustered
    tree_by_k: list[dict] = []
    if method in LINKAGES and len(rows) > MAX_TREE:
        parts.append(
            f'<p class="note">No dendrogram: redrawing the tree of {len(rows)} images would need memory '
            f"growing with the square of the number of images (limit {MAX_TREE}).</p>"
        )
    elif method in LINKAGES and len(rows) >= 3:
        svg, tree_by_k = dendrogram(run.space(rows), run.clusters[rows], method, ids=rows,
                                    by_k=[labels[rows] for labels in by_k])
        parts += [
            "<figure>",
            svg,
            f"<figcaption>{escape(method.capitalize())} dendrogram (top merges only for large runs; a leaf "
            "bar is a group of images, grey when it mixes clusters). Dashed line: the cut into "
            f'<span class="k-now">{run.n_clusters}</span> clusters'
            + (" before the k-means steps, which may move images across it" if polished else "")
            + ".</figcaption></figure>",
        ]
    parts.append("</div></section>")
    return "".join(parts), tree_by_k


def _cluster(run: RunData, c: int, idx: np.ndarray, majority: str | None, odd, thumbs, heats) -> str:
    n = len(idx)
    head = f'<h2>Cluster {c}<span class="size">{n} image{"s" if n != 1 else ""}</span></h2>'
    note = "Sorted by distance to the cluster centre, most typical first."
    if majority is not None:
        share = sum(run.truth[i] == majority for i in idx)
        n_odd = int(odd[idx].sum())
        others = f"{n_odd} member{'s' if n_odd != 1 else ''} with another label, outlined in red" if n_odd else "no other label"
        note = f"Majority label <b>{escape(majority)}</b> ({share} of {n}); {others}. {note}"
    typical, rest = idx[:N_TYPICAL], idx[N_TYPICAL:]
    parts = [
        f'<section class="cluster" id="cluster-{c}" data-g="{c}" style="--c:{cluster_colour(c)}">{head}'
        f'<p class="note">{note}</p><div class="part"><h3>Most typical</h3>{GRID}',
        *(_thumb(run, i, odd[i], thumbs[i], heats[i]) for i in typical),
        "</div></div>",
    ]
    if len(rest):
        parts += [f"<div class=\"part\"><h3>All other members</h3>{GRID}"]
        parts += [_thumb(run, i, odd[i], thumbs[i], heats[i]) for i in rest]
        parts.append("</div></div>")
    parts.append("</section>")
    return "".join(parts)


def _normal_set(run: RunData, idx: np.ndarray, thumbs, heats) -> str:
    return (
        f'<section class="normal-set" id="normal"><h2>Set apart as normal<span class="size">'
        f'{len(idx)} image{"s" if len(idx) != 1 else ""}</span></h2><p class="note">Largest patch score below the '
        "normal threshold, so not clustered; the least clearly normal (largest score) first.</p>"
        f'<div class="part">{GRID}' + "".join(_thumb(run, i, False, thumbs[i], heats[i]) for i in idx)
        + "</div></div></section>"
    )


def _thumb(run: RunData, i: int, odd: bool, thumb: Thumb, heat: str) -> str:
    path = run.paths[i]
    label = run.truth[i] if run.truth is not None else ""
    tip = path + (f"\nlabel: {label}" if label else "") + (f"\n{thumb.missing}" if thumb.missing else "")
    if odd:
        tip += "\nlabel differs from the cluster's majority"
    return (
        f'<figure class="thumb{" odd" if odd else ""}" id="img-{i}" title="{_attr(tip)}" data-i="{i}" '
        f'{_path_attrs(os.path.abspath(run.resolve(path)))} tabindex="-1" role="option" aria-selected="false">'
        f'<div class="frame"><div class="wrap"><img class="pic" src="{thumb.uri}" width="{thumb.width}" '
        f'height="{thumb.height}" alt="{escape(_name(path))}" loading="lazy" decoding="async">'
        f'<img class="heat" src="{heat}" alt="" loading="lazy" decoding="async"></div></div>'
        f"<figcaption>{escape(_name(path))}"
        + (f'<br><span class="lab">{escape(label)}</span>' if label else "")
        + "</figcaption></figure>"
    )


# ---- the k control: the clustering at every k the run kept --------------------------------------


def _k_views(run: RunData) -> list[tuple[int, np.ndarray]]:
    """(k, labels of every image) for each k the page can show: the run's clusterings that set
    the same images apart as normal as the shown one and number their clusters 0..k'-1 without a
    gap. Empty for a run written before the k control, or when none of them is the shown one."""
    if not run.ks or run.labels_by_k.shape != (len(run.ks), len(run.paths)):
        return []
    apart = run.clusters < 0
    views = []
    for k, labels in zip(run.ks, run.labels_by_k):
        if not np.array_equal(labels < 0, apart) or not (labels[~apart] >= 0).all():
            continue
        if not (labels[apart] == NORMAL).all() or (np.bincount(labels[~apart]) == 0).any():
            continue
        views.append((int(k), labels))
    if _base_k(run, views) is None:
        return []
    return views


def _base_k(run: RunData, views: list[tuple[int, np.ndarray]]) -> int | None:
    """The k of the clustering the page was built with (run.clusters), or None."""
    same = [k for k, labels in views if np.array_equal(labels, run.clusters)]
    for k in (run.config.get("shown_k"), run.resolved.get("n_clusters")):
        if isinstance(k, int) and not isinstance(k, bool) and k in same:
            return k
    return same[0] if same else None


def _finite(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) else None


def _diagnostics(run: RunData) -> dict | None:
    """The run's k criterion ({"criterion", "ks", "values"}) when it chose k, else None."""
    diag = run.resolved.get("k_diagnostics")
    if not isinstance(diag, dict):
        return None
    ks, values = diag.get("ks"), diag.get("values")
    if not isinstance(ks, list) or not isinstance(values, list) or len(ks) != len(values):
        return None
    pairs = [(k, _finite(v)) for k, v in zip(ks, values) if isinstance(k, int) and not isinstance(k, bool)]
    return {"criterion": str(diag.get("criterion", "")), "ks": [k for k, _ in pairs], "values": [v for _, v in pairs]}


def _order_by_typicality(x: np.ndarray, rows: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
    """As RunData.members_by_typicality for another clustering: x the clustered images `rows` in
    the run's space, labels their clusters 0..k-1."""
    centres = cluster_centres(x, labels)
    out = []
    for c in range(int(labels.max()) + 1):
        mine = np.flatnonzero(labels == c)
        dist = np.linalg.norm(x[mine] - centres[c], axis=1)
        out.append(rows[mine[np.argsort(dist, kind="stable")]])
    return out


def _k_data(run: RunData, views: list[tuple[int, np.ndarray]], normals: np.ndarray, tree_by_k: list[dict]) -> dict:
    """What the page's script needs to show any k in place (integers and short texts only: the
    thumbnails are in the page once, the script moves them)."""
    rows = run.clustered
    x = run.space(rows)
    base = _base_k(run, views)
    chosen = run.resolved.get("n_clusters")
    classes = sorted(set(run.truth)) if run.truth is not None else []
    code = {name: j for j, name in enumerate(classes)}
    truth = [code[t] for t in run.truth] if run.truth is not None else None
    per_k = []
    for j, (k, labels) in enumerate(views):
        members = _order_by_typicality(x, rows, labels[rows])
        entry = {
            "k": k,
            "key": clustering_key(run.paths, labels),
            "order": [int(i) for idx in members for i in idx],
            "sizes": [len(idx) for idx in members],
        }
        if run.truth is not None:
            majors = [Counter(run.truth[i] for i in np.flatnonzero(labels == c)).most_common(1)[0][0]
                      for c in range(len(members))]
            entry["major"] = [code[m] for m in majors]
            entry["share"] = [sum(run.truth[i] == m for i in idx) for m, idx in zip(majors, members)]
            table, clusters, names, order_r, order_c, n_match = _matched_table(
                [run.truth[i] for i in rows], labels[rows])
            entry["table"] = {
                "rows": [int(clusters[r]) for r in order_r],
                "cols": [code[str(names[c])] for c in order_c],
                "cells": [[int(table[r, c]) for c in order_c] for r in order_r],
                "match": n_match,
            }
            if run.metrics:
                scores = run.metrics if k == base else clustering_scores([run.truth[i] for i in rows], labels[rows])
                entry["metrics"] = {m: f"{scores[m]:.3f}" for m in ("nmi", "ari", "f1") if m in run.metrics}
        if tree_by_k:
            entry["tree"] = tree_by_k[j]
        per_k.append(entry)
    return {
        "ks": [k for k, _ in views],
        "base": base,
        "chosen": chosen if isinstance(chosen, int) and not isinstance(chosen, bool) else None,
        "mark": "chosen" if _diagnostics(run) is not None else "given",  # how the list names the run's k
        "typical": N_TYPICAL,
        "palette": list(PALETTE),
        "classes": classes,
        "truth": truth,
        "normal": [int(i) for i in normals],
        "by": per_k,
    }


def _json_script(element_id: str, data) -> str:
    """Data for the page's script; every "<" escaped, so no text in it can end the element."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _k_control(run: RunData, kdata: dict) -> str:
    """The toolbar's k control: -, a list of every k, +, and the run's criterion against k (or a
    note that k was given). Hidden until the page's script has set it up."""
    base, chosen, diag = kdata["base"], kdata["chosen"], _diagnostics(run)
    options = "".join(
        f'<option value="{k}"{" selected" if k == base else ""}>'
        f'{k}{" · " + kdata["mark"] if k == chosen else ""}</option>'
        for k in kdata["ks"]
    )
    if diag is None:
        aside = (f'<span class="k-note">k fixed at {chosen} by --k: no criterion to compare k by</span>'
                 if chosen is not None else '<span class="k-note">k was fixed: no criterion to compare k by</span>')
    elif not diag["ks"]:
        aside = '<span class="k-note">too few images to compare k</span>'
    else:
        aside = (k_curve_svg(diag["ks"], diag["values"], chosen, base, diag["criterion"])
                 + f'<span class="k-note">{escape(diag["criterion"])}: higher is better; ring: the run\'s choice</span>')
    return (
        '<div class="kctl" id="k-control" hidden><label for="k-select">clusters k</label>'
        '<button type="button" id="k-minus" aria-label="one cluster fewer" title="one cluster fewer">&minus;</button>'
        f'<select id="k-select">{options}</select>'
        '<button type="button" id="k-plus" aria-label="one cluster more" title="one cluster more">+</button>'
        f"{aside}</div>"
    )
