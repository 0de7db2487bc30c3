"""Setting normal images apart before clustering (`--normal-threshold`).

With normal references, an image's anomaly score is its largest patch score (distance of its
most unusual patch to the nearest normal patch). Images scoring below the threshold are called
`normal` and left out of the clustering. `auto` calibrates the threshold on the references
alone: each reference is scored against the bank of the *other* references (leave-one-out,
so it is not compared with itself), and the threshold is the 95th percentile of these scores:
a new normal image, scored against all references, should fall below it about as often. What
the scores depend on (the whitening by the normal patches) is refitted without the left-out
reference too: fitted with it, it adapts to that image and its score comes out too low.

The reference weighting computes these scores without refitting (weighting.leave_one_out.
leave_one_out_scores: each fold's whitening from sums, its bank slices of shared stacks, its
search bounded; for the threshold only the references near the percentile are settled); they
equal refit_leave_one_out_scores within float32 rounding (about 1e-6 on the study sets).
"""

from __future__ import annotations

import numpy as np

from .errors import AnoclustError
from .weighting import Weighting
from .weighting.reference import ReferenceWeighting
from .weighting.leave_one_out import leave_one_out_scores as reference_leave_one_out

NORMAL_PERCENTILE = 95.0


def leave_one_out_scores(weighting: Weighting, normal_bags: np.ndarray, percentile: float | None = None) -> np.ndarray:
    """Largest patch score of each reference against a weighting of the same kind and settings
    fitted on the other references. percentile: only np.percentile(scores, percentile) is
    needed; the reference weighting then settles exactly only the references that decide it."""
    if len(normal_bags) < 2:
        raise AnoclustError("--normal-threshold auto needs at least two normal reference images")
    if type(weighting) is ReferenceWeighting:
        return reference_leave_one_out(weighting, normal_bags, percentile=percentile)
    return refit_leave_one_out_scores(weighting, normal_bags)


def refit_leave_one_out_scores(weighting: Weighting, normal_bags: np.ndarray) -> np.ndarray:
    """leave_one_out_scores by refitting the weighting once per reference (any weighting)."""
    n = len(normal_bags)
    if n < 2:
        raise AnoclustError("--normal-threshold auto needs at least two normal reference images")
    out = np.empty(n)
    for i in range(n):
        others = type(weighting)(weighting.params).fit(None, np.delete(normal_bags, i, axis=0))
        out[i] = np.nanmax(others.new_scores(normal_bags[i : i + 1]))
    return out


def resolve_normal_threshold(setting, weighting: Weighting, normal_bags: np.ndarray | None) -> float | None:
    """None (keep every image), or the anomaly-score threshold below which images are normal."""
    if setting is None:
        return None
    if not weighting.needs_normals or normal_bags is None:
        raise AnoclustError("--normal-threshold needs reference weighting and normal images (--normal DIR|LIST)")
    if setting == "auto":
        scores = leave_one_out_scores(weighting, normal_bags, NORMAL_PERCENTILE)
        return float(np.percentile(scores, NORMAL_PERCENTILE))
    return float(setting)
