"""More ways to build or cluster the image embeddings from the default patch scores
(docs/RESULTS.md, section 12).

- shape: the shape of the weight map appended to the embedding. MTD's defect types differ in
  form (round blowholes, thin cracks, broad uneven areas, chips on the edge), so each image
  gets nine numbers: the weighted spatial spread of its weights (major and minor axis, and
  their ratio), the shares of patches scoring more than 1 and 2 spreads above the image's
  mean, the highest and 99th-percentile standardised score, the weights' mean distance to the
  grid edge and their normalised entropy. Standardised over the set, scaled to a share beta =
  0.25 / 0.5 / 1 of the embedding's spread, and appended ("shape alone": the nine numbers only).
- contrast: the embedding minus the image's own background, the mean of its scored patches
  with the lower half of its scores ("- background") or of all of them ("- image mean"),
  with and without l2: what the weighted region adds to its own image rather than to the
  set's normal parts (which the tile or the lighting also move); and, with l2, minus a share
  0.25 / 0.5 / 0.75 of the image mean.
- taus: the embeddings at two or four temperatures side by side (each divided by its spread),
  so that peaked and broad defects are both described.
- consensus: Ward partitions of several embeddings (no normalisation and l2; or tau 0.35 / 0.5
  / 0.75 with and without l2, optionally with 1.5 k and 2 k clusters too) combined through
  how often two images share a cluster, then average linkage on that co-association.

An exploration, not part of the tool; the five study sets of studyset.py.

    PYTHONPATH=src python benchmarks/explore/embedding_extras.py reference|unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings, l2, spread_scaled

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import embedding_whitening, pool_bags
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import softmax_weights

CFG = ClusterSettings()


def shape_of_weights(scores: np.ndarray) -> np.ndarray:
    """(N, 9) descriptors of each image's weight map (see the module docstring), standardised."""
    side = int(round(np.sqrt(scores.shape[1])))
    row, col = np.divmod(np.arange(scores.shape[1]), side)
    y, x = row / (side - 1), col / (side - 1)
    weights = np.nan_to_num(softmax_weights(scores, CFG.tau, CFG.standardize))
    out = []
    for s, w in zip(scores, weights):
        ok = ~np.isnan(s)
        z = (s[ok] - s[ok].mean()) / (s[ok].std() + 1e-12)
        a = w[ok] / w[ok].sum()
        px, py = x[ok], y[ok]
        dx, dy = px - (a * px).sum(), py - (a * py).sum()
        cov = np.array([[(a * dx * dx).sum(), (a * dx * dy).sum()], [(a * dx * dy).sum(), (a * dy * dy).sum()]])
        minor, major = np.sqrt(np.maximum(np.linalg.eigvalsh(cov), 1e-9))
        edge = np.minimum(np.minimum(px, 1 - px), np.minimum(py, 1 - py))
        entropy = -(a * np.log(a + 1e-12)).sum() / np.log(len(a))
        out.append([major, minor, minor / major, (z > 1).mean(), (z > 2).mean(), z.max(), np.quantile(z, 0.99),
                    (a * edge).sum(), entropy])
    out = np.array(out)
    return (out - out.mean(0)) / (out.std(0) + 1e-12)


def background(bags: np.ndarray, scores: np.ndarray, lower_half: bool) -> np.ndarray:
    ok = ~np.isnan(scores)
    if lower_half:
        ok &= scores <= np.nanmedian(scores, axis=1, keepdims=True)
    w = (ok / ok.sum(1, keepdims=True)).astype(np.float32)
    return np.einsum("nm,nmd->nd", w, bags.astype(np.float32))


def consensus(embeddings: list, k: int, seed: int, sizes=(1.0,)):
    """A labelling function (rows -> labels) for compare_embeddings."""
    from sklearn.cluster import AgglomerativeClustering

    def labels(rows: np.ndarray) -> np.ndarray:
        together, runs = np.zeros((len(rows), len(rows))), 0
        for x in embeddings:
            for size in sizes:
                lab = cluster_embeddings(x[rows], max(2, round(k * size)), "ward", seed)
                together += lab[:, None] == lab[None, :]
                runs += 1
        return AgglomerativeClustering(n_clusters=k, metric="precomputed", linkage="average").fit_predict(
            1 - together / runs)

    return labels


def variants(e, space, scores, seed):
    weighting = sys.argv[1]
    whitening = embedding_whitening(space, weighting, e.bags, CFG.whiten, CFG.max_bank, seed)
    at = {t: pool_bags(e.bags, weighting, scores, t, CFG.standardize, None, whitening)[0] for t in (0.25, 0.35, 0.5, 0.75, 1.0)}
    default = at[CFG.tau]
    out = {"default": default, "l2": l2(default)}

    shape = shape_of_weights(scores)
    out["shape alone"] = shape
    for beta in (0.25, 0.5, 1.0):
        out[f"shape {beta}"] = np.concatenate([spread_scaled(default), beta * spread_scaled(shape)], 1)

    own = {}
    for name, lower in (("- background", True), ("- image mean", False)):
        bg = background(e.bags, scores, lower)
        own[name] = bg if whitening is None else whitening(bg)
        out[name], out[f"{name}, l2"] = default - own[name], l2(default - own[name])
    for share in (0.25, 0.5, 0.75):  # only part of the image mean taken away
        out[f"- {share} image mean, l2"] = l2(default - share * own["- image mean"])

    out["taus 0.5 + 1"] = np.concatenate([spread_scaled(at[0.5]), spread_scaled(at[1.0])], 1)
    out["taus 0.25-1"] = np.concatenate([spread_scaled(at[t]) for t in (0.25, 0.5, 0.75, 1.0)], 1)

    k = len(set(e.truth))
    six = [at[t] for t in (0.35, 0.5, 0.75)] + [l2(at[t]) for t in (0.35, 0.5, 0.75)]
    out["consensus none + l2"] = consensus([default, l2(default)], k, seed)
    out["consensus 6"] = consensus(six, k, seed)
    out["consensus 6, k 1-2x"] = consensus(six, k, seed, sizes=(1.0, 1.5, 2.0))
    return out


if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
