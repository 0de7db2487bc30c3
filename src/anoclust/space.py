"""The two geometries of the method: the patch space and the embedding space.

**Patch space** (`PatchSpace`): which patches are scored, and the map applied to patch
features before their distances are measured. Three corrections to the plain method
(docs/DESIGN.md has the study behind each):

- **Border ring.** Patches on the outermost rings of the grid see the network's zero padding
  and the edge of the crop. Their scores measure that, not the part: on MTD the largest patch
  score sat on the outermost ring in 98% of the images. Ring patches are neither scored,
  weighted nor used as matches; their score is NaN ("not scored"). With aspect "keep" a bag
  holds its interior patches first and ring patches after them (anoclust.features.aspect): the
  same count is left out, from the end of the bag.
- **Whitening by the normal images.** With normal references, patch features are compared
  after a linear map that whitens the normal patches (mean removed, covariance made the
  identity, with shrinkage towards a scaled identity so that directions normal patches barely
  use are not blown up without limit). Differences along directions in which normal parts vary
  anyway (lighting, surface grain) then count less than differences normal parts never show.
  It needs normal images, so the unsupervised weighting does not use it for its scores:
  whitening by the defect images themselves was measured and is worse.
- **Whitening by within-image variation** (unsupervised weighting, embeddings only). Without
  normals, the pooled embeddings are whitened by the variation of the set's patches around
  their own image's mean. That variation is what tells parts of one image apart (surface
  grain, shading, a part's outline against its background), not what tells one image's class
  from another's, so its strong directions count less when the images are clustered. Heavier
  shrinkage than above, because the defects are in the fit too.

**Embedding space** (`EmbeddingSpace`): where the images are clustered. The weighted
embeddings are normalised (l2 or PCA whitening) and projected onto their leading principal
axes; fitted on the clustered images, it maps new images into the same space.

Everything meets as arrays: a boolean mask over the patch grid and affine maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .blas import one_thread
from .settings import NORMALIZATIONS

# Share of the covariance replaced by a scaled identity (docs/DESIGN.md).
SHRINKAGE = 0.1
# The same for the within-image whitening of the unsupervised weighting (docs/DESIGN.md).
WITHIN_SHRINKAGE = 0.5


def interior_mask(n_patches: int, border: int) -> np.ndarray:
    """(M,) bool over a square patch grid: False on the `border` outermost rings.

    The ring never takes more than an eighth of the side from each edge, so small grids (small
    input sizes) keep most of their patches; grids under 8 x 8 keep all.
    """
    side = int(round(np.sqrt(n_patches)))
    if side * side != n_patches:
        raise ValueError(f"{n_patches} patches do not form a square grid")
    if border < 0:
        raise ValueError("border must be zero or positive")
    ring = min(int(border), side // 8)
    mask = np.zeros((side, side), dtype=bool)
    mask[ring : side - ring, ring : side - ring] = True
    return mask.ravel()


def scored_mask(n_patches: int, border: int, aspect: str) -> np.ndarray:
    """The patches scored weightings use: the interior_mask of the square grid, or with aspect
    "keep" the bag's first T patches, T the same interior count (features.aspect.bag_layout puts
    the image's own interior there and ring patches after it)."""
    mask = interior_mask(n_patches, border)
    return np.arange(n_patches) < int(mask.sum()) if aspect == "keep" else mask


def scored_positions(n_patches: int, border: int, aspect: str) -> np.ndarray:
    """The indices of scored_mask's patches."""
    return np.flatnonzero(scored_mask(n_patches, border, aspect))


