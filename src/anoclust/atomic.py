"""Files written whole or not at all (a hidden temporary file, then a rename), and read only when
they are regular files of bounded size."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_temp(path: Path, data: bytes) -> str:
    """Write `data` to a new hidden file `.NAME.*.tmp` beside `path`, flushed to disk; its name.

    The caller renames it onto `path` (atomic) or removes it; on an exception here it is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp's file is private (0600); the file it becomes gets the mode any new file would
        # get under the user's umask, so that colleagues can open a shared report.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        remove_quietly(tmp)
        raise
    return tmp


def _umask() -> int:
    try:  # Linux says it without changing it
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("Umask:"))
        return int(line.split()[1], 8)
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def remove_quietly(path: str | os.PathLike) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` is either absent, the old file, or all of `data`."""
    tmp = write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of `path`, refusing what is not a regular file (a FIFO would block, /dev/zero
    never ends) or is larger than max_bytes; OSError otherwise, with the reason."""
    import errno
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if st.st_size > max_bytes:
            raise OSError(errno.EFBIG, f"larger than {max_bytes} bytes", str(path))
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"larger than {max_bytes} bytes", str(path))
    return data
