"""Large-N machinery: memory-mapped bags, two-stage Ward, thread-invariant scoring."""

import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from anoclust import clustering
from anoclust.features import extract
from anoclust.clustering import cluster_embeddings, two_stage_ward, weighted_ward
from anoclust.weighting.pooling import weighted_average
from anoclust.weighting.reference import reference_scores
from anoclust.weighting.unsupervised import unsupervised_scores


def blobs(n, k=4, d=8, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return rng.normal(size=(k, d))[y] * 4 + rng.normal(size=(n, d)), y


@pytest.mark.parametrize("k", [2, 5, 13])
def test_weighted_ward_with_unit_sizes_is_exact_ward(k):
    x = np.random.default_rng(k).normal(size=(50, 4))
    exact = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(x)
    assert adjusted_rand_score(exact, weighted_ward(x, np.ones(len(x)), k)) == 1.0


def test_weighted_ward_sizes_count_as_repeated_points():
    # A point of size 3 must behave like three copies of it.
    x = np.random.default_rng(1).normal(size=(12, 3))
    sizes = np.ones(12)
    sizes[0] = 3
    repeated = np.vstack([x, x[[0, 0]]])
    exact = AgglomerativeClustering(n_clusters=4, linkage="ward").fit_predict(repeated)[:12]
    assert adjusted_rand_score(exact, weighted_ward(x, sizes, 4)) == 1.0


def test_two_stage_takes_over_above_the_limit(monkeypatch):
    x, y = blobs(300)
    calls = []
    monkeypatch.setattr(clustering, "EXACT_WARD_MAX", 100)
    monkeypatch.setattr(clustering, "two_stage_ward", lambda *a: calls.append(a) or two_stage_ward(*a[:2], 40, a[3]))
    labels = cluster_embeddings(x, 4, "ward")
    assert len(calls) == 1
    assert normalized_mutual_info_score(y, labels) > 0.95
    assert sorted(np.bincount(labels), reverse=True) == list(np.bincount(labels))  # numbered by size


def test_two_stage_agrees_with_exact_ward():
    x, _ = blobs(400, k=5, seed=3)
    exact = AgglomerativeClustering(n_clusters=5, linkage="ward").fit_predict(x)
    assert normalized_mutual_info_score(exact, two_stage_ward(x, 5, 60, 0)) > 0.9


def test_scores_do_not_depend_on_threads():
    bags = np.random.default_rng(0).normal(size=(9, 20, 4)).astype(np.float16)
    one = unsupervised_scores(bags, n_sampled=3, random_state=0, n_threads=1)
    two = unsupervised_scores(bags, n_sampled=3, random_state=0, n_threads=2)
    assert np.array_equal(one, two)
    bank = bags[:2].reshape(-1, 4).astype(np.float32)
    assert np.array_equal(reference_scores(bags, bank, n_threads=1), reference_scores(bags, bank, n_threads=2))


def test_weighted_average_in_chunks():
    rng = np.random.default_rng(0)
    bags = rng.normal(size=(7, 5, 3)).astype(np.float16)
    w = rng.random((7, 5)).astype(np.float32)
    assert np.allclose(weighted_average(bags, w, chunk=2), np.einsum("nm,nmd->nd", w, bags.astype(np.float32)), atol=1e-5)


def test_large_bags_are_memory_mapped_and_equal(mvtec_category, monkeypatch, tmp_path):
    paths = sorted((mvtec_category / "test").rglob("*.png"))[:5]
    paths.insert(2, tmp_path / "missing.png")
    extractor = extract.PatchExtractor(extract.EmbeddingConfig(image_size=64), pretrained=False, scratch_dir=tmp_path)
    in_memory = extractor.extract(paths)
    monkeypatch.setattr(extract, "MEMMAP_BYTES", 0)
    mapped = extractor.extract(paths)
    assert isinstance(mapped.bags, np.memmap) and not isinstance(in_memory.bags, np.memmap)
    assert np.array_equal(mapped.ok, in_memory.ok) and len(mapped.skipped) == 1
    assert np.array_equal(np.asarray(mapped.bags), in_memory.bags)
    assert not list(tmp_path.glob("anoclust-bags-*"))  # the file's name is gone at once
