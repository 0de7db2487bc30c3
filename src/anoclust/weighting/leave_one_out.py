"""The normal threshold's leave-one-out for the reference weighting, exactly and without refitting.

Each reference's score against the reference weighting fitted (same settings) on the other
references: its whitening from running sums (fold_whitenings), its bank from the seeded thinning's
slots (thinned_slots), its nearest-patch search bounded so that only the references and patches
that can decide the threshold are searched exactly (leave_one_out_scores).
"""

from __future__ import annotations

import numpy as np
import torch

from ..blas import one_thread
from ..space import Whitening, scored_positions
from .nearest import BLOCK_ELEMENTS, CandidateSearch, in_threads
from .reference import GROUP_SIDE, ReferenceWeighting


def thinned_slots(n_slots: int, slot_size: int, max_patches: int, random_state: int | None) -> list[np.ndarray]:
    """The patch positions build_bank keeps in each of n_slots stacked images of slot_size
    patches (all of them when n_slots * slot_size <= max_patches). The seeded draw depends only
    on the number of images, so every fold of a leave-one-out (n - 1 images) keeps the same
    positions of each slot: reference r fills slot r in the folds after it and slot r - 1 in
    the folds before it."""
    total = n_slots * slot_size
    if total <= max_patches:
        return [np.arange(slot_size)] * n_slots
    rng = np.random.default_rng(0 if random_state is None else random_state)
    slot, pos = np.divmod(np.sort(rng.choice(total, max_patches, replace=False)), slot_size)
    bounds = np.searchsorted(slot, np.arange(n_slots + 1))
    return [pos[bounds[s] : bounds[s + 1]] for s in range(n_slots)]


def fold_whitenings(normal_bags: np.ndarray, max_bank: int, random_state: int | None) -> list[Whitening]:
    """The whitening ReferenceWeighting.fit would fit without each reference in turn, from sums.

    Each fold's whitening patches are the other references' patches at the fold's thinned
    positions (thinned_slots): the sums of x and x x^T over them are a running sum over the
    references before the left-out one plus one over those after it, so each fold costs one
    eigendecomposition instead of a refit. Sums are taken around the references' mean in
    float64, where they equal numpy's two-pass covariance to about 1e-13.
    """
    n, m_all, d = normal_bags.shape
    slots = thinned_slots(n - 1, m_all, max_bank, random_state)
    whole = len(slots[0]) == m_all  # not thinned: every slot keeps every patch
    centre = np.mean([torch.from_numpy(np.array(b)).double().mean(0).numpy() for b in normal_bags], axis=0)

    def sums(r: int, slot: int) -> tuple[int, np.ndarray, np.ndarray]:
        """(count, sum, sum of outer products) of reference r's patches at slot `slot`."""
        x = torch.from_numpy(np.array(normal_bags[r])).double().numpy() - centre  # a copy: bags may be read-only
        part = x if whole else x[slots[slot]]
        return len(part), part.sum(0), part.T @ part

    def add(a, b, sign=1.0):
        return a[0] + sign * b[0], a[1] + sign * b[1], a[2] + sign * b[2]

    with one_thread():  # many small products: BLAS threads only contend
        # reference r at slot r - 1 (not thinned: at any slot)
        down = [sums(r, 0) for r in range(n)] if whole else [None] + [sums(r, r - 1) for r in range(1, n)]
        after = (0, np.zeros(d), np.zeros((d, d)))  # sums over the references after the left-out one
        for r in range(1, n):
            after = add(after, down[r])
        before = (0, np.zeros(d), np.zeros((d, d)))  # ... and over those before it, each at its own slot
        out = []
        for i in range(n):
            if i > 0:
                before = add(before, down[i - 1] if whole else sums(i - 1, i - 1))
                after = add(after, down[i], -1.0)
            count, s1, s2 = add(before, after)
            cov = (s2 - np.outer(s1, s1) / count) / (count - 1)
            out.append(Whitening.from_covariance(centre + s1 / count, cov))
    return out


