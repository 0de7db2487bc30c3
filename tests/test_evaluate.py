import csv

import pytest

from anoclust.errors import AnoclustError
from anoclust.evaluation import group_means, markdown_table, mtd_dataset
from conftest import run_cli


@pytest.fixture(scope="module")
def mvtec_root(tmp_path_factory):
    from anoclust.synthetic import make_mvtec_category

    root = tmp_path_factory.mktemp("mvtec")
    make_mvtec_category(root / "bottle", n_per_type=5, n_good_test=4, n_train=5, size=64)
    make_mvtec_category(root / "carpet", n_per_type=5, n_good_test=4, n_train=5, size=64, seed=1,
                        defect_types=("spot", "crack"))
    return root


@pytest.mark.slow
def test_evaluate_mvtec_end_to_end(mvtec_root, tmp_path):
    out = tmp_path / "eval"
    code, stdout, stderr = run_cli("evaluate", "--mvtec", str(mvtec_root), "--protocol", "both", "--seeds", "0,1",
                                   "--image-size", "64", "--out", str(out), "--cache", str(tmp_path / "c"), "--quiet")
    assert code == 0, stderr
    rows = list(csv.DictReader(open(out / "results.csv", newline="")))
    key = {(r["protocol"], r["dataset"], r["weighting"]): r for r in rows}
    for protocol, n_bottle, k_bottle in (("good", 19, "4"), ("defects", 15, "3")):
        for w in ("uniform", "max", "unsupervised", "reference"):
            assert key[(protocol, "bottle", w)]["n_images"] == str(n_bottle)
            assert key[(protocol, "bottle", w)]["k"] == k_bottle
            for mean in ("mean objects", "mean textures", "mean all"):
                assert (protocol, mean, w) in key
    # seed-independent rows run once, the sampled unsupervised score once per seed
    assert key[("good", "carpet", "uniform")]["n_seeds"] == "1"
    assert key[("good", "carpet", "unsupervised")]["n_seeds"] == "2"
    both = [float(key[("good", c, "reference")]["nmi"]) for c in ("bottle", "carpet")]
    assert float(key[("good", "mean all", "reference")]["nmi"]) == pytest.approx(sum(both) / 2, abs=1e-3)
    md = (out / "results.md").read_text()
    assert "good clustered as a class" in md and "defect types only" in md and "**mean all**" in md


def test_evaluate_user_errors(mvtec_root, tmp_path, capsys):
    from anoclust.cli import main

    assert main(["evaluate", "--mvtec", str(mvtec_root), "--categories", "zipper", "--out", str(tmp_path / "o")]) == 2
    assert "zipper" in capsys.readouterr().err
    assert main(["evaluate", "--out", str(tmp_path / "o")]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err


def _row(dataset, group, weighting, nmi):
    return dict(dataset=dataset, group=group, weighting=weighting, n_images=10, k=3, n_seeds=1,
                nmi=nmi, nmi_std=0.0, ari=nmi, ari_std=0.0, f1=nmi, f1_std=0.0)


def test_group_means_split_objects_and_textures():
    rows = [_row("bottle", "object", "uniform", 0.2), _row("cable", "object", "uniform", 0.4),
            _row("wood", "texture", "uniform", 0.9)]
    means = {r["dataset"]: r for r in group_means(rows)}
    assert means["mean objects"]["nmi"] == pytest.approx(0.3)
    assert means["mean textures"]["nmi"] == pytest.approx(0.9)
    assert means["mean all"]["nmi"] == pytest.approx(1.5 / 3)
    table = markdown_table(rows + group_means(rows), "t")
    assert "| bottle | 10 | 3 | 0.200 / 0.200 / 0.200 |" in table


def test_mtd_protocol_uses_listed_normals_only(tmp_path):
    from PIL import Image

    for c in ("MT_Blowhole", "MT_Break", "MT_Crack", "MT_Fray", "MT_Uneven", "MT_Free"):
        d = tmp_path / c / "Imgs"
        d.mkdir(parents=True)
        for i in range(2):
            Image.new("L", (8, 8)).save(d / f"{i}.jpg")
            Image.new("L", (8, 8)).save(d / f"{i}.png")  # the mask beside the image
    (tmp_path / "reference_normals.txt").write_text("MT_Free/Imgs/1.jpg\n")
    ds = mtd_dataset(tmp_path)
    assert len(ds.images.paths) == 10 and set(ds.images.labels) == {"MT_Blowhole", "MT_Break", "MT_Crack",
                                                                       "MT_Fray", "MT_Uneven"}
    assert [p.name for p in ds.images.normals] == ["1.jpg"]
    (tmp_path / "reference_normals.txt").unlink()
    with pytest.raises(AnoclustError):
        mtd_dataset(tmp_path)


def test_bag_baseline_rows_follow_the_weightings():
    rows = [_row("bottle", "object", "hausdorff", 0.5), _row("bottle", "object", "uniform", 0.2),
            _row("bottle", "object", "chamfer", 0.4)]
    table = markdown_table(rows + group_means(rows), "t")
    assert ("| dataset | images | k | uniform NMI / ARI / F1 | chamfer NMI / ARI / F1 | hausdorff NMI / ARI / F1 |"
            in table)
    assert {r["weighting"] for r in group_means(rows) if r["dataset"] == "mean all"} == {"uniform", "chamfer",
                                                                                       "hausdorff"}


def test_evaluate_embedded_bag_baselines_per_seed():
    import numpy as np

    from anoclust.evaluation import Dataset, Embedded, evaluate_embedded
    from anoclust.settings import Params

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 8)) * 4
    bags = rng.normal(size=(10, 256, 8)) * 0.3  # a 16 x 16 grid: 144 patches inside the ring of 2
    for i in range(10):
        bags[i, rng.choice(256, 40, replace=False)] += centres[i % 2]
    truth = ["a" if i % 2 == 0 else "b" for i in range(10)]
    data = Embedded(Dataset("toy", "folder", None), bags.astype(np.float16), truth, None)
    rows = evaluate_embedded(data, Params(), ["hausdorff", "reference", "chamfer"], seeds=(0, 1))
    assert [r["weighting"] for r in rows] == ["hausdorff", "chamfer"]  # reference: no normals
    for r in rows:
        assert r["n_seeds"] == 2 and r["k"] == 2 and r["nmi"] == pytest.approx(1.0)
    # an 8 x 8 grid keeps 36 patches inside its ring: every patch compared, the seed has no part
    small = Embedded(data.dataset, data.bags[:, :64], truth, None)
    rows = evaluate_embedded(small, Params(), ["chamfer"], seeds=(0, 1))
    assert rows[0]["n_seeds"] == 1
