"""A second, closer look: crop each image around where its weights peak and embed the crop too.

MTD's defects cover about 9% of an image, so at the default 288 px resize a blowhole or a fray
falls on a handful of patches. Here each image is cropped again from its file: a box of a share
of its width and height (default one half), centred on the peak of its lightly smoothed weight
map, resized to the default input size and run through the same backbone. The crop's patches
are scored and weighted like the whole image's: against the set's other crops (unsupervised),
or against crops of the normal images at the 3 x 3 grid of centres 1/4, 1/2, 3/4 (reference),
whitened by those; the crops' border ring is left out as usual. Variants: the crop's embedding
alone; the whole-image and the crop embeddings concatenated, each divided by its spread over
the set; the same with each half l2-normalised. As a control, crops at random centres, to tell
a closer look at the defect from the gain any second embedding might bring. An exploration
(docs/RESULTS.md, section 10), not part of the tool. Crop bags are kept in /tmp/exp/zoomcache
(delete it when the defaults change: the crops' centres come from the default weights).

    PYTHONPATH=src python benchmarks/explore/zoom.py reference|unsupervised [SHARES [--no-control]]

SHARES (default 0.5; a comma-separated list) is the crop's side as a share of the image's;
with several, "peak all" concatenates the whole image and every crop. --no-control skips the
random-centre crops. --within pools the unsupervised weighting's whole-image and crop
embeddings with the within-image whitening of section 11 (the default since then; the
section 10 numbers were measured without it).
"""

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings, l2, spread_scaled

from anoclust.estimator import embedding_whitening, patch_scores, patch_space, pool_bags
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()
SHARES = [float(v) for v in sys.argv[2].split(",")] if len(sys.argv) > 2 else [0.5]  # crop side / image side
CONTROL = "--no-control" not in sys.argv
WITHIN = "--within" in sys.argv
CACHE = Path("/tmp/exp/zoomcache")
_EXTRACTOR = CFG.extractor()


def peak_centres(weights: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """(N, 2) centres (x, y) in [0, 1] of each weight map's peak after Gaussian smoothing.

    Smoothing makes the peak that of a region of weight rather than of one patch."""
    n, m = weights.shape
    side = int(round(m**0.5))
    r = int(np.ceil(3 * sigma))
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    kernel = torch.from_numpy(np.outer(g, g)).float()[None, None]
    smooth = F.conv2d(torch.from_numpy(weights).float().view(n, 1, side, side), kernel, padding=r)
    idx = smooth.view(n, -1).argmax(1).numpy()
    return np.stack([(idx % side + 0.5) / side, (idx // side + 0.5) / side], 1)


def crop_bags(paths, centres: np.ndarray, share: float, key: str) -> np.ndarray:
    """Patch bags of the crops of side `share` at `centres` (boxes clamped inside the image)."""
    f = CACHE / f"{key}-{share}.npy"
    if f.exists():
        return np.load(f)
    size, arrays = CFG.image_size, []
    for p, (cx, cy) in zip(paths, centres):
        im = Image.open(p).convert("RGB")
        w, h = im.size
        bw, bh = share * w, share * h
        x0, y0 = np.clip(cx * w - bw / 2, 0, w - bw), np.clip(cy * h - bh / 2, 0, h - bh)
        crop = im.crop((int(x0), int(y0), int(x0 + bw), int(y0 + bh))).resize((size, size), Image.BILINEAR)
        arrays.append(np.asarray(crop, dtype=np.float32).transpose(2, 0, 1) / 255.0)
    arrays = np.stack(arrays)
    bags = np.concatenate([_EXTRACTOR.embed_arrays(arrays[i : i + 16]) for i in range(0, len(arrays), 16)])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(f, bags)
    return bags


def normal_crop_bags(e, share: float) -> np.ndarray | None:
    normals = e.dataset.images.normals
    if not normals:
        return None
    grid = [(x, y) for y in (0.25, 0.5, 0.75) for x in (0.25, 0.5, 0.75)]
    return crop_bags([p for p in normals for _ in grid], np.array(grid * len(normals)), share,
                     f"{e.dataset.name}-normals")


def variants(e, space, scores, seed):
    weighting = sys.argv[1]

    def pooling_map(bags, bag_space):
        if WITHIN:
            return embedding_whitening(bag_space, weighting, bags, True, CFG.max_bank, seed)
        return bag_space.whitening

    whole, weights = pool_bags(e.bags, weighting, scores, CFG.tau, True, None, pooling_map(e.bags, space))
    paths = e.dataset.images.paths
    assert len(paths) == len(whole), "study sets have no unreadable images"
    centres = {"peak": peak_centres(weights)}
    if CONTROL:
        centres["random"] = np.random.default_rng(seed).uniform(0, 1, (len(paths), 2))
    out, peak_crops = {"default": whole}, []
    for share in SHARES:
        normal_bags = normal_crop_bags(e, share) if weighting == "reference" else None
        tag = f" {share}" if len(SHARES) > 1 else ""
        for how, c in centres.items():
            bags = crop_bags(paths, c, share, f"{e.dataset.name}-{weighting}-{seed}-{how}")
            crop_space = patch_space(bags.shape[1], weighting, normal_bags, CFG.border, CFG.whiten, CFG.max_bank, seed)
            s = patch_scores(bags, weighting, normal_bags, CFG.n_sampled, CFG.max_bank, seed, crop_space)
            crop = pool_bags(bags, weighting, s, CFG.tau, True, None, pooling_map(bags, crop_space))[0]
            out[f"{how} crop{tag}"] = crop
            out[f"{how} both{tag}"] = np.concatenate([spread_scaled(whole), spread_scaled(crop)], 1)
            out[f"{how} both l2{tag}"] = np.concatenate([l2(whole), l2(crop)], 1)
            if how == "peak":
                peak_crops.append(spread_scaled(crop))
    if len(SHARES) > 1:
        out["peak all"] = np.concatenate([spread_scaled(whole)] + peak_crops, 1)
    return out


if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
