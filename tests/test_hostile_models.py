"""A damaged model folder is refused with one line before any of its arrays is used: never a
traceback, never a hang."""

import io
import json
import os
import threading

import numpy as np
import pytest

from anoclust.errors import AnoclustError
from anoclust.estimator import AnomalyClustering, load_model
from conftest import call_cli


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    rng = np.random.default_rng(0)
    bags = rng.normal(size=(24, 16, 8)).astype(np.float32)
    bags[np.arange(24), 5, np.arange(24) % 3] += 4.0
    normal = rng.normal(size=(4, 16, 8)).astype(np.float32)
    folder = tmp_path_factory.mktemp("models") / "good"
    AnomalyClustering(n_clusters=3, n_sampled=4).fit(bags, normal=normal).save(folder)
    return folder, bags


def _copy(src, dst):
    dst.mkdir()
    for name in ("model.json", "model.npz"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def _edit_json(folder, change):
    meta = json.loads((folder / "model.json").read_text())
    change(meta)
    (folder / "model.json").write_text(json.dumps(meta))


def _edit_npz(folder, change):
    with np.load(folder / "model.npz") as npz:
        arrays = dict(npz)
    change(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (folder / "model.npz").write_bytes(buf.getvalue())


def _refused(folder, match):
    with pytest.raises(AnoclustError, match=match):
        load_model(folder)


def test_the_intact_model_loads_and_assigns(model):
    folder, bags = model
    assert (load_model(folder).predict(bags[:3]) >= 0).all()


@pytest.mark.parametrize("change, match", [
    (lambda m: m.pop("settings"), "missing 'settings'"),
    (lambda m: m.update(settings=[1, 2]), "settings must be an object"),
    (lambda m: m["settings"].update(tau=-1), "tau"),
    (lambda m: m["settings"].update(position_norm=True), "unknown setting"),
    (lambda m: m["settings"].update(aspect="auto"), "aspect must be squash or keep"),
    (lambda m: m.pop("resolved"), "missing 'resolved'"),
    (lambda m: m["resolved"].update(n_clusters="3"), "n_clusters"),
    (lambda m: m["resolved"].update(embed_from=-1), "embed_from"),
    (lambda m: m["resolved"].update(weighting="magic"), "weighting"),
    (lambda m: m["resolved"].pop("normalize"), "exactly the keys"),
    (lambda m: m.update(patch_shape=[16]), "patch_shape"),
    (lambda m: m.update(patch_shape=[16, 9]), "shape"),
    (lambda m: m.update(taps=7), "taps"),
    (lambda m: m.pop("calibration") and m.pop("weights_sha256"), "weights_sha256"),
])
def test_damaged_model_json(model, tmp_path, change, match):
    folder = _copy(model[0], tmp_path / "m")
    _edit_json(folder, change)
    _refused(folder, match)


@pytest.mark.parametrize("change, match", [
    (lambda a: a.pop("cluster_centers"), "missing 'cluster_centers'"),
    (lambda a: a.update(cluster_centers=a["cluster_centers"][:2]), "cluster_centers has shape"),
    (lambda a: a.update(unknown_thresholds=np.full(3, np.nan)), "finite"),
    (lambda a: a.update(fit_embeddings=a["fit_embeddings"].astype(str)), "finite"),
    (lambda a: a.update({"weighting/bank": a["weighting/bank"][:, :5]}), "weighting state bank"),
    (lambda a: a.pop("weighting/bank"), "missing 'bank'"),
])
def test_damaged_model_npz(model, tmp_path, change, match):
    folder = _copy(model[0], tmp_path / "m")
    _edit_npz(folder, change)
    _refused(folder, match)


def test_truncated_or_foreign_npz(model, tmp_path):
    folder = _copy(model[0], tmp_path / "m")
    blob = (folder / "model.npz").read_bytes()
    (folder / "model.npz").write_bytes(blob[: len(blob) // 2])  # a partial copy
    _refused(folder, "model.npz")
    np.save(folder / "plain.npy", np.zeros(3))
    os.replace(folder / "plain.npy", folder / "model.npz")
    _refused(folder, r"model\.npz")


@pytest.mark.parametrize("name", ["model.json", "model.npz"])
def test_special_files_do_not_hang(model, tmp_path, name):
    folder = _copy(model[0], tmp_path / "m")
    (folder / name).unlink()
    os.mkfifo(folder / name)
    done = []
    t = threading.Thread(target=lambda: done.append(pytest.raises(AnoclustError, load_model, folder)), daemon=True)
    t.start()
    t.join(30)  # a guard against a hang, not a speed check
    assert done, "reading a FIFO blocked"
    assert "not a regular file" in str(done[0].value)
    (folder / name).unlink()
    os.symlink("/dev/zero", folder / name)
    _refused(folder, "not a regular file")


def test_assign_with_a_damaged_model_is_one_line(model, tmp_path, capsys):
    folder = _copy(model[0], tmp_path / "m")
    _edit_json(folder, lambda m: m["resolved"].update(n_clusters=-2))
    (tmp_path / "imgs").mkdir()
    code, _, err = call_cli(capsys, "assign", str(folder), str(tmp_path / "imgs"), "--out", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 1 and "damaged" in err and "Traceback" not in err
