"""The blocked nearest-patch search every patch score is made of.

All distance work is done as matrix products on bounded blocks in reused buffers, so memory
never grows with N squared and the products run near the machine's matrix-multiply rate; many
small independent products run on Python threads, each single-threaded (torch releases the
GIL).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from ..space import PatchSpace

# Distance blocks are computed into preallocated buffers of about this many float32 elements
# (4 MiB): small enough to stay in cache for the minimum that follows the matrix product, large
# enough for the product to run near the machine's matrix-multiply rate (docs/PERFORMANCE.md).
BLOCK_ELEMENTS = 2**20


def as_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


@contextmanager
def _single_threaded_torch():
    """Let each worker thread run its own single-threaded products.

    Many small independent products scale better over Python threads (torch releases the GIL)
    than over torch's own threads, whose per-product barriers stall when the cores are shared.
    torch's thread count is process-wide: it is restored on exit.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def in_threads(n_items: int, work, n_threads: int | None) -> None:
    """Run work(chunk_of_item_indices) over 0..n_items-1 on n_threads threads."""
    n_threads = max(1, min(n_threads or torch.get_num_threads(), n_items))
    # Small chunks balance the load when another process holds one of the cores for a while.
    chunks = [np.arange(s, min(s + 4, n_items)) for s in range(0, n_items, 4)]
    with _single_threaded_torch():
        if n_threads == 1:
            for c in chunks:
                work(c)
            return
        with ThreadPoolExecutor(n_threads) as pool:
            for f in [pool.submit(work, c) for c in chunks]:
                f.result()


class NearestInBlocks:
    """Squared distance from each query row to its nearest row of a bank, bank block by block.

    ||q - b||^2 = ||b||^2 - 2 q.b + ||q||^2: one matrix product per block with ||b||^2 added
    by the product itself, a minimum over the block, and ||q||^2 added after the minimum
    because it is the same for every bank row. The buffers are reused across calls.
    """

    def __init__(self, n_queries: int, block_rows: int):
        self.buf = torch.empty(n_queries * block_rows)
        self.mins = torch.empty(n_queries * block_rows)

    def products(self, query: torch.Tensor, bank: torch.Tensor, bank_sq: torch.Tensor) -> torch.Tensor:
        """-2 q.b + ||b||^2 for all pairs: (n_queries, len(bank))."""
        out = self.buf[: query.shape[0] * bank.shape[0]].view(query.shape[0], bank.shape[0])
        return torch.addmm(bank_sq, query, bank.T, alpha=-2.0, out=out)

    def group_minimum(self, dist: torch.Tensor, groups: int) -> torch.Tensor:
        """Minimum within each of `groups` equal column groups: (n_queries, groups)."""
        q = dist.shape[0]
        out = self.mins[: q * groups].view(q, groups)
        return torch.amin(dist.view(q, groups, -1), 2, out=out)


def min_sq_dist(queries: torch.Tensor, bank: torch.Tensor, bank_sq: torch.Tensor) -> torch.Tensor:
    """Squared distance from each query row to its nearest bank row, in bank blocks."""
    q = queries.shape[0]
    step = max(1, BLOCK_ELEMENTS // max(1, q))
    blocks = NearestInBlocks(q, min(step, bank.shape[0]))
    best = torch.full((q,), float("inf"))
    for start in range(0, bank.shape[0], step):
        d = blocks.products(queries, bank[start : start + step], bank_sq[start : start + step])
        best = torch.minimum(best, blocks.group_minimum(d, 1)[:, 0])
    return (best + (queries * queries).sum(1)).clamp_min_(0)


def preparer(space: "PatchSpace"):
    """One bag (M, D) -> its kept patches as float32, mapped by the space's whitening."""
    whiten = space.whitening

    def prepare(bag: np.ndarray) -> np.ndarray:
        kept = np.asarray(space.kept(np.asarray(bag)), dtype=np.float32)
        return kept if whiten is None else whiten(kept)

    return prepare
