"""AdaBN: the backbone's BatchNorm statistics re-estimated on the set's own images.

MTD's grey tiles are far from ImageNet's photographs, whose channel statistics the backbone's
BatchNorm layers hold. Re-estimating them on the set's images (defects and normals, no labels;
a cumulative average over one pass) is a training-free domain adaptation; the features are then
extracted again (no cache) and scored, pooled and clustered as the default. An exploration
(docs/RESULTS.md, section 12), not part of the tool; MTD unless other study sets are named.

    PYTHONPATH=src python benchmarks/explore/adabn.py reference|unsupervised [mtd,local,...]
"""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings, l2

from anoclust.estimator import embedding_whitening, patch_scores, patch_space, pool_bags
from anoclust.extract import EmbeddingConfig, PatchExtractor
from anoclust.images import load_image
from anoclust.pipeline import ClusterSettings

cfg = ClusterSettings()
W = sys.argv[1]
MEMO: dict = {}


def adapted_extractor(paths: list) -> PatchExtractor:
    ex = PatchExtractor(EmbeddingConfig(cfg.backbone, None, cfg.image_size), cache_dir=None, quiet=True)
    model = ex.model
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the whole pass
        m.train()
    order = np.random.default_rng(0).permutation(len(paths))
    with torch.no_grad():
        for s in range(0, len(order), 32):
            batch = np.stack([load_image(paths[i], cfg.image_size) for i in order[s:s + 32]])
            model(ex._normalise(batch))
    model.eval()
    return ex


def adapted(e) -> tuple:
    """(bags, normal bags) of e's dataset with adapted statistics, once per dataset."""
    key = e.dataset.name
    if key not in MEMO:
        imgs = e.dataset.images
        paths = list(imgs.paths) + list(imgs.normals or [])
        ex = adapted_extractor(paths)
        bags = ex.extract(imgs.paths).bags
        nb = ex.extract(imgs.normals).bags if imgs.normals else None
        MEMO[key] = (bags, nb)
    return MEMO[key]


def variants(e, space, scores, seed):
    wh = embedding_whitening(space, W, e.bags, True, cfg.max_bank, seed)
    out = {"default": pool_bags(e.bags, W, scores, cfg.tau, True, None, wh)[0]}
    bags, nb = adapted(e)
    assert len(bags) == len(e.bags)
    sp = patch_space(bags.shape[1], W, nb, cfg.border, True, cfg.max_bank, seed)
    s = patch_scores(bags, W, nb, cfg.n_sampled, cfg.max_bank, seed, sp)
    w2 = embedding_whitening(sp, W, bags, True, cfg.max_bank, seed)
    x = pool_bags(bags, W, s, cfg.tau, True, None, w2)[0]
    out["adabn"] = x
    out["adabn, l2"] = l2(x)
    return out


if __name__ == "__main__":
    compare_embeddings(W, variants, only=(sys.argv[2] if len(sys.argv) > 2 else "mtd").split(","))
