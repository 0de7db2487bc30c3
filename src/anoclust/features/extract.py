"""From image files to patch bags: decoding, the network, aggregation and the cache.

Decoding runs in worker threads a few batches ahead of the network (PIL releases the GIL while
it decodes and resizes), so the network is not starved; the window is bounded, so memory does
not grow with the number of images.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from .cache import FeatureCache, file_digest
from ..errors import ImageReadError
from ..inputs.decode import load_image, read_size
from ..progress import progress_bar
from ..settings import DEFAULTS
from .aggregate import aggregate_patches

log = logging.getLogger(__name__)

# Bump when anything changes what a cached bag holds for the same settings.
FEATURE_FORMAT = 1

# Patch bags larger than this (bytes) are kept in a memory-mapped file in the run's scratch
# folder instead of in memory: 1 GiB is about 5,000 images at the default settings.
MEMMAP_BYTES = 1 << 30


@dataclass(frozen=True)
class EmbeddingConfig:
    """Everything that decides the patch embeddings of an image."""

    backbone: str = DEFAULTS["backbone"]
    taps: tuple[str, ...] | None = None
    image_size: int = DEFAULTS["image_size"]
    weights: str | None = None

    @classmethod
    def of(cls, params) -> "EmbeddingConfig":
        """The configuration a fit's settings (anoclust.settings.Params) ask for."""
        return cls(params.backbone, None, params.image_size, params.weights)


@dataclass
class Extraction:
    """Patch bags of the images that could be read, and the reasons for those that could not."""

    bags: np.ndarray  # (n_ok, M, D) float16
    ok: np.ndarray  # indices into the input paths of the rows of `bags`
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    grid: tuple[int, int] = (0, 0)  # patch grid (rows, cols); M = rows * cols
    weights_sha256: str | None = None


