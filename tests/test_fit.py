"""The one fit path: every setting defined once, and every caller running the same stages."""

import dataclasses
import json
import sys

import numpy as np
import pytest

import anoclust
from anoclust.estimator import AnomalyClustering
from anoclust.evaluation import Dataset, Embedded
from anoclust.settings import METHOD_SETTINGS, WEIGHTINGS, Params
from anoclust.weighting import WEIGHTING_TYPES
from conftest import ROOT


def test_public_api():
    assert set(anoclust.__all__) >= {"AnomalyClustering", "load_model", "clustering_scores"}
    assert anoclust.AnomalyClustering is AnomalyClustering
    assert anoclust.clustering_scores([0, 0, 1], [1, 1, 0])["f1"] == 1.0
    with pytest.raises(AttributeError):
        anoclust.nothing_here


def test_every_setting_is_an_estimator_parameter_and_an_option():
    from anoclust.cli import build_parser

    assert AnomalyClustering().get_params() == {**{s.name: s.default for s in METHOD_SETTINGS}, "cache_dir": None}
    cluster = build_parser()._subparsers._group_actions[0].choices["cluster"]
    flags = {f for a in cluster._actions for f in a.option_strings}
    assert {s.flag for s in METHOD_SETTINGS} <= flags
    research = next(g for g in cluster._action_groups if g.title == "research options")
    assert {a.dest for a in research._group_actions} == {s.name for s in METHOD_SETTINGS if s.group == "research"}
    assert tuple(WEIGHTING_TYPES) == WEIGHTINGS


def test_the_study_helper_gives_the_estimators_embeddings():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import studyset

    rng = np.random.default_rng(0)
    bags = rng.normal(size=(24, 16, 8)).astype(np.float32)
    bags[np.arange(24), rng.integers(16, size=24), np.arange(24) % 3] += 4.0
    truth = [str(i % 3) for i in range(24)]
    normal = rng.normal(size=(4, 16, 8)).astype(np.float32)
    data = Embedded(Dataset("toy", "folder", None), bags, truth, normal)
    for weighting in ("unsupervised", "reference"):
        params = Params(n_clusters=3, weighting=weighting, n_sampled=5, border=0)
        est = AnomalyClustering(**dataclasses.asdict(params)).fit(bags, normal=normal)
        scored, described = studyset.describe(data, params)
        mine = np.empty_like(described.embeddings)
        mine[scored.order] = described.embeddings
        assert np.array_equal(mine, est.embeddings_)
        assert studyset.nmis(data, params, subsets=0)[0] == pytest.approx(
            anoclust.clustering_scores(truth, est.labels_)["nmi"])


def test_config_json_records_every_setting_and_what_auto_became(tmp_path, mvtec_category, capsys):
    from conftest import call_cli

    out = tmp_path / "run"
    code, _, err = call_cli(capsys, "cluster", str(mvtec_category), "--out", str(out), "--k", "3", "--tau", "0.7",
                            "--no-report", "--no-cache", "--quiet", "--image-size", "64")
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["settings"] == {**{s.name: s.default for s in METHOD_SETTINGS}, "n_clusters": 3, "tau": 0.7,
                                  "image_size": 64}
    assert config["resolved"]["weighting"] == "reference" and config["resolved"]["method"] == "ward_kmeans"
    assert config["resolved"]["n_clusters"] == 3 and config["resolved"]["n_components"] == 12
    assert config["resolved"]["aspect"] == "squash"  # square images
