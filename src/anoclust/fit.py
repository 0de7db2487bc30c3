"""The fit path, in one place: patch bags -> scores -> weights -> embeddings -> clustering
space -> labels; and its mirror for new images.

`fit_bags` runs the stages in order; each "auto" setting is resolved here, from the weighting's
class attributes (anoclust.weighting.base) and what the earlier stages measured. The estimator,
the `cluster` job (local or on Dask: pass a `scorer`) and the study scripts all call these
functions, so they cannot drift apart. `assign_bags` places new images with a fitted `Model`.

Rows are put in a canonical order (anoclust.ordering) before anything depends on their order,
and the per-image results are handed back in the caller's order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
import dataclasses
from dataclasses import dataclass

import numpy as np

from .choose_k import choose_k
from .clustering import cluster_centres, cluster_embeddings, relabel_by_size
from .errors import AnoclustError
from .features.backbones import deepest_tap_channels
from .labels import NORMAL
from .normal_threshold import resolve_normal_threshold
from .novelty import calibrate_thresholds, centre_distances
from .ordering import canonical_order, take_rows
from .settings import Params
from .space import EmbeddingSpace
from .weighting import Weighting, make_weighting
from .weighting.pooling import score_peak

log = logging.getLogger(__name__)

# n_components="auto" keeps this many principal axes per cluster (weightings with scores only):
# k clusters' centres span k - 1 directions, and the directions of least variation across the
# set blur them (docs/DESIGN.md).
COMPONENTS_PER_CLUSTER = 4

# pooling="auto": another pooling must separate the clusters this much better (silhouette
# ratio) to replace the leading one (the weighted, the method's own, or where the normal images
# match closely the residual: Weighting.auto_poolings). On the study sets the average's ratio is
# 1.7-1.9 where it wins by 0.07-0.26 NMI (NEU) and at most 1.02 where the weighted wins
# (docs/DESIGN.md).
POOLING_MARGIN = 1.25
# pooling="auto" compares the descriptions' silhouettes on at most this many images (seeded draw):
# the mean silhouette of a few thousand rows is steady to about 0.01, and it costs O(N^2).
SILHOUETTE_SAMPLE = 2000

# scorer(fitted weighting, bags in canonical order) -> patch scores; the default runs locally.
Scorer = Callable[[Weighting, np.ndarray], "np.ndarray | None"]


@dataclass
class Resolved:
    """What every "auto" setting became in one fit (config.json and model.json record it)."""

    weighting: str
    method: str  # a clustering method, or "labels" (fit_labelled)
    embed_taps: str  # "all" or "deepest"
    embed_from: int  # first patch-feature column the embedding keeps
    normalize: str
    n_components: int
    n_clusters: int
    score_peak: float | None  # pooling.score_peak of the scores; None without scores
    normal_threshold: float | None
    k_diagnostics: dict | None = None  # choose_k's criterion values when k was chosen
    pooling: str | None = None  # settings.POOLINGS; None for weightings without scores
    pooling_silhouettes: dict | None = None  # each pooling's clusters' silhouette, when "auto" compared them
    normal_match: float | None = None  # weighting/residual.match_ratio of the normal images, when measured


@dataclass
class Model:
    """Everything a fitted clustering needs to place new images (saved by anoclust.model)."""

    params: Params
    resolved: Resolved
    weighting: Weighting  # fitted: its state scores new images as the fitted ones were
    space: EmbeddingSpace  # the clustering space
    fit_embeddings: np.ndarray  # the clustered images' embeddings, which `space` was fitted on
    cluster_centers: np.ndarray  # in the clustering space: a new image goes to the nearest
    novelty_centers: np.ndarray  # before the projection, where the unknown test measures
    unknown_thresholds: np.ndarray  # per cluster (novelty.calibrate_thresholds)
    patch_shape: tuple[int, int]  # (M, D) of the bags
    weights_sha256: str | None = None  # the backbone's weights, when the fit extracted them
    taps: list[str] | None = None
    cluster_names: list[str] | None = None  # the user's names of clusters 0..k-1 (fit_labelled)


@dataclass
class Fit:
    """A fitted Model and the per-image results, rows in the caller's order."""

    model: Model
    labels: np.ndarray  # (N,) 0..k-1 (0 the largest cluster), NORMAL when set apart
    embeddings: np.ndarray  # (N, D') weighted embeddings, before the normalisation
    weights: np.ndarray  # (N, M) patch weights
    scores: np.ndarray | None  # (N, M) patch scores, NaN where not scored; None without scores
    by_k: dict[int, np.ndarray] | None = None  # labels at every k in 1..k_max, as `--k k` gives them

    @property
    def normals(self) -> np.ndarray:
        return self.labels == NORMAL


