"""Extraction and patch scoring on a Dask cluster, by image shards (optional extra anoclust[dask]).

The client splits the images into shards. Extraction tasks return their shard's patch bags,
which the client writes into one .npy file in a scratch folder; scoring tasks memory-map that
file read-only and score their shard. The unsupervised score of an image depends only on the
bags, its index and the seed (weighting.unsupervised.sample_others), so any sharding gives the labels of a
single-process run. Clustering runs on the client.

Workers must see the image files, the feature cache folder (if any) and the scratch folder
at the same paths as the client: with a remote scheduler that means a shared file system.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext

import numpy as np

from .errors import AnoclustError
from .features.extract import EmbeddingConfig, Extraction, PatchExtractor, allocate_bags
from .progress import progress_bar

log = logging.getLogger(__name__)

EXTRACT_SHARD = 64  # images per extraction task (their bags, ~13 MB at the defaults, travel back)
SCORE_SHARD = 32  # images per scoring task


def _client(workers: int | None, address: str | None):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise AnoclustError("--workers and --dask need Dask: pip install 'anoclust[dask]'") from None
    # Dask reports every worker start and stop at INFO; a run only needs its warnings.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if address:
        try:
            return Client(address, timeout="20s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise AnoclustError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    # One single-threaded process per worker: torch's threads and Python's GIL stay per process.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    return Client(cluster), cluster


class DaskEngine:
    """A Dask client plus the run's scratch folder; use as a context manager."""

    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        scratch_dir: str | os.PathLike | None = None,
        quiet: bool = True,
    ):
        self.client, self._cluster = _client(workers, address)
        self.scratch = tempfile.mkdtemp(prefix="anoclust-run-", dir=scratch_dir)
        self.quiet = quiet
        self._files: dict[str, np.ndarray] = {}  # bag files in the scratch folder, by name

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:  # a LocalCluster started here; a remote one is left running
            self._cluster.close()
        self._files.clear()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _bag_file(self, shape: tuple[int, int, int]) -> np.ndarray:
        bags = allocate_bags(shape, self.scratch, keep_file=True)
        self._files[bags.filename] = bags
        return bags

    def __enter__(self) -> "DaskEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _gather(self, futures: list, desc: str, total: int) -> Iterator[tuple[int, object]]:
        """(task number, result) as tasks finish, with a progress bar counting images."""
        from dask.distributed import as_completed

        order = {f.key: n for n, f in enumerate(futures)}
        with progress_bar(total, desc, self.quiet) as bar:
            for future, result in as_completed(futures, with_results=True):
                bar.update(result[0] if isinstance(result, tuple) else len(result))
                yield order[future.key], result

    def extract(self, extractor: PatchExtractor, paths: Sequence[str | os.PathLike], desc: str = "features") -> Extraction:
        """PatchExtractor.extract with the shards of `paths` run on the workers."""
        paths = [str(p) for p in paths]
        cache = None if extractor.cache.root is None else str(extractor.cache.root)
        bags = self._bag_file(extractor.bag_shape(len(paths)))
        ok = np.zeros(len(paths), dtype=bool)
        grids = np.zeros((len(paths), 2), dtype=np.int64)
        skipped: dict[int, list[tuple[str, str]]] = {}
        starts = range(0, len(paths), EXTRACT_SHARD)
        futures = self.client.map(
            _extract_shard,
            [paths[s : s + EXTRACT_SHARD] for s in starts],
            config=extractor.config,
            cache_dir=cache,
            batch=extractor.batch_size,
            pretrained=extractor.pretrained,
            pure=False,
        )
        for n, (_, rows, shard_bags, shard_grids, shard_skipped) in self._gather(futures, desc, len(paths)):
            bags[starts[n] + rows] = shard_bags
            grids[starts[n] + rows] = shard_grids
            ok[starts[n] + rows] = True
            skipped[n] = shard_skipped
        return extractor.assemble(bags, ok, [s for n in sorted(skipped) for s in skipped[n]], grids)

    def _shared(self, bags: np.ndarray) -> str:
        """A file the workers can memory-map holding `bags`."""
        name = getattr(bags, "filename", None)
        mine = self._files.get(name)
        if mine is not None and bags.ctypes.data == mine.ctypes.data and bags.flags.c_contiguous:
            mine.flush()
            return name
        copy = self._bag_file(bags.shape)
        copy[:] = bags
        copy.flush()
        return copy.filename

    def scores(self, weighting, bags: np.ndarray) -> np.ndarray | None:
        """The fitted `weighting`'s patch scores of `bags`, computed on the workers by shards (an
        anoclust.fit.Scorer). Scores of an image depend only on the bags, its index and the
        seed, so any sharding gives the single-process result."""
        if not weighting.scored:
            return weighting.scores(bags)
        path, n = self._shared(bags), len(bags)
        shared = self.client.scatter(weighting, broadcast=True)  # the bank or sample goes once per worker
        starts = range(0, n, SCORE_SHARD)
        futures = self.client.map(
            _score_shard, [np.arange(s, min(s + SCORE_SHARD, n)) for s in starts],
            path=path, n_images=n, weighting=shared, pure=False,
        )
        out = np.empty(bags.shape[:2], dtype=np.float32)
        for k, result in self._gather(futures, "patch scores", n):
            out[starts[k] : starts[k] + len(result)] = result
        return out


@contextmanager
def open_engine(workers: int | None, address: str | None, scratch_dir: str | None = None, quiet: bool = True):
    """A DaskEngine when workers or a scheduler address is given, else None (run locally)."""
    if not workers and not address:
        with nullcontext(None) as none:
            yield none
        return
    with DaskEngine(workers, address, scratch_dir, quiet) as engine:
        yield engine


# ---- on the workers --------------------------------------------------------------------------

_EXTRACTORS: dict[tuple, PatchExtractor] = {}


def _one_thread() -> None:
    # Each Dask worker thread is meant to occupy one core; torch would otherwise start its own.
    import torch

    torch.set_num_threads(1)


def _extract_shard(
    paths: list[str], config: EmbeddingConfig, cache_dir: str | None, batch: int, pretrained: bool
):
    """(n done, rows read, their bags, their patch grids, skipped) for one shard; the network is kept
    per process."""
    _one_thread()
    key = (config, cache_dir, batch, pretrained)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = PatchExtractor(config, cache_dir, batch, decode_threads=1, pretrained=pretrained)
    ex = _EXTRACTORS[key].extract(paths)
    return len(paths), ex.ok, np.asarray(ex.bags), ex.grids, ex.skipped


def _score_shard(rows: np.ndarray, path: str, n_images: int, weighting):
    _one_thread()
    bags = np.load(path, mmap_mode="c")[:n_images]  # copy-on-write: writable for torch, file untouched
    return weighting.scores(bags, rows=rows, n_threads=1)
