"""Two checks of refine.py's "k-means from Ward" (docs/RESULTS.md, section 15).

paired WEIGHTING: Ward polished by k-means against Ward, and spherical k-means from Ward against
Ward polished by k-means, on MTD, clustering for clustering on the full set and on random 90%
subsets (50 subsets with the reference weighting; 10 subsets for each of seeds 0-5 without
normals): mean NMI of each, the mean paired difference with its standard error, and how often
each wins.

draws: the reference weighting on the study sets and on the more synthetic sets of
synthetic_draws.py; NMI / ARI / F1 (full set) of Ward, Ward polished by k-means, spherical
k-means from Ward, and k-means (10 random starts).

    PYTHONPATH=src python benchmarks/explore/refine_checks.py paired reference|unsupervised
    PYTHONPATH=src python benchmarks/explore/refine_checks.py draws
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
sys.path.insert(0, str(Path(__file__).resolve().parent))  # refine, synthetic_draws
from refine import default_embedding, spherical_from
from studyset import embed, study_sets, subset_rows
from synthetic_draws import extra_sets

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import patch_scores, patch_space
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()
WORK = Path("/tmp/exp/studywork")


def embedding(e, weighting: str, seed: int) -> np.ndarray:
    space = patch_space(e.bags.shape[1], weighting, e.normal_bags, CFG.border, CFG.whiten, CFG.max_bank, seed)
    s = patch_scores(e.bags, weighting, e.normal_bags, CFG.n_sampled, CFG.max_bank, seed, space)
    return default_embedding(e, space, s, seed, weighting)


def paired(weighting: str) -> None:
    e = embed(study_sets(WORK)[0], CFG, "/tmp/anoclust-cache")
    truth, k = np.array(e.truth), len(set(e.truth))
    seeds = [0] if weighting == "reference" else range(6)
    rows = [np.arange(len(truth))] + subset_rows(len(truth), 50 if weighting == "reference" else 10)
    nmi: dict = {"Ward": [], "Ward + k-means": [], "spherical k-means from Ward": []}
    for seed in seeds:
        x = embedding(e, weighting, seed)
        for r in rows:
            ward = cluster_embeddings(x[r], k, "ward", seed)
            for name, labels in zip(nmi, (ward, cluster_embeddings(x[r], k, "ward_kmeans", seed),
                                          spherical_from(x[r], ward))):
                nmi[name].append(clustering_scores(truth[r], labels)["nmi"])
    for new, old in (("Ward + k-means", "Ward"), ("spherical k-means from Ward", "Ward + k-means")):
        a, b = np.array(nmi[old]), np.array(nmi[new])
        d = b - a
        print(f"{weighting}: {old} {a.mean():.3f}, {new} {b.mean():.3f}, difference {d.mean():+.3f} "
              f"(standard error {d.std() / np.sqrt(len(d)):.3f}); better {(d > 0).sum()}, "
              f"worse {(d < 0).sum()}, of {len(d)}")


def draws() -> None:
    for ds in study_sets(WORK) + extra_sets():
        e = embed(ds, CFG, "/tmp/anoclust-cache")
        truth, k = np.array(e.truth), len(set(e.truth))
        x = embedding(e, "reference", 0)
        labels = {m: cluster_embeddings(x, k, m, 0) for m in ("ward", "ward_kmeans", "kmeans")}
        labels["spherical"] = spherical_from(x, labels["ward"])
        cells = [f"{m} " + " / ".join(f"{v:.3f}" for v in clustering_scores(truth, lab).values())
                 for m, lab in labels.items()]
        print(ds.name, len(truth), " | ".join(cells), flush=True)


if __name__ == "__main__":
    paired(sys.argv[2]) if sys.argv[1] == "paired" else draws()
