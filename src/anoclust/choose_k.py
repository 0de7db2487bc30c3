"""Choosing the number of clusters when nobody knows how many defect types there are.

All criteria look at the normalised embeddings (the space the estimator clusters in, before the
projection, which needs k) and score every k in 2..k_max; the best-scoring k wins. The default,
``knee``, was picked from the study in benchmarks/k_selection.py (docs/DESIGN.md, RESULTS.md).

``knee``         the knee of W(k), Ward's within-cluster dispersion, k = 1..k_max: the k where
                 the curve lies farthest below the chord from its first to its last point, both
                 axes scaled to [0, 1]: where adding clusters stops paying. It under-counts many
                 equally well separated groups (8 blobs -> 5 or 6) but, unlike the other
                 criteria, stays within one of the truth on the real study sets. Identical images
                 give one group.
``silhouette``   mean silhouette of the Ward partition at k (higher is better)
``calinski``     Calinski-Harabasz index of the Ward partition at k (higher is better)
``ward_gap``     ratio of the Ward merge height that would join k clusters into k - 1 to the
                 height of the merge before it: a large jump means k well-separated groups
``eigengap``     largest gap between consecutive eigenvalues of the normalised Laplacian of a
                 symmetrised nearest-neighbour graph with round(sqrt(N)) neighbours per image:
                 k loosely connected groups give k eigenvalues near zero, then a jump
``gap``          gap statistic (Tibshirani et al.): log within-cluster dispersion against
                 uniform reference data in the principal-axes box; first k with
                 gap(k) >= gap(k+1) - s(k+1)
"""

from __future__ import annotations

import numpy as np

K_CRITERIA = ("knee", "silhouette", "calinski", "ward_gap", "eigengap", "gap")
DEFAULT_CRITERION = "knee"
# The knee's curve is read off a seeded subsample of a larger set: its shape, not its scale, matters.
KNEE_SAMPLE = 5000


def _ward_tree(x: np.ndarray) -> np.ndarray:
    from scipy.cluster.hierarchy import linkage

    return linkage(x, method="ward")


def _cut(tree: np.ndarray, k: int) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster

    return fcluster(tree, t=k, criterion="maxclust") - 1


def _partitions(x: np.ndarray, ks: range, method: str, random_state: int | None) -> dict[int, np.ndarray]:
    """Labels at every candidate k; the linkages cut one tree (ward_kmeans then polishes each
    cut), others re-cluster."""
    from .clustering import cluster_embeddings, kmeans_refined

    if method in ("ward", "ward_kmeans", "average", "complete"):
        from scipy.cluster.hierarchy import linkage

        tree = _ward_tree(x) if method.startswith("ward") else linkage(x, method=method)
        cuts = {k: _cut(tree, k) for k in ks}
        return {k: kmeans_refined(x, c) for k, c in cuts.items()} if method == "ward_kmeans" else cuts

    return {k: cluster_embeddings(x, k, method, random_state) for k in ks}


def dispersion_curve(x: np.ndarray, k_hi: int, random_state: int | None = 0) -> np.ndarray:
    """W(k) for k = 1..k_hi: the within-cluster sum of squares of Ward's tree cut into k clusters.

    Each Ward merge raises the sum by half its squared height (scipy's Ward distance is
    sqrt(2 n_a n_b / (n_a + n_b)) ||c_a - c_b||), so one tree gives every k."""
    if len(x) > KNEE_SAMPLE:
        x = x[np.sort(np.random.default_rng(random_state).choice(len(x), KNEE_SAMPLE, replace=False))]
    merges = 0.5 * _ward_tree(x)[:, 2] ** 2  # ascending: the last merge joins the final two clusters
    n = len(x)
    return np.array([merges[: n - k].sum() for k in range(1, k_hi + 1)])


def knee_values(w: np.ndarray) -> np.ndarray:
    """How far below the chord from its first to its last point the dispersion curve lies at each
    k = 1..len(w), both axes scaled to [0, 1]: the knee is where adding clusters stops paying."""
    k = np.arange(len(w), dtype=np.float64)
    span = w[0] - w[-1]
    if len(w) < 3 or span <= 1e-12 * max(w[0], 1e-300):
        return np.zeros(len(w))
    return (1.0 - k / k[-1]) - (w - w[-1]) / span


def _dispersion(x: np.ndarray, labels: np.ndarray) -> float:
    return float(sum(((x[labels == c] - x[labels == c].mean(0)) ** 2).sum() for c in np.unique(labels)))


