"""The Dask path gives the labels of a single-process run."""

import numpy as np
import pytest

pytest.importorskip("distributed", reason="Dask is not installed (pip install 'anoclust[dask]')")

from anoclust import distributed  # noqa: E402
from anoclust.inputs.listing import read_input, read_path_list  # noqa: E402
from anoclust.job import RunOptions, run_clustering  # noqa: E402
from anoclust.settings import Params  # noqa: E402
from anoclust.synthetic import make_labelled_folder  # noqa: E402


@pytest.mark.dask
@pytest.mark.slow
def test_two_process_cluster_matches_single_process(tmp_path, monkeypatch):
    make_labelled_folder(tmp_path / "in", n_per_type=5, size=64, normal_root=tmp_path / "normal", n_normal=4)
    (tmp_path / "in" / "spot" / "broken.png").write_bytes(b"not an image")
    images = read_input(tmp_path / "in")
    images.normals = read_path_list(tmp_path / "normal")
    # Small shards, so that both workers get several of them.
    monkeypatch.setattr(distributed, "EXTRACT_SHARD", 4)
    monkeypatch.setattr(distributed, "SCORE_SHARD", 3)
    runs = {w: Params(n_clusters=3, weighting=w, n_sampled=4, image_size=64) for w in ("unsupervised", "reference")}
    options = RunOptions(quiet=True)
    local = {w: run_clustering(images, p, options) for w, p in runs.items()}
    with distributed.open_engine(2, None, str(tmp_path)) as engine:
        assert len(engine.client.scheduler_info()["workers"]) == 2
        remote = {w: run_clustering(images, p, options, engine=engine) for w, p in runs.items()}
    for w in runs:
        assert remote[w].paths == local[w].paths and len(remote[w].skipped) == 1
        # identical, NaN included (the border ring, never scored)
        assert np.array_equal(remote[w].fit.scores, local[w].fit.scores, equal_nan=True)
        assert np.array_equal(remote[w].fit.labels, local[w].fit.labels)
    assert not list(tmp_path.glob("anoclust-run-*"))  # the scratch folder is removed


def test_local_run_needs_no_engine():
    with distributed.open_engine(None, None) as engine:
        assert engine is None
