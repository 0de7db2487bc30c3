"""l2 on the deepest tap, with the discarded strength handed back as one coordinate (section 14).

Section 14's default (the deepest tap of the whitened embedding, l2) merges synthetic defect
types that differ mostly in strength (spot, hole). Here the log of the embedding's length,
standardised over the set, is appended to the unit vector with weight beta = 0.1 / 0.2 / 0.4.
"study": the five study sets (subset means, as compare_embeddings); "types": the local sets
with 5-8 types of synthetic_draws.py (full-set NMI); "wide": both, with subset means. The clustering method is Ward unless a
second argument names another (section 15: ward_kmeans). An exploration.

    PYTHONPATH=src python benchmarks/explore/length_feature.py study|types|wide [ward_kmeans]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
sys.path.insert(0, str(Path(__file__).resolve().parent))  # synthetic_draws
from studyset import SPLIT, compare_embeddings, embed, l2
from synthetic_draws import more_types

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import patch_scores, patch_space, pool_bags
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()
METHOD = sys.argv[2] if len(sys.argv) > 2 else "ward"
BETAS = (0.1, 0.15, 0.2, 0.3, 0.4) if sys.argv[1] == "wide" else (0.1, 0.2, 0.4)


def variants_of(embedding: np.ndarray) -> dict:
    deep = embedding[:, SPLIT:]
    unit = l2(deep)
    log_length = np.log(np.linalg.norm(deep, axis=1))
    z = (log_length - log_length.mean()) / (log_length.std() + 1e-12)
    out = {"deepest tap, l2 (default)": unit}
    for beta in BETAS:
        out[f"+ {beta} log length"] = np.concatenate([unit, beta * z[:, None]], 1)
    return out


def variants(e, space, scores, seed):
    x = variants_of(pool_bags(e.bags, "reference", scores, CFG.tau, CFG.standardize, None, space.whitening)[0])
    k = len(set(e.truth))
    return {n: (lambda r, v=v: cluster_embeddings(v[r], k, METHOD, seed)) for n, v in x.items()}


def types() -> None:
    for ds in more_types():
        e = embed(ds, CFG, "/tmp/anoclust-cache")
        truth, k = np.array(e.truth), len(set(e.truth))
        space = patch_space(e.bags.shape[1], "reference", e.normal_bags, CFG.border, CFG.whiten, CFG.max_bank, 0)
        s = patch_scores(e.bags, "reference", e.normal_bags, CFG.n_sampled, CFG.max_bank, 0, space)
        x = variants_of(pool_bags(e.bags, "reference", s, CFG.tau, CFG.standardize, None, space.whitening)[0])
        nmi = {n: clustering_scores(truth, cluster_embeddings(v, k, METHOD, 0))["nmi"] for n, v in x.items()}
        print(f"{k} types", " | ".join(f"{n}: {v:.3f}" for n, v in nmi.items()), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "types":
        types()
    else:
        compare_embeddings("reference", variants, extra=more_types() if sys.argv[1] == "wide" else ())
