"""Every setting of anoclust, defined once.

A `Setting` carries its name (the estimator's parameter and the key in config.json and
model.json), its default, the values it allows, its help text, its command-line flag and its
group: `user` settings are what a user of the tool needs; `research` settings reproduce the
paper's method or the studies behind the defaults (docs/DESIGN.md says why each default is what it
is). The estimator's signature, the CLI's options, config.json, model.json and the settings line
of `anoclust evaluate` are all built from `METHOD_SETTINGS`; `validate` checks a set of values
before any image is read.

Only settings that change the result are here. Where the run reads and writes (input, --out,
--cache, --workers, ...) belongs to the command line (anoclust.cli.options).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, make_dataclass
from typing import Any

from .errors import AnoclustError

WEIGHTINGS = ("uniform", "max", "unsupervised", "reference")
METHODS = ("ward", "ward_kmeans", "average", "complete", "kmeans", "spectral")
NORMALIZATIONS = ("none", "l2", "whiten")
EMBED_TAPS = ("all", "deepest")
# How a scored weighting pools a bag (anoclust.fit.describe); "auto" tries each it can.
POOLINGS = ("weighted", "average", "residual")
ASPECTS = ("squash", "keep")  # and "auto": features.aspect.resolve_aspect
DEFAULT_BACKBONE = "mobilenet_v2"
# The network's input side; beyond the largest, one image's patch bag and its distance products
# no longer fit a workstation (a 1024 px grid has 16,384 patches).
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 1024


@dataclass(frozen=True)
class Kind:
    """What values a setting takes: `check` a Python value, `parse` a command-line text."""

    describe: str | Callable[[], str]  # completes "must be ...": the one-line error says what is allowed
    check: Callable[[Any], bool]
    parse: Callable[[str], Any]
    metavar: str | None = None
    choices: tuple[str, ...] | None = None


def _is_int(v) -> bool:
    import numbers

    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v) -> bool:
    import numbers

    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _int_text(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text}") from None


def _float_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a number: {text}") from None


def whole(minimum: int, maximum: int | None = None, auto: bool = False) -> Kind:
    top = "" if maximum is None else f" and at most {maximum}"
    describe = f"a whole number of at least {minimum}{top}" + (" or 'auto'" if auto else "")

    def check(v) -> bool:
        return (auto and v == "auto") or (_is_int(v) and v >= minimum and (maximum is None or v <= maximum))

    def parse(text: str):
        return "auto" if auto and text == "auto" else _int_text(text)

    return Kind(describe, check, parse, "N|auto" if auto else "N")


def positive_real() -> Kind:
    return Kind("a finite number above 0", lambda v: _is_real(v) and v > 0, _float_text, "T")


def choice(values: tuple[str, ...], auto: bool = False) -> Kind:
    allowed = (("auto",) if auto else ()) + values
    return Kind(f"one of {', '.join(allowed)}", lambda v: v in allowed, str, None, allowed)


def switch() -> Kind:
    return Kind("True or False", lambda v: isinstance(v, bool), str, None)


def threshold() -> Kind:
    def parse(text: str):
        return "auto" if text == "auto" else _float_text(text)

    return Kind("'auto', a finite number or None", lambda v: v is None or v == "auto" or _is_real(v),
                parse, "auto|VALUE")


def optional_path() -> Kind:
    import os

    return Kind("a file path or None", lambda v: v is None or isinstance(v, (str, os.PathLike)), str, "PATH")


def backbone_name() -> Kind:
    def names() -> tuple[str, ...]:
        from .features.backbones import BACKBONES

        return tuple(BACKBONES)

    return Kind(lambda: "one of " + ", ".join(names()), lambda v: isinstance(v, str) and v in names(), str, "NAME")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    kind: Kind
    help: str
    flag: str
    group: str = "user"  # "user" or "research"

    def allowed(self) -> str:
        d = self.kind.describe
        return d() if callable(d) else d

    def error(self, value) -> str:
        return f"{self.name} ({self.flag}) must be {self.allowed()}, got {value!r}"


S = Setting
# In the order --help lists them within their group.
METHOD_SETTINGS: tuple[Setting, ...] = (
    S("n_clusters", "auto", whole(1, auto=True), "number of clusters, or auto to choose it in 2..--k-max", "--k"),
    S("k_max", 20, whole(2), "largest number of clusters --k auto may choose", "--k-max"),
    S("weighting", "auto", choice(WEIGHTINGS, auto=True),
      "patch weighting; auto = reference when normal images are given, else unsupervised", "--weighting"),
    S("normal_threshold", None, threshold(),
      "set images whose largest patch score is below this apart as normal before clustering "
      "(auto: calibrated on the normal references; needs --normal)", "--normal-threshold"),
    S("method", "auto", choice(METHODS, auto=True),
      "clustering method; auto = ward_kmeans (Ward polished by k-means) with the reference weighting, else ward",
      "--method"),
    S("backbone", DEFAULT_BACKBONE, backbone_name(), "feature network", "--backbone"),
    S("weights", None, optional_path(), "backbone weights file (torchvision format) when not found automatically",
      "--weights"),
    S("image_size", 288, whole(MIN_IMAGE_SIZE, MAX_IMAGE_SIZE), "input size of the network in pixels",
      "--image-size"),
    S("aspect", "auto", choice(ASPECTS, auto=True),
      "squash: resize every image to the square input; keep: keep each image's aspect ratio (a patch grid "
      "of its own shape, the same number of patches, the border ring's patches after the interior's); "
      "auto = keep when the images' median aspect ratio is 4:1 or longer or all share one shape of 1.2:1 or "
      "longer, else squash", "--aspect"),
    S("random_state", 0, whole(0), "random seed", "--seed"),
    # research: the paper's method is --tau 1 --no-standardize --border 0 --no-whiten --embed-taps all
    # --normalize none --components 0 --method ward --pooling weighted --aspect squash
    S("pooling", "auto", choice(POOLINGS, auto=True),
      "how scored weightings pool each bag: weighted = softmax of the patch scores, average = mean of the "
      "scored patches (deepest tap, l2), residual = the weighted top patches' differences from their nearest "
      "normal patches (every tap, unnormalised; needs normal images); auto = the weighted pooling (the "
      "residual one where the normal images match each other closely) unless another gives much better "
      "separated clusters (silhouette)",
      "--pooling", "research"),
    S("tau", 0.5, positive_real(), "softmax temperature of the patch weights", "--tau", "research"),
    S("standardize", True, switch(), "standardise patch scores within each image before the softmax",
      "--standardize", "research"),
    S("border", 3, whole(0), "outer rings of the patch grid left out of scoring and weighting", "--border",
      "research"),
    S("whiten", True, switch(),
      "reference weighting: compare patches after whitening by the normal patches; unsupervised: whiten "
      "the embeddings by the patches' variation within each image", "--whiten", "research"),
    S("n_sampled", 32, whole(1), "other images sampled per image by the unsupervised score", "--n-sampled",
      "research"),
    S("max_bank", 100_000, whole(1), "largest number of normal patches kept in the reference bank",
      "--max-bank", "research"),
    S("embed_taps", "auto", choice(EMBED_TAPS, auto=True),
      "taps the embedding describes the defect with (the scores use all); auto = the deepest with the "
      "reference weighting, and with the unsupervised one when its scores find local defects", "--embed-taps",
      "research"),
    S("normalize", "auto", choice(NORMALIZATIONS, auto=True),
      "embedding normalisation before clustering; auto = l2 where the deepest tap is used, else none",
      "--normalize", "research"),
    S("n_components", "auto", whole(0, auto=True),
      "principal axes of the normalised embeddings kept before clustering (0 = off); auto = 4 per cluster "
      "with the reference and unsupervised weightings, off with uniform and max", "--components", "research"),
)
del S

BY_NAME: dict[str, Setting] = {s.name: s for s in METHOD_SETTINGS}
DEFAULTS: dict[str, Any] = {s.name: s.default for s in METHOD_SETTINGS}


def validate(values: Mapping[str, Any], has_normals: bool | None = None) -> None:
    """Raise AnoclustError (one line) for the first value a setting does not allow.

    has_normals: whether normal reference images are given (None: not known yet); with it,
    the settings that need normals are checked too.
    """
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise AnoclustError(f"unknown setting(s) {', '.join(unknown)}: known are {', '.join(BY_NAME)}")
    for name, value in values.items():
        if not BY_NAME[name].kind.check(value):
            raise AnoclustError(BY_NAME[name].error(value))
    if values.get("normal_threshold") is not None and values.get("weighting") in ("uniform", "max", "unsupervised"):
        raise AnoclustError("--normal-threshold needs the reference weighting (--weighting auto or reference)")
    if values.get("pooling") == "residual" and values.get("weighting") in ("uniform", "max", "unsupervised"):
        raise AnoclustError("--pooling residual needs the reference weighting (--weighting auto or reference)")
    if has_normals is False:
        if values.get("weighting") == "reference":
            raise AnoclustError("reference weighting needs normal images: pass --normal DIR|LIST "
                                "(or use --weighting unsupervised)")
        if values.get("normal_threshold") is not None:
            raise AnoclustError("--normal-threshold needs normal reference images: pass --normal DIR|LIST")
        if values.get("pooling") == "residual":
            raise AnoclustError("--pooling residual needs normal reference images: pass --normal DIR|LIST")


def settings_line(values: Mapping[str, Any]) -> str:
    """`name value` for the method settings in `values`, comma-separated (evaluate's results.md)."""
    return ", ".join(f"{s.name} {values[s.name]}" for s in METHOD_SETTINGS if s.name in values)


Params = make_dataclass(
    "Params", [(s.name, Any, field(default=s.default)) for s in METHOD_SETTINGS], frozen=True,
    namespace={"__doc__": "The values of METHOD_SETTINGS for one fit (validated by `validate`)."},
)
Params.__module__ = __name__  # so that it pickles (Dask ships fitted weightings to its workers)
