"""Four ways to let the border ring back into the reference weighting.

benchmarks/mask_ceiling.py shows that on MTD 19% of the defect masks lie wholly in the border
ring the default leaves out (40% of the breaks, 21% of the blowholes), and that pooling over the
true masks including the ring would score far higher than over their interior part. Each mode
here tries to make the ring's scores trustworthy, scored with borders 0, 1 and 3 (and l2 at 3):

- pad: the resized image is reflect-padded by 32 px before the network and the patch grid
  cropped back, so no patch of the image sees the network's zero padding;
- window: a patch is scored against the normal patches within 2 or 6 grid cells of its own
  position (all positions kept, whitening as the default) instead of against all of them;
- augment: the normal bank gains the normals' flips, or flips and quarter turns;
- calibrate: every patch is matched against the whole normal bank, ring patches included; the
  interior keeps its scores, while a ring patch's score is replaced by its robust z-score among
  the set's patches at the same position, mapped onto the interior's median and spread (the
  position normalisation of the tool's --position-norm, on the ring only). Here "border b"
  is the width of the calibrated ring and no patch is left out (border 0: plain scores).

An exploration (docs/RESULTS.md, section 9), not part of the tool. Bags of padded or
augmented images are kept in /tmp/exp/edgecache.

    PYTHONPATH=src python benchmarks/explore/edges.py pad|window|augment|calibrate
"""

import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import embed, score, study_sets, subset_nmis

from anoclust.clustering import cluster_embeddings, normalize_embeddings
from anoclust.estimator import patch_scores, patch_space
from anoclust.evaluation import Embedded
from anoclust.extract import EmbeddingConfig, PatchExtractor
from anoclust.images import load_image
from anoclust.metrics import clustering_scores
from anoclust.patch_space import interior_mask
from anoclust.patches import aggregate_patches
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import position_statistics, softmax_weights

CFG = ClusterSettings()
EXTRACTOR = PatchExtractor(EmbeddingConfig(CFG.backbone, None, CFG.image_size), quiet=True)
PAD = 32  # pixels; a multiple of the deepest tap's stride, so the grid crops cleanly
FLIPS = [lambda a: a[:, :, ::-1], lambda a: a[:, ::-1, :], lambda a: a[:, ::-1, ::-1]]
TURNS = [lambda a: np.rot90(a, 1, (1, 2)), lambda a: np.rot90(a, 3, (1, 2))]


def cached(paths: list, tag: str, make) -> np.ndarray:
    key = hashlib.sha1(("|".join(map(str, paths)) + tag).encode()).hexdigest()[:16]
    f = Path(f"/tmp/exp/edgecache/{key}.npy")
    if not f.exists():
        f.parent.mkdir(parents=True, exist_ok=True)
        np.save(f, make(paths))
    return np.load(f)


def padded_bags(paths: list) -> np.ndarray:
    out = []
    for s in range(0, len(paths), 16):
        x = EXTRACTOR._normalise(np.stack([load_image(p, CFG.image_size) for p in paths[s : s + 16]]))
        with torch.inference_mode():
            b = aggregate_patches(EXTRACTOR.model(F.pad(x, [PAD] * 4, mode="reflect")))
        side, c = int(round(b.shape[1] ** 0.5)), PAD // EXTRACTOR.model.feature_info[0].stride
        b = b.view(len(x), side, side, -1)[:, c : side - c, c : side - c].reshape(len(x), -1, b.shape[-1])
        out.append(b.to(torch.float16).numpy())
    return np.concatenate(out)


def augmented_bags(paths: list, maps: list) -> np.ndarray:
    imgs = np.stack([np.ascontiguousarray(t(load_image(p, CFG.image_size))) for p in paths for t in maps])
    return np.concatenate([EXTRACTOR.embed_arrays(imgs[s : s + 16]) for s in range(0, len(imgs), 16)])


