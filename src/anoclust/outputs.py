"""Writing a run's results: every file appears complete or not at all.

A run folder holds assignments.csv, skipped.csv, embeddings.npz, config.json and, when labels
are known, metrics.json (README, "Use"); `write_run` writes them.

Inside a function decorated with :func:`all_or_nothing`, the files written here are first
staged as hidden temporary files and renamed into place together when the function returns, so
an interrupted run leaves none of its outputs instead of some (an earlier run's outputs stay
as they were). Only SIGKILL or a power cut during the final renames, a matter of microseconds,
can leave a mix; SIGKILL also leaves the stage's hidden `.NAME.*.tmp` files behind.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import signal
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import __version__
from .atomic import atomic_write_bytes, remove_quietly, write_temp
from .errors import AnoclustError
from .labels import cluster_name

if TYPE_CHECKING:
    from .job import RunOptions, RunResult
    from .settings import Params

_stage = threading.local()


def all_or_nothing(write):
    """Decorator: the output files `write` creates appear together when it returns, or none."""

    @functools.wraps(write)
    def staged(*args, **kwargs):
        if getattr(_stage, "files", None) is not None:  # already inside a stage
            return write(*args, **kwargs)
        _stage.files = files = []
        try:
            result = write(*args, **kwargs)
            with _SignalsDeferred():
                for tmp, path in files:
                    os.replace(tmp, path)
                files.clear()
            return result
        finally:
            _stage.files = None
            for tmp, _ in files:
                remove_quietly(tmp)

    return staged


class _SignalsDeferred:
    """Hold SIGINT and SIGTERM (main thread only) so that they cannot cut the renames in half."""

    def __enter__(self):
        self.main = threading.current_thread() is threading.main_thread()
        if self.main:
            self.old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})

    def __exit__(self, *exc):
        if self.main:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old)
        return False


def _write(path: Path, data: bytes) -> None:
    files = getattr(_stage, "files", None)
    if files is None:
        atomic_write_bytes(path, data)
    else:
        files.append((write_temp(path, data), path))


def check_out_dir(out: Path, inputs: Iterable[Path], force: bool = False, flag: str = "--out") -> None:
    """Refuse an output folder inside (or equal to) an input folder: inputs are never written to."""
    out_r = out.resolve()
    for src in inputs:
        src_r = src.resolve()
        folder = src_r if src_r.is_dir() else src_r.parent
        if not force and (out_r == folder or folder in out_r.parents):
            raise AnoclustError(
                f"{flag} {out} is inside the input folder {folder}: choose a folder elsewhere "
                "(or pass --force)"
            )
    if out.exists() and not out.is_dir():
        raise AnoclustError(f"{flag} {out} exists and is not a folder: choose another path")


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    _write(path, buf.getvalue().encode("utf-8"))


def write_json(path: Path, data: dict) -> None:
    _write(path, (json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n").encode("utf-8"))


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    _write(path, buf.getvalue())


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (Path, os.PathLike)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@all_or_nothing
def write_run(result: "RunResult", params: "Params", options: "RunOptions", out: Path, input_path) -> None:
    """The run folder's files, all or none."""
    out.mkdir(parents=True, exist_ok=True)
    fit, truth = result.fit, result.truth
    labels_known = truth is not None
    header = ["path", "cluster"] + (["label"] if labels_known else []) + ["max_patch_score"]
    max_scores = result.max_scores
    rows = []
    for i, p in enumerate(result.paths):
        row = [p, cluster_name(fit.labels[i])] + ([truth[i]] if labels_known else [])
        rows.append(row + [f"{max_scores[i]:.6g}"])
    write_csv(out / "assignments.csv", header, rows)
    write_csv(out / "skipped.csv", ["path", "reason"], dict.fromkeys(result.skipped))  # each once
    scores = fit.scores if fit.scores is not None else np.full(fit.weights.shape, np.nan, np.float32)
    write_npz(out / "embeddings.npz", paths=np.array(result.paths, dtype=str), labels=fit.labels,
              embeddings=fit.embeddings, weights=fit.weights, scores=scores, grid=np.array(result.grid))
    model = fit.model
    write_json(out / "config.json", {
        "anoclust_version": __version__,
        "input": str(Path(input_path).resolve()),
        "layout": result.images.layout,
        "settings": asdict(params),
        "resolved": asdict(model.resolved),
        "run": asdict(options),
        "weights_sha256": model.weights_sha256,
        "n_images": len(result.paths),
        "n_normals": len(result.images.normals),
        "n_skipped": len(result.skipped),
    })
    if result.metrics is not None:
        write_json(out / "metrics.json", result.metrics)
