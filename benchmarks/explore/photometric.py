"""Each image's brightness and contrast put on a common scale before the backbone (section 13).

l2 on the embeddings lifts MTD (section 9), which suggests the embeddings' length carries a
nuisance there; MTD's tiles were shot under different lighting, so one candidate is each image's
overall brightness and contrast. Here that nuisance is removed at the source: before the
backbone each channel of each image (defect and normal images alike) is shifted to the ImageNet
mean ("brightness"), or shifted and scaled to the ImageNet mean and spread ("brightness and
contrast"). A small defect barely moves its image's statistics, so its contrast to its
surroundings is kept; a defect that covers the image is rescaled with it.

Then the default steps (patch space, scores, whitening, pooling, Ward). Prints full-set NMI and,
in brackets, the mean over the 10 random 90% subsets; seed 0 for the reference weighting,
seeds 0-2 for the unsupervised one. An exploration, not part of the tool.

    PYTHONPATH=src python benchmarks/explore/photometric.py
"""

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import study_sets, subset_rows

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import embedding_whitening, patch_scores, patch_space, pool_bags
from anoclust.extract import PatchExtractor
from anoclust.images import load_image
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()
MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
SPREAD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]


def brightness(a: np.ndarray) -> np.ndarray:
    return a - a.mean((1, 2), keepdims=True) + MEAN


def brightness_contrast(a: np.ndarray) -> np.ndarray:
    return (a - a.mean((1, 2), keepdims=True)) / (a.std((1, 2), keepdims=True) + 1e-6) * SPREAD + MEAN


MODES = {"default": lambda a: a, "brightness": brightness, "brightness and contrast": brightness_contrast}


def bags(paths, mode, extractor, pool) -> dict:
    images = np.stack(list(pool.map(lambda p: load_image(p, CFG.image_size), paths)))
    out = {}
    for name, fn in MODES.items():
        if mode and name != mode:
            continue
        arr = np.stack([fn(a) for a in images])
        out[name] = np.concatenate([extractor.embed_arrays(arr[i : i + 16]) for i in range(0, len(arr), 16)])
    return out


def main() -> None:
    extractor = PatchExtractor(CFG.extractor().config)
    totals: dict = {}
    with ThreadPoolExecutor(2) as pool:
        for ds in study_sets(Path("/tmp/exp/studywork")):
            truth, k = np.array(ds.images.labels), len(set(ds.images.labels))
            rows = [np.arange(len(truth))] + subset_rows(len(truth))
            defect, normal = bags(ds.images.paths, None, extractor, pool), bags(ds.images.normals, None, extractor, pool)
            for weighting, seeds in (("reference", [0]), ("unsupervised", [0, 1, 2])):
                cells = []
                for mode in MODES:
                    b, nb = defect[mode], normal[mode]
                    runs = []
                    for seed in seeds:
                        space = patch_space(b.shape[1], weighting, nb, CFG.border, CFG.whiten, CFG.max_bank, seed)
                        s = patch_scores(b, weighting, nb, CFG.n_sampled, CFG.max_bank, seed, space)
                        w = embedding_whitening(space, weighting, b, CFG.whiten, CFG.max_bank, seed)
                        x = pool_bags(b, weighting, s, CFG.tau, CFG.standardize, None, w)[0]
                        runs.append([clustering_scores(truth[r], cluster_embeddings(x[r], k, "ward", seed))["nmi"]
                                     for r in rows])
                    runs = np.array(runs)
                    key = (weighting, mode)
                    totals[key] = totals.get(key, 0.0) + runs[:, 1:].mean()
                    cells.append(f"{mode}: {runs[:, 0].mean():.3f} ({runs[:, 1:].mean():.3f})")
                print(ds.name, weighting, " | ".join(cells), flush=True)
    print("sum of subset means", {f"{w}, {m}": round(v, 3) for (w, m), v in totals.items()})


if __name__ == "__main__":
    main()