def windowed_scores(z: np.ndarray, normals: np.ndarray, reach: int) -> np.ndarray:
    """Distance of each patch to the nearest normal patch within `reach` cells of its position."""
    n, m, d = z.shape
    side = int(round(m**0.5))
    q, bank = torch.from_numpy(z).view(n, side, side, d), torch.from_numpy(normals).view(-1, side, side, d)
    out = np.zeros((n, m), np.float32)
    for r in range(side):
        for c in range(side):
            near = bank[:, max(0, r - reach) : r + reach + 1, max(0, c - reach) : c + reach + 1].reshape(-1, d)
            out[:, r * side + c] = torch.cdist(q[:, r, c], near).min(1).values.numpy()
    return out


def report(name: str, cells: dict, totals: dict) -> None:
    variant = name.split(" ", 1)[1]
    for k, v in cells.items():
        totals[f"{variant}, {k}"] = totals.get(f"{variant}, {k}", 0.0) + v[1]
    print(name, " | ".join(f"{k}: {full:.3f} ({sub:.3f})" for k, (full, sub) in cells.items()), flush=True)


def main() -> None:
    mode = sys.argv[1]
    # the embedding of the time (all taps; docs/RESULTS.md section 14 came later)
    configs = {f"border {b}": ClusterSettings(border=b, embed_taps="all", normalize="none", method="ward") for b in (0, 1, 3)}
    configs["border 3, l2"] = ClusterSettings(embed_taps="all", normalize="l2", method="ward")
    totals: dict = {}
    for ds in study_sets(Path("/tmp/exp/studywork")):
        e = embed(ds, CFG, "/tmp/anoclust-cache")
        if e.normal_bags is None:
            continue
        paths, normals = list(ds.images.paths), list(ds.images.normals)
        variants = {}
        if mode == "pad":
            variants["reflect 32 px"] = Embedded(ds, cached(paths, "pad", padded_bags), e.truth,
                                                 cached(normals, "pad", padded_bags))
        elif mode == "augment":
            for tag, maps in (("flips", FLIPS), ("flips+turns", FLIPS + TURNS)):
                extra = cached(normals, tag, lambda p, maps=maps: augmented_bags(p, maps))
                variants[tag] = Embedded(ds, e.bags, e.truth, np.concatenate([e.normal_bags, extra]))
        if mode in ("pad", "augment"):
            for tag, data in variants.items():
                cells = {}
                for name, cfg in configs.items():
                    r = score(data, cfg, "reference", [0], subsets=10)
                    cells[name] = (r["nmi"][0], r["nmi_sub"][0])
                report(f"{ds.name} {tag}", cells, totals)
            continue
        space = patch_space(e.bags.shape[1], "reference", e.normal_bags, 0, True, CFG.max_bank, 0)
        z, zn = space.whitening(e.bags.astype(np.float32)), space.whitening(e.normal_bags.astype(np.float32))
        truth, k = np.array(e.truth), len(set(e.truth))
        if mode == "window":
            scored = {f"window {reach}": windowed_scores(z, zn, reach) for reach in (2, 6)}
        else:
            scored = {"calibrate": patch_scores(e.bags, "reference", e.normal_bags, CFG.n_sampled, CFG.max_bank, 0,
                                                space)}
        for tag, s in scored.items():
            cells = {}
            for name, cfg in configs.items():
                inner = interior_mask(s.shape[1], cfg.border)
                if mode == "calibrate":
                    med, spread = position_statistics(s)
                    level = np.median(s[:, inner])
                    ring = level + (s - med) / spread * np.median(np.abs(s[:, inner] - level))
                    alpha = softmax_weights(np.where(inner, s, ring), CFG.tau, True)
                else:
                    alpha = softmax_weights(np.where(inner, s, np.nan), CFG.tau, True)
                x = normalize_embeddings(np.einsum("nm,nmd->nd", alpha, z), cfg.normalize)
                full = clustering_scores(truth, cluster_embeddings(x, k))["nmi"]
                cells[name] = (full, float(np.mean(subset_nmis(truth, x, k))))
            report(f"{ds.name} {tag}", cells, totals)
    print("sum of subset means", {k: round(v, 3) for k, v in totals.items()})


if __name__ == "__main__":
    main()
