"""Aspect-preserving input on MTD, against the square resize (an exploration, not in the tool).

    PYTHONPATH=src python benchmarks/explore_aspect.py --out docs/explore_aspect.md

MTD tiles are far from square (width / height 0.36-2.68). Modes: `square` (224 x 224, the resize of the tool at that size),
`short` (shorter side 224, the other proportional) and `area` (the image's own aspect ratio at
the area of 224 x 224). Each image then has its own patch grid, so the bags are ragged: they are
kept as a list and scored one image at a time with the package's own pieces (whitening fitted on
all normal patches, a 3-ring border per grid, nearest-normal distances, the standardised
softmax), the same steps as the default reference weighting. Reported: full-set NMI / F1 and the
NMI over 10 random 90% subsets, with and without L2-normalised embeddings.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anoclust.clustering import cluster_embeddings, normalize_embeddings  # noqa: E402
from anoclust.evaluation import mtd_dataset  # noqa: E402
from anoclust.extract import PatchExtractor  # noqa: E402
from anoclust.images import load_image  # noqa: E402
from anoclust.metrics import clustering_scores  # noqa: E402
from anoclust.patch_space import PatchSpace, Whitening  # noqa: E402
from anoclust.patches import aggregate_patches  # noqa: E402
from anoclust.pipeline import ClusterSettings  # noqa: E402
from anoclust.weighting import reference_scores, softmax_weights  # noqa: E402
from studyset import MTD, subset_nmis  # noqa: E402

SIZE = 224


def load(path: str, mode: str) -> np.ndarray:
    if mode == "square":
        return load_image(path, SIZE)
    if mode == "short":
        return load_image(path, SIZE, keep_aspect=True)
    w, h = Image.open(path).size
    return load_image(path, max(16, round(SIZE * np.sqrt(min(w, h) / max(w, h)))), keep_aspect=True)


@torch.inference_mode()
def ragged_bags(extractor: PatchExtractor, paths: list[str], mode: str) -> list[tuple[np.ndarray, tuple[int, int]]]:
    out = []
    for p in paths:
        maps = extractor.model(extractor._normalise(load(p, mode)[None]))
        # float16 like the cached bags of the tool, so `square` reproduces it
        out.append((aggregate_patches(maps)[0].to(torch.float16).numpy(), tuple(maps[0].shape[-2:])))
    return out


def interior(grid: tuple[int, int], border: int) -> np.ndarray:
    """The package's border rule (interior_mask) on a rectangular grid: ring <= side // 8."""
    h, w = grid
    mask = np.zeros(grid, dtype=bool)
    rh, rw = min(border, h // 8), min(border, w // 8)
    mask[rh : h - rh, rw : w - rw] = True
    return mask.ravel()


def embeddings(bags, normal_bags, settings: ClusterSettings) -> np.ndarray:
    whitening = Whitening.fit(np.concatenate([b for b, _ in normal_bags]))
    bank = np.concatenate([b[interior(g, settings.border)] for b, g in normal_bags])
    out = []
    for bag, grid in bags:
        space = PatchSpace(interior(grid, settings.border), whitening)
        s = reference_scores(bag[None], bank, space=space)
        w = softmax_weights(s, settings.tau, settings.standardize)[0]
        out.append(whitening(w @ bag))
    return np.stack(out)


def scores(truth: np.ndarray, x: np.ndarray, k: int, subsets: int) -> tuple[dict, list[float]]:
    return clustering_scores(truth, cluster_embeddings(x, k, "ward", 0)), subset_nmis(truth, x, k, subsets=subsets)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="explore_aspect.md")
    ap.add_argument("--modes", default="square,short,area")
    ap.add_argument("--subsets", type=int, default=10)
    args = ap.parse_args()
    images = mtd_dataset(MTD).images
    truth = np.asarray(images.labels)
    k = len(set(images.labels))
    settings = ClusterSettings()
    extractor = PatchExtractor(settings.extractor().config)
    lines = ["| input | normalisation | NMI / F1 | NMI over subsets |", "|---|---|---|---|"]
    for mode in args.modes.split(","):
        t = time.perf_counter()
        bags = ragged_bags(extractor, images.paths, mode)
        normal_bags = ragged_bags(extractor, images.normals, mode)
        grids = sorted({g for _, g in bags})
        seconds = time.perf_counter() - t
        print(f"{mode}: {len(grids)} grid shapes, {grids[0]} .. {grids[-1]}; {seconds:.0f} s", flush=True)
        emb = embeddings(bags, normal_bags, settings)
        for norm in ("none", "l2"):
            full, sub = scores(truth, normalize_embeddings(emb, norm), k, args.subsets)
            lines.append(f"| {mode} | {norm} | {full['nmi']:.3f} / {full['f1']:.3f} | "
                         f"{np.mean(sub):.3f}±{np.std(sub):.3f} |")
            print(lines[-1], flush=True)
    Path(args.out).write_text(
        f"Reference weighting, tau {settings.tau}, border {settings.border}, whitening; "
        f"generated {time.strftime('%Y-%m-%d %H:%M')} by `benchmarks/explore_aspect.py`.\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
