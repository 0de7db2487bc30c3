"""Outputs under a hostile or careless user: all or nothing, never another run's scores, strict
JSON, odd file names, full or read-only disks, outputs in the wrong place."""

import csv
import errno
import json
import os
from pathlib import Path

import pytest

from anoclust.synthetic import make_labelled_folder
from conftest import call_cli

ARGS = ["--k", "2", "--image-size", "64", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    make_labelled_folder(root / "lab", n_per_type=3, size=48, classes=("spot", "crack"))
    return root


@pytest.fixture
def cache(data):
    return ["--cache", str(data / "cache")]


def _rows(path):
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        return list(csv.DictReader(f))


def test_an_unlabelled_run_never_shows_an_earlier_runs_scores(data, tmp_path, capsys, cache):
    out = tmp_path / "run"
    assert call_cli(capsys, "cluster", str(data / "lab"), "--out", str(out), *ARGS, *cache)[0] == 0
    assert (out / "metrics.json").exists() and "NMI" in (out / "report.html").read_text()
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in sorted((data / "lab" / "spot").glob("0*.png"))[:2] + sorted((data / "lab" / "crack").glob("0*.png"))[:2]:
        (flat / f"{p.parent.name}-{p.name}").write_bytes(p.read_bytes())
    assert call_cli(capsys, "cluster", str(flat), "--out", str(out), *ARGS, *cache)[0] == 0
    assert not (out / "metrics.json").exists()  # removed with the same step as the new files appeared
    assert "NMI" not in (out / "report.html").read_text()
    assert call_cli(capsys, "report", str(out))[0] == 0
    assert "NMI" not in (out / "report.html").read_text()


def test_a_run_with_no_report_removes_the_stale_one(data, tmp_path, capsys, cache):
    out = tmp_path / "run"
    assert call_cli(capsys, "cluster", str(data / "lab"), "--out", str(out), *ARGS, *cache)[0] == 0
    assert call_cli(capsys, "cluster", str(data / "lab"), "--out", str(out), "--no-report", *ARGS, *cache)[0] == 0
    assert not (out / "report.html").exists()


def test_the_report_is_part_of_the_all_or_nothing_write(data, tmp_path, capsys, cache, monkeypatch):
    out = tmp_path / "run"
    assert call_cli(capsys, "cluster", str(data / "lab"), "--out", str(out), *ARGS, *cache)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    from anoclust import report

    def full_disk(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "report.html"))

    monkeypatch.setattr(report, "report_bytes", full_disk)
    code, _, err = call_cli(capsys, "cluster", str(data / "lab"), "--out", str(out), "--seed", "1", *ARGS, *cache)
    assert code == 2 and err.count("\n") == 1 and "No space left on device" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing new, nothing half-written


def test_a_full_disk_is_one_line_and_leaves_no_partial_outputs(data, tmp_path, capsys, cache, monkeypatch):
    from anoclust import atomic

    real, calls = atomic.write_temp, []

    def fills_up(path, payload):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, payload)

    monkeypatch.setattr(atomic, "write_temp", fills_up)
    import anoclust.outputs

    monkeypatch.setattr(anoclust.outputs, "write_temp", fills_up)
    out = tmp_path / "run"
    code, _, err = call_cli(capsys, "cluster", str(data / "lab"), "--out", str(out), *ARGS, *cache)
    assert code == 2 and err.count("\n") == 1 and "No space left on device" in err
    assert not out.exists() or list(out.iterdir()) == []


def test_a_cache_that_cannot_be_written_only_costs_speed(data, tmp_path, capsys, monkeypatch, caplog):
    from anoclust.features import cache as cache_module

    def read_only(path, payload):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(cache_module, "atomic_write_bytes", read_only)
    out = tmp_path / "run"
    args = [a for a in ARGS if a != "--quiet"]
    code, _, err = call_cli(capsys, "cluster", str(data / "lab"), "--out", str(out), "--cache",
                            str(tmp_path / "ro-cache"), *args)
    assert code == 0 and (out / "assignments.csv").exists()
    assert [r.message for r in caplog.records].count(
        next(r.message for r in caplog.records if "feature cache" in r.message)) == 1  # warned once


