"""The reference embedding of section 14 from several backbones, concatenated.

Each backbone (288 px, its default taps) scores its own patches against its own normal
patches and describes the defect by its deepest tap's part of the whitened embedding,
l2-normalised, exactly as the tool does for one backbone. A combination concatenates the
members' unit vectors (equal say) and clusters that with Ward; "scores shared" also pools
every member with the mean of the members' standardised patch scores (their grids match at
288 px). An exploration; the five study sets of studyset.py, full-set NMI and, in brackets,
the mean over the 10 random 90% subsets.

    PYTHONPATH=src python benchmarks/explore/backbone_ensemble.py
"""

import sys
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import embed, l2, nmis_over_rows, study_sets, summarise

from anoclust.estimator import patch_scores, patch_space, pool_bags, resolve_embedding
from anoclust.pipeline import ClusterSettings

BACKBONES = ("mobilenet_v2", "efficientnet_lite0", "efficientnet_lite2")
SHORT = {"mobilenet_v2": "mbv2", "efficientnet_lite0": "lite0", "efficientnet_lite2": "lite2"}


def standardised(s: np.ndarray) -> np.ndarray:
    return (s - np.nanmean(s, 1, keepdims=True)) / (np.nanstd(s, 1, keepdims=True) + 1e-12)


def describe(e, cfg: ClusterSettings, scores: np.ndarray, space) -> np.ndarray:
    emb = pool_bags(e.bags, "reference", scores, cfg.tau, cfg.standardize, None, space.whitening)[0]
    how, start = resolve_embedding("auto", "auto", "reference", cfg.backbone, emb.shape[1])
    return l2(emb[:, start:])


def main() -> None:
    totals: dict = {}
    for ds in study_sets(Path("/tmp/exp/studywork")):
        own, shared_in = {}, {}
        for name in BACKBONES:
            cfg = ClusterSettings(backbone=name)
            e = embed(ds, cfg, "/tmp/anoclust-cache")
            space = patch_space(e.bags.shape[1], "reference", e.normal_bags, cfg.border, cfg.whiten, cfg.max_bank, 0)
            s = patch_scores(e.bags, "reference", e.normal_bags, cfg.n_sampled, cfg.max_bank, 0, space)
            own[name] = describe(e, cfg, s, space)
            shared_in[name] = (e, cfg, s, space)
            truth = np.array(e.truth)
        mean_score = np.mean([standardised(v[2]) for v in shared_in.values()], 0)
        x = {SHORT[n]: v for n, v in own.items()}
        for r in (2, 3):
            for combo in combinations(BACKBONES, r):
                tag = "+".join(SHORT[n] for n in combo)
                x[tag] = l2(np.concatenate([own[n] for n in combo], 1))
                x[tag + " scores shared"] = l2(np.concatenate(
                    [describe(shared_in[n][0], shared_in[n][1], mean_score, shared_in[n][3]) for n in combo], 1))
        k = len(set(truth))
        summarise(ds.name, {tag: [nmis_over_rows(truth, emb, k)] for tag, emb in x.items()}, totals)
    print("sum of subset means", {k: round(v, 3) for k, v in totals.items()})


if __name__ == "__main__":
    main()
