"""The report's k control, driven in headless Chromium (Playwright): the clustering at every k the
run kept, shown in place, with the criterion's curve, the review restarting at each k, and the
shown k kept in the address.

One hand-made run folder and one browser for the module; every test opens the page in a fresh
browser context (empty storage). The run: ten images on a line (embedding x-coordinates below),
image 9 set apart as normal, clusterings at k = 1..4 written by hand (the run showed k = 3, its
chosen k), so each k's sections, members in order of typicality (distance to the cluster's mean),
majority labels, table and scores can be worked out by hand.
"""

import csv
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from anoclust.outputs import write_csv, write_json, write_npz
from anoclust.report import write_report
from anoclust.report.plots import MIXED, PALETTE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

X = [0.0, 1.0, 2.5, 6.0, 7.5, 20.0, 21.0, 23.0, 40.0, 50.0]  # each image's embedding, first coordinate
TRUTH = ["scratch"] * 3 + ["dent", "scratch"] + ["crack"] * 3 + ["stain", "stain"]
N = -2  # set apart as normal
LABELS = {  # the clustering at each k (clusters numbered largest first)
    1: [0, 0, 0, 0, 0, 0, 0, 0, 0, N],
    2: [0, 0, 0, 0, 0, 1, 1, 1, 0, N],
    3: [0, 0, 0, 0, 0, 1, 1, 1, 2, N],
    4: [0, 0, 0, 2, 0, 1, 1, 1, 3, N],
}
# Members of each section, nearest to the cluster's mean first (worked out from X by hand):
# k=1: mean 13.44 -> 4 (5.94 away), 5 (6.56), 3 (7.44), 6 (7.56), 7, 2, 1, 0, 8 (26.6);
# k=2: mean 9.5 -> 4, 3, 2, 1, 0, 8; and 21.33 -> 6, 5, 7; k=3: mean 3.4 -> 2, 1, 3, 0, 4;
# k=4: mean 2.75 -> 2, 1, 0, 4.
MEMBERS = {
    1: [[4, 5, 3, 6, 7, 2, 1, 0, 8]],
    2: [[4, 3, 2, 1, 0, 8], [6, 5, 7]],
    3: [[2, 1, 3, 0, 4], [6, 5, 7], [8]],
    4: [[2, 1, 0, 4], [6, 5, 7], [3], [8]],
}
# Majority label (share) per cluster; the table by labels in Hungarian-matched order (rows are
# clusters, columns the labels, the matched pairs first); F1 = share of matched images (of 9).
MAJORITY = {1: [("scratch", 4)], 2: [("scratch", 4), ("crack", 3)],
            3: [("scratch", 4), ("crack", 3), ("stain", 1)],
            4: [("scratch", 4), ("crack", 3), ("dent", 1), ("stain", 1)]}
