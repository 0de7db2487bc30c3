"""New images for a saved model: do unseen defect types come back `unknown`?

One command: `python benchmarks/assign_holdout.py [--mtd DIR]`. On MTD and on a synthetic set (5
local defect types, 40 images each, 20 normal references), each defect type is held out in
turn. Half of the images of the other types (a seeded draw) are fitted with the default
settings (reference weighting with the normal references, k = number of fitted types); the
model is saved and loaded back, then the other half of those types and all images of the
held-out type are assigned. Reported: the share of held-out-type images marked `unknown`, the share of new images of
fitted types marked `unknown`, and the NMI of the fitted types' new images' nearest clusters
against their labels next to the NMI of the fitted images.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import studyset
from anoclust.estimator import AnomalyClustering, load_model
from anoclust.evaluation import mtd_dataset
from anoclust.features.extract import EmbeddingConfig, PatchExtractor
from anoclust.inputs import find_images, read_input
from anoclust.metrics import clustering_scores
from anoclust.synthetic import DEFECT_TYPES, make_labelled_folder


def holdout_study(name: str, bags: np.ndarray, labels: np.ndarray, normal: np.ndarray, seed: int,
                  components="auto") -> None:
    types = sorted(set(labels))
    fit_half = np.random.default_rng(seed).random(len(bags)) < 0.5
    for held in types:
        seen = labels != held
        fit_rows, new_rows = seen & fit_half, seen & ~fit_half
        est = AnomalyClustering(n_clusters=len(types) - 1, random_state=seed, n_components=components)
        est.fit(bags[fit_rows], normal=normal)
        with tempfile.TemporaryDirectory() as tmp:
            est.save(Path(tmp) / "model")
            model = load_model(Path(tmp) / "model")
        unseen = model.assign(bags[~seen])
        new = model.assign(bags[new_rows])
        nmi_new = clustering_scores(labels[new_rows], new.labels)["nmi"]
        nmi_fit = clustering_scores(labels[fit_rows], est.labels_)["nmi"]
        print(f"| {name} | {held} ({(~seen).sum()}) | {unseen.unknown.mean():.2f} | {new.unknown.mean():.2f} | "
              f"{nmi_new:.3f} | {nmi_fit:.3f} |", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mtd", type=Path, default=studyset.DATA / "mtd")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=studyset.CACHE)
    ap.add_argument("--no-mtd", action="store_true")
    ap.add_argument("--components", default="auto", type=lambda t: t if t == "auto" else int(t),
                    help="principal axes of the clustering space (default: auto, the tool's)")
    args = ap.parse_args(argv)
    extractor = PatchExtractor(EmbeddingConfig(), cache_dir=args.cache)
    print("| set | held-out type | unknown: held-out type | unknown: new images of fitted types | NMI new | NMI fitted |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_labelled_folder(root / "d", n_per_type=40, classes=DEFECT_TYPES[:5], normal_root=root / "n",
                             seed=args.seed)
        images = read_input(root / "d")
        bags = extractor.extract(images.paths).bags
        normal = extractor.extract(find_images(root / "n")).bags
        holdout_study("synthetic", bags, np.array(images.labels), normal, args.seed, args.components)
    if not args.no_mtd and args.mtd.is_dir():
        mtd = mtd_dataset(args.mtd).images
        paths, labels, refs = mtd.paths, mtd.labels, mtd.normals
        bags, normal = extractor.extract(paths).bags, extractor.extract(refs).bags
        holdout_study("MTD", bags, np.array(labels), normal, args.seed, args.components)
    return 0


if __name__ == "__main__":
    sys.exit(main())
