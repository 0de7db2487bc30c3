"""Options shared by the commands that embed and cluster images."""

from __future__ import annotations

import argparse

from ..cache import default_cache_dir
from ..clustering import METHODS, NORMALIZATIONS
from ..estimator import EMBED_TAPS
from ..pipeline import ClusterSettings
from ..weighting import WEIGHTINGS


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or a positive whole number, got {text}")
    return value


def k_value(text: str) -> int | str:
    return "auto" if text == "auto" else positive_int(text)


def components_value(text: str) -> int | str:
    return "auto" if text == "auto" else non_negative_int(text)


def threshold_value(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number, got {text}") from None


def add_method_options(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """The method's options; `skip` leaves out some (evaluate sets k and the weighting itself)."""
    d = ClusterSettings()
    p = _Skipping(p, skip)
    p.add_argument("--k", type=k_value, default=d.k, metavar="N|auto",
                   help="number of clusters, or auto to choose it (default %(default)s; see --k-max)")
    p.add_argument("--k-max", type=positive_int, default=d.k_max,
                   help="largest number of clusters --k auto may choose (default %(default)s)")
    p.add_argument("--normal-threshold", type=threshold_value, default=None, metavar="auto|VALUE",
                   help="set images whose largest patch score is below this apart as normal before clustering "
                        "(auto: calibrated on the normal references; needs --normal)")
    p.add_argument("--weighting", choices=("auto",) + WEIGHTINGS, default=d.weighting,
                   help="patch weighting; auto = reference when normal images exist, else unsupervised")
    p.add_argument("--normal", metavar="DIR|LIST", help="normal (defect-free) reference images: a folder or a text/CSV list")
    p.add_argument("--tau", type=float, default=d.tau, help="softmax temperature of the patch weights (default %(default)s)")
    p.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="do not standardise patch scores within each image before the softmax")
    p.add_argument("--position-norm", action=argparse.BooleanOptionalAction, default=d.position_norm,
                   help="score each patch relative to the same position in the other images (default %(default)s)")
    p.add_argument("--border", type=non_negative_int, default=d.border, metavar="RINGS",
                   help="outer rings of the patch grid left out of scoring and weighting (default %(default)s)")
    p.add_argument("--whiten", action=argparse.BooleanOptionalAction, default=d.whiten,
                   help="reference weighting: compare patches after whitening by the normal patches; "
                        "unsupervised: whiten the embeddings by the patches' variation within each image "
                        "(default %(default)s)")
    p.add_argument("--n-sampled", type=positive_int, default=d.n_sampled,
                   help="other images sampled per image by the unsupervised score (default %(default)s)")
    p.add_argument("--method", choices=("auto",) + METHODS, default=d.method,
                   help="clustering method; auto = ward_kmeans (Ward polished by k-means) with the reference "
                        "weighting, else ward (default %(default)s)")
    p.add_argument("--normalize", choices=("auto",) + NORMALIZATIONS, default=d.normalize,
                   help="embedding normalisation before clustering; auto = l2 where --embed-taps auto picks "
                        "the deepest tap, else none (default %(default)s)")
    p.add_argument("--components", type=components_value, default=d.n_components, metavar="N|auto",
                   help="after the normalisation, keep N principal axes of the embeddings and scale each to "
                        "unit length again (0 = off); auto = 4 per cluster with the reference and unsupervised "
                        "weightings, off with uniform and max (default %(default)s)")
    p.add_argument("--embed-taps", choices=EMBED_TAPS, default=d.embed_taps,
                   help="taps the embedding describes the defect with (the scores use all); auto = the deepest "
                        "with the reference weighting, and with the unsupervised one when its scores find local "
                        "defects (config.json: score_peak >= 4.5), else all (default %(default)s)")
    p.add_argument("--backbone", default=d.backbone, help="feature network (default %(default)s)")
    p.add_argument("--weights", metavar="PATH", help="backbone weights file (torchvision format)")
    p.add_argument("--image-size", type=positive_int, default=d.image_size, help="input size in pixels (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default %(default)s)")
    p.add_argument("--cache", metavar="DIR", default=str(default_cache_dir()),
                   help="feature cache folder (default %(default)s)")
    p.add_argument("--no-cache", dest="cache", action="store_const", const=None, help="do not cache features")
    p.add_argument("--quiet", action="store_true", help="no progress bars or warnings")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="extract and score on a local Dask cluster of N processes (needs anoclust[dask])")
    p.add_argument("--dask", metavar="ADDRESS", help="extract and score on the Dask scheduler at ADDRESS")
    p.add_argument("--scratch", metavar="DIR",
                   help="folder for the run's temporary files; with --dask it must be visible to every worker")


class _Skipping:
    """Forwards add_argument to a parser except for the option names in `skip`."""

    def __init__(self, parser: argparse.ArgumentParser, skip: tuple[str, ...]):
        self.parser, self.skip = parser, skip

    def add_argument(self, *names, **kwargs):
        if not any(n in self.skip for n in names):
            self.parser.add_argument(*names, **kwargs)


def settings_from_args(args: argparse.Namespace) -> ClusterSettings:
    d = ClusterSettings()
    return ClusterSettings(
        k=getattr(args, "k", d.k),
        k_max=getattr(args, "k_max", d.k_max),
        normal_threshold=getattr(args, "normal_threshold", d.normal_threshold),
        weighting=getattr(args, "weighting", d.weighting),
        tau=args.tau,
        standardize=args.standardize,
        position_norm=args.position_norm,
        border=args.border,
        whiten=args.whiten,
        n_sampled=args.n_sampled,
        method=args.method,
        normalize=args.normalize,
        n_components=args.components,
        embed_taps=args.embed_taps,
        backbone=args.backbone,
        weights=args.weights,
        image_size=args.image_size,
        seed=getattr(args, "seed", d.seed),
        layout=getattr(args, "layout", "auto"),
        include_good=getattr(args, "include_good", True),
        normal=getattr(args, "normal", None),
        cache=args.cache,
        quiet=args.quiet,
        workers=args.workers,
        dask=args.dask,
        scratch=args.scratch,
    )


def print_summary(result, out) -> None:
    sizes = ", ".join(str(int((result.labels == c).sum())) for c in range(int(result.labels.max()) + 1))
    n_normal = int(result.estimator.normals_.sum())
    n_clustered = len(result.paths) - n_normal
    print(f"clustered {n_clustered} images into {result.estimator.n_clusters_} clusters (sizes {sizes})")
    if n_normal:
        print(f"set {n_normal} images apart as normal (largest patch score below {result.estimator.normal_threshold_:.4g})")
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable file(s): see {out}/skipped.csv")
    if result.metrics:
        m = result.metrics
        print(f"NMI {m['nmi']:.3f}  ARI {m['ari']:.3f}  F1 {m['f1']:.3f}")
    print(f"results in {out}")
