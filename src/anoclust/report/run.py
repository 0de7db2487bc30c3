"""Reading a finished run folder back: the report needs no network and no re-clustering."""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from ..clustering import cluster_centres
from ..settings import NORMALIZATIONS
from ..space import EmbeddingSpace
from ..atomic import read_regular
from ..errors import AnoclustError
from ..labels import NORMAL

REQUIRED = ("assignments.csv", "embeddings.npz", "config.json")


@dataclass
class RunData:
    """What a run folder holds for its readable images: clustered (0..k-1) or set apart as NORMAL."""

    folder: Path
    paths: list[str]
    clusters: np.ndarray  # (N,) 0..k-1 (0 the largest) or NORMAL
    truth: list[str] | None  # known labels, else None
    embeddings: np.ndarray  # (N, D) weighted embeddings, before the run's normalisation
    weights: np.ndarray  # (N, M) patch weights
    max_scores: np.ndarray  # (N,) largest patch score (NaN when the weighting has none)
    grids: np.ndarray  # (N, 2) each image's patch grid (rows, cols), rows * cols = M
    config: dict
    metrics: dict | None
    # what the heat maps show, (N, M): the patch weights, or with average pooling (even weights
    # that show nothing) the patch scores, unscored patches at their image's lowest score
    heat: np.ndarray
    heat_of: str  # "patch weights" or "patch scores"
    # the clustering at every k the run computed (`--k k` would give these): ks and (K, N) labels
    ks: list[int] = field(default_factory=list)
    labels_by_k: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    # aspect "keep": the ring's width around each interior grid (the heat map's margin); the
    # bag's first rows * cols patches are the interior, the ring patches follow
    ring: int = 0

    @property
    def n_clusters(self) -> int:
        return int(self.clusters.max()) + 1 if (self.clusters >= 0).any() else 0

    @property
    def clustered(self) -> np.ndarray:
        """Indices of the clustered images (not set apart as normal)."""
        return np.flatnonzero(self.clusters >= 0)

    @property
    def resolved(self) -> dict:
        """What the run's "auto" settings became (anoclust.fit.Resolved)."""
        return self.config.get("resolved", {})

    @cached_property
    def _space(self) -> EmbeddingSpace:
        """The run's clustering space, fitted like the run's on the clustered images."""
        how, components = self.resolved.get("normalize", "none"), self.resolved.get("n_components", 0)
        return EmbeddingSpace(how, self.embeddings[self.clustered], components)

    def space(self, rows: np.ndarray) -> np.ndarray:
        """Embeddings of `rows` in the space the run clustered in."""
        return self._space(self.embeddings[rows])

    def members_by_typicality(self) -> list[np.ndarray]:
        """Per cluster, member indices sorted by distance to the cluster centre (nearest first)."""
        rows = self.clustered
        x, labels = self.space(rows), self.clusters[rows]
        centres = cluster_centres(x, labels)
        out = []
        for c in range(self.n_clusters):
            mine = np.flatnonzero(labels == c)
            dist = np.linalg.norm(x[mine] - centres[c], axis=1)
            out.append(rows[mine[np.argsort(dist, kind="stable")]])
        return out

    def normal_members(self) -> np.ndarray:
        """Images set apart as normal, largest patch score (least sure to be normal) first."""
        idx = np.flatnonzero(self.clusters == NORMAL)
        return idx[np.argsort(-np.nan_to_num(self.max_scores[idx], nan=-np.inf), kind="stable")]

    def majority_labels(self) -> list[str | None]:
        """Most frequent known label per cluster (None without labels)."""
        if self.truth is None:
            return [None] * self.n_clusters
        return [
            Counter(self.truth[i] for i in np.flatnonzero(self.clusters == c)).most_common(1)[0][0]
            for c in range(self.n_clusters)
        ]

    def resolve(self, path: str) -> Path:
        """An image's file: paths are recorded as given, relative to the folder the run was started
        in (config.json's `cwd`), whatever folder the report is built from."""
        p = Path(path)
        if p.is_absolute():
            return p
        if "cwd" in self.config:
            return Path(self.config["cwd"]) / p
        base = Path(self.config.get("input", "."))  # runs written before `cwd` was recorded
        return p if p.exists() else (base if base.is_dir() else base.parent) / p


