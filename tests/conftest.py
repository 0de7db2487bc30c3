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


@pytest.fixture(scope="session")
def mvtec_category(tmp_path_factory):
    from anoclust.synthetic import make_mvtec_category

    return make_mvtec_category(tmp_path_factory.mktemp("data") / "surface", n_per_type=8, n_good_test=6, n_train=8)


@pytest.fixture
def mtd_root():
    if not MTD.is_dir():
        pytest.skip(f"MTD data not found at {MTD}")
    return MTD
