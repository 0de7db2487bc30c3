"""Unsupervised patch scoring: achieved FLOP rate against this machine's float32 matmul rate.

    python benchmarks/bench_scoring.py [--images 64] [--queries 32] [--k 32] [--rounds 5]

Counts only the distance products, 2*M*K*M*D floating-point operations per scored image. The
reference rate and the scoring rate are measured alternately in the same run and the best of
each is kept, so a burst of load from other processes hurts both the same way.
"""

from __future__ import annotations

import argparse
import time

from _util import machine, matmul_rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64, help="images in the set (N)")
    ap.add_argument("--queries", type=int, default=32, help="images scored per round")
    ap.add_argument("--k", type=int, default=32, help="other images sampled per image (K)")
    ap.add_argument("--patches", type=int, default=784, help="patches per image (M)")
    ap.add_argument("--dim", type=int, default=128, help="patch dimension (D)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    import numpy as np

    from anoclust.weighting.unsupervised import unsupervised_flops, unsupervised_scores

    rng = np.random.default_rng(0)
    bags = np.abs(rng.normal(size=(args.images, args.patches, args.dim))).astype(np.float16)
    queries = np.arange(args.queries)
    flops = unsupervised_flops(args.images, args.patches, args.dim, args.k) * args.queries / args.images
    unsupervised_scores(bags, args.k, 0, indices=queries[:2])  # warm-up
    best_ref = best_score = 0.0
    for _ in range(args.rounds):
        best_ref = max(best_ref, matmul_rate())
        start = time.perf_counter()
        unsupervised_scores(bags, args.k, 0, indices=queries)
        best_score = max(best_score, flops / (time.perf_counter() - start) / 1e9)
    print(machine())
    print(f"N={args.images} M={args.patches} D={args.dim} K={args.k}, {args.queries} images scored per round")
    print(f"float32 matmul (2048^3, torch):  {best_ref:7.1f} GFLOP/s")
    print(f"unsupervised scoring:            {best_score:7.1f} GFLOP/s")
    print(f"ratio: {best_score / best_ref:.2f}  (target >= 0.6)")


if __name__ == "__main__":
    main()
