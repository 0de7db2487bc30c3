"""The study sets and the one helper the study scripts score a setting with.

The study sets: the real sets in ../shared/data (MTD with its protocol and 20 normals, NEU
without normals, VisA fryum and macaroni1 with their 100 normals each; those absent are left
out) and synthetic sets of the kinds that stress the method differently: small local defects
("local"), defects that cover the whole image ("texture"), large normal variation between parts
("variable"), one product shown the same way in every image, as a line camera sees it
("aligned", added 2026-12-05 to check the residual pooling's lead on a set not used to set it),
the demo's MVTec-style category with good as a class ("demo"), and long strips (1024 x 64 px)
with small local defects ("strip", which squashing to a square distorts).

`nmis` clusters a set with a setting exactly as the tool does (the stages of anoclust.fit,
k = the number of classes; with pooling "auto" each subset chooses its pooling itself): on the full set and on random 90% subsets, whose mean tells a
setting that is better from one that got lucky on one clustering.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from pathlib import Path

import numpy as np

import _util  # noqa: F401  (puts src/ on the path, imports anoclust before torch)
from anoclust import fit
from anoclust.evaluation import Dataset, Embedded, embed_dataset, folder_dataset, mtd_dataset
from anoclust.features.aspect import resolve_aspect
from anoclust.features.cache import default_cache_dir
from anoclust.features.extract import EmbeddingConfig, PatchExtractor
from anoclust.inputs import read_input, read_path_list
from anoclust.metrics import clustering_scores
from anoclust.ordering import canonical_order, take_rows
from anoclust.settings import Params
from anoclust.weighting import WEIGHTING_TYPES

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
WORK = Path(tempfile.gettempdir()) / "anoclust-study"  # the synthetic sets, written once
CACHE = str(default_cache_dir())
SUBSET_SHARE = 0.9
ALIGNED_TYPES = ("scratch", "spot", "crack", "stain", "hole")


def real_sets(data: Path = DATA) -> list[Dataset]:
    """The real study sets found under `data`, each with its protocol's normal references."""
    out = []
    if (data / "mtd").is_dir():
        out.append(mtd_dataset(data / "mtd"))
    if (data / "neu").is_dir():
        out.append(Dataset("neu", "folder", read_input(data / "neu")))
    for name in ("fryum", "macaroni1"):
        root = data / "visa" / name
        if root.is_dir():
            images = read_input(root / "test")
            images.normals = read_path_list(root / "good")
            out.append(Dataset(name, "folder", images))
    return out


def synthetic_sets(work: Path = WORK) -> list[Dataset]:
    from anoclust.synthetic import make_labelled_folder, make_mvtec_category, make_strip_folder

    out = []
    for kind in ("local", "texture", "variable", "aligned"):
        data, normal = work / kind, work / f"{kind}-normal"
        # aligned: five types, where three are told apart by every description
        classes = ALIGNED_TYPES if kind == "aligned" else None
        if not data.exists():
            make_labelled_folder(data, n_per_type=20, kind=kind, seed=1, classes=classes, normal_root=normal)
        out.append(folder_dataset(data, normal))
    demo = work / "demo"
    if not demo.exists():
        make_mvtec_category(demo, seed=0)
    out.append(Dataset("demo", "demo", read_input(demo, layout="mvtec")))
    strip, strip_normal = work / "strip", work / "strip-normal"
    if not strip.exists():
        make_strip_folder(strip, n_per_type=20, seed=1, normal_root=strip_normal)
    out.append(folder_dataset(strip, strip_normal))
    return out


def study_sets(data: Path = DATA, work: Path = WORK) -> list[Dataset]:
    return real_sets(data) + synthetic_sets(work)


def embed(dataset: Dataset, params: Params = Params(), cache: str | None = CACHE) -> Embedded:
    """The set's patch bags with the backbone, input size and aspect of `params` (and, with aspect
    "keep", its border, whose ring patches follow the interior), through the cache."""
    return embed_dataset(dataset, PatchExtractor(EmbeddingConfig.of(resolved(params, dataset)), cache_dir=cache))


