"""What every patch weighting is: scores, pooling and the state a saved model keeps."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from ..space import PatchSpace, Whitening, scored_mask
from .pooling import scored_average_weights, softmax_weights, weighted_average


class Weighting:
    """One way of turning each image's bag of patches (M, D) into one embedding (D,).

    `fit(bags, normal_bags)` learns what the weighting needs from the images to cluster and
    the normal references, and keeps in `state` (a small dataclass of arrays) what new images
    will need; `scores` gives the fitted images' patch scores, `new_scores` those of other
    images against the state; `pool` the embeddings and the patch weights. Patch scores are
    (N, M) float32, NaN where a patch is not scored; None for weightings without scores.

    Class attributes say what the "auto" settings resolve to with this weighting (resolved in
    one place, anoclust.fit).
    """

    name: ClassVar[str]
    needs_normals: ClassVar[bool] = False
    scored: ClassVar[bool] = False  # has patch scores
    auto_method: ClassVar[str] = "ward"  # method="auto"
    projects: ClassVar[bool] = False  # n_components="auto" keeps COMPONENTS_PER_CLUSTER per cluster
    poolings: ClassVar[tuple[str, ...]] = ()  # settings.POOLINGS it can pool by (weightings with scores)
    state_type: ClassVar[type | None] = None

    def __init__(self, params: Any):
        self.params = params  # anoclust.settings.Params
        self.state: Any = None  # an instance of state_type once fitted
        self.space = PatchSpace()
        # residual.match_ratio of the normal images, measured by fit where it decides anything
        self.normal_match: float | None = None

    @classmethod
    def restore(cls, params: Any, state: Any, n_patches: int) -> "Weighting":
        """A fitted weighting from a saved state (anoclust.model)."""
        w = cls(params)
        w.state = state
        w.space = w._space(n_patches)
        return w

    def _space(self, n_patches: int) -> PatchSpace:
        """The patch space of bags with n_patches patches, given the fitted state."""
        return PatchSpace()

    def fit(self, bags: np.ndarray, normal_bags: np.ndarray | None = None) -> "Weighting":
        self.space = self._space(bags.shape[1])
        return self

    def scores(self, bags: np.ndarray, rows: np.ndarray | None = None, n_threads: int | None = None) -> np.ndarray | None:
        """Patch scores of the fitted images `bags` (only `rows` of them, for sharding)."""
        return None

    def new_scores(self, bags: np.ndarray) -> np.ndarray | None:
        """Patch scores of images that were not part of the fit."""
        return None

    def pool(self, bags: np.ndarray, scores: np.ndarray | None, pooling: str = "weighted"
             ) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings (N, D), patch weights (N, M)). pooling (settings.POOLINGS) is read by the
        weightings with scores only."""
        raise NotImplementedError

    def auto_poolings(self) -> tuple[str, ...]:
        """The poolings pooling "auto" compares (anoclust.fit.cluster_best), the one the others
        must beat first; set by fit."""
        return self.poolings

    def describes_locally(self, peak: float | None) -> bool:
        """Whether "auto" describes the defect by the deepest tap, l2-normalised (anoclust.fit)."""
        return False

    @classmethod
    def uses_seed(cls, params: Any, normal_bags: np.ndarray | None) -> bool:
        """Whether random_state can change this weighting's result on these normal images."""
        return False


class ScoredWeighting(Weighting):
    """Weights softmax(standardised score / tau) over each image's scored patches, or equal
    weights over them (pooling "average"); the border ring is neither scored nor weighted (with
    aspect "keep": the ring patches at the end of each bag); the embedding goes through
    `embedding_map` (a whitening)."""

    scored = True
    projects = True
    poolings = ("weighted", "average")

    def _space(self, n_patches: int) -> PatchSpace:
        return PatchSpace(scored_mask(n_patches, self.params.border, self.params.aspect))

    @property
    def embedding_map(self) -> Whitening | None:
        return None

    def pool(self, bags: np.ndarray, scores: np.ndarray | None, pooling: str = "weighted"
             ) -> tuple[np.ndarray, np.ndarray]:
        if pooling == "average":
            weights = scored_average_weights(scores)
        else:
            weights = softmax_weights(scores, tau=self.params.tau, standardize=self.params.standardize)
        embeddings = weighted_average(bags, weights)
        whiten = self.embedding_map
        return (embeddings if whiten is None else whiten(embeddings)), weights


def state_arrays(state: Any) -> dict[str, np.ndarray]:
    """A state dataclass as named arrays (a Whitening field becomes NAME.mean and NAME.matrix)."""
    out: dict[str, np.ndarray] = {}
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if isinstance(value, Whitening):
            out[f"{f.name}.mean"], out[f"{f.name}.matrix"] = value.mean, value.matrix
        elif value is not None:
            out[f.name] = np.asarray(value)
    return out


def state_from_arrays(state_type: type, arrays: dict[str, np.ndarray]) -> Any:
    """The inverse of state_arrays; KeyError when a required array is missing."""
    values = {}
    for f in dataclasses.fields(state_type):
        if f"{f.name}.mean" in arrays:
            values[f.name] = Whitening(arrays[f"{f.name}.mean"], arrays[f"{f.name}.matrix"])
        elif f.name in arrays:
            values[f.name] = arrays[f.name]
        elif f.default is dataclasses.MISSING:
            raise KeyError(f.name)
    return state_type(**values)
