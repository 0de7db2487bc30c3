"""Killed, interrupted, concurrent and repeated runs.

A child process runs the real CLI with one function wrapped so that it announces the stage
(by creating a marker file) and then waits; the test then sends SIGINT or SIGKILL. Afterwards
no output may be half-written, every cache entry must be whole, and a rerun must reuse every
cache entry the killed run completed.
"""

import csv
import logging
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from anoclust import cli
from anoclust.features.cache import FeatureCache
from anoclust.synthetic import make_labelled_folder
from conftest import ROOT

N_IMAGES = 33  # batches of 16, 16 and 1: the stall after two leaves at most 32 entries in the cache
ARGS = ["--k", "3", "--image-size", "64", "--n-sampled", "8", "--quiet"]

# Runs in the child: wrap the function of the requested stage, then hand over to the CLI.
STALL = r"""
import os, signal, sys, time
# A shell that starts the suite in the background makes its children ignore SIGINT; a user's
# terminal does not: restore Python's own Ctrl-C handling.
signal.signal(signal.SIGINT, signal.default_int_handler)
stage, marker = sys.argv[1], sys.argv[2]
def stall():
    if stage == "extraction":  # cache entries may be written in the background: let two batches' land
        import glob
        cache = sys.argv[sys.argv.index("--cache") + 1]
        while len(glob.glob(os.path.join(cache, "*", "*.bag"))) < 32:
            time.sleep(0.05)
    open(marker, "w").close()
    time.sleep(600)
if stage == "extraction":
    from anoclust.features.extract import PatchExtractor
    embed, calls = PatchExtractor.embed_arrays, []
    def wrapped(self, images):
        calls.append(1)
        if len(calls) == 3:
            stall()
        return embed(self, images)
    PatchExtractor.embed_arrays = wrapped
elif stage == "scoring":
    import anoclust.fit as fit
    fit._score_here = lambda *a, **k: stall()
elif stage == "writing":
    fsync = os.fsync
    def wrapped(fd):  # the third output file is written but not yet renamed into place
        fsync(fd)
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".embeddings.npz."):
            stall()
    os.fsync = wrapped
from anoclust.cli import main
sys.exit(main(sys.argv[3:]))
"""


pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]

@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return make_labelled_folder(tmp_path_factory.mktemp("interrupts") / "imgs", n_per_type=N_IMAGES // 3, size=64)


@pytest.fixture(scope="module")
def reference(images, tmp_path_factory):
    """assignments.csv of an uninterrupted run without cache (module-scoped: set up before one_thread)."""
    import torch

    out, threads = tmp_path_factory.mktemp("reference") / "out", torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli.main(["cluster", str(images), "--out", str(out), "--no-cache", *ARGS]) == 0
    finally:
        torch.set_num_threads(threads)
    return (out / "assignments.csv").read_bytes()


def _child(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")  # see conftest.one_thread
    return subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(marker: Path, proc: subprocess.Popen) -> None:
    give_up = time.monotonic() + 600  # a guard against hanging the suite, not a speed check
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1]
        if time.monotonic() > give_up:
            proc.kill()
            pytest.fail(f"the child never reached the stage: {proc.communicate()[1]}")
        time.sleep(0.05)


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.bag"))


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.name.endswith(".tmp")] if folder.exists() else []


