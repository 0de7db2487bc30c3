"""The `cluster` and `fit` commands' job: list the input, extract patch bags (here or on Dask),
fit (anoclust.fit), score against known labels, and write the run folder, the model and the
report."""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from . import __version__
from .distributed import open_engine
from .errors import AnoclustError
from .features.aspect import resolve_aspect
from .features.extract import EmbeddingConfig, PatchExtractor
from .fit import Fit, check_count, fit_bags, fit_labelled
from .inputs import ImageSet, read_input, read_path_list
from .labels import cluster_name
from .metrics import clustering_scores
from .outputs import all_or_nothing, check_out_dir, remove_output, write_bytes, write_csv, write_json, write_npz
from .settings import Params, validate

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """Where a run reads and writes; none of it changes the result."""

    layout: str = "auto"
    include_good: bool = True  # MVTec layout: cluster test/good too
    normal: str | None = None  # folder or list of normal reference images
    cache: str | None = None  # feature cache folder
    quiet: bool = False
    report: bool = True  # write report.html
    workers: int | None = None  # local Dask worker processes (distributed.py)
    dask: str | None = None  # address of a Dask scheduler
    scratch: str | None = None  # folder for the run's temporary files (shared with Dask workers)
    force: bool = False  # allow outputs inside an input folder

    def extractor(self, params: Params) -> PatchExtractor:
        return PatchExtractor(EmbeddingConfig.of(params), cache_dir=self.cache, quiet=self.quiet,
                              scratch_dir=self.scratch)


@dataclass
class RunResult:
    images: ImageSet
    paths: list[str]  # the readable images, rows of `fit`
    truth: list[str] | None  # their known labels
    fit: Fit
    metrics: dict | None
    skipped: list[tuple[str, str]]
    grids: np.ndarray  # (N, 2) each image's patch grid (rows, cols)
    ring: int  # aspect "keep": the ring's width around each grid (its patches follow the interior), else 0

    @property
    def max_scores(self) -> np.ndarray:
        scores = self.fit.scores
        return np.full(len(self.paths), np.nan) if scores is None else np.nanmax(scores, axis=1)


def load_images(input_path: str | Path, options: RunOptions) -> ImageSet:
    images = read_input(input_path, layout=options.layout, include_good=options.include_good)
    if options.normal:
        images.normals = read_path_list(options.normal)
    return images.sorted()


def run_clustering(images: ImageSet, params: Params, options: RunOptions, engine=None,
                   from_labels: bool = False, every_k: bool = False) -> RunResult:
    """Embed, weight and cluster an image set (no files written); engine: a distributed.DaskEngine.
    from_labels: the clusters are the images' labels (fit.fit_labelled); every_k: also the
    clustering at every k (the run folder keeps them for the report's k control)."""
    params = resolve_aspect(params, images.paths)
    extractor = options.extractor(params)
    extract = extractor.extract if engine is None else partial(engine.extract, extractor)
    ex = extract(images.paths, desc="images")
    skipped = list(ex.skipped)
    normal_bags = None
    if images.normals and params.weighting in ("auto", "reference"):
        nex = extract(images.normals, desc="normal images")
        skipped += nex.skipped
        normal_bags = nex.bags
    if skipped:
        log.warning(
            "skipped %d unreadable file(s): %s",
            len(skipped),
            "; ".join(f"{p} ({why})" for p, why in skipped[:5]) + (" ..." if len(skipped) > 5 else ""),
        )
    scorer = None if engine is None else engine.scores
    if from_labels:
        fitted = fit_labelled(ex.bags, [images.labels[i] for i in ex.ok], normal_bags, params, scorer)
    else:
        fitted = fit_bags(ex.bags, normal_bags, params, scorer, every_k=every_k)
    fitted.model.weights_sha256 = ex.weights_sha256
    fitted.model.taps = [t.name for t in extractor.model.feature_info]
    paths = [str(images.paths[i]) for i in ex.ok]
    metrics = truth = None
    if images.labels is not None:
        truth = [images.labels[i] for i in ex.ok]
        clustered = ~fitted.normals  # images set apart as normal are not part of the clustering
        metrics = clustering_scores(np.asarray(truth)[clustered], fitted.labels[clustered])
        metrics.update(n_images=len(paths), n_clusters=fitted.model.resolved.n_clusters)
        if fitted.model.resolved.normal_threshold is not None:
            metrics.update(n_normal=int(fitted.normals.sum()), n_clustered=int(clustered.sum()))
    return RunResult(images, paths, truth, fitted, metrics, skipped, ex.grids, ex.ring)


