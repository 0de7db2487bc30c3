"""anoclust: group images of product defects into clusters of defect types."""

import os

# OpenMP threads that spin while waiting between parallel regions took the cores from our own
# decoding threads: with passive waiting the extraction rate rose from 0.55 to about 0.9 of the
# bare network's (docs/PERFORMANCE.md). Read when torch loads, so it is set before any import
# of torch; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
