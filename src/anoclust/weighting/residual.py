"""Residual pooling: describe each image by how its most unusual patches differ from normal ones.

Each of an image's RESIDUAL_PATCHES highest-weighted patches is replaced by its difference from
the mean of its RESIDUAL_NEIGHBOURS nearest patches in the normal bank (whitened by the normal
patches, as the reference scores measure), and the differences are averaged with the patches'
softmax weights. What a defect patch shares with the normal patches that look most like it,
the part's own texture and colour at that place, cancels; what is left is the defect.

Only the reference weighting has a normal bank to subtract. With pooling "auto" it is one of
the descriptions anoclust.fit.cluster_best chooses between (docs/DESIGN.md).
"""

from __future__ import annotations

import numpy as np
import torch

from ..space import Whitening

# The patches that describe an image: with the softmax at tau 0.5 on standardised scores,
# the 32 highest weights of a local defect hold nearly all of its weight, and the search costs
# about 3% of scoring every patch (docs/DESIGN.md).
RESIDUAL_PATCHES = 32
# Nearest normal patches averaged into each patch's match: one nearest patch leaves the match's
# own noise in the difference.
RESIDUAL_NEIGHBOURS = 4
# Query rows per matrix product and bank rows per block (about 16 M float32 distances a block).
QUERY_ROWS = 2048
BANK_ROWS = 8192


def nearest_rows(queries: torch.Tensor, bank: torch.Tensor, k: int) -> torch.Tensor:
    """(Q, k) indices of each query row's k nearest bank rows (float32, exact), bank block by block."""
    dists, rows = [], []
    for start in range(0, len(bank), BANK_ROWS):
        block = bank[start : start + BANK_ROWS]
        # ||q||^2 is the same for every bank row: leaving it out keeps the order
        d, i = torch.topk(torch.addmm((block * block).sum(1), queries, block.T, alpha=-2.0),
                          min(k, len(block)), dim=1, largest=False)
        dists.append(d)
        rows.append(i + start)
    pick = torch.topk(torch.cat(dists, 1), min(k, len(bank)), dim=1, largest=False).indices
    return torch.gather(torch.cat(rows, 1), 1, pick)


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

    bank_t = mapped(bank)
    out = np.empty((n, d), dtype=np.float32)
    per_chunk = max(1, QUERY_ROWS // t)
    for s in range(0, n, per_chunk):
        rows = np.arange(s, min(s + per_chunk, n))
        patches = mapped(np.asarray(bags[rows[:, None], top[rows]]).reshape(-1, d))
        near = nearest_rows(patches, bank_t, n_neighbours)
        diff = (patches - bank_t[near].mean(1)).view(len(rows), t, d)
        out[rows] = torch.einsum("nt,ntd->nd", torch.from_numpy(w[rows]), diff).numpy()
    return out
