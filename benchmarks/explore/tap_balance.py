"""The two taps' shares of the pooled embedding (docs/RESULTS.md, section 13).

After whitening every coordinate has unit spread over the normal patches, so features.13
(96 channels) outweighs features.6 (32 channels) three to one in Ward's distances. Here each
tap's part of the default embedding is divided by its spread over the set and the features.6
part multiplied by r = 0.25 / 0.5 / 1 / 2 / 3 ("equal" is r = 1), next to each tap alone.

Without normals also: the embedding of features.13 alone whitened by its own within-image
covariance (the scores still use both taps), both taps whitened each on its own, and four
ways of giving `texture` back what features.13 alone loses there (a higher tau, a fifth of the
weight spread uniformly, features.6 average-pooled beside it, the default embedding beside it).

An exploration, not part of the tool; the five study sets of studyset.py.

    PYTHONPATH=src python benchmarks/explore/tap_balance.py reference|unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import SPLIT, compare_embeddings, spread_scaled

from anoclust.estimator import embedding_whitening, pool_bags, weighted_average
from anoclust.patch_space import within_image_whitening
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import softmax_weights

CFG = ClusterSettings()


def variants(e, space, scores, seed):
    weighting = sys.argv[1]
    whitening = embedding_whitening(space, weighting, e.bags, CFG.whiten, CFG.max_bank, seed)
    default = pool_bags(e.bags, weighting, scores, CFG.tau, CFG.standardize, None, whitening)[0]
    low, high = spread_scaled(default[:, :SPLIT]), spread_scaled(default[:, SPLIT:])
    out = {"default": default, "features.6 alone": low, "features.13 alone": high}
    for r in (0.25, 0.5, 1.0, 2.0, 3.0):
        out[f"r {r}"] = np.concatenate([r * low, high], 1)
    if weighting == "unsupervised":  # features.13 whitened on its own, not sliced from the whole
        fine, coarse = e.bags[..., :SPLIT], e.bags[..., SPLIT:]
        own = within_image_whitening(coarse, CFG.max_bank, seed)
        high_own = pool_bags(coarse, weighting, scores, CFG.tau, CFG.standardize, None, own)[0]
        out["features.13, own whitening"] = high_own
        own6 = within_image_whitening(fine, CFG.max_bank, seed)
        low_own = pool_bags(fine, weighting, scores, CFG.tau, CFG.standardize, None, own6)[0]
        out["each tap own whitening"] = np.concatenate([low_own, high_own], 1)
        for r in (0.25, 0.5):
            out[f"each tap own whitening, r {r}"] = np.concatenate([r * spread_scaled(low_own), spread_scaled(high_own)], 1)
        # ways to give `texture`, whose weights fall on noise, back what features.13 alone loses
        for tau in (1.0, 2.0):
            out[f"features.13, own whitening, tau {tau}"] = pool_bags(coarse, weighting, scores, tau,
                                                                     CFG.standardize, None, own)[0]
        weights = np.nan_to_num(softmax_weights(scores, CFG.tau, CFG.standardize))
        kept = np.isfinite(scores)
        mixed = (0.8 * weights + 0.2 * kept / kept.sum(1, keepdims=True)).astype(np.float32)
        out["features.13, own whitening, 20% uniform weights"] = own(weighted_average(coarse, mixed))
        low_mean = pool_bags(fine, "uniform", None, 1.0, True, None, own6)[0]
        out["features.13, own whitening + 0.5 features.6 average-pooled"] = np.concatenate(
            [spread_scaled(high_own), 0.5 * spread_scaled(low_mean)], 1)
        for beta in (0.5, 1.0):
            out[f"default + {beta} features.13, own whitening"] = np.concatenate(
                [spread_scaled(default), beta * spread_scaled(high_own)], 1)
    return out


if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
