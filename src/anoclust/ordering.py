"""A canonical order of images that depends on their content only, never on how they were listed.

Sampling in the unsupervised score, ties in Ward linkage, k-means initialisation and the
numbering of clusters all depend on the order of the rows they see. Putting the rows in the
order of a hash of their patch bags makes a run's result the same whatever order the files
were listed in and whichever unreadable files were dropped from the list. Identical images get
identical bags, so the order among them does not matter.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

import numpy as np

_ROWS_PER_COPY = 256


def canonical_order(bags: np.ndarray) -> np.ndarray:
    """Permutation that sorts (N, M, D) bags by a hash of each bag's bytes (ties: input order)."""
    keys = [hashlib.blake2b(np.ascontiguousarray(b).tobytes(), digest_size=16).digest() for b in bags]
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def take_rows(bags: np.ndarray, order: np.ndarray) -> np.ndarray:
    """bags[order] without needless memory: the array itself when `order` keeps every row in
    place, and a memory-mapped copy (in the system's temporary folder, removed at once) when
    `bags` is memory-mapped, so that bag arrays too large for memory never land in it."""
    if np.array_equal(order, np.arange(len(order))):
        return bags
    if not isinstance(bags, np.memmap):
        return bags[order]
    fd, name = tempfile.mkstemp(prefix="anoclust-bags-", suffix=".npy")
    os.close(fd)
    try:
        out = np.lib.format.open_memmap(name, mode="w+", dtype=bags.dtype, shape=bags.shape)
    finally:
        try:
            os.unlink(name)  # the mapping lives on; nothing is left behind if the process dies
        except OSError:
            pass
    for start in range(0, len(order), _ROWS_PER_COPY):
        out[start : start + _ROWS_PER_COPY] = bags[order[start : start + _ROWS_PER_COPY]]
    return out
