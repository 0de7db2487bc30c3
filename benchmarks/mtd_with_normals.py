"""MTD with normal images mixed in: how well `--normal-threshold auto` sets them apart.

One command: `python benchmarks/mtd_with_normals.py [--mtd DIR]`. The input is the 392 defect
images of MTD plus 200 further MT_Free images drawn with a fixed seed from MT_Free minus the 20
protocol references; the references (reference_normals.txt) are the normals. It runs the
`cluster` pipeline (default settings, reference weighting, --normal-threshold auto) with
--k 5 and with --k auto, and reports how many of the 200 normals were set apart, how many
defects were wrongly set apart, and the NMI of the defect images that were clustered (normals
that were not set apart are clustered too but left out of that NMI), next to the NMI of the
392 defects clustered alone. Last, how well the anomaly score separates the two at all (ROC
AUC) and what other thresholds (percentiles of the references' leave-one-out scores) would set
apart.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np

import studyset
from anoclust.evaluation import mtd_dataset
from anoclust.features.extract import EmbeddingConfig, PatchExtractor
from anoclust.inputs import find_images, read_path_list
from anoclust.job import RunOptions, cluster_input
from anoclust.metrics import clustering_scores
from anoclust.normal_threshold import leave_one_out_scores
from anoclust.settings import Params
from anoclust.weighting.reference import ReferenceWeighting

FREE = "MT_Free"


def mixed_input(root: Path, n_free: int, seed: int, tmp: Path) -> Path:
    mtd = mtd_dataset(root).images
    paths, labels, refs = mtd.paths, mtd.labels, mtd.normals
    ref_set = {p.resolve() for p in refs}
    free = [p for p in find_images(root / FREE) if p.resolve() not in ref_set]
    picks = np.sort(np.random.default_rng(seed).choice(len(free), n_free, replace=False))
    csv_path = tmp / "mixed.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows([[str(p), lab] for p, lab in zip(paths, labels)] + [[str(free[i]), FREE] for i in picks])
    return csv_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mtd", type=Path, default=studyset.DATA / "mtd")
    ap.add_argument("--n-free", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=studyset.CACHE)
    args = ap.parse_args(argv)
    args.mtd = args.mtd.resolve()  # the mixed CSV lives in a temporary folder: relative paths would break
    refs = str(args.mtd / "reference_normals.txt")
    print(f"threshold: auto (95th percentile of the references' leave-one-out scores); seed {args.seed}\n")
    print("| k | normals set apart (of 200) | defects set apart (of 392) | clusters | defect NMI | NMI, defects alone |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = mixed_input(args.mtd, args.n_free, args.seed, tmp)
        defects_only = tmp / "defects.csv"
        with open(data) as src, open(defects_only, "w") as dst:
            dst.writelines(line for line in src if f",{FREE}" not in line)
        for k in (5, "auto"):
            options = RunOptions(normal=refs, cache=args.cache, quiet=True, force=True, report=False)
            params = Params(n_clusters=k, random_state=args.seed)
            alone = cluster_input(defects_only, tmp / f"alone{k}", params, options).metrics["nmi"]
            res = cluster_input(data, tmp / f"mixed{k}", Params(n_clusters=k, random_state=args.seed,
                                                                normal_threshold="auto"), options)
            truth = np.asarray(res.truth)
            is_free, apart = truth == FREE, res.fit.normals
            kept = ~is_free & ~apart
            nmi = clustering_scores(truth[kept], res.fit.labels[kept])["nmi"]
            print(f"| {k} | {int((apart & is_free).sum())} | {int((apart & ~is_free).sum())} | "
                  f"{res.fit.model.resolved.n_clusters} | {nmi:.3f} | {alone:.3f} |", flush=True)
        print(f"\nthreshold value: {res.fit.model.resolved.normal_threshold:.4g}")
    from sklearn.metrics import roc_auc_score

    scores = res.max_scores
    print(f"ROC AUC of the anomaly score, defects vs the 200 normals: {roc_auc_score(~is_free, scores):.3f}\n")
    extractor = PatchExtractor(EmbeddingConfig(), cache_dir=args.cache)
    normal_bags = extractor.extract([Path(p) for p in read_path_list(refs)]).bags
    loo = leave_one_out_scores(ReferenceWeighting(Params(random_state=args.seed)), normal_bags)
    print("| threshold (percentile of leave-one-out scores) | value | normals set apart | defects set apart |")
    print("|---|---|---|---|")
    for q in (50, 75, 90, 95, 99, 100):
        t = np.percentile(loo, q)
        print(f"| {q} | {t:.3f} | {int((scores[is_free] < t).sum())} | {int((scores[~is_free] < t).sum())} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