def resolved(params: Params, dataset: Dataset) -> Params:
    """params with --aspect auto resolved for the set, as the tool resolves it (bags without
    their images: the square layout, as anoclust.fit takes them)."""
    return resolve_aspect(params, dataset.images.paths if dataset.images is not None else [])


@dataclasses.dataclass
class Scored:
    """A set in the tool's canonical row order with its fitted weighting and patch scores."""

    bags: np.ndarray
    truth: np.ndarray
    order: np.ndarray  # canonical row -> the Embedded's row
    weighting: object
    scores: np.ndarray | None


_MEMO: dict = {}
# The settings the patch scores depend on; the others only change what follows them.
SCORE_SETTINGS = ("weighting", "border", "whiten", "n_sampled", "max_bank", "random_state", "backbone", "image_size",
                  "weights", "aspect")


def scored(data: Embedded, params: Params) -> Scored:
    """fit.score on the set, as fit_bags orders it; memoised on what the scores depend on."""
    params = resolved(params, data.dataset)
    key = (id(data),) + tuple(getattr(params, s) for s in SCORE_SETTINGS)
    if key not in _MEMO:
        normals = data.normal_bags
        if params.weighting == "auto":
            params = dataclasses.replace(params, weighting="reference" if normals is not None else "unsupervised")
        uses = WEIGHTING_TYPES[params.weighting].needs_normals
        order = canonical_order(data.bags)
        bags = take_rows(data.bags, order)
        normals = take_rows(normals, canonical_order(normals)) if uses else None
        # fitted as pooling "auto" fits it (with the normal images' match ratio), whichever pooling
        # the study then describes the set by: the memo is shared across poolings
        weighting, scores = fit.score(bags, normals, dataclasses.replace(params, pooling="auto"))
        _MEMO[key] = (data, Scored(bags, np.asarray(data.truth)[order], order, weighting, scores))  # holds data: ids stay unique
    return _MEMO[key][1]


def describe(data: Embedded, params: Params) -> tuple[Scored, fit.Description]:
    """The description fit keeps with `params` (fit.descriptions, then fit.cluster_best on the whole
    set); the memoised weighting keeps its fitted state (which depends only on SCORE_SETTINGS)
    and pools with these params."""
    s, descs = _descriptions(data, params)
    return s, fit.cluster_best(descs, s.weighting, params)[0]


def _descriptions(data: Embedded, params: Params) -> tuple[Scored, list[fit.Description]]:
    params = resolved(params, data.dataset)
    s = scored(data, params)
    weighting = copy.copy(s.weighting)
    weighting.params = params
    return dataclasses.replace(s, weighting=weighting), fit.descriptions(weighting, s.bags, s.scores, params)


def subset_rows(n_images: int, subsets: int = 10) -> list[np.ndarray]:
    """Row indices of random 90% subsets; they depend only on the number of images."""
    draw = np.random.default_rng(0)
    return [np.sort(draw.choice(n_images, int(SUBSET_SHARE * n_images), replace=False)) for _ in range(subsets)]


def nmis(data: Embedded, params: Params, subsets: int = 10) -> list[float]:
    """NMI with k = the number of classes: the full set first, then each random 90% subset."""
    params = resolved(params, data.dataset)
    s, descs = _descriptions(data, params)
    p = dataclasses.replace(params, n_clusters=len(set(s.truth)))
    rows = [np.arange(len(s.truth))] + subset_rows(len(s.truth), subsets)
    return [clustering_scores(s.truth[r], fit.cluster_best(descs, s.weighting, p, r)[1].labels)["nmi"] for r in rows]


def weightings_of(data: Embedded) -> tuple[str, ...]:
    """The weightings a set is studied with: reference where it has normals, unsupervised always."""
    return ("unsupervised", "reference") if data.normal_bags is not None else ("unsupervised",)


def forget() -> None:
    """Drop the memoised scores (the study scripts call it between sets to bound memory)."""
    _MEMO.clear()
