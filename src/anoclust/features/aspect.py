"""Aspect-preserving input (setting `aspect="keep"`): a patch grid per image, same patch count.

`aspect="auto"` (the default) chooses "keep" for sets whose images are 4:1 or longer, and for
sets whose images all share one shape that is not square; "squash" otherwise (resolve_aspect).

Squashing every image to the square input distorts images far from square (a 16:1 strip
becomes 16 times narrower along its length) and distorts differently sized images differently.
With "keep", each image gets an interior grid (ih, iw) whose product is fixed at
T = (G - 2b)^2 (G the square input's grid side, b the border ring), chosen so that the grid
including its ring, (ih + 2b) x (iw + 2b), has the image's aspect ratio as nearly as the
divisors of T allow. The image is resized to that grid times the stride.

Every bag holds M = G^2 patches, as in squash mode (`bag_layout`): the T interior patches in
row-major order, then R = M - T patches of the image's own ring. Scoring and weighting use the
first T only (space.scored_mask), as squash mode leaves its ring out; the whitenings are fitted
on all M, so they see the ring as in squash mode (the ring's directions of variation, padding
and crop edges, are then discounted in the interior too). A grid with the same interior count
never has a smaller ring than the square one (ih + iw >= 2 sqrt(T)), so R ring patches always
exist; they are taken evenly spaced along the ring in row-major order, and for a square image
they are the whole ring: its bag holds the same patches as squash mode's, in another order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

from ..errors import ImageReadError
from ..inputs.decode import read_size
from ..settings import Params

# `--aspect auto` keeps the aspect when the images' median long side / short side is at least
# KEEP_FROM_RATIO (squashing such an image shrinks its patches 4 x along its length), or when
# every image has the same ratio (within ONE_SHAPE) of at least NOT_SQUARE: then every image's
# patches have one scale either way, and keeping spares them the squash's anisotropy; images of
# varied shapes would get patches of varied scales (docs/DESIGN.md).
KEEP_FROM_RATIO = 4.0
ONE_SHAPE = 1.05
NOT_SQUARE = 1.2
# The ratios are read from at most this many images, evenly spaced in the list (headers only).
RATIO_SAMPLE = 256


def resolve_aspect(params: Params, paths: Sequence) -> Params:
    """params with aspect "auto" replaced by "keep" or "squash" from the images' aspect ratios
    (unreadable headers are left out: extraction reports them). Everything after extraction sees
    only the two concrete modes, and a saved model keeps one."""
    if params.aspect != "auto":
        return params
    ratios = []
    for path in list(paths)[:: max(1, -(-len(paths) // RATIO_SAMPLE))]:
        try:
            w, h = read_size(path)
        except (ImageReadError, OSError):  # reported by the extraction
            continue
        ratios.append(max(w, h) / max(1, min(w, h)))
    if not ratios:
        return dataclasses.replace(params, aspect="squash")
    median, one_shape = float(np.median(ratios)), max(ratios) <= ONE_SHAPE * min(ratios)
    keep = median >= KEEP_FROM_RATIO or (one_shape and median >= NOT_SQUARE)
    return dataclasses.replace(params, aspect="keep" if keep else "squash")


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


def ring_count(grid_side: int, border: int) -> int:
    """R: the ring patches a keep-mode bag carries after its T interior ones (M = G^2 in all)."""
    return grid_side * grid_side - interior_count(grid_side, border)


@lru_cache(maxsize=256)
def _layout(rows: int, cols: int, ring: int, n_ring: int) -> tuple[int, ...]:
    full = np.arange((rows + 2 * ring) * (cols + 2 * ring)).reshape(rows + 2 * ring, cols + 2 * ring)
    inner = full[ring : ring + rows, ring : ring + cols].ravel()
    outside = np.ones(full.size, dtype=bool)
    outside[inner] = False
    around = np.flatnonzero(outside)
    if len(around) < n_ring:
        raise ValueError(f"a {rows} x {cols} grid with a ring of {ring} has only {len(around)} ring patches, "
                         f"{n_ring} wanted")
    # evenly spaced in row-major order: the exact ring when there are just n_ring of them
    picks = around[(np.arange(n_ring) * len(around)) // max(n_ring, 1)]
    return tuple(np.concatenate([inner, picks]).tolist())


def bag_layout(rows: int, cols: int, ring: int, n_ring: int) -> np.ndarray:
    """Positions, row-major in the full (rows + 2 ring) x (cols + 2 ring) grid, of a keep-mode
    bag's patches: the rows x cols interior row by row, then n_ring ring patches evenly spaced
    along the ring in row-major order (all of it when it has exactly n_ring)."""
    return np.array(_layout(rows, cols, ring, n_ring), dtype=np.int64)


def arrange_bags(bags: torch.Tensor, full_rows: int, full_cols: int, ring: int, n_ring: int) -> torch.Tensor:
    """(B, full_rows * full_cols, D) aggregated bags laid out row by row -> (B, T + n_ring, D)
    bags in `bag_layout` order (T the interior's patch count)."""
    b, m, d = bags.shape
    if m != full_rows * full_cols:
        raise ValueError(f"{m} patches do not form a {full_rows} x {full_cols} grid")
    order = bag_layout(full_rows - 2 * ring, full_cols - 2 * ring, ring, n_ring)
    return bags.index_select(1, torch.from_numpy(order))


def grid_of(array_shape: tuple[int, ...], ring: int, stride: int) -> tuple[int, int]:
    """The interior grid of a decoded image array (3, H, W) resized by input_shape."""
    return array_shape[-2] // stride - 2 * ring, array_shape[-1] // stride - 2 * ring


def square_grids(n: int, side: int) -> np.ndarray:
    """(n, 2) grids of n images on one square grid (aspect "squash")."""
    return np.full((n, 2), side, dtype=np.int64)
