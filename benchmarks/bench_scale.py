"""Wall time and peak memory of each stage as the number of images grows.

    python benchmarks/bench_scale.py --n 250 1000 4000 [10000]

Each N runs in a fresh process (so its peak memory is its own) on synthetic 224 px PNG images
with three defect types, with a cold (empty) feature cache, through the stages of anoclust.fit
at the default settings with the unsupervised weighting: extraction, scoring (fit.score: the
within-image whitening of the embeddings and the unsupervised scores), pooling (fit.descriptions),
clustering (fit.cluster: the projection onto 4 principal axes per cluster, then Ward; two-stage
above clustering.EXACT_WARD_MAX images).
"total" is the child's whole wall time from its start (imports and model loading included,
image generation excluded); "total CPU s" its CPU time
over all threads, which is what the run costs whatever the other load on the machine (on an
idle 2-core machine the wall time is at least half of it). Peak memory is the child's largest
resident set size during each stage, memory-mapped patch bags included. Also reported: NMI of
the labels against the true defect types, and NMI between two-stage and exact Ward on the same
embeddings (exact Ward runs at every N here, to compare). Images are generated once into
--data and reused. --aspect keep runs the aspect-preserving extraction (the images are square,
so it measures the mode's own cost: its 900-patch bags and the ring crop, not mixed shapes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

START = time.perf_counter()

from _util import PeakMemory, machine, synthetic_images  # noqa: E402

STAGES = ("extraction", "scoring", "pooling", "clustering")


def random_bags(n: int, seed: int = 0):
    """Stand-in patch bags of 3 types (network skipped) in the storage extraction would use."""
    import numpy as np

    from anoclust.features.extract import allocate_bags
    from anoclust.settings import DEFAULTS

    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 3
    centres = rng.normal(size=(3, 128)).astype(np.float32)
    side = -(-DEFAULTS["image_size"] // 8)  # the default backbone's stride-8 grid
    block = np.zeros((side, side), bool)
    block[side // 2 - 3 : side // 2 + 3, side // 2 - 3 : side // 2 + 3] = True  # inside the border ring
    defect = np.flatnonzero(block)
    bags = allocate_bags((n, side * side, 128), None)
    for s in range(0, n, 256):
        t = truth[s : s + 256]
        noise = rng.standard_normal((len(t), side * side, 128), dtype=np.float32)
        noise[:, defect] += 3 * centres[t][:, None, :]  # a "defect" region of 36 patches per image
        bags[s : s + 256] = noise
    return bags, list(truth)


def run_one(n: int, data: str, k_sampled: int, cache: str, random: bool = False, aspect: str = "squash") -> dict:
    paths, truth = ([], []) if random else synthetic_images(n, data)
    start = time.perf_counter()  # generation excluded from the total
    import numpy as np
    from sklearn.metrics import normalized_mutual_info_score

    from anoclust import clustering, fit
    from anoclust.features.extract import EmbeddingConfig, PatchExtractor
    from anoclust.settings import Params

    imports = start - START
    mem = PeakMemory()
    with mem.stage("extraction"):
        if random:
            bags, truth = random_bags(n)
        else:
            bags = PatchExtractor(EmbeddingConfig(aspect=aspect), cache_dir=cache).extract(paths).bags
    k = len(set(truth))
    # otherwise the defaults
    params = Params(n_clusters=k, weighting="unsupervised", n_sampled=k_sampled, aspect=aspect)
    with mem.stage("scoring"):
        weighting, scores = fit.score(bags, None, params)
    with mem.stage("pooling"):
        described = fit.descriptions(weighting, bags, scores, params)
    with mem.stage("clustering"):
        chosen, found, _ = fit.cluster_best(described, weighting, params)
    labels, embeddings = found.labels, chosen.embeddings
    total = time.perf_counter() - start + imports
    cpu_total = time.process_time()  # CPU seconds of the whole child, all threads
    mem.close()
    result = {
        "n": n,
        "random_bags": random,
        "k_sampled": k_sampled,
        "aspect": aspect,
        "pooling": chosen.pooling,
        "total_s": total,
        "cpu_total_s": cpu_total,
        "load_average": os.getloadavg(),
        "stages": mem.stages,
        "memmap": isinstance(bags, np.memmap),
        "two_stage": n > clustering.EXACT_WARD_MAX,
        "nmi_truth": normalized_mutual_info_score(truth, labels),
    }
    # Two-stage against exact Ward on the same embeddings (outside the timed stages).
    from sklearn.cluster import AgglomerativeClustering

    t = time.perf_counter()
    exact = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(embeddings)
    result["exact_ward_s"] = time.perf_counter() - t
    t = time.perf_counter()
    two = clustering.two_stage_ward(embeddings, k)
    result["two_stage_s"] = time.perf_counter() - t
    result["nmi_two_stage_vs_exact"] = normalized_mutual_info_score(exact, two)
    result["nmi_exact_truth"] = normalized_mutual_info_score(truth, exact)
    result["nmi_two_stage_truth"] = normalized_mutual_info_score(truth, two)
    return result


def growth(xs: list[int], ys: list[float]) -> str:
    """Exponent b of y ~ N^b between consecutive sizes."""
    return ", ".join(f"{math.log(y2 / y1) / math.log(x2 / x1):.2f}" for x1, x2, y1, y2 in zip(xs, xs[1:], ys, ys[1:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="*", default=[250, 1000, 4000], help="image counts (none: only --plot)")
    ap.add_argument("--k-sampled", type=int, default=32, help="other images sampled per image (K)")
    ap.add_argument("--data", default=f"{tempfile.gettempdir()}/anoclust-bench", help="where images are generated")
    ap.add_argument("--random-bags", action="store_true",
                    help="skip the network: random stand-in bags (to measure memory at large N quickly)")
    ap.add_argument("--plot", metavar="PNG", help="also draw time and memory against N from every run logged in "
                    "--data/bench_scale.jsonl (the latest per N and kind of bags), extrapolated to 100,000 "
                    "images (needs matplotlib: pip install matplotlib)")
    ap.add_argument("--aspect", choices=("squash", "keep"), default="squash",
                    help="the extraction's aspect setting (anoclust --aspect)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one N, print JSON
    args = ap.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory(prefix="anoclust-cold-cache-") as cache:
            line = json.dumps(run_one(args.one, args.data, args.k_sampled, cache, args.random_bags, args.aspect))
        os.makedirs(args.data, exist_ok=True)
        with open(os.path.join(args.data, "bench_scale.jsonl"), "a") as log:  # every run, for the record
            log.write(line + "\n")
        print(line)
        return

    print(machine())
    if not args.n:
        plot(args.data, args.plot)
        return
    if args.random_bags:
        print("random stand-in bags: the extraction stage only fills the bag storage (no network)")
    print(f"K = {args.k_sampled} sampled images per image, aspect {args.aspect}")
    results = []
    for n in args.n:
        if not args.random_bags:
            synthetic_images(n, args.data)  # generated here, so the timed child finds them on disk
        cmd = [sys.executable, __file__, "--one", str(n), "--data", args.data, "--k-sampled", str(args.k_sampled),
               "--aspect", args.aspect]
        out = subprocess.run(cmd + ["--random-bags"] * args.random_bags, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        results.append(r)
        s = r["stages"]
        print(
            f"N={n}: total {r['total_s']:.1f} s; "
            + "; ".join(f"{k} {s[k][0]:.1f} s / {s[k][1] / 2**30:.2f} GiB" for k in STAGES)
            + f"; NMI {r['nmi_truth']:.3f}; two-stage vs exact Ward NMI {r['nmi_two_stage_vs_exact']:.3f}",
            flush=True,
        )
    print(f"\nload average after the run: {', '.join(f'{x:.2f}' for x in __import__('os').getloadavg())}")
    header = (
        "| N | " + " | ".join(f"{k} s (peak GiB)" for k in STAGES)
        + " | total s | total CPU s | load avg | peak GiB | bags | Ward |"
    )
    print("\n" + header + "\n|" + "---|" * (header.count("|") - 1))
    for r in results:
        s = r["stages"]
        peak = max(v[1] for v in s.values()) / 2**30
        print(
            f"| {r['n']} | "
            + " | ".join(f"{s[k][0]:.1f} ({s[k][1] / 2**30:.2f})" for k in STAGES)
            + f" | {r['total_s']:.1f} | {r['cpu_total_s']:.0f} | {r['load_average'][0]:.1f} | {peak:.2f} |"
            + f" {'memmap' if r['memmap'] else 'memory'} |"
            + f" {'two-stage' if r['two_stage'] else 'exact'} |"
        )
    if len(results) > 1:
        ns = [r["n"] for r in results]
        print("\ngrowth exponent b (time ~ N^b) between consecutive N:")
        for k in STAGES:
            print(f"  {k}: {growth(ns, [r['stages'][k][0] for r in results])}")
    print("\n| N | NMI vs truth | exact Ward NMI vs truth | two-stage NMI vs truth | two-stage vs exact NMI | exact s | two-stage s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['n']} | {r['nmi_truth']:.3f} | {r['nmi_exact_truth']:.3f} | {r['nmi_two_stage_truth']:.3f} |"
            f" {r['nmi_two_stage_vs_exact']:.3f} | {r['exact_ward_s']:.1f} | {r['two_stage_s']:.1f} |"
        )
    if args.plot:
        plot(args.data, args.plot)


def plot(data: str, png: str) -> None:
    """Stage times and peak memory against N, the latest logged run per (N, kind of bags) at
    K = 32, with straight-line extrapolations to 100,000 images (docs/PERFORMANCE.md)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict = {}
    with open(os.path.join(data, "bench_scale.jsonl")) as log:
        for line in log:
            r = json.loads(line)
            if r.get("k_sampled", 32) == 32 and "random_bags" in r and r.get("aspect", "squash") == "squash":
                runs[(r["n"], r["random_bags"])] = r  # the latest wins
    fig, (ax, mem) = plt.subplots(1, 2, figsize=(11, 4.2))
    for stage, colour in zip(STAGES, ("tab:blue", "tab:red", "tab:green", "tab:purple")):
        for random, marker in ((False, "o"), (True, "s")):
            if stage == "extraction" and random:
                continue  # random bags skip the network: their "extraction" is only filling storage
            got = sorted((n, r) for (n, rb), r in runs.items() if rb == random)
            if not got:
                continue
            pts = [(n, r["stages"][stage][0]) for n, r in got]
            label = f"{stage}" + (" (stand-in bags)" if random else "")
            ax.plot(*zip(*pts), marker=marker, color=colour, linestyle="-" if not random else ":", label=label)
            if stage == "extraction":  # each run's load average, which the times follow
                for n, r in got:
                    ax.annotate(f"load {r['load_average'][0]:.1f}", (n, r["stages"][stage][0]), fontsize=6,
                                textcoords="offset points", xytext=(-10, 6))
            # Linear stages: extrapolated from the least loaded run at N >= 1,000.
            base = min((r["load_average"][0], n, r["stages"][stage][0]) for n, r in got if n >= 1000) \
                if any(n >= 1000 for n, _ in got) else None
            if stage in ("extraction", "scoring", "pooling") and base and not random:
                _, n0, t0 = base
                ax.plot([n0, 1e5], [t0, t0 * 1e5 / n0], color=colour, linestyle="--", alpha=0.5)
    ax.set(xscale="log", yscale="log", xlabel="images N", ylabel="wall seconds (2 cores)",
           title="stage time (dashed: linear, from the least loaded run)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    for random, marker in ((False, "o"), (True, "s")):
        pts = sorted((n, max(v[1] for v in r["stages"].values()) / 2**30) for (n, rb), r in runs.items()
                     if rb == random)
        if pts:
            mem.plot(*zip(*pts), marker=marker, label="stand-in bags" if random else "images")
    mem.set(xscale="log", xlabel="images N", ylabel="peak RSS GiB", title="peak memory (bags memory-mapped above 1 GiB)")
    mem.grid(True, which="both", alpha=0.3)
    mem.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
