"""Patch weightings (GUIDE 1.2-1.3): how much each patch of an image counts in its embedding.

One class per weighting, each owning its patch scores, its pooling and the typed state a saved
model keeps (base.Weighting); nearest.py is the blocked nearest-patch search the scores share,
pooling.py the softmax and the weighted average, residual.py the reference weighting's residual
pooling (each top patch minus its nearest normal patches).
"""

from __future__ import annotations

from typing import Any

from ..errors import AnoclustError
from .base import Weighting
from .maxpool import MaxWeighting
from .reference import ReferenceWeighting
from .uniform import UniformWeighting
from .unsupervised import UnsupervisedWeighting

WEIGHTING_TYPES: dict[str, type[Weighting]] = {
    w.name: w for w in (UniformWeighting, MaxWeighting, UnsupervisedWeighting, ReferenceWeighting)
}


def make_weighting(name: str, params: Any, has_normals: bool) -> Weighting:
    """The weighting `name` ("auto": reference with normal images, else unsupervised), unfitted."""
    if name == "auto":
        name = "reference" if has_normals else "unsupervised"
    cls = WEIGHTING_TYPES[name]
    if cls.needs_normals and not has_normals:
        raise AnoclustError(
            f"{name} weighting needs normal images: pass --normal DIR|LIST (or use --weighting unsupervised)"
        )
    return cls(params)


__all__ = ["WEIGHTING_TYPES", "Weighting", "make_weighting"]
