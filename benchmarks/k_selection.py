"""Study of the criteria that choose the number of clusters (`--k auto`).

One command: `python benchmarks/k_selection.py` (PYTHONPATH=src or installed package). For MTD
(when ../shared/data/mtd exists; 392 defect images, 20 reference normals, protocol in its
README) and for synthetic sets with 2..8 local defect types (20 images each, 20 normal
references), it embeds the images with the estimator's default settings, then for every
criterion in anoclust.model_selection reports the chosen k against the true k, and the NMI of the
default clustering at the chosen k against the NMI at the true k. Markdown on stdout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from anoclust.clustering import cluster_embeddings, normalize_embeddings
from anoclust.datasets import find_images, read_input
from anoclust.estimator import AnomalyClustering, resolve_components
from anoclust.extract import EmbeddingConfig, PatchExtractor
from anoclust.metrics import clustering_scores
from anoclust.model_selection import DEFAULT_CRITERION, K_CRITERIA, choose_k
from anoclust.synthetic import DEFECT_TYPES, make_labelled_folder

# ../shared/data/mtd beside the repository; --mtd overrides (e.g. from a git worktree).
MTD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mtd"
MTD_TYPES = ("MT_Blowhole", "MT_Break", "MT_Crack", "MT_Fray", "MT_Uneven")


def mtd_protocol(root: Path) -> tuple[list[Path], list[str], list[Path]]:
    """(defect image paths, their labels, the 20 reference normals) of the MTD protocol."""
    paths, labels = [], []
    for t in MTD_TYPES:
        found = find_images(root / t)
        paths += found
        labels += [t] * len(found)
    refs = [root / line.strip() for line in (root / "reference_normals.txt").read_text().splitlines() if line.strip()]
    return paths, labels, refs


def embed(paths, normals, cache: str | None, seed: int, weighting: str = "auto") -> AnomalyClustering:
    """The estimator fitted with its default settings (its embeddings, normalisation and method)."""
    extractor = PatchExtractor(EmbeddingConfig(), cache_dir=cache)
    bags = extractor.extract(paths).bags
    normal_bags = extractor.extract(normals).bags if normals and weighting != "unsupervised" else None
    return AnomalyClustering(n_clusters=2, weighting=weighting, random_state=seed).fit(bags, normal=normal_bags)


def study(name: str, est: AnomalyClustering, y: list[str], k_max: int, criteria, seed: int, neighbours=()) -> None:
    """k is chosen in the normalised space, before the projection, as the estimator does; the
    clustering at a given k uses the projection the estimator resolves for that k."""
    emb, method = est.embeddings_, est.method_
    x = normalize_embeddings(emb, est.normalize_)

    def nmi_at(k: int) -> float:
        components = resolve_components(est.n_components, est.weighting_, k, emb.shape)
        return clustering_scores(y, cluster_embeddings(normalize_embeddings(emb, est.normalize_, components),
                                                       k, method, seed))["nmi"]

    k_true = len(set(y))
    nmi_true = nmi_at(k_true)
    runs = [(c, None) for c in criteria] + [("eigengap", nn) for nn in neighbours]
    for c, nn in runs:
        k, _ = choose_k(x, k_max, c, method, seed, n_neighbors=nn)
        nmi = nmi_at(k)
        ratio = nmi / nmi_true if nmi_true > 0 else float("nan")
        label = c if nn is None else f"{c}, {nn} neighbours"
        print(f"| {name} | {label} | {k_true} | {k} | {nmi_true:.3f} | {nmi:.3f} | {ratio:.2f} |", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k-max", type=int, default=20)
    ap.add_argument("--criteria", nargs="+", default=list(K_CRITERIA), choices=K_CRITERIA)
    ap.add_argument("--neighbours", type=int, nargs="*", default=[5, 10, 15, 20],
                    help="also report eigengap with these fixed graph degrees (default: sqrt(N))")
    ap.add_argument("--weighting", default="auto", help="patch weighting (default: auto, the estimator's)")
    ap.add_argument("--types", type=int, nargs="*", default=list(range(2, 9)), help="synthetic type counts")
    ap.add_argument("--cache", default="/tmp/anoclust-cache")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mtd", type=Path, default=MTD, help="MTD folder (default %(default)s)")
    ap.add_argument("--no-mtd", action="store_true")
    args = ap.parse_args(argv)
    print(f"default criterion: {DEFAULT_CRITERION}; k in 2..{args.k_max}; the estimator's clustering method "
          f"(ward_kmeans with normals, else ward); weighting {args.weighting}\n")
    print("| set | criterion | true k | chosen k | NMI at true k | NMI at chosen k | ratio |")
    print("|---|---|---|---|---|---|---|")
    if not args.no_mtd and args.mtd.is_dir():
        paths, labels, refs = mtd_protocol(args.mtd)
        x = embed(paths, refs, args.cache, args.seed, args.weighting)
        study("MTD", x, labels, args.k_max, args.criteria, args.seed, args.neighbours)
    with tempfile.TemporaryDirectory() as tmp:
        for n_types in args.types:
            root = Path(tmp) / f"types{n_types}"
            make_labelled_folder(root / "defects", classes=DEFECT_TYPES[:n_types], normal_root=root / "normal",
                                 seed=args.seed)
            images = read_input(root / "defects")
            x = embed(images.paths, find_images(root / "normal"), args.cache, args.seed, args.weighting)
            study(f"synthetic {n_types} types", x, images.labels, args.k_max, args.criteria, args.seed, args.neighbours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
