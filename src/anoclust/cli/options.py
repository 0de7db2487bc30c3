"""Command-line options: the method's come from anoclust.settings, the run's are declared here."""

from __future__ import annotations

import argparse

from ..features.cache import default_cache_dir
from ..job import RunOptions
from ..settings import METHOD_SETTINGS, Params, Setting, validate


def _typed(setting: Setting):
    """argparse type: the setting's parser, refusing values it does not allow."""

    def convert(text: str):
        try:
            value = setting.kind.parse(text)
        except ValueError:
            value = None
        if value is None or not setting.kind.check(value):
            raise argparse.ArgumentTypeError(f"must be {setting.allowed()}, got {text}")
        return value

    convert.__name__ = setting.name  # argparse names the type in some messages
    return convert


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text}")
    return value


_GROUPS = {
    "user": ("method", None),
    "research": ("research options", "the paper's settings and the studies behind the defaults (docs/DESIGN.md)"),
}


def add_method_options(p: argparse.ArgumentParser, group: str, skip: tuple[str, ...] = ()) -> None:
    """The method settings of one group ("user" or "research") as an option group; `skip` leaves
    out settings by name (evaluate sets k, the weighting and the seed itself)."""
    g = p.add_argument_group(*_GROUPS[group])
    for s in METHOD_SETTINGS:
        if s.group != group or s.name in skip:
            continue
        help_text = s.help + ("" if s.default is None else " (default %(default)s)")
        if s.kind.check(True) and s.kind.check(False):  # a switch
            g.add_argument(s.flag, dest=s.name, action=argparse.BooleanOptionalAction, default=s.default,
                           help=help_text)
        elif s.kind.choices:
            g.add_argument(s.flag, dest=s.name, choices=s.kind.choices, default=s.default, help=help_text)
        else:
            g.add_argument(s.flag, dest=s.name, type=_typed(s), default=s.default, metavar=s.kind.metavar,
                           help=help_text)


def add_run_options(p: argparse.ArgumentParser, normal: bool = True, dask: bool = True) -> None:
    """Where the run reads and writes: normal references, the feature cache, Dask, progress."""
    g = p.add_argument_group("run")
    if normal:
        g.add_argument("--normal", metavar="DIR|LIST",
                       help="normal (defect-free) reference images: a folder or a text/CSV list")
    g.add_argument("--cache", metavar="DIR", default=str(default_cache_dir()),
                   help="feature cache folder (default %(default)s)")
    g.add_argument("--no-cache", dest="cache", action="store_const", const=None, help="do not cache features")
    g.add_argument("--quiet", action="store_true", help="no progress bars or warnings")
    if dask:
        g.add_argument("--workers", type=positive_int, metavar="N",
                       help="extract and score on a local Dask cluster of N processes (needs anoclust[dask])")
        g.add_argument("--dask", metavar="ADDRESS", help="extract and score on the Dask scheduler at ADDRESS")
        g.add_argument("--scratch", metavar="DIR",
                       help="folder for the run's temporary files; with --dask it must be visible to every worker")


def params_from_args(args: argparse.Namespace, **overrides) -> Params:
    """The method settings of parsed arguments (skipped ones keep their defaults), validated
    (whether they need normal images is checked once the input is listed)."""
    values = {s.name: getattr(args, s.name) for s in METHOD_SETTINGS if hasattr(args, s.name)}
    values.update(overrides)
    validate(values)
    return Params(**values)


def run_options_from_args(args: argparse.Namespace) -> RunOptions:
    defaults = RunOptions()
    return RunOptions(**{name: getattr(args, name, getattr(defaults, name)) for name in vars(defaults)})


def print_summary(result, out) -> None:
    fitted = result.fit
    labels = fitted.labels
    sizes = ", ".join(str(int((labels == c).sum())) for c in range(int(labels.max()) + 1))
    n_normal = int(fitted.normals.sum())
    resolved = fitted.model.resolved
    print(f"clustered {len(result.paths) - n_normal} images into {resolved.n_clusters} clusters (sizes {sizes})")
    diag = resolved.k_diagnostics
    if diag and diag.get("values"):
        ranked = sorted(zip(diag["ks"], diag["values"]), key=lambda kv: -kv[1])[:3]
        print(f"k = {resolved.n_clusters} chosen by the {diag['criterion']} criterion; "
              + ", ".join(f"k = {k}: {v:.3f}" for k, v in ranked) + " (higher is better; --k N fixes k, "
              "`anoclust report RUN --k N` shows another)")
    sil = resolved.pooling_silhouettes
    if sil:
        from ..fit import POOLING_MARGIN
        from ..weighting.residual import DENSE_MATCH

        lead, match = next(iter(sil)), resolved.normal_match
        why = f"; another pooling needs {POOLING_MARGIN} x the {lead} pooling's"
        if match is not None:
            why += (f", which leads as the normal images' patch match ratio is {match:.2f} "
                    f"({'<=' if match <= DENSE_MATCH else '>'} {DENSE_MATCH})")
        print(f"described by {resolved.pooling} pooling (cluster silhouette: "
              + ", ".join(f"{p} {v:.3f}" for p, v in sil.items()) + f"{why}; --pooling {'|'.join(sil)} fixes it)")
    if fitted.model.params.aspect == "keep":
        print("each image kept its aspect ratio (--aspect keep; --aspect squash resizes every image to a square)")
    if n_normal:
        print(f"set {n_normal} images apart as normal (largest patch score below {resolved.normal_threshold:.4g})")
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable file(s): see {out}/skipped.csv")
    if result.metrics:
        m = result.metrics
        print(f"NMI {m['nmi']:.3f}  ARI {m['ari']:.3f}  F1 {m['f1']:.3f}")
    print(f"results in {out}")