# Bounds for reading a run folder: a config or metrics file is a few kB, embeddings.npz holds
# float arrays of every image (about 10 kB per image at the defaults).
MAX_JSON_BYTES = 1 << 20
MAX_TABLE_BYTES = 1 << 31
# The ring is at most an eighth of the grid's side (features.aspect.ring_width); this bound is far
# above any real one and keeps a hand-edited value from inflating the heat maps.
MAX_RING = 64


def load_run(folder: str | Path) -> RunData:
    """Read and check a run folder; a damaged one is refused with one line saying what is wrong."""
    folder = Path(folder)
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise AnoclustError(f"{folder} is not a finished anoclust run: {', '.join(missing)} missing")
    try:
        config = _json(folder / "config.json")
        metrics = _json(folder / "metrics.json") if (folder / "metrics.json").is_file() else None
        npz_bytes = read_regular(folder / "embeddings.npz", MAX_TABLE_BYTES)
        with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ("paths", "labels", "embeddings", "weights", "scores", "grid")}
            # runs written before the k control lack ks and labels_by_k; before aspect "keep", ring
            for optional in ("ks", "labels_by_k", "ring"):
                if optional in npz.files:
                    arrays[optional] = npz[optional]
        text = read_regular(folder / "assignments.csv", MAX_TABLE_BYTES).decode("utf-8", "surrogateescape")
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise AnoclustError(f"cannot read the run in {folder}: {exc}; re-run anoclust cluster") from None
    problem = _check(config, arrays, rows)
    if problem:
        raise AnoclustError(f"the run in {folder} is damaged ({problem}); re-run anoclust cluster")
    truth = None
    if rows and "label" in rows[0]:
        by_path = {r["path"]: r["label"] for r in rows}
        truth = [by_path.get(str(p), "") for p in arrays["paths"]]
    if metrics is not None and metrics.get("run_id") != config.get("run_id"):
        metrics = None  # another run's scores: never shown as this run's
    return run_data(folder, config, metrics, [str(p) for p in arrays["paths"]], arrays["labels"], truth,
                    arrays["embeddings"], arrays["weights"], arrays["scores"], arrays["grid"],
                    arrays.get("ks"), arrays.get("labels_by_k"), int(arrays.get("ring", 0)))


def run_data(folder: Path, config: dict, metrics: dict | None, paths: list[str], labels: np.ndarray,
             truth: list[str] | None, embeddings: np.ndarray, weights: np.ndarray, scores: np.ndarray,
             grid: np.ndarray, ks: np.ndarray | None = None, labels_by_k: np.ndarray | None = None,
             ring: int = 0) -> RunData:
    """A RunData from a run's arrays (as the run folder holds them; the job builds its report
    from them before the folder's files are in place). grid: (N, 2) per image, or (2,) for every
    image (runs written before aspect "keep")."""
    keep = np.flatnonzero((labels >= 0) | (labels == NORMAL))
    if not (labels >= 0).any():
        raise AnoclustError(f"the run in {folder} has no clustered images")
    max_scores = np.nan_to_num(np.asarray(scores[keep], dtype=np.float64), nan=-np.inf).max(1)
    max_scores[np.isneginf(max_scores)] = np.nan  # no scores (uniform weighting)
    heat, heat_of = np.asarray(weights[keep], dtype=np.float32), "patch weights"
    if (config.get("resolved") or {}).get("pooling") == "average" and np.isfinite(max_scores).all():
        kept_scores = np.asarray(scores[keep], dtype=np.float32)
        lowest = np.nanmin(kept_scores, 1, keepdims=True)
        heat, heat_of = np.where(np.isnan(kept_scores), lowest, kept_scores), "patch scores"
    return RunData(
        folder=Path(folder),
        paths=[paths[i] for i in keep],
        clusters=np.asarray(labels[keep], dtype=np.int64),
        truth=None if truth is None else [truth[i] for i in keep],
        embeddings=np.asarray(embeddings[keep], dtype=np.float64),
        weights=np.asarray(weights[keep], dtype=np.float32),
        max_scores=max_scores,
        grids=per_image_grids(grid, len(paths))[keep],
        config=config,
        metrics=metrics,
        ks=[] if ks is None else [int(k) for k in ks],
        labels_by_k=(np.zeros((0, len(keep)), dtype=np.int64) if labels_by_k is None or not len(labels_by_k)
                     else np.asarray(labels_by_k, dtype=np.int64)[:, keep]),
        ring=int(ring),
        heat=heat,
        heat_of=heat_of,
    )


