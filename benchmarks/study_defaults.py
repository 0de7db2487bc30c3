"""Study of the default settings on MTD and the synthetic stress sets; writes a markdown table.

    PYTHONPATH=src python benchmarks/study_defaults.py --out docs/study_defaults.md

Each configuration is scored with uniform, unsupervised and reference weighting on every study
set (mean ± spread of NMI over the seeds; F1 for MTD). Bags come from the feature cache.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anoclust.pipeline import ClusterSettings  # noqa: E402
from studyset import embed, score, study_sets  # noqa: E402

# Every row without "288:" was measured at the earlier default input size, 224 px.
# Every row but the last two describes the defect by all taps, unnormalised unless it says l2 (the
# embedding before section 14 of docs/RESULTS.md).
ALL_TAPS = dict(embed_taps="all", normalize="none", method="ward")
S = partial(ClusterSettings, image_size=224, **ALL_TAPS)
S288 = partial(ClusterSettings, image_size=288, **ALL_TAPS)
# Rows up to "position norm ..." were measured before the border ring and whitening existed:
# border=0, whiten=False reproduce them. P: the previous (plain) core.
P = dict(border=0, whiten=False)
CONFIGS: dict[str, ClusterSettings] = {
    "paper: tau 1, raw scores": S(tau=1.0, standardize=False, **P),
    "core: tau 1, standardised": S(tau=1.0, **P),
    "tau 0.25, standardised": S(tau=0.25, **P),
    "position norm, tau 1": S(tau=1.0, position_norm=True, **P),
    "position norm, tau 0.5": S(tau=0.5, position_norm=True, **P),
    "position norm, tau 0.25": S(tau=0.25, position_norm=True, **P),
    "position norm, tau 0.1": S(tau=0.1, position_norm=True, **P),
    "position norm, tau 0.25, l2": S(tau=0.25, position_norm=True, normalize="l2", **P),
    "position norm, tau 0.25, kmeans": S(tau=0.25, position_norm=True, method="kmeans", **P),
    "position norm, tau 0.25, lite0": S(tau=0.25, position_norm=True, backbone="efficientnet_lite0", **P),
    "position norm, tau 0.25, lite2@260": S(tau=0.25, position_norm=True, backbone="efficientnet_lite2",
                                             image_size=260, **P),
    "position norm, tau 0.25, mbv2@320": S(tau=0.25, position_norm=True, image_size=320, **P),
    # The border ring and whitening by the normal patches (patch_space.py).
    "tau 1, border 2, no whitening": S(tau=1.0, border=2, whiten=False),
    "tau 1, border 0, whitening": S(tau=1.0, border=0),
    "tau 1, border 1, whitening": S(tau=1.0, border=1),
    "tau 1, border 2, whitening": S(tau=1.0, border=2),
    "tau 1, border 3, whitening": S(tau=1.0, border=3),
    "tau 1, border 2, whitening, l2": S(tau=1.0, border=2, normalize="l2"),
    "tau 1, border 2, whitening, position norm": S(tau=1.0, border=2, position_norm=True),
    "tau 0.5, border 1, whitening": S(tau=0.5, border=1),
    "tau 0.5, border 2, whitening": S(tau=0.5, border=2),
    "tau 0.5, border 3, whitening (default at 224 px)": S(),
    # Normalisation and clustering on top of the default patch space (run with --subsets).
    "tau 0.25, border 3, whitening, l2": S(tau=0.25, normalize="l2"),
    "tau 0.5, border 3, whitening, l2": S(normalize="l2"),
    "tau 1, border 3, whitening, l2": S(tau=1.0, normalize="l2"),
    "tau 0.5, border 3, whitening, kmeans": S(method="kmeans"),
    "tau 0.5, border 3, whitening, l2, kmeans": S(normalize="l2", method="kmeans"),
    # The default input size since 2026-11-29 (docs/RESULTS.md, section 8) and its neighbours.
    "288: tau 0.5, border 3, whitening (default before section 14)": S288(),
    "288: tau 1, border 3, whitening": S288(tau=1.0),
    "288: tau 0.75, border 3, whitening": S288(tau=0.75),
    "288: tau 0.35, border 3, whitening": S288(tau=0.35),
    "288: tau 0.5, border 2, whitening": S288(border=2),
    "288: tau 0.5, border 4, whitening": S288(border=4),
    "288: tau 0.5, border 3, whitening, l2": S288(normalize="l2"),
    # Section 14: with normals the deepest tap alone, l2 (the unsupervised weighting as above).
    "288: tau 0.5, border 3, whitening, deepest tap and l2 with normals, Ward (section 14)": ClusterSettings(
        method="ward"),
    # Since section 15: with normals also Ward polished by k-means.
    "288: tau 0.5, border 3, whitening, deepest tap and l2, Ward + k-means with normals (default)": ClusterSettings(),
    "288: tau 0.5, border 3, whitening, deepest tap and l2, k-means (10 random starts)": ClusterSettings(
        method="kmeans"),
}
WEIGHTINGS = ("uniform", "unsupervised", "reference")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="study_defaults.md")
    ap.add_argument("--cache", default="/tmp/anoclust-cache")
    ap.add_argument("--work", help="folder for the synthetic sets (default: a temporary folder)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--configs", help="'|'-separated substrings: run only matching configurations")
    ap.add_argument("--no-backbones", action="store_true",
                    help="only configurations on the default backbone at 224 px or the default input size")
    ap.add_argument("--weightings", default=",".join(WEIGHTINGS))
    ap.add_argument("--subsets", type=int, default=0,
                    help="also report NMI mean±spread over this many random 90%% subsets (studyset.score)")
    ap.add_argument("--shrinkage", type=float, help="whitening shrinkage instead of patch_space.SHRINKAGE")
    args = ap.parse_args()
    if args.shrinkage is not None:
        import anoclust.patch_space

        anoclust.patch_space.SHRINKAGE = args.shrinkage
    seeds = [int(s) for s in args.seeds.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="anoclust-study-"))
    sets = study_sets(work)
    d = ClusterSettings()
    configs = {n: c for n, c in CONFIGS.items()
               if (not args.configs or any(p in n for p in args.configs.split("|")))
               and not (args.no_backbones and (c.backbone != d.backbone or c.image_size not in (224, d.image_size)))}
    embedded: dict = {}
    head = "| configuration | weighting | " + " | ".join(
        f"{d.name} NMI" + (" / F1" if d.name == "mtd" else "") for d in sets) + " |"
    lines = [head, "|---|---|" + "---|" * len(sets)]
    for name, cfg in configs.items():
        for w in args.weightings.split(","):
            cells = []
            for d in sets:
                key = (d.name, cfg.backbone, cfg.image_size)
                if key not in embedded:
                    embedded[key] = embed(d, cfg, args.cache)
                if w == "reference" and embedded[key].normal_bags is None:
                    cells.append("-")
                    continue
                r = score(embedded[key], cfg, w, seeds if w == "unsupervised" or cfg.method == "kmeans" else seeds[:1],
                          args.subsets)
                cell = f"{r['nmi'][0]:.3f}±{r['nmi'][1]:.3f}"
                if args.subsets:
                    cell += f" (subsets {r['nmi_sub'][0]:.3f}±{r['nmi_sub'][1]:.3f})"
                cells.append(cell + (f" / {r['f1'][0]:.3f}" if d.name == "mtd" else ""))
            lines.append(f"| {name} | {w} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    shrink = "" if args.shrinkage is None else f"whitening shrinkage {args.shrinkage}; "
    subsets = f" (in brackets: over {args.subsets} random 90% subsets)" if args.subsets else ""
    Path(args.out).write_text(
        f"{shrink}Seeds {args.seeds}; mean±spread of NMI{subsets}; generated {time.strftime('%Y-%m-%d %H:%M')} by "
        f"`benchmarks/study_defaults.py`.\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
