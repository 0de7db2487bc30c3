"""Label values of images that are not in a cluster, and how assignments.csv names them."""

from __future__ import annotations

UNREADABLE = -1  # the file could not be read (listed in skipped.csv)
NORMAL = -2  # set apart as normal by the normal threshold, not clustered


def cluster_name(label: int, unknown: bool = False, names: list[str] | None = None) -> str:
    """assignments.csv's cluster column: the number (or the user's name of the cluster), `normal`
    (set apart) or `unknown` (too far from every cluster)."""
    if label == NORMAL:
        return "normal"
    if unknown:
        return "unknown"
    return names[label] if names else str(int(label))