class PatchExtractor:
    """Computes (and caches) patch bags with one backbone."""

    def __init__(
        self,
        config: EmbeddingConfig = EmbeddingConfig(),
        cache_dir: str | os.PathLike | None = None,
        batch_size: int = 16,
        decode_threads: int = 2,
        pretrained: bool = True,
        quiet: bool = True,
        scratch_dir: str | os.PathLike | None = None,
    ):
        self.config = config
        self.scratch_dir = scratch_dir  # folder of memory-mapped bag arrays (default: system temp)
        self.cache = FeatureCache(cache_dir)
        self.batch_size = batch_size
        self.decode_threads = decode_threads
        self.pretrained = pretrained
        self.quiet = quiet
        self._model = None

    @property
    def model(self):
        if self._model is None:
            from .backbones import create_backbone

            self._model = create_backbone(
                self.config.backbone, self.config.taps, weights=self.config.weights, pretrained=self.pretrained
            )
        return self._model

    @property
    def model_id(self) -> str:
        m = self.model
        taps = ",".join(t.name for t in m.feature_info)
        return f"v{FEATURE_FORMAT}|{m.spec.name}|{taps}|{self.config.image_size}|{m.weights_sha256 or 'random'}"

    @property
    def grid(self) -> tuple[int, int]:
        stride = self.model.feature_info[0].stride
        side = -(-self.config.image_size // stride)
        return side, side

    def _normalise(self, batch: np.ndarray) -> torch.Tensor:
        spec = self.model.spec
        x = torch.from_numpy(batch)
        mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
        std = torch.tensor(spec.std).view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.inference_mode()
    def embed_arrays(self, images: np.ndarray) -> np.ndarray:
        """(B, 3, H, W) float images in [0, 1] -> (B, M, D) float16 patch bags."""
        maps = self.model(self._normalise(np.ascontiguousarray(images, dtype=np.float32)))
        return aggregate_patches(maps).to(torch.float16).numpy()  # torch converts much faster

    def _read(self, path: str, model_id: str, shape: tuple[int, int]):
        """Worker: a cached bag, or a decoded image with the key to store its bag under."""
        try:
            # The header first: a huge file that is no image is refused before it is hashed.
            read_size(path)
        except ImageReadError as exc:
            return "error", str(exc), None
        try:
            key = self.cache.key(file_digest(path), model_id) if self.cache.root else None
        except OSError:
            key = None  # load_image says why the file cannot be read, as it does without a cache
        if key is not None and (bag := self.cache.get(key)) is not None and bag.shape == shape:
            return "bag", bag, key
        try:
            return "image", load_image(path, self.config.image_size), key
        except ImageReadError as exc:
            return "error", str(exc), None

    def _prefetch(self, paths: Sequence[str], model_id: str, shape: tuple[int, int]) -> Iterator[tuple]:
        window = max(2, 3 * self.batch_size)
        pool = ThreadPoolExecutor(self.decode_threads)
        try:
            pending: deque[Future] = deque()
            for p in paths:
                pending.append(pool.submit(self._read, p, model_id, shape))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            # On an interrupt, do not decode the rest of the window before exiting.
            pool.shutdown(wait=True, cancel_futures=True)

    def extract(self, paths: Sequence[str | os.PathLike], desc: str = "features") -> Extraction:
        """Patch bags for `paths`; unreadable files are skipped and listed with their reason."""
        paths = [str(p) for p in paths]
        model_id = self.model_id
        shape = self.bag_shape(len(paths))
        bags = allocate_bags(shape, self.scratch_dir)
        ok = np.zeros(len(paths), dtype=bool)
        skipped: list[tuple[str, str]] = []
        batch: list[tuple[int, np.ndarray, str | None]] = []
        n_cached = 0
        # Cache entries are written (and fsynced, ~10 ms each) by a background thread, so the
        # network never waits for the disk; at most a few batches' worth are in flight.
        writes: deque[Future] = deque()

        def flush():
            images = np.stack([img for _, img, _ in batch])
            # Always the same batch shape: the backend's arithmetic (and so an image's bag, down
            # to the last bit) then never depends on how many images share its batch.
            pad = np.zeros((self.batch_size - len(batch),) + images.shape[1:], dtype=images.dtype)
            out = self.embed_arrays(np.concatenate([images, pad]))[: len(batch)]
            for (i, _, key), bag in zip(batch, out):
                bags[i] = bag
                ok[i] = True
                if key is not None:
                    writes.append(writer.submit(self.cache.put, key, bag))
            while len(writes) > 4 * self.batch_size:
                writes.popleft().result()
            batch.clear()

        with progress_bar(len(paths), desc, self.quiet) as bar, ThreadPoolExecutor(1) as writer:
            for i, (kind, value, key) in enumerate(self._prefetch(paths, model_id, shape[1:])):
                if kind == "bag":
                    bags[i] = value
                    ok[i] = True
                    n_cached += 1
                elif kind == "error":
                    skipped.append((paths[i], value.removeprefix(f"{paths[i]}: ")))
                else:
                    batch.append((i, value, key))
                    if len(batch) == self.batch_size:
                        flush()
                bar.update(1)
            if batch:
                flush()
            while writes:
                writes.popleft().result()
        n_ok = int(ok.sum())
        log.info("%s: %d from the cache, %d computed, %d skipped", desc, n_cached, n_ok - n_cached, len(skipped))
        return self.assemble(bags, ok, skipped)

    def bag_shape(self, n_images: int) -> tuple[int, int, int]:
        return n_images, self.grid[0] * self.grid[1], sum(t.channels for t in self.model.feature_info)

    def assemble(self, bags: np.ndarray, ok: np.ndarray, skipped: list[tuple[str, str]]) -> Extraction:
        """The Extraction of the rows of `bags` flagged in `ok`, moved to the front in place."""
        index = np.flatnonzero(ok)
        for row, i in enumerate(index):  # in place, so a memory-mapped array is not copied
            if row != i:
                bags[row] = bags[i]
        return Extraction(bags[: len(index)], index, skipped, self.grid, self.model.weights_sha256)


def allocate_bags(
    shape: tuple[int, int, int], scratch_dir: str | os.PathLike | None = None, keep_file: bool = False
) -> np.ndarray:
    """An uninitialised float16 bag array: in memory, or memory-mapped when large.

    The memory-mapped file is a .npy in `scratch_dir` (default: the system's temporary folder).
    Unless keep_file, its name is removed at once: the mapping lives on until the array is
    freed and nothing is left behind even if the process dies. With keep_file other processes
    can open it (np.load(array.filename, mmap_mode="r")) and the caller deletes it.
    """
    nbytes = int(np.prod(shape)) * 2
    if not keep_file and nbytes <= MEMMAP_BYTES:
        return np.empty(shape, dtype=np.float16)
    fd, name = tempfile.mkstemp(prefix="anoclust-bags-", suffix=".npy", dir=scratch_dir)
    os.close(fd)
    try:
        bags = np.lib.format.open_memmap(name, mode="w+", dtype=np.float16, shape=shape)
    except BaseException:  # no space, no memory: leave nothing behind
        os.unlink(name)
        raise
    log.info("patch bags (%.1f GB) memory-mapped in %s", nbytes / 1e9, name)
    if not keep_file:
        try:
            os.unlink(name)
        except OSError:  # e.g. Windows, where an open file cannot be removed
            pass
    return bags
