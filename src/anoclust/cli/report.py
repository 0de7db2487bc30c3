"""`anoclust report RUN_DIR`: rebuild a run's report.html from its files (no network run)."""

from __future__ import annotations

import argparse

from .options import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="rebuild the HTML report of a finished run",
                       description="Rebuild report.html of a finished `anoclust cluster` run from its output "
                                   "files and the original images, without re-running the network.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="output folder of an `anoclust cluster` run")
    p.add_argument("--out", metavar="FILE", help="where to write the report (default RUN_DIR/report.html)")
    p.add_argument("--thumb-size", type=positive_int, default=128, help="thumbnail size in pixels (default %(default)s)")
    p.add_argument("--k", type=positive_int, metavar="N",
                   help="show the run at N clusters: rewrites its assignments.csv, metrics.json and report from the "
                        "clusterings the run kept (no network, no re-clustering)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.k is not None:
        from ..errors import AnoclustError
        from ..job import recut_run

        if args.out:
            raise AnoclustError("--k rewrites the run folder itself: leave out --out")
        recut_run(args.run_dir, args.k, args.thumb_size, quiet=args.quiet)
        print(f"the run in {args.run_dir} now shows {args.k} clusters (assignments.csv, report.html)")
        return 0
    from ..report import write_report

    print(f"report in {write_report(args.run_dir, args.out, args.thumb_size, quiet=args.quiet)}")
    return 0
