"""The `cluster` job: read an input, embed, weight, cluster, write the results."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from . import __version__
from .datasets import ImageSet, read_input, read_path_list
from .errors import AnoclustError
from .distributed import open_engine
from .estimator import NORMAL, AnomalyClustering, patch_space, resolve_weighting
from .extract import EmbeddingConfig, PatchExtractor
from .images import DEFAULT_IMAGE_SIZE
from .metrics import clustering_scores
from .ordering import canonical_order, take_rows
from .outputs import all_or_nothing, check_out_dir, write_csv, write_json, write_npz

log = logging.getLogger(__name__)


@dataclass
class ClusterSettings:
    """Every setting of a run; written to config.json as resolved."""

    k: int | str = "auto"
    k_max: int = 20
    normal_threshold: str | float | None = None
    weighting: str = "auto"
    tau: float = 0.5
    standardize: bool = True
    position_norm: bool = False
    border: int = 3
    whiten: bool = True
    n_sampled: int = 32
    method: str = "auto"
    normalize: str = "auto"
    n_components: int | str = "auto"
    embed_taps: str = "auto"
    backbone: str = "mobilenet_v2"
    weights: str | None = None
    image_size: int = DEFAULT_IMAGE_SIZE
    max_bank: int = 100_000
    seed: int = 0
    layout: str = "auto"
    include_good: bool = True
    normal: str | None = None
    cache: str | None = None
    quiet: bool = False
    report: bool = True  # write report.html (anoclust.report) next to the results
    workers: int | None = None  # local Dask worker processes (distributed.py)
    dask: str | None = None  # address of a Dask scheduler
    scratch: str | None = None  # folder for the run's temporary files (shared with Dask workers)
    extra: dict = field(default_factory=dict)

    @property
    def min_images(self) -> int:
        """Fewest readable images that can be clustered with these settings."""
        return max(2, 2 if self.k == "auto" else int(self.k))

    def estimator(self) -> AnomalyClustering:
        return AnomalyClustering(
            n_clusters=self.k,
            k_max=self.k_max,
            normal_threshold=self.normal_threshold,
            weighting=self.weighting,
            tau=self.tau,
            standardize=self.standardize,
            position_norm=self.position_norm,
            border=self.border,
            whiten=self.whiten,
            n_sampled=self.n_sampled,
            method=self.method,
            normalize=self.normalize,
            n_components=self.n_components,
            embed_taps=self.embed_taps,
            backbone=self.backbone,
            weights=self.weights,
            image_size=self.image_size,
            max_bank=self.max_bank,
            random_state=self.seed,
        )

    def extractor(self) -> PatchExtractor:
        config = EmbeddingConfig(self.backbone, None, self.image_size, self.weights)
        return PatchExtractor(config, cache_dir=self.cache, quiet=self.quiet, scratch_dir=self.scratch)


@dataclass
class RunResult:
    images: ImageSet
    paths: list[str]  # the clustered (readable) images
    truth: list[str] | None  # their known labels
    labels: np.ndarray
    max_scores: np.ndarray
    metrics: dict | None
    skipped: list[tuple[str, str]]
    estimator: AnomalyClustering
    grid: tuple[int, int]
    weights_sha256: str | None


def load_images(input_path: str | Path, settings: ClusterSettings) -> ImageSet:
    images = read_input(input_path, layout=settings.layout, include_good=settings.include_good)
    if settings.normal:
        images.normals = read_path_list(settings.normal)
    return images.sorted()


def run_clustering(
    images: ImageSet, settings: ClusterSettings, extractor: PatchExtractor | None = None, engine=None
) -> RunResult:
    """Embed, weight and cluster an image set (no files written); engine: a distributed.DaskEngine."""
    extractor = extractor or settings.extractor()
    extract = extractor.extract if engine is None else partial(engine.extract, extractor)
    weighting = settings.weighting
    ex = extract(images.paths, desc="images")
    skipped = list(ex.skipped)
    normal_bags = None
    if images.normals and weighting in ("auto", "reference"):
        nex = extract(images.normals, desc="normal images")
        skipped += nex.skipped
        normal_bags = nex.bags if len(nex.bags) else None
    if skipped:
        log.warning(
            "skipped %d unreadable file(s): %s",
            len(skipped),
            "; ".join(f"{p} ({why})" for p, why in skipped[:5]) + (" ..." if len(skipped) > 5 else ""),
        )
    scores = None
    if engine is not None and len(ex.bags) >= settings.min_images:
        chosen = resolve_weighting(weighting, normal_bags is not None)
        # Scored in the estimator's canonical row order, so each image samples the same others
        # as in a single-process run; handed back in the order of ex.bags.
        order = canonical_order(ex.bags)
        normals = None if normal_bags is None else normal_bags[canonical_order(normal_bags)]
        space = patch_space(ex.bags.shape[1], chosen, normals, settings.border, settings.whiten,
                            settings.max_bank, settings.seed)
        scores = engine.scores(take_rows(ex.bags, order), chosen, normals, settings.n_sampled, settings.max_bank,
                               settings.seed, space)
        if scores is not None:
            scores = scores[np.argsort(order)]
    est = settings.estimator().fit(ex.bags, normal=normal_bags, scores=scores)
    est.weights_sha256_, est.taps_ = ex.weights_sha256, [t.name for t in extractor.model.feature_info]
    paths = [str(images.paths[i]) for i in ex.ok]
    metrics = truth = None
    if images.labels is not None:
        truth = [images.labels[i] for i in ex.ok]
        clustered = ~est.normals_  # images set apart as normal are not part of the clustering
        metrics = clustering_scores(np.asarray(truth)[clustered], est.labels_[clustered])
        metrics.update(n_images=len(paths), n_clusters=est.n_clusters_)
        if est.normal_threshold_ is not None:
            metrics.update(n_normal=int(est.normals_.sum()), n_clustered=int(clustered.sum()))
    scores = est.scores_
    max_scores = np.nanmax(scores, axis=1) if np.isfinite(scores).any() else np.full(len(paths), np.nan)
    return RunResult(images, paths, truth, est.labels_, max_scores, metrics, skipped, est, ex.grid, ex.weights_sha256)


@all_or_nothing
def write_run(result: RunResult, settings: ClusterSettings, out: Path, input_path: str | Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    images, est = result.images, result.estimator
    truth = result.truth
    labels_known = truth is not None
    header = ["path", "cluster"] + (["label"] if labels_known else []) + ["max_patch_score"]
    rows = []
    for i, p in enumerate(result.paths):
        row = [p, cluster_name(result.labels[i])] + ([truth[i]] if labels_known else [])
        rows.append(row + [f"{result.max_scores[i]:.6g}"])
    write_csv(out / "assignments.csv", header, rows)
    write_csv(out / "skipped.csv", ["path", "reason"], dict.fromkeys(result.skipped))  # each once
    write_npz(
        out / "embeddings.npz",
        paths=np.array(result.paths, dtype=str),
        labels=result.labels,
        embeddings=est.embeddings_,
        weights=est.weights_,
        scores=est.scores_,
        grid=np.array(result.grid),
    )
    config = asdict(settings)
    config.pop("extra")
    config.update(
        settings.extra,
        input=str(Path(input_path).resolve()),
        layout=images.layout,
        weighting=est.weighting_,
        score_peak=est.score_peak_,
        method=est.method_,
        normalize=est.normalize_,
        n_components=est.n_components_,
        embed_taps="all" if est.embed_from_ == 0 else "deepest",
        n_images=len(result.paths),
        n_normals=len(images.normals),
        n_skipped=len(result.skipped),
        anoclust_version=__version__,
        weights_sha256=result.weights_sha256,
        n_clusters=est.n_clusters_,
        normal_threshold_value=est.normal_threshold_,
        k_diagnostics=est.k_diagnostics_,
    )
    write_json(out / "config.json", config)
    if result.metrics is not None:
        write_json(out / "metrics.json", result.metrics)


def cluster_input(
    input_path: str | Path,
    out: str | Path,
    settings: ClusterSettings,
    force: bool = False,
    save_model: str | Path | None = None,
    write_results: bool = True,
) -> RunResult:
    """The `cluster` job; write_results=False (`fit`) writes only the model to save_model."""
    out = Path(out)
    images = load_images(input_path, settings)
    inputs = {Path(input_path), *(p.parent for p in images.paths + images.normals)}
    check_out_dir(out, inputs | ({Path(settings.normal)} if settings.normal else set()), force)
    if settings.cache:
        check_out_dir(Path(settings.cache), inputs, force, flag="--cache")
    if save_model is not None:
        check_out_dir(Path(save_model), inputs, force, flag="--save-model")
    if len(images.paths) < settings.min_images:
        raise AnoclustError(
            f"{len(images.paths)} image(s) in {input_path} cannot form {settings.k} clusters: "
            "add images or lower --k"
        )
    with open_engine(settings.workers, settings.dask, settings.scratch, settings.quiet) as engine:
        result = run_clustering(images, settings, engine=engine)
    if write_results:
        write_run(result, settings, out, input_path)
    if save_model is not None:
        result.estimator.save(save_model)
    if write_results and settings.report:
        from .report import write_report

        write_report(out, quiet=settings.quiet)
    return result


def cluster_name(label: int, unknown: bool = False) -> str:
    """assignments.csv's cluster column: the number, `normal` (set apart) or `unknown` (too far)."""
    if label == NORMAL:
        return "normal"
    return "unknown" if unknown else str(int(label))
