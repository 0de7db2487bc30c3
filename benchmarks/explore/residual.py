"""Residual embeddings for the reference weighting: pool what the nearest normal patch does not explain.

Each scored patch z is replaced by w(z) - w(b(z)), where b(z) is its nearest patch in the normal
bank and w the whitening; the alpha-weighted mean of these residuals describes what the defect
adds to the part, not the part's own look (lighting, grain), which the plain embedding carries
as well. Also tried: the alpha-weighted standard deviation appended to the mean. An exploration
(docs/RESULTS.md, section 9), not part of the tool.

    PYTHONPATH=src python benchmarks/explore/residual.py
"""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings, l2

from anoclust.estimator import pool_bags
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import build_bank, softmax_weights

CFG = ClusterSettings()


def nearest_rows(q: torch.Tensor, bank: torch.Tensor, bank_sq: torch.Tensor, step: int = 8192) -> torch.Tensor:
    best = torch.full((len(q),), float("inf"))
    idx = torch.zeros(len(q), dtype=torch.long)
    for s in range(0, len(bank), step):
        v, i = torch.addmm(bank_sq[s : s + step], q, bank[s : s + step].T, alpha=-2.0).min(1)
        better = v < best
        best = torch.where(better, v, best)
        idx = torch.where(better, i + s, idx)
    return idx


def variants(e, space, scores, seed):
    base = pool_bags(e.bags, "reference", scores, CFG.tau, True, None, space.whitening)[0]
    alpha = torch.from_numpy(softmax_weights(scores, CFG.tau, True)[:, space.keep]).float()
    wh = space.whitening
    bank = torch.from_numpy(wh(build_bank(e.normal_bags, CFG.max_bank, 0, space)))
    bank_sq = (bank * bank).sum(1)
    resid, std = np.zeros_like(base), np.zeros_like(base)
    for i in range(len(e.bags)):
        z = torch.from_numpy(wh(e.bags[i][space.keep].astype(np.float32)))
        a = alpha[i][:, None]
        resid[i] = (a * (z - bank[nearest_rows(z, bank, bank_sq)])).sum(0).numpy()
        std[i] = (a * (z - (a * z).sum(0)) ** 2).sum(0).sqrt().numpy()
    return {"base": base, "base_l2": l2(base), "resid": resid, "resid_l2": l2(resid),
            "mean+std": np.concatenate([base, std], 1), "base+resid": np.concatenate([base, resid], 1)}


if __name__ == "__main__":
    compare_embeddings("reference", variants, only=sys.argv[1].split(",") if len(sys.argv) > 1 else None)