@dataclass
class Assignment:
    """New images placed by assign_bags, one entry per image."""

    labels: np.ndarray  # nearest cluster; NORMAL below the normal threshold
    distances: np.ndarray  # to the nearest cluster's centre, before the projection (the unknown test's)
    unknown: np.ndarray  # farther than that cluster's threshold: possibly a new defect type
    max_scores: np.ndarray  # largest patch score (NaN for weightings without scores)


# ---- the stages ---------------------------------------------------------------------------


def score(bags: np.ndarray, normal_bags: np.ndarray | None, params: Params,
          scorer: Scorer | None = None) -> tuple[Weighting, np.ndarray | None]:
    """Stage 1: the fitted weighting and the patch scores of `bags` (rows as given)."""
    weighting = make_weighting(params.weighting, params, normal_bags is not None).fit(bags, normal_bags)
    return weighting, (scorer or _score_here)(weighting, bags)


def _score_here(weighting: Weighting, bags: np.ndarray) -> np.ndarray | None:
    return weighting.scores(bags)


@dataclass
class Description:
    embeddings: np.ndarray  # (N, D') the columns the description keeps, before normalisation
    weights: np.ndarray
    score_peak: float | None
    embed_taps: str
    embed_from: int
    normalize: str
    pooling: str | None = None  # settings.POOLINGS; None for weightings without scores


def describe(weighting: Weighting, bags: np.ndarray, scores: np.ndarray | None, params: Params,
             pooling: str | None = "weighted") -> Description:
    """Stage 2: patch weights and one embedding per image, with the taps and normalisation
    "auto" resolves to.

    "auto" describes the defect by the deepest tap, l2-normalised, where the weighting says the
    defects are local (the reference weighting always; the unsupervised one when its score peak
    is high) and with average pooling: the scores still use every tap, but in the description
    the fine tap and the embedding's length carry more of the parts' own variation than of the
    defect type. The residual pooling keeps every tap, unnormalised: the differences from the
    nearest normal patches have already taken the parts' own appearance out, and what is left in
    the fine tap and the length is the defect's. Bags not laid out as the backbone's default
    taps keep every tap.
    """
    pooling = pooling if weighting.scored else None
    embeddings, weights = weighting.pool(bags, scores, pooling or "weighted")
    peak = None if scores is None else score_peak(scores)
    dim = embeddings.shape[1]
    last = deepest_tap_channels(params.backbone, dim)
    local = pooling != "residual" and (pooling == "average" or weighting.describes_locally(peak)) and last is not None
    taps = ("deepest" if local else "all") if params.embed_taps == "auto" else params.embed_taps
    normalize = ("l2" if local else "none") if params.normalize == "auto" else params.normalize
    start = 0
    if taps == "deepest":
        if last is None:
            raise AnoclustError(f"--embed-taps deepest needs the patch features of {params.backbone}'s default "
                                f"taps, not {dim} channels: use --embed-taps all")
        start = dim - last
    return Description(embeddings[:, start:], weights, peak, taps, start, normalize, pooling)


def descriptions(weighting: Weighting, bags: np.ndarray, scores: np.ndarray | None, params: Params
                 ) -> list[Description]:
    """Stage 2 for each pooling the settings leave open: with pooling "auto", a weighting with
    scores describes the images every way it can pool (the one the others must beat first:
    Weighting.auto_poolings) and `cluster_best` keeps one."""
    if not weighting.scored:
        return [describe(weighting, bags, scores, params, None)]
    if params.pooling == "auto":
        return [describe(weighting, bags, scores, params, p) for p in weighting.auto_poolings()]
    if params.pooling not in weighting.poolings:
        raise AnoclustError(f"--pooling {params.pooling} needs normal images (the reference weighting): give "
                            f"--normal, or choose --pooling {' or '.join(weighting.poolings)}")
    return [describe(weighting, bags, scores, params, params.pooling)]


