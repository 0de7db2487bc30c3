"""Which patches are scored, and in what geometry their distances are measured.

Three corrections to the plain method, all measured in docs/RESULTS.md:

- **Border ring.** Patches on the outermost rings of the grid see the network's zero padding
  and the edge of the crop. Their scores measure that, not the part: on MTD the largest patch
  score sat on the outermost ring in 98% of the images. Ring patches are neither scored,
  weighted nor used as matches; their score is NaN ("not scored").
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

Everything meets as arrays: a boolean mask over the patch grid and an affine map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Share of the covariance replaced by a scaled identity (docs/RESULTS.md, "whitening").
SHRINKAGE = 0.1
# The same for the within-image whitening of the unsupervised weighting (docs/RESULTS.md, section 11).
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


@dataclass(frozen=True)
class Whitening:
    """x -> (x - mean) @ matrix, fitted on patch features (see module docstring)."""

    mean: np.ndarray  # (D,)
    matrix: np.ndarray  # (D, D), symmetric

    @classmethod
    def fit(cls, patches: np.ndarray, shrinkage: float | None = None) -> "Whitening":
        """From a (P, D) array of normal patch features; shrinkage defaults to SHRINKAGE."""
        shrinkage = SHRINKAGE if shrinkage is None else shrinkage
        x = np.asarray(patches, dtype=np.float64).reshape(-1, np.shape(patches)[-1])
        if len(x) < 2:
            raise ValueError("whitening needs at least two normal patches")
        mean = x.mean(0)
        cov = np.cov(x, rowvar=False)
        target = np.trace(cov) / len(cov)
        cov = (1.0 - shrinkage) * cov + shrinkage * max(target, 1e-12) * np.eye(len(cov))
        values, vectors = np.linalg.eigh(cov)
        matrix = (vectors / np.sqrt(np.maximum(values, 1e-12))) @ vectors.T
        return cls(mean.astype(np.float32), matrix.astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Whiten the last axis of x (patch features, or embeddings: the map is affine, so it
        commutes with any weighted average whose weights sum to one)."""
        return ((np.asarray(x, dtype=np.float32) - self.mean) @ self.matrix).astype(np.float32)


def within_image_whitening(
    bags: np.ndarray, max_patches: int = 100_000, random_state: int | None = 0, shrinkage: float = WITHIN_SHRINKAGE
) -> Whitening:
    """Whitening fitted on the patches of (N, M, D) bags centred on their own image's mean
    (all patches, border ring included; at most max_patches of them, drawn with the seed)."""
    n, m, _ = bags.shape
    rng = np.random.default_rng(random_state)
    pick = rng.choice(n * m, min(max_patches, n * m), replace=False)
    rows, cols = np.divmod(np.sort(pick), m)
    means = np.stack([np.asarray(b, dtype=np.float32).mean(0) for b in bags])  # one image at a time
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
