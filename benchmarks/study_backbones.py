"""Backbones, taps, input sizes and combinations of backbones, the default settings otherwise.

    PYTHONPATH=src python benchmarks/study_backbones.py --features mobilenet_v2,efficientnet_lite0,mobilenet_v2+efficientnet_lite0 --out docs/study_backbones.md

A feature spec is `backbone[:tap/tap/...][@size]` (default taps and 224 px when left out); `+`
joins the members of a combination, whose patch features are concatenated position by position,
so its members must give the same patch grid. Every spec is scored with the reference and the
unsupervised weighting on every study set, with the NMI over random 90% subsets next to the
full-set NMI (studyset.score).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anoclust.evaluation import Embedded, embed_dataset  # noqa: E402
from anoclust.extract import EmbeddingConfig, PatchExtractor  # noqa: E402
from anoclust.pipeline import ClusterSettings  # noqa: E402
from studyset import score, study_sets  # noqa: E402

_EMBEDDED: dict = {}


def member(dataset, spec: str, cache: str) -> Embedded:
    name, _, size = spec.partition("@")
    name, _, taps = name.partition(":")
    config = EmbeddingConfig(name, tuple(taps.split("/")) if taps else None, int(size or 224))
    key = (dataset.name, config)
    if key not in _EMBEDDED:
        _EMBEDDED[key] = embed_dataset(dataset, PatchExtractor(config, cache_dir=cache))
    return _EMBEDDED[key]


def combined(dataset, spec: str, cache: str) -> Embedded:
    # Kept alive in _EMBEDDED: studyset memoises scores by the object's id.
    key = (dataset.name, spec)
    if key not in _EMBEDDED:
        parts = [member(dataset, m, cache) for m in spec.split("+")]
        if len({p.bags.shape[:2] for p in parts}) != 1:
            raise SystemExit(f"{spec}: the members give different patch grids")
        normal = None if parts[0].normal_bags is None else np.concatenate([p.normal_bags for p in parts], -1)
        _EMBEDDED[key] = parts[0] if len(parts) == 1 else Embedded(
            dataset, np.concatenate([p.bags for p in parts], -1), parts[0].truth, normal)
    return _EMBEDDED[key]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--features", default="mobilenet_v2,efficientnet_lite0,mobilenet_v2+efficientnet_lite0",
                    help="comma-separated feature specs (see above)")
    ap.add_argument("--weightings", default="reference,unsupervised")
    ap.add_argument("--seeds", default="0,1,2", help="seeds of the unsupervised weighting")
    ap.add_argument("--out", default="study_backbones.md")
    ap.add_argument("--cache", default="/tmp/anoclust-cache")
    ap.add_argument("--work", help="folder for the synthetic sets (default: a temporary folder)")
    ap.add_argument("--subsets", type=int, default=10)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    sets = study_sets(Path(args.work or tempfile.mkdtemp(prefix="anoclust-study-")))
    lines = ["| features | weighting | " + " | ".join(
        f"{d.name} NMI" + (" / F1" if d.name == "mtd" else "") for d in sets) + " |", "|---|---|" + "---|" * len(sets)]
    for spec in args.features.split(","):
        for weighting in args.weightings.split(","):
            cells = []
            for d in sets:
                data = combined(d, spec, args.cache)
                runs = seeds if weighting == "unsupervised" else [0]
                r = score(data, ClusterSettings(), weighting, runs, args.subsets)
                cells.append(f"{r['nmi'][0]:.3f} ({r['nmi_sub'][0]:.3f}±{r['nmi_sub'][1]:.3f})"
                             + (f" / {r['f1'][0]:.3f}" if d.name == "mtd" else ""))
            lines.append(f"| {spec} {tuple(data.bags.shape[1:])} | {weighting} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    Path(args.out).write_text(f"Default settings otherwise; cells: full-set NMI (mean±spread over {args.subsets} "
                              f"random 90% subsets); the shape is (patches, features); generated "
                              f"{time.strftime('%Y-%m-%d %H:%M')} by `benchmarks/study_backbones.py`.\n\n"
                              + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
