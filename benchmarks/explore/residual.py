"""Residual embeddings for the reference weighting: pool what the nearest normal patch does not explain.

Each scored patch z is replaced by w(z) - w(b(z)), where b(z) is its nearest patch in the normal
bank and w the whitening; the alpha-weighted mean of these residuals describes what the defect
adds to the part, not the part's own look (lighting, grain), which the plain embedding carries
as well. Also tried: the alpha-weighted standard deviation appended to the mean. An exploration
(docs/RESULTS.md), not part of the tool.

    PYTHONPATH=src python benchmarks/explore/residual.py [set,set,...]
"""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import embed, study_sets, subset_nmis

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import patch_scores, patch_space, pool_bags
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import build_bank, softmax_weights


def nearest_rows(q: torch.Tensor, bank: torch.Tensor, bank_sq: torch.Tensor, step: int = 8192) -> torch.Tensor:
    best = torch.full((len(q),), float("inf"))
    idx = torch.zeros(len(q), dtype=torch.long)
    for s in range(0, len(bank), step):
        d = torch.addmm(bank_sq[s : s + step], q, bank[s : s + step].T, alpha=-2.0)
        v, i = d.min(1)
        better = v < best
        best = torch.where(better, v, best)
        idx = torch.where(better, i + s, idx)
    return idx


cfg = ClusterSettings()
only = sys.argv[1].split(",") if len(sys.argv) > 1 else None
tot = {}
for ds in study_sets(Path("/tmp/exp/studywork")):
    if only and ds.name not in only:
        continue
    e = embed(ds, cfg, "/tmp/anoclust-cache")
    k = len(set(e.truth))
    truth = np.array(e.truth)
    sp = patch_space(e.bags.shape[1], "reference", e.normal_bags, cfg.border, cfg.whiten, cfg.max_bank, 0)
    s = patch_scores(e.bags, "reference", e.normal_bags, cfg.n_sampled, cfg.max_bank, 0, sp)
    base = pool_bags(e.bags, "reference", s, cfg.tau, True, None, sp.whitening)[0]
    alpha = softmax_weights(s, cfg.tau, True)[:, sp.keep]  # (N, m)
    wh = sp.whitening
    bank = torch.from_numpy(wh(build_bank(e.normal_bags, cfg.max_bank, 0, sp)))
    bank_sq = (bank * bank).sum(1)
    resid = np.zeros_like(base)
    std = np.zeros_like(base)
    torch.set_num_threads(2)
    for i in range(len(e.bags)):
        z = torch.from_numpy(wh(e.bags[i][sp.keep].astype(np.float32)))
        nn = bank[nearest_rows(z, bank, bank_sq)]
        a = torch.from_numpy(alpha[i]).float()[:, None]
        resid[i] = (a * (z - nn)).sum(0).numpy()
        mu = (a * z).sum(0)
        std[i] = (a * (z - mu) ** 2).sum(0).sqrt().numpy()
    l2 = lambda x: x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
    embs = {"base": base, "base_l2": l2(base), "resid": resid, "resid_l2": l2(resid),
            "mean+std": np.concatenate([base, std], 1), "base+resid": np.concatenate([base, resid], 1)}
    for name, x in embs.items():
        r = [clustering_scores(truth, cluster_embeddings(x, k, "ward", 0))["nmi"]]
        r += subset_nmis(truth, x, k, seed=0)
        tot[name] = tot.get(name, 0) + np.mean(r[1:])
        print(ds.name, name, f"full {r[0]:.3f} subsets {np.mean(r[1:]):.3f}±{np.std(r[1:]):.3f}", flush=True)
print("sum of subset means", {k: round(v, 3) for k, v in tot.items()})
