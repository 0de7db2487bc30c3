"""Score the border ring too, calibrated position by position, instead of leaving it out.

The default leaves the 3 outermost rings of the patch grid unscored: there the network sees its
zero padding and the crop's outline, and scored as they are those patches draw the weight
(docs/RESULTS.md, section 9). But MTD's breaks and frays sit on the tile's edge: pooled over the
true masks *with* the ring, today's reference embedding would reach NMI 0.66 against 0.50
without it (section 17). Here every patch is scored (bank and scores over the whole grid), and
the scores in the outer RINGS rings are replaced by where they stand among the set's images at
the same grid position ((s - median) / MAD over the images), put back on the interior's scale
(the interior's median score plus that many times its typical per-position MAD). A patch in the
ring then weighs only when it is unusual for its position, as a defect is and a padding
artefact, present in every image, is not. Variants: the default (ring left out), and 3 and 4
rings calibrated (4 is the most interior_mask allows on the default 36 x 36 grid).

study WEIGHTING: subset means on the five study sets and the 20 extra synthetic draws
(clustered with the weighting's default method: ward_kmeans with normals, Ward without).
paired: MTD, reference weighting, the full set and 50 random 90% subsets, each variant against
the default: mean paired NMI difference, its standard error, wins and losses; two more variants
there put the ring on each image's own interior's scale instead (robust z-score within the
image's ring), alone and after the calibration by position.
ceiling: MTD, reference weighting, today's description of the defect (deepest tap, l2,
ward_kmeans) pooled over the true masks (interior patches / whole grid / the default weights
plus the mask's ring cells) and with the ring scored as it is (rings left out 3, 2, 1, 0); then
the share of the weights on the mask, per class and for the images whose mask lies wholly in the
ring, for the default, the raw whole-grid scores and the 3 rings calibrated.

    PYTHONPATH=src python benchmarks/explore/ring_calibration.py study reference|unsupervised
    PYTHONPATH=src python benchmarks/explore/ring_calibration.py paired
    PYTHONPATH=src python benchmarks/explore/ring_calibration.py ceiling
    PYTHONPATH=src python benchmarks/explore/ring_calibration.py padded

padded: MTD, reference weighting, section 9's reflect-padded features (edges.py: the resized
image reflect-padded by 32 px before the network, the grid cropped back) described like today's
default, with 3, 2, 1 or 0 rings left out and with 3 rings calibrated; paired against the default
over 50 subsets.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
sys.path.insert(0, str(Path(__file__).resolve().parent))  # synthetic_draws
from studyset import SPLIT, compare_embeddings, embed, l2, nmis_over_rows, print_paired, study_sets
from synthetic_draws import extra_sets

from anoclust.clustering import cluster_embeddings, normalize_embeddings
from anoclust.estimator import embedding_whitening, patch_scores, patch_space, pool_bags, resolve_embedding, resolve_method
from anoclust.metrics import clustering_scores
from anoclust.patch_space import interior_mask
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import position_statistics, score_peak

CFG = ClusterSettings()
RINGS = (3, 4)


def calibrated(raw: np.ndarray, rings: int) -> np.ndarray:
    """raw (N, M) scores of every patch with the outer `rings` rings put on the interior's scale."""
    stats = position_statistics(raw)
    inner = interior_mask(raw.shape[1], rings)
    centre, spread = np.nanmedian(raw[:, inner]), np.nanmedian(stats[1][inner])
    return np.where(inner[None], raw, centre + (raw - stats[0]) / stats[1] * spread)


def within_image(raw: np.ndarray, rings: int = 3) -> np.ndarray:
    """raw (N, M) scores with each image's outer `rings` rings put on its own interior's scale
    ((s - the image's ring median) / its ring MAD, times its interior MAD, plus its interior median)."""
    inner = interior_mask(raw.shape[1], rings)

    def centre_spread(a):
        med = np.median(a, 1, keepdims=True)
        return med, np.median(np.abs(a - med), 1, keepdims=True) + 1e-9

    (rm, rs), (im, ispread) = centre_spread(raw[:, ~inner]), centre_spread(raw[:, inner])
    out = raw.copy()
    out[:, ~inner] = im + (raw[:, ~inner] - rm) / rs * ispread
    return out


def embeddings(e, weighting: str, seed: int, per_image: bool = False) -> dict:
    """{variant: the weighting's default description of the defect} for the default and the
    calibrated rings (per_image adds the ring put on each image's own interior's scale, alone and
    after the calibration by position); the unsupervised switch of section 16 reads each
    variant's own scores."""
    ways = {"default": None} | {f"{r} rings calibrated": (lambda s, r=r: calibrated(s, r)) for r in RINGS}
    if per_image:
        ways |= {"3 rings, within each image": within_image,
                 "3 rings calibrated, then within each image": lambda s: within_image(calibrated(s, 3))}
    out = {}
    for name, how in ways.items():
        space = patch_space(e.bags.shape[1], weighting, e.normal_bags, CFG.border if how is None else 0, CFG.whiten,
                            CFG.max_bank, seed)
        s = patch_scores(e.bags, weighting, e.normal_bags, CFG.n_sampled, CFG.max_bank, seed, space)
        if how is not None:
            s = how(s)
        pooled = embedding_whitening(space, weighting, e.bags, CFG.whiten, CFG.max_bank, seed)
        emb = pool_bags(e.bags, weighting, s, CFG.tau, CFG.standardize, None, pooled)[0]
        norm, start = resolve_embedding("auto", "auto", weighting, CFG.backbone, emb.shape[1], score_peak(s))
        out[name] = normalize_embeddings(emb[:, start:], norm)
    return out


