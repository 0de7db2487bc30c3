"""Datasets and helpers shared by the study scripts (not part of the package).

The study sets: MTD with its protocol (when ../shared/data/mtd exists), and synthetic sets of
the kinds that stress the weighting differently: small local defects ("local"), defects that
cover the whole image ("texture"), large normal variation between parts ("variable"), and the
demo's MVTec-style category with good as a class ("demo").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anoclust.evaluation import Dataset, Embedded, embed_dataset, folder_dataset, mtd_dataset
from anoclust.datasets import read_input
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data/mtd from a clone in /work/main or from a worktree one level deeper
MTD = next((p / "shared" / "data" / "mtd" for p in ROOT.parents if (p / "shared" / "data" / "mtd").is_dir()),
           ROOT.parent / "shared" / "data" / "mtd")


def study_sets(work: Path, with_mtd: bool = True) -> list[Dataset]:
    from anoclust.synthetic import make_labelled_folder, make_mvtec_category

    out = [mtd_dataset(MTD)] if with_mtd else []
    for kind in ("local", "texture", "variable"):
        data, normal = work / kind, work / f"{kind}-normal"
        if not data.exists():
            make_labelled_folder(data, n_per_type=20, kind=kind, seed=1, normal_root=normal)
        out.append(folder_dataset(data, normal))
    demo = work / "demo"
    if not demo.exists():
        make_mvtec_category(demo, seed=0)
    out.append(Dataset("demo", "demo", read_input(demo, layout="mvtec")))
    return out


def embed(dataset: Dataset, settings: ClusterSettings, cache: str) -> Embedded:
    s = ClusterSettings(backbone=settings.backbone, image_size=settings.image_size, cache=cache, quiet=True)
    return embed_dataset(dataset, s.extractor())


_SCORES: dict = {}


SUBSET_SHARE = 0.9
# The default backbone's patch features: features.6's 32 channels first, then features.13's 96.
SPLIT = 32


def subset_nmis(truth, x: np.ndarray, k: int, method: str = "ward", seed: int = 0, subsets: int = 10) -> list[float]:
    """NMI of each of `subsets` random 90% subsets of the images, each clustered on its own.

    The subsets depend only on the number of images, so every setting and seed sees the same.
    """
    from anoclust.clustering import cluster_embeddings

    truth = np.asarray(truth)
    return [clustering_scores(truth[rows], cluster_embeddings(x[rows], k, method, seed))["nmi"]
            for rows in subset_rows(len(truth), subsets)]


def subset_rows(n_images: int, subsets: int = 10) -> list[np.ndarray]:
    """The row indices of the random 90% subsets; they depend only on the number of images."""
    draw = np.random.default_rng(0)
    return [np.sort(draw.choice(n_images, int(SUBSET_SHARE * n_images), replace=False)) for _ in range(subsets)]


def score(data: Embedded, settings: ClusterSettings, weighting: str, seeds, subsets: int = 0) -> dict:
    """Mean and spread over seeds of NMI / ARI / F1 (k = number of classes).

    The same steps as AnomalyClustering.fit; patch scores are memoised per (set, weighting,
    seed), since they do not depend on tau, normalisation or clustering.

    subsets > 0 adds "nmi_sub": NMI mean and spread over that many random 90% subsets of the
    images (the same subsets for every configuration), each clustered on its own. On sets
    without clear cluster structure one clustering of the full set is one draw from a wide
    distribution; the subset mean tells a setting that is better from one that got lucky.
    """
    from anoclust.clustering import cluster_embeddings, normalize_embeddings
    from anoclust.estimator import pool_bags, resolve_components, resolve_embedding, resolve_method
    from anoclust.weighting import position_statistics, score_peak

    k = len(set(data.truth))
    method = resolve_method(settings.method, weighting)
    runs, sub_nmi = [], []
    for seed in seeds:
        pooled, scores = memoised_scores(data, settings, weighting, seed)
        stats = position_statistics(scores) if settings.position_norm and scores is not None else None
        emb, _ = pool_bags(data.bags, weighting, scores, settings.tau, settings.standardize, stats, pooled)
        how, start = resolve_embedding(settings.normalize, settings.embed_taps, weighting, settings.backbone,
                                       emb.shape[1], None if scores is None else score_peak(scores))
        components = resolve_components(settings.n_components, weighting, k, emb[:, start:].shape)
        x = normalize_embeddings(emb[:, start:], how, components)
        labels = cluster_embeddings(x, k, method, seed)
        runs.append(clustering_scores(data.truth, labels))
        sub_nmi += subset_nmis(data.truth, x, k, method, seed, subsets)
    out = {m: (float(np.mean([r[m] for r in runs])), float(np.std([r[m] for r in runs]))) for m in runs[0]}
    if sub_nmi:
        out["nmi_sub"] = (float(np.mean(sub_nmi)), float(np.std(sub_nmi)))
    return out


def memoised_scores(data: Embedded, settings: ClusterSettings, weighting: str, seed: int,
                    scores: np.ndarray | None = None) -> tuple:
    """(embedding whitening, patch scores) of a set, weighting and seed, computed once.

    scores: patch scores computed elsewhere (study_k.py's exact ones), remembered instead of
    computed; they must come from the same settings.
    """
    from anoclust.estimator import embedding_whitening, patch_scores, patch_space

    key = (id(data), weighting, seed if weighting == "unsupervised" else 0, settings.n_sampled,
           settings.border, settings.whiten)
    if key not in _SCORES:
        space = patch_space(data.bags.shape[1], weighting, data.normal_bags, settings.border, settings.whiten,
                            settings.max_bank, seed)
        if scores is None:
            scores = patch_scores(data.bags, weighting, data.normal_bags, settings.n_sampled, settings.max_bank,
                                  seed, space)
        pooled = embedding_whitening(space, weighting, data.bags, settings.whiten, settings.max_bank, seed)
        # the memo holds `data` too, so its id cannot be reused by a later object
        _SCORES[key] = data, pooled, scores
    return _SCORES[key][1:]


def cross_fitted_scores(bags: np.ndarray, low: np.ndarray, fold: np.ndarray, space, rng, cap: int = 60_000) -> np.ndarray:
    """(N, M) patch scores: the images of each fold (0 / 1) scored against the other fold's
    patches flagged in `low` (at most `cap` of them, drawn with rng) as a normal bank."""
    from anoclust.weighting import reference_scores

    out = np.full(low.shape, np.nan, np.float32)
    for f in (0, 1):
        src = fold == f
        bank = bags[src][low[src]].astype(np.float32)
        if len(bank) > cap:
            bank = bank[rng.choice(len(bank), cap, replace=False)]
        out[~src] = reference_scores(bags[~src], bank, space=space)
    return out


def spread_scaled(x: np.ndarray) -> np.ndarray:
    """x centred and divided by its root mean square distance to the centre, so that embeddings
    of different scales can be concatenated with equal say."""
    c = x - x.mean(0)
    return c / (np.sqrt((c**2).sum(1).mean()) + 1e-12)


def l2(x: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length (the tool's --normalize l2)."""
    from anoclust.clustering import normalize_embeddings

    return normalize_embeddings(x, "l2")


def nmis_over_rows(truth: np.ndarray, x, k: int, seed: int = 0, method: str = "ward", subsets: int = 10) -> list[float]:
    """NMI on the full set, then on each of `subsets` random 90% subsets (subset_rows).

    x: (N, D) embeddings, clustered with `method`, or a function from row indices to labels."""
    from anoclust.clustering import cluster_embeddings

    cluster = x if callable(x) else (lambda r: cluster_embeddings(x[r], k, method, seed))
    rows = [np.arange(len(truth))] + subset_rows(len(truth), subsets)
    return [clustering_scores(truth[r], cluster(r))["nmi"] for r in rows]


def print_paired(nmi: dict, prefix: str = "") -> None:
    """One line per variant of {variant: nmis_over_rows(...)}: full-set NMI, subset mean, and the
    mean paired difference over the subsets to the first variant with its standard error."""
    base = np.asarray(next(iter(nmi.values())))[1:]
    for name, v in nmi.items():
        v = np.asarray(v)
        d = v[1:] - base
        print(f"{prefix}{name}: full {v[0]:.3f}, subsets {v[1:].mean():.3f}, difference {d.mean():+.3f} "
              f"(standard error {d.std() / np.sqrt(len(d)):.3f}); better {(d > 0).sum()}, worse {(d < 0).sum()}",
              flush=True)


def summarise(name: str, results: dict, totals: dict) -> None:
    """Print one set's line, "variant: full-set NMI (subset mean)", means over the seeds, and add
    its subset means to totals. results: {variant: [nmis_over_rows(...) per seed]}."""
    cells = []
    for variant, v in results.items():
        v = np.array(v)
        totals[variant] = totals.get(variant, 0.0) + float(v[:, 1:].mean())
        cells.append(f"{variant}: {v[:, 0].mean():.3f} ({v[:, 1:].mean():.3f})")
    print(name, " | ".join(cells), flush=True)


def compare_embeddings(weighting: str, variants, only=None, work: Path = Path("/tmp/exp/studywork"),
                       cache: str = "/tmp/anoclust-cache", extra: list[Dataset] = (), with_study: bool = True) -> dict:
    """Score alternative image embeddings built from the default patch scores, on every study set.

    variants(embedded, space, scores, seed) -> {name: (N, D) embeddings, or a function from row
    indices to cluster labels of those rows}. Embeddings are clustered with Ward (k = number of
    classes); one line per set prints the full-set NMI and, in brackets,
    the mean over the 10 random 90% subsets (seeds 0-2 for the unsupervised weighting, seed 0
    otherwise). Returns the sum over the sets of the subset means, per variant. extra: more
    datasets scored after the study sets (and counted in the sum); with_study=False scores only those.

    The scripts' "default" rows pool every tap without normalisation: the default embedding
    before section 14, which with normals now keeps the deepest tap and l2-normalises.

    space.whitening is the reference weighting's map. The unsupervised default's embedding map
    (RESULTS section 11) is anoclust.estimator.embedding_whitening, which the scripts written
    before that section do not apply: their unsupervised "default" is the earlier one.
    """
    from anoclust.estimator import patch_scores, patch_space

    cfg = ClusterSettings()
    seeds = [0, 1, 2] if weighting == "unsupervised" else [0]
    totals: dict = {}
    for ds in (study_sets(work) if with_study else []) + list(extra):
        if only and ds.name not in only:
            continue
        e = embed(ds, cfg, cache)
        truth, k = np.array(e.truth), len(set(e.truth))
        res: dict = {}
        for seed in seeds:
            space = patch_space(e.bags.shape[1], weighting, e.normal_bags, cfg.border, cfg.whiten, cfg.max_bank, seed)
            s = patch_scores(e.bags, weighting, e.normal_bags, cfg.n_sampled, cfg.max_bank, seed, space)
            for name, x in variants(e, space, s, seed).items():
                res.setdefault(name, []).append(nmis_over_rows(truth, x, k, seed))
        summarise(f"{ds.name} {weighting}", res, totals)
    print("sum of subset means", {k: round(float(v), 3) for k, v in totals.items()})
    return totals
