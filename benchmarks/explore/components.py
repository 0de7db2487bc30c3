"""Keep a few principal axes of the clustering space, then unit length again (section 18).

The default since section 18 (`--components auto`): after the normalisation the embeddings are
projected onto their 4 * k leading principal axes (centred) and scaled to unit length again
(clustering.EmbeddingSpace). Variants: no projection (the default before, `--components 0`),
2, 3, 5, 6, 8 axes per cluster, and a fixed 12, 16, 20, 24 or 32 axes.

study WEIGHTING: subset means (and full-set NMI) on the five study sets, draws 2-5 of each
synthetic kind and the local sets with 5-8 types (25 sets; studyset.compare_embeddings with the
weighting's default clustering method). heldout WEIGHTING: the same on the 16 sets of
synthetic_draws.heldout_sets, made after the choice to check it; strength WEIGHTING: on the 8
sets of synthetic_draws.strength_sets (spot and hole together). paired: MTD, reference
weighting, 50 random 90% subsets, NMI and F1 paired against the default, with the controls
"centred, unit length, every axis" and "20 axes without unit length".

    PYTHONPATH=src python benchmarks/explore/components.py study reference|unsupervised
    PYTHONPATH=src python benchmarks/explore/components.py heldout reference|unsupervised
    PYTHONPATH=src python benchmarks/explore/components.py strength reference|unsupervised
    PYTHONPATH=src python benchmarks/explore/components.py paired
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
sys.path.insert(0, str(Path(__file__).resolve().parent))  # synthetic_draws
from studyset import compare_embeddings, embed, print_paired, study_sets, subset_rows
from synthetic_draws import extra_sets, heldout_sets, strength_sets

from anoclust.clustering import cluster_embeddings, normalize_embeddings
from anoclust.estimator import (COMPONENTS_PER_CLUSTER, embedding_whitening, patch_scores, patch_space, pool_bags,
                                resolve_components, resolve_embedding, resolve_method)
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import score_peak

CFG = ClusterSettings()
PER_CLUSTER = (0, 2, 3, COMPONENTS_PER_CLUSTER, 5, 6, 8)
FIXED = (12, 16, 20, 24, 32)


def normalised(e, weighting: str, space, scores, seed: int) -> tuple[np.ndarray, str]:
    """The default's embedding before the projection, and its normalisation."""
    pooled = embedding_whitening(space, weighting, e.bags, CFG.whiten, CFG.max_bank, seed)
    emb = pool_bags(e.bags, weighting, scores, CFG.tau, CFG.standardize, None, pooled)[0]
    how, start = resolve_embedding("auto", "auto", weighting, CFG.backbone, emb.shape[1], score_peak(scores))
    return emb[:, start:], how


def variants(weighting: str, fixed=FIXED):
    method = resolve_method("auto", weighting)

    def make(e, space, scores, seed):
        emb, how = normalised(e, weighting, space, scores, seed)
        k = len(set(e.truth))

        def clustered(axes):
            # Fitted on the rows clustered, as the estimator fits on the images it clusters.
            def run(rows):
                c = resolve_components(axes, weighting, k, emb[rows].shape)
                return cluster_embeddings(normalize_embeddings(emb[rows], how, c), k, method, seed)
            return run

        out = {}
        for m in PER_CLUSTER:
            name = "default" if m == COMPONENTS_PER_CLUSTER else ("no projection" if m == 0 else f"{m} per cluster")
            out[name] = clustered(m * k)
        out |= {f"{d} axes": clustered(d) for d in fixed}
        return out

    return make


def paired() -> None:
    e = embed(study_sets(Path("/tmp/exp/studywork"))[0], CFG, "/tmp/anoclust-cache")
    truth, k = np.array(e.truth), len(set(e.truth))
    space = patch_space(e.bags.shape[1], "reference", e.normal_bags, CFG.border, CFG.whiten, CFG.max_bank, 0)
    scores = patch_scores(e.bags, "reference", e.normal_bags, CFG.n_sampled, CFG.max_bank, 0, space)
    emb, how = normalised(e, "reference", space, scores, 0)
    x = normalize_embeddings(emb, how)
    spaces = {f"{c} axes": (lambda r, c=c: normalize_embeddings(x[r], "none", c))
              for c in (COMPONENTS_PER_CLUSTER * k, 0, 10, 12, 14, 16, 18, 24, 32)}
    spaces["centred, unit length, every axis"] = lambda r: normalize_embeddings(x[r], "none", x.shape[1])
    spaces["20 axes, no unit length"] = lambda r: (x[r] - x[r].mean(0)) @ np.linalg.svd(
        x[r] - x[r].mean(0), full_matrices=False)[2][:20].T
    rows = [np.arange(len(truth))] + subset_rows(len(truth), 50)
    nmi, f1 = {}, {}
    for name, space_of in spaces.items():
        s = [clustering_scores(truth[r], cluster_embeddings(space_of(r), k, "ward_kmeans", 0)) for r in rows]
        nmi[name], f1[name] = [v["nmi"] for v in s], [v["f1"] for v in s]
    print_paired(nmi, "NMI ")
    print_paired(f1, "F1 ")


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "paired":
        paired()
    else:
        sets = {"study": extra_sets, "heldout": heldout_sets, "strength": strength_sets}[what]()
        compare_embeddings(sys.argv[2], variants(sys.argv[2], FIXED if what == "study" else (20,)),
                           extra=sets, with_study=what == "study")
