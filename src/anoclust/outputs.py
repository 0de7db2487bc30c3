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
    """Decorator: the output files `write` creates appear together when it returns, or none; files
    it removes (`remove_output`, an earlier run's outputs this run does not replace) go at the
    same moment."""

    @functools.wraps(write)
    def staged(*args, **kwargs):
        if getattr(_stage, "files", None) is not None:  # already inside a stage
            return write(*args, **kwargs)
        _stage.files = files = []
        try:
            result = write(*args, **kwargs)
            with _SignalsDeferred():
                for tmp, path in files:
                    if tmp is None:
                        remove_quietly(path)
                    else:
                        os.replace(tmp, path)
                files.clear()
            return result
        finally:
            _stage.files = None
            for tmp, _ in files:
                if tmp is not None:
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


def remove_output(path: Path) -> None:
    """Remove an earlier run's output file `path` (with the stage's renames, inside a stage)."""
    files = getattr(_stage, "files", None)
    if files is None:
        remove_quietly(path)
    else:
        files.append((None, path))


def check_out_dir(out: Path, protected: Iterable[Path], force: bool | None = False, flag: str = "--out") -> None:
    """Refuse an output folder that is, or lies inside, a protected folder (a scanned input folder,
    the --normal folder, the folder of a listed image), that is an existing file, or that is a
    system root or the home folder itself. force=None: the command has no --force."""
    out_r = out.resolve()
    hint = "" if force is None else " (or pass --force)"
    if not force:
        for folder in protected:
            folder_r = folder.resolve()
            if out_r == folder_r or folder_r in out_r.parents:
                raise AnoclustError(f"{flag} {out} is inside the input folder {folder_r}: choose a folder "
                                    f"elsewhere{hint}")
        what = {Path(out_r.anchor): "a file system root", Path.home().resolve(): "the home folder"}.get(out_r)
        if what:
            raise AnoclustError(f"{flag} {out} is {what}: give the outputs a folder of their own, "
                                f"e.g. {out / 'anoclust-out'}{hint}")
    if out.exists() and not out.is_dir():
        raise AnoclustError(f"{flag} {out} exists and is not a folder: choose another path")


def write_bytes(path: Path, data: bytes) -> None:
    _write(path, data)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """Write a CSV file (UTF-8; a file name that is not valid UTF-8 keeps its own bytes, so the
    path reads back exactly); returns the bytes written."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = buf.getvalue().encode("utf-8", "surrogateescape")
    _write(path, data)
    return data


def write_json(path: Path, data: dict) -> None:
    """Strict JSON: a non-finite number is written as null (JSON has no NaN or Infinity)."""
    text = json.dumps(_finite(data), indent=2, sort_keys=True, default=_jsonable, allow_nan=False)
    _write(path, (text + "\n").encode("utf-8"))


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    _write(path, buf.getvalue())


def _finite(value):
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (Path, os.PathLike)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
