"""Input size and taps again, now with the section-14 reference embedding (the deepest tap's
part of the whitened embedding, l2): section 8 chose 288 px and features.6 + 13 for the
embedding of every tap.

Each row scores the patches with all its taps and describes the defect by its deepest tap.
An exploration; the five study sets of studyset.py, reference weighting, full-set NMI and, in
brackets, the mean over the 10 random 90% subsets.

    PYTHONPATH=src python benchmarks/explore/deep_features.py
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import l2, nmis_over_rows, study_sets, summarise

from anoclust.backbones import BACKBONES
from anoclust.estimator import patch_scores, patch_space, pool_bags
from anoclust.evaluation import embed_dataset
from anoclust.extract import EmbeddingConfig, PatchExtractor
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()
SPECS = [  # (taps, input size)
    (("features.6", "features.13"), 288),
    (("features.6", "features.13"), 256),
    (("features.6", "features.13"), 320),
    (("features.6", "features.13"), 352),
    (("features.6", "features.10", "features.13"), 288),
    (("features.10", "features.13"), 288),
    (("features.6", "features.13", "features.17"), 288),
]


def main() -> None:
    spec = BACKBONES["mobilenet_v2"]
    totals: dict = {}
    for ds in study_sets(Path("/tmp/exp/studywork")):
        res: dict = {}
        for taps, size in SPECS:
            e = embed_dataset(ds, PatchExtractor(EmbeddingConfig("mobilenet_v2", taps, size),
                                                 cache_dir="/tmp/anoclust-cache", quiet=True))
            truth, k = np.array(e.truth), len(set(e.truth))
            space = patch_space(e.bags.shape[1], "reference", e.normal_bags, CFG.border, CFG.whiten, CFG.max_bank, 0)
            s = patch_scores(e.bags, "reference", e.normal_bags, CFG.n_sampled, CFG.max_bank, 0, space)
            emb = pool_bags(e.bags, "reference", s, CFG.tau, CFG.standardize, None, space.whitening)[0]
            x = l2(emb[:, emb.shape[1] - spec.taps[taps[-1]].channels:])
            res[f"{'+'.join(t.split('.')[1] for t in taps)}@{size}"] = [nmis_over_rows(truth, x, k)]
        summarise(ds.name, res, totals)
    print("sum of subset means", {k: round(v, 3) for k, v in totals.items()})


if __name__ == "__main__":
    main()
