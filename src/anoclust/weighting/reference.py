"""The reference weighting: a patch is unusual when no patch of a normal image is close to it.

s_im = min over a bank of normal patches of ||z_im - z|| (the PatchCore anomaly score). The
bank holds the normal images' patches outside the border ring, thinned to max_bank with the
seed. With `whiten`, patches (and the embeddings) are compared after whitening by the normal
patches (anoclust.space.Whitening): differences along directions in which normal parts vary
anyway count less than differences normal parts never show. The whitening is fitted on every
normal patch, border ring included: the directions in which the crop's edges and the padding
make patches vary are then discounted in the interior as well.

Where the CPU multiplies bfloat16 natively, each patch's nearest bank rows are found in
bfloat16 and re-checked in float32 (anoclust.weighting.nearest.CandidateSearch): exact where
the nearest row is clear, within the rounding bound at near ties. The normal threshold's
leave-one-out gets the refitted weighting's scores without refitting (anoclust.weighting.
leave_one_out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from ..space import PatchSpace, Whitening, scored_mask
from .base import ScoredWeighting
from .nearest import (BLOCK_ELEMENTS, CandidateSearch, as_tensor, exact_distance, in_threads, min_sq_dist, preparer,
                      resolve_search)
from .pooling import softmax_weights
from .residual import DENSE_MATCH, match_ratio, residual_average


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
    poolings = ("weighted", "average", "residual")

    def _space(self, n_patches: int) -> PatchSpace:
        return PatchSpace(scored_mask(n_patches, self.params.border, self.params.aspect), self.state.whitening)

    def fit(self, bags: np.ndarray | None, normal_bags: np.ndarray | None = None) -> "ReferenceWeighting":
        """bags are not needed: everything is learnt from the normal images."""
        if normal_bags is None or len(normal_bags) == 0:
            raise ValueError("the reference weighting needs normal images")
        p = self.params
        whitening = Whitening.fit(build_bank(normal_bags, p.max_bank, p.random_state)) if p.whiten else None
        self.space = PatchSpace(scored_mask(normal_bags.shape[1], p.border, p.aspect), whitening)
        bank = build_bank(normal_bags, p.max_bank, p.random_state, self.space)
        self.state = ReferenceState(bank.astype(np.float16), whitening)  # exact: the bags are float16
        if p.pooling == "auto":  # it decides only which description leads the choice
            self.normal_match = match_ratio(normal_bags, self.space, p.max_bank)
        return self

    def auto_poolings(self) -> tuple[str, ...]:
        if self.normal_match is not None and self.normal_match <= DENSE_MATCH:
            return ("residual", "weighted", "average")
        return self.poolings

    @property
    def embedding_map(self) -> Whitening | None:
        return self.state.whitening

    def pool(self, bags: np.ndarray, scores: np.ndarray | None, pooling: str = "weighted"
             ) -> tuple[np.ndarray, np.ndarray]:
        if pooling != "residual":
            return super().pool(bags, scores, pooling)
        weights = softmax_weights(scores, tau=self.params.tau, standardize=self.params.standardize)
        return residual_average(bags, weights, self.state.bank, self.state.whitening), weights

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
    bags: np.ndarray, bank: np.ndarray, n_threads: int | None = None, space: PatchSpace | None = None,
    search: str | None = None,
) -> np.ndarray:
    """s_im = min over the normal bank of ||z_im - z|| (the PatchCore anomaly score).

    space: which patches are scored and the map applied to them and to the bank first
    (anoclust.space); patches left out get NaN. search: "exact" float32 products, "bf16"
    candidates re-checked exactly, or "auto" (anoclust.weighting.nearest).
    """
    n, m, d = bags.shape
    space = space or PatchSpace()
    prepare = preparer(space)
    bank_t = as_tensor(bank if space.whitening is None else space.whitening(bank))
    out = np.full((n, m), np.nan, dtype=np.float32)
    cols = slice(None) if space.keep is None else np.flatnonzero(space.keep)
    n_kept = m if space.keep is None else int(np.count_nonzero(space.keep))
    if resolve_search(search, len(bank_t), d) == "bf16":
        work = _bf16_work(bags, bank_t, n_kept, prepare, out, cols)
    else:
        bank_sq = (bank_t * bank_t).sum(1)

        def work(rows: np.ndarray) -> None:
            for i in rows:
                out[i, cols] = min_sq_dist(as_tensor(prepare(bags[i])), bank_t, bank_sq).sqrt_().numpy()

    in_threads(n, work, n_threads)
    return out


# Bank rows per group of the bfloat16 search (48 x 48): each group's nearest row is a candidate,
# and the RECHECK candidates of smallest bfloat16 distance are re-checked exactly.
GROUP_SIDE = 48
RECHECK = 4


def _bf16_work(bags, bank: torch.Tensor, n_kept: int, prepare, out: np.ndarray, cols):
    """The bank is centred on its mean, rounded and augmented once (nearest.CandidateSearch);
    each image's patches find the nearest row of every group of GROUP_SIDE^2 bank rows in
    bfloat16, and the few best of those are re-checked in float32."""
    p, d = bank.shape
    group_rows = min(p, GROUP_SIDE * GROUP_SIDE)
    probe = CandidateSearch(n_kept, group_rows, 1, d)
    groups = -(-p // probe.rows)
    per_product = max(1, 2 * BLOCK_ELEMENTS // (probe.rows * n_kept))
    centre = bank.mean(0)
    padded = torch.zeros(groups * probe.rows, d)
    padded[:p] = bank
    augmented = probe.augment_bank(padded.view(groups, probe.rows, d), centre)
    probe.pad(augmented.view(1, groups * probe.rows, -1), p)
    recheck = min(RECHECK, groups)

    def work(rows: np.ndarray) -> None:
        search = CandidateSearch(n_kept, group_rows, per_product, d)
        nearest = torch.empty(groups, n_kept, dtype=torch.int64)
        approx = torch.empty(groups, n_kept)
        offsets = (torch.arange(groups) * search.rows).view(-1, 1)
        for i in rows:
            query = torch.from_numpy(prepare(bags[i]))
            queries = search.augment_queries(query - centre)
            for start in range(0, groups, per_product):
                stop = min(start + per_product, groups)
                nearest[start:stop], approx[start:stop] = search.nearest(augmented[start:stop], queries)
            best = torch.topk(approx, recheck, dim=0, largest=False).indices  # (recheck, m) groups
            rows_ = torch.gather(nearest + offsets, 0, best)
            chosen = bank.index_select(0, rows_.view(-1)).view(recheck, n_kept, d)
            out[i, cols] = exact_distance(query, chosen).amin(0).numpy()

    return work
