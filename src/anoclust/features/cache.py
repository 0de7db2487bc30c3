"""On-disk cache of patch bags, so re-clustering never re-runs the network.

An entry is keyed by the image file's content hash and by everything that shapes its features
(backbone, taps, weights, input size, format version). Entries are written to a temporary file
and renamed into place, so a reader never sees half an entry, and they carry a checksum of their
payload, so a corrupted or truncated entry is detected and recomputed instead of used. The
payload is a plain .npy array: loading it never unpickles anything.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import stat
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes

log = logging.getLogger(__name__)

_MAGIC = b"ANOCLUST-BAG-1\n"
_DIGEST = 32


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a regular file's bytes (OSError for anything else)."""
    h = hashlib.sha256()
    # O_NONBLOCK: opening a FIFO that carries an image's name must fail, not wait for a writer.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    with os.fdopen(fd, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "anoclust"


class FeatureCache:
    """Patch bags by key; a cache with root None stores nothing."""

    def __init__(self, root: str | os.PathLike | None):
        self.root = None if root is None else Path(root)
        self.corrupt: list[Path] = []
        self.unwritable = False

    def key(self, content_digest: str, model_id: str) -> str:
        return hashlib.sha256(f"{model_id}\n{content_digest}".encode()).hexdigest()

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.bag"

    def get(self, key: str) -> np.ndarray | None:
        if self.root is None:
            return None
        path = self._path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cache entry %s unreadable (%s); recomputing", path, exc)
            return None
        head, digest, payload = blob[: len(_MAGIC)], blob[len(_MAGIC) : len(_MAGIC) + _DIGEST], blob[len(_MAGIC) + _DIGEST :]
        if head != _MAGIC or hashlib.sha256(payload).digest() != digest:
            self._report_corrupt(path)
            return None
        try:
            return np.load(io.BytesIO(payload), allow_pickle=False)
        except ValueError:
            self._report_corrupt(path)
            return None

    def put(self, key: str, array: np.ndarray) -> None:
        """Store a bag; a cache that cannot be written (read-only, full) only costs speed: one
        warning, and no further attempts in this run."""
        if self.root is None or self.unwritable:
            return
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
        payload = buf.getvalue()
        try:
            atomic_write_bytes(self._path(key), _MAGIC + hashlib.sha256(payload).digest() + payload)
        except OSError as exc:
            self.unwritable = True
            log.warning("cannot write to the feature cache %s (%s): going on without caching", self.root,
                        exc.strerror or exc)

    def _report_corrupt(self, path: Path) -> None:
        self.corrupt.append(path)
        log.warning("cache entry %s is corrupted; it will be recomputed", path)
