"""anoclust: group images of product defects into clusters of defect types."""

__version__ = "0.1.0"
