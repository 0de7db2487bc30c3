"""Setting normal images apart before clustering (`--normal-threshold`).

With normal references, an image's anomaly score is its largest patch score (distance of its
most unusual patch to the nearest normal patch). Images scoring below the threshold are called
`normal` and left out of the clustering. `auto` calibrates the threshold on the references
alone: each reference is scored against the bank of the *other* references (leave-one-out,
so it is not compared with itself), and the threshold is the 95th percentile of these scores:
a new normal image, scored against all references, should fall below it about as often. What
the scores depend on (the whitening of patch_space.py) is refitted without the left-out
reference too: fitted with it, it adapts to that image and its score comes out too low.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import AnoclustError
from .patch_space import PatchSpace
from .weighting import build_bank, reference_scores

NORMAL_PERCENTILE = 95.0


SpaceOf = Callable[[np.ndarray], PatchSpace]  # normal bags -> the patch space fitted on them


def leave_one_out_scores(
    normal_bags: np.ndarray, max_bank: int = 100_000, random_state: int | None = 0, space_of: SpaceOf | None = None
) -> np.ndarray:
    """Largest patch score of each reference against the bank of the other references, in the
    patch space fitted on the other references (space_of; the plain space by default)."""
    n = len(normal_bags)
    if n < 2:
        raise AnoclustError("--normal-threshold auto needs at least two normal reference images")
    out = np.empty(n)
    for i in range(n):
        others = np.delete(normal_bags, i, axis=0)
        space = space_of(others) if space_of else None
        bank = build_bank(others, max_bank, random_state, space)
        out[i] = np.nanmax(reference_scores(normal_bags[i : i + 1], bank, space=space))
    return out


def resolve_normal_threshold(
    setting, weighting: str, normal_bags: np.ndarray | None, max_bank: int, random_state: int | None,
    space_of: SpaceOf | None = None,
) -> float | None:
    """None (keep every image), or the anomaly-score threshold below which images are normal."""
    if setting is None:
        return None
    if weighting != "reference" or normal_bags is None:
        raise AnoclustError("--normal-threshold needs reference weighting and normal images (--normal DIR|LIST)")
    if setting == "auto":
        scores = leave_one_out_scores(normal_bags, max_bank, random_state, space_of)
        return float(np.percentile(scores, NORMAL_PERCENTILE))
    try:
        return float(setting)
    except (TypeError, ValueError):
        raise AnoclustError(f"--normal-threshold must be 'auto' or a number, got {setting!r}") from None
