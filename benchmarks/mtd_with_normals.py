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

from anoclust.datasets import find_images, read_path_list
from anoclust.estimator import patch_space
from anoclust.extract import EmbeddingConfig, PatchExtractor
from anoclust.metrics import clustering_scores
from anoclust.normals import leave_one_out_scores
from anoclust.pipeline import ClusterSettings, cluster_input

sys.path.insert(0, str(Path(__file__).resolve().parent))
from k_selection import MTD, mtd_protocol  # noqa: E402

FREE = "MT_Free"


def mixed_input(root: Path, n_free: int, seed: int, tmp: Path) -> Path:
    paths, labels, refs = mtd_protocol(root)
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
    ap.add_argument("--mtd", type=Path, default=MTD)
    ap.add_argument("--n-free", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default="/tmp/anoclust-cache")
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
            base = dict(k=k, normal=refs, cache=args.cache, quiet=True, seed=args.seed)
            alone = cluster_input(defects_only, tmp / f"alone{k}", ClusterSettings(**base), force=True).metrics["nmi"]
            res = cluster_input(data, tmp / f"mixed{k}", ClusterSettings(normal_threshold="auto", **base), force=True)
            truth = np.asarray(res.truth)
            is_free, apart = truth == FREE, res.estimator.normals_
            kept = ~is_free & ~apart
            nmi = clustering_scores(truth[kept], res.labels[kept])["nmi"]
            print(f"| {k} | {int((apart & is_free).sum())} | {int((apart & ~is_free).sum())} | "
                  f"{res.estimator.n_clusters_} | {nmi:.3f} | {alone:.3f} |", flush=True)
        print(f"\nthreshold value: {res.estimator.normal_threshold_:.4g}")
    from sklearn.metrics import roc_auc_score

    scores = res.max_scores
    print(f"ROC AUC of the anomaly score, defects vs the 200 normals: {roc_auc_score(~is_free, scores):.3f}\n")
    extractor = PatchExtractor(EmbeddingConfig(), cache_dir=args.cache)
    normal_bags = extractor.extract([Path(p) for p in read_path_list(refs)]).bags
    d = ClusterSettings()

    def space_of(normals: np.ndarray):  # the estimator's patch space (border ring, whitening)
        return patch_space(normal_bags.shape[1], "reference", normals, d.border, d.whiten, d.max_bank, args.seed)

    loo = leave_one_out_scores(normal_bags, d.max_bank, args.seed, space_of)
    print("| threshold (percentile of leave-one-out scores) | value | normals set apart | defects set apart |")
    print("|---|---|---|---|")
    for q in (50, 75, 90, 95, 99, 100):
        t = np.percentile(loo, q)
        print(f"| {q} | {t:.3f} | {int((scores[is_free] < t).sum())} | {int((scores[~is_free] < t).sum())} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
