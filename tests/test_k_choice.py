"""Choosing k, and every k kept: `--k auto` prints its candidates, `report --k N` re-cuts a run."""

import csv
import json

import numpy as np
import pytest

from anoclust.choose_k import choose_k
from anoclust.synthetic import make_labelled_folder
from conftest import call_cli

ARGS = ["--image-size", "64", "--quiet", "--no-cache"]


def blobs(k, n_per=15, d=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10.0, size=(k, d))
    return np.concatenate([c + rng.normal(size=(n_per, d)) for c in centres])


@pytest.mark.parametrize("k, found", [(2, 2), (3, 3), (4, 4), (5, 4), (8, 6)])
def test_knee_on_separated_groups(k, found):
    # many equally separated groups are under-counted: the knee's known bias
    assert choose_k(blobs(k), k_max=20)[0] == found


def test_identical_images_are_one_group():
    assert choose_k(np.ones((12, 5)), k_max=20)[0] == 1


def test_three_clean_kinds_of_many_images():
    x = np.concatenate([np.full((100, 4), c, float) + np.random.default_rng(int(c)).normal(scale=0.1, size=(100, 4))
                        for c in (0.0, 5.0, 10.0)])
    assert choose_k(x, k_max=20)[0] == 3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("kchoice")
    make_labelled_folder(root / "lab", n_per_type=5, size=64, classes=("spot", "crack", "scratch"))
    return root


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_candidates_printed_recorded_and_every_k_kept(run, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = call_cli(capsys, "cluster", str(run / "lab"), "--out", str(out), "--k-max", "6", *ARGS)
    assert code == 0, err
    resolved = json.loads((out / "config.json").read_text())["resolved"]
    diag = resolved["k_diagnostics"]
    assert diag["criterion"] == "knee" and diag["ks"] == [2, 3, 4, 5, 6]
    ranked = sorted(zip(diag["ks"], diag["values"]), key=lambda kv: -kv[1])
    assert ranked[0][0] == resolved["n_clusters"]
    assert f"k = {ranked[0][0]}: {ranked[0][1]:.3f}, k = {ranked[1][0]}: {ranked[1][1]:.3f}, k = {ranked[2][0]}" in stdout
    with np.load(out / "embeddings.npz") as npz:
        assert npz["ks"].tolist() == [1, 2, 3, 4, 5, 6]
        by_k = npz["labels_by_k"]
        assert [len(set(row)) for row in by_k] == [1, 2, 3, 4, 5, 6]
        assert np.array_equal(by_k[resolved["n_clusters"] - 1], npz["labels"])
    # report --k: the run folder as `--k 4` writes it, without the network
    assert call_cli(capsys, "report", str(out), "--k", "4")[0] == 0
    direct = tmp_path / "direct"
    assert call_cli(capsys, "cluster", str(run / "lab"), "--out", str(direct), "--k", "4", "--k-max", "6", *ARGS)[0] == 0
    assert (out / "assignments.csv").read_bytes() == (direct / "assignments.csv").read_bytes()
    metrics = json.loads((out / "metrics.json").read_text())
    direct_metrics = json.loads((direct / "metrics.json").read_text())
    assert metrics == direct_metrics  # same run_id too: it is the assignments' hash
    assert json.loads((out / "config.json").read_text())["shown_k"] == 4
    code, _, err = call_cli(capsys, "report", str(out), "--k", "9")
    assert code == 2 and "holds k = 1..6, not k = 9" in err
