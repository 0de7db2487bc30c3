"""The unsupervised weighting: a patch is unusual when it finds no close match in other images.

s_im = mean over other images j of min_n ||z_im - z_jn||. Defect patches are rare in the set,
so they find no close match in most other images. The mean is estimated from K = n_sampled
other images per image, drawn from a seed of (random_state, image index), so any sharding of
the set gives the same scores (GUIDE section 3: unbiased, and 7x faster on MTD).

Embeddings are whitened by the variation of the set's patches around their own image's mean
(anoclust.space.within_image_whitening): that variation tells parts of one image apart, not
one image's defect type from another's.

The minima come from bfloat16 products where the CPU multiplies bfloat16 natively
(anoclust.weighting.nearest; about 3 x faster than float32 here), float32 ones elsewhere.

A new image is scored against a fixed seeded sample of K fitted images, kept in the state, as
the fitted images were scored against K others; a saved bag identical to the new image's own
(a fitted image assigned again) is left out, as fit leaves an image's own bag out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from ..space import PatchSpace, Whitening, within_image_whitening
from .base import ScoredWeighting
from .nearest import BLOCK_ELEMENTS, CandidateSearch, NearestInBlocks, in_threads, preparer, resolve_search
from .reference import reference_scores

# The score peak (pooling.score_peak) at and above which the scores are taken to find local
# defects, so that "auto" describes them by the deepest tap: sets of small local defects score
# 4.9-5.5, whole-image defect textures 3.6-4.0 (docs/DESIGN.md).
LOCAL_PEAK = 4.5


@dataclass(frozen=True)
class UnsupervisedState:
    sampled_bags: np.ndarray  # (K, M, D) float16: the fitted images new images are compared with
    embedding_whitening: Whitening | None = None  # within-image whitening of the embeddings
    SHAPES: ClassVar[dict] = {"sampled_bags": "KMD", "embedding_whitening.mean": "D",
                              "embedding_whitening.matrix": "DD"}


class UnsupervisedWeighting(ScoredWeighting):
    name = "unsupervised"
    state_type = UnsupervisedState

    def fit(self, bags: np.ndarray, normal_bags: np.ndarray | None = None) -> "UnsupervisedWeighting":
        super().fit(bags)
        p = self.params
        rng = np.random.default_rng([p.random_state, len(bags)])
        picks = np.sort(rng.choice(len(bags), min(p.n_sampled, len(bags)), replace=False))
        whitening = within_image_whitening(bags, p.max_bank, p.random_state) if p.whiten else None
        self.state = UnsupervisedState(np.asarray(bags[picks], dtype=np.float16), whitening)
        return self

    @property
    def embedding_map(self) -> Whitening | None:
        return self.state.embedding_whitening

    def describes_locally(self, peak: float | None) -> bool:
        return peak is not None and peak >= LOCAL_PEAK

    @classmethod
    def uses_seed(cls, params, normal_bags) -> bool:
        return True

    def scores(self, bags: np.ndarray, rows: np.ndarray | None = None, n_threads: int | None = None) -> np.ndarray:
        return unsupervised_scores(bags, self.params.n_sampled, self.params.random_state, rows, n_threads, self.space)

    def new_scores(self, bags: np.ndarray) -> np.ndarray:
        total = np.zeros(bags.shape[:2], dtype=np.float64)
        count = np.zeros((len(bags), 1))
        flat = bags.reshape(len(bags), -1)
        for ref in self.state.sampled_bags:
            d = reference_scores(bags, np.asarray(self.space.kept(ref), dtype=np.float32), space=self.space)
            own = (flat == ref.reshape(1, -1).astype(bags.dtype)).all(1)[:, None]  # the image itself
            total += np.where(own, 0.0, d)
            count += ~own
        return (total / np.maximum(count, 1)).astype(np.float32)


def sample_others(n_images: int, index: int, n_sampled: int, random_state: int | None) -> np.ndarray:
    """Indices of the other images image `index` is compared with.

    Each image draws from its own seed (random_state, index), so the draw does not depend on
    which shard or process scores the image. K >= N - 1 uses every other image: exact.
    """
    others = n_images - 1
    if n_sampled >= others:
        picks = np.arange(others)
    else:
        seed = [0 if random_state is None else int(random_state), index]
        picks = np.sort(np.random.default_rng(seed).choice(others, n_sampled, replace=False))
    return picks + (picks >= index)


def unsupervised_flops(n_images: int, n_patches: int, dim: int, n_sampled: int) -> float:
    """Floating-point operations of the distance products of `unsupervised_scores`."""
    k = min(n_sampled, n_images - 1)
    return 2.0 * n_patches * k * n_patches * dim * n_images


def unsupervised_scores(
    bags: np.ndarray,
    n_sampled: int,
    random_state: int,
    indices: np.ndarray | None = None,
    n_threads: int | None = None,
    space: PatchSpace | None = None,
    search: str | None = None,
) -> np.ndarray:
    """s_im = mean over other images j of min_n ||z_im - z_jn||, estimated from K sampled j.

    bags: (N, M, D), in memory or memory-mapped. indices: score only these images (for
    sharding); all by default. Each image's result depends only on the bags, its index and
    random_state, not on the sharding or the number of threads (n_threads; default: torch's).
    space: which patches are scored and matched, and the map applied first (anoclust.space);
    patches left out get NaN. search: "exact" float32 products, "bf16" minima of bfloat16
    products (_bf16_work), or "auto" (anoclust.weighting.nearest). Returns (len(indices), M)
    float32.
    """
    n, m_all, d = bags.shape
    if n < 2:
        raise ValueError("the unsupervised score needs at least two images")
    space = space or PatchSpace()
    indices = np.arange(n) if indices is None else np.asarray(indices)
    out = np.full((len(indices), m_all), np.nan, dtype=np.float32)
    cols = np.arange(m_all) if space.keep is None else np.flatnonzero(space.keep)
    how = resolve_search(search, len(cols), d)
    score = _bf16_work if how == "bf16" else _exact_work
    in_threads(len(indices), score(bags, indices, out, cols, n_sampled, random_state, space), n_threads)
    return out


def _exact_work(bags, indices, out, cols, n_sampled, random_state, space):
    """Float32 products against a few other images at a time, a minimum per image."""
    n, _, d = bags.shape
    m = len(cols)
    prepare = preparer(space)
    # A few other images per product keep each distance block near BLOCK_ELEMENTS.
    per_block = max(1, BLOCK_ELEMENTS // (m * m))

    def work(rows: np.ndarray) -> None:
        blocks = NearestInBlocks(m, per_block * m)
        # Reused float32 buffers: torch converts float16 into them several times faster than
        # numpy converts into fresh arrays.
        query = torch.empty(m, d)
        bank = torch.empty(min(n_sampled, n - 1), m, d)
        for row in rows:
            i = int(indices[row])
            others = sample_others(n, i, n_sampled, random_state)
            query.copy_(torch.from_numpy(prepare(bags[i])))
            for slot, j in enumerate(others):
                bank[slot].copy_(torch.from_numpy(prepare(bags[j])))
            bank_sq = torch.linalg.vector_norm(bank, dim=2).square_()
            query_sq = torch.linalg.vector_norm(query, dim=1).square_().unsqueeze_(1)
            total = torch.zeros(m)
            for start in range(0, len(others), per_block):
                g = min(per_block, len(others) - start)
                dist = blocks.products(query, bank[start : start + g].view(-1, d), bank_sq[start : start + g].view(-1))
                total += (blocks.group_minimum(dist, g) + query_sq).clamp_min_(0).sqrt_().sum(1)
            out[row, cols] = (total / len(others)).numpy()

    return work


def _bf16_work(bags, indices, out, cols, n_sampled, random_state, space):
    """Each sampled image's least bfloat16 squared distance per query patch
    (nearest.CandidateSearch.minimum), then the mean of their square roots.

    Unlike the reference score, the minima are not re-checked in float32: the score is a mean
    over K images of distances each within the search's rounding bound (on MTD the scores
    differ from the exact ones by 6e-6 on average and 9e-4 at most, relative, without bias;
    docs/PERFORMANCE.md), and finding each minimum's row for a re-check cost as much again as
    the products. Rows are centred on the query image's mean first, which keeps the norms,
    and so the rounding, small against the distances.
    """
    n, _, d = bags.shape
    m = len(cols)
    k = min(n_sampled, n - 1)
    prepare = preparer(space)
    # Unwhitened float16 bags are gathered as they are (converted inside the products' input).
    raw_dtype = np.float16 if space.whitening is None and bags.dtype == np.float16 else np.float32
    per_product = max(1, 2 * BLOCK_ELEMENTS // (m * m))  # bfloat16 products of about 4 MiB

    def load(bag, into: np.ndarray) -> None:
        if space.whitening is not None:
            into[:] = prepare(bag)
        elif space.keep is None:
            into[:] = bag
        else:
            np.take(np.asarray(bag), cols, axis=0, out=into)

    def work(rows: np.ndarray) -> None:
        search = CandidateSearch(m, m, per_product, d)
        raw = np.empty((k, m, d), dtype=raw_dtype)
        raw_t = torch.from_numpy(raw)
        bank = torch.empty(k, search.rows, d + 4, dtype=torch.bfloat16)
        scratch = torch.empty(k * m * d)
        for row in rows:
            i = int(indices[row])
            others = sample_others(n, i, n_sampled, random_state)
            query = torch.from_numpy(prepare(bags[i]))
            for slot, j in enumerate(others):
                load(bags[j], raw[slot])
            centre = query.mean(0)
            queries = search.augment_queries(query - centre)
            search.augment_bank(raw_t, centre, out=bank, scratch=scratch)
            total = torch.zeros(m)
            for start in range(0, k, per_product):
                total += search.minimum(bank[start : start + per_product], queries).sqrt_().sum(0)
            out[row, cols] = (total / k).numpy()

    return work
