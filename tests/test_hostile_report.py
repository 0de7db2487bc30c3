"""`anoclust report` on runs moved around or edited by hand: the images are found, and a damaged
run folder is refused in one line."""

import json

import numpy as np
import pytest

from anoclust.outputs import write_npz
from anoclust.synthetic import make_labelled_folder
from conftest import call_cli


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run started in its own working folder with a relative input."""
    import os

    work = tmp_path_factory.mktemp("report")
    make_labelled_folder(work / "lab", n_per_type=3, size=48, classes=("spot", "crack"))
    here = os.getcwd()
    os.chdir(work)
    try:
        from anoclust.cli import main

        assert main(["cluster", "lab", "--out", "run", "--k", "2", "--image-size", "64", "--quiet", "--no-cache"]) == 0
    finally:
        os.chdir(here)
    return work / "run"


def test_report_from_another_folder_finds_every_image(run, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir("/")
    code, _, err = call_cli(capsys, "report", str(run), "--out", str(tmp_path / "r.html"))
    assert code == 0, err
    html = (tmp_path / "r.html").read_text()
    assert "image missing" not in html and html.count('class="pic" src="data:image/jpeg') == 6


def test_report_out_that_is_a_folder(run, capsys, tmp_path):
    code, _, err = call_cli(capsys, "report", str(run), "--out", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "is a folder" in err


def _copy(run, dst):
    dst.mkdir()
    for p in run.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def _npz(folder, **changes):
    with np.load(folder / "embeddings.npz") as npz:
        arrays = dict(npz)
    arrays.update(changes)
    write_npz(folder / "embeddings.npz", **arrays)


@pytest.mark.parametrize("damage, match", [
    (lambda f: (f / "config.json").write_text("[1, 2]"), "config.json holds a list"),
    (lambda f: (f / "config.json").write_text("{not json"), "cannot read the run"),
    (lambda f: (f / "config.json").write_text(json.dumps({"resolved": {"normalize": "magic"}})), "normalisation"),
    (lambda f: _npz(f, grid=np.array([3, 3])), "weights has shape"),
    (lambda f: _npz(f, grid=np.array([0, 3])), "grid"),
    (lambda f: _npz(f, labels=np.zeros(2, dtype=int)), "labels has shape"),
    (lambda f: _npz(f, embeddings=np.full((6, 96), np.nan, np.float32)), "NaN"),
    (lambda f: _npz(f, embeddings=np.zeros((4, 96), np.float32)), "embeddings has shape"),
    (lambda f: (f / "embeddings.npz").write_bytes(b"PK\x03\x04 truncated"), "cannot read the run"),
])
def test_a_hand_edited_run_folder_is_refused_in_one_line(run, tmp_path, capsys, damage, match):
    folder = _copy(run, tmp_path / "edited")
    damage(folder)
    code, _, err = call_cli(capsys, "report", str(folder))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert __import__("re").search(match, err), err
