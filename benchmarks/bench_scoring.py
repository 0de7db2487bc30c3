"""Patch scoring cost per image: exact float32 search against the bfloat16 one, as M, K and the
bank grow, with this machine's float32 and bfloat16 matmul rates measured in the same run.

    python benchmarks/bench_scoring.py [--images 64] [--queries 16] [--rounds 3]

Unsupervised score: N random images of M = side^2 interior patches (sides 22, 30, 34: the
interior of the 224, 288 and 320 px inputs), K sampled images; reference score: one query image
against banks of P random patches. Each cell is the best of --rounds single-threaded timings
(the tool runs one such thread per core), exact and bfloat16 alternating, so a burst of load
hits both alike. "GFLOP/s" counts the float32 products the exact search does (2 M K M D per
image, 2 M P D for the reference), whichever search ran: the bfloat16 column is the rate the
exact search would need to match it.
"""

from __future__ import annotations

import argparse
import time

from _util import machine


def best_of(rounds: int, fn) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def mm_rate(dtype, size: int = 1024) -> float:
    import torch

    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    return 2.0 * size**3 / best_of(5, lambda: torch.mm(a, b)) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64, help="images in the set (N)")
    ap.add_argument("--queries", type=int, default=16, help="images scored per timing")
    ap.add_argument("--dim", type=int, default=128, help="patch dimension (D)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import torch

    from anoclust.weighting.reference import reference_scores
    from anoclust.weighting.unsupervised import unsupervised_flops, unsupervised_scores

    torch.set_num_threads(1)
    print(machine())
    print(f"one thread; float32 matmul {mm_rate(torch.float32):.0f} GFLOP/s, "
          f"bfloat16 matmul {mm_rate(torch.bfloat16):.0f} GFLOP/s (1024^3)\n")
    rng = np.random.default_rng(0)
    d, q = args.dim, args.queries
    print("| score | M | K or P | exact ms/image | bfloat16 ms/image | speed-up | exact GFLOP/s | bfloat16 GFLOP/s |")
    print("|---|---|---|---|---|---|---|---|")

    def row(name, m, size, flops, run):
        times = {}
        for search in ("exact", "bf16") * args.rounds:  # alternating
            times[search] = min(times.get(search, float("inf")), best_of(1, lambda: run(search)) / q)
        e, b = times["exact"], times["bf16"]
        print(f"| {name} | {m} | {size} | {e * 1e3:.1f} | {b * 1e3:.1f} | {e / b:.2f} | {flops / e / 1e9:.0f} |"
              f" {flops / b / 1e9:.0f} |", flush=True)

    for side in (22, 30, 34):
        m = side * side
        bags = np.abs(rng.normal(size=(args.images, m, d))).astype(np.float16)
        for k in ((16, 32, 64) if side == 30 else (32,)):
            flops = unsupervised_flops(args.images, m, d, k) / args.images
            row("unsupervised", m, f"K={k}", flops,
                lambda s, b=bags, k=k: unsupervised_scores(b, k, 0, np.arange(q), n_threads=1, search=s))
    m = 900
    query = rng.normal(size=(q, m, d)).astype(np.float16)
    for p in (25_000, 50_000, 100_000):
        bank = rng.normal(size=(p, d)).astype(np.float32)
        row("reference", m, f"P={p:,}", 2.0 * m * p * d,
            lambda s, bank=bank: reference_scores(query, bank, n_threads=1, search=s))


if __name__ == "__main__":
    main()
