"""Channel-wise max pooling over the patches (tau -> 0 in spirit). The paper's other baseline."""

from __future__ import annotations

import numpy as np

from .base import Weighting
from .pooling import max_pool


class MaxWeighting(Weighting):
    name = "max"

    def pool(self, bags: np.ndarray, scores: np.ndarray | None, pooling: str = "weighted"
             ) -> tuple[np.ndarray, np.ndarray]:
        return max_pool(bags)
