"""The reference weighting: a patch is unusual when no patch of a normal image is close to it.

s_im = min over a bank of normal patches of ||z_im - z|| (the PatchCore anomaly score). The
bank holds the normal images' patches outside the border ring, thinned to max_bank with the
seed. With `whiten`, patches (and the embeddings) are compared after whitening by the normal
patches (anoclust.space.Whitening): differences along directions in which normal parts vary
anyway count less than differences normal parts never show. The whitening is fitted on every
normal patch, border ring included: the directions in which the crop's edges and the padding
make patches vary are then discounted in the interior as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..space import PatchSpace, Whitening, interior_mask
from .base import ScoredWeighting
from .nearest import as_tensor, in_threads, min_sq_dist, preparer


@dataclass(frozen=True)
class ReferenceState:
    bank: np.ndarray  # (P, D) float16 normal patches, in the features' own space
    whitening: Whitening | None = None  # fitted on the normal patches; applied to patches and embeddings
    # the arrays' shapes in a saved model (M patches of D features; other letters: any size)
    SHAPES: ClassVar[dict] = {"bank": "PD", "whitening.mean": "D", "whitening.matrix": "DD"}


class ReferenceWeighting(ScoredWeighting):
    name = "reference"
    needs_normals = True
    auto_method = "ward_kmeans"
    state_type = ReferenceState

    def _space(self, n_patches: int) -> PatchSpace:
        return PatchSpace(interior_mask(n_patches, self.params.border), self.state.whitening)

    def fit(self, bags: np.ndarray | None, normal_bags: np.ndarray | None = None) -> "ReferenceWeighting":
        """bags are not needed: everything is learnt from the normal images."""
        if normal_bags is None or len(normal_bags) == 0:
            raise ValueError("the reference weighting needs normal images")
        p = self.params
        whitening = Whitening.fit(build_bank(normal_bags, p.max_bank, p.random_state)) if p.whiten else None
        self.space = PatchSpace(interior_mask(normal_bags.shape[1], p.border), whitening)
        bank = build_bank(normal_bags, p.max_bank, p.random_state, self.space)
        self.state = ReferenceState(bank.astype(np.float16), whitening)  # exact: the bags are float16
        return self

    @property
    def embedding_map(self) -> Whitening | None:
        return self.state.whitening

    def describes_locally(self, peak: float | None) -> bool:
        return True

    @classmethod
    def uses_seed(cls, params, normal_bags) -> bool:
        return normal_bags.shape[0] * normal_bags.shape[1] > params.max_bank  # the bank is thinned

    def scores(self, bags: np.ndarray, rows: np.ndarray | None = None, n_threads: int | None = None) -> np.ndarray:
        part = bags if rows is None else bags[rows[0] : rows[-1] + 1]
        return reference_scores(part, np.asarray(self.state.bank, dtype=np.float32), n_threads, self.space)

    def new_scores(self, bags: np.ndarray) -> np.ndarray:
        return self.scores(bags)


def build_bank(
    normal_bags: np.ndarray, max_patches: int, random_state: int, space: PatchSpace | None = None
) -> np.ndarray:
    """Stack the normal images' (kept) patches into one bank, randomly thinned to max_patches.

    Thinning bounds the cost of scoring (it is linear in the bank size); the draw is seeded.
    The bank stays in the features' own space: reference_scores applies the space's map.
    """
    kept = (space or PatchSpace()).kept(np.asarray(normal_bags))
    bank = np.asarray(kept, dtype=np.float32).reshape(-1, normal_bags.shape[-1])
    if len(bank) > max_patches:
        rng = np.random.default_rng(0 if random_state is None else random_state)
        bank = bank[np.sort(rng.choice(len(bank), max_patches, replace=False))]
    return bank


def reference_scores(
    bags: np.ndarray, bank: np.ndarray, n_threads: int | None = None, space: PatchSpace | None = None
) -> np.ndarray:
    """s_im = min over the normal bank of ||z_im - z|| (the PatchCore anomaly score).

    space: which patches are scored and the map applied to them and to the bank first
    (anoclust.space); patches left out get NaN.
    """
    n, m, d = bags.shape
    space = space or PatchSpace()
    prepare = preparer(space)
    bank_t = as_tensor(bank if space.whitening is None else space.whitening(bank))
    bank_sq = (bank_t * bank_t).sum(1)
    out = np.full((n, m), np.nan, dtype=np.float32)
    cols = slice(None) if space.keep is None else np.flatnonzero(space.keep)

    def work(rows: np.ndarray) -> None:
        for i in rows:
            out[i, cols] = min_sq_dist(as_tensor(prepare(bags[i])), bank_t, bank_sq).sqrt_().numpy()

    in_threads(n, work, n_threads)
    return out
