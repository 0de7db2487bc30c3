"""`anoclust evaluate`: the benchmark table (NMI / ARI / F1 per dataset and weighting, and the
multiple-instance baselines chamfer and hausdorff)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dataclasses import asdict

from ..atomic import atomic_write_bytes
from ..bag_distances import BAG_BASELINES, CLUSTERING, PATCHES_PER_BAG
from ..errors import AnoclustError
from ..evaluation import (
    CSV_FIELDS,
    ROWS,
    embed_dataset,
    evaluate_embedded,
    folder_dataset,
    group_means,
    markdown_table,
    mtd_dataset,
    mvtec_datasets,
)
from ..features.aspect import resolve_aspect
from ..job import RunOptions
from ..outputs import check_out_dir, write_csv
from ..settings import settings_line
from .options import add_method_options, add_run_options, params_from_args


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text}") from None


# Settings evaluate chooses itself: k = number of classes, every weighting, the seeds of --seeds.
EVALUATE_SETS = ("n_clusters", "k_max", "weighting", "normal_threshold", "random_state")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score every weighting on labelled benchmark sets",
                       description="Cluster labelled datasets with every weighting (k = number of classes) and "
                                   "write results.csv and results.md.")
    p.add_argument("folders", nargs="*", metavar="FOLDER",
                   help="labelled folder (one subfolder per class) or CSV with labels")
    p.add_argument("--mvtec", action="append", default=[], metavar="ROOT",
                   help="MVTec AD root (one folder per category) or a single category folder")
    p.add_argument("--categories", type=_names, metavar="A,B,...", help="MVTec categories to run (default all)")
    p.add_argument("--protocol", choices=("good", "defects", "both"), default="good",
                   help="MVTec: cluster test/good as a class (good, default), defect types only, or both")
    p.add_argument("--mtd", action="append", default=[], metavar="ROOT",
                   help="MTD root; protocol: five defect folders, normals from reference_normals.txt")
    p.add_argument("--normal", metavar="DIR|LIST", help="normal references for the FOLDER inputs")
    p.add_argument("--weightings", type=_names, default=list(ROWS), metavar="A,B,...",
                   help="weightings, and the bag-distance baselines chamfer and hausdorff, to run "
                        "(default %(default)s)")
    p.add_argument("--seeds", type=_ints, default=[0, 1, 2], metavar="S,S,...",
                   help="seeds; seed-dependent scores are reported as mean and spread (default 0,1,2)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for results.csv and results.md")
    add_method_options(p, "user", skip=EVALUATE_SETS)
    add_run_options(p, normal=False, dask=False)
    add_method_options(p, "research")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    unknown = [w for w in args.weightings if w not in ROWS]
    if unknown or not args.weightings:
        raise AnoclustError(f"unknown weighting {', '.join(unknown) or '(none)'}: choose from {', '.join(ROWS)}")
    if not args.seeds:
        raise AnoclustError("--seeds needs at least one seed")
    if not (args.folders or args.mvtec or args.mtd):
        raise AnoclustError("nothing to evaluate: give labelled FOLDERs, --mvtec ROOT or --mtd ROOT")
    out = Path(args.out)
    params = params_from_args(args)
    datasets = [mtd_dataset(r) for r in args.mtd] + [folder_dataset(f, args.normal) for f in args.folders]
    mvtec = [d for r in args.mvtec for d in mvtec_datasets(r, args.categories, include_good=args.protocol != "defects")]
    protected = {Path(p) for p in args.folders + args.mvtec + args.mtd if Path(p).is_dir()}
    protected |= {p.parent for d in datasets + mvtec for p in d.images.paths + d.images.normals}
    check_out_dir(out, protected, force=None)
    if args.cache:
        check_out_dir(Path(args.cache), protected, force=None, flag="--cache")
    options = RunOptions(cache=args.cache, quiet=args.quiet)
    with_normals = "reference" in args.weightings

    def embedded(d):
        """The set's bags and the settings it is evaluated with (--aspect auto resolved per set)."""
        p = resolve_aspect(params, d.images.paths)
        return embed_dataset(d, options.extractor(p), with_normals), p

    protocols = ("good", "defects") if args.protocol == "both" else (args.protocol,)
    rows = []  # (protocol, row)
    for d in datasets:
        data, p = embedded(d)
        new = [("-", r) for r in evaluate_embedded(data, p, args.weightings, args.seeds)]
        _report(new, args.quiet)
        rows += new
    per_protocol: dict[str, list[dict]] = {p: [] for p in protocols}
    for d in mvtec:
        data, p = embedded(d)
        for protocol in protocols:
            part = data if protocol == "good" else data.without("good")
            if len(set(part.truth)) < 2:
                continue
            new = evaluate_embedded(part, p, args.weightings, args.seeds)
            per_protocol[protocol] += new
            _report([(protocol, r) for r in new], args.quiet)
    for protocol in protocols:
        found = per_protocol[protocol]
        rows += [(protocol, r) for r in found + group_means(found)]

    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "results.csv", CSV_FIELDS,
              [[protocol] + [_fmt(r[f]) for f in CSV_FIELDS[1:]] for protocol, r in rows])
    atomic_write_bytes(out / "results.md", _markdown(rows, params, args).encode("utf-8"))
    print(f"results in {out}/results.md and {out}/results.csv")
    return 0


def _fmt(value):
    return f"{value:.4f}" if isinstance(value, float) else value


def _report(rows, quiet: bool) -> None:
    if quiet:
        return
    for protocol, r in rows:
        tag = "" if protocol == "-" else f" [{protocol}]"
        print(f"{r['dataset']}{tag} {r['weighting']}: NMI {r['nmi']:.3f}  ARI {r['ari']:.3f}  F1 {r['f1']:.3f}")


def _baselines_note(names) -> str:
    used = [b for b in BAG_BASELINES if b in names]
    if not used:
        return ""
    how = sorted({CLUSTERING[b] for b in used})
    clustered = (f"{how[0]} clustering" if len(how) == 1
                 else ", ".join(f"{b} by {CLUSTERING[b]} clustering" for b in used))
    return (f" {' and '.join(used)}: distances between the images' bags of raw patch features ({PATCHES_PER_BAG} "
            f"patches per image outside the border ring, at grid positions drawn with the seed), {clustered} "
            "(anoclust.bag_distances).")


def _markdown(rows, params, args) -> str:
    parts = ["# anoclust evaluate", "",
             f"Settings: {settings_line({k: v for k, v in asdict(params).items() if k not in EVALUATE_SETS})}; seeds {','.join(map(str, args.seeds))} "
             "(seed-dependent scores: mean±spread). 'auto' resolves per weighting as docs/DESIGN.md says. "
             "Cells: NMI / ARI / F1; k = number of classes." + _baselines_note(args.weightings), ""]
    titles = {"-": "Labelled datasets", "good": "MVTec AD, good clustered as a class",
              "defects": "MVTec AD, defect types only"}
    for protocol, title in titles.items():
        mine = [r for p, r in rows if p == protocol]
        if mine:
            parts.append(markdown_table(mine, title))
    return "\n".join(parts)