def _gap_choice(x: np.ndarray, ks: range, parts: dict[int, np.ndarray], random_state: int | None, n_refs: int = 10):
    rng = np.random.default_rng(0 if random_state is None else random_state)
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    proj = centred @ vt.T
    lo, hi = proj.min(0), proj.max(0)
    ref_logs = np.empty((n_refs, len(ks)))
    for r in range(n_refs):
        ref = rng.uniform(lo, hi, size=proj.shape) @ vt
        tree = _ward_tree(ref)
        ref_logs[r] = [np.log(_dispersion(ref, _cut(tree, k)) + 1e-12) for k in ks]
    logs = np.array([np.log(_dispersion(x, parts[k]) + 1e-12) for k in ks])
    gap = ref_logs.mean(0) - logs
    s = ref_logs.std(0) * np.sqrt(1 + 1 / n_refs)
    chosen = ks[-1]
    for j in range(len(ks) - 1):
        if gap[j] >= gap[j + 1] - s[j + 1]:
            chosen = ks[j]
            break
    return chosen, gap


def _eigengap(x: np.ndarray, ks: range, n_neighbors: int | None = None) -> np.ndarray:
    from scipy.sparse.csgraph import laplacian
    from sklearn.neighbors import kneighbors_graph

    # sqrt(N) neighbours: the graph stays connected within a group as the set grows, while a
    # group of a few dozen images is not swamped by edges to its neighbours.
    n_neighbors = int(np.clip(n_neighbors or round(np.sqrt(len(x))), 2, len(x) - 1))
    graph = kneighbors_graph(x, n_neighbors=n_neighbors, include_self=False)
    affinity = 0.5 * (graph + graph.T).toarray()
    eig = np.sort(np.linalg.eigvalsh(laplacian(affinity, normed=True)))
    # Gap after the k-th smallest eigenvalue: k clusters leave k near-zero eigenvalues.
    return np.array([eig[k] - eig[k - 1] for k in ks])


def choose_k(
    embeddings: np.ndarray,
    k_max: int = 20,
    criterion: str = DEFAULT_CRITERION,
    method: str = "ward",
    random_state: int | None = 0,
    n_neighbors: int | None = None,
) -> tuple[int, dict]:
    """Pick the number of clusters in 2..k_max for the rows of `embeddings`.

    Returns (k, diagnostics) where diagnostics holds the criterion, the candidate ks and the
    criterion's value at each (for plots and the benchmark). n_neighbors: eigengap graph degree
    (default round(sqrt(N))).
    """
    if criterion not in K_CRITERIA:
        raise ValueError(f"unknown k criterion {criterion!r}; choose one of {', '.join(K_CRITERIA)}")
    x = np.asarray(embeddings, dtype=np.float64)
    n = len(x)
    k_hi = min(int(k_max), n - 1)
    if k_hi < 2:  # too few images to compare partitions: one cluster
        return 1, {"criterion": criterion, "ks": [], "values": []}
    ks = range(2, k_hi + 1)
    diag: dict = {"criterion": criterion, "ks": list(ks)}
    if criterion == "knee":
        w = dispersion_curve(x, k_hi, random_state)
        if w[0] <= 1e-12 * len(x):  # every image alike: one group
            return 1, {"criterion": criterion, "ks": list(ks), "values": [0.0] * len(ks)}
        values = knee_values(w)[1:]
    elif criterion == "ward_gap":
        heights = _ward_tree(x)[:, 2]  # ascending; heights[n - k] merges k clusters into k - 1
        values = np.array([heights[n - k] / max(heights[n - k - 1], 1e-12) for k in ks])
    elif criterion == "eigengap":
        values = _eigengap(x, ks, n_neighbors)
    else:
        parts = _partitions(x, ks, method, random_state)
        if criterion == "gap":
            k, values = _gap_choice(x, ks, parts, random_state)
            diag["values"] = [float(v) for v in values]
            return int(k), diag
        from sklearn.metrics import calinski_harabasz_score, silhouette_score

        score = silhouette_score if criterion == "silhouette" else calinski_harabasz_score
        values = np.array([score(x, parts[k]) if len(np.unique(parts[k])) > 1 else -np.inf for k in ks])
    diag["values"] = [float(v) for v in values]
    return int(ks[int(np.argmax(values))]), diag
