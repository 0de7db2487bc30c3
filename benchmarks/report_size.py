"""Size and build time of the HTML report for a large synthetic run (default: 2,000 images).

    python benchmarks/report_size.py --n-per-type 400 [--work DIR]

Writes 5 x N synthetic defect images (256 px, all five defect types) plus 20 normal images,
clusters them once with the default settings (features cached in WORK/cache, report off), then
times `write_report` and, when chromium is installed, how long headless Chromium takes to open
the page and run its self-check. Prints a Markdown table row.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import _util  # noqa: F401  (puts src/ on the path)
from anoclust.job import RunOptions, cluster_input
from anoclust.report import write_report
from anoclust.settings import Params
from anoclust.synthetic import DEFECT_TYPES, make_labelled_folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-per-type", type=int, default=400)
    ap.add_argument("--image-size", type=int, default=256, help="size of the synthetic images")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "anoclust-report-bench"))
    args = ap.parse_args()

    work = Path(args.work)
    data, normal = work / "data", work / "normal"
    n = args.n_per_type * len(DEFECT_TYPES)
    if not (data / DEFECT_TYPES[0] / f"{args.n_per_type - 1:03d}.png").exists():
        shutil.rmtree(work, ignore_errors=True)
        make_labelled_folder(data, args.n_per_type, size=args.image_size, classes=DEFECT_TYPES, normal_root=normal)
    run = work / "run"
    if not (run / "embeddings.npz").exists():
        options = RunOptions(normal=str(normal), cache=str(work / "cache"), report=False)
        cluster_input(data, run, Params(n_clusters=len(DEFECT_TYPES)), options)

    t0 = time.perf_counter()
    report = write_report(run)
    build_s = time.perf_counter() - t0
    size_mb = report.stat().st_size / 1e6

    open_s = "n/a (no chromium)"
    exe = shutil.which("chromium")
    if exe:
        with tempfile.TemporaryDirectory() as profile:
            t0 = time.perf_counter()
            dom = subprocess.run(
                [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1280,1400", "--virtual-time-budget=15000",
                 "--dump-dom", report.resolve().as_uri() + "?selfcheck"],
                capture_output=True, text=True, timeout=600,
            ).stdout
            open_s = f"{time.perf_counter() - t0:.1f} s"
        check = json.loads(re.search(r'<pre id="selfcheck" data-done="1">(.*?)</pre>', dom, re.S).group(1))
        assert check["thumbnails"] == check["thumbnails_laid_out"] == n, check
    print("| images | report.html | build time | Chromium open + self-check |")
    print("|---:|---:|---:|---:|")
    print(f"| {n} | {size_mb:.1f} MB ({size_mb * 1e3 / n:.1f} kB per image) | {build_s:.1f} s | {open_s} |")


if __name__ == "__main__":
    main()
