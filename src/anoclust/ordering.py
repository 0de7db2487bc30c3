"""A canonical order of images that depends on their content only, never on how they were listed.

Sampling in the unsupervised score, ties in Ward linkage, k-means initialisation and the
numbering of clusters all depend on the order of the rows they see. Putting the rows in the
order of a hash of their patch bags makes a run's result the same whatever order the files
were listed in and whichever unreadable files were dropped from the list. Identical images get
identical bags, so the order among them does not matter.
"""

from __future__ import annotations

import hashlib

import numpy as np


def canonical_order(bags: np.ndarray) -> np.ndarray:
    """Permutation that sorts (N, M, D) bags by a hash of each bag's bytes (ties: input order)."""
    keys = [hashlib.blake2b(np.ascontiguousarray(b).tobytes(), digest_size=16).digest() for b in bags]
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)
