"""The blocked nearest-patch search every patch score is made of.

All distance work is done as matrix products on bounded blocks in reused buffers, so memory
never grows with N squared and the products run near the machine's matrix-multiply rate; many
small independent products run on Python threads, each single-threaded (torch releases the
GIL).

Two searches give the same kind of answer, the distance from each query row to its nearest
bank row:

- exact (`NearestInBlocks`, `min_sq_dist`): float32 products, a minimum over each block.
- bfloat16 candidates with an exact re-check (`CandidateSearch.nearest`, the reference score),
  where the CPU multiplies bfloat16 natively (AMX or AVX512-BF16): the products run in
  bfloat16 (4 to 7 times the float32 rate here, docs/PERFORMANCE.md) only to *find* the
  nearest row of each bank group; that row's distance is then computed exactly in float32 from
  the original features. Where the nearest row is clearer than the bfloat16 error the result
  is the exact one; at a near tie the re-checked row may be the runner-up, whose distance
  exceeds the nearest one's by at most the error bound of `CandidateSearch` (never less than
  the true distance).
- bfloat16 minima without a re-check (`CandidateSearch.minimum`, the unsupervised score, a
  mean of K of them): within the same bound, two-sided.

Which one runs: `resolve_search` (the module's SEARCH, "auto" by default). Each image's result
depends only on its own inputs, never on the thread or shard that computes it.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from ..space import PatchSpace

# Distance blocks are computed into preallocated buffers of about this many float32 elements
# (4 MiB): small enough to stay in cache for the minimum that follows the matrix product, large
# enough for the product to run near the machine's matrix-multiply rate (docs/PERFORMANCE.md).
BLOCK_ELEMENTS = 2**20

# "auto": bfloat16 candidates where the CPU multiplies bfloat16 natively and the problem is
# large enough to pay (MIN_BF16_ROWS bank rows per group, MIN_BF16_DIM features), exact float32
# otherwise; "bf16" or "exact" force one.
SEARCHES = ("auto", "bf16", "exact")
SEARCH = "auto"
MIN_BF16_ROWS = 64
MIN_BF16_DIM = 32


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


@lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AMX tiles or AVX512-BF16)."""
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        try:
            if getattr(cpu, probe)():
                return True
        except (AttributeError, RuntimeError):
            pass
    return False


def resolve_search(search: str | None, group_rows: int, dim: int) -> str:
    """"bf16" or "exact" for a search with bank groups of group_rows rows of dim features."""
    search = search or SEARCH
    if search not in SEARCHES:
        raise ValueError(f"unknown search {search!r}; choose one of {', '.join(SEARCHES)}")
    if search == "auto":
        big = group_rows >= MIN_BF16_ROWS and dim >= MIN_BF16_DIM
        return "bf16" if big and native_bf16() else "exact"
    return search


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


# A padding row's squared norm: its product with any query exceeds every real distance.
_PAD = 1e30
# Extra columns of the augmented rows (the squared norms, split into two bfloat16 parts).
_EXTRA = 4


