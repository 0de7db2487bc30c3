"""Standardising the patch scores by a spread of the whole set instead of each image's own.

The default divides each image's scores by their own standard deviation, so every image gets
equally peaked weights, whether or not it has a patch that stands out. Dividing instead by one
spread for the whole set (the median or the root mean square of the images' standard
deviations, or the standard deviation of all scores of the set) lets images whose scores are
flat, such as whole-image defect textures, keep nearly uniform weights while images with an
outlying patch stay peaked. tau 0.5 and 1. An exploration (docs/RESULTS.md, section 9), not
part of the tool.

    PYTHONPATH=src python benchmarks/explore/setscale.py reference|unsupervised
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


def set_scaled_weights(s: np.ndarray, tau: float, how: str) -> np.ndarray:
    per_image = np.nanstd(s, axis=1)
    spread = {"median": np.median(per_image), "rms": np.sqrt(np.mean(per_image**2)), "total": np.nanstd(s)}[how]
    z = (s - np.nanmax(s, axis=1, keepdims=True)) / (tau * spread)
    w = np.where(np.isnan(z), 0.0, np.exp(z))
    return w / w.sum(1, keepdims=True)


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
            s = patch_scores(e.bags, w, e.normal_bags, cfg.n_sampled, cfg.max_bank, seed, sp).astype(np.float64)
            z = e.bags.astype(np.float32) if sp.whitening is None else sp.whitening(e.bags)
            embs = {"uniform": pool_bags(e.bags, "uniform", None, cfg.tau, True, None, sp.whitening)[0]}
            for tau in (0.5, 1.0):
                embs[f"per-image tau {tau}"] = pool_bags(e.bags, w, s, tau, True, None, sp.whitening)[0]
                for how in ("median", "rms", "total"):
                    embs[f"{how} tau {tau}"] = np.einsum("nm,nmd->nd", set_scaled_weights(s, tau, how), z)
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
