"""Reading a finished run folder back: the report needs no network and no re-clustering."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..clustering import cluster_centres
from ..space import EmbeddingSpace
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
    grid: tuple[int, int]  # patch grid (rows, cols), M = rows * cols
    config: dict
    metrics: dict | None

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
        """An image's file: as recorded, else relative to the run's input folder."""
        p = Path(path)
        if p.is_absolute() or p.exists():
            return p
        base = Path(self.config.get("input", "."))
        return (base if base.is_dir() else base.parent) / p


def load_run(folder: str | Path) -> RunData:
    folder = Path(folder)
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise AnoclustError(f"{folder} is not a finished anoclust run: {', '.join(missing)} missing")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        metrics_file = folder / "metrics.json"
        metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else None
        with np.load(folder / "embeddings.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ("paths", "labels", "embeddings", "weights", "scores", "grid")}
        with open(folder / "assignments.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, ValueError, KeyError) as exc:
        raise AnoclustError(f"cannot read the run in {folder}: {exc}") from None
    paths = [str(p) for p in arrays["paths"]]
    truth = None
    if rows and "label" in rows[0]:
        by_path = {r["path"]: r["label"] for r in rows}
        truth = [by_path.get(p, "") for p in paths]
    labels = arrays["labels"]
    keep = np.flatnonzero((labels >= 0) | (labels == NORMAL))
    if not (labels >= 0).any():
        raise AnoclustError(f"the run in {folder} has no clustered images")
    max_scores = np.nan_to_num(arrays["scores"][keep].astype(np.float64), nan=-np.inf).max(1)
    max_scores[np.isneginf(max_scores)] = np.nan  # no scores (uniform weighting)
    return RunData(
        folder=folder,
        paths=[paths[i] for i in keep],
        clusters=np.asarray(arrays["labels"][keep], dtype=np.int64),
        truth=None if truth is None else [truth[i] for i in keep],
        embeddings=np.asarray(arrays["embeddings"][keep], dtype=np.float64),
        weights=np.asarray(arrays["weights"][keep], dtype=np.float32),
        max_scores=max_scores,
        grid=(int(arrays["grid"][0]), int(arrays["grid"][1])),
        config=config,
        metrics=metrics,
    )
