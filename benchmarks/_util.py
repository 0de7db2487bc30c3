"""Shared helpers of the benchmarks: machine facts, timing and peak memory per stage."""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

# Run from a checkout without installing: benchmarks/ sits next to src/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import anoclust  # noqa: E402,F401  (first, before torch: it sets torch's OpenMP wait policy)


def machine() -> str:
    import torch

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); load average {load}"
    )


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Samples this process's RSS in a background thread; `stage()` records each stage's peak."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak = 0
        # name -> (wall seconds, peak RSS bytes, CPU seconds of all this process's threads)
        self.stages: dict[str, tuple[float, int, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    @contextmanager
    def stage(self, name: str):
        self.peak = rss_bytes()
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            self.peak = max(self.peak, rss_bytes())
            self.stages[name] = (seconds, self.peak, time.process_time() - cpu)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def matmul_rate(size: int = 2048, repeats: int = 3) -> float:
    """Best float32 matrix-multiply rate (GFLOP/s) of torch on this machine, default threads."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = max(best, 2.0 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


def synthetic_images(n: int, root: str | os.PathLike, size: int = 224, seed: int = 0) -> list[str]:
    """Paths of n synthetic defect images (3 types) under root; generated once, then reused."""
    from anoclust.inputs import read_input
    from anoclust.synthetic import make_labelled_folder

    import fcntl
    import shutil

    folder = Path(root) / f"local-{n}-{size}-{seed}"
    done = folder / ".complete"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{folder}.lock", "w") as lock:  # two benchmarks may want the same set at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            make_labelled_folder(folder / "images", n_per_type=-(-n // 3), size=size, seed=seed, kind="local")
            done.touch()
    images = read_input(folder / "images")
    return [str(p) for p in images.paths[:n]], list(images.labels[:n])
