"""Average pooling (tau -> infinity): every patch weighs the same. The paper's baseline."""

from __future__ import annotations

import numpy as np

from .base import Weighting
from .pooling import weighted_average


class UniformWeighting(Weighting):
    name = "uniform"

    def pool(self, bags: np.ndarray, scores: np.ndarray | None, pooling: str = "weighted"
             ) -> tuple[np.ndarray, np.ndarray]:
        weights = np.full(bags.shape[:2], 1.0 / bags.shape[1], dtype=np.float32)
        return weighted_average(bags, weights), weights
