"""Turn a folder or a CSV into the list of images to cluster.

Listing never opens or decodes an image and never writes anything; unreadable images are
found later by :mod:`anoclust.inputs.decode` and skipped there.

Supported layouts (``layout="auto"`` picks the first that fits, in this order):

``mvtec``
    An MVTec-AD category: ``train/good/`` and ``test/<type>/`` exist. Images are all
    ``test/<type>/`` images labelled by ``<type>`` (``good`` only when ``include_good``; a
    folder named ``combined`` never), normals are ``train/good/``, and each image's mask is
    ``ground_truth/<type>/<stem>_mask.png`` when that exact file exists.
``csv``
    A ``.csv`` file with a ``path`` column and optional ``label`` and ``mask`` columns;
    relative entries resolve against the CSV's folder. Rows keep file order. Labels are used
    only if *every* row has a non-blank label (a partly labelled file cannot be scored, so it
    is treated as unlabelled); blank masks are ``None``.
``flat``
    Images directly in the folder, no subfolder holding images; unlabelled.
``labelled``
    One subfolder per label, images at any depth below it (``MT_Crack/Imgs/x.jpg`` has label
    ``MT_Crack``). Names such as ``good`` or ``normal`` get no special meaning.

Mask files (all folder layouts and :func:`find_images`): within one folder, a file is the
mask of image ``<stem>.<ext>`` and is not itself an image when it is

* ``<stem>_mask.<image ext>`` or ``<stem>_gt.<image ext>``, or
* ``<stem>.png`` beside a non-PNG ``<stem>.<ext>`` (the MTD convention ``NAME.jpg`` +
  ``NAME.png``).

When several candidates exist the order of preference is ``_mask``, ``_gt``, ``.png``.
Hidden files and folders (name starting with ``.``) are skipped; symlinks are followed but
each real folder is visited once, so symlink loops terminate. Every entry with an image's name
that is not a folder is listed, even a dangling link, a symlink loop or a FIFO: decoding then
reports it as skipped, with the reason, instead of it vanishing silently.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import AnoclustError
from .decode import IMAGE_EXTENSIONS

LAYOUTS = ("auto", "mvtec", "labelled", "flat", "csv")
_MASK_SUFFIXES = ("_mask", "_gt")
_EXPECTED = (
    "expected an MVTec category (train/good + test/<type>), a folder with one subfolder per "
    "label, a flat folder of images, or a .csv with a 'path' column"
)


@dataclass
class ImageSet:
    paths: list[Path]
    labels: list[str] | None
    normals: list[Path]
    masks: list[Path | None] | None
    layout: str
    root: Path

    def __len__(self) -> int:
        return len(self.paths)

    def sorted(self) -> "ImageSet":
        """The same set in path order, so that the listing order cannot change any output."""
        order = sorted(range(len(self.paths)), key=lambda i: str(self.paths[i]))

        def pick(items):
            return None if items is None else [items[i] for i in order]

        return dataclasses.replace(
            self, paths=pick(self.paths), labels=pick(self.labels), masks=pick(self.masks),
            normals=sorted(self.normals, key=str),
        )


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _pair_masks(names: list[str]) -> dict[str, str | None]:
    """Image name -> mask name (or None) for the image files of one folder."""
    names = sorted(names)  # scandir order is arbitrary; ties must resolve the same way
    split = {n: os.path.splitext(n) for n in names}
    by_stem: dict[str, list[str]] = {}
    for n, (stem, _) in split.items():
        by_stem.setdefault(stem, []).append(n)
    nonpng_stems = {stem for stem, ext in split.values() if ext.lower() != ".png"}

    mask_for: dict[str, tuple[int, str]] = {}  # image stem -> (preference, mask name)
    masks: set[str] = set()
    for n, (stem, ext) in split.items():
        if ext.lower() == ".png" and stem in nonpng_stems:
            masks.add(n)
            _prefer(mask_for, stem, 2, n)
    for n, (stem, _) in split.items():
        for rank, suffix in enumerate(_MASK_SUFFIXES):
            base = stem[: -len(suffix)]
            if stem.endswith(suffix) and base in by_stem and any(m not in masks for m in by_stem[base]):
                masks.add(n)
                _prefer(mask_for, base, rank, n)
                break
    return {
        n: (mask_for[split[n][0]][1] if split[n][0] in mask_for else None)
        for n in names
        if n not in masks
    }


def _prefer(table: dict[str, tuple[int, str]], stem: str, rank: int, name: str) -> None:
    if stem not in table or (rank, name) < table[stem]:
        table[stem] = (rank, name)


def _scan(folder: Path, recursive: bool = True) -> list[tuple[Path, Path | None]]:
    """(image, mask) pairs below ``folder``, sorted by relative path."""
    found: list[tuple[str, Path, Path | None]] = []
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[Path, str]] = [(folder, "")]
    while stack:
        d, rel = stack.pop()
        try:
            st = os.stat(d)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue  # an unreadable subfolder should not stop the listing
        files = []
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                is_dir = e.is_dir()
            except OSError:  # symlink loop
                is_dir = False
            if is_dir:
                if recursive:
                    stack.append((Path(e.path), f"{rel}{e.name}/"))
            elif _is_image_name(e.name):
                files.append(e.name)
        for name, mask in _pair_masks(files).items():
            found.append((rel + name, d / name, d / mask if mask else None))
    found.sort(key=lambda t: t[0])
    return [(p, m) for _, p, m in found]


def find_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files below ``folder`` by extension, sorted by relative path, masks excluded."""
    return [p for p, _ in _scan(Path(folder), recursive)]