@dataclass
class Clustering:
    labels: np.ndarray
    space: EmbeddingSpace
    method: str
    n_components: int
    k_diagnostics: dict | None
    cluster_centers: np.ndarray
    novelty_centers: np.ndarray
    unknown_thresholds: np.ndarray


def cluster(embeddings: np.ndarray, weighting: Weighting, normalize: str, params: Params) -> Clustering:
    """Stage 3: the clustering space, the number of clusters, the labels and the calibration
    of the unknown test. k is chosen before the projection, which needs it."""
    method = weighting.auto_method if params.method == "auto" else params.method
    k, diagnostics = params.n_clusters, None
    if k == "auto":
        k, diagnostics = choose_k(EmbeddingSpace(normalize, embeddings)(embeddings), params.k_max, method=method,
                                  random_state=params.random_state)
    space, components = clustering_space(embeddings, weighting, normalize, params, int(k))
    full = space.normalized(embeddings)
    if k == 1:  # nothing stands apart: one group
        labels = np.zeros(len(embeddings), dtype=np.int64)
    else:
        labels = cluster_embeddings(space.project(full), int(k), method, params.random_state)
    return _calibrated(space, full, labels, method, components, diagnostics)


def cluster_best(descs: list[Description], weighting: Weighting, params: Params, rows: np.ndarray | None = None,
                 given: np.ndarray | None = None) -> tuple[Description, Clustering, dict | None]:
    """Stage 3 on each description of `descs` (rows `rows` of it; `given`: their labels instead
    of clustering) and the one whose clusters are the best separated, by the mean silhouette in
    its clustering space: another description replaces the first (the weighted one, or the
    residual one where the normal images match closely) only when its silhouette is positive and
    at least POOLING_MARGIN times the first one's; of several such, the highest. Returns the
    description, its clustering, and each pooling's silhouette (in `descs`' order) when there
    was a choice.

    Where a defect covers the whole image, the softmax picks a few patches of the defect texture
    at random and average pooling describes it better; where the defect is local, the average
    is dominated by the parts' own variation. Where normal parts of one product look alike, the
    residual pooling takes their appearance out of the description; where each normal patch has a
    close counterpart in the other normal images, it leads (docs/DESIGN.md)."""
    xs = [d.embeddings if rows is None else d.embeddings[rows] for d in descs]
    found = []
    for d, x in zip(descs, xs):
        if given is None:
            found.append(cluster(x, weighting, d.normalize, params))
        else:
            space, components = clustering_space(x, weighting, d.normalize, params, int(given.max()) + 1)
            found.append(_calibrated(space, space.normalized(x), given, "labels", components, None))
    if len(descs) == 1:
        return descs[0], found[0], None
    values = [_silhouette(f, x, params.random_state) for f, x in zip(found, xs)]
    bar = POOLING_MARGIN * max(values[0], 0.0)
    eligible = [i for i in range(1, len(values)) if values[i] > 0 and values[i] >= bar]
    best = max(eligible, key=values.__getitem__, default=0)
    return descs[best], found[best], {d.pooling: round(v, 6) for d, v in zip(descs, values)}


def _silhouette(found: Clustering, embeddings: np.ndarray, random_state: int) -> float:
    """Mean silhouette of the labels in the clustering space; 0 (no structure) with one cluster."""
    from sklearn.metrics import silhouette_score

    k = len(np.unique(found.labels))
    if k < 2 or k >= len(embeddings):
        return 0.0
    sample = SILHOUETTE_SAMPLE if len(embeddings) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(found.space(embeddings), found.labels, sample_size=sample,
                                  random_state=random_state))


def clustering_space(embeddings: np.ndarray, weighting: Weighting, normalize: str, params: Params,
                     k: int) -> tuple[EmbeddingSpace, int]:
    """The space k clusters are found (or given) in, and its number of principal axes."""
    components = params.n_components
    if components == "auto":
        components = COMPONENTS_PER_CLUSTER * k if weighting.projects else 0
    components = max(0, min(int(components), embeddings.shape[0] - 1, embeddings.shape[1]))
    return EmbeddingSpace(normalize, embeddings, components), components


