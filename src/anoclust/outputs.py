"""Writing a run's results: every file appears complete or not at all.

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
from pathlib import Path

import numpy as np

from .atomic import atomic_write_bytes, remove_quietly, write_temp
from .errors import AnoclustError

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
