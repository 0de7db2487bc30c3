"""Progress bars on long steps: on a terminal only, and never with --quiet."""

from __future__ import annotations

import sys
from collections.abc import Iterable


def progress_bar(total: int, desc: str, quiet: bool, iterable: Iterable | None = None):
    """A tqdm bar on stderr (wrapping `iterable` when given), disabled off a terminal."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", disable=quiet or not sys.stderr.isatty(), leave=False)
