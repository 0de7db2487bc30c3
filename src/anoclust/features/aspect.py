"""Aspect-preserving input (setting `aspect="keep"`): a patch grid per image, same patch count.

Squashing every image to the square input distorts images far from square (a 16:1 strip
becomes 16 times narrower along its length) and distorts differently sized images differently.
With "keep", each image gets an interior grid (ih, iw) whose product is fixed at
T = (G - 2b)^2 (G the square input's grid side, b the border ring), chosen so that the grid
including its ring, (ih + 2b) x (iw + 2b), has the image's aspect ratio as nearly as the
divisors of T allow. The image is resized to that grid times the stride, and after the network
and the aggregation the b-patch ring (which sees the zero padding) is cropped: every bag then
has exactly T patches and no ring, so the arrays (N, M, D) downstream keep their shape.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch


def ring_width(grid_side: int, border: int) -> int:
    """The ring the square grid leaves out, as space.interior_mask applies it (at most an
    eighth of the side)."""
    return min(int(border), grid_side // 8)


def interior_count(grid_side: int, border: int) -> int:
    """T: the patches per image in keep mode, the interior of the square grid."""
    return (grid_side - 2 * ring_width(grid_side, border)) ** 2


@lru_cache(maxsize=64)
def _divisor_pairs(total: int) -> tuple[tuple[int, int], ...]:
    return tuple((d, total // d) for d in range(1, total + 1) if total % d == 0)


def choose_grid(height: int, width: int, total: int, ring: int) -> tuple[int, int]:
    """The interior grid (rows, cols), rows * cols == total, whose grid with its ring has the
    aspect of a height x width image most nearly (in log ratio).

    Computed for the landscape orientation and transposed for portrait, so a turned image gets
    exactly the turned grid even where two grids are equally near.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height} x {width}")
    short, long = sorted((height, width))
    target = math.log(long / short)
    best, best_gap = None, math.inf
    for rows, cols in _divisor_pairs(total):
        if rows > cols:
            break  # landscape grids only (rows <= cols)
        gap = abs(math.log((cols + 2 * ring) / (rows + 2 * ring)) - target)
        if gap < best_gap - 1e-12:  # a tie keeps the grid met first (fewer rows): deterministic
            best, best_gap = (rows, cols), gap
    assert best is not None
    return best if width >= height else (best[1], best[0])


def input_shape(grid: tuple[int, int], ring: int, stride: int) -> tuple[int, int]:
    """The network input (height, width) in pixels for an interior grid and its ring."""
    return (grid[0] + 2 * ring) * stride, (grid[1] + 2 * ring) * stride


def crop_ring(bags: torch.Tensor, rows: int, cols: int, ring: int) -> torch.Tensor:
    """(B, rows * cols, D) aggregated bags laid out row by row -> the (B, (rows - 2 ring) *
    (cols - 2 ring), D) bags of the interior."""
    if ring == 0:
        return bags
    b, m, d = bags.shape
    if m != rows * cols:
        raise ValueError(f"{m} patches do not form a {rows} x {cols} grid")
    inner = bags.view(b, rows, cols, d)[:, ring : rows - ring, ring : cols - ring]
    return inner.reshape(b, -1, d)


def grid_of(array_shape: tuple[int, ...], ring: int, stride: int) -> tuple[int, int]:
    """The interior grid of a decoded image array (3, H, W) resized by input_shape."""
    return array_shape[-2] // stride - 2 * ring, array_shape[-1] // stride - 2 * ring


def square_grids(n: int, side: int) -> np.ndarray:
    """(n, 2) grids of n images on one square grid (aspect "squash")."""
    return np.full((n, 2), side, dtype=np.int64)