def _packed_argmin(values: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(minimum, index of the minimum) of int16 `values` along `dim`, the lowest index on ties.

    torch's min-with-index is several times slower than a plain minimum, so the index is packed
    into the low bits of an int32 below the value and one plain minimum finds both.
    """
    n = values.shape[dim]
    shift = max(1, (n - 1).bit_length())
    shape = [1] * values.dim()
    shape[dim] = n
    rank = torch.arange(n, dtype=torch.int32).view(shape)
    best = torch.amin((values.to(torch.int32) << shift) | rank, dim)
    return best >> shift, best & ((1 << shift) - 1)


class CandidateSearch:
    """The nearest row of each bank group to each query row, found in bfloat16, re-checked exactly.

    Rows are centred on a common point (the query image's mean, or the bank's) and rounded to
    bfloat16; each is augmented with its squared norm split into two bfloat16 parts, so one
    product gives ||q' - b'||^2 (q', b' the rounded rows) accumulated in float32 and rounded to
    bfloat16. These non-negative bfloat16 values order like their int16 bit patterns, so the
    arg-minimum within each group is two plain int16 minima: over blocks of `side` rows, then
    within the best block. The caller re-checks the chosen rows exactly (`exact_distance`).

    Error bound: rounding moves each centred row by at most u = 2^-8 of its length, so the
    distance between rounded rows is within e = u (||q - c|| + ||b - c||) of the true one; the
    product's bfloat16 output adds at most u of the squared distance, and its float32 sums and
    two-part norms at most 6e-5 (||q - c|| + ||b - c||)^2. A chosen row's true distance
    therefore exceeds the nearest one's by at most about twice e plus u of the distance
    (tests/test_nearest.py checks the exact form; leave_one_out.leave_one_out_scores relies on it).
    """

    def __init__(self, n_queries: int, group_rows: int, groups_per_product: int, dim: int):
        self.side = max(1, math.isqrt(group_rows - 1) + 1)  # ceil(sqrt(group_rows))
        self.blocks = -(-group_rows // self.side)
        self.rows = self.side * self.blocks  # the group's rows, padded to side x blocks
        self.group_rows, self.dim = group_rows, dim
        self.n_queries = n_queries
        self.products = torch.empty(groups_per_product * self.rows * n_queries, dtype=torch.bfloat16)
        # Flat offsets of the rows of block 0 of each group: the best block's rows are gathered
        # at these offsets plus that block's start.
        self._base = ((torch.arange(groups_per_product) * (self.rows * n_queries)).view(-1, 1, 1)
                      + (torch.arange(self.side) * n_queries).view(1, -1, 1)
                      + torch.arange(n_queries).view(1, 1, -1))

    @staticmethod
    def augment_queries(centred: torch.Tensor) -> torch.Tensor:
        """(m, d) float32 query rows, already centred -> (m, d + 4) bfloat16 [-2 q', 1, 1, |q'|^2]."""
        m, d = centred.shape
        out = torch.empty(m, d + _EXTRA, dtype=torch.bfloat16)
        out[:, :d] = centred
        _split_norms(out[:, :d].float(), out[:, d + 2], out[:, d + 3])
        out[:, :d] *= -2.0  # exact in bfloat16
        out[:, d : d + 2] = 1.0
        return out

    def augment_bank(self, bank: torch.Tensor, centre: torch.Tensor, out: torch.Tensor | None = None,
                     scratch: torch.Tensor | None = None) -> torch.Tensor:
        """(G, r, d) bank rows (any float type, r <= group rows) -> (G, rows, d + 4) bfloat16
        [b', |b'|^2, 1, 1], b' = bank - centre; the padding rows never win. scratch: a reused
        float32 buffer of at least G * r * d elements (torch's mixed-type arithmetic is several
        times slower than converting into float32 first)."""
        groups, r, d = bank.shape
        if out is None:
            out = torch.empty(groups, self.rows, d + _EXTRA, dtype=torch.bfloat16)
        work = torch.empty(groups, r, d) if scratch is None else scratch.view(-1)[: groups * r * d].view(groups, r, d)
        work.copy_(bank).sub_(centre)
        out[:, :r, :d].copy_(work)
        work.copy_(out[:, :r, :d])  # the rounded rows, whose norms the product must carry
        _split_norms(work, out[:, :r, d], out[:, :r, d + 1])
        out[:, :, d + 2 :] = 1.0
        if r < self.rows:
            self.pad(out, r)
        return out

    def pad(self, out: torch.Tensor, start: int) -> None:
        """Make rows start.. of every group of an augmented bank padding rows."""
        d = self.dim
        out[:, start:, :d] = 0.0
        out[:, start:, d] = _PAD
        out[:, start:, d + 1] = 0.0

    def minimum(self, bank: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """For augmented bank groups (g, rows, d + 4) and augmented queries (m, d + 4): each
        query's least bfloat16 squared distance within each group, (g, m) float32 (no re-check:
        within the bound of the class docstring of the nearest row's true squared distance)."""
        g, m = bank.shape[0], queries.shape[0]
        prod = self.products[: g * self.rows * m].view(g * self.rows, m)
        torch.mm(bank.view(g * self.rows, -1), queries.T, out=prod)
        least = torch.amin(prod.view(torch.int16).view(g, self.rows, m), 1)
        return least.view(torch.bfloat16).float().clamp_min_(0.0)

    def nearest(self, bank: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For augmented bank groups (g, rows, d + 4) and augmented queries (m, d + 4): the index
        within each group of the row nearest each query, (g, m) int64, and its bfloat16 squared
        distance as float32, (g, m)."""
        g, m = bank.shape[0], queries.shape[0]
        prod = self.products[: g * self.rows * m].view(g * self.rows, m)
        torch.mm(bank.view(g * self.rows, -1), queries.T, out=prod)
        bits = prod.view(torch.int16).view(g, self.blocks, self.side, m)
        block_min = torch.amin(bits, 2)  # (g, blocks, m)
        value, block = _packed_argmin(block_min, 1)  # (g, m)
        if self.side == 1:
            row = block.long()
        else:
            start = block.long() * (self.side * m)
            at = self._base[:g, :, :m] if m == self.n_queries else self._offsets(g, m)
            rows = torch.take(bits.reshape(-1), at + start.unsqueeze(1))  # (g, side, m)
            _, within = _packed_argmin(rows, 1)
            row = block.long() * self.side + within.long()
        approx = value.to(torch.int16).view(torch.bfloat16).float()
        return row, approx

    def _offsets(self, g: int, m: int) -> torch.Tensor:
        return ((torch.arange(g) * (self.rows * m)).view(-1, 1, 1) + (torch.arange(self.side) * m).view(1, -1, 1)
                + torch.arange(m).view(1, 1, -1))


def _split_norms(rows: torch.Tensor, hi: torch.Tensor, lo: torch.Tensor) -> None:
    """Write the squared norms of float32 rows as hi + lo, two bfloat16 parts (16 bits)."""
    sq = torch.linalg.vector_norm(rows, dim=-1).square_()
    hi.copy_(sq)
    lo.copy_(sq - hi.float())


def exact_distance(queries: torch.Tensor, chosen: torch.Tensor, scratch: torch.Tensor | None = None) -> torch.Tensor:
    """||q - b|| in float32 for query rows (m, d) and chosen rows (..., m, d) of any float type
    (scratch: a reused float32 buffer of at least chosen.numel() elements)."""
    diff = torch.empty(chosen.shape) if scratch is None else scratch.view(-1)[: chosen.numel()].view(chosen.shape)
    diff.copy_(chosen).sub_(queries)
    return torch.linalg.vector_norm(diff, dim=-1)


def preparer(space: "PatchSpace"):
    """One bag (M, D) -> its kept patches as float32, mapped by the space's whitening."""
    whiten = space.whitening

    def prepare(bag: np.ndarray) -> np.ndarray:
        kept = np.asarray(space.kept(np.asarray(bag)), dtype=np.float32)
        return kept if whiten is None else whiten(kept)

    return prepare
