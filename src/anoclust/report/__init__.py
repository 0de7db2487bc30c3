"""A self-contained HTML report of a finished run: `write_report(run_dir)` -> run_dir/report.html.

Built only from the run folder's files (assignments.csv, embeddings.npz, config.json,
metrics.json) and the original images for the thumbnails, so it can be rebuilt any time without
re-running the network. The page needs no server and no network: thumbnails, heat maps, style,
script and plots are all inline.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..atomic import atomic_write_bytes
from ..errors import AnoclustError
from .page import render
from .run import RunData, load_run, run_data
from ..progress import progress_bar
from .thumbs import heat_uri, make_thumb

__all__ = ["RunData", "build_report", "load_run", "report_bytes", "run_data", "write_report"]


def build_report(run: RunData, thumb_size: int = 128, quiet: bool = True) -> str:
    """The report's HTML text."""
    files = [run.resolve(p) for p in run.paths]
    # Decoding and resizing release the GIL, so threads keep both cores busy.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        thumbs = list(
            progress_bar(len(files), "report thumbnails", quiet, pool.map(lambda f: make_thumb(f, thumb_size), files))
        )
    heats = [heat_uri(w, tuple(g), run.ring) for w, g in zip(run.heat, run.grids)]
    return render(run, thumbs, heats, thumb_size)


def report_bytes(run: RunData, thumb_size: int = 128, quiet: bool = True) -> bytes:
    """The report as the file's bytes (a name that is not valid UTF-8 shows as U+FFFD)."""
    return build_report(run, thumb_size, quiet).encode("utf-8", "replace")


def write_report(run_dir: str | Path, out: str | Path | None = None, thumb_size: int = 128, quiet: bool = True) -> Path:
    """Write (atomically) the report of the run in `run_dir`; returns the file's path."""
    out = Path(out) if out is not None else Path(run_dir) / "report.html"
    if out.is_dir():
        raise AnoclustError(f"--out {out} is a folder: give the report's file name, e.g. {out / 'report.html'}")
    run = load_run(run_dir)
    atomic_write_bytes(out, report_bytes(run, thumb_size, quiet))
    return out
