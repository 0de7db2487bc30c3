"""The HTML report builder on tiny hand-made run folders (no network run needed)."""

import re

import numpy as np
import pytest
from PIL import Image

from anoclust.errors import AnoclustError
from anoclust.outputs import write_csv, write_json, write_npz
from anoclust.report import load_run, write_report
from anoclust.report.plots import dendrogram
from anoclust.report.thumbs import heat_uri
from conftest import call_cli, run_cli

GRID = (4, 4)


def make_run(folder, images, n=(5, 3, 2), labels=True, method="ward", missing=(), odd_label="<b>odd</b>"):
    """A run folder as `anoclust cluster` writes it: clusters of sizes n around separated centres."""
    rng = np.random.default_rng(0)
    images.mkdir(parents=True, exist_ok=True)
    paths, clusters, truth, emb = [], [], [], []
    for c, size in enumerate(n):
        centre = np.zeros(6)
        centre[c] = 10.0
        for j in range(size):
            p = images / f"c{c}_{j}.png"
            if (c, j) not in missing:
                Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(p)
            paths.append(str(p))
            clusters.append(c)
            truth.append(odd_label if (c, j) == (0, size - 1) else f"type{c}")
            emb.append(centre + rng.normal(0, 1, 6))
    weights = rng.random((len(paths), GRID[0] * GRID[1])).astype(np.float32)
    weights /= weights.sum(1, keepdims=True)
    folder.mkdir(parents=True, exist_ok=True)
    header = ["path", "cluster"] + (["label"] if labels else []) + ["max_patch_score"]
    rows = [[p, c] + ([t] if labels else []) + ["1.0"] for p, c, t in zip(paths, clusters, truth)]
    write_csv(folder / "assignments.csv", header, rows)
    write_npz(folder / "embeddings.npz", paths=np.array(paths), labels=np.array(clusters), embeddings=np.array(emb,
              dtype=np.float32), weights=weights, scores=weights, grid=np.array(GRID))
    write_json(folder / "config.json", {"input": str(images), "settings": {"n_clusters": len(n), "tau": 1.0},
                                        "resolved": {"method": method, "normalize": "none", "n_components": 0},
                                        "n_skipped": 0, "n_normals": 0})
    if labels:
        write_json(folder / "metrics.json", {"nmi": 0.9, "ari": 0.8, "f1": 0.9})
    return paths


def sections(html):
    return re.findall(r'<section class="cluster" id="cluster-(\d+)".*?</section>', html, re.S)


def test_report_shows_every_image_by_cluster_largest_first(tmp_path):
    paths = make_run(tmp_path / "run", tmp_path / "img")
    out = write_report(tmp_path / "run")
    html = out.read_text()
    assert out == tmp_path / "run" / "report.html"
    assert sections(html) == ["0", "1", "2"]
    assert [int(m) for m in re.findall(r'<span class="size">(\d+) images', html)] == [5, 3, 2]
    for i in range(len(paths)):
        assert html.count(f'id="img-{i}"') == 1 and html.count(f'href="#img-{i}"') >= 1  # figure + map point
    assert html.count('class="pic" src="data:image/jpeg;base64,') == len(paths)
    assert html.count('class="heat" src="data:image/png;base64,') == len(paths)
    assert html.count('loading="lazy"') == 2 * len(paths)
    assert 'id="heat-switch"' in html and 'id="map"' in html and 'id="dendrogram"' in html
    assert "0.900" in html and "0.800" in html  # NMI and ARI in the header
    # no external resources: the page must open offline
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_members_most_typical_first_and_odd_label_marked_and_escaped(tmp_path, monkeypatch):
    from anoclust.report import page

    monkeypatch.setattr(page, "N_TYPICAL", 2)
    make_run(tmp_path / "run", tmp_path / "img")
    html = write_report(tmp_path / "run").read_text()
    first = re.search(r'id="cluster-0".*?</section>', html, re.S).group(0)
    emb = np.load(tmp_path / "run" / "embeddings.npz")["embeddings"][:5].astype(float)
    expected = np.argsort(np.linalg.norm(emb - emb.mean(0), axis=1))
    assert re.findall(r'id="img-(\d+)"', first) == [str(i) for i in expected]
    typical, rest = first.split("All other members")
    assert re.findall(r'id="img-(\d+)"', typical) == [str(i) for i in expected[:2]]
    assert re.findall(r'<figure class="thumb odd" id="img-(\d+)"', html) == ["4"]
    assert "<b>odd</b>" not in html and "&lt;b&gt;odd&lt;/b&gt;" in html
    # contingency table in matched order: the diagonal holds each cluster's majority count
    diag = re.findall(r'<td class="diag">(\d+)</td>', html)
    assert diag == ["4", "3", "2"]


