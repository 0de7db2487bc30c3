"""From image files to patch bags: decoding, the network, aggregation and the cache.

Decoding runs in worker threads a few batches ahead of the network (PIL releases the GIL while
it decodes and resizes), so the network is not starved; the window is bounded, so memory does
not grow with the number of images.

With aspect "keep" (anoclust.features.aspect) each image has its own input shape: images are
batched with others of the same shape, and the aggregated map is laid out as the interior row by
row followed by ring patches (aspect.bag_layout), so every bag still has the same number of
patches. The cache then stores a record of the bag and its interior grid, so a cached bag brings
its grid back with it.
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
from .aspect import arrange_bags, choose_grid, grid_of, input_shape, interior_count, ring_count, ring_width, square_grids

log = logging.getLogger(__name__)

# Bump when anything changes what a cached bag holds for the same settings.
FEATURE_FORMAT = 1
# The same for keep mode's entries alone: 2 holds the ring patches after the interior (1 had
# none), so entries of 1 are never read as bags of 2.
KEEP_FORMAT = 2

# In keep mode, images wait for batch-mates of their own shape; beyond this many waiting images
# the fullest shape's batch runs part-empty (padded, so no bag changes), bounding memory.
MAX_WAITING_BATCHES = 4

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
    aspect: str = "squash"  # or "keep" ("auto" is resolved before a configuration is made: resolve_aspect)
    border: int = DEFAULTS["border"]  # the ring laid out after the interior (aspect "keep" only)

    def __post_init__(self) -> None:
        if self.aspect not in ("squash", "keep"):
            raise ValueError(f"aspect {self.aspect!r} must be resolved before extraction (resolve_aspect)")

    @classmethod
    def of(cls, params) -> "EmbeddingConfig":
        """The configuration a fit's settings (anoclust.settings.Params) ask for, their aspect
        already resolved (aspect.resolve_aspect)."""
        return cls(params.backbone, None, params.image_size, params.weights, params.aspect, params.border)


@dataclass
class Extraction:
    """Patch bags of the images that could be read, and the reasons for those that could not."""

    bags: np.ndarray  # (n_ok, M, D) float16
    ok: np.ndarray  # indices into the input paths of the rows of `bags`
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    # (n_ok, 2) each image's patch grid (rows, cols), rows * cols = M; row-major in the bag
    grids: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    weights_sha256: str | None = None
    # aspect "keep": the ring's width around each grid (its patches follow the interior in the
    # bag), 0 otherwise
    ring: int = 0


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
        base = f"v{FEATURE_FORMAT}|{m.spec.name}|{taps}|{self.config.image_size}|{m.weights_sha256 or 'random'}"
        # Squash keys stay as they were, so existing caches stay valid; keep mode's bags depend on
        # the ring too, and never share a key with squash mode's.
        return base if not self.keeps_aspect else f"{base}|keep{KEEP_FORMAT}|ring{self.ring}"

    @property
    def keeps_aspect(self) -> bool:
        return self.config.aspect == "keep"

    @property
    def stride(self) -> int:
        return self.model.feature_info[0].stride

    @property
    def grid(self) -> tuple[int, int]:
        """The square input's patch grid (aspect "squash")."""
        side = -(-self.config.image_size // self.stride)
        return side, side

    @property
    def ring(self) -> int:
        """The border ring's width in keep mode (laid out after the interior), else 0."""
        return ring_width(self.grid[0], self.config.border) if self.keeps_aspect else 0

    @property
    def n_patches(self) -> int:
        """M, the same in both modes: the square grid's patch count."""
        return self.grid[0] * self.grid[1]

    @property
    def n_interior(self) -> int:
        """Keep mode: T, the interior patches of every image's own grid."""
        return interior_count(self.grid[0], self.config.border)

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """Keep mode: the network input (height, width) for an image of that oriented size."""
        grid = choose_grid(height, width, self.n_interior, self.ring)
        return input_shape(grid, self.ring, self.stride)

    def _normalise(self, batch: np.ndarray) -> torch.Tensor:
        spec = self.model.spec
        x = torch.from_numpy(batch)
        mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
        std = torch.tensor(spec.std).view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.inference_mode()
    def embed_arrays(self, images: np.ndarray) -> np.ndarray:
        """(B, 3, H, W) float images in [0, 1] -> (B, M, D) float16 patch bags (in keep mode
        the interior first, then ring patches: aspect.bag_layout)."""
        maps = self.model(self._normalise(np.ascontiguousarray(images, dtype=np.float32)))
        bags = aggregate_patches(maps)
        if self.keeps_aspect:
            bags = arrange_bags(bags, *maps[0].shape[-2:], self.ring, ring_count(self.grid[0], self.config.border))
        return bags.to(torch.float16).numpy()  # torch converts much faster

    def _cached(self, bag: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]] | None:
        """A cache entry as (bag (M, D), grid), or None when its shape is not this setting's."""
        if self.keeps_aspect:  # a record of the bag and its interior grid (keep_entry)
            if bag.shape != () or bag.dtype.names != ("bag", "grid") or bag["bag"].shape != shape:
                return None
            rows, cols = (int(g) for g in bag["grid"])
            return (bag["bag"], (rows, cols)) if rows > 0 and cols > 0 and rows * cols == self.n_interior else None
        return (bag, self.grid) if bag.shape == shape else None

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
        if key is not None and (bag := self.cache.get(key)) is not None and (hit := self._cached(bag, shape)):
            return "bag", hit, key
        try:
            size = self.input_size if self.keeps_aspect else self.config.image_size
            return "image", load_image(path, size), key
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
        grids = square_grids(len(paths), self.grid[0])
        skipped: list[tuple[str, str]] = []
        # images waiting for the network, by input shape (one shape unless keep mode)
        waiting: dict[tuple[int, ...], list[tuple[int, np.ndarray, str | None]]] = {}
        n_cached = 0
        # Cache entries are written (and fsynced, ~10 ms each) by a background thread, so the
        # network never waits for the disk; at most a few batches' worth are in flight.
        writes: deque[Future] = deque()

        def flush(batch: list[tuple[int, np.ndarray, str | None]]):
            images = np.stack([img for _, img, _ in batch])
            # Always the same batch shape: the backend's arithmetic (and so an image's bag, down
            # to the last bit) then never depends on how many images share its batch.
            pad = np.zeros((self.batch_size - len(batch),) + images.shape[1:], dtype=images.dtype)
            out = self.embed_arrays(np.concatenate([images, pad]))[: len(batch)]
            grid = grid_of(images.shape, self.ring, self.stride)
            for (i, _, key), bag in zip(batch, out):
                bags[i] = bag
                ok[i] = True
                grids[i] = grid
                if key is not None:
                    entry = keep_entry(bag, grid) if self.keeps_aspect else bag
                    writes.append(writer.submit(self.cache.put, key, entry))
            while len(writes) > 4 * self.batch_size:
                writes.popleft().result()
            batch.clear()

        with progress_bar(len(paths), desc, self.quiet) as bar, ThreadPoolExecutor(1) as writer:
            for i, (kind, value, key) in enumerate(self._prefetch(paths, model_id, shape[1:])):
                if kind == "bag":
                    bags[i], grids[i] = value
                    ok[i] = True
                    n_cached += 1
                elif kind == "error":
                    skipped.append((paths[i], value.removeprefix(f"{paths[i]}: ")))
                else:
                    batch = waiting.setdefault(value.shape, [])
                    batch.append((i, value, key))
                    if len(batch) == self.batch_size:
                        flush(batch)
                    elif sum(map(len, waiting.values())) > MAX_WAITING_BATCHES * self.batch_size:
                        flush(max(waiting.values(), key=len))
                bar.update(1)
            for batch in waiting.values():
                if batch:
                    flush(batch)
            while writes:
                writes.popleft().result()
        n_ok = int(ok.sum())
        log.info("%s: %d from the cache, %d computed, %d skipped", desc, n_cached, n_ok - n_cached, len(skipped))
        return self.assemble(bags, ok, skipped, grids)

    def bag_shape(self, n_images: int) -> tuple[int, int, int]:
        return n_images, self.n_patches, sum(t.channels for t in self.model.feature_info)

    def assemble(self, bags: np.ndarray, ok: np.ndarray, skipped: list[tuple[str, str]],
                 grids: np.ndarray) -> Extraction:
        """The Extraction of the rows of `bags` (and `grids`) flagged in `ok`, moved to the front
        in place."""
        index = np.flatnonzero(ok)
        for row, i in enumerate(index):  # in place, so a memory-mapped array is not copied
            if row != i:
                bags[row] = bags[i]
        return Extraction(bags[: len(index)], index, skipped, np.asarray(grids)[index], self.model.weights_sha256,
                          self.ring)


def keep_entry(bag: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """A keep-mode cache entry: one record holding the bag (M, D) and its interior grid, since M
    alone does not tell the grid (one array, so the cache's format is unchanged)."""
    record = np.zeros((), dtype=[("bag", bag.dtype, bag.shape), ("grid", np.int64, (2,))])
    record["bag"], record["grid"] = bag, grid
    return record


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
