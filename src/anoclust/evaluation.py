"""Benchmark tables: every weighting on every dataset, scored against the true defect types.

A dataset is embedded once (through the feature cache); each weighting and seed then re-uses
the same patch bags, so a table over four weightings costs one network pass per image. Beside
the weightings, two multiple-instance baselines cluster distances between the bags themselves
(`chamfer`, `hausdorff`: anoclust.bag_distances), the paper's comparison.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import bag_distances as bd
from .clustering import EXACT_WARD_MAX
from .errors import AnoclustError
from .fit import fit_bags
from .inputs import ImageSet, read_input, read_path_list
from .metrics import clustering_scores
from .settings import WEIGHTINGS, Params
from .weighting import WEIGHTING_TYPES

log = logging.getLogger(__name__)

MVTEC_OBJECTS = ("bottle", "cable", "capsule", "hazelnut", "metal_nut", "pill", "screw", "toothbrush",
                 "transistor", "zipper")
MVTEC_TEXTURES = ("carpet", "grid", "leather", "tile", "wood")
METRICS = ("nmi", "ari", "f1")
# Every row evaluate can make, in table order: the weightings, then the bag-distance baselines
# (by default too: with seeds 0, 1, 2 an evaluate run of only them takes 12 s on MTD and 157 s
# on NEU with cached features, docs/RESULTS.md "Multiple-instance baselines").
ROWS = WEIGHTINGS + bd.BAG_BASELINES
# MTD protocol (data/mtd/README.md): five defect folders, the fixed list of normal references.
MTD_CLASSES = ("MT_Blowhole", "MT_Break", "MT_Crack", "MT_Fray", "MT_Uneven")
MTD_NORMALS = "reference_normals.txt"


@dataclass
class Dataset:
    name: str
    group: str  # "object" / "texture" (MVTec), "mvtec" (other MVTec-layout), "mtd", "folder"
    images: ImageSet


def mvtec_datasets(root: str | Path, categories: Sequence[str] | None = None, include_good: bool = True) -> list[Dataset]:
    """One dataset per MVTec category folder under `root` (or `root` itself if it is one)."""
    root = Path(root)
    if not root.is_dir():
        raise AnoclustError(f"--mvtec {root} is not a folder")
    if (root / "train" / "good").is_dir():
        folders = [root]
    else:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and (p / "train" / "good").is_dir())
    if categories:
        by_name = {p.name: p for p in folders}
        missing = [c for c in categories if c not in by_name]
        if missing:
            raise AnoclustError(f"--categories {', '.join(missing)} not found under {root}")
        folders = [by_name[c] for c in categories]
    if not folders:
        raise AnoclustError(f"--mvtec {root} holds no MVTec category (folders with train/good and test)")
    out = []
    for p in folders:
        group = "object" if p.name in MVTEC_OBJECTS else "texture" if p.name in MVTEC_TEXTURES else "mvtec"
        out.append(Dataset(p.name, group, read_input(p, layout="mvtec", include_good=include_good)))
    return out


def mtd_dataset(root: str | Path) -> Dataset:
    """MTD with the project's protocol: the five defect types, the listed normal references."""
    root = Path(root)
    missing = [c for c in MTD_CLASSES if not (root / c).is_dir()]
    if missing or not (root / MTD_NORMALS).is_file():
        raise AnoclustError(f"--mtd {root} needs the folders {', '.join(MTD_CLASSES)} and {MTD_NORMALS}")
    every = read_input(root, layout="labelled")
    keep = [i for i, label in enumerate(every.labels) if label in MTD_CLASSES]
    paths = [every.paths[i] for i in keep]
    labels = [every.labels[i] for i in keep]
    masks = [every.masks[i] for i in keep] if every.masks else None
    normals = read_path_list(root / MTD_NORMALS)
    return Dataset("mtd", "mtd", ImageSet(paths, labels, normals, masks, "labelled", root))


def folder_dataset(path: str | Path, normal: str | Path | None = None) -> Dataset:
    images = read_input(path)
    if images.labels is None:
        raise AnoclustError(f"{path} has no labels: evaluation needs one subfolder (or CSV label) per class")
    if normal:
        images.normals = read_path_list(normal)
    return Dataset(Path(path).name, "folder", images)


@dataclass
class Embedded:
    """A dataset's patch bags (readable images only), their labels and the normals' bags."""

    dataset: Dataset
    bags: np.ndarray
    truth: list[str]
    normal_bags: np.ndarray | None

    def without(self, label: str) -> "Embedded":
        """The same set minus one class (e.g. MVTec's defects-only protocol without good)."""
        keep = np.array([t != label for t in self.truth])
        return Embedded(self.dataset, self.bags[keep], [t for t, k in zip(self.truth, keep) if k], self.normal_bags)


def embed_dataset(dataset: Dataset, extractor, with_normals: bool = True) -> Embedded:
    images = dataset.images
    ex = extractor.extract(images.paths, desc=dataset.name)
    if ex.skipped:
        log.warning("%s: skipped %d unreadable file(s)", dataset.name, len(ex.skipped))
    normal_bags = None
    if images.normals and with_normals:
        nb = extractor.extract(images.normals, desc=f"{dataset.name} normals").bags
        normal_bags = nb if len(nb) else None
    return Embedded(dataset, ex.bags, [images.labels[i] for i in ex.ok], normal_bags)


