"""Extraction rate (decoding, resizing, network, patch aggregation) against the bare network.

    python benchmarks/bench_extract.py [--images 96] [--batch 16] [--rounds 3]

The bare rate runs the backbone alone on one ready-made batch of the same (decoded, normalised)
images;
the extraction rate runs PatchExtractor on PNG files with a cold (empty) feature cache, so the
cache writes are included. Both are measured alternately in the same run and the best round of
each is kept.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _util import machine, synthetic_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--backbone", default="mobilenet_v2")
    ap.add_argument("--decode-threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data", default=f"{tempfile.gettempdir()}/anoclust-bench", help="where images are generated")
    args = ap.parse_args()

    import numpy as np
    import torch

    from anoclust.features.cache import FeatureCache
    from anoclust.features.extract import EmbeddingConfig, PatchExtractor
    from anoclust.inputs.decode import load_image

    paths, _ = synthetic_images(args.images, args.data, args.image_size)
    config = EmbeddingConfig(args.backbone, image_size=args.image_size)
    extractor = PatchExtractor(config, batch_size=args.batch, decode_threads=args.decode_threads)
    model = extractor.model
    # The bare network sees real images (decoded once, outside the timing): random tensors can
    # run at a different speed (e.g. through denormal numbers).
    x = extractor._normalise(np.stack([load_image(p, args.image_size) for p in paths[: args.batch]]))
    n_batches = -(-args.images // args.batch)
    with torch.inference_mode():
        model(x)  # warm-up
    extractor.extract(paths[: args.batch])
    best_bare = best_ours = 0.0
    cpu_bare = cpu_ours = float("inf")  # CPU seconds per image, all threads: less load-dependent
    for _ in range(args.rounds):
        start, cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            for _ in range(n_batches):
                model(x)
        best_bare = max(best_bare, n_batches * args.batch / (time.perf_counter() - start))
        cpu_bare = min(cpu_bare, (time.process_time() - cpu) / (n_batches * args.batch))
        with tempfile.TemporaryDirectory(prefix="anoclust-cold-cache-") as cache:
            extractor.cache = FeatureCache(cache)
            start, cpu = time.perf_counter(), time.process_time()
            ex = extractor.extract(paths)
            best_ours = max(best_ours, len(ex.ok) / (time.perf_counter() - start))
            cpu_ours = min(cpu_ours, (time.process_time() - cpu) / len(ex.ok))
    print(machine())
    print(f"{args.backbone} at {args.image_size} px, batch {args.batch}, {args.images} PNG images, cold cache, {args.decode_threads} decode threads")
    print(f"bare backbone forward: {best_bare:7.1f} images/s")
    print(f"anoclust extraction:   {best_ours:7.1f} images/s")
    print(f"ratio: {best_ours / best_bare:.2f}  (target >= 0.8)")
    print(f"CPU per image (all threads): bare {cpu_bare * 1e3:.0f} ms, extraction {cpu_ours * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
