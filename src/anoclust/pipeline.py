"""The `cluster` job: read an input, embed, weight, cluster, write the results."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .datasets import ImageSet, read_input, read_path_list
from .errors import AnoclustError
from .estimator import AnomalyClustering
from .extract import EmbeddingConfig, PatchExtractor
from .metrics import clustering_scores
from .outputs import check_out_dir, write_csv, write_json, write_npz

log = logging.getLogger(__name__)


@dataclass
class ClusterSettings:
    """Every setting of a run; written to config.json as resolved."""

    k: int = 5
    weighting: str = "auto"
    tau: float = 1.0
    standardize: bool = True
    position_norm: bool = False
    n_sampled: int = 32
    method: str = "ward"
    normalize: str = "none"
    backbone: str = "mobilenet_v2"
    weights: str | None = None
    image_size: int = 224
    max_bank: int = 100_000
    seed: int = 0
    layout: str = "auto"
    include_good: bool = True
    normal: str | None = None
    cache: str | None = None
    quiet: bool = False
    extra: dict = field(default_factory=dict)

    def estimator(self) -> AnomalyClustering:
        return AnomalyClustering(
            n_clusters=self.k,
            weighting=self.weighting,
            tau=self.tau,
            standardize=self.standardize,
            position_norm=self.position_norm,
            n_sampled=self.n_sampled,
            method=self.method,
            normalize=self.normalize,
            backbone=self.backbone,
            weights=self.weights,
            image_size=self.image_size,
            max_bank=self.max_bank,
            random_state=self.seed,
        )

    def extractor(self) -> PatchExtractor:
        config = EmbeddingConfig(self.backbone, None, self.image_size, self.weights)
        return PatchExtractor(config, cache_dir=self.cache, quiet=self.quiet)


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
    return images


def run_clustering(images: ImageSet, settings: ClusterSettings, extractor: PatchExtractor | None = None) -> RunResult:
    """Embed, weight and cluster an image set (no files written)."""
    extractor = extractor or settings.extractor()
    weighting = settings.weighting
    ex = extractor.extract(images.paths, desc="images")
    skipped = list(ex.skipped)
    normal_bags = None
    if images.normals and weighting in ("auto", "reference"):
        nex = extractor.extract(images.normals, desc="normal images")
        skipped += nex.skipped
        normal_bags = nex.bags if len(nex.bags) else None
    if skipped:
        log.warning(
            "skipped %d unreadable file(s): %s",
            len(skipped),
            "; ".join(f"{p} ({why})" for p, why in skipped[:5]) + (" ..." if len(skipped) > 5 else ""),
        )
    est = settings.estimator().fit(ex.bags, normal=normal_bags)
    paths = [str(images.paths[i]) for i in ex.ok]
    metrics = truth = None
    if images.labels is not None:
        truth = [images.labels[i] for i in ex.ok]
        metrics = clustering_scores(truth, est.labels_)
        metrics.update(n_images=len(paths), n_clusters=est.n_clusters_)
    scores = est.scores_
    max_scores = np.nanmax(scores, axis=1) if np.isfinite(scores).any() else np.full(len(paths), np.nan)
    return RunResult(images, paths, truth, est.labels_, max_scores, metrics, skipped, est, ex.grid, ex.weights_sha256)


def write_run(result: RunResult, settings: ClusterSettings, out: Path, input_path: str | Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    images, est = result.images, result.estimator
    truth = result.truth
    labels_known = truth is not None
    header = ["path", "cluster"] + (["label"] if labels_known else []) + ["max_patch_score"]
    rows = []
    for i, p in enumerate(result.paths):
        row = [p, int(result.labels[i])] + ([truth[i]] if labels_known else [])
        rows.append(row + [f"{result.max_scores[i]:.6g}"])
    write_csv(out / "assignments.csv", header, rows)
    write_csv(out / "skipped.csv", ["path", "reason"], result.skipped)
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
        n_images=len(result.paths),
        n_normals=len(images.normals),
        n_skipped=len(result.skipped),
        anoclust_version=__version__,
        weights_sha256=result.weights_sha256,
    )
    write_json(out / "config.json", config)
    if result.metrics is not None:
        write_json(out / "metrics.json", result.metrics)


def cluster_input(input_path: str | Path, out: str | Path, settings: ClusterSettings, force: bool = False) -> RunResult:
    out = Path(out)
    images = load_images(input_path, settings)
    check_out_dir(out, [Path(input_path)] + ([Path(settings.normal)] if settings.normal else []), force)
    if len(images.paths) < max(2, settings.k):
        raise AnoclustError(
            f"{len(images.paths)} image(s) in {input_path} cannot form {settings.k} clusters: "
            "add images or lower --k"
        )
    result = run_clustering(images, settings)
    write_run(result, settings, out, input_path)
    return result
