"""Setting normal images apart before clustering (`--normal-threshold`).

With normal references, an image's anomaly score is its largest patch score (distance of its
most unusual patch to the nearest normal patch). Images scoring below the threshold are called
`normal` and left out of the clustering. `auto` calibrates the threshold on the references
alone: each reference is scored against the bank of the *other* references (leave-one-out,
so it is not compared with itself), and the threshold is the 95th percentile of these scores:
a new normal image, scored against all references, should fall below it about as often.
"""

from __future__ import annotations

import numpy as np

from .errors import AnoclustError
from .weighting import build_bank, reference_scores

NORMAL_PERCENTILE = 95.0


def leave_one_out_scores(normal_bags: np.ndarray, max_bank: int = 100_000, random_state: int | None = 0) -> np.ndarray:
    """Largest patch score of each reference against the bank of the other references."""
    n = len(normal_bags)
    if n < 2:
        raise AnoclustError("--normal-threshold auto needs at least two normal reference images")
    out = np.empty(n)
    for i in range(n):
        bank = build_bank(np.delete(normal_bags, i, axis=0), max_bank, random_state)
        out[i] = reference_scores(normal_bags[i : i + 1], bank).max()
    return out


def resolve_normal_threshold(
    setting, weighting: str, normal_bags: np.ndarray | None, max_bank: int, random_state: int | None
) -> float | None:
    """None (keep every image), or the anomaly-score threshold below which images are normal."""
    if setting is None:
        return None
    if weighting != "reference" or normal_bags is None:
        raise AnoclustError("--normal-threshold needs reference weighting and normal images (--normal DIR|LIST)")
    if setting == "auto":
        return float(np.percentile(leave_one_out_scores(normal_bags, max_bank, random_state), NORMAL_PERCENTILE))
    try:
        return float(setting)
    except (TypeError, ValueError):
        raise AnoclustError(f"--normal-threshold must be 'auto' or a number, got {setting!r}") from None
