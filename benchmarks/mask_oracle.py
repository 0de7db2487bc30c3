"""Where VisA's NMI is lost: the patch weights or the description?

    python benchmarks/mask_oracle.py [--subsets 10]

For the VisA study sets (their pixel masks are in labels.csv), the reference weighting's
descriptions are pooled two ways: by the patch scores, as the tool does, and by the ground-truth
mask (each patch weighted by the share of its pixels inside the mask), which no label-free
method can beat at finding the defect. Each is described by the deepest tap, l2-normalised (the
weighted pooling's description with normals), by every tap unnormalised, and by the residual
pooling (the top patches minus their nearest normal patches, every tap unnormalised). The images are squashed to
the square input (`--aspect squash`), on whose grid the masks are laid. A line gives the NMI on the
full set and the mean over it and the random 90% subsets (k given), as studyset.nmis does.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
from pathlib import Path

import numpy as np

import studyset
from anoclust import fit
from anoclust.inputs.decode import load_mask
from anoclust.metrics import clustering_scores
from anoclust.settings import Params
from anoclust.weighting.pooling import weighted_average
from anoclust.weighting.residual import residual_average


def mask_weights(paths: list[str], masks: dict[str, Path], n_patches: int, size: int) -> np.ndarray:
    """(N, M) share of each patch's pixels inside the image's mask, on the squashed square grid."""
    side = int(round(np.sqrt(n_patches)))
    cell = size // side
    out = np.stack([load_mask(masks[str(Path(p).resolve())], size)[: side * cell, : side * cell]
                    .reshape(side, cell, side, cell).mean((1, 3)).ravel() for p in paths])
    return out.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subsets", type=int, default=10)
    args = ap.parse_args()
    params = Params(weighting="reference", aspect="squash")  # the masks are laid on the square grid
    for dataset in studyset.real_sets():
        root = studyset.DATA / "visa" / dataset.name
        if not (root / "labels.csv").is_file():
            continue
        with open(root / "labels.csv", newline="") as f:
            masks = {str((root / r["path"]).resolve()): root / r["mask"] for r in csv.DictReader(f) if r["mask"]}
        data = studyset.embed(dataset, params)
        s, descs = studyset._descriptions(data, params)
        default = descs[0]  # the weighted pooling: with normals the choice keeps it on these sets
        paths = [dataset.images.paths[j] for j in s.order]
        by_mask = mask_weights(paths, masks, s.bags.shape[1], params.image_size)
        by_mask /= np.maximum(by_mask.sum(1, keepdims=True), 1e-12)
        k = dataclasses.replace(params, n_clusters=len(set(s.truth)))
        rows = [np.arange(len(s.truth))] + studyset.subset_rows(len(s.truth), args.subsets)
        for source, weights in (("patch scores", default.weights), ("true mask", by_mask)):
            embeddings = weighted_average(s.bags, weights)
            if s.weighting.embedding_map is not None:
                embeddings = s.weighting.embedding_map(embeddings)
            state = s.weighting.state
            residuals = residual_average(s.bags, weights, state.bank, state.whitening)
            for taps, x, start, normalize in (("deepest tap, l2", embeddings, default.embed_from, "l2"),
                                              ("every tap, none", embeddings, 0, "none"),
                                              ("residual, every tap, none", residuals, 0, "none")):
                d = dataclasses.replace(default, embeddings=x[:, start:], weights=weights, normalize=normalize)
                v = [clustering_scores(s.truth[r], fit.cluster_best([d], s.weighting, k, r)[1].labels)["nmi"]
                     for r in rows]
                print(f"{dataset.name}: weights from {source}, {taps}: NMI {v[0]:.3f} (mean {np.mean(v):.3f})",
                      flush=True)
        studyset.forget()


if __name__ == "__main__":
    main()