TABLE = {
    1: (["scratch", "crack", "dent", "stain"], [[4, 3, 1, 1]]),
    2: (["scratch", "crack", "dent", "stain"], [[4, 0, 1, 1], [0, 3, 0, 0]]),
    3: (["scratch", "crack", "stain", "dent"], [[4, 0, 0, 1], [0, 3, 0, 0], [0, 0, 1, 0]]),
    4: (["scratch", "crack", "dent", "stain"], [[4, 0, 0, 0], [0, 3, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]),
}
F1 = {1: "0.444", 2: "0.778", 3: "0.900", 4: "1.000"}  # k = 3: the run's metrics.json
ODD = {1: 5, 2: 2, 3: 1, 4: 0}  # images whose label is not their cluster's majority


def write_run(folder, images, diagnostics=True):
    images.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(len(X)):
        p = images / f"img_{i}.png"
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    shown = np.array(LABELS[3])
    emb = np.array([[x, 0.0, 0.0] for x in X], dtype=np.float32)
    weights = np.full((len(X), 16), 1 / 16, dtype=np.float32)
    write_csv(folder / "assignments.csv", ["path", "cluster", "label", "max_patch_score"],
              [[p, "normal" if c < 0 else c, t, "1.0"] for p, c, t in zip(paths, shown, TRUTH)])
    write_npz(folder / "embeddings.npz", paths=np.array(paths), labels=shown, embeddings=emb, weights=weights,
              scores=weights, grid=np.array([4, 4]), ks=np.array([1, 2, 3, 4]),
              labels_by_k=np.array([LABELS[k] for k in (1, 2, 3, 4)]))
    diag = {"criterion": "knee", "ks": [2, 3, 4], "values": [0.2, 0.9, 0.7]} if diagnostics else None
    write_json(folder / "config.json", {
        "input": str(images), "settings": {"n_clusters": "auto" if diagnostics else 3},
        "resolved": {"method": "ward", "normalize": "none", "n_components": 0, "n_clusters": 3,
                     "k_diagnostics": diag},
        "n_skipped": 0, "n_normals": 0})
    write_json(folder / "metrics.json", {"nmi": 0.8, "ari": 0.7, "f1": 0.9})
    return write_report(folder)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kcontrol")
    return write_run(tmp / "run", tmp / "img")


class Page:
    """One report page in a fresh browser context; page errors fail the test."""

    def __init__(self, browser, report, query=""):
        self.file = report
        self.context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(report.as_uri() + query)

    def eval(self, script):
        return self.page.evaluate(script)

    def sections(self):
        """Visible cluster sections: (id, size text, members in page order)."""
        return [tuple(s) for s in self.eval("""() =>
            [...document.querySelectorAll('#clusters section.cluster')].filter(s => !s.hidden).map(s => [
                s.id, s.querySelector('h2 .size').textContent,
                [...s.querySelectorAll('figure.thumb')].map(f => +f.dataset.i)])""")]

    def links(self):
        return self.page.eval_on_selector_all("#cluster-links a", "as => as.map(a => a.textContent)")

    def map_colours(self):
        """Fill of each image's map point, by image number."""
        return self.eval("""() => Object.fromEntries([...document.querySelectorAll('#map a')].map(a =>
            [+a.getAttribute('href').slice(5), a.querySelector('circle').getAttribute('fill')]))""")

    def table(self):
        return self.eval("""() => [...document.querySelectorAll('#contingency tr')].map(tr =>
            [...tr.children].map(c => (c.className === 'diag' ? '*' : '') + c.textContent))""")

    def fact(self, name):
        return self.page.text_content(f'[data-fact="{name}"] b')

    def shown_k(self):
        return int(self.page.input_value("#k-select"))

    def choose(self, k):
        self.page.select_option("#k-select", str(k))

    def rename(self, section, name):
        self.page.fill(f"#{section} .cname", name)
        self.page.press(f"#{section} .cname", "Enter")

    def close(self):
        self.context.close()
        assert not self.errors, self.errors


@pytest.fixture
def page(browser, report):
    p = Page(browser, report)
    yield p
    p.close()


def expected_sections(k):
    return [(f"cluster-{c}", f"{len(m)} image{'s' if len(m) != 1 else ''}", m) for c, m in enumerate(MEMBERS[k])]


def expected_colours(k):
    return {str(i): PALETTE[c] if c >= 0 else MIXED for i, c in enumerate(LABELS[k])}


def expected_table(k):
    cols, rows = TABLE[k]
    head = [""] + cols
    return [head] + [
        [f"cluster {r}"] + [("*" if r == j else "") + str(v) for j, v in enumerate(row)] for r, row in enumerate(rows)
    ]


def check_shown(p, k):
    """Everything that follows k: sections, members, notes, links, map, table, facts, dendrogram."""
    assert p.shown_k() == k
    assert p.sections() == expected_sections(k)
    assert p.links() == [f"{c} ({len(m)})" for c, m in enumerate(MEMBERS[k])] + ["normal (1)"]
    assert p.map_colours() == expected_colours(k)
    assert p.table() == expected_table(k)
    assert p.fact("clusters") == str(k) and p.fact("f1") == F1[k] and p.fact("odd") == str(ODD[k])
    notes = p.page.eval_on_selector_all("#clusters section.cluster > .note", "ps => ps.map(p => p.textContent)")
    for (label, share), members, note in zip(MAJORITY[k], MEMBERS[k], notes):
        n, other = len(members), len(members) - share
        assert note.startswith(f"Majority label {label} ({share} of {n}); "
                               + (f"{other} member{'s' if other != 1 else ''} with another label" if other
                                  else "no other label"))
    odd = sorted(i for c, m in enumerate(MEMBERS[k]) for i in m if TRUTH[i] != MAJORITY[k][c][0])
    assert sorted(p.page.eval_on_selector_all("figure.thumb.odd", "fs => fs.map(f => +f.dataset.i)")) == odd
    assert sorted(p.page.eval_on_selector_all("#map circle.odd", "cs => cs.map(c => +c.parentNode.getAttribute("
                                                                  "'href').slice(5))")) == odd
    # the dendrogram's leaf bars (one image each here) take the colour of their image's cluster
    bars = p.eval("""() => [...document.querySelectorAll('#dendrogram a > rect')].map(r =>
        [+r.parentNode.getAttribute('href').slice(5), r.getAttribute('fill')])""")
    assert len(bars) == 9 and all(fill == expected_colours(k)[str(i)] for i, fill in bars)
    cut = p.eval("() => getComputedStyle(document.querySelector('#dendrogram line')).display")
    assert (cut == "none") == (k == 1)  # k = 1 has no cut
    assert p.page.text_content("#dendrogram line title") == f"cut into {k} clusters"
    on = p.page.eval_on_selector_all("#k-curve .kpt.on", "gs => gs.map(g => +g.dataset.k)")
    if p.page.locator("#k-curve").count():
        assert on == ([k] if k > 1 else [])  # the curve has k = 2..4


def test_opens_at_the_runs_k_with_the_chosen_k_marked(page):
    check_shown(page, 3)
    assert page.page.is_visible("#k-control") and page.page.is_visible("#k-curve")
    options = page.page.eval_on_selector_all("#k-select option", "os => os.map(o => o.textContent)")
    assert options == ["1", "2", "3 · chosen", "4"]
    assert page.page.eval_on_selector_all("#k-curve .kpt.chosen", "gs => gs.map(g => +g.dataset.k)") == [3]
    assert page.page.locator("#k-curve .kpt.chosen .ring").count() == 1
    assert page.page.is_enabled("#k-minus") and page.page.is_enabled("#k-plus")
    assert "?k=" not in page.page.url


def test_changing_k_updates_the_page_in_place(page):
    before = page.eval("() => document.querySelectorAll('figure.thumb').length")
    page.choose(4)
    check_shown(page, 4)
    page.page.click("#k-minus")  # 3
    page.page.click("#k-minus")  # 2
    check_shown(page, 2)
    page.page.click("#k-minus")
    check_shown(page, 1)
    assert page.page.is_disabled("#k-minus")
    # k = 1: one cluster of 9, the 8 most typical then the other member
    parts = page.page.eval_on_selector_all("#cluster-0 .part", "ps => ps.map(p => [p.querySelector('h3')"
                                           ".textContent, [...p.querySelectorAll('figure')].map(f => +f.dataset.i)])")
    assert parts == [["Most typical", MEMBERS[1][0][:8]], ["All other members", [8]]]
    page.page.focus("#k-select")  # the keyboard: arrow keys step through the list
    page.page.keyboard.press("ArrowDown")
    check_shown(page, 2)
    page.page.click("#k-plus")
    check_shown(page, 3)
    assert page.eval("() => document.querySelectorAll('figure.thumb').length") == before  # moved, never copied
    assert page.sections() == expected_sections(3) and page.page.locator("#normal figure").count() == 1


def test_clicking_the_curve_selects_k_and_reload_keeps_it(page):
    page.page.click('#k-curve .kpt[data-k="4"]')
    check_shown(page, 4)
    assert page.page.url.endswith("?k=4")
    page.page.reload()
    check_shown(page, 4)
    page.page.click('#k-curve .kpt[data-k="3"]')  # back to the page's own k: a plain address
    assert "?k=" not in page.page.url
    page.page.reload()
    check_shown(page, 3)


def test_k_in_the_address_opens_the_page_at_that_k(browser, report):
    p = Page(browser, report, "?k=2")
    try:
        check_shown(p, 2)
        assert "Showing k = 2" in p.page.inner_text("#review-status")
    finally:
        p.close()
    p = Page(browser, report, "?k=9")  # not kept by the run: the page's own k, and a word why
    try:
        check_shown(p, 3)
        assert "not k = 9" in p.page.inner_text("#review-status")
    finally:
        p.close()


def rows(text):
    return list(csv.reader(io.StringIO(text, newline="")))


def download(p):
    with p.page.expect_download() as info:
        p.page.click("#download")
    return open(info.value.path(), "rb").read().decode("utf-8")


def test_review_at_another_k_keeps_each_ks_edits(page):
    page.choose(4)
    page.page.click("#img-3")
    page.page.select_option("#move-target", "0")
    page.page.click("#move")
    assert page.sections()[:3] == [("cluster-0", "5 images", [2, 1, 0, 4, 3]), ("cluster-1", "3 images", [6, 5, 7]),
                                   ("cluster-3", "1 image", [8])]
    assert page.page.text_content("#cluster-0 .moved h3") == "Moved here"
    assert page.links() == ["0 (5)", "1 (3)", "3 (1)", "normal (1)"]
    text = download(page)
    got = rows(text)
    assert [r[1:] for r in got[1:]] == [["0", "0"], ["0", "0"], ["0", "0"], ["0", "2"], ["0", "0"],
                                        ["1", "1"], ["1", "1"], ["1", "1"], ["3", "3"], ["normal", "normal"]]
    assert [r[0] for r in got[1:]] == [str(page.file.parent.parent / "img" / f"img_{i}.png") for i in range(10)]
    keys = page.eval("() => Object.keys(localStorage)")
    assert keys == [page.eval("() => window.anoclustReview.key()")]
    assert page.page.eval_on_selector_all("#k-select option", "os => os.map(o => o.textContent)")[3] == "4 · edited"

    page.choose(3)  # k = 3 starts from its own clustering; k = 4's edits stay saved
    check_shown(page, 3)
    assert page.page.is_disabled("#undo") and "edits at k = 4 are kept" in page.page.inner_text("#review-status")
    page.rename("cluster-2", "stain")
    assert [r[1:] for r in rows(download(page))[1:]] == [["0", "0"]] * 5 + [["1", "1"]] * 3 + [
        ["stain", "2"], ["normal", "normal"]]
    assert len(page.eval("() => Object.keys(localStorage)")) == 2

    page.choose(4)  # k = 4's edits come back, undo history too
    assert page.sections()[0] == ("cluster-0", "5 images", [2, 1, 0, 4, 3])
    assert page.page.is_hidden("#cluster-2") and page.page.input_value("#cluster-3 .cname") == "3"
    page.page.click("#undo")
    check_shown(page, 4)
    page.page.reload()  # k = 4 still shown; k = 3 still has its name
    check_shown(page, 4)
    page.choose(3)
    assert page.page.input_value("#cluster-2 .cname") == "stain"


def test_k_given_shows_the_control_without_the_curve(browser, tmp_path):
    p = Page(browser, write_run(tmp_path / "run", tmp_path / "img", diagnostics=False))
    try:
        assert p.page.is_visible("#k-control") and p.page.locator("#k-curve").count() == 0
        assert "k fixed at 3" in p.page.inner_text("#k-control")
        options = p.page.eval_on_selector_all("#k-select option", "os => os.map(o => o.textContent)")
        assert options == ["1", "2", "3 · given", "4"]
        p.choose(2)
        check_shown(p, 2)
    finally:
        p.close()


def test_old_run_without_ks_has_no_control(tmp_path):
    from test_report import make_run

    make_run(tmp_path / "run", tmp_path / "img")
    html = write_report(tmp_path / "run").read_text()
    assert 'id="k-control"' not in html and 'id="k-data"' not in html


def test_label_text_cannot_leave_the_page_data(tmp_path):
    from test_report import make_run

    label = "</script><b>x</b><!--"
    make_run(tmp_path / "run", tmp_path / "img", odd_label=label)
    npz = dict(np.load(tmp_path / "run" / "embeddings.npz"))
    by_k = np.array([[0] * 10, [0] * 8 + [1] * 2, npz["labels"]])
    write_npz(tmp_path / "run" / "embeddings.npz", **npz, ks=np.array([1, 2, 3]), labels_by_k=by_k)
    text = write_report(tmp_path / "run").read_text()
    assert label not in text and "<b>x" not in text
    data = json.loads(re.search(r'<script type="application/json" id="k-data">(.*?)</script>', text, re.S).group(1))
    assert label in data["classes"] and data["base"] == 3 and data["chosen"] is None
    assert "k was fixed" in text  # no diagnostics in make_run's config


def test_page_data_is_integers_and_short_texts(report):
    text = report.read_text()
    data = json.loads(re.search(r'<script type="application/json" id="k-data">(.*?)</script>', text, re.S).group(1))
    assert data["ks"] == [1, 2, 3, 4] and data["base"] == 3 and data["chosen"] == 3
    assert [e["order"] for e in data["by"]] == [[i for m in MEMBERS[k] for i in m] for k in (1, 2, 3, 4)]
    assert text.count('class="pic"') == 10  # one thumbnail per image, whatever k