def _subdirs(folder: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise AnoclustError(f"cannot list {folder}: {exc.strerror}; check permissions") from exc
    out = []
    for e in entries:
        try:
            if not e.name.startswith(".") and e.is_dir():
                out.append(Path(e.path))
        except OSError:
            continue
    return out


def _is_mvtec(root: Path) -> bool:
    return (root / "train" / "good").is_dir() and (root / "test").is_dir()


def _read_mvtec(root: Path, include_good: bool) -> ImageSet:
    rows: list[tuple[str, Path, str, Path | None]] = []
    for tdir in _subdirs(root / "test"):
        label = tdir.name
        if label == "combined" or (label == "good" and not include_good):
            continue
        for p in find_images(tdir):
            rel = p.relative_to(tdir)
            m = root / "ground_truth" / label / rel.with_name(rel.stem + "_mask.png")
            mask = m if label != "good" and m.is_file() else None
            rows.append((p.relative_to(root).as_posix(), p, label, mask))
    if not rows:
        what = "test/<type>/" + ("" if include_good else " (excluding good)")
        raise AnoclustError(f"no images found in {root / 'test'}: {what} holds no images")
    rows.sort(key=lambda r: r[0])
    return ImageSet(
        [r[1] for r in rows],
        [r[2] for r in rows],
        find_images(root / "train" / "good"),
        [r[3] for r in rows],
        "mvtec",
        root,
    )


def _read_folder(root: Path, layout: str) -> ImageSet:
    pairs = _scan(root, recursive=True)
    if not pairs:
        raise AnoclustError(f"no images found in {root}: {_EXPECTED}")
    direct = [(p, m) for p, m in pairs if p.parent == root]
    nested = [(p, m) for p, m in pairs if p.parent != root]
    if layout == "auto":
        if direct and nested:
            raise AnoclustError(
                f"{root} has {len(direct)} images directly inside and {len(nested)} in "
                "subfolders; pass layout 'flat' (top level only) or 'labelled' (subfolders "
                "only), or move the loose images into a label folder"
            )
        layout = "flat" if direct else "labelled"
    if layout == "flat":
        if not direct:
            raise AnoclustError(
                f"layout 'flat' needs images directly in {root}, but they are all in "
                "subfolders; use layout 'labelled' or 'auto'"
            )
        sel, labels = direct, None
    else:
        if not nested:
            raise AnoclustError(
                f"layout 'labelled' needs one subfolder per label in {root}, but all images "
                "are directly inside; use layout 'flat' or 'auto'"
            )
        sel = nested
        labels = [p.relative_to(root).parts[0] for p, _ in sel]
    masks = [m for _, m in sel]
    return ImageSet(
        [p for p, _ in sel], labels, [], masks if any(masks) else None, layout, root
    )


def _csv_rows(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip().lower() for f in (reader.fieldnames or [])]
            reader.fieldnames = fields
            rows = [{k: (v or "").strip() for k, v in r.items() if k} for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AnoclustError(f"cannot read CSV {path}: {exc}; save it as UTF-8 text") from exc
    if "path" not in fields:
        raise AnoclustError(
            f"{path} has no 'path' column (columns: {', '.join(fields) or 'none'}); add a header "
            "row with a 'path' column and optional 'label' and 'mask' columns"
        )
    return rows, fields


def _resolve(base: Path, entry: str) -> Path:
    p = Path(entry).expanduser()
    return p if p.is_absolute() else base / p


def _read_csv(path: Path) -> ImageSet:
    rows, fields = _csv_rows(path)
    base = path.parent
    paths: list[Path] = []
    seen: dict[Path, int] = {}
    for i, r in enumerate(rows, start=2):  # row 1 is the header
        if not r.get("path"):
            raise AnoclustError(f"{path} line {i}: empty 'path'; fill it in or delete the row")
        p = _resolve(base, r["path"])
        same = p.resolve()  # relative and absolute spellings, `..` and links to one file are one file
        if same in seen:
            raise AnoclustError(f"{path} line {i} names the same file as line {seen[same]} ({same}); remove one")
        seen[same] = i
        paths.append(p)
    if not paths:
        raise AnoclustError(f"no images found in {path}: the CSV has a header but no rows")
    labels = None
    if "label" in fields and all(r.get("label") for r in rows):
        labels = [r["label"] for r in rows]
    masks = None
    if "mask" in fields:
        masks = [_resolve(base, r["mask"]) if r.get("mask") else None for r in rows]
    return ImageSet(paths, labels, [], masks, "csv", base)


def read_input(path: str | os.PathLike, layout: str = "auto", include_good: bool = True) -> ImageSet:
    """List the images to cluster at ``path`` (see the module docstring for the layouts)."""
    if layout not in LAYOUTS:
        raise AnoclustError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    root = Path(os.fspath(path)).expanduser()
    if not root.exists():
        raise AnoclustError(f"input {root} does not exist; check the path")
    if root.is_file():
        if layout in ("auto", "csv") and root.suffix.lower() == ".csv":
            return _read_csv(root)
        raise AnoclustError(
            f"{root} is a file; give a folder of images or a .csv with a 'path' column"
            + (f" (layout {layout!r} needs a folder)" if layout not in ("auto", "csv") else "")
        )
    if layout == "csv":
        raise AnoclustError(f"layout 'csv' needs a .csv file, but {root} is a folder")
    if layout == "mvtec" or (layout == "auto" and _is_mvtec(root)):
        if not _is_mvtec(root):
            raise AnoclustError(
                f"{root} is not an MVTec category: it needs train/good/ and test/<type>/ "
                "folders; use layout 'auto' or point at the category folder"
            )
        return _read_mvtec(root, include_good)
    return _read_folder(root, layout)


def read_path_list(path: str | os.PathLike) -> list[Path]:
    """Images named by a folder (recursive), a ``.txt`` (one path per line, ``#`` comment
    lines and blank lines ignored) or a ``.csv`` with a ``path`` column. Relative entries
    resolve against the list file's folder. Folder results are sorted; lists keep file order."""
    src = Path(os.fspath(path)).expanduser()
    if not src.exists():
        raise AnoclustError(f"{src} does not exist; give a folder of images, a .txt or a .csv list")
    if src.is_dir():
        out = find_images(src)
    elif src.suffix.lower() == ".csv":
        rows, _ = _csv_rows(src)
        out = [_resolve(src.parent, r["path"]) for r in rows if r.get("path")]
    elif src.suffix.lower() == ".txt":
        try:
            lines = src.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise AnoclustError(f"cannot read {src}: {exc}; save it as UTF-8 text") from exc
        entries = [s.strip() for s in lines]
        out = [_resolve(src.parent, s) for s in entries if s and not s.startswith("#")]
    else:
        raise AnoclustError(f"{src} is neither a folder, a .txt nor a .csv list of images")
    if not out:
        raise AnoclustError(f"no images found in {src}; check the folder or list contents")
    return out
