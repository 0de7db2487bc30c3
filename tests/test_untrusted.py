"""Files anoclust did not write are never executed, and folders it reads are never written to."""

import dataclasses
import pickle

import pytest
import torch

from anoclust.features import backbones as bb
from anoclust import cli
from anoclust.errors import WeightsError
from anoclust.synthetic import make_labelled_folder


class _Payload:
    """Unpickling this runs code: it creates the file `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_checkpoint(path, marker):
    state = {"conv1.weight": torch.zeros(1), "trap": _Payload(marker)}
    with open(path, "wb") as f:
        pickle.dump(state, f)  # a plain pickle, as an attacker would write it


def test_pickled_code_in_weights_is_never_run(tmp_path, monkeypatch):
    marker, evil = tmp_path / "pwned", tmp_path / "evil.pth"
    _evil_checkpoint(evil, marker)
    monkeypatch.setitem(bb.BACKBONES, "resnet18", dataclasses.replace(bb.BACKBONES["resnet18"], sha256_prefix=None))
    with pytest.raises(WeightsError, match="cannot read weights file"):
        bb.create_backbone("resnet18", weights=evil)  # no known hash: weights_only loading refuses it
    with pytest.raises(WeightsError, match="SHA-256"):
        bb.create_backbone("mobilenet_v2", weights=evil)  # known hash: refused before loading
    torch.save({"trap": _Payload(marker)}, tmp_path / "saved.pth")  # torch's own zip format
    with pytest.raises(WeightsError, match="cannot read weights file"):
        bb.create_backbone("resnet18", weights=tmp_path / "saved.pth")
    assert not marker.exists()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("untrusted")
    data = make_labelled_folder(root / "data", n_per_type=2, size=32, normal_root=root / "normal", n_normal=3)
    return data, root / "normal"


@pytest.mark.parametrize(
    "where, extra, flag",
    [
        ("data", [], "--out"),
        ("data/scratch/out", [], "--out"),
        ("normal/out", ["--normal", "{normal}"], "--out"),
        ("elsewhere", ["--cache", "{data}/spot/cache"], "--cache"),
        ("lists/out", ["--listed"], "--out"),
    ],
)
def test_output_inside_an_input_folder_is_refused(small, tmp_path, capsys, where, extra, flag):
    data, normal = small
    root = data.parent
    source = str(data)
    if extra == ["--listed"]:  # a CSV list whose images live in another folder: that folder is an input too
        (tmp_path / "lists").mkdir()
        source = str(tmp_path / "lists" / "set.csv")
        images = sorted(p for p in (data / "spot").glob("*.png") if not p.stem.endswith("_mask"))
        (tmp_path / "lists" / "set.csv").write_text("path\n" + "".join(f"{p}\n" for p in images))
        out = data / "spot" / "out"
        extra = []
    else:
        out = root / where
    extra = [e.format(normal=normal, data=data) for e in extra]
    code = cli.main(["cluster", source, "--out", str(out), "--k", "2", "--no-cache", *extra])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{flag} " in err[0] and "inside the input folder" in err[0] and "--force" in err[0]
    assert (out == data or not out.exists()) and not (data / "spot" / "cache").exists()


@pytest.mark.usefixtures("one_thread")
def test_force_allows_out_inside_input(small):
    data, _ = small
    out = data / "results"
    try:
        assert cli.main(["cluster", str(data), "--out", str(out), "--k", "2", "--image-size", "32", "--no-cache",
                         "--force", "--quiet"]) == 0
        assert (out / "assignments.csv").is_file()
    finally:
        for p in out.iterdir():
            p.unlink()
        out.rmdir()


def test_cache_entry_with_pickled_objects_is_never_unpickled(tmp_path):
    import hashlib
    import io

    import numpy as np

    from anoclust.features.cache import _MAGIC, FeatureCache

    marker, cache = tmp_path / "pwned", FeatureCache(tmp_path / "cache")
    key = cache.key("digest", "model")
    buf = io.BytesIO()
    np.save(buf, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    payload = buf.getvalue()  # a well-formed entry, checksum included, whose array is a pickle
    entry = tmp_path / "cache" / key[:2] / f"{key}.bag"
    entry.parent.mkdir(parents=True)
    entry.write_bytes(_MAGIC + hashlib.sha256(payload).digest() + payload)
    assert cache.get(key) is None and cache.corrupt == [entry]
    assert not marker.exists()