def cluster_input(
    input_path: str | Path,
    out: str | Path,
    params: Params,
    options: RunOptions,
    save_model: str | Path | None = None,
    write_results: bool = True,
    from_labels: bool = False,
) -> RunResult:
    """The `cluster` job; write_results=False (`fit`) writes only the model to save_model;
    from_labels: the clusters are the input's labels (`fit --from-labels`)."""
    out = Path(out)
    images = load_images(input_path, options)
    if from_labels and images.labels is None:
        raise AnoclustError(f"--from-labels needs a label for every image: {input_path} has none (give a CSV with "
                            "a 'label' column, e.g. the report's labels.csv, or one subfolder per label)")
    validate(asdict(params), has_normals=bool(images.normals))  # before any image is read
    protected = protected_folders(Path(input_path), images, options.normal)
    check_out_dir(out, protected, options.force)
    if options.cache:
        check_out_dir(Path(options.cache), protected, options.force, flag="--cache")
    if save_model is not None:
        check_out_dir(Path(save_model), protected, options.force, flag="--save-model")
    if options.scratch:
        check_scratch(Path(options.scratch), protected, options.force)
    if not from_labels:
        check_count(len(images.paths), params, f"in {input_path}")
    with open_engine(options.workers, options.dask, options.scratch, options.quiet) as engine:
        result = run_clustering(images, params, options, engine=engine, from_labels=from_labels,
                                every_k=write_results)
    if write_results:
        write_run(result, params, options, out, input_path)
    if save_model is not None:
        from .model import save_model as save

        save(result.fit.model, save_model)
    return result


def protected_folders(input_path: Path, images: ImageSet, normal: str | None) -> set[Path]:
    """The folders nothing may be written into: a scanned input folder, the --normal folder and the
    folder of every listed image (a list file's own folder is not scanned, so it is not among them
    unless it holds listed images)."""
    folders = {p.parent for p in images.paths + images.normals}
    for given in (input_path, Path(normal) if normal else None):
        if given is not None and given.is_dir():
            folders.add(given)
    return folders


def check_scratch(scratch: Path, protected: set[Path], force: bool) -> None:
    if not scratch.is_dir():
        raise AnoclustError(f"--scratch {scratch} is not an existing folder: create it or choose another")
    check_out_dir(scratch, protected, force, flag="--scratch")


