"""`anoclust export RUN_DIR --to DIR`: the run's groups as one folder per label."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a run's groups as a labelled image folder (one subfolder per label)",
                       description="Write the images of a cluster or assign run into one subfolder per label "
                                   "(linked, or copied with --copy), with a labels.csv.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="output folder of `anoclust cluster` or `anoclust assign`")
    p.add_argument("--to", required=True, metavar="DIR", help="new folder to write the labelled tree into")
    p.add_argument("--labels", metavar="CSV", help="corrected labels (the report's labels.csv): the folders are "
                                                   "named by them, and images it leaves out are not exported")
    p.add_argument("--copy", action="store_true", help="copy the images instead of linking them")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import export_run

    done = export_run(args.run_dir, args.to, args.labels, args.copy)
    parts = ", ".join(f"{folder} {n}" for folder, n in done.counts.items())
    print(f"exported {sum(done.counts.values())} images into {done.folder} ({parts})"
          + (f"; {len(done.missing)} no longer exist" if done.missing else ""))
    return 0