def evaluate_embedded(
    data: Embedded, params: Params, weightings: Sequence[str] = ROWS, seeds: Sequence[int] = (0,)
) -> list[dict]:
    """One row per weighting or bag baseline (`ROWS`): mean and spread over seeds of NMI / ARI /
    F1, k = number of classes.

    Weightings that need normal images are left out when the dataset has none, and weightings
    with scores that cannot pool as a forced `pooling` asks (residual: the reference only). The bag
    baselines use the seed only to draw the compared patches; each seed's distances serve both
    and are dropped before the next seed's (two N x N matrices at a time).
    """
    k = len(set(data.truth))
    bag_runs = _bag_baseline_runs(data, params, [w for w in weightings if w in bd.BAG_BASELINES], seeds, k)
    rows = []
    for name in weightings:
        if name in bag_runs:
            runs = bag_runs[name]
        else:
            kind = WEIGHTING_TYPES[name]
            if kind.needs_normals and data.normal_bags is None:
                continue
            if kind.scored and params.pooling != "auto" and params.pooling not in kind.poolings:
                continue
            normals = data.normal_bags if kind.needs_normals else None
            runs = []
            # Run once what the seed cannot change.
            seeded = (kind.uses_seed(params, normals) or params.method in ("kmeans", "spectral")
                      or len(data.bags) > EXACT_WARD_MAX)
            for seed in seeds if seeded else seeds[:1]:
                p = replace(params, n_clusters=k, weighting=name, random_state=seed)
                runs.append(clustering_scores(data.truth, fit_bags(data.bags, normals, p).labels))
        row = dict(dataset=data.dataset.name, group=data.dataset.group, weighting=name,
                   n_images=len(data.truth), k=k, n_seeds=len(runs))
        for m in METRICS:
            values = np.array([r[m] for r in runs])
            row[m], row[f"{m}_std"] = float(values.mean()), float(values.std())
        rows.append(row)
    return rows


def _bag_baseline_runs(data: Embedded, params: Params, names: Sequence[str], seeds: Sequence[int],
                       k: int) -> dict[str, list[dict]]:
    """Scores per seed of each bag baseline in `names` (once if the seed cannot change them)."""
    runs: dict[str, list[dict]] = {name: [] for name in names}
    if not names:
        return runs
    seeded = bd.uses_seed(data.bags.shape[1], params.border, aspect=params.aspect)
    for seed in seeds if seeded else seeds[:1]:
        distances = bd.bag_distances(data.bags, params.border, seed=seed, aspect=params.aspect)
        for name in names:
            runs[name].append(clustering_scores(data.truth, bd.bag_labels(distances, k, name)))
    return runs


def group_means(rows: list[dict]) -> list[dict]:
    """MVTec means over the object categories, the texture categories and all of them."""
    out = []
    for name, groups in (("mean objects", ("object",)), ("mean textures", ("texture",)),
                         ("mean all", ("object", "texture"))):
        for weighting in ROWS:
            sel = [r for r in rows if r["group"] in groups and r["weighting"] == weighting]
            if not sel:
                continue
            row = dict(dataset=name, group="mean", weighting=weighting, n_images=sum(r["n_images"] for r in sel),
                       k=len(sel), n_seeds=min(r["n_seeds"] for r in sel))
            for m in METRICS:
                row[m] = float(np.mean([r[m] for r in sel]))
                row[f"{m}_std"] = float(np.mean([r[f"{m}_std"] for r in sel]))
            out.append(row)
    return out


CSV_FIELDS = ("protocol", "dataset", "group", "weighting", "n_images", "k", "n_seeds",
              "nmi", "nmi_std", "ari", "ari_std", "f1", "f1_std")


def _cell(row: dict | None) -> str:
    if row is None:
        return "-"
    spread = row["n_seeds"] > 1
    return " / ".join(f"{row[m]:.3f}" + (f"±{row[m + '_std']:.3f}" if spread else "") for m in METRICS)


def markdown_table(rows: list[dict], title: str) -> str:
    """The paper's layout: one line per dataset, NMI / ARI / F1 per weighting."""
    present = [w for w in ROWS if any(r["weighting"] == w for r in rows)]
    lines = [f"### {title}", "", "| dataset | images | k | " + " | ".join(f"{w} NMI / ARI / F1" for w in present) + " |",
             "|---|---|---|" + "---|" * len(present)]
    names = list(dict.fromkeys(r["dataset"] for r in rows))
    for name in names:
        mine = {r["weighting"]: r for r in rows if r["dataset"] == name}
        first = next(iter(mine.values()))
        k = "" if first["group"] == "mean" else first["k"]
        label = f"**{name}**" if first["group"] == "mean" else name
        lines.append(f"| {label} | {first['n_images']} | {k} | " + " | ".join(_cell(mine.get(w)) for w in present) + " |")
    return "\n".join(lines) + "\n"