def per_image_grids(grid: np.ndarray, n: int) -> np.ndarray:
    """(n, 2) grids from a run's `grid`: one row per image, or one (2,) grid for all."""
    grid = np.asarray(grid, dtype=np.int64)
    return np.broadcast_to(grid, (n, 2)).copy() if grid.shape == (2,) else grid


def _json(path: Path) -> dict:
    value = json.loads(read_regular(path, MAX_JSON_BYTES).decode("utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} holds a {type(value).__name__}, not an object")
    return value


def _check(config: dict, a: dict, rows: list[dict]) -> str | None:
    """What is wrong with a run folder's contents, or None."""
    resolved = config.get("resolved", {})
    if not isinstance(resolved, dict) or not isinstance(config.get("settings", {}), dict):
        return "config.json: 'settings' and 'resolved' must be objects"
    if resolved.get("normalize", "none") not in NORMALIZATIONS:
        return f"config.json: unknown normalisation {resolved.get('normalize')!r}"
    components = resolved.get("n_components", 0)
    if not (isinstance(components, int) and components >= 0):
        return f"config.json: n_components must be a whole number, got {components!r}"
    n = len(a["paths"])
    grid = a["grid"]
    if grid.shape not in ((2,), (n, 2)) or not np.issubdtype(grid.dtype, np.integer) or (grid < 1).any():
        return f"embeddings.npz: grid must be two positive whole numbers, once or per image, got shape {grid.shape}"
    ring = a.get("ring", np.int64(0))
    if ring.shape != () or not np.issubdtype(ring.dtype, np.integer) or not 0 <= int(ring) <= MAX_RING:
        return f"embeddings.npz: ring must be one whole number from 0 to {MAX_RING}, got {ring.tolist()}"
    sizes = np.prod(grid.reshape(-1, 2), axis=1)
    if (sizes != sizes[0]).any():
        return "embeddings.npz: grid holds patch grids of different sizes"
    m = int(sizes[0])
    if int(ring):  # keep mode: M = (sqrt(T) + 2 ring)^2, the interior T first (features.aspect)
        side = math.isqrt(m)
        if side * side != m:
            return f"embeddings.npz: keep-mode grids of {m} patches, not a square count"
        m = (side + 2 * int(ring)) ** 2
    shapes = {"labels": (n,), "weights": (n, m), "scores": (n, m)}
    for name, shape in shapes.items():
        if a[name].shape != shape:
            return (f"embeddings.npz: {name} has shape {a[name].shape}, expected {shape} for {n} images on "
                    f"grids of {m} patches")
    if a["embeddings"].ndim != 2 or len(a["embeddings"]) != n:
        return f"embeddings.npz: embeddings has shape {a['embeddings'].shape}, expected ({n}, D)"
    if a["paths"].dtype.kind != "U" or not np.issubdtype(a["labels"].dtype, np.integer):
        return "embeddings.npz: paths must be text and labels whole numbers"
    kept = (a["labels"] >= 0) | (a["labels"] == NORMAL)
    if not np.isfinite(a["embeddings"][kept]).all() or not np.isfinite(a["weights"][kept]).all():
        return "embeddings.npz: embeddings or weights hold NaN or infinite values"
    if rows and "path" not in rows[0]:
        return "assignments.csv has no 'path' column"
    if "ks" in a or "labels_by_k" in a:
        ks, by_k = a.get("ks", np.zeros(0)), a.get("labels_by_k", np.zeros((0, n)))
        if ks.ndim != 1 or by_k.shape != (len(ks), n) or not np.issubdtype(by_k.dtype, np.integer):
            return f"embeddings.npz: labels_by_k has shape {by_k.shape}, expected ({len(ks)}, {n})"
    return None
