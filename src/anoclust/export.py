"""A run's groups as a labelled image folder: one subfolder per label (the ImageFolder layout that
image-classification tools read), the images linked or copied, and a labels.csv.

The tree is built in a hidden folder beside the destination and renamed into place when it is
complete, so the destination holds a whole export or nothing; it must not exist yet (or be
empty): nothing is ever overwritten. Images with the same file name in different folders get
distinct names (`NAME__2.png`, in the order of their full paths).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .atomic import read_regular
from .errors import AnoclustError
from .outputs import check_out_dir

log = logging.getLogger(__name__)

MAX_TABLE_BYTES = 1 << 30


@dataclass
class Exported:
    folder: Path
    counts: dict[str, int]  # images per label folder
    missing: list[str]  # listed images whose file no longer exists (not exported)


def export_run(run_dir: str | Path, to: str | Path, labels: str | Path | None = None, copy: bool = False) -> Exported:
    run_dir, to = Path(run_dir), Path(to)
    entries = _run_entries(run_dir)
    if labels is not None:
        entries = _relabelled(entries, Path(labels))
    present = [(src, label) for src, label in entries if os.path.lexists(src)]
    missing = [str(src) for src, _ in entries if not os.path.lexists(src)]
    if not present:
        raise AnoclustError(f"none of the {len(entries)} images of {run_dir} exist any more: nothing to export")
    check_out_dir(to, {src.parent for src, _ in present}, force=None, flag="--to")
    if to.exists() and any(to.iterdir()):
        raise AnoclustError(f"--to {to} already holds files: export into a new folder (nothing is ever overwritten)")
    plan = _plan(present)
    to.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{to.name}.export-", dir=to.parent))
    try:
        for folder in {f for f, _ in plan.values()}:
            (stage / folder).mkdir()
        rows, label_of = [], dict(present)
        for src, (folder, name) in plan.items():
            target = stage / folder / name
            if copy:
                shutil.copy2(src, target)
            else:
                os.symlink(src, target)
            rows.append([f"{folder}/{name}", label_of[src], str(src)])
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([["path", "label", "source"], *rows])
        (stage / "labels.csv").write_bytes(buf.getvalue().encode("utf-8", "surrogateescape"))
        if to.exists():
            to.rmdir()  # empty, checked above
        os.rename(stage, to)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    counts: dict[str, int] = {}
    for folder, _ in plan.values():
        counts[folder] = counts.get(folder, 0) + 1
    if missing:
        log.warning("%d image(s) no longer exist and were not exported: %s", len(missing), ", ".join(missing[:3]))
    return Exported(to, dict(sorted(counts.items())), missing)


def _run_entries(run_dir: Path) -> list[tuple[Path, str]]:
    """(absolute image path, cluster name) of every image in a run or assign folder."""
    try:
        text = read_regular(run_dir / "assignments.csv", MAX_TABLE_BYTES).decode("utf-8", "surrogateescape")
        config = json.loads(read_regular(run_dir / "config.json", 1 << 20)) if (run_dir / "config.json").is_file() else {}
    except FileNotFoundError:
        raise AnoclustError(f"{run_dir} is not an anoclust run folder (no assignments.csv)") from None
    except (OSError, ValueError) as exc:
        raise AnoclustError(f"cannot read the run in {run_dir}: {exc}") from None
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    if rows and not {"path", "cluster"} <= set(rows[0]):
        raise AnoclustError(f"{run_dir / 'assignments.csv'} has no 'path' and 'cluster' columns")
    base = Path(config.get("cwd", ".")) if isinstance(config, dict) else Path(".")
    return [((base / r["path"]).absolute(), r["cluster"]) for r in rows]


def _relabelled(entries: list[tuple[Path, str]], labels: Path) -> list[tuple[Path, str]]:
    """The run's images listed in `labels` (path, label), with those labels; images it leaves out
    (excluded in the report) are not exported."""
    try:
        text = read_regular(labels, MAX_TABLE_BYTES).decode("utf-8-sig", "surrogateescape")
    except OSError as exc:
        raise AnoclustError(f"cannot read --labels {labels}: {exc.strerror or exc}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not {"path", "label"} <= set(reader.fieldnames or ()):
        raise AnoclustError(f"--labels {labels} needs 'path' and 'label' columns (the report's labels.csv has them)")
    in_run = {src.resolve(): src for src, _ in entries}
    out = []
    for line, r in enumerate(reader, start=2):
        path = Path(r["path"])
        src = (path if path.is_absolute() else labels.parent / path).resolve()
        if src not in in_run:
            raise AnoclustError(f"--labels {labels} line {line}: {r['path']} is not an image of this run")
        if not r["label"].strip():
            raise AnoclustError(f"--labels {labels} line {line}: empty label")
        out.append((in_run[src], r["label"].strip()))
    return out


def _plan(present: list[tuple[Path, str]]) -> dict[Path, tuple[str, str]]:
    """Source -> (label folder, file name), every target distinct."""
    folders: dict[str, str] = {}
    for label in sorted({label for _, label in present}):
        name = _folder_name(label)
        while name in folders.values():
            name += "_"
        folders[label] = name
    taken: set[tuple[str, str]] = set()
    plan = {}
    for src, label in sorted(present, key=lambda e: str(e[0])):
        folder, name, n = folders[label], src.name, 1
        while (folder, name) in taken:
            n += 1
            name = f"{src.stem}__{n}{src.suffix}"
        taken.add((folder, name))
        plan[src] = (folder, name)
    return plan


def _folder_name(label: str) -> str:
    """A label as one safe folder name: no separators, never `.`, `..` or hidden."""
    name = "".join("_" if c in "/\\\0" or ord(c) < 32 else c for c in label).strip()[:100]
    return "_" + name if not name or name.startswith(".") else name