def study(weighting: str) -> None:
    method = resolve_method("auto", weighting)

    def variants(e, space, scores, seed):
        k = len(set(e.truth))
        return {name: (lambda r, x=x: cluster_embeddings(x[r], k, method, seed))
                for name, x in embeddings(e, weighting, seed).items()}

    compare_embeddings(weighting, variants, extra=extra_sets())


def paired() -> None:
    e = embed(study_sets(Path("/tmp/exp/studywork"))[0], CFG, "/tmp/anoclust-cache")
    truth, k = np.array(e.truth), len(set(e.truth))
    print_paired({name: nmis_over_rows(truth, x, k, 0, "ward_kmeans", 50)
                  for name, x in embeddings(e, "reference", 0, per_image=True).items()})


def ceiling() -> None:
    from mask_ceiling import pooled
    from where_weights_look import mask_cells

    e = embed(study_sets(Path("/tmp/exp/studywork"))[0], CFG, "/tmp/anoclust-cache")
    truth, m = np.array(e.truth), e.bags.shape[1]
    cells = mask_cells(e.dataset.images.masks, CFG.image_size, (int(round(m**0.5)),) * 2)
    inner = interior_mask(m, CFG.border)

    def space_scores(border):
        space = patch_space(m, "reference", e.normal_bags, border, CFG.whiten, CFG.max_bank, 0)
        return space, patch_scores(e.bags, "reference", e.normal_bags, CFG.n_sampled, CFG.max_bank, 0, space)

    def show(name, emb):
        x = l2(emb[:, SPLIT:])
        v = nmis_over_rows(truth, x, 5, 0, "ward_kmeans")
        s = clustering_scores(truth, cluster_embeddings(x, 5, "ward_kmeans", 0))
        print(f"| {name} | {v[0]:.3f} / {s['ari']:.3f} / {s['f1']:.3f} | {np.mean(v[1:]):.3f} |", flush=True)

    print("| pooling (MTD, deepest tap, l2, ward_kmeans) | full set NMI / ARI / F1 | subset mean |\n|---|---|---|")
    space, s3 = space_scores(CFG.border)
    z = space.whitening(e.bags.astype(np.float32))
    emb, alpha = pool_bags(e.bags, "reference", s3, CFG.tau, CFG.standardize, None, space.whitening)
    show("default weights (ring left out)", emb)
    found = (cells * inner).sum(1) > 0
    show("true mask, interior", pooled(z, np.where(found[:, None], cells * inner, inner) + 1e-9))
    show("true mask, whole grid", pooled(z, cells + 1e-9))
    ring_mask = cells * ~inner
    show("default weights + the mask's ring cells", pooled(z, alpha + ring_mask / np.maximum(ring_mask.sum(1, keepdims=True), 1e-9)))
    for border in range(CFG.border - 1, -1, -1):
        sp, s = space_scores(border)
        show(f"ring of {border} left out, the rest scored as it is", pool_bags(e.bags, "reference", s, CFG.tau, CFG.standardize, None, sp.whitening)[0])
    raw = space_scores(0)[1]
    classes = sorted(set(truth))
    print("\n| scores | weight in the ring | on the mask: images with the mask wholly in the ring | on the mask: the others | "
          + " | ".join(classes) + " |\n" + "|---" * (4 + len(classes)) + "|")
    for name, s in (("default", s3), ("whole grid, as scored", raw), ("3 rings calibrated", calibrated(raw, 3))):
        a = pool_bags(e.bags, "reference", s, CFG.tau, CFG.standardize, None, space.whitening)[1]
        on = (a * (cells > 0)).sum(1)
        per = " | ".join(f"{on[truth == c].mean():.2f}" for c in classes)
        print(f"| {name} | {a[:, ~inner].sum(1).mean():.2f} | {on[~found].mean():.2f} | {on[found].mean():.2f} | {per} |")
    print(f"images with the mask wholly in the ring: {(~found).mean():.2f}, mask area there {(cells[~found] > 0).mean():.3f}, "
          f"elsewhere {(cells[found] > 0).mean():.3f}")


def padded() -> None:
    from edges import cached, padded_bags

    ds = study_sets(Path("/tmp/exp/studywork"))[0]
    e = embed(ds, CFG, "/tmp/anoclust-cache")
    bags = cached([str(p) for p in ds.images.paths], "pad", padded_bags)
    normals = cached([str(p) for p in ds.images.normals], "pad", padded_bags)

    def described(b, nb, border, rings=None):
        space = patch_space(b.shape[1], "reference", nb, border, CFG.whiten, CFG.max_bank, 0)
        s = patch_scores(b, "reference", nb, CFG.n_sampled, CFG.max_bank, 0, space)
        s = s if rings is None else calibrated(s, rings)
        return l2(pool_bags(b, "reference", s, CFG.tau, CFG.standardize, None, space.whitening)[0][:, SPLIT:])

    variants = {"default": described(e.bags, e.normal_bags, CFG.border)}
    variants |= {f"reflect-padded, {b} rings left out": described(bags, normals, b) for b in (3, 2, 1, 0)}
    variants["reflect-padded, 3 rings calibrated"] = described(bags, normals, 0, 3)
    truth, k = np.array(e.truth), len(set(e.truth))
    print_paired({n: nmis_over_rows(truth, x, k, 0, "ward_kmeans", 50) for n, x in variants.items()})


if __name__ == "__main__":
    {"study": lambda: study(sys.argv[2]), "paired": paired, "ceiling": ceiling, "padded": padded}[sys.argv[1]]()
