"""Placing new images in the clusters of a fitted model, and telling unknown ones apart.

A fitted model keeps what the patch scores of a *new* image need, so its weighted embedding is
computed exactly as during fit:

- ``reference``: the normal patch bank (the same seeded, thinned bank fit used);
- ``unsupervised``: the bags of a fixed seeded sample of K fitted images. The fit-time score of an
  image is the mean over K sampled *other* images of its nearest-patch distances; a new image's
  score is the same mean over these K saved images. A saved bag identical to the new image's
  own bag (a fitted image assigned again) is left out, as fit leaves an image's own bag out.
- ``uniform`` / ``max``: nothing.

The same softmax (tau, standardisation) and the same normalisation of the clustering space
follow. Calibration: a cluster's distance threshold is the 99th percentile of its members'
leave-one-out distances to its centre (clusters with fewer than MIN_MEMBERS members use the 99th
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


class Normalizer:
    """The estimator's embedding normalisation as a fitted map, so new images land in the same space.

    'whiten' is fitted on the clustered images' embeddings (mean, principal axes and scales),
    reproducing clustering.normalize_embeddings on them.
    """

    def __init__(self, how: str, fitted: np.ndarray):
        self.how = how
        if how == "whiten":
            x = np.asarray(fitted, dtype=np.float64)
            self.mean = x.mean(0)
            _, s, vt = np.linalg.svd(x - self.mean, full_matrices=False)
            # An axis's sign is arbitrary and can flip with the order of the rows; fixing it
            # keeps a reloaded model's space (refitted from the saved embeddings) identical.
            vt *= np.where(vt[np.arange(len(vt)), np.abs(vt).argmax(1)] < 0, -1.0, 1.0)[:, None]
            keep = max(1, int(np.searchsorted(np.cumsum(s**2) / max((s**2).sum(), 1e-12), 0.99) + 1))
            self.proj = vt[:keep].T / (s[:keep] + 1e-12) * np.sqrt(len(x))

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float64)
        if self.how == "l2":
            return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
        if self.how == "whiten":
            return (x - self.mean) @ self.proj
        return x


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
