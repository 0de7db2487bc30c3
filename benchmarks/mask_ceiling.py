"""How far better localisation could take MTD: clustering embeddings pooled over the true defect masks.

For each feature spec (study_backbones.py syntax), the MTD embeddings are pooled four ways and
clustered with Ward (k = 5), with and without l2 normalisation: with the default reference
weights; uniformly over the true defect mask at the patch grid (interior patches; images whose
defect lies wholly in the border ring fall back to all interior patches); over the mask cells of
the whole grid, border ring included; and uniformly over the interior patches outside the
mask. Patch features are whitened by the normal patches, as in the default. The mask-pooled
rows are a ceiling on what any patch weighting can reach with these features: if they stay
low, the features, not the weights, limit the score. Cells are NMI means over 10 random 90% subsets;
the last column is the 5-fold cross-validated accuracy of a 1-nearest-neighbour classifier on
the same embeddings (l2). Two more tables, for the first spec: the share of each class whose
mask lies wholly in the border ring, and the default's five clusters with their classes, their
share of such images and the mean share of the weights on the mask.

    PYTHONPATH=src python benchmarks/mask_ceiling.py --features mobilenet_v2@288 --out mask_ceiling.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anoclust.clustering import cluster_embeddings, normalize_embeddings  # noqa: E402
from anoclust.estimator import patch_scores, patch_space, pool_bags  # noqa: E402
from anoclust.evaluation import mtd_dataset  # noqa: E402
from anoclust.patch_space import interior_mask  # noqa: E402
from anoclust.pipeline import ClusterSettings  # noqa: E402
from study_backbones import combined  # noqa: E402
from studyset import MTD, subset_nmis  # noqa: E402
from where_weights_look import mask_cells  # noqa: E402


def pooled(z: np.ndarray, weights: np.ndarray) -> np.ndarray:
    w = weights / weights.sum(1, keepdims=True)
    return np.einsum("nm,nmd->nd", w, z)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--features", default="mobilenet_v2@288", help="comma-separated feature specs")
    ap.add_argument("--cache", default="/tmp/anoclust-cache")
    ap.add_argument("--out", default="mask_ceiling.md")
    args = ap.parse_args()
    cfg = ClusterSettings()
    d = mtd_dataset(MTD)
    lines = ["| features | pooling | share of images with mask in the interior | NMI | NMI, l2 | 1-NN accuracy, l2 |",
             "|---|---|---|---|---|---|"]
    for spec in args.features.split(","):
        data = combined(d, spec, args.cache)
        size = int(spec.partition("@")[2] or 224)
        n, m = data.bags.shape[:2]
        side = int(round(m**0.5))
        cells = mask_cells(d.images.masks, size, (side, side))
        keep = interior_mask(m, cfg.border)
        space = patch_space(m, "reference", data.normal_bags, cfg.border, cfg.whiten, cfg.max_bank, 0)
        scores = patch_scores(data.bags, "reference", data.normal_bags, cfg.n_sampled, cfg.max_bank, 0, space)
        z = space.whitening(data.bags.astype(np.float32))
        inner = cells * keep
        found = inner.sum(1) > 0
        tiny = 1e-9  # keeps rows with no mask cell defined; they then pool uniformly
        default, alpha = pool_bags(data.bags, "reference", scores, cfg.tau, True, None, space.whitening)
        ways = {
            "default reference weights": default,
            "true mask, interior": pooled(z, np.where(found[:, None], inner, keep) + tiny),
            "true mask, whole grid": pooled(z, cells + tiny),
            "outside the mask, interior": pooled(z, (1 - np.clip(cells, 0, 1)) * keep + tiny),
        }
        for name, x in ways.items():
            cols = [np.mean(subset_nmis(data.truth, normalize_embeddings(x, h), 5)) for h in ("none", "l2")]
            acc = cross_val_score(KNeighborsClassifier(1), normalize_embeddings(x, "l2"), data.truth, cv=5).mean()
            lines.append(f"| {spec} | {name} | {found.mean():.2f} | {cols[0]:.3f} | {cols[1]:.3f} | {acc:.2f} |")
            print(lines[-1], flush=True)
        if spec == args.features.split(",")[0]:
            extra = first_spec_tables(spec, np.array(data.truth), found, cluster_embeddings(default, 5),
                                      (alpha * cells).sum(1))
    Path(args.out).write_text("\n".join(lines + extra) + "\n")


def first_spec_tables(spec: str, truth: np.ndarray, found: np.ndarray, labels: np.ndarray,
                      on_mask: np.ndarray) -> list[str]:
    """Which classes have their masks in the border ring, and where those images end up."""
    classes = sorted(set(truth))
    out = ["", f"Masks wholly in the border ring, {spec}:", "", "| class | images | share |", "|---|---|---|"]
    out += [f"| {c} | {(truth == c).sum()} | {(~found[truth == c]).mean():.2f} |" for c in classes]
    out += ["", f"The default's Ward clusters (reference, k = 5), {spec}:", "",
            "| cluster | images | " + " | ".join(classes) + " | masks wholly in the ring | alpha on the mask |",
            "|---" * (len(classes) + 4) + "|"]
    for c in range(labels.max() + 1):
        m = labels == c
        counts = " | ".join(str(int((truth[m] == t).sum())) for t in classes)
        out.append(f"| {c} | {m.sum()} | {counts} | {(~found[m]).mean():.2f} | {on_mask[m].mean():.3f} |")
    return out


if __name__ == "__main__":
    main()
