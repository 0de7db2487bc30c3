"""tap_l2.py's unsupervised candidates on more synthetic data: draws 2-5 of each synthetic kind
and the local sets with 5-8 defect types (the sets of synthetic_draws.py), plus the study sets.
Full-set NMI, mean over seeds 0-2. An exploration.

    PYTHONPATH=src python benchmarks/explore/tap_l2_draws.py
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import embed, memoised_scores, study_sets
from synthetic_draws import extra_sets
from tap_l2 import fine_beside_deep

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import pool_bags
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()
RATIOS = (0.35, 0.5, 0.7)


def main() -> None:
    for ds in study_sets(Path("/tmp/exp/studywork")) + extra_sets():
        e = embed(ds, CFG, "/tmp/anoclust-cache")
        truth, k = np.array(e.truth), len(set(e.truth))
        nmi: dict = {}
        for seed in (0, 1, 2):
            w, s = memoised_scores(e, CFG, "unsupervised", seed)
            emb = pool_bags(e.bags, "unsupervised", s, CFG.tau, CFG.standardize, None, w)[0]
            x = {"default": emb} | fine_beside_deep(emb, RATIOS)
            x["average pooling"] = pool_bags(e.bags, "uniform", None, CFG.tau, CFG.standardize)[0]
            for name, v in x.items():
                nmi.setdefault(name, []).append(clustering_scores(truth, cluster_embeddings(v, k, "ward", seed))["nmi"])
        print(ds.name, len(truth), " | ".join(f"{n}: {np.mean(v):.3f}" for n, v in nmi.items()), flush=True)


if __name__ == "__main__":
    main()
