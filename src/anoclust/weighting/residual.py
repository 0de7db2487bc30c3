"""Residual pooling: describe each image by how its most unusual patches differ from normal ones.

Each of an image's RESIDUAL_PATCHES highest-weighted patches is replaced by its difference from
the mean of its RESIDUAL_NEIGHBOURS nearest patches in the normal bank (whitened by the normal
patches, as the reference scores measure), and the differences are averaged with the patches'
softmax weights. What a defect patch shares with the normal patches that look most like it,
the part's own texture and colour at that place, cancels; what is left is the defect.

Only the reference weighting has a normal bank to subtract. With pooling "auto" it is one of
the descriptions anoclust.fit.cluster_best chooses between, and the one the others must beat
when the normal images match each other closely (`match_ratio`; docs/DESIGN.md).
"""

from __future__ import annotations

import numpy as np
import torch

from ..space import PatchSpace, Whitening
from .nearest import CandidateSearch, exact_distance, resolve_search

# The patches that describe an image: on the study sets the 128 highest weights hold 90-99% of
# an image's weight (VisA's defects spread wider than MTD's). 32 and 64 scored 0.04 and 0.01
# less summed over the study sets with normals (docs/DESIGN.md).
RESIDUAL_PATCHES = 128
# Nearest normal patches averaged into each patch's match: one nearest patch leaves the match's
# own noise in the difference.
RESIDUAL_NEIGHBOURS = 4
# Query rows per matrix product and bank rows per block (16 M distances a block), in groups of
# GROUP_ROWS rows: a full top-k over every block's columns costs more than the product itself,
# the minimum of each group and a top-k over the groups a tenth of it. GROUP_ROWS is a square
# (nearest.CandidateSearch lays a group out as side x side rows) and divides BANK_ROWS.
QUERY_ROWS = 2048
BANK_ROWS = 8192
GROUP_ROWS = 64
# The bfloat16 search re-ranks this many candidates per query exactly; each block offers its best
# from its k + SPARE_GROUPS groups of least minimum: room for rounding to reorder rows at near ties.
CANDIDATES = 16
SPARE_GROUPS = 2
# The residual leads pooling "auto" when a normal patch's nearest patch in another normal image
# lies at most this share of its median distance to them (the median over sampled patches): the
# normal images show one part the same way, so a defect patch's nearest normal patches are its
# counterparts. VisA 0.44-0.51 (100 normals, or 20 drawn from them), MTD 0.73, the synthetic sets
# of random parts and textures 0.68-0.76 (a synthetic aligned product 0.51-0.58): where the
# normal patches have no close counterparts, the nearest of them is an arbitrary one and
# subtracting it adds its noise (docs/DESIGN.md).
DENSE_MATCH = 0.6
MATCH_QUERIES = 512  # normal patches sampled for the ratio, evenly over the images


class NearestRows:
    """The k nearest rows of a bank to query rows, bank block by block.

    Within a block, the k nearest rows lie in the k groups of least minimum (a group holding one
    of them has its minimum at or below the k-th distance, and at most k groups do), so only
    those groups' rows are ranked. Exact (float32) products, or where the CPU multiplies
    bfloat16 natively (nearest.resolve_search) bfloat16 products of rows augmented with their
    squared norms (nearest.CandidateSearch) that only pick candidates, re-ranked in float32:
    a row can then be missed only at a near tie with one kept, within the rounding bound.
    """

    def __init__(self, bank: torch.Tensor, search: str | None = None):
        p, d = bank.shape
        self.bank = bank
        self.bf16 = resolve_search(search, p, d) == "bf16"
        full, rest = divmod(p, GROUP_ROWS)
        if self.bf16:
            probe = CandidateSearch(1, GROUP_ROWS, 1, d)  # pads a short group with rows that never win
            self.centre = bank.mean(0)
            parts = [probe.augment_bank(bank[: full * GROUP_ROWS].view(full, GROUP_ROWS, d), self.centre)]
            if rest:
                parts.append(probe.augment_bank(bank[full * GROUP_ROWS :].view(1, rest, d), self.centre))
            self.rows = torch.cat(parts).view(-1, parts[0].shape[-1])
        else:
            self.rows = torch.zeros((full + bool(rest)) * GROUP_ROWS, d)
            self.rows[:p] = bank
            self.sq = torch.full((len(self.rows),), float("inf"))  # padding rows are never near
            self.sq[:p] = (bank * bank).sum(1)

    def __call__(self, queries: torch.Tensor, k: int) -> torch.Tensor:
        """(Q, min(k, bank rows)) int64 row indices, nearest first."""
        k = min(k, len(self.bank))
        keep = CANDIDATES if self.bf16 else k
        probe = CandidateSearch.augment_queries(queries - self.centre) if self.bf16 else queries
        values, rows = [], []
        for start in range(0, len(self.rows), BANK_ROWS):
            block = self.rows[start : start + BANK_ROWS]
            if self.bf16:
                # non-negative bfloat16 values order like their int16 bit patterns (nearest.CandidateSearch)
                d = torch.mm(probe, block.T).view(torch.int16)
                value, columns = _in_best_groups(d.view(len(probe), -1, GROUP_ROWS), k + SPARE_GROUPS, keep)
            else:  # ||q||^2 is the same for every bank row: leaving it out keeps the order
                d = torch.addmm(self.sq[start : start + len(block)], probe, block.T, alpha=-2.0)
                value, columns = _in_best_groups(d.view(len(probe), -1, GROUP_ROWS), k, keep)
            values.append(value)
            rows.append(columns + start)
        values, rows = torch.cat(values, 1), torch.cat(rows, 1)
        rows = torch.gather(rows, 1, torch.topk(values, min(keep, values.shape[1]), dim=1, largest=False).indices)
        if not self.bf16:
            return rows
        p = len(self.bank)
        exact = exact_distance(queries, self.bank[rows.T.clamp(max=p - 1)])  # (C, Q)
        exact.masked_fill_(rows.T >= p, float("inf"))  # a padding row: a candidate only in a tiny bank
        return torch.gather(rows, 1, torch.topk(exact, k, dim=0, largest=False).indices.T)


