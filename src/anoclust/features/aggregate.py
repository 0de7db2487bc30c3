"""Turn backbone feature maps into a bag of patch embeddings per image (GUIDE 1.1).

Each tap's map is averaged over a 3x3 neighbourhood so that a patch also sees its surroundings,
deeper maps are bilinearly resized onto the grid of the first (shallowest) tap, and the channels
are concatenated: one D-dimensional vector per grid cell.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def aggregate_patches(maps: Sequence[torch.Tensor], neighbourhood: int = 3) -> torch.Tensor:
    """Feature maps [(B, C_k, H_k, W_k), ...] -> patch bags (B, H_0 * W_0, sum C_k)."""
    if not maps:
        raise ValueError("at least one feature map is needed")
    height, width = maps[0].shape[-2:]
    pad = neighbourhood // 2
    pooled = []
    for fmap in maps:
        # count_include_pad=False keeps border patches on the same scale as interior ones.
        fmap = F.avg_pool2d(fmap, neighbourhood, stride=1, padding=pad, count_include_pad=False)
        if fmap.shape[-2:] != (height, width):
            fmap = F.interpolate(fmap, size=(height, width), mode="bilinear", align_corners=False)
        pooled.append(fmap)
    stacked = torch.cat(pooled, dim=1)
    return stacked.flatten(2).transpose(1, 2).contiguous()
