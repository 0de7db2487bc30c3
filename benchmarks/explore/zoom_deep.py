"""Section 10's second, closer look, redone around today's reference embedding.

zoom.py measured the crop around each image's weight peak with the embedding of its time (every
tap, unnormalised, Ward). Since sections 14-15 the reference weighting describes the defect by
the deepest tap's part of the whitened embedding, l2-normalised, clustered by Ward polished by
k-means. Here the crop is described the same way (scored against the normals' crops at a 3 x 3
grid of centres, whitened by those, deepest tap, l2) and the variants are clustered with
`ward_kmeans`: the whole image alone (the default), the crop alone, and both halves
concatenated, the crop's half scaled by BETA. As a control, crops at random centres.

An exploration (docs/RESULTS.md, section 17); crop bags are kept in /tmp/exp/zoomcache-deep.

    PYTHONPATH=src python benchmarks/explore/zoom_deep.py reference [SHARES [--no-control]]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
sys.path.insert(0, str(Path(__file__).resolve().parent))  # zoom
import zoom
from studyset import compare_embeddings, l2

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import patch_scores, patch_space, pool_bags, resolve_embedding

zoom.CACHE = Path("/tmp/exp/zoomcache-deep")
CFG = zoom.CFG
BETAS = (0.5, 1.0)


def described(bags, scores, space):
    """(deepest-tap l2 embedding, weights) of bags pooled with their reference scores."""
    emb, weights = pool_bags(bags, "reference", scores, CFG.tau, CFG.standardize, None, space.whitening)
    _, start = resolve_embedding("auto", "auto", "reference", CFG.backbone, emb.shape[1])
    return l2(emb[:, start:]), weights


def variants(e, space, scores, seed):
    k = len(set(e.truth))

    def clustered(x):
        return lambda r: cluster_embeddings(x[r], k, "ward_kmeans", seed)

    whole, weights = described(e.bags, scores, space)
    paths = e.dataset.images.paths
    centres = {"peak": zoom.peak_centres(weights)}
    if zoom.CONTROL:
        centres["random"] = np.random.default_rng(seed).uniform(0, 1, (len(paths), 2))
    out = {"default": clustered(whole)}
    for share in zoom.SHARES:
        normal_bags = zoom.normal_crop_bags(e, share)
        for how, c in centres.items():
            bags = zoom.crop_bags(paths, c, share, f"{e.dataset.name}-reference-{seed}-{how}")
            crop_space = patch_space(bags.shape[1], "reference", normal_bags, CFG.border, CFG.whiten, CFG.max_bank, seed)
            s = patch_scores(bags, "reference", normal_bags, CFG.n_sampled, CFG.max_bank, seed, crop_space)
            crop = described(bags, s, crop_space)[0]
            if how == "peak":
                out[f"crop {share}"] = clustered(crop)
            for beta in BETAS if how == "peak" else (1.0,):
                out[f"{how} both {share} b{beta}"] = clustered(np.concatenate([whole, beta * crop], 1))
    return out


if __name__ == "__main__":
    compare_embeddings("reference", variants)