def test_a_file_name_that_is_not_utf8_is_clustered_and_written_exactly(data, tmp_path, capsys, cache):
    folder = tmp_path / "odd"
    folder.mkdir()
    names = []
    for i, p in enumerate(sorted((data / "lab" / "spot").glob("0*.png"))[:2]
                          + sorted((data / "lab" / "crack").glob("0*.png"))[:2]):
        name = os.fsdecode(b"\xff\xfe_caf\xe9_%d.png" % i) if i == 0 else f"ok_{i}.png"
        (folder / name).write_bytes(p.read_bytes())
        names.append(name)
    out = tmp_path / "run"
    for command in (["cluster", str(folder), "--out", str(out), *ARGS, *cache],):
        code, _, err = call_cli(capsys, *command)
        assert code == 0, err
    got = {Path(r["path"]).name for r in _rows(out / "assignments.csv")}
    assert got == set(names)  # the odd name read back byte for byte
    json.loads((out / "config.json").read_text())
    assert call_cli(capsys, "fit", str(folder), "--out", str(tmp_path / "m"), *ARGS, *cache)[0] == 0
    code, _, err = call_cli(capsys, "assign", str(tmp_path / "m"), str(folder), "--out", str(tmp_path / "a"), "--quiet",
                            *cache)
    assert code == 0, err
    assert {Path(r["path"]).name for r in _rows(tmp_path / "a" / "assignments.csv")} == set(names)


def test_config_is_strict_json(data, tmp_path, capsys, cache):
    out = tmp_path / "run"
    assert call_cli(capsys, "cluster", str(data / "lab"), "--out", str(out), "--weighting", "uniform", *ARGS,
                    *cache)[0] == 0
    text = (out / "config.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert json.loads(text)["resolved"]["score_peak"] is None


@pytest.mark.parametrize("where", ["root", "home"])
def test_out_at_a_root_or_the_home_folder_is_refused(data, capsys, where, monkeypatch, tmp_path):
    if where == "home":
        monkeypatch.setenv("HOME", str(tmp_path))
    out = "/" if where == "root" else str(tmp_path)
    code, _, err = call_cli(capsys, "cluster", str(data / "lab"), "--out", out, *ARGS)
    assert code == 2 and err.count("\n") == 1 and "folder of their own" in err and "--force" in err


def test_a_results_folder_may_sit_beside_a_list_but_not_among_listed_images(data, tmp_path, capsys, cache,
                                                                           monkeypatch):
    images = sorted(p for p in (data / "lab").rglob("0*.png"))
    monkeypatch.chdir(tmp_path)
    Path("labels.csv").write_text("path,label\n" + "".join(f"{p},{p.parent.name}\n" for p in images))
    code, _, err = call_cli(capsys, "cluster", "labels.csv", "--out", "results", *ARGS, *cache)
    assert code == 0, err
    code, _, err = call_cli(capsys, "cluster", "labels.csv", "--out", str(data / "lab" / "spot" / "res"), *ARGS)
    assert code == 2 and "inside the input folder" in err
    # a listed file whose folder does not exist is skipped, not a reason to refuse every --out
    Path("more.csv").write_text(Path("labels.csv").read_text() + "/nonexistent/x.png,spot\n")
    code, _, err = call_cli(capsys, "cluster", "more.csv", "--out", "more", *ARGS, *cache)
    assert code == 0, err
    assert [r["path"] for r in _rows(Path("more") / "skipped.csv")] == ["/nonexistent/x.png"]


def test_outputs_follow_the_umask(data, tmp_path, capsys, cache):
    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert call_cli(capsys, "cluster", str(data / "lab"), "--out", str(out), *ARGS, *cache)[0] == 0
        modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
        assert set(modes.values()) == {0o644}, modes
        os.umask(0o077)
        assert call_cli(capsys, "cluster", str(data / "lab"), "--out", str(out), *ARGS, *cache)[0] == 0
        assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o600}
    finally:
        os.umask(old)


@pytest.mark.parametrize("what", ["cache", "out"])
def test_assign_never_writes_into_its_inputs(data, tmp_path, capsys, cache, what):
    model = tmp_path / "model"
    assert call_cli(capsys, "fit", str(data / "lab"), "--out", str(model), *ARGS, *cache)[0] == 0
    inside = data / "lab" / "spot" / "x"
    args = ["--out", str(inside)] if what == "out" else ["--out", str(tmp_path / "o"), "--cache", str(inside)]
    code, _, err = call_cli(capsys, "assign", str(model), str(data / "lab"), *args, "--quiet")
    assert code == 2 and "inside the input folder" in err and not inside.exists()


def test_scratch_is_checked(data, tmp_path, capsys):
    code, _, err = call_cli(capsys, "cluster", str(data / "lab"), "--out", str(tmp_path / "o"), "--scratch",
                            str(tmp_path / "missing"), *ARGS)
    assert code == 2 and "--scratch" in err and "not an existing folder" in err
    code, _, err = call_cli(capsys, "cluster", str(data / "lab"), "--out", str(tmp_path / "o"), "--scratch",
                            str(data / "lab" / "spot"), *ARGS)
    assert code == 2 and "--scratch" in err and "inside the input folder" in err
