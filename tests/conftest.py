import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MTD = SHARED / "data" / "mtd"


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the real `anoclust` entry point in a subprocess; returns (code, stdout, stderr)."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run(
        [sys.executable, "-m", "anoclust.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )
    return proc.returncode, proc.stdout, proc.stderr


def call_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run `anoclust ARGS` in this process (no torch start-up cost); returns (code, stdout, stderr)."""
    from anoclust.cli import main

    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def one_thread():
    """One torch thread for tiny inputs: with the cores busy, thread synchronisation makes a
    small forward pass 20x slower. Child processes get OMP_NUM_THREADS=1 for the same reason."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def mvtec_category(tmp_path_factory):
    from anoclust.synthetic import make_mvtec_category

    return make_mvtec_category(tmp_path_factory.mktemp("data") / "surface", n_per_type=8, n_good_test=6, n_train=8)


@pytest.fixture
def mtd_root():
    if not MTD.is_dir():
        pytest.skip(f"MTD data not found at {MTD}")
    return MTD


@pytest.fixture(scope="module")
def browser():
    """Headless system Chromium driven by Playwright (offline); skipped when either is missing."""
    import shutil

    exe = os.environ.get("ANOCLUST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("chromium is not installed (Debian: `apt-get install chromium`; `make test` tries it as root)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
        ])
        yield b
        b.close()
