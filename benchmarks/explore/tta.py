"""Test-time flips: embeddings averaged over the image and its flips (MTD, reference weighting).

An exploration (docs/RESULTS.md, section 8), not part of the tool; the five study sets of
studyset.py in /tmp/exp/studywork, features from the cache in /tmp/anoclust-cache. Prints
full-set NMI and the mean NMI over 10 random 90% subsets.

    PYTHONPATH=src python benchmarks/explore/tta.py mtd
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from concurrent.futures import ThreadPoolExecutor

from studyset import study_sets, subset_nmis

from anoclust.clustering import cluster_embeddings, normalize_embeddings
from anoclust.estimator import patch_scores, patch_space, pool_bags
from anoclust.extract import PatchExtractor
from anoclust.images import load_image
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings

sets = study_sets(Path("/tmp/exp/studywork"))
cfg = ClusterSettings()
ex = PatchExtractor(cfg.extractor().config)
FL = {
    "id": lambda a: a,
    "h": lambda a: a[..., ::-1],
    "v": lambda a: a[..., ::-1, :],
    "hv": lambda a: a[..., ::-1, ::-1],
}


def bags(paths, pool):
    imgs = list(pool.map(lambda p: load_image(p, cfg.image_size), paths))
    out = {}
    for f, fn in FL.items():
        arr = np.stack([np.ascontiguousarray(fn(a)) for a in imgs])
        out[f] = np.concatenate([ex.embed_arrays(arr[i : i + 16]) for i in range(0, len(arr), 16)])
    return out


only = sys.argv[1].split(",") if len(sys.argv) > 1 else None
with ThreadPoolExecutor(2) as pool:
    for ds in sets:
        if only and ds.name not in only:
            continue
        im = ds.images
        truth = np.array(im.labels)
        k = len(set(im.labels))
        B = bags(im.paths, pool)
        N = bags(im.normals, pool)
        normals_all = np.concatenate(list(N.values()))
        embs = {}
        for f in FL:
            sp = patch_space(B[f].shape[1], "reference", N[f], cfg.border, cfg.whiten, cfg.max_bank, 0)
            s = patch_scores(B[f], "reference", N[f], 32, cfg.max_bank, 0, sp)
            embs[f] = pool_bags(B[f], "reference", s, cfg.tau, True, None, sp.whitening)[0]
        # variant: one bank of all flipped normals
        sp = patch_space(B["id"].shape[1], "reference", normals_all, cfg.border, cfg.whiten, 10**6, 0)
        s = patch_scores(B["id"], "reference", normals_all, 32, 10**6, 0, sp)
        e_allbank = pool_bags(B["id"], "reference", s, cfg.tau, True, None, sp.whitening)[0]
        V = {
            "id": embs["id"],
            "tta4": np.mean([embs[f] for f in FL], 0),
            "tta_h": (embs["id"] + embs["h"]) / 2,
            "allbank": e_allbank,
        }
        for name, emb in V.items():
            for norm in ["none", "l2"]:
                x = normalize_embeddings(emb, norm)
                r = clustering_scores(truth, cluster_embeddings(x, k, "ward", 0))
                sub = subset_nmis(truth, x, k)
                print(
                    ds.name,
                    name,
                    norm,
                    f"full {r['nmi']:.3f}/{r['f1']:.3f} subsets {np.mean(sub):.3f}±{np.std(sub):.3f}",
                    flush=True,
                )
