"""Is the features.13 embedding's loss on `texture` one unlucky image? (docs/RESULTS.md, section 13)

The study's `texture` set is one draw of the synthetic generator (seed 1); this script draws four
more (seeds 2-5, written under /tmp/exp/seeds, the seed-1 set read from /tmp/exp/studywork) and
clusters each without normals with the default embedding, the embedding of features.13 alone
whitened by its own within-image covariance (tap_balance.py), and average pooling. Full-set
NMI, mean over seeds 0-2. An exploration, not part of the tool.

    PYTHONPATH=src python benchmarks/explore/texture_seeds.py [texture|local|variable]
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import SPLIT, embed, memoised_scores

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import pool_bags
from anoclust.evaluation import folder_dataset
from anoclust.metrics import clustering_scores
from anoclust.patch_space import within_image_whitening
from anoclust.pipeline import ClusterSettings
from anoclust.synthetic import make_labelled_folder

CFG = ClusterSettings()


def main(kind: str) -> None:
    for draw in range(1, 6):
        parent = Path("/tmp/exp/studywork") if draw == 1 else Path("/tmp/exp/seeds")
        root = parent / (kind if draw == 1 else f"{kind}-{draw}")
        normal = root.parent / f"{root.name}-normal"
        if not root.exists():
            make_labelled_folder(root, n_per_type=20, kind=kind, seed=draw, normal_root=normal)
        e = embed(folder_dataset(root, normal), CFG, "/tmp/anoclust-cache")
        truth, k = np.array(e.truth), len(set(e.truth))
        nmi: dict = {}
        for seed in (0, 1, 2):
            whitening, s = memoised_scores(e, CFG, "unsupervised", seed)
            high = e.bags[..., SPLIT:]
            x = {
                "default": pool_bags(e.bags, "unsupervised", s, CFG.tau, CFG.standardize, None, whitening)[0],
                "features.13, own whitening": pool_bags(high, "unsupervised", s, CFG.tau, CFG.standardize, None,
                                                        within_image_whitening(high, CFG.max_bank, seed))[0],
                "average pooling": pool_bags(e.bags, "uniform", None, CFG.tau, CFG.standardize)[0],
            }
            for name, emb in x.items():
                nmi.setdefault(name, []).append(clustering_scores(truth, cluster_embeddings(emb, k, "ward", seed))["nmi"])
        print(kind, f"draw {draw}", " | ".join(f"{n}: {np.mean(v):.3f}" for n, v in nmi.items()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "texture")
