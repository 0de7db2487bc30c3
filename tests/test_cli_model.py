"""CLI of the production-line features: --k auto, --normal-threshold, --save-model, fit, assign."""

import csv
import json

import pytest

from conftest import call_cli, run_cli


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_cluster_save_model_then_assign(mvtec_category, tmp_path):
    cache, model = str(tmp_path / "c"), tmp_path / "model"
    code, stdout, stderr = run_cli(
        "cluster", str(mvtec_category), "--out", str(tmp_path / "run"), "--normal-threshold", "auto",
        "--save-model", str(model), "--cache", cache, "--quiet",
    )
    assert code == 0, stderr
    rows = read_rows(tmp_path / "run" / "assignments.csv")
    normal = [r["label"] for r in rows if r["cluster"] == "normal"]
    assert len(normal) >= 4 and normal.count("good") >= 0.8 * len(normal)  # test/good mostly set apart
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    resolved = config["resolved"]
    assert config["settings"]["n_clusters"] == "auto" and resolved["n_clusters"] >= 2
    assert resolved["normal_threshold"] > 0
    assert resolved["method"] == "ward_kmeans"  # "auto" resolved for the reference weighting
    meta = json.loads((model / "model.json").read_text())
    assert meta["format_version"] == 5 and meta["weights_sha256"].startswith("b0353104")
    # reference weighting with the default taps: the deepest tap (96 of 128 channels), l2
    assert (meta["resolved"]["normalize"], meta["resolved"]["embed_from"]) == ("l2", 32)
    # the model keeps the resolved aspect among its settings, which assign extracts with
    assert meta["resolved"] == {k: v for k, v in resolved.items() if k != "aspect"}
    assert config["settings"]["aspect"] == "auto" and meta["settings"]["aspect"] == resolved["aspect"] == "squash"

    code, stdout, stderr = run_cli("assign", str(model), str(mvtec_category), "--out", str(tmp_path / "new"),
                                   "--cache", cache, "--quiet")
    assert code == 0, stderr
    again = {r["path"]: r for r in read_rows(tmp_path / "new" / "assignments.csv")}
    assert set(again) == {r["path"] for r in rows}
    same = sum(again[r["path"]]["cluster"] in (r["cluster"], "unknown") for r in rows)
    assert same >= 0.9 * len(rows)
    assert set(next(iter(again.values()))) == {"path", "cluster", "nearest_cluster", "label", "distance", "max_patch_score"}


@pytest.mark.slow
def test_fit_writes_only_the_model_and_assign_refuses_bad_models(mvtec_category, tmp_path, capsys):
    model = tmp_path / "model"
    code, stdout, stderr = run_cli("fit", str(mvtec_category), "--out", str(model), "--k", "4",
                                   "--cache", str(tmp_path / "c"), "--quiet")
    assert code == 0, stderr
    assert sorted(p.name for p in model.iterdir()) == ["model.json", "model.npz"]
    code, _, stderr = call_cli(capsys, "assign", str(model), str(mvtec_category), "--out", str(tmp_path / "o"),
                               "--backbone", "resnet18")
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "fitted with backbone mobilenet_v2" in stderr
