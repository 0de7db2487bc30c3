"""The reference embeddings of section 14 on MTD and on more synthetic sets.

The study's synthetic sets are one draw of the generator each (seed 1, in /tmp/exp/studywork);
draws 2-5 of each kind are written under /tmp/exp/seeds, and so are the local sets with the
first 5..8 of the eight defect types that benchmarks/k_selection.py uses (seed 0). Full-set
NMI / ARI / F1 (reference weighting, Ward, k = number of classes) of: the default before
section 14 (every tap, unnormalised), the default since (the deepest tap's part of the whitened
embedding, l2), that part unnormalised or divided by the square root of its length, the
deepest tap whitened by its own normal patches instead (l2), and average pooling. An exploration.

    PYTHONPATH=src python benchmarks/explore/synthetic_draws.py
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import SPLIT, embed, l2, study_sets

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import patch_scores, patch_space, pool_bags
from anoclust.evaluation import folder_dataset
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings
from anoclust.synthetic import DEFECT_TYPES, make_labelled_folder

CFG = ClusterSettings()


def more_draws(kind: str, draws=range(2, 6)) -> list:
    out = []
    for draw in draws:
        root = Path(f"/tmp/exp/seeds/{kind}-{draw}")
        normal = root.parent / f"{root.name}-normal"
        if not root.exists():
            make_labelled_folder(root, n_per_type=20, kind=kind, seed=draw, normal_root=normal)
        out.append(folder_dataset(root, normal))
    return out


def more_types(counts=range(5, 9)) -> list:
    out = []
    for n in counts:
        root = Path(f"/tmp/exp/seeds/types{n}")
        if not root.exists():
            make_labelled_folder(root / "defects", classes=DEFECT_TYPES[:n], normal_root=root / "normal", seed=0)
        out.append(folder_dataset(root / "defects", root / "normal"))
    return out


def heldout_sets() -> list:
    """Sets kept out of every choice before section 18 and made for checking it: local sets with
    5-8 types at seeds 1 and 2, `variable` sets with 3 and 5 types at seeds 6-8, `texture` at 6-7."""
    specs = [(f"types{n}-s{seed}", dict(classes=DEFECT_TYPES[:n], seed=seed)) for seed in (1, 2) for n in range(5, 9)]
    specs += [(f"variable{n}-s{seed}", dict(kind="variable", classes=DEFECT_TYPES[:n], seed=seed))
              for seed in (6, 7, 8) for n in (3, 5)]
    specs += [(f"texture-s{seed}", dict(kind="texture", seed=seed)) for seed in (6, 7)]
    out = []
    for name, how in specs:
        root = Path(f"/tmp/exp/heldout/{name}")
        if not root.exists():
            make_labelled_folder(root / "defects", normal_root=root / "normal", **how)
        out.append(folder_dataset(root / "defects", root / "normal"))
    return out


def strength_sets() -> list:
    """Local sets holding the two types that differ mostly in strength (spot, hole), which the
    reference embedding of section 14 tends to merge: scratch / spot / crack / hole and spot /
    hole / stain, seeds 0-3 (section 18)."""
    out = []
    for seed in range(4):
        for classes in (("scratch", "spot", "crack", "hole"), ("spot", "hole", "stain")):
            root = Path(f"/tmp/exp/strength/{'-'.join(classes)}-s{seed}")
            if not root.exists():
                make_labelled_folder(root / "defects", classes=classes, normal_root=root / "normal", seed=seed)
            out.append(folder_dataset(root / "defects", root / "normal"))
    return out


def extra_sets() -> list:
    """Draws 2-5 of each synthetic kind, then the local sets with 5-8 types."""
    return [d for kind in ("local", "texture", "variable") for d in more_draws(kind)] + more_types()


def main() -> None:
    sets = study_sets(Path("/tmp/exp/studywork")) + extra_sets()
    for ds in sets:
        e = embed(ds, CFG, "/tmp/anoclust-cache")
        truth, k = np.array(e.truth), len(set(e.truth))
        space_of = lambda normals: patch_space(e.bags.shape[1], "reference", normals, CFG.border, CFG.whiten,
                                               CFG.max_bank, 0)
        space = space_of(e.normal_bags)
        s = patch_scores(e.bags, "reference", e.normal_bags, CFG.n_sampled, CFG.max_bank, 0, space)
        everything = pool_bags(e.bags, "reference", s, CFG.tau, CFG.standardize, None, space.whitening)[0]
        own = space_of(e.normal_bags[..., SPLIT:]).whitening
        deep_own = pool_bags(e.bags[..., SPLIT:], "reference", s, CFG.tau, CFG.standardize, None, own)[0]
        deep = everything[:, SPLIT:]
        x = {
            "before section 14": everything,
            "deepest tap, l2 (default)": l2(deep),
            "deepest tap": deep,
            "deepest tap / sqrt(length)": deep / np.sqrt(np.linalg.norm(deep, axis=1, keepdims=True)),
            "deepest tap, own whitening, l2": l2(deep_own),
            "average pooling": pool_bags(e.bags, "uniform", None, CFG.tau, CFG.standardize)[0],
        }
        cells = []
        for name, emb in x.items():
            r = clustering_scores(truth, cluster_embeddings(emb, k, "ward", 0))
            cells.append(f"{name} {r['nmi']:.3f} / {r['ari']:.3f} / {r['f1']:.3f}")
        print(ds.name, len(truth), " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
