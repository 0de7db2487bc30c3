import csv
import json

import numpy as np
import pytest

from conftest import call_cli, run_cli


# The flat folder's score peak (weighting.pooling.score_peak) with the default backbone.
PEAK = 5.06


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_cluster_mvtec_layout_end_to_end(mvtec_category, tmp_path):
    out = tmp_path / "run"
    code, stdout, stderr = run_cli(
        "cluster", str(mvtec_category), "--out", str(out), "--k", "4", "--cache", str(tmp_path / "c"), "--quiet"
    )
    assert code == 0, stderr
    rows = read_rows(out / "assignments.csv")
    assert len(rows) == 3 * 8 + 6
    assert {r["label"] for r in rows} == {"good", "scratch", "spot", "crack"}
    assert {int(r["cluster"]) for r in rows} == {0, 1, 2, 3}
    config = json.loads((out / "config.json").read_text())
    assert config["resolved"]["weighting"] == "reference" and config["layout"] == "mvtec"
    assert config["weights_sha256"].startswith("b0353104")
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"nmi", "ari", "f1", "n_images", "n_clusters", "run_id"}
    assert metrics["nmi"] > 0.8
    npz = np.load(out / "embeddings.npz")
    assert npz["embeddings"].shape[0] == len(rows)
    assert np.allclose(npz["weights"].sum(1), 1, atol=1e-4)
    assert "NMI" in stdout


def test_flat_folder_unsupervised_and_no_labels(mvtec_category, tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in sorted((mvtec_category / "test").rglob("*.png"))[:12]:
        (flat / f"{p.parent.name}_{p.name}").write_bytes(p.read_bytes())
    (flat / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "run"
    code, _, stderr = call_cli(capsys, "cluster", str(flat), "--out", str(out), "--k", "2", "--no-cache", "--quiet")
    assert code == 0, stderr
    rows = read_rows(out / "assignments.csv")
    assert len(rows) == 12 and "label" not in rows[0]
    assert not (out / "metrics.json").exists()
    skipped = read_rows(out / "skipped.csv")
    assert [r["path"].endswith("broken.png") for r in skipped] == [True]
    resolved = json.loads((out / "config.json").read_text())["resolved"]
    assert (resolved["weighting"], resolved["method"], resolved["n_components"]) == ("unsupervised", "ward", 8)
    # these local synthetic defects stand out of their images' scores: the deepest tap, l2
    assert resolved["score_peak"] == pytest.approx(PEAK, abs=0.05)
    assert (resolved["embed_taps"], resolved["normalize"]) == ("deepest", "l2")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--k", "500"], "cannot form 500 clusters"),
        (["--weighting", "reference", "--layout", "labelled"], "reference weighting needs normal images"),
        (["--backbone", "vgg99"], "vgg99"),
        (["--backbone", "wide_resnet50_2", "--weights", "/nonexistent/w.pth"], "/nonexistent/w.pth"),
    ],
)
def test_user_errors_are_one_line_exit_2(mvtec_category, tmp_path, capsys, args, message):
    code, _, stderr = call_cli(capsys, "cluster", str(mvtec_category / "test"), "--out", str(tmp_path / "o"),
                               "--no-cache", *args)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in stderr


def test_empty_input_and_out_inside_input_are_refused(tmp_path, mvtec_category, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, stderr = call_cli(capsys, "cluster", str(empty), "--out", str(tmp_path / "o"))
    assert code == 2 and "no images" in stderr and len(stderr.strip().splitlines()) == 1
    code, _, stderr = call_cli(capsys, "cluster", str(mvtec_category), "--out", str(mvtec_category / "out"))
    assert code == 2 and "inside the input folder" in stderr
    assert not (mvtec_category / "out").exists()


@pytest.mark.parametrize("option", [
    ["--k", "zero"], ["--components", "-1"], ["--components", "many"], ["--seed", "-1"], ["--tau", "inf"],
    ["--tau", "0"], ["--normal-threshold", "nan"], ["--image-size", "3000"], ["--method", "wardd"],
])
def test_bad_option_is_one_line(tmp_path, capsys, option):
    code, _, stderr = call_cli(capsys, "cluster", str(tmp_path), "--out", str(tmp_path / "o"), *option)
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and option[0] in stderr


def test_reference_weighting_without_normals_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    from anoclust.synthetic import make_labelled_folder
    from anoclust.features import extract

    data = make_labelled_folder(tmp_path / "data", n_per_type=2, size=64, classes=("spot", "crack"), seed=0)
    monkeypatch.setattr(extract.PatchExtractor, "extract", None)  # reading an image would fail the test
    code, _, stderr = call_cli(capsys, "cluster", str(data), "--out", str(tmp_path / "o"), "--weighting", "reference")
    assert code == 2 and "needs normal images" in stderr


@pytest.mark.slow
def test_demo_reaches_nmi_09(tmp_path):
    code, stdout, stderr = run_cli("demo", "--out", str(tmp_path / "demo"), "--quiet")
    assert code == 0, stderr
    metrics = json.loads((tmp_path / "demo" / "results" / "metrics.json").read_text())
    assert metrics["nmi"] >= 0.9
    assert "NMI" in stdout and "results in" in stdout
