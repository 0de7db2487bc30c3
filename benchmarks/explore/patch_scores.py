"""Other ways to turn patch distances into anomaly scores (docs/RESULTS.md, section 12).

unsupervised: the default averages, over K = 32 sampled other images, each patch's distance to
its nearest patch in that image. Here the same K distances are combined differently: median,
lower quartile, mean of the lowest 75% (a defect of a common type finds its match in the images
that share it, so the low end is where such a patch still looks normal), and the mean after
each compared image's distances are divided by their median or standardised over the patches
(an image of another tile is far from every patch alike, not only from the defect).

reference: the default is the distance to the nearest normal patch (whitened). Here the mean
distance to the 3 or 9 nearest, and the nearest distance divided by, or minus, that normal
patch's own mean distance to its 3 nearest bank neighbours (a local-density correction: a
patch near a sparse part of the normal bank is less surely anomalous).

Every variant is pooled and whitened like the default (anoclust.estimator.embedding_whitening),
so "mean" / "k1" reproduce the default; the script checks that. An exploration, not part of the
tool; the five study sets of studyset.py.

    PYTHONPATH=src python benchmarks/explore/patch_scores.py unsupervised|reference
"""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings

from anoclust.estimator import embedding_whitening, pool_bags
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import build_bank, sample_others

CFG = ClusterSettings()


def sampled_minima(bags: np.ndarray, keep: np.ndarray, seed: int) -> np.ndarray:
    """(N, K, kept patches): distance of each kept patch to its nearest kept patch in each of
    the K other images the default draws for it."""
    x = torch.from_numpy(np.ascontiguousarray(bags[:, keep], dtype=np.float32))
    sq = (x * x).sum(2)
    out = np.zeros((len(x), CFG.n_sampled, len(keep)), np.float32)
    for i in range(len(x)):
        others = sample_others(len(x), i, CFG.n_sampled, seed)
        d = sq[i][None, :, None] + sq[others][:, None, :] - 2 * torch.einsum("md,kpd->kmp", x[i], x[others])
        out[i] = d.min(2).values.clamp_min(0).sqrt().numpy()
    return out


def nearest(queries: np.ndarray, bank: np.ndarray, k: int, skip_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Distances (ascending) and bank indices of the k nearest bank rows of each query row."""
    b = torch.from_numpy(bank)
    b_sq = (b * b).sum(1)
    dists, rows = [], []
    for start in range(0, len(queries), 2048):
        q = torch.from_numpy(queries[start : start + 2048])
        d = ((q * q).sum(1)[:, None] + b_sq[None] - 2 * q @ b.T).clamp_min(0)
        v, i = d.topk(k + skip_self, dim=1, largest=False)
        dists.append(v[:, skip_self:].sqrt().numpy())
        rows.append(i[:, skip_self:].numpy())
    return np.concatenate(dists), np.concatenate(rows)


def unsupervised_variants(e, keep, seed) -> dict:
    d = sampled_minima(e.bags, keep, seed)
    return {
        "mean": d.mean(1),
        "median": np.median(d, 1),
        "lower quartile": np.quantile(d, 0.25, 1),
        "lowest 75%": np.sort(d, 1)[:, : int(0.75 * d.shape[1])].mean(1),
        "per-image median": (d / np.median(d, 2, keepdims=True)).mean(1),
        "per-image z": ((d - d.mean(2, keepdims=True)) / (d.std(2, keepdims=True) + 1e-9)).mean(1),
    }


def reference_variants(e, keep, space, seed) -> dict:
    bank = space.whitening(build_bank(e.normal_bags, CFG.max_bank, seed, space))
    queries = space.whitening(e.bags[:, keep].reshape(-1, e.bags.shape[-1]))
    d, rows = nearest(queries, bank, 9)
    density = nearest(bank, bank, 3, skip_self=True)[0].mean(1)[rows[:, 0]]
    return {
        "k1": d[:, 0],
        "k3": d[:, :3].mean(1),
        "k9": d.mean(1),
        "k1 / density": d[:, 0] / density,
        "k1 - density": d[:, 0] - density,
    }


def variants(e, space, scores, seed):
    weighting = sys.argv[1]
    keep = np.flatnonzero(space.keep)
    raw = unsupervised_variants(e, keep, seed) if weighting == "unsupervised" else reference_variants(e, keep, space, seed)
    full = {}
    for name, s in raw.items():
        full[name] = np.full(scores.shape, np.nan, np.float32)
        full[name][:, keep] = s.reshape(len(e.bags), -1)
    first = next(iter(full))
    assert np.nanmax(np.abs(full[first] - scores)) < 1e-3, f"{first} should reproduce the default scores"
    pooled = embedding_whitening(space, weighting, e.bags, CFG.whiten, CFG.max_bank, seed)
    return {name: pool_bags(e.bags, weighting, s, CFG.tau, CFG.standardize, None, pooled)[0] for name, s in full.items()}

if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
