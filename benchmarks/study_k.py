"""K, the number of sampled other images in the unsupervised score, against the exact mean (MTD).

    PYTHONPATH=src python benchmarks/study_k.py --out docs/study_k.md [--ks 8,16,32,64]

For each K: time of the scores, their correlation with the exact all-pairs scores, and the
clustering NMI / F1 with the default settings (mean ± spread over seeds).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anoclust.estimator import patch_space  # noqa: E402
from anoclust.evaluation import mtd_dataset  # noqa: E402
from anoclust.pipeline import ClusterSettings  # noqa: E402
from anoclust.weighting import unsupervised_scores  # noqa: E402
from studyset import MTD, embed, memoised_scores, score  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="study_k.md")
    ap.add_argument("--cache", default="/tmp/anoclust-cache")
    ap.add_argument("--ks", default="8,16,32,64")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--no-exact", action="store_true", help="skip the exact all-pairs scores (slow)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    cfg = ClusterSettings()
    data = embed(mtd_dataset(MTD), cfg, args.cache)
    n = len(data.bags)
    # The default border ring: ring patches are neither scored nor matched (NaN).
    space = patch_space(data.bags.shape[1], "unsupervised", None, cfg.border)
    exact = None
    if not args.no_exact:
        t = time.perf_counter()
        exact = unsupervised_scores(data.bags, n_sampled=n, space=space)
        t_exact = time.perf_counter() - t
    lines = ["| K | seconds (one seed) | correlation with exact | NMI | F1 |", "|---|---|---|---|---|"]
    for k in [int(x) for x in args.ks.split(",")]:
        t = time.perf_counter()
        sampled = unsupervised_scores(data.bags, n_sampled=k, random_state=seeds[0], space=space)
        seconds = time.perf_counter() - t
        scored = np.isfinite(sampled)
        corr = "-" if exact is None else f"{np.corrcoef(sampled[scored], exact[scored])[0, 1]:.4f}"
        r = score(data, replace(cfg, n_sampled=k), "unsupervised", seeds)
        lines.append(f"| {k} | {seconds:.0f} | {corr} | {r['nmi'][0]:.3f}±{r['nmi'][1]:.3f} | "
                     f"{r['f1'][0]:.3f}±{r['f1'][1]:.3f} |")
        print(lines[-1], flush=True)
    if exact is not None:
        exact_cfg = replace(cfg, n_sampled=n)
        memoised_scores(data, exact_cfg, "unsupervised", seeds[0], exact)  # score() must not compute them again
        r = score(data, exact_cfg, "unsupervised", seeds[:1])
        lines.append(f"| exact ({n - 1}) | {t_exact:.0f} | 1 | {r['nmi'][0]:.3f} | {r['f1'][0]:.3f} |")
        print(lines[-1])
    Path(args.out).write_text(f"Settings: {cfg.backbone} @ {cfg.image_size}, tau {cfg.tau}, border {cfg.border}, "
                              f"position norm {cfg.position_norm}; seeds {args.seeds}.\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