def _calibrated(space: EmbeddingSpace, full: np.ndarray, labels: np.ndarray, method: str, components: int,
                diagnostics: dict | None) -> Clustering:
    # A new defect type differs from the known ones in directions the projection onto the known
    # clusters' principal axes drops, so the unknown test measures before it.
    novelty = cluster_centres(full, labels)
    return Clustering(labels, space, method, components, diagnostics, cluster_centres(space.project(full), labels),
                      novelty, calibrate_thresholds(full, labels, novelty))


# ---- fit and assign -----------------------------------------------------------------------


def fit_bags(bags: np.ndarray, normal_bags: np.ndarray | None, params: Params,
             scorer: Scorer | None = None, every_k: bool = False) -> Fit:
    """Cluster patch bags (N, M, D); normal_bags (R, M, D) are defect-free references or None.
    every_k: also the labels at every k in 1..k_max (Fit.by_k), for the report's k control."""
    check_count(len(bags), params)
    return _fit(bags, normal_bags, params, scorer, every_k=every_k)


# The label of images a user marked as not a defect (the report's labels.csv, `fit --from-labels`).
NORMAL_LABEL = "normal"


def fit_labelled(bags: np.ndarray, names: list[str], normal_bags: np.ndarray | None, params: Params,
                 scorer: Scorer | None = None) -> Fit:
    """A model whose clusters are the user's labels: the same weighting, description and space as
    a clustering fit, with centres and unknown thresholds from the labelled images. Images labelled
    `normal` join the normal references, and then, unless normal_threshold is set, the threshold is
    calibrated ("auto"), so new normal images come back as `normal`."""
    names = [str(n) for n in names]
    if len(names) != len(bags):
        raise AnoclustError(f"{len(names)} labels for {len(bags)} images: give one label per image")
    is_normal = np.array([n == NORMAL_LABEL for n in names], dtype=bool)
    if is_normal.all():
        raise AnoclustError("every image is labelled normal: label at least one defect type")
    if is_normal.any():
        extra = np.asarray(bags[is_normal])
        normal_bags = extra if normal_bags is None or len(normal_bags) == 0 else np.concatenate([normal_bags, extra])
    defects = [n for n, z in zip(names, is_normal) if not z]
    codes = relabel_by_size(np.unique(defects, return_inverse=True)[1])  # 0 the largest, as when clustering
    kinds = [defects[int(np.flatnonzero(codes == c)[0])] for c in range(int(codes.max()) + 1)]
    # Images the user marked as not a defect say that normal images come through this stream, so
    # new ones should come back `normal`: the threshold is calibrated unless set.
    if (is_normal.any() and params.normal_threshold is None and params.weighting in ("auto", "reference")
            and len(normal_bags) > 1):
        params = dataclasses.replace(params, normal_threshold="auto")
    fitted = _fit(np.asarray(bags[~is_normal]), normal_bags, params, scorer, given=codes)
    fitted.model.cluster_names = kinds
    labels = np.full(len(bags), NORMAL, dtype=np.int64)
    labels[~is_normal] = fitted.labels
    return Fit(fitted.model, labels, _rows_back(fitted.embeddings, is_normal), _rows_back(fitted.weights, is_normal),
               None if fitted.scores is None else _rows_back(fitted.scores, is_normal))


def _rows_back(values: np.ndarray, is_normal: np.ndarray) -> np.ndarray:
    """Rows of the labelled defect images back among all rows; NaN for the normal ones."""
    out = np.full((len(is_normal),) + values.shape[1:], np.nan, dtype=values.dtype)
    out[~is_normal] = values
    return out


