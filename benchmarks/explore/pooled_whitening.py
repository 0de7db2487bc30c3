"""Whitening the embeddings by the set's own patches (docs/RESULTS.md, section 11).

unsupervised: without normal images the reference weighting's whitening is not available. Two
stand-ins, fitted on up to 100,000 of the set's patches and applied to the pooled embeddings
only (the patch scores stay as they are): "total", the covariance of the patches as they are;
"within", the covariance of the patches around their own image's mean
(patch_space.within_image_whitening), each with the shrinkages given. "none" is the
unsupervised default before section 11; "within 0.5" became the default.

reference: the default (whitening by the normal patches) against the within-image whitening
instead of it ("within only") and after it ("normals, then within").

An exploration, not part of the tool.

    PYTHONPATH=src python benchmarks/explore/pooled_whitening.py unsupervised 0.3,0.5,0.7,0.8
    PYTHONPATH=src python benchmarks/explore/pooled_whitening.py reference 0.5
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings

from anoclust.estimator import pool_bags
from anoclust.patch_space import Whitening, within_image_whitening
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()
WEIGHTING = sys.argv[1]
SHRINKAGES = [float(v) for v in sys.argv[2].split(",")]


def variants(e, space, scores, seed):
    def pooled(whitening):
        return pool_bags(e.bags, WEIGHTING, scores, CFG.tau, True, None, whitening)[0]

    def within(bags, shrinkage):
        return within_image_whitening(bags, CFG.max_bank, seed, shrinkage)

    if WEIGHTING == "reference":
        out = {"normals (default)": pooled(space.whitening)}
        whitened_bags = np.stack([space.whitening(b) for b in e.bags])
        for shrinkage in SHRINKAGES:
            out[f"within only {shrinkage}"] = within(e.bags, shrinkage)(pooled(None))
            out[f"normals, then within {shrinkage}"] = within(whitened_bags, shrinkage)(out["normals (default)"])
        return out
    flat = e.bags.reshape(-1, e.bags.shape[2])
    rng = np.random.default_rng(seed)
    sample = np.asarray(flat[np.sort(rng.choice(len(flat), min(CFG.max_bank, len(flat)), replace=False))], np.float32)
    out = {"none": pooled(None)}
    for shrinkage in SHRINKAGES:
        out[f"total {shrinkage}"] = pooled(Whitening.fit(sample, shrinkage=shrinkage))
        out[f"within {shrinkage}"] = pooled(within(e.bags, shrinkage))
    return out


if __name__ == "__main__":
    compare_embeddings(WEIGHTING, variants)
