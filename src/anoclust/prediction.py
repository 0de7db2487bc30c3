"""Placing new images in the clusters of a fitted model, and telling unknown ones apart.

A fitted model keeps what the patch scores of a *new* image need, so its weighted embedding is
computed exactly as during fit:

- ``reference``: the normal patch bank (the same seeded, thinned bank fit used);
- ``unsupervised``: the bags of a fixed seeded sample of K fitted images. The fit-time score of an
  image is the mean over K sampled *other* images of its nearest-patch distances; a new image's
  score is the same mean over these K saved images. A saved bag identical to the new image's
  own bag (a fitted image assigned again) is left out, as fit leaves an image's own bag out.
- ``uniform`` / ``max``: nothing.

The same softmax (tau, standardisation) and the same clustering space follow; a new image goes
to the nearest cluster there. The unknown test measures in the normalised space before the
clustering space's projection (clustering.EmbeddingSpace.normalized): the projection keeps the
known clusters' principal axes and would drop what sets a new type apart. Calibration: a
cluster's distance threshold is the 99th percentile of its members' leave-one-out distances to
its centre (clusters with fewer than MIN_MEMBERS members use the 99th
percentile over all clustered images); farther images are `unknown`, a possible new defect type.
Leave-one-out: a member's distance to the mean of the *other* members, n/(n-1) times its distance
to the full mean, because a new image does not pull the centre towards itself as a member does.
"""

from __future__ import annotations

import numpy as np

from .patch_space import PatchSpace
from .weighting import build_bank, reference_scores

UNKNOWN_PERCENTILE = 99.0
MIN_MEMBERS = 5


def scoring_state(
    bags: np.ndarray, weighting: str, normal_bags, n_sampled: int, max_bank: int, seed, space: PatchSpace | None = None
) -> dict:
    """The arrays a new image's patch scores need (see module docstring); float16 like the bags,
    and the patch space's whitening (float32) when it has one."""
    if weighting == "reference":
        state = {"bank": build_bank(normal_bags, max_bank, seed, space).astype(np.float16)}
        if space is not None and space.whitening is not None:
            state.update(whiten_mean=space.whitening.mean, whiten_matrix=space.whitening.matrix)
        return state
    if weighting == "unsupervised":
        rng = np.random.default_rng([0 if seed is None else int(seed), len(bags)])
        picks = np.sort(rng.choice(len(bags), min(n_sampled, len(bags)), replace=False))
        return {"sampled_bags": np.asarray(bags[picks], dtype=np.float16)}
    return {}


def new_patch_scores(
    bags: np.ndarray, weighting: str, state: dict, space: PatchSpace | None = None
) -> np.ndarray | None:
    """Patch scores (N, M) of new images against a fitted model's saved state (NaN where the
    patch space scores nothing)."""
    space = space or PatchSpace()
    if weighting == "reference":
        return reference_scores(bags, np.asarray(state["bank"], dtype=np.float32), space=space)
    if weighting != "unsupervised":
        return None
    sampled = state["sampled_bags"]
    total = np.zeros(bags.shape[:2], dtype=np.float64)
    count = np.zeros((len(bags), 1))
    flat = bags.reshape(len(bags), -1)
    for ref in sampled:
        d = reference_scores(bags, np.asarray(space.kept(ref), dtype=np.float32), space=space)
        own = (flat == ref.reshape(1, -1).astype(bags.dtype)).all(1)[:, None]  # the image itself
        total += np.where(own, 0.0, d)
        count += ~own
    return (total / np.maximum(count, 1)).astype(np.float32)


def centre_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Euclidean distances (N, k) from each row to each centre."""
    d2 = (x * x).sum(1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None]
    return np.sqrt(np.maximum(d2, 0))


def calibrate_thresholds(x: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Per-cluster distance beyond which an image is `unknown` (see module docstring)."""
    sizes = np.bincount(labels, minlength=len(centres))[labels]
    own = centre_distances(x, centres)[np.arange(len(x)), labels] * sizes / np.maximum(sizes - 1, 1)
    overall = np.percentile(own, UNKNOWN_PERCENTILE)
    out = np.empty(len(centres))
    for c in range(len(centres)):
        members = own[labels == c]
        out[c] = np.percentile(members, UNKNOWN_PERCENTILE) if len(members) >= MIN_MEMBERS else overall
    return out
