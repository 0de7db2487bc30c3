"""Options and messages under a careless user: one line that says what is wrong, before the work."""

import warnings

import pytest

from anoclust.synthetic import make_labelled_folder
from conftest import call_cli

ARGS = ["--image-size", "64", "--no-cache", "--no-report"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("options")
    return make_labelled_folder(root / "lab", n_per_type=2, size=48, classes=("spot", "crack"),
                                normal_root=root / "normal", n_normal=3)


def test_spectral_with_as_many_clusters_as_images(lab, tmp_path, capsys):
    code, _, err = call_cli(capsys, "cluster", str(lab), "--out", str(tmp_path / "o"), "--method", "spectral",
                            "--k", "4", *ARGS)
    assert code == 2 and err.count("\n") == 1 and "fewer clusters than images" in err


@pytest.mark.parametrize("weights, match", [("/tmp", "not a regular file"), ("/dev/zero", "not a regular file"),
                                            ("/nonexistent/w.pth", "does not exist")])
def test_weights_that_are_not_a_file(lab, tmp_path, capsys, weights, match):
    code, _, err = call_cli(capsys, "cluster", str(lab), "--out", str(tmp_path / "o"), "--weights", weights, *ARGS)
    assert code == 2 and err.count("\n") == 1 and match in err


def test_evaluate_with_a_missing_mtd_folder(capsys, tmp_path):
    code, _, err = call_cli(capsys, "evaluate", "--mtd", "/nonexistent", "--out", str(tmp_path / "e"))
    assert code == 2 and err.count("\n") == 1 and "--mtd /nonexistent needs" in err and "--force" not in err


def test_normals_that_are_the_clustered_images(lab, tmp_path, capsys):
    code, _, err = call_cli(capsys, "cluster", str(lab), "--out", str(tmp_path / "o"), "--normal", str(lab),
                            "--normal-threshold", "auto", *ARGS)
    assert code == 2 and "set apart as normal: nothing is left to cluster" in err


def test_unreadable_normals_are_said_not_silently_dropped(lab, tmp_path, capsys, caplog):
    bad = tmp_path / "bad normals"
    bad.mkdir()
    for i in range(2):
        (bad / f"{i}.png").write_bytes(b"not a picture")
    code, _, err = call_cli(capsys, "cluster", str(lab), "--out", str(tmp_path / "o"), "--normal", str(bad), "--k",
                            "2", *ARGS)
    assert code == 0 and "none of the normal images could be read" in caplog.text


def test_quiet_silences_library_warnings(lab, tmp_path, capsys, monkeypatch):
    from anoclust import fit

    real = fit.cluster

    def noisy(*a, **k):
        warnings.warn("a library's UserWarning", UserWarning)
        return real(*a, **k)

    monkeypatch.setattr(fit, "cluster", noisy)
    code, _, err = call_cli(capsys, "cluster", str(lab), "--out", str(tmp_path / "o"), "--k", "2", "--quiet", *ARGS)
    assert code == 0 and err == ""
