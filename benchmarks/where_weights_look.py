"""Where the weights look on MTD: share of the patch weights inside the defect masks.

    PYTHONPATH=src python benchmarks/where_weights_look.py --out docs/where_weights_look.md

For each weighting (and settings), alpha is summed over the patch cells weighted by the part of
each cell the defect mask covers (masks resized to the input size, averaged over each cell),
and compared with the share of the image the mask covers. 1.0 means every weight is on the
defect; equal to the mask area means no better than uniform.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anoclust.estimator import patch_scores, patch_space, pool_bags  # noqa: E402
from anoclust.evaluation import mtd_dataset  # noqa: E402
from anoclust.images import load_mask  # noqa: E402
from anoclust.pipeline import ClusterSettings  # noqa: E402
from anoclust.weighting import position_statistics  # noqa: E402
from studyset import MTD, embed  # noqa: E402


def mask_cells(paths, size: int, grid: tuple[int, int]) -> np.ndarray:
    """(N, M) share of each patch cell covered by the defect mask."""
    masks = torch.from_numpy(np.stack([load_mask(p, size) > 0.5 for p in paths]).astype(np.float32))
    return F.adaptive_avg_pool2d(masks[:, None], grid).flatten(1).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="where_weights_look.md")
    ap.add_argument("--cache", default="/tmp/anoclust-cache")
    ap.add_argument("--image-size", type=int, default=ClusterSettings().image_size)
    args = ap.parse_args()
    d = mtd_dataset(MTD)
    plain = dict(border=0, whiten=False)
    configs = {
        "paper: tau 1, raw scores": ClusterSettings(tau=1.0, standardize=False, **plain),
        "previous default: tau 1, standardised": ClusterSettings(tau=1.0, **plain),
        "position norm, tau 0.25 (flags)": ClusterSettings(tau=0.25, position_norm=True, **plain),
        "tau 0.5, border 3, whitening (default)": ClusterSettings(),
    }
    lines = ["| settings | weighting | alpha inside mask | mask area | ratio | largest weight on the outer patch ring |",
             "|---|---|---|---|---|---|"]
    # every configuration shares the backbone and input size, hence the bags and the scores
    base = ClusterSettings(image_size=args.image_size)
    data = embed(d, base, args.cache)
    side = int(round(data.bags.shape[1] ** 0.5))
    cells = mask_cells(d.images.masks, base.image_size, (side, side))
    area = float(cells.mean())
    ring = np.zeros((side, side), bool)
    ring[0] = ring[-1] = ring[:, 0] = ring[:, -1] = True
    ring = ring.ravel()
    weightings = ("uniform", "max", "unsupervised", "reference")
    memo: dict = {}
    for name, cfg in configs.items():
        for w in weightings:
            if (w, cfg.border, cfg.whiten) not in memo:
                space = patch_space(data.bags.shape[1], w, data.normal_bags, cfg.border, cfg.whiten, base.max_bank, 0)
                memo[w, cfg.border, cfg.whiten] = patch_scores(
                    data.bags, w, data.normal_bags, base.n_sampled, base.max_bank, 0, space)
            scores = memo[w, cfg.border, cfg.whiten]
            stats = position_statistics(scores) if cfg.position_norm and scores is not None else None
            _, alpha = pool_bags(data.bags, w, scores, cfg.tau, cfg.standardize, stats)
            inside = float((alpha * cells).sum(1).mean())
            top = "-" if scores is None else f"{ring[alpha.argmax(1)].mean():.2f}"
            lines.append(f"| {name} | {w} | {inside:.3f} | {area:.3f} | {inside / area:.2f} | {top} |")
            print(lines[-1], flush=True)
    Path(args.out).write_text(f"{base.backbone} @ {base.image_size} px.\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
