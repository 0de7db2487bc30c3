"""The cost ratios the scoring targets are stated in, measured in one run.

    python benchmarks/bench_ratios.py [--n 1000] [--skip-threshold] [--skip-unsupervised]

1. Unsupervised weighting on N synthetic images (cold feature cache, default settings, as
   bench_scale.py): extraction, then the uniform weighting's stages (pooling, clustering), then
   the unsupervised ones (scoring, pooling, clustering). Prints scoring / extraction (target
   <= 0.5) and unsupervised run / uniform run, each run being the extraction plus its own
   stages (target <= 1.6).
2. `--normal-threshold auto` against the same run without it (reference weighting, default
   settings, anoclust.fit.fit_bags): VisA fryum (87 images, its 100 normal references) and MTD
   with 213 MT_Free references (100 defect images and 213 MT_Free images drawn with seed 0;
   none of them in the protocol's 20 references). A run is the extraction of its images and
   references (cold cache) plus the fit, the faster of two (fits alternate: plain, auto, plain,
   auto); the fit alone (features cached) is printed too. Target:
   auto run / plain run <= 1.3 with 200+ references. `--refit` also computes the threshold by
   refitting the weighting once per reference (the way it was computed before, minutes) and
   prints the relative difference (target: within 1%).

Every line carries the load average at that moment (2 shared cores: read ratios, not seconds).
Stages alternate within the run, so a burst of load hits both sides of a ratio alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

from _util import machine, synthetic_images

import studyset  # noqa: E402  (after _util: src/ on the path)


def load() -> str:
    return "load " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def unsupervised(n: int, data: str) -> None:
    from anoclust import fit
    from anoclust.features.extract import EmbeddingConfig, PatchExtractor
    from anoclust.settings import Params

    paths, truth = synthetic_images(n, data)
    k = len(set(truth))
    with tempfile.TemporaryDirectory(prefix="anoclust-cold-cache-") as cache:
        bags, extraction = timed(lambda: PatchExtractor(EmbeddingConfig(), cache_dir=cache).extract(paths).bags)
    print(f"N={n}: extraction {extraction:.1f} s ({load()})", flush=True)

    def stages(weighting: str) -> dict:
        params = Params(n_clusters=k, weighting=weighting)
        (w, scores), score_s = timed(lambda: fit.score(bags, None, params))
        descs, pool_s = timed(lambda: fit.descriptions(w, bags, scores, params))
        _, cluster_s = timed(lambda: fit.cluster_best(descs, w, params))
        return {"scoring": score_s, "pooling": pool_s, "clustering": cluster_s}

    uniform = stages("uniform")
    print("  uniform: " + ", ".join(f"{k} {v:.1f} s" for k, v in uniform.items()) + f" ({load()})", flush=True)
    unsup = stages("unsupervised")
    print("  unsupervised: " + ", ".join(f"{k} {v:.1f} s" for k, v in unsup.items()) + f" ({load()})", flush=True)
    run_u = extraction + sum(unsup.values())
    run_0 = extraction + sum(uniform.values())
    print(f"  scoring / extraction: {unsup['scoring'] / extraction:.2f} (target <= 0.5)")
    print(f"  unsupervised run / uniform run: {run_u:.1f} / {run_0:.1f} s = {run_u / run_0:.2f} (target <= 1.6)"
          f" ({load()})", flush=True)


def threshold_sets() -> list[tuple[str, list[Path], list[Path], list[str]]]:
    """(name, images, references, labels) of the two threshold sets that are present."""
    import numpy as np

    from anoclust.evaluation import mtd_dataset
    from anoclust.inputs import find_images, read_input, read_path_list

    out = []
    fryum = studyset.DATA / "visa" / "fryum"
    if fryum.is_dir():
        images = read_input(fryum / "test")
        out.append(("fryum (100 refs)", list(images.paths), read_path_list(fryum / "good"), list(images.labels)))
    mtd = studyset.DATA / "mtd"
    if mtd.is_dir():
        data = mtd_dataset(mtd).images
        protocol = {p.resolve() for p in data.normals}
        free = [p for p in find_images(mtd / "MT_Free") if p.resolve() not in protocol]
        draw = np.random.default_rng(0)
        picks = np.sort(draw.choice(len(data.paths), 100, replace=False))
        refs = np.sort(draw.choice(len(free), 213, replace=False))
        out.append(("MTD (213 MT_Free refs)", [data.paths[i] for i in picks], [free[i] for i in refs],
                    [data.labels[i] for i in picks]))
    return out


def threshold(refit: bool) -> None:
    import numpy as np

    from anoclust.features.aspect import resolve_aspect
    from anoclust.features.extract import EmbeddingConfig, PatchExtractor
    from anoclust.fit import fit_bags
    from anoclust.normal_threshold import NORMAL_PERCENTILE, refit_leave_one_out_scores
    from anoclust.ordering import canonical_order, take_rows
    from anoclust.settings import Params
    from anoclust.weighting.reference import ReferenceWeighting

    for name, images, refs, labels in threshold_sets():
        with tempfile.TemporaryDirectory(prefix="anoclust-cold-cache-") as cache:
            base = resolve_aspect(Params(), images)  # the default --aspect auto: fryum keep, MTD squash
            extractor = PatchExtractor(EmbeddingConfig.of(base), cache_dir=cache)
            (bags, normals), extraction = timed(lambda: (extractor.extract(images).bags,
                                                         extractor.extract(refs).bags))
        k = len(set(labels))
        # plain, auto, plain, auto: the faster of each pair, so that a burst of load on the
        # shared cores hits both sides alike
        times = {None: [], "auto": []}
        for threshold in (None, "auto") * 2:
            fitted, seconds = timed(lambda: fit_bags(bags, normals, dataclasses.replace(
                base, n_clusters=k, normal_threshold=threshold)))
            times[threshold].append(seconds)
            if threshold:
                auto = fitted
        plain_s, auto_s = min(times[None]), min(times["auto"])
        set_apart = int(auto.normals.sum())
        print(f"{name}: {len(images)} images, {len(refs)} references; extraction {extraction:.1f} s, "
              f"fit {plain_s:.1f} s, fit with --normal-threshold auto {auto_s:.1f} s "
              f"(threshold {auto.model.resolved.normal_threshold:.4f}, {set_apart} images set apart) ({load()})")
        print(f"  auto run / plain run: {(extraction + auto_s) / (extraction + plain_s):.2f} (target <= 1.3); "
              f"fit only (features cached): {auto_s / plain_s:.2f}", flush=True)
        if refit:
            ordered = take_rows(normals, canonical_order(normals))  # as fit_bags orders them
            scores, refit_s = timed(lambda: refit_leave_one_out_scores(ReferenceWeighting(base), ordered))
            old = float(np.percentile(scores, NORMAL_PERCENTILE))
            new = auto.model.resolved.normal_threshold
            print(f"  refitting once per reference: threshold {old:.6f} in {refit_s:.0f} s; "
                  f"relative difference {new / old - 1:.1e} (target within 1e-2) ({load()})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="synthetic images for the unsupervised ratios")
    ap.add_argument("--data", default=f"{tempfile.gettempdir()}/anoclust-bench", help="where images are generated")
    ap.add_argument("--skip-unsupervised", action="store_true")
    ap.add_argument("--skip-threshold", action="store_true")
    ap.add_argument("--refit", action="store_true", help="also the threshold by refitting per reference (slow)")
    args = ap.parse_args()
    print(machine())
    if not args.skip_unsupervised:
        unsupervised(args.n, args.data)
    if not args.skip_threshold:
        threshold(args.refit)
    print(f"end of run: {load()}")


if __name__ == "__main__":
    main()