def _in_best_groups(d: torch.Tensor, n_groups: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k least values of d (Q, groups, GROUP_ROWS) within its n_groups groups of least
    minimum, and their column indices."""
    q = len(d)
    group_min = d.amin(2)
    group_min = group_min.int() if group_min.dtype == torch.int16 else group_min  # topk has no int16
    groups = torch.topk(group_min, min(n_groups, d.shape[1]), dim=1, largest=False).indices  # (Q, g)
    values = torch.gather(d, 1, groups.unsqueeze(2).expand(-1, -1, GROUP_ROWS)).reshape(q, -1)
    value, at = torch.topk(values.float() if values.dtype == torch.int16 else values, min(k, values.shape[1]),
                           dim=1, largest=False)
    columns = (groups.unsqueeze(2) * GROUP_ROWS + torch.arange(GROUP_ROWS)).view(q, -1)
    return value, torch.gather(columns, 1, at)


def residual_average(bags: np.ndarray, weights: np.ndarray, bank: np.ndarray, whitening: Whitening | None,
                     n_patches: int = RESIDUAL_PATCHES, n_neighbours: int = RESIDUAL_NEIGHBOURS) -> np.ndarray:
    """(N, D) weighted average of each image's top patches' differences from their nearest
    normal patches, in the whitened space (the whitening's mean cancels in a difference).

    bags (N, M, D), weights (N, M) summing to one per image, bank (P, D) in the features' own
    space. The top patches' weights are renormalised to sum to one.
    """
    n, m, d = bags.shape
    t = min(n_patches, m)
    top = np.argsort(-weights, axis=1, kind="stable")[:, :t]
    w = np.take_along_axis(np.asarray(weights, dtype=np.float32), top, 1)
    w /= np.maximum(w.sum(1, keepdims=True), 1e-12)

    def mapped(x: np.ndarray) -> torch.Tensor:
        x = np.asarray(x, dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(x if whitening is None else whitening(x)))

    nearest = NearestRows(mapped(bank))
    out = np.empty((n, d), dtype=np.float32)
    per_chunk = max(1, QUERY_ROWS // t)
    for s in range(0, n, per_chunk):
        rows = np.arange(s, min(s + per_chunk, n))
        patches = mapped(np.asarray(bags[rows[:, None], top[rows]]).reshape(-1, d))
        diff = (patches - nearest.bank[nearest(patches, n_neighbours)].mean(1)).view(len(rows), t, d)
        out[rows] = torch.einsum("nt,ntd->nd", torch.from_numpy(w[rows]), diff).numpy()
    return out


def match_ratio(normal_bags: np.ndarray, space: PatchSpace, max_patches: int) -> float | None:
    """The median over sampled normal patches of (distance to the nearest patch of another normal
    image) / (median distance to the patches of the other normal images); None with fewer than
    two normal images.

    normal_bags (N, M, D) in the features' own space; their patches `space` scores are compared
    in its (whitened) space, as the residual is taken. Only the first images holding about
    max_patches scored patches take part (at least two), as many as the normal bank keeps;
    patches are sampled at even steps, so no seed is involved.
    """
    n, d = len(normal_bags), normal_bags.shape[2]
    m = normal_bags.shape[1] if space.keep is None else int(np.count_nonzero(space.keep))
    n = min(n, max(2, max_patches // max(m, 1)))
    if n < 2 or m == 0:
        return None
    kept = space.kept(np.asarray(normal_bags[:n], dtype=np.float32))
    rows = torch.from_numpy(np.ascontiguousarray(kept if space.whitening is None else space.whitening(kept)))
    rows = rows.reshape(n * m, d)
    image = torch.arange(n).repeat_interleave(m)
    queries = torch.from_numpy(np.unique(np.linspace(0, n * m - 1, min(MATCH_QUERIES, n * m)).astype(np.int64)))
    ratios = []
    for chunk in queries.split(64):
        dist = torch.cdist(rows[chunk], rows)
        dist[image[chunk].unsqueeze(1) == image.unsqueeze(0)] = float("nan")  # only other images count
        nearest = torch.where(dist.isnan(), float("inf"), dist).amin(1)
        ratios.append(nearest / dist.nanmedian(1).values.clamp_min(1e-12))
    return float(torch.cat(ratios).median())
