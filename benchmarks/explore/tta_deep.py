"""Test-time flips (section 8's tta.py) again, with today's reference description of the defect.

Each image and its normals are embedded as they are and flipped horizontally, vertically and
both; each flip is scored against the normals flipped the same way and pooled; the deepest tap's
part of the whitened embeddings is averaged over the flips (before or after l2), or over the
image and its horizontal flip only, then l2 and ward_kmeans. Prints full-set NMI / ARI / F1, the
mean NMI over the 10 random 90% subsets and the paired difference to no flips (subsets better /
worse). Bags of the flips are kept in /tmp/exp/tta-deep. An exploration (docs/RESULTS.md,
section 17).

    PYTHONPATH=src python benchmarks/explore/tta_deep.py [STUDY_SET_INDEX]   # 0 = MTD
"""

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import SPLIT, l2, nmis_over_rows, study_sets

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import patch_scores, patch_space, pool_bags
from anoclust.extract import PatchExtractor
from anoclust.images import load_image
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings

cfg = ClusterSettings()
ex = PatchExtractor(cfg.extractor().config)
FL = {"id": lambda a: a, "h": lambda a: a[..., ::-1], "v": lambda a: a[..., ::-1, :], "hv": lambda a: a[..., ::-1, ::-1]}


def bags(paths, pool, cache):
    f = Path(f"/tmp/exp/tta-deep/{cache}.npz")
    if f.exists():
        z = np.load(f)
        return {k: z[k] for k in FL}
    imgs = list(pool.map(lambda p: load_image(p, cfg.image_size), paths))
    out = {}
    for k, fn in FL.items():
        arr = np.stack([np.ascontiguousarray(fn(a)) for a in imgs])
        out[k] = np.concatenate([ex.embed_arrays(arr[i:i+16]) for i in range(0, len(arr), 16)])
    f.parent.mkdir(parents=True, exist_ok=True)
    np.savez(f, **out)
    return out


ds = study_sets(Path("/tmp/exp/studywork"))[int(sys.argv[1]) if len(sys.argv) > 1 else 0]
with ThreadPoolExecutor(2) as pool:
    B = bags(ds.images.paths, pool, ds.name)
    N = bags(ds.images.normals, pool, ds.name + "-normals")
truth = np.array(ds.images.labels)
k = len(set(truth))
emb = {}
for f in FL:
    sp = patch_space(B[f].shape[1], "reference", N[f], cfg.border, cfg.whiten, cfg.max_bank, 0)
    s = patch_scores(B[f], "reference", N[f], 32, cfg.max_bank, 0, sp)
    emb[f] = pool_bags(B[f], "reference", s, cfg.tau, True, None, sp.whitening)[0][:, SPLIT:]
V = {"id": l2(emb["id"]), "mean of 4": l2(np.mean([emb[f] for f in FL], 0)), "mean of l2 of 4": l2(np.mean([l2(emb[f]) for f in FL], 0)), "id+h": l2(emb["id"] + emb["h"])}
base = None
for name, x in V.items():
    v = np.array(nmis_over_rows(truth, lambda r: cluster_embeddings(x[r], k, "ward_kmeans", 0), k))
    s = clustering_scores(truth, cluster_embeddings(x, k, "ward_kmeans", 0))
    base = v if base is None else base
    d = v[1:] - base[1:]
    print(f"{ds.name} {name}: full {v[0]:.3f} / {s['ari']:.3f} / {s['f1']:.3f}, subsets {v[1:].mean():.3f}, paired {d.mean():+.3f} ({(d>0).sum()}/{(d<0).sum()})", flush=True)
