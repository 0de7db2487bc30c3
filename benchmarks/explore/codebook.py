"""Beyond the weighted mean: codebook histograms, VLAD, and alternating LDA / clustering.

At the default reference setting, three ways to turn the weighted bags into a clustering:
- bow: the alpha-weighted histogram of patch "words" (k-means over the most-weighted patches
  of all images), square-rooted (Hellinger), then Ward;
- vlad: alpha-weighted residuals of the patches to their word, per word, power- and
  l2-normalised, then Ward;
- lda: start from Ward on the default embedding, then alternate a shrunk LDA projection fitted
  to the current labels and Ward in that projection (discriminative clustering).
An exploration (docs/RESULTS.md), not part of the tool.

    PYTHONPATH=src python benchmarks/explore/codebook.py [reference|unsupervised] [set,set,...]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import pool_bags
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import softmax_weights


def words(z, alpha, n_words, top, seed=0):
    from sklearn.cluster import KMeans

    idx = np.argsort(-alpha, 1)[:, :top]
    sample = np.take_along_axis(z, idx[:, :, None], 1).reshape(-1, z.shape[-1])
    km = KMeans(n_words, n_init=3, random_state=seed).fit(sample)
    return km.cluster_centers_.astype(np.float32)


def assign(z, centres):
    d = (z**2).sum(-1)[..., None] - 2 * z @ centres.T + (centres**2).sum(-1)
    return d.argmin(-1)


def bow(z, alpha, centres):
    a = assign(z, centres)
    h = np.zeros((len(z), len(centres)))
    for i in range(len(z)):
        np.add.at(h[i], a[i], alpha[i])
    return np.sqrt(h)


def vlad(z, alpha, centres):
    a = assign(z, centres)
    v = np.zeros((len(z), len(centres), z.shape[-1]), np.float32)
    for i in range(len(z)):
        r = alpha[i][:, None] * (z[i] - centres[a[i]])
        np.add.at(v[i], a[i], r)
    v = np.sign(v) * np.sqrt(np.abs(v))
    v /= np.linalg.norm(v, axis=2, keepdims=True) + 1e-12  # intra-normalisation
    v = v.reshape(len(z), -1)
    return v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12)


def lda_cluster(x, k, iters=10):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    labels = cluster_embeddings(x, k, "ward")
    for _ in range(iters):
        if len(set(labels)) < 2:
            break
        lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(x, labels)
        y = lda.transform(x)
        new = cluster_embeddings(y, k, "ward")
        if clustering_scores(labels, new)["nmi"] > 0.999:
            break
        labels = new
    return labels


def variants(e, space, scores, seed):
    cfg = ClusterSettings()
    k = len(set(e.truth))
    base = pool_bags(e.bags, sys.argv[1], scores, cfg.tau, True, None, space.whitening)[0]
    alpha = softmax_weights(scores, cfg.tau, True)[:, space.keep]
    z = e.bags[:, space.keep].astype(np.float32)
    if space.whitening is not None:
        z = space.whitening(z)
    # the codebook is fitted once on all images (it uses no labels); each subset is clustered
    # on its own
    out = {"base": base, "lda": lambda rows: lda_cluster(base[rows], k)}
    for nw in (32, 128):
        c = words(z, alpha, nw, 16)
        out[f"bow{nw}"], out[f"vlad{nw}"] = bow(z, alpha, c), vlad(z, alpha, c)
    return out


if __name__ == "__main__":
    compare_embeddings(sys.argv[1] if len(sys.argv) > 1 else "reference", variants,
                       sys.argv[2].split(",") if len(sys.argv) > 2 else None)
