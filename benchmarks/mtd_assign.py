"""MTD, new images for a saved model: do unseen defect types come back `unknown`?

One command: `python benchmarks/mtd_assign.py [--mtd DIR]`. Each MTD defect type is held out in
turn. Half of the images of the other four types (a seeded draw) are fitted with the default
settings (reference weighting with the 20 protocol references, k = 4); the model is saved and
loaded back, then the other half of those types and all images of the held-out type are
assigned. Reported: the share of held-out-type images marked `unknown`, the share of new images of
fitted types marked `unknown`, and the NMI of the fitted types' new images' nearest clusters
against their labels next to the NMI of the fitted images.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from anoclust.estimator import AnomalyClustering
from anoclust.extract import EmbeddingConfig, PatchExtractor
from anoclust.metrics import clustering_scores

sys.path.insert(0, str(Path(__file__).resolve().parent))
from k_selection import MTD, MTD_TYPES, mtd_protocol  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mtd", type=Path, default=MTD)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default="/tmp/anoclust-cache")
    args = ap.parse_args(argv)
    paths, labels, refs = mtd_protocol(args.mtd)
    labels = np.array(labels)
    extractor = PatchExtractor(EmbeddingConfig(), cache_dir=args.cache)
    bags, normal = extractor.extract(paths).bags, extractor.extract(refs).bags
    fit_half = np.random.default_rng(args.seed).random(len(paths)) < 0.5
    print("| held-out type | unknown: held-out type | unknown: new images of fitted types | NMI new | NMI fitted |")
    print("|---|---|---|---|---|")
    for held in MTD_TYPES:
        seen = labels != held
        fit_rows, new_rows = seen & fit_half, seen & ~fit_half
        est = AnomalyClustering(n_clusters=len(MTD_TYPES) - 1, random_state=args.seed).fit(bags[fit_rows], normal=normal)
        with tempfile.TemporaryDirectory() as tmp:
            est.save(Path(tmp) / "model")
            model = AnomalyClustering.load(Path(tmp) / "model")
        unseen = model.assign(bags[~seen])
        new = model.assign(bags[new_rows])
        nmi_new = clustering_scores(labels[new_rows], new.labels)["nmi"]
        nmi_fit = clustering_scores(labels[fit_rows], est.labels_)["nmi"]
        print(f"| {held} ({(~seen).sum()}) | {unseen.unknown.mean():.2f} | {new.unknown.mean():.2f} | "
              f"{nmi_new:.3f} | {nmi_fit:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