def _rerun_counts(caplog, argv) -> tuple[int, int]:
    """Run the CLI in-process; (bags from the cache, bags computed) of the images."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="anoclust.features.extract"):
        assert cli.main(argv) == 0
    found = [re.search(r"images: (\d+) from the cache, (\d+) computed", r.getMessage()) for r in caplog.records]
    (counts,) = [m for m in found if m]
    return int(counts[1]), int(counts[2])


@pytest.mark.parametrize(
    "stage, sig",
    [("extraction", signal.SIGKILL), ("extraction", signal.SIGINT), ("scoring", signal.SIGINT),
     ("writing", signal.SIGKILL), ("writing", signal.SIGINT)],
)
def test_killed_run_leaves_no_partial_output_and_rerun_reuses_cache(images, reference, tmp_path, caplog, stage, sig):
    out, cache, marker = tmp_path / "out", tmp_path / "cache", tmp_path / "stalled"
    (tmp_path / "out").mkdir()
    (out / "my notes.txt").write_text("the user's own file\n")  # must survive everything
    argv = ["cluster", str(images), "--out", str(out), "--cache", str(cache), *ARGS]
    proc = _child(["-c", STALL, stage, str(marker), *argv])
    _wait_for(marker, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)

    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
        assert _temporaries(out) == [] and _temporaries(cache) == []
    else:
        assert proc.returncode == -signal.SIGKILL
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert visible == ["my notes.txt"]  # no output of the killed run: they appear together or not at all

    entries = _entries(cache)
    # Cache entries are written by a background thread, so a kill during extraction may catch
    # some of the first 32 bags still in flight: those are recomputed, every written one reused.
    if stage == "extraction":
        assert len(entries) <= 32
    else:
        assert len(entries) == N_IMAGES
    store = FeatureCache(cache)
    assert all(store.get(p.stem) is not None for p in entries) and store.corrupt == []

    cached, computed = _rerun_counts(caplog, argv)
    assert (cached, computed) == (len(entries), N_IMAGES - len(entries))
    assert (out / "assignments.csv").read_bytes() == reference  # bags from cache and network agree bit for bit
    assert (out / "my notes.txt").read_text() == "the user's own file\n"
    assert {"assignments.csv", "skipped.csv", "embeddings.npz", "config.json", "metrics.json"} <= {
        p.name for p in out.iterdir()}


def test_two_runs_share_one_cache_at_the_same_time(images, reference, tmp_path, caplog):
    cache = tmp_path / "cache"
    procs = [_child(["-m", "anoclust.cli", "cluster", str(images), "--out", str(tmp_path / f"out{i}"),
                     "--cache", str(cache), *ARGS]) for i in range(2)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr
    for i in range(2):
        assert (tmp_path / f"out{i}" / "assignments.csv").read_bytes() == reference
    assert len(_entries(cache)) == N_IMAGES and _temporaries(cache) == []
    out = tmp_path / "again"
    assert _rerun_counts(caplog, ["cluster", str(images), "--out", str(out), "--cache", str(cache), *ARGS]) == (
        N_IMAGES, 0)


def test_corrupted_cache_entries_are_reported_once_and_recomputed(images, reference, tmp_path, caplog):
    cache = tmp_path / "cache"
    argv = ["cluster", str(images), "--out", str(tmp_path / "out"), "--cache", str(cache), *ARGS]
    assert _rerun_counts(caplog, argv) == (0, N_IMAGES)
    flipped, truncated = _entries(cache)[:2]
    blob = bytearray(flipped.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    flipped.write_bytes(bytes(blob))
    truncated.write_bytes(truncated.read_bytes()[:100])

    assert _rerun_counts(caplog, argv) == (N_IMAGES - 2, 2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sorted(w for w in warnings if "corrupted" in w) == sorted(
        f"cache entry {p} is corrupted; it will be recomputed" for p in (flipped, truncated))
    assert (tmp_path / "out" / "assignments.csv").read_bytes() == reference
    assert _rerun_counts(caplog, argv) == (N_IMAGES, 0)  # repaired: nothing reported again
    assert not any("corrupted" in r.getMessage() for r in caplog.records)


def test_entries_of_other_versions_or_settings_are_not_reused(images, tmp_path, caplog, monkeypatch):
    cache = tmp_path / "cache"
    argv = ["cluster", str(images), "--out", str(tmp_path / "out"), "--cache", str(cache), *ARGS]
    assert _rerun_counts(caplog, argv) == (0, N_IMAGES)
    assert _rerun_counts(caplog, argv) == (N_IMAGES, 0)
    from anoclust.features import extract

    monkeypatch.setattr(extract, "FEATURE_FORMAT", extract.FEATURE_FORMAT + 1)  # a later anoclust's bags
    assert _rerun_counts(caplog, argv) == (0, N_IMAGES)
    monkeypatch.undo()
    other_size = [a if a != "64" else "96" for a in argv]
    assert _rerun_counts(caplog, other_size) == (0, N_IMAGES)


def test_same_result_whatever_the_listing_order(images, reference, tmp_path):
    paths = sorted(str(p) for p in images.rglob("*.png") if not p.stem.endswith("_mask"))
    outs = []
    for seed in (1, 2):
        random.Random(seed).shuffle(paths)
        listing = tmp_path / "lists" / f"list{seed}.csv"
        listing.parent.mkdir(exist_ok=True)
        with open(listing, "w", newline="") as f:
            csv.writer(f).writerows([["path", "label"]] + [[p, Path(p).parent.name] for p in paths])
        out = tmp_path / f"out{seed}"
        assert cli.main(["cluster", str(listing), "--out", str(out), "--no-cache", *ARGS]) == 0
        outs.append((out / "assignments.csv").read_bytes())
    assert outs[0] == outs[1] == reference


@pytest.mark.parametrize("method", ["ward", "kmeans"])
def test_estimator_is_independent_of_row_order(method):
    from anoclust.estimator import AnomalyClustering

    rng = np.random.default_rng(0)
    bags = rng.normal(size=(30, 9, 5)).astype(np.float32)
    bags[10:20, 0] += 3
    bags[20:, 4] -= 3
    perm = rng.permutation(30)
    est = AnomalyClustering(n_clusters=3, n_sampled=4, method=method, random_state=7)  # K < N - 1: sampled
    a = est.fit(bags).labels_.copy()
    scores = est.scores_.copy()
    b = est.fit(bags[perm]).labels_
    assert np.array_equal(a[perm], b) and np.array_equal(scores[perm], est.scores_)


def test_canonical_reordering_keeps_memory_mapped_bags_out_of_memory(tmp_path):
    from anoclust.ordering import canonical_order, take_rows

    bags = np.lib.format.open_memmap(tmp_path / "bags.npy", mode="w+", dtype=np.float16, shape=(600, 4, 3))
    bags[:] = np.random.default_rng(0).normal(size=bags.shape)
    order = canonical_order(bags)
    moved = take_rows(bags, order)
    assert isinstance(moved, np.memmap) and np.array_equal(moved, np.asarray(bags)[order])
    assert take_rows(moved, canonical_order(moved)) is moved  # already in order: no copy at all
