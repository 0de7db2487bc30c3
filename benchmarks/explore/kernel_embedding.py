"""Beyond the weighted mean: a kernel mean embedding of the weighted patches, and softer
normalisations of the embedding's length (docs/RESULTS.md, section 13).

- rff: the weighted mean is the linear-kernel mean embedding of the image's weighted patch
  distribution; a Gaussian kernel describes the whole distribution (which patch appearances
  occur, not only their average). Approximated with random Fourier features: each patch, in
  the space the embeddings live in (whitened as the default), maps to sqrt(2 / D) cos(W z + b)
  with W ~ N(0, 1 / sigma^2), D = 1024, and the image is the weighted mean of those. sigma is
  c times the median distance between patches of the set (c = 0.5 / 1 / 2). Ward on the result
  is Ward on the maximum mean discrepancy between the weighted patch distributions.
- rff + mean: the kernel embedding beside the default one, each divided by its spread.
- length^p: the embedding divided by its length to the power p (0.25 / 0.5 / 0.75); p = 1 is
  l2, which lifts MTD and costs `variable` (section 9). A partial division might keep some of
  both.
- signed sqrt: sign(x) sqrt(|x|) of the centred embedding (the power normalisation of Fisher
  vectors), which damps the few coordinates that dominate the distances.

An exploration, not part of the tool; the five study sets of studyset.py.

    PYTHONPATH=src python benchmarks/explore/kernel_embedding.py reference|unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings, spread_scaled

from anoclust.estimator import embedding_whitening, pool_bags
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()
FEATURES = 1024


def median_distance(patches: np.ndarray, rng: np.random.Generator, pairs: int = 20_000) -> float:
    a, b = rng.integers(len(patches), size=(2, pairs))
    return float(np.median(np.linalg.norm(patches[a] - patches[b], axis=1)))


def rff_embeddings(bags: np.ndarray, weights: np.ndarray, whitening, scales, seed: int) -> dict:
    """{scale: (N, FEATURES) weighted means of random Fourier features} for each bandwidth scale."""
    rng = np.random.default_rng(seed)
    n, m, d = bags.shape
    mapped = lambda b: (b if whitening is None else whitening(b.reshape(-1, d))).astype(np.float32)
    sample = mapped(bags[rng.choice(n, min(n, 50), replace=False)].reshape(-1, d))
    sigma = median_distance(sample, rng)
    w = np.nan_to_num(weights).astype(np.float32)
    base = rng.standard_normal((d, FEATURES)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, FEATURES).astype(np.float32)
    out = {c: np.zeros((n, FEATURES), np.float32) for c in scales}
    for i in range(n):
        z = mapped(bags[i])
        for c in scales:
            phi = np.cos(z @ (base / (c * sigma)) + phase)
            out[c][i] = w[i] @ phi
    return {c: np.sqrt(2.0 / FEATURES) * v for c, v in out.items()}


def variants(e, space, scores, seed):
    weighting = sys.argv[1]
    whitening = embedding_whitening(space, weighting, e.bags, CFG.whiten, CFG.max_bank, seed)
    default, weights = pool_bags(e.bags, weighting, scores, CFG.tau, CFG.standardize, None, whitening)
    out = {"default": default}
    length = np.linalg.norm(default, axis=1, keepdims=True) + 1e-12
    for p in (0.25, 0.5, 0.75, 1.0):
        out[f"length^{p}"] = default / length**p
    centred = default - default.mean(0)
    out["signed sqrt"] = np.sign(centred) * np.sqrt(np.abs(centred))
    rff = rff_embeddings(e.bags, weights, whitening, (0.5, 1.0, 2.0), seed)
    for c, x in rff.items():
        out[f"rff {c}"] = x
        out[f"rff {c} + mean"] = np.concatenate([spread_scaled(default), spread_scaled(x)], 1)
    return out


if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
