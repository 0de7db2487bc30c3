"""More ways to find MTD's defects on the tile's edge, after ring_calibration.py (section 17).

Each variant changes only the patch scores; the defect is then described like the reference
default (deepest tap of the whitened patches, l2) and clustered with ward_kmeans. MTD, reference
weighting; full-set NMI, the mean over 50 random 90% subsets and the paired difference to the
default with its standard error.

- ring by one tap: the ring's scores from the fine tap (features.6) alone, the deepest tap
  alone, or both, scored over the whole grid against the normals and calibrated by position
  (ring_calibration.calibrated) with the interior keeping the default's scores. The fine tap
  sees less of the padding and the outline.
- extended bank: the normal bank plus the set's own patches whose calibrated score is below the
  image's 25th / 50th percentile (cross-fitted: each half of the images is scored against the
  other half's patches), so that the outline of many crops is in the bank; the ring then left
  out, scored as it is, or calibrated.
- prototypes: after a first clustering, each patch's cosine to the nearest cluster mean of the
  descriptions (standardised within the image) is added, times lambda, to its standardised
  anomaly score, and the defect is described again (1 or 3 rounds; the interior's scores, or
  with the ring calibrated). A patch that looks like a known defect type gains weight.

An exploration, not part of the tool.

    PYTHONPATH=src python benchmarks/explore/ring_more.py
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
sys.path.insert(0, str(Path(__file__).resolve().parent))  # ring_calibration
from ring_calibration import calibrated
from studyset import SPLIT, embed, l2, nmis_over_rows, print_paired, study_sets

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import patch_scores, patch_space
from anoclust.patch_space import interior_mask
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import build_bank, reference_scores, softmax_weights, standardised_rows

CFG = ClusterSettings()


def main() -> None:
    e = embed(study_sets(Path("/tmp/exp/studywork"))[0], CFG, "/tmp/anoclust-cache")
    n, m, _ = e.bags.shape
    truth, k = np.array(e.truth), len(set(e.truth))
    inner = interior_mask(m, CFG.border)

    def scored(bags, normals, border):
        space = patch_space(m, "reference", normals, border, CFG.whiten, CFG.max_bank, 0)
        return space, patch_scores(bags, "reference", normals, CFG.n_sampled, CFG.max_bank, 0, space)

    space, default = scored(e.bags, e.normal_bags, CFG.border)
    z = np.stack([space.whitening(b.astype(np.float32))[:, SPLIT:] for b in e.bags])  # (N, M, deepest tap)

    def describe(scores):
        return l2(np.einsum("nm,nmd->nd", softmax_weights(scores, CFG.tau, CFG.standardize), z))

    variants = {"default": describe(default)}
    for name, taps in (("the fine tap", slice(0, SPLIT)), ("the deepest tap", slice(SPLIT, None)), ("both taps", slice(None))):
        raw = scored(np.ascontiguousarray(e.bags[..., taps]), np.ascontiguousarray(e.normal_bags[..., taps]), 0)[1]
        variants[f"ring by {name}, calibrated"] = describe(calibrated(np.where(inner[None], default, raw), 3))

    whole_space, whole = scored(e.bags, e.normal_bags, 0)
    ring_calibrated = calibrated(whole, 3)
    normal_bank = build_bank(e.normal_bags, CFG.max_bank, 0, whole_space).astype(np.float32)
    rng = np.random.default_rng(0)
    fold = rng.permutation(n) % 2
    for q in (25, 50):
        low = ring_calibrated < np.percentile(ring_calibrated, q, axis=1, keepdims=True)
        ext = np.full((n, m), np.nan, np.float32)
        for f in (0, 1):
            own = e.bags[fold == f][low[fold == f]].astype(np.float32)
            own = own[rng.choice(len(own), min(60_000, len(own)), replace=False)]
            ext[fold != f] = reference_scores(e.bags[fold != f], np.concatenate([normal_bank, own]), space=whole_space)
        variants[f"extended bank (q{q}), ring left out"] = describe(np.where(inner[None], ext, np.nan))
        variants[f"extended bank (q{q}), whole grid as scored"] = describe(ext)
        variants[f"extended bank (q{q}), ring calibrated"] = describe(calibrated(ext, 3))

    zu = z / (np.linalg.norm(z, axis=2, keepdims=True) + 1e-9)
    for base_name, base in (("interior", default), ("ring calibrated", ring_calibrated)):
        for lam, rounds in ((0.5, 1), (1.0, 1), (1.0, 3)):
            x = describe(base)
            for _ in range(rounds):
                labels = cluster_embeddings(x, k, "ward_kmeans", 0)
                protos = l2(np.stack([x[labels == c].mean(0) for c in range(labels.max() + 1)]))
                x = describe(standardised_rows(base) + lam * standardised_rows((zu @ protos.T).max(2)))
            variants[f"prototypes ({base_name}), lambda {lam}, {rounds} round(s)"] = x

    print_paired({name: nmis_over_rows(truth, x, k, 0, "ward_kmeans", 50) for name, x in variants.items()})


if __name__ == "__main__":
    main()