@all_or_nothing
def write_run(result: RunResult, params: Params, options: RunOptions, out: Path, input_path) -> None:
    """The run folder: assignments.csv, skipped.csv, embeddings.npz, config.json, metrics.json
    when labels are known and report.html unless turned off; all or none. An earlier run's
    metrics.json or report.html that this run does not replace is removed with the same step, so
    the folder never shows another run's scores."""
    out.mkdir(parents=True, exist_ok=True)
    fit, truth = result.fit, result.truth
    labels_known = truth is not None
    header = ["path", "cluster"] + (["label"] if labels_known else []) + ["max_patch_score"]
    max_scores = result.max_scores
    rows = []
    for i, p in enumerate(result.paths):
        row = [p, cluster_name(fit.labels[i])] + ([truth[i]] if labels_known else [])
        rows.append(row + [f"{max_scores[i]:.6g}"])
    assignments = write_csv(out / "assignments.csv", header, rows)
    write_csv(out / "skipped.csv", ["path", "reason"], dict.fromkeys(result.skipped))  # each once
    scores = fit.scores if fit.scores is not None else np.full(fit.weights.shape, np.nan, np.float32)
    ks = sorted(fit.by_k or {})
    by_k = np.stack([fit.by_k[k] for k in ks]) if ks else np.zeros((0, len(fit.labels)), dtype=np.int64)
    write_npz(out / "embeddings.npz", paths=np.array(result.paths, dtype=str), labels=fit.labels,
              embeddings=fit.embeddings, weights=fit.weights, scores=scores, grid=result.grids,
              ring=np.int64(result.ring),
              ks=np.array(ks, dtype=np.int64), labels_by_k=by_k)
    model = fit.model
    run_id = hashlib.sha256(assignments).hexdigest()[:16]  # ties metrics.json to these assignments
    config = {
        "anoclust_version": __version__,
        "run_id": run_id,
        "input": str(Path(input_path).resolve()),
        "cwd": os.getcwd(),  # assignments.csv's relative paths are relative to it
        "layout": result.images.layout,
        "settings": asdict(params),
        "resolved": {**asdict(model.resolved), "aspect": model.params.aspect},  # --aspect auto, resolved
        "run": asdict(options),
        "weights_sha256": model.weights_sha256,
        "n_images": len(result.paths),
        "n_normals": len(result.images.normals),
        "n_skipped": len(result.skipped),
    }
    write_json(out / "config.json", config)
    metrics = None if result.metrics is None else {**result.metrics, "run_id": run_id}
    if metrics is None:
        remove_output(out / "metrics.json")
    else:
        write_json(out / "metrics.json", metrics)
    if options.report:
        from .report import report_bytes, run_data

        run = run_data(out, config, metrics, result.paths, fit.labels, truth, fit.embeddings, fit.weights, scores,
                       result.grids, np.array(ks), by_k, result.ring)
        write_bytes(out / "report.html", report_bytes(run, quiet=options.quiet))
    else:
        remove_output(out / "report.html")


@all_or_nothing
def recut_run(run_dir: str | Path, k: int, thumb_size: int = 128, quiet: bool = True) -> None:
    """Rewrite a finished run at another number of clusters from the clusterings it kept (no
    network, no re-clustering): assignments.csv, embeddings.npz's labels, metrics.json and
    report.html; config.json records `shown_k`. All or nothing."""
    from .report import load_run, report_bytes, run_data

    out = Path(run_dir)
    run = load_run(out)  # checks the folder
    if k not in run.ks:
        held = f"k = {min(run.ks)}..{max(run.ks)}" if run.ks else "no other k (written before the k control)"
        raise AnoclustError(f"the run in {out} holds {held}, not k = {k}: re-run anoclust cluster with --k {k}")
    with np.load(out / "embeddings.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    labels = arrays["labels_by_k"][list(arrays["ks"]).index(k)]
    with open(out / "assignments.csv", newline="", encoding="utf-8", errors="surrogateescape") as f:
        reader = csv.reader(f)
        header, rows = next(reader), list(reader)
    cluster = header.index("cluster")
    for row, label in zip(rows, labels):
        row[cluster] = cluster_name(int(label))
    assignments = write_csv(out / "assignments.csv", header, rows)
    arrays["labels"] = labels
    write_npz(out / "embeddings.npz", **arrays)
    config = {**run.config, "run_id": hashlib.sha256(assignments).hexdigest()[:16], "shown_k": k}
    write_json(out / "config.json", config)
    metrics = None
    if "label" in header:
        truth = np.array([row[header.index("label")] for row in rows])
        clustered = labels >= 0
        metrics = clustering_scores(truth[clustered], labels[clustered])
        metrics.update(n_images=len(rows), n_clusters=k, run_id=config["run_id"])
        write_json(out / "metrics.json", metrics)
    recut = run_data(out, config, metrics, [str(p) for p in arrays["paths"]], labels,
                     None if metrics is None else list(truth), arrays["embeddings"], arrays["weights"],
                     arrays["scores"], arrays["grid"], arrays["ks"], arrays["labels_by_k"], run.ring)
    write_bytes(out / "report.html", report_bytes(recut, thumb_size, quiet))
