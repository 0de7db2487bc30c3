"""The reference bank enlarged with the set's own normal-looking patches, to score the border ring.

The border ring is left out because an MTD crop's outer patches show the tile's edge, which the
20 normal images cover poorly (docs/RESULTS.md, section 9). The defect images themselves show
hundreds more edges: here every patch, ring included, is scored against the normal bank plus
the lower-scoring half of the patches of the other half of the defect images (cross-fitted, so
no image is matched against itself), and the ring is then left out at widths 0, 1 and 3.
"normals" is the same without the added patches (with the whole grid in the bank, unlike the
default, whose bank holds the normals' interior patches only). An exploration (section 12), not
part of the tool; MTD only unless other study sets are named.

    PYTHONPATH=src python benchmarks/explore/augmented_bank.py [mtd,local,...]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings, cross_fitted_scores, l2

from anoclust.estimator import patch_scores, pool_bags
from anoclust.patch_space import PatchSpace, interior_mask
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()


def variants(e, space, scores, seed):
    n_patches = e.bags.shape[1]
    whole = PatchSpace(interior_mask(n_patches, 0), space.whitening)
    plain = patch_scores(e.bags, "reference", e.normal_bags, CFG.n_sampled, CFG.max_bank, seed, whole)
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(e.bags)) % 2
    low = plain <= np.median(plain, axis=1, keepdims=True)
    augmented = np.minimum(plain, cross_fitted_scores(e.bags, low, fold, whole, rng))
    out = {}
    for border in (0, 1, 3):
        ring = ~interior_mask(n_patches, border)
        for name, s in (("normals", plain), ("augmented", augmented)):
            s = s.copy()
            s[:, ring] = np.nan
            emb = pool_bags(e.bags, "reference", s, CFG.tau, CFG.standardize, None, space.whitening)[0]
            out[f"{name}, border {border}"] = emb
            out[f"{name}, border {border}, l2"] = l2(emb)
    return out


if __name__ == "__main__":
    compare_embeddings("reference", variants, only=(sys.argv[1] if len(sys.argv) > 1 else "mtd").split(","))
