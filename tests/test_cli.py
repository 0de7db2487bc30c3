import csv
import json

import numpy as np
import pytest

from conftest import run_cli


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


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
    assert config["weighting"] == "reference" and config["layout"] == "mvtec"
    assert config["weights_sha256"].startswith("b0353104")
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"nmi", "ari", "f1", "n_images", "n_clusters"}
    assert metrics["nmi"] > 0.8
    npz = np.load(out / "embeddings.npz")
    assert npz["embeddings"].shape[0] == len(rows)
    assert np.allclose(npz["weights"].sum(1), 1, atol=1e-4)
    assert "NMI" in stdout


def test_flat_folder_unsupervised_and_no_labels(mvtec_category, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in sorted((mvtec_category / "test").rglob("*.png"))[:12]:
        (flat / f"{p.parent.name}_{p.name}").write_bytes(p.read_bytes())
    (flat / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "run"
    code, _, stderr = run_cli("cluster", str(flat), "--out", str(out), "--k", "2", "--no-cache", "--quiet")
    assert code == 0, stderr
    rows = read_rows(out / "assignments.csv")
    assert len(rows) == 12 and "label" not in rows[0]
    assert not (out / "metrics.json").exists()
    skipped = read_rows(out / "skipped.csv")
    assert [r["path"].endswith("broken.png") for r in skipped] == [True]
    config = json.loads((out / "config.json").read_text())
    assert config["weighting"] == "unsupervised" and config["method"] == "ward"
    # the embedding follows the recorded score peak (estimator.LOCAL_PEAK = 4.5)
    assert config["embed_taps"] == ("deepest" if config["score_peak"] >= 4.5 else "all")
    assert config["normalize"] == ("l2" if config["score_peak"] >= 4.5 else "none")
    assert config["n_components"] == 8  # 4 per cluster (estimator.resolve_components)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--k", "500"], "cannot form 500 clusters"),
        (["--weighting", "reference", "--layout", "labelled"], "reference weighting needs normal images"),
        (["--backbone", "vgg99"], "vgg99"),
        (["--backbone", "wide_resnet50_2", "--weights", "/nonexistent/w.pth"], "/nonexistent/w.pth"),
    ],
)
def test_user_errors_are_one_line_exit_2(mvtec_category, tmp_path, args, message):
    code, _, stderr = run_cli("cluster", str(mvtec_category / "test"), "--out", str(tmp_path / "o"), "--no-cache", *args)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in stderr


def test_empty_input_and_out_inside_input_are_refused(tmp_path, mvtec_category):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, stderr = run_cli("cluster", str(empty), "--out", str(tmp_path / "o"))
    assert code == 2 and "no images" in stderr and len(stderr.strip().splitlines()) == 1
    code, _, stderr = run_cli("cluster", str(mvtec_category), "--out", str(mvtec_category / "out"))
    assert code == 2 and "inside the input folder" in stderr
    assert not (mvtec_category / "out").exists()


@pytest.mark.parametrize("option", [["--k", "zero"], ["--components", "-1"], ["--components", "many"]])
def test_bad_option_is_one_line(tmp_path, option):
    code, _, stderr = run_cli("cluster", str(tmp_path), "--out", str(tmp_path / "o"), *option)
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and option[0] in stderr


def test_demo_reaches_nmi_09(tmp_path):
    code, stdout, stderr = run_cli("demo", "--out", str(tmp_path / "demo"), "--quiet")
    assert code == 0, stderr
    metrics = json.loads((tmp_path / "demo" / "results" / "metrics.json").read_text())
    assert metrics["nmi"] >= 0.9
    assert "NMI" in stdout and "results in" in stdout
