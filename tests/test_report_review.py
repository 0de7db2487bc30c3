"""Reviewing and correcting the clustering in report.html, driven in headless Chromium (Playwright).

One hand-made run folder (tests/test_report.py's `make_run`, ten images in clusters of 5, 3, 2;
the last image set apart as normal; one file name with a comma, a quote and a line break) and one
browser for the module; every test opens the page in a fresh browser context (empty storage).
Set ANOCLUST_SAVE_SCREENSHOT=1 to refresh docs/review.png (shown in docs/REPORT.md).
"""

import csv
import hashlib
import html
import io
import json
import os
import re

import numpy as np
import pytest
from PIL import Image, ImageDraw

from anoclust.outputs import write_csv, write_npz
from anoclust.report import load_run, write_report
from anoclust.report.page import run_key
from conftest import ROOT
from test_report import make_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WEIRD = 'c1_0, "dent"\nsecond line.png'  # the file name of image 5
NAMES = {0: "scratch", 1: "dent", 2: "stain"}  # what the pictures of each cluster show


def draw(path, kind, seed):
    """A small grey surface with one defect, so the thumbnails (and docs/review.png) look like a review."""
    rng = np.random.default_rng(seed)
    w, h = 90, 60
    base = rng.normal(150, 12, (h, w, 1)) + np.array([0, 3, 8])
    im = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    x, y = rng.uniform(20, 70), rng.uniform(15, 45)
    if kind == "scratch":
        a = rng.uniform(0, np.pi)
        dx, dy = 38 * np.cos(a), 38 * np.sin(a)
        d.line([(x - dx, y - dy), (x + dx, y + dy)], fill=(245, 245, 235), width=2)
    elif kind == "dent":
        r = rng.uniform(6, 10)
        d.ellipse([x - r, y - r, x + r, y + r], fill=(70, 66, 60))
    elif kind == "crack":
        pts = [(x - 25, y)]
        for _ in range(6):
            pts.append((pts[-1][0] + 8, pts[-1][1] + rng.uniform(-7, 7)))
        d.line(pts, fill=(40, 36, 32), width=2)
    elif kind == "stain":
        d.ellipse([x - 18, y - 12, x + 18, y + 12], fill=(150, 120, 60))
    elif kind == "dark":
        im = Image.new("RGB", (w, h), (18, 18, 22))
    im.save(path, format="PNG")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """report.html of a run: clusters 0 = {0..4}, 1 = {5, 6, 7}, 2 = {8}, image 9 set apart as normal."""
    tmp = tmp_path_factory.mktemp("review")
    run, images = tmp / "run", tmp / "img"
    paths = make_run(run, images)
    weird = images / WEIRD
    os.replace(paths[5], weird)
    paths[5] = str(weird)
    kinds = ["scratch"] * 4 + ["none", "crack", "dent", "dent", "stain", "dark"]
    for i, (p, kind) in enumerate(zip(paths, kinds)):
        draw(p, kind, i)
    npz = dict(np.load(run / "embeddings.npz"))
    npz["paths"] = np.array(paths)
    npz["labels"] = np.append(npz["labels"][:-1], -2)
    write_npz(run / "embeddings.npz", **npz)
    with open(run / "assignments.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    rows[1 + 5][0] = paths[5]
    rows[1 + 9][1] = "normal"
    write_csv(run / "assignments.csv", rows[0], rows[1:])
    return write_report(run), paths


class Page:
    """One report page in a fresh browser context; page errors fail the test."""

    def __init__(self, browser, report):
        self.file = report
        self.context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.requests = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(report.as_uri())

    def layout(self):
        """Visible sections in page order: (section id, name, size text, image numbers in page order)."""
        return [tuple(s) for s in self.page.evaluate("""() =>
            [...document.querySelectorAll('main section[data-g]')].filter(s => !s.hidden).map(s => [
                s.id,
                s.querySelector('.cname') ? s.querySelector('.cname').value
                                          : s.querySelector('h2').firstChild.textContent,
                s.querySelector('h2 .size').textContent,
                [...s.querySelectorAll('figure.thumb')].map(f => +f.dataset.i)])""")]

    def members(self, section):
        return self.page.eval_on_selector_all(f"#{section} figure.thumb", "fs => fs.map(f => +f.dataset.i)")

    def links(self):
        return self.page.eval_on_selector_all("#cluster-links a", "as => as.map(a => a.textContent)")

    def selected(self):
        return sorted(self.page.eval_on_selector_all("figure.thumb.sel", "fs => fs.map(f => +f.dataset.i)"))

    def focused(self):
        return self.page.evaluate("() => document.activeElement.dataset.i")

    def options(self, select="#move-target"):
        return self.page.eval_on_selector_all(f"{select} option", "os => os.map(o => [o.value, o.textContent])")

    def click(self, i, *modifiers):
        self.page.click(f"#img-{i}", modifiers=list(modifiers))

    def select(self, *images):
        self.click(images[0])
        for i in images[1:]:
            self.click(i, "Control")
        assert self.selected() == sorted(images)

    def rename(self, section, name):
        self.page.fill(f"#{section} .cname", name)
        self.page.press(f"#{section} .cname", "Enter")

    def move_to(self, cluster):
        self.page.select_option("#move-target", cluster)
        self.page.click("#move")

    def status(self):
        return self.page.inner_text("#review-status")

    def download(self):
        with self.page.expect_download() as info:
            self.page.click("#download")
        d = info.value
        assert d.suggested_filename == "labels.csv"
        return open(d.path(), "rb").read().decode("utf-8")

    def stored(self):
        return self.page.evaluate("() => localStorage.getItem('anoclust-review:' + document.body.dataset.run)")

    def close(self):
        self.context.close()
        assert not self.errors, self.errors
        assert all(u.startswith(("file:", "data:", "blob:")) for u in self.requests), self.requests


@pytest.fixture
def page(browser, report):
    p = Page(browser, report[0])
    yield p
    p.close()


START_LINKS = ["0 (5)", "1 (3)", "2 (1)", "normal (1)"]


def test_page_carries_run_key_and_absolute_paths(report):
    file, paths = report
    text = file.read_text(encoding="utf-8")
    items = [[p, c] for p, c in zip(paths, ["0"] * 5 + ["1"] * 3 + ["2", "normal"])]
    key = hashlib.sha256(json.dumps(items).encode("ascii")).hexdigest()[:16]
    assert re.search(r'<body data-run="([0-9a-f]{16})"', text).group(1) == key == run_key(load_run(file.parent))
    shown = {int(i): html.unescape(p) for i, p in re.findall(r'data-i="(\d+)" data-path="([^"]*)"', text)}
    assert shown == dict(enumerate(paths)) and all(os.path.isabs(p) for p in paths)
    assert 'data-path="' + html.escape(paths[5]) + '"' in text  # quotes escaped, the line break kept
    # another clustering of the same images is another run: its edits are kept apart
    run = load_run(file.parent)
    run.clusters = run.clusters[::-1].copy()
    assert run_key(run) != key


def test_page_opens_with_the_runs_clusters_and_self_check_passes(page):
    assert page.layout() == [
        ("cluster-0", "0", "5 images", page.members("cluster-0")),
        ("cluster-1", "1", "3 images", page.members("cluster-1")),
        ("cluster-2", "2", "1 image", [8]),
        ("normal", "Set apart as normal", "1 image", [9]),
    ]
    assert sorted(page.members("cluster-0")) == [0, 1, 2, 3, 4] and sorted(page.members("cluster-1")) == [5, 6, 7]
    assert page.links() == START_LINKS
    assert page.options() == [["0", "0"], ["1", "1"], ["2", "2"]]
    assert page.page.is_visible("#review") and page.page.inner_text("#sel-count") == "0 selected"
    assert page.page.is_disabled("#move") and page.page.is_disabled("#undo")
    assert page.stored() is None  # nothing saved before the first edit
    page.page.goto(page.file.as_uri() + "?selfcheck")
    page.page.wait_for_selector("#selfcheck[data-done]", state="attached")
    check = json.loads(page.page.text_content("#selfcheck"))
    assert check["clusters"] == check["clusters_visible"] == 3
    assert check["thumbnails"] == check["thumbnails_laid_out"] == 10
    assert check["heat_hidden_before"] and check["heat_visible_after"] and check["review_visible"]
    assert check["map_points_visible"] == 10 and check["dendrogram_visible"]


def test_rename_escapes_the_name_and_quotes_it_in_the_csv(page, report):
    paths = report[1]
    bold = page.page.evaluate("() => document.querySelectorAll('b').length")
    name = "<b>dent</b>, deep"
    page.rename("cluster-1", name)
    assert page.page.input_value("#cluster-1 .cname") == name
    assert page.links() == ["0 (5)", f"{name} (3)", "2 (1)", "normal (1)"]
    assert page.options() == [["0", "0"], ["1", name], ["2", "2"]]
    assert page.options("#cluster-0 .merge select") == [["1", name], ["2", "2"]]
    assert page.page.evaluate("() => document.querySelectorAll('b').length") == bold  # no element made
    assert page.status() == "Renamed \u201c1\u201d to \u201c<b>dent</b>, deep\u201d."
    text = page.download()
    quoted_path = '"' + paths[5].replace('"', '""') + '"'
    assert f'{quoted_path},"<b>dent</b>, deep",1\r\n' in text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert [r[1] for r in rows[6:9]] == [name] * 3 and rows[6][0] == paths[5]
    # an empty name is refused, the old one kept
    page.rename("cluster-1", "   ")
    assert page.page.input_value("#cluster-1 .cname") == name and "needs a name" in page.status()


def test_select_move_new_cluster_merge_and_undo(page):
    start = page.layout()
    c0, c1 = page.members("cluster-0"), page.members("cluster-1")
    page.click(c0[1])
    page.click(c0[3], "Shift")
    assert page.selected() == sorted(c0[1:4]) and page.page.inner_text("#sel-count") == "3 selected"
    page.click(c0[2], "Control")  # toggles one off
    assert page.selected() == sorted([c0[1], c0[3]])
    page.move_to("2")
    stay = [c0[0], c0[2], c0[4]]
    moved_in = sorted([c0[1], c0[3]], key=c0.index)  # in the order the page was built
    assert page.members("cluster-0") == stay and page.members("cluster-2") == [8] + moved_in
    assert page.page.text_content("#cluster-2 .moved h3") == "Moved here"
    assert page.links() == ["0 (3)", "1 (3)", "2 (3)", "normal (1)"] and page.selected() == []
    assert page.status() == "Moved 2 images to \u201c2\u201d."

    page.select(6)
    page.page.click("#move-new")
    assert page.layout()[:4] == [
        ("cluster-0", "0", "3 images", stay),
        ("cluster-1", "1", "2 images", [i for i in c1 if i != 6]),
        ("cluster-2", "2", "3 images", [8] + moved_in),
        ("cluster-3", "3", "1 image", [6]),
    ]
    assert page.links() == ["0 (3)", "1 (2)", "2 (3)", "3 (1)", "normal (1)"]
    assert page.options() == [["0", "0"], ["1", "1"], ["2", "2"], ["3", "3"]]

    page.page.select_option("#cluster-2 .merge select", "3")
    page.page.click("#cluster-2 .merge button")
    assert [s[:3] for s in page.layout()] == [
        ("cluster-0", "0", "3 images"), ("cluster-1", "1", "2 images"), ("cluster-3", "3", "4 images"),
        ("normal", "Set apart as normal", "1 image"),
    ]
    assert sorted(page.members("cluster-3")) == sorted([6, 8] + moved_in)
    assert page.page.is_hidden("#cluster-2") and page.links() == ["0 (3)", "1 (2)", "3 (4)", "normal (1)"]
    assert page.status() == "Merged \u201c2\u201d into \u201c3\u201d (3 images)."

    page.page.click("#undo")  # the merge
    assert page.members("cluster-2") == [8] + moved_in and page.members("cluster-3") == [6]
    assert page.selected() == sorted([8] + moved_in)  # what went back is selected
    page.page.keyboard.press("Control+z")  # the new cluster
    assert page.page.is_hidden("#cluster-3") and sorted(page.members("cluster-1")) == [5, 6, 7]
    assert page.status() == "Undone: moved 1 image to the new cluster 3."
    page.page.keyboard.press("Control+z")  # the first move: the page as it opened
    assert page.layout() == start and page.links() == START_LINKS
    assert page.page.is_disabled("#undo") and page.stored() is None

    page.select(6)  # a new cluster takes the next free number again
    page.page.click("#move-new")
    assert page.members("cluster-3") == [6]


def test_keyboard(page):
    c0, c1 = page.members("cluster-0"), page.members("cluster-1")
    page.page.focus(f"#img-{c0[0]}")
    page.page.keyboard.press("ArrowRight")
    assert page.focused() == str(c0[1]) and page.selected() == []
    page.page.keyboard.press("Space")
    assert page.selected() == [c0[1]]
    page.page.keyboard.press("Shift+ArrowRight")
    page.page.keyboard.press("Shift+ArrowRight")
    assert page.selected() == sorted(c0[1:4]) and page.focused() == str(c0[3])
    page.page.keyboard.press("Shift+ArrowLeft")  # the range shrinks back
    assert page.selected() == sorted(c0[1:3])
    page.page.keyboard.press("Escape")
    assert page.selected() == []
    page.page.keyboard.press("Control+a")
    assert page.selected() == sorted(c0)
    page.page.keyboard.press("Escape")
    page.page.focus(f"#img-{c0[0]}")
    page.page.keyboard.press("ArrowDown")  # the next row: cluster 1's first row, same column
    assert page.focused() == str(c1[0])
    page.page.keyboard.press("ArrowUp")
    assert page.focused() == str(c0[0])
    page.page.keyboard.press("ArrowLeft")  # the first image: nothing before it
    assert page.focused() == str(c0[0])
    page.page.keyboard.press("End")
    assert page.focused() == str(c0[-1])
    page.page.focus(f"#img-{c1[1]}")
    page.page.keyboard.press("Control+a")
    assert page.selected() == sorted(c1)
    page.page.keyboard.press("d")  # not a defect
    assert page.members("not-a-defect") == c1 and page.page.is_hidden("#cluster-1")
    assert page.focused() == "8"  # the keyboard stays where it was: the next image on the page
    page.page.keyboard.press("x")  # nothing selected: nothing happens
    assert page.members("cluster-2") == [8] and "Select images first" in page.status()
    page.page.keyboard.press("Space")
    page.page.keyboard.press("n")
    assert page.members("cluster-3") == [8] and page.page.is_hidden("#cluster-2")
    page.page.keyboard.press("Control+z")
    page.page.keyboard.press("Control+z")
    assert page.members("cluster-1") == c1 and page.page.is_hidden("#not-a-defect")
    # one Tab stop per section: the last image used there
    stops = page.page.eval_on_selector_all('figure.thumb[tabindex="0"]', "fs => fs.map(f => +f.dataset.i)")
    assert len(stops) == 4 and c0[-1] in stops


def test_marks_reload_and_download(page, report):
    paths = report[1]
    c0 = page.members("cluster-0")
    page.rename("cluster-0", "scratch")
    page.rename("cluster-1", "dent")
    page.select(4)
    page.page.click("#mark-nodefect")
    page.select(9)
    page.page.click("#mark-exclude")
    page.select(6, 7)
    page.page.click("#mark-nodefect")
    page.select(7)  # moved back out of "Not a defect"
    page.move_to("1")
    page.select(5)
    page.page.click("#move-new")
    page.rename("cluster-3", "crack")
    expected = [
        ("cluster-0", "scratch", "4 images", [i for i in c0 if i != 4]),
        ("cluster-1", "dent", "1 image", [7]),
        ("cluster-2", "2", "1 image", [8]),
        ("cluster-3", "crack", "1 image", [5]),
        ("not-a-defect", "Not a defect", "2 images", [4, 6]),
        ("excluded", "Excluded", "1 image", [9]),
    ]
    links = ["scratch (4)", "dent (1)", "2 (1)", "crack (1)", "not a defect (2)", "excluded (1)"]
    assert page.layout() == expected and page.links() == links
    assert page.page.is_hidden("#normal")
    stored = json.loads(page.stored())
    assert len(stored["history"]) == 8 and stored["groups"]["3"] == {"name": "crack"}

    page.page.reload()
    assert page.layout() == expected and page.links() == links
    assert page.page.get_attribute("#undo", "title") == "Undo: renamed \u201c3\u201d to \u201ccrack\u201d (Ctrl/Cmd+Z)"
    page.page.click("#undo")  # the history survived the reload too
    assert page.page.input_value("#cluster-3 .cname") == "3"
    page.rename("cluster-3", "crack")

    if os.environ.get("ANOCLUST_SAVE_SCREENSHOT"):
        page.page.set_viewport_size({"width": 1280, "height": 1760})  # the sections after the map
        page.select(c0[1], c0[2])
        page.page.evaluate("() => document.getElementById('cluster-0').scrollIntoView()")
        shot = page.page.screenshot()
        page.page.set_viewport_size({"width": 1280, "height": 1000})
        im = Image.open(io.BytesIO(shot)).convert("RGB")
        assert im.size == (1280, 1760) and np.asarray(im).std() > 20
        im.quantize(256, method=Image.Quantize.MEDIANCUT).save(ROOT / "docs" / "review.png", optimize=True)

    text = page.download()
    assert text.startswith("path,label,cluster\r\n") and text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [
        ["path", "label", "cluster"],
        [paths[0], "scratch", "0"],
        [paths[1], "scratch", "0"],
        [paths[2], "scratch", "0"],
        [paths[3], "scratch", "0"],
        [paths[4], "normal", "0"],
        [paths[5], "crack", "1"],
        [paths[6], "normal", "1"],
        [paths[7], "dent", "1"],
        [paths[8], "2", "2"],
    ]  # image 9 excluded
    assert all(os.path.isabs(r[0]) and os.path.isfile(r[0]) for r in rows[1:])
    assert page.status() == "labels.csv: 9 images, 1 excluded."
    # the file is an input anoclust reads: a path and a label column
    from anoclust.inputs.listing import read_input

    labels_csv = page.file.parent / "labels.csv"
    labels_csv.write_text(text, encoding="utf-8", newline="")
    listed = read_input(labels_csv)
    assert [str(p) for p in listed.paths] == paths[:9]
    assert listed.labels == ["scratch"] * 4 + ["normal", "crack", "normal", "dent", "2"]


def test_an_image_set_apart_by_the_run_is_labelled_normal(page, report):
    rows = list(csv.reader(io.StringIO(page.download(), newline="")))
    assert rows[1:] == [[p, c, c] for p, c in zip(report[1], ["0"] * 5 + ["1"] * 3 + ["2"])] + [
        [report[1][9], "normal", "normal"]
    ]


def test_reset_after_confirm(page):
    start = page.layout()
    page.select(8)
    page.page.click("#mark-exclude")
    page.page.once("dialog", lambda d: d.dismiss())
    page.page.click("#reset")
    assert page.members("excluded") == [8] and page.stored() is not None
    page.page.once("dialog", lambda d: d.accept())
    page.page.click("#reset")
    assert page.layout() == start and page.links() == START_LINKS and page.stored() is None
    page.page.reload()
    assert page.layout() == start


def test_saved_edits_belong_to_their_run(page):
    page.select(8)
    page.page.click("#mark-exclude")
    key = page.page.evaluate("() => document.body.dataset.run")
    keys = page.page.evaluate("() => Object.keys(localStorage)")
    assert keys == ["anoclust-review:" + key]
    # edits saved for another page (or damaged) are not applied to this one
    page.page.evaluate("() => localStorage.setItem(Object.keys(localStorage)[0], '{\"v\":1,\"of\":[\"0\"]}')")
    page.page.reload()
    assert page.links() == START_LINKS and "could not be read" in page.status()


def test_selecting_touches_only_the_figures_that_change(page):
    c0 = page.members("cluster-0")
    page.click(c0[0])
    page.page.evaluate("""() => {
        window.touched = new Set();
        new MutationObserver(ms => ms.forEach(m => { if (m.target.matches('figure.thumb'))
            window.touched.add(+m.target.dataset.i); }))
          .observe(document.querySelector('main'), {attributes: true, subtree: true});
    }""")
    page.click(c0[4])
    page.click(c0[2], "Shift")
    touched = page.page.evaluate("() => [...window.touched].sort((a, b) => a - b)")
    assert touched == sorted([c0[0], c0[2], c0[3], c0[4]])  # not the other six figures


def test_a_name_that_is_not_utf8_is_written_byte_exact(browser, tmp_path):
    paths = make_run(tmp_path / "run", tmp_path / "img", n=(2, 2))
    odd = str(tmp_path / "img" / os.fsdecode(b"c0_1 \xff, x.png"))  # and a comma: quoted as bytes
    os.replace(paths[1], odd)
    paths[1] = odd
    npz = dict(np.load(tmp_path / "run" / "embeddings.npz"))
    npz["paths"] = np.array(paths)
    write_npz(tmp_path / "run" / "embeddings.npz", **npz)
    write_csv(tmp_path / "run" / "assignments.csv", ["path", "cluster"], [[p, c] for p, c in zip(paths, [0, 0, 1, 1])])
    p = Page(browser, write_report(tmp_path / "run"))
    try:
        with p.page.expect_download() as info:
            p.page.click("#download")
        data = open(info.value.path(), "rb").read()
    finally:
        p.close()
    assert data == b"path,label,cluster\r\n" + b"".join(
        (b'"' + os.fsencode(q) + b'"' if q == odd else os.fsencode(q)) + f",{c},{c}\r\n".encode()
        for q, c in zip(paths, "0011")
    )
