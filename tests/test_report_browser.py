"""The report of a real synthetic run, opened in headless Chromium.

The page has a self-check (run when opened with `?selfcheck`) that clicks the heat-map switch and
records what is laid out and visible; Chromium's --dump-dom hands that record back to the test.
`make test` installs Debian's chromium when it can; without it this test is skipped.
Set ANOCLUST_SAVE_SCREENSHOT=1 to refresh docs/report.png (shown in the README) from this run.
"""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_cli

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WINDOW = "1280,1400"


@pytest.fixture(scope="module")
def chromium():
    exe = os.environ.get("ANOCLUST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("chromium is not installed (Debian: `apt-get install chromium`; `make test` tries it as root)")
    return exe


def run_chromium(exe, profile, *args):
    cmd = [
        exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
        f"--window-size={WINDOW}", "--virtual-time-budget=15000", *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_report_in_headless_chromium(chromium, mvtec_category, tmp_path, tmp_path_factory):
    out = tmp_path / "run"
    cache = tmp_path_factory.getbasetemp() / "report-feature-cache"  # shared with test_report.py
    code, stdout, stderr = run_cli(
        "cluster", str(mvtec_category), "--out", str(out), "--k", "4", "--cache", str(cache), "--quiet"
    )
    assert code == 0, stderr
    report = out / "report.html"
    assert f"report in {report}" in stdout
    n_images = sum(1 for _ in open(out / "assignments.csv")) - 1
    url = report.resolve().as_uri() + "?selfcheck"

    dom = run_chromium(chromium, tmp_path / "profile", "--dump-dom", url)
    found = re.search(r'<pre id="selfcheck" data-done="1">(.*?)</pre>', dom, re.S)
    assert found, "the page's self-check did not run (JavaScript error?)"
    check = json.loads(found.group(1))
    assert check["clusters"] == check["clusters_visible"] == 4
    assert check["thumbnails"] == check["thumbnails_laid_out"] == n_images
    assert check["first_thumbnail_loaded"]
    assert check["switch_visible"]
    assert check["heat_hidden_before"] and check["heat_visible_after"]
    assert check["heat_overlays_visible"] == n_images
    assert check["map_visible"] and check["map_points"] == check["map_points_visible"] == n_images
    assert check["dendrogram_visible"]  # the default method is Ward

    shot = tmp_path / "report.png"
    run_chromium(chromium, tmp_path / "profile", f"--screenshot={shot}", url)
    im = Image.open(shot).convert("RGB")
    assert im.size == tuple(int(v) for v in WINDOW.split(","))
    assert np.asarray(im).std() > 20  # a page with pictures on it, not a blank screen
    if os.environ.get("ANOCLUST_SAVE_SCREENSHOT"):
        # 256 colours keep the committed file small; the page is mostly flat colours anyway
        im.quantize(256, method=Image.Quantize.MEDIANCUT).save(ROOT / "docs" / "report.png", optimize=True)
