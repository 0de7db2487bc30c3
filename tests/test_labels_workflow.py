"""From clusters to a labelled set and a model that answers with the user's names."""

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from anoclust.errors import AnoclustError
from anoclust.estimator import AnomalyClustering, load_model
from anoclust.labels import NORMAL
from anoclust.synthetic import make_labelled_folder
from conftest import call_cli

ARGS = ["--image-size", "64", "--quiet"]


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_estimator_fitted_with_labels_names_its_clusters(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(["dent", "scratch", "normal"], [10, 6, 4])
    bags = rng.normal(scale=0.3, size=(20, 16, 8)).astype(np.float32)
    bags[:10, 3, 0] += 4.0
    bags[10:16, 7, 1] += 4.0
    est = AnomalyClustering(n_sampled=4).fit(bags, y)
    assert est.cluster_names_ == ["dent", "scratch"] and est.method_ == "labels"
    assert est.labels_.tolist() == [0] * 10 + [1] * 6 + [NORMAL] * 4
    # the images labelled normal became the references: reference weighting, calibrated threshold
    assert est.weighting_ == "reference" and est.normal_threshold_ > 0
    est.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert back.cluster_names_ == ["dent", "scratch"]
    new = rng.normal(scale=0.3, size=(3, 16, 8)).astype(np.float32)
    new[0, 3, 0] += 4.0
    new[1, 7, 1] += 4.0
    assert back.predict(new).tolist()[:2] == [0, 1]
    with pytest.raises(AnoclustError, match="one label per image"):
        AnomalyClustering().fit(bags, y[:3])


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("workflow")
    make_labelled_folder(root / "lab", n_per_type=6, size=64, classes=("spot", "crack", "scratch"),
                         normal_root=root / "lab" / "good", n_normal=5)  # defect-free images among them
    (root / "lab" / "crack" / "same.png").write_bytes(next((root / "lab" / "crack").glob("0*.png")).read_bytes())
    (root / "lab" / "spot" / "same.png").write_bytes(next((root / "lab" / "spot").glob("0*.png")).read_bytes())
    return root


@pytest.mark.slow
def test_cluster_correct_fit_from_labels_assign_and_export(lab, tmp_path, capsys):
    cache = ["--cache", str(lab / "cache")]
    run = tmp_path / "run"
    assert call_cli(capsys, "cluster", str(lab / "lab"), "--out", str(run), "--k", "4", *ARGS, *cache)[0] == 0
    rows = _rows(run / "assignments.csv")
    # the user's corrections, as the report's download writes them: names from the true folder,
    # the good images marked not a defect, one image excluded (left out)
    names = {"spot": "round spot", "crack": "crack, long", "scratch": "scratch", "good": "normal"}
    corrected = [[str(Path(r["path"]).resolve()), names[r["label"]], r["cluster"]] for r in rows[1:]]
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as f:
        csv.writer(f).writerows([["path", "label", "cluster"], *corrected])

    model = tmp_path / "model"
    code, out, err = call_cli(capsys, "fit", str(labels), "--out", str(model), "--from-labels", *ARGS, *cache)
    assert code == 0, err
    assert "crack, long" in out
    code, _, err = call_cli(capsys, "assign", str(model), str(lab / "lab"), "--out", str(tmp_path / "new"), "--quiet",
                            *cache)
    assert code == 0, err
    new = _rows(tmp_path / "new" / "assignments.csv")
    right = sum(r["cluster"] == names[r["label"]] or r["nearest_cluster"] == names[r["label"]] for r in new)
    assert right >= 0.9 * len(new)
    assert {r["cluster"] for r in new} <= set(names.values()) | {"unknown", "normal"}

    tree = tmp_path / "export"
    code, out, err = call_cli(capsys, "export", str(run), "--to", str(tree), "--labels", str(labels))
    assert code == 0, err
    listed = _rows(tree / "labels.csv")
    assert len(listed) == len(corrected)  # the excluded image is not exported
    expected = {(row[0], row[1]) for row in corrected}
    assert {(r["source"], r["label"]) for r in listed} == expected
    for r in listed:  # file by file: a link to its source, in its label's folder
        target = tree / r["path"]
        assert target.is_symlink() and os.readlink(target) == r["source"]
        assert target.parent.name == ("crack, long" if r["label"] == "crack, long" else r["label"])
    same = sorted(p.name for p in tree.rglob("same*.png"))
    assert same == ["same.png", "same.png"] or same == ["same.png", "same__2.png"]
    assert sorted(p.name for p in tree.iterdir()) == sorted(["labels.csv", "crack, long", "normal", "round spot",
                                                             "scratch"])
    # never overwrites: a second export into the same folder is refused, the tree unchanged
    code, _, err = call_cli(capsys, "export", str(run), "--to", str(tree))
    assert code == 2 and "already holds files" in err
    code, _, err = call_cli(capsys, "export", str(run), "--to", str(tmp_path / "copies"), "--copy")
    assert code == 0, err
    copies = _rows(tmp_path / "copies" / "labels.csv")
    assert len(copies) == len(rows) and {r["label"] for r in copies} == {r["cluster"] for r in rows}
    for r in copies:
        assert not (tmp_path / "copies" / r["path"]).is_symlink()
        assert (tmp_path / "copies" / r["path"]).read_bytes() == Path(r["source"]).read_bytes()


def test_export_keeps_names_apart_and_inside_the_tree(tmp_path, capsys):
    from anoclust.export import _folder_name, _plan

    assert _folder_name("..") == "_.." and _folder_name("a/b") == "a_b" and _folder_name("") == "_"
    a, b = tmp_path / "x" / "img.png", tmp_path / "y" / "img.png"
    plan = _plan([(a, "t"), (b, "t"), (tmp_path / "z.png", "a/b"), (tmp_path / "w.png", "a_b")])
    assert plan[a] == ("t", "img.png") and plan[b] == ("t", "img__2.png")
    assert {plan[tmp_path / "z.png"][0], plan[tmp_path / "w.png"][0]} == {"a_b", "a_b_"}


def test_from_labels_needs_labels(lab, tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.png").write_bytes(next((lab / "lab" / "spot").glob("0*.png")).read_bytes())
    code, _, err = call_cli(capsys, "fit", str(flat), "--out", str(tmp_path / "m"), "--from-labels", *ARGS)
    assert code == 2 and "--from-labels needs a label" in err