def leave_one_out_scores(weighting: ReferenceWeighting, normal_bags: np.ndarray,
                         n_threads: int | None = None, percentile: float | None = None) -> np.ndarray:
    """Largest patch score of each reference against the reference weighting fitted (same
    settings) on the other references: the numbers refitting once per reference gives
    (anoclust.normal_threshold.refit_leave_one_out_scores), within float32 rounding.

    percentile: only np.percentile(scores, percentile) is wanted. The references are then
    settled in decreasing order of their upper bound (step 1 below) until no reference left
    can reach the order statistics the percentile interpolates; those left keep their bound
    (below them) in the returned array, whose percentile is then the exact one.

    Per fold: its whitening from sums (fold_whitenings). Its bank, the other references'
    interior patches at the fold's thinned positions (thinned_slots), is two contiguous slices
    of two shared stacks (the references before the left-out one at their own slot, those
    after it one slot down), mapped once by a common metric M, the folds' mean whitening. A
    fold's own metric M_i stretches distances under M by at least a_i and at most b_i (the
    extreme singular values of M^-1 M_i, 0.97 to 1.03 on the study sets), which bounds the search:

    1. an upper bound u(p) for every patch p of the left-out reference: from a bfloat16 search
       under M (nearest.CandidateSearch) in a sample of the fold's bank, 1/16 of it, the least
       product turned into a distance bound (_distance_above) and stretched by b_i; then, for
       the highest bounds, the exact distance under M_i (float64) to the row the same search
       finds in 1/4 of the bank;
    2. patches in decreasing order of u: each one's exact nearest distance. One bfloat16
       product with the whole fold bank; every row it cannot rule out (those within
       u(p) / a_i of p under M, by _rounded_bound, which covers bfloat16's rounding) is
       re-measured under M_i in float64. Once u(p) is below the largest exact distance found
       so far, no patch left can raise the reference's score, and the search stops.
    """
    p = weighting.params
    n, m_all, d = normal_bags.shape
    if n < 2:
        raise ValueError("leave-one-out needs at least two references")
    keep = scored_positions(m_all, p.border, p.aspect)
    m = len(keep)
    with one_thread():  # LAPACK on 128 x 128 matrices: threads only contend
        if p.whiten:
            folds = fold_whitenings(normal_bags, p.max_bank, p.random_state)
            matrices = np.stack([w.matrix for w in folds]).astype(np.float64)
        else:
            matrices = np.broadcast_to(np.eye(d), (n, d, d))
        metric = matrices.mean(0)
        # the extreme singular values of M^-1 M_i, from the Gram matrices' eigenvalues (faster
        # than SVDs; these matrices are near the identity, so nothing is lost), widened by 1e-6
        stretch = np.linalg.inv(metric) @ matrices
        stretches = np.sqrt(np.linalg.eigvalsh(np.swapaxes(stretch, 1, 2) @ stretch).clip(0))
        low, high = stretches[:, 0] * (1 - 1e-6), stretches[:, -1] * (1 + 1e-6)
    raw = np.ascontiguousarray(np.asarray(normal_bags)[:, keep])  # (n, m, d) as stored (float16)
    centre = torch.from_numpy(raw.reshape(-1, d)).float().mean(0)
    to_metric = torch.from_numpy(metric.astype(np.float32))
    slots = thinned_slots(n - 1, m, p.max_bank, p.random_state)
    at_own, one_down = np.zeros((n, m), dtype=bool), np.zeros((n, m), dtype=bool)
    for r in range(n - 1):
        at_own[r, slots[r]] = True  # reference r in the folds after it
        one_down[r + 1, slots[r]] = True  # reference r + 1 in the folds up to it
    stacks = [_Stack(raw, at_own, centre, to_metric), _Stack(raw, one_down, centre, to_metric)]
    # The upper bounds search samples of the rows every fold keeps (but the left-out one's own):
    # a coarse one (1/16 of a fold's bank) for every patch, a finer one (1/4) for the patches
    # still in question; loose only by the few percent that the exact step settles.
    everywhere = np.flatnonzero(((at_own | (np.arange(n) == n - 1)[:, None])
                                 & (one_down | (np.arange(n) == 0)[:, None])).ravel())
    fold_rows = min(p.max_bank, (n - 1) * m)
    samples = []
    for share in UPPER_SAMPLES:
        chosen = everywhere[:: max(1, int(round(len(everywhere) / max(1, fold_rows // share))))]
        samples.append(_Stack(raw, np.isin(np.arange(n * m), chosen).reshape(n, m), centre, to_metric))
    upper = np.full((n, m), np.inf)  # per patch: a distance to some row of its fold's bank
    out = np.full(n, np.nan)

    def exact(i: int, queries: np.ndarray, stack: "_Stack", rows: np.ndarray) -> np.ndarray:
        """Distances under fold i's whitening from patches to stack rows, in float64."""
        diff = queries.astype(np.float64) - stack.raw[rows].astype(np.float64)
        return np.linalg.norm(diff @ matrices[i], axis=-1)

    def mapped_of(i: int) -> torch.Tensor:
        return (torch.from_numpy(raw[i]).float() - centre) @ to_metric

    def tighten(i: int, patches: np.ndarray, sample: "_Stack", search: CandidateSearch) -> None:
        """upper[i, patches] from a sample's bfloat16 candidates, re-measured exactly."""
        mapped = mapped_of(i)[patches]
        queries = CandidateSearch.augment_queries(mapped)
        parts = [(0, sample.start[i]), (sample.start[i + 1], len(sample.raw))]
        for ragged in (False, True):  # whole groups suffice unless they miss a patch
            for lo, hi in parts:
                for rows in sample.candidates(search, queries, mapped, lo, hi, ragged):
                    upper[i, patches] = np.minimum(upper[i, patches], exact(i, raw[i][patches], sample, rows))
            if np.isfinite(upper[i, patches]).all():
                break

    def loose(i: int, search: CandidateSearch) -> bool:
        """upper[i] from the coarse sample's least bfloat16 products alone, turned into bounds
        by the rounding's error bound and the fold's largest stretch high[i]: no row is
        re-measured. False when no whole group of the sample lies outside reference i."""
        sample = samples[0]
        groups = [g for lo, hi in ((0, sample.start[i]), (sample.start[i + 1], len(sample.raw)))
                  for g in range(-(-lo // SIDE_ROWS), hi // SIDE_ROWS)]
        if not groups:
            return False
        mapped = mapped_of(i)
        queries = CandidateSearch.augment_queries(mapped)
        least = torch.stack([search.minimum(sample.grouped[g : g + 1], queries)[0] for g in groups]).amin(0)
        size = torch.linalg.vector_norm(mapped, dim=1).numpy().astype(np.float64) + sample.size_max
        # 1e-4 (relative, and of the rows' sizes): the float32 map by M, as in score's re-measuring
        upper[i] = high[i] * (_distance_above(least.numpy().astype(np.float64), size) * (1 + 1e-4) + 1e-4 * size)
        return True

    def bound(i: int, search: CandidateSearch) -> None:
        """Step 1: every patch's upper bound from the coarse sample; then the highest ones from
        the finer sample until none left untightened is above them (so that the reference's
        bound, the largest, is a tight one)."""
        if not loose(i, search):
            tighten(i, np.arange(m), samples[0], search)
        fine = np.zeros(m, dtype=bool)
        while not fine.all():
            left = np.flatnonzero(~fine)
            top = left[np.argsort(-upper[i, left], kind="stable")[:2 * EXACT_BATCH]]
            if fine.any() and upper[i, top[0]] <= upper[i, fine].max():
                break
            tighten(i, top, samples[1], search)
            fine[top] = True

    def score(i: int, search: CandidateSearch) -> float:
        """Step 2: the exact largest score of reference i, patches in decreasing order of bound."""
        own, mapped, up = raw[i], mapped_of(i), upper[i]
        spans = [(stacks[0], 0, stacks[0].start[i]), (stacks[1], stacks[1].start[i + 1], len(stacks[1].raw))]
        spans = [span for span in spans if span[2] > span[1]]

        def nearest(batch: np.ndarray) -> np.ndarray:
            """Exact distance from patches `batch` to their nearest fold-bank row: one bfloat16
            product with the whole fold bank, then every row it cannot rule out re-measured."""
            near = mapped[batch]
            size = torch.linalg.vector_norm(near, dim=1).numpy().astype(np.float64)
            queries = CandidateSearch.augment_queries(near)
            found = up[batch].copy()
            products = []
            for stack, lo, hi in spans:
                bits = torch.mm(stack.flat[lo:hi], queries.T).view(torch.int16)  # (rows, k): ~|q - b|^2
                minima = _block_minima(bits)
                which, rows = _at_most(bits, torch.amin(minima, 0), minima)  # rows of least product
                first = np.zeros(len(batch), dtype=np.int64)
                first[which[::-1]] = rows[::-1]  # the first such row of each patch
                found = np.minimum(found, exact(i, own[batch], stack, lo + first))
                products.append((stack, lo, bits, minima))
            radius = found / low[i]  # no row farther than this under M is nearer under M_i
            for stack, lo, bits, minima in products:
                bound = torch.from_numpy(_rounded_bound(radius, size + stack.size_max))
                which, rows = _at_most(bits, bound, minima)
                rows = rows + lo
                # float32 distances under M (direct differences) before the float64 re-measuring
                gap = torch.linalg.vector_norm(near[which] - stack.mapped[rows], dim=1).numpy()
                keep = gap <= radius[which] * (1 + 1e-4) + 1e-4 * (size[which] + stack.size_max)
                np.minimum.at(found, which[keep], exact(i, own[batch][which[keep]], stack, rows[keep]))
            return found

        order = np.argsort(-up, kind="stable")
        best = float(nearest(order[:EXACT_BATCH]).max())
        rest = order[EXACT_BATCH:]
        rest = rest[up[rest] > best]  # the patches that might still raise the score
        if len(rest) > EXACT_BATCH:
            tighten(i, rest, samples[1], search)
            rest = rest[np.argsort(-up[rest], kind="stable")]
        for start in range(0, len(rest), 4 * EXACT_BATCH):
            batch = rest[start : start + 4 * EXACT_BATCH]
            batch = batch[up[batch] > best]
            if len(batch):
                best = max(best, float(nearest(batch).max()))
        return best

    def run(refs: np.ndarray, step) -> None:
        def work(chunk: np.ndarray) -> None:
            search = CandidateSearch(m, SIDE_ROWS, 1, d)
            for i in refs[chunk]:
                step(int(i), search)

        with one_thread():  # the float64 re-measuring runs on the worker threads
            in_threads(len(refs), work, n_threads)

    def settle(i: int, search: CandidateSearch) -> None:
        out[i] = score(i, search)

    run(np.arange(n), bound)
    if percentile is None:
        run(np.arange(n), settle)
        return out
    # Only the order statistics np.percentile interpolates between matter: settle references in
    # decreasing order of their bound until every one left is certainly below them.
    top = np.max(upper, axis=1)
    need = n - int(np.floor(percentile / 100.0 * (n - 1)))  # settled values at and above the lower one
    order = np.argsort(-top, kind="stable")
    done = 0
    while done < n:
        chunk = order[done : done + max(need, 2 * (n_threads or torch.get_num_threads()))]
        run(chunk, settle)
        done += len(chunk)
        settled = np.sort(out[order[:done]])[::-1]
        if done >= need and (done == n or top[order[done]] < settled[need - 1]):
            break
    return np.where(np.isnan(out), top, out)

SIDE_ROWS = GROUP_SIDE * GROUP_SIDE  # bank rows per group of the leave-one-out's bfloat16 search
UPPER_SAMPLES = (16, 4)  # the upper bounds search 1/16, then 1/4 of a fold's bank
EXACT_BATCH = 16  # patches per exact search


class _Stack:
    """The interior patches of the references that `member` marks, in reference order: their
    stored values, their map by the common metric (float32 and grouped in bfloat16)."""

    def __init__(self, raw: np.ndarray, member: np.ndarray, centre: torch.Tensor, to_metric: torch.Tensor):
        ref, pos = np.nonzero(member)
        self.start = np.searchsorted(ref, np.arange(len(member) + 1))  # reference r: rows start[r]:start[r+1]
        self.raw = raw[ref, pos]
        self.mapped = (torch.from_numpy(self.raw).float() - centre) @ to_metric
        self.sq = (self.mapped * self.mapped).sum(1)
        rows, d = len(self.raw), raw.shape[-1]
        template = CandidateSearch(1, SIDE_ROWS, 1, d)
        groups = -(-rows // SIDE_ROWS)
        padded = torch.zeros(groups * SIDE_ROWS, d)
        padded[:rows] = self.mapped
        self.grouped = template.augment_bank(padded.view(groups, SIDE_ROWS, d), torch.zeros(d))
        template.pad(self.grouped.view(1, groups * SIDE_ROWS, -1), rows)
        self.flat = self.grouped.view(groups * SIDE_ROWS, -1)
        self.size_max = float(self.sq.max().sqrt()) if rows else 0.0

    def candidates(self, search: CandidateSearch, queries: torch.Tensor, mapped: torch.Tensor, lo: int, hi: int,
                   ragged: bool = True):
        """Rows lo..hi-1: for each query, (some of) the nearest rows under the common metric,
        as arrays of row numbers (one per query): bfloat16 search in whole groups, float32 at
        the ragged ends (left out unless `ragged`)."""
        if hi <= lo:
            return []
        size = SIDE_ROWS
        first, last = -(-lo // size), hi // size  # whole groups first..last-1
        ends = [(lo, hi)] if first >= last else [(lo, first * size), (last * size, hi)]
        out = []
        if first < last:
            approx = torch.empty(last - first, mapped.shape[0])
            rows = torch.empty(last - first, mapped.shape[0], dtype=torch.int64)
            step = max(1, search.products.numel() // (search.rows * len(queries)))  # groups per product
            for g in range(first, last, step):
                h = min(g + step, last)
                rows[g - first : h - first], approx[g - first : h - first] = search.nearest(self.grouped[g:h], queries)
            rows += (torch.arange(first, last) * size).view(-1, 1)
            take = min(2, last - first)
            best = torch.topk(approx, take, dim=0, largest=False).indices
            out.extend(torch.gather(rows, 0, best).numpy())
        for a, b in ends if ragged else []:
            if b > a:
                out.append(a + _nearest_rows(mapped, self.mapped[a:b], self.sq[a:b]))
        return out


# The bfloat16 unit roundoff, and a bound on the float32 accumulation and the two-part norms of
# CandidateSearch's products relative to (|q| + |b|)^2: 132 x 2^-24 for the sum, 128 x 2^-24
# for each squared norm and 2^-16 for its two bfloat16 parts, about 3.1e-5, doubled for safety.
_BF16_U = 2.0**-8
_ACCUMULATION = 6e-5


def _rounded_bound(radius: np.ndarray, size: np.ndarray) -> np.ndarray:
    """int16 bit patterns of bfloat16 values at or above the largest product value
    (CandidateSearch) of a row within `radius` of a query, `size` bounding |q| + |b|.

    A row within r has |q' - b'| <= r + e, e = u (|q| + |b|) (rounding moves each row by at
    most u of its length), so its product is at most (1 + u)(r + e)^2 + c (|q| + |b|)^2 before
    the output's rounding, which the rounding up of the bound covers."""
    e = _BF16_U * size
    bound = torch.from_numpy((1 + _BF16_U) * (radius + e) ** 2 + _ACCUMULATION * size**2).float()
    as_bf16 = bound.bfloat16()
    bits = as_bf16.view(torch.int16).clone()
    bits += (as_bf16.float() < bound).to(torch.int16)  # round up: the next bfloat16 value
    return bits.numpy()


def _distance_above(product: np.ndarray, size: np.ndarray) -> np.ndarray:
    """An upper bound on the distance between the rows behind a CandidateSearch product value
    (size bounding |q| + |b|), the inverse of _rounded_bound: the output's rounding and the
    float32 sums give |q' - b'|^2 <= v / (1 - u) + c size^2, and rounding the rows moved
    them by at most u size."""
    return np.sqrt(product / (1 - _BF16_U) + _ACCUMULATION * size**2) + _BF16_U * size


# Rows per block of the search for the few product entries at or below a bound: blocks whose
# minimum is above it are skipped, so the whole product is read once (for the minima).
SCAN_ROWS = 256


def _block_minima(bits: torch.Tensor) -> torch.Tensor:
    """The least entry of each column of bits (rows, k) in each block of SCAN_ROWS rows: (blocks, k)."""
    rows, k = bits.shape
    full = rows - rows % SCAN_ROWS
    parts = [torch.amin(bits[:full].view(-1, SCAN_ROWS, k), 1)] if full else []
    if full < rows:
        parts.append(torch.amin(bits[full:], 0, keepdim=True))
    return torch.cat(parts)


def _at_most(bits: torch.Tensor, bound: torch.Tensor, minima: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(column, row) of the entries of bits (rows, k) at or below bound (k,), rows ascending;
    minima: _block_minima(bits)."""
    blocks = torch.nonzero((minima <= bound).any(1)).flatten().numpy()
    rows = (blocks[:, None] * SCAN_ROWS + np.arange(SCAN_ROWS)).ravel()
    rows = rows[rows < len(bits)]
    r, c = torch.nonzero(bits[torch.from_numpy(rows)] <= bound, as_tuple=True)
    return c.numpy(), rows[r.numpy()]


def _nearest_rows(queries: torch.Tensor, bank: torch.Tensor, bank_sq: torch.Tensor) -> np.ndarray:
    """Index of each query row's nearest bank row (float32 products in bank blocks)."""
    q = queries.shape[0]
    step = max(1, BLOCK_ELEMENTS // max(1, q))
    best = torch.full((q,), float("inf"))
    arg = torch.zeros(q, dtype=torch.int64)
    for start in range(0, bank.shape[0], step):
        d = torch.addmm(bank_sq[start : start + step], queries, bank[start : start + step].T, alpha=-2.0)
        value, index = torch.min(d, 1)
        better = value < best
        best = torch.where(better, value, best)
        arg = torch.where(better, index + start, arg)
    return arg.numpy()
