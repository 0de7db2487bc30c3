"""Writing a run's results: every file appears complete or not at all."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .cache import atomic_write_bytes
from .errors import AnoclustError


def check_out_dir(out: Path, inputs: Iterable[Path], force: bool = False) -> None:
    """Refuse an output folder inside (or equal to) an input folder: inputs are never written to."""
    out_r = out.resolve()
    for src in inputs:
        src_r = src.resolve()
        folder = src_r if src_r.is_dir() else src_r.parent
        if not force and (out_r == folder or folder in out_r.parents):
            raise AnoclustError(
                f"--out {out} is inside the input folder {folder}: choose an output folder elsewhere "
                "(or pass --force)"
            )
    if out.exists() and not out.is_dir():
        raise AnoclustError(f"--out {out} exists and is not a folder: choose another path")


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n").encode("utf-8"))


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (Path, os.PathLike)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
