"""The weighted embedding with the average-pooled embedding appended (share beta of its spread).

Each half is divided by its overall spread across the set, then the average-pooled half is
multiplied by beta = 0.25 / 0.5 / 1: where the defect covers the whole image (`texture`), the
average-pooled half carries the class; where it is small (MTD), the weighted half does. An
exploration (docs/RESULTS.md, section 9), not part of the tool.

    PYTHONPATH=src python benchmarks/explore/concat.py reference|unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import embed, study_sets, subset_nmis

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import patch_scores, patch_space, pool_bags
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings


def spread_scaled(x: np.ndarray) -> np.ndarray:
    c = x - x.mean(0)
    return c / (np.sqrt((c**2).sum(1).mean()) + 1e-12)


def main() -> None:
    w = sys.argv[1]
    cfg = ClusterSettings()
    seeds = [0, 1, 2] if w == "unsupervised" else [0]
    totals: dict = {}
    for ds in study_sets(Path("/tmp/exp/studywork")):
        e = embed(ds, cfg, "/tmp/anoclust-cache")
        truth, k = np.array(e.truth), len(set(e.truth))
        res: dict = {}
        for seed in seeds:
            sp = patch_space(e.bags.shape[1], w, e.normal_bags, cfg.border, cfg.whiten, cfg.max_bank, seed)
            s = patch_scores(e.bags, w, e.normal_bags, cfg.n_sampled, cfg.max_bank, seed, sp)
            weighted = spread_scaled(pool_bags(e.bags, w, s, cfg.tau, True, None, sp.whitening)[0])
            uniform = spread_scaled(pool_bags(e.bags, "uniform", None, cfg.tau, True, None, sp.whitening)[0])
            embs = {"weighted": weighted, "uniform": uniform}
            for beta in (0.25, 0.5, 1.0):
                embs[f"beta {beta}"] = np.concatenate([weighted, beta * uniform], 1)
            for name, x in embs.items():
                full = clustering_scores(truth, cluster_embeddings(x, k, "ward", seed))["nmi"]
                res.setdefault(name, []).append([full] + subset_nmis(truth, x, k, seed=seed))
        cells = []
        for name, v in res.items():
            v = np.array(v)
            totals[name] = totals.get(name, 0.0) + v[:, 1:].mean()
            cells.append(f"{name}: {v[:, 0].mean():.3f} ({v[:, 1:].mean():.3f})")
        print(ds.name, w, " | ".join(cells), flush=True)
    print("sum of subset means", {k: round(v, 3) for k, v in totals.items()})


if __name__ == "__main__":
    main()