@dataclass(frozen=True)
class Whitening:
    """x -> (x - mean) @ matrix, fitted on patch features (see module docstring)."""

    mean: np.ndarray  # (D,)
    matrix: np.ndarray  # (D, D), symmetric

    @classmethod
    def fit(cls, patches: np.ndarray, shrinkage: float | None = None) -> "Whitening":
        """From a (P, D) array of normal patch features; shrinkage defaults to SHRINKAGE."""
        x = np.asarray(patches, dtype=np.float64).reshape(-1, np.shape(patches)[-1])
        if len(x) < 2:
            raise ValueError("whitening needs at least two normal patches")
        return cls.from_covariance(x.mean(0), np.cov(x, rowvar=False), shrinkage)

    @classmethod
    def from_covariance(cls, mean: np.ndarray, cov: np.ndarray, shrinkage: float | None = None) -> "Whitening":
        """From the mean (D,) and covariance (D, D) of the patches (float64, ddof 1), as `fit`
        does: the normal threshold's leave-one-out (anoclust.normal_threshold) gets each fold's
        covariance by removing one reference's patches from sums instead of refitting."""
        shrinkage = SHRINKAGE if shrinkage is None else shrinkage
        target = np.trace(cov) / len(cov)
        cov = (1.0 - shrinkage) * cov + shrinkage * max(target, 1e-12) * np.eye(len(cov))
        with one_thread():  # a 128 x 128 problem: BLAS threads only contend (50x slower under load)
            values, vectors = np.linalg.eigh(cov)
            matrix = (vectors / np.sqrt(np.maximum(values, 1e-12))) @ vectors.T
        return cls(np.asarray(mean).astype(np.float32), matrix.astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Whiten the last axis of x (patch features, or embeddings: the map is affine, so it
        commutes with any weighted average whose weights sum to one)."""
        return ((np.asarray(x, dtype=np.float32) - self.mean) @ self.matrix).astype(np.float32)


def within_image_whitening(
    bags: np.ndarray, max_patches: int, random_state: int, shrinkage: float = WITHIN_SHRINKAGE
) -> Whitening:
    """Whitening fitted on the patches of (N, M, D) bags centred on their own image's mean
    (all patches, border ring included; at most max_patches of them, drawn with the seed)."""
    n, m, _ = bags.shape
    rng = np.random.default_rng(random_state)
    pick = rng.choice(n * m, min(max_patches, n * m), replace=False)
    rows, cols = np.divmod(np.sort(pick), m)
    import torch  # here only: the report uses this module without the network's library

    # one image at a time; torch converts float16 about ten times faster than numpy
    means = np.stack([torch.from_numpy(np.array(b)).float().mean(0).numpy() for b in bags])
    centred = np.asarray(bags[rows, cols], dtype=np.float32) - means[rows]
    return Whitening.fit(centred, shrinkage=shrinkage)


@dataclass(frozen=True)
class PatchSpace:
    """The patches to score (keep) and the map to apply before distances (whitening or None)."""

    keep: np.ndarray | None = None
    whitening: Whitening | None = None

    def kept(self, bag: np.ndarray) -> np.ndarray:
        """The scored patches of one bag (M, D) or of a stack of bags (N, M, D)."""
        return bag if self.keep is None else bag[..., self.keep, :]


def _principal_axes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, singular values, principal axes as rows) of x's rows.

    An axis's sign is arbitrary and can flip with the order of the rows; fixing it keeps a
    reloaded model's space (refitted from the saved embeddings) identical.
    """
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    vt *= np.where(vt[np.arange(len(vt)), np.abs(vt).argmax(1)] < 0, -1.0, 1.0)[:, None]
    return mean, s, vt


class EmbeddingSpace:
    """The space images are clustered in, fitted on the clustered images' embeddings, so that
    new images land in the same space.

    how (NORMALIZATIONS): "l2" scales each image to unit length, so only the direction of the
    feature vector matters; "whiten" is PCA whitening (components explaining 99% of the
    variance), so no few dominant channels decide the distances alone.
    components > 0: afterwards keep only the coordinates on that many principal axes of the
    fitted embeddings, and scale each image to unit length again. The directions of little
    variation across the set carry mostly noise that blurs the clusters (docs/DESIGN.md);
    `normalized` is the space before that projection.
    """

    def __init__(self, how: str, fitted: np.ndarray, components: int = 0):
        if how not in NORMALIZATIONS:
            raise ValueError(f"unknown normalisation {how!r}; choose one of {', '.join(NORMALIZATIONS)}")
        self.how, self.components = how, int(components)
        x = np.asarray(fitted, dtype=np.float64)
        if how == "whiten":
            self.mean, s, vt = _principal_axes(x)
            keep = max(1, int(np.searchsorted(np.cumsum(s**2) / max((s**2).sum(), 1e-12), 0.99) + 1))
            self.proj = vt[:keep].T / (s[:keep] + 1e-12) * np.sqrt(len(x))
        elif self.components > 0:
            self.sub_mean, _, vt = _principal_axes(self.normalized(x))
            self.axes = vt[: self.components].T

    def normalized(self, embeddings: np.ndarray) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float64)
        if self.how == "l2":
            return _unit(x)
        if self.how == "whiten":
            return (x - self.mean) @ self.proj
        return x

    def project(self, normalized: np.ndarray) -> np.ndarray:
        """Rows already `normalized`, into the clustering space."""
        if self.components == 0:
            return normalized
        # Whitened, every direction varies alike: the axes to keep are the whitening's own, which
        # come ordered by the variation they had.
        x = normalized
        return _unit(x[:, : self.components] if self.how == "whiten" else (x - self.sub_mean) @ self.axes)

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        return self.project(self.normalized(embeddings))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
