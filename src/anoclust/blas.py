"""One BLAS thread for small linear algebra (128 x 128 problems), cheaply.

threadpoolctl.threadpool_limits scans every loaded shared library on each call (about 1 ms once
the network's library is loaded), which the normal threshold's leave-one-out pays once per
reference. A controller made once reuses that scan; it is made again when torch has been
imported since, so that torch's thread pools are limited too.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager

from threadpoolctl import ThreadpoolController

_controller: tuple[bool, ThreadpoolController] | None = None


def one_thread() -> AbstractContextManager:
    """A context in which every loaded BLAS / OpenMP pool runs on one thread."""
    global _controller
    has_torch = "torch" in sys.modules
    if _controller is None or _controller[0] != has_torch:
        _controller = (has_torch, ThreadpoolController())
    return _controller[1].limit(limits=1)
