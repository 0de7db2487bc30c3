"""Today's reference description of the defect at several input sizes, concatenated.

Each size (256, 288, 320, 352 px; taps features.6 + 13) is scored against the normals at that
size and described by the deepest tap's part of the whitened embedding, l2; the descriptions of
two or four sizes are concatenated, then `ward_kmeans`. Prints full-set NMI, the subset mean
and the paired difference to 288 px alone with its standard error (50 subsets for MTD, 10 for
the synthetic sets). An exploration (docs/RESULTS.md, section 17).

    PYTHONPATH=src python benchmarks/explore/multiscale.py [STUDY_SET_INDICES]   # default 0 = MTD
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import SPLIT, l2, nmis_over_rows, print_paired, study_sets

from anoclust.estimator import patch_scores, patch_space, pool_bags
from anoclust.evaluation import embed_dataset
from anoclust.extract import EmbeddingConfig, PatchExtractor
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()
SIZES = (256, 288, 320, 352)


def described(ds, size: int):
    e = embed_dataset(ds, PatchExtractor(EmbeddingConfig(CFG.backbone, ("features.6", "features.13"), size),
                                         cache_dir="/tmp/anoclust-cache", quiet=True))
    space = patch_space(e.bags.shape[1], "reference", e.normal_bags, CFG.border, CFG.whiten, CFG.max_bank, 0)
    s = patch_scores(e.bags, "reference", e.normal_bags, CFG.n_sampled, CFG.max_bank, 0, space)
    return e, l2(pool_bags(e.bags, "reference", s, CFG.tau, CFG.standardize, None, space.whitening)[0][:, SPLIT:])


def main() -> None:
    sets = study_sets(Path("/tmp/exp/studywork"))
    for i in [int(v) for v in sys.argv[1].split(",")] if len(sys.argv) > 1 else [0]:
        d = {size: described(sets[i], size) for size in SIZES}
        e = d[288][0]
        d = {size: x for size, (_, x) in d.items()}
        truth, k = np.array(e.truth), len(set(e.truth))
        variants = {"288": d[288], "352": d[352], "288+320": np.concatenate([d[288], d[320]], 1),
                    "288+352": np.concatenate([d[288], d[352]], 1), "all four": np.concatenate(list(d.values()), 1)}
        print_paired({n: nmis_over_rows(truth, x, k, 0, "ward_kmeans", 50 if i == 0 else 10)
                      for n, x in variants.items()}, prefix=f"{sets[i].name} ")


if __name__ == "__main__":
    main()
