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
from .page import render
from .run import RunData, load_run
from ..progress import progress_bar
from .thumbs import heat_uri, make_thumb

__all__ = ["RunData", "build_report", "load_run", "write_report"]


def build_report(run: RunData, thumb_size: int = 128, quiet: bool = True) -> str:
    """The report's HTML text."""
    files = [run.resolve(p) for p in run.paths]
    # Decoding and resizing release the GIL, so threads keep both cores busy.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        thumbs = list(
            progress_bar(len(files), "report thumbnails", quiet, pool.map(lambda f: make_thumb(f, thumb_size), files))
        )
    heats = [heat_uri(w, run.grid) for w in run.weights]
    return render(run, thumbs, heats, thumb_size)


def write_report(run_dir: str | Path, out: str | Path | None = None, thumb_size: int = 128, quiet: bool = True) -> Path:
    """Write (atomically) the report of the run in `run_dir`; returns the file's path."""
    run = load_run(run_dir)
    out = Path(out) if out is not None else Path(run_dir) / "report.html"
    atomic_write_bytes(out, build_report(run, thumb_size, quiet).encode("utf-8"))
    return out
