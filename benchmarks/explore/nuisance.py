"""Removing the directions in which the images' backgrounds differ from the defect embeddings.

On MTD an image's nearest neighbour shares its tile more than its defect (mask_ceiling.py), so
the embeddings carry tile identity as well as defect type. Here each image also gets a
background embedding (the uniform mean of its scored patches with the lower half of its
scores); the top r principal directions of the set's background embeddings are projected out
of the defect embeddings before Ward, r = 4, 8, 16, 32 (of 128), with and without l2. An
exploration (docs/RESULTS.md, section 9), not part of the tool.

    PYTHONPATH=src python benchmarks/explore/nuisance.py reference|unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import embed, study_sets, subset_nmis

from anoclust.clustering import cluster_embeddings, normalize_embeddings
from anoclust.estimator import patch_scores, patch_space, pool_bags
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings


def background(bags: np.ndarray, scores: np.ndarray, whitening) -> np.ndarray:
    low = np.isfinite(scores) & (scores <= np.nanmedian(scores, axis=1, keepdims=True))
    x = np.einsum("nm,nmd->nd", low / low.sum(1, keepdims=True), bags.astype(np.float32))
    return x if whitening is None else whitening(x)


def project_out(x: np.ndarray, b: np.ndarray, r: int) -> np.ndarray:
    _, _, vt = np.linalg.svd(b - b.mean(0), full_matrices=False)
    v = vt[:r].T
    return x - (x - x.mean(0)) @ v @ v.T


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
            x0 = pool_bags(e.bags, w, s, cfg.tau, True, None, sp.whitening)[0]
            b = background(e.bags, s, sp.whitening)
            for r in (0, 4, 8, 16, 32):
                xr = project_out(x0, b, r) if r else x0
                for h in ("none", "l2"):
                    x = normalize_embeddings(xr, h)
                    full = clustering_scores(truth, cluster_embeddings(x, k, "ward", seed))["nmi"]
                    res.setdefault(f"r{r} {h}", []).append([full] + subset_nmis(truth, x, k, seed=seed))
        cells = []
        for name, v in res.items():
            v = np.array(v)
            totals[name] = totals.get(name, 0.0) + v[:, 1:].mean()
            cells.append(f"{name}: {v[:, 0].mean():.3f} ({v[:, 1:].mean():.3f})")
        print(ds.name, w, " | ".join(cells), flush=True)
    print("sum of subset means", {k: round(v, 3) for k, v in totals.items()})


if __name__ == "__main__":
    main()