def test_missing_image_gets_placeholder_and_no_labels_means_no_table(tmp_path):
    make_run(tmp_path / "run", tmp_path / "img", labels=False, method="kmeans", missing={(1, 0)})
    html = write_report(tmp_path / "run").read_text()
    assert html.count("data:image/svg+xml;base64,") == 1
    assert 'id="contingency"' not in html and "thumb odd" not in html
    assert 'id="dendrogram"' not in html  # k-means has no tree to draw
    assert len(sections(html)) == 3


def test_ward_polished_by_kmeans_draws_wards_tree_and_says_so(tmp_path):
    make_run(tmp_path / "run", tmp_path / "img", method="ward_kmeans")
    html = write_report(tmp_path / "run").read_text()
    assert 'id="dendrogram"' in html and "Ward dendrogram" in html
    assert "before the k-means steps" in html


def test_report_rebuild_is_identical_and_written_elsewhere(tmp_path):
    make_run(tmp_path / "run", tmp_path / "img")
    a = write_report(tmp_path / "run").read_text()
    b = write_report(tmp_path / "run", tmp_path / "other.html").read_text()
    assert a == b


def test_not_a_run_folder_is_a_user_error(tmp_path, capsys):
    with pytest.raises(AnoclustError, match="not a finished anoclust run"):
        load_run(tmp_path)
    code, stdout, stderr = call_cli(capsys, "report", str(tmp_path))
    assert code == 2 and stderr.count("\n") == 1 and "embeddings.npz" in stderr


def test_heat_map_uniform_is_transparent_and_peak_is_opaque():
    import base64
    import io

    def decode(uri):
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))

    assert decode(heat_uri(np.full(16, 1 / 16), GRID))[..., 3].max() == 0
    w = np.full(16, 0.01)
    w[6] = 0.85
    rgba = decode(heat_uri(w, GRID))
    assert rgba.shape == (4, 4, 4)
    assert np.unravel_index(rgba[..., 3].argmax(), GRID) == (1, 2) and rgba[1, 2, 3] > 150


def test_dendrogram_truncates_large_runs_to_top_merges():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(c * 20, 1, (100, 5)) for c in range(3)])
    clusters = np.repeat(np.arange(3), 100)
    svg = dendrogram(x, clusters, "ward", max_leaves=40)[0]
    assert svg.count("<rect x=") == 40  # one bar per leaf of the truncated tree
    assert svg.count("<path ") == 39
    assert "stroke-dasharray" in svg  # the cut into 3 clusters
    # the three well separated groups are pure branches: no leaf bar is grey
    assert 'fill="#9a9a9a"' not in svg


@pytest.mark.slow
def test_cli_no_report_then_rebuild(mvtec_category, tmp_path, tmp_path_factory):
    out = tmp_path / "run"
    cache = tmp_path_factory.getbasetemp() / "report-feature-cache"  # shared with the browser test
    code, stdout, stderr = run_cli(
        "cluster", str(mvtec_category), "--out", str(out), "--k", "4", "--no-report", "--cache", str(cache), "--quiet"
    )
    assert code == 0, stderr
    assert not (out / "report.html").exists() and "report in" not in stdout
    code, stdout, stderr = run_cli("report", str(out), "--out", str(tmp_path / "r.html"), "--thumb-size", "96")
    assert code == 0, stderr
    html = (tmp_path / "r.html").read_text()
    assert len(sections(html)) == 4 and "--t:96px" in html
    assert not (out / "report.html").exists()


def test_images_set_apart_as_normal_get_their_own_section(tmp_path):
    """A run with a normal threshold labels some images -2: shown apart, outside table and tree."""
    paths = make_run(tmp_path / "run", tmp_path / "img")
    npz = dict(np.load(tmp_path / "run" / "embeddings.npz"))
    npz["labels"] = np.append(npz["labels"][:-1], -2)  # the last image (cluster 2) set apart
    npz["scores"][-1] = 0.0
    write_npz(tmp_path / "run" / "embeddings.npz", **npz)
    html = write_report(tmp_path / "run").read_text()
    assert sections(html) == ["0", "1", "2"]
    normal = re.search(r'<section class="normal-set" id="normal">.*?</section>', html, re.S).group(0)
    assert re.findall(r'id="img-(\d+)"', normal) == [str(len(paths) - 1)]
    assert html.count("<circle") == len(paths)  # on the map, in grey
    assert re.findall(r'<td class="diag">(\d+)</td>', html) == ["4", "3", "1"]  # clustered images only
    assert '<b>1</b> set apart as normal' in html


def test_no_dendrogram_above_the_memory_limit(tmp_path, monkeypatch):
    from anoclust.report import page

    monkeypatch.setattr(page, "MAX_TREE", 5)
    make_run(tmp_path / "run", tmp_path / "img")
    html = write_report(tmp_path / "run").read_text()
    assert 'id="dendrogram"' not in html and "No dendrogram" in html and 'id="map"' in html
