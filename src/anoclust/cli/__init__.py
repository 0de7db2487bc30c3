"""The `anoclust` command line: a thin layer over the library.

Each sub-command lives in anoclust/cli/<name>.py with `register(subparsers)`, which adds its
parser and sets `func`. A user error (AnoclustError) is printed as one line and exits with 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings

from .. import __version__
from ..errors import AnoclustError

COMMANDS = ("cluster", "fit", "assign", "export", "report", "evaluate", "demo")


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus an error; users get one line that says what to do."""

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="anoclust", description="Group images of product defects by defect type.")
    parser.add_argument("--version", action="version", version=f"anoclust {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f".{name}", __package__).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.ERROR if getattr(args, "quiet", False) else logging.WARNING,
        format="anoclust: %(levelname)s: %(message)s",
    )
    try:
        with warnings.catch_warnings():
            if getattr(args, "quiet", False):  # library warnings (PIL, scikit-learn) too
                warnings.simplefilter("ignore")
            return int(args.func(args) or 0)
    except AnoclustError as exc:
        sys.stderr.write(f"anoclust: error: {exc}\n")
        return 2
    except OSError as exc:  # a disk that is full or read-only, a folder that vanished: nothing to debug
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"anoclust: error: {where}{exc.strerror or exc}\n")
        return 2
    except MemoryError:
        sys.stderr.write("anoclust: error: not enough memory: use fewer images, a smaller --image-size, or "
                         "--scratch on a disk with room\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("anoclust: interrupted; finished outputs and cache entries are kept\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