def _fit(bags: np.ndarray, normal_bags: np.ndarray | None, params: Params, scorer: Scorer | None,
         given: np.ndarray | None = None, every_k: bool = False) -> Fit:
    """The stages in order; `given`: labels 0..k-1 of the images instead of clustering them."""
    if params.aspect == "auto":  # bags without their images (features.aspect.resolve_aspect): the square layout
        params = dataclasses.replace(params, aspect="squash")
    if normal_bags is not None and len(normal_bags) == 0:
        log.warning("none of the normal images could be read: clustering without them")
        normal_bags = None
    if normal_bags is not None and normal_bags.shape[1:] != bags.shape[1:]:
        raise AnoclustError("normal images' patch bags differ in shape from the images': use the same settings")
    # Rows in content order: the result must not depend on the order the images were listed in.
    order = canonical_order(bags)
    bags = take_rows(bags, order)
    if normal_bags is not None:
        normal_bags = take_rows(normal_bags, canonical_order(normal_bags))

    weighting, scores = score(bags, normal_bags, params, scorer)
    threshold = resolve_normal_threshold(params.normal_threshold, weighting, normal_bags)
    descs = descriptions(weighting, bags, scores, params)
    normals = np.zeros(len(bags), dtype=bool)
    if threshold is not None and given is None:
        normals = np.nanmax(scores, 1) < threshold
        if normals.all():
            raise AnoclustError(f"all {len(bags)} images score below the normal threshold {threshold:.4g} and were "
                                "set apart as normal: nothing is left to cluster")
        check_count(int((~normals).sum()), params, "left after setting normal images apart")
    given = None if given is None else np.asarray(given)[order]
    desc, found, silhouettes = cluster_best(descs, weighting, params, None if given is not None else ~normals, given)
    labels = np.full(len(bags), NORMAL, dtype=np.int64)
    labels[~normals] = found.labels

    resolved = Resolved(
        weighting=weighting.name, method=found.method, embed_taps=desc.embed_taps, embed_from=desc.embed_from,
        normalize=desc.normalize, n_components=found.n_components, n_clusters=int(found.labels.max()) + 1,
        score_peak=desc.score_peak, normal_threshold=threshold, k_diagnostics=found.k_diagnostics,
        pooling=desc.pooling, pooling_silhouettes=silhouettes, normal_match=weighting.normal_match,
    )
    model = Model(params, resolved, weighting, found.space, desc.embeddings[~normals], found.cluster_centers,
                  found.novelty_centers, found.unknown_thresholds, tuple(bags.shape[1:]))
    back = np.argsort(order)  # canonical rows -> the caller's rows
    by_k = None
    if every_k:
        clustered = desc.embeddings[~normals]
        by_k = {}
        for k in range(1, min(int(params.k_max), len(clustered) - 1) + 1):
            cut = np.full(len(bags), NORMAL, dtype=np.int64)
            at_k = dataclasses.replace(params, n_clusters=k)
            cut[~normals] = found.labels if k == resolved.n_clusters else cluster(
                clustered, weighting, desc.normalize, at_k).labels
            by_k[k] = cut[back]
    return Fit(model, labels[back], desc.embeddings[back], desc.weights[back],
               None if scores is None else scores[back], by_k)


def check_count(n_images: int, params: Params, when: str = "") -> None:
    k = params.n_clusters
    if n_images < max(2, 0 if k == "auto" else k):
        raise AnoclustError(
            f"{n_images} readable image(s){' ' + when if when else ''} cannot form {k} clusters: "
            "add images or lower the number of clusters (--k)"
        )
    if params.method == "spectral" and k != "auto" and k >= n_images:
        raise AnoclustError(f"spectral clustering needs fewer clusters than images ({k} >= {n_images}): "
                            "lower --k or use another --method")


def assign_bags(model: Model, bags: np.ndarray) -> Assignment:
    """Place new images (N, M, D) in a fitted model's clusters, as fit placed its own."""
    if tuple(bags.shape[1:]) != tuple(model.patch_shape):
        raise AnoclustError(f"patch bags of shape {bags.shape[1:]} do not fit the model's {tuple(model.patch_shape)}: "
                            "use the model's backbone and image size")
    scores = model.weighting.new_scores(bags)
    embeddings, _ = model.weighting.pool(bags, scores, model.resolved.pooling or "weighted")
    full = model.space.normalized(embeddings[:, model.resolved.embed_from :])
    nearest = centre_distances(model.space.project(full), model.cluster_centers).argmin(1)
    distances = np.linalg.norm(full - model.novelty_centers[nearest], axis=1)
    unknown = distances > model.unknown_thresholds[nearest]
    max_scores = np.full(len(bags), np.nan) if scores is None else np.nanmax(scores, 1).astype(np.float64)
    labels = nearest.astype(np.int64)
    if model.resolved.normal_threshold is not None:
        normal = max_scores < model.resolved.normal_threshold
        labels[normal] = NORMAL
        unknown[normal] = False
    return Assignment(labels, distances, unknown, max_scores)
