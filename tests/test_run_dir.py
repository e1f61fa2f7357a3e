"""Run directories: atomic files, a temporary folder name until complete, clear refusals."""

from __future__ import annotations

import os

import pytest

from ecgzoo._infra.files import write_atomic
from ecgzoo.serving.loaded_run import RunDirError, load_run
from ecgzoo.training.run_dir import RunDir


def test_write_atomic_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    write_atomic(target, '{"old": 1}')

    def fail(*args):
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="no space"):
        write_atomic(target, '{"new": 2, "half": ')
    assert target.read_text() == '{"old": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # no temporary file left


def test_run_is_built_under_a_temporary_name_and_renamed_when_finished(tmp_path):
    run = RunDir.create(tmp_path, "r1")
    assert run.work == tmp_path / "r1.incomplete" and run.work.is_dir() and not run.final.exists()
    run.write("figures/a.txt", "x")
    run.write_json("run.json", {"a": 1})
    assert run.finish() == tmp_path / "r1"
    assert (tmp_path / "r1" / "figures" / "a.txt").read_text() == "x"
    assert not run.work.exists()
    with pytest.raises(FileExistsError, match="already exists"):
        RunDir.create(tmp_path, "r1")


def test_failure_marks_the_folder_and_a_rerun_clears_the_mark(tmp_path):
    run = RunDir.create(tmp_path, "r2")
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        run.fail(exc)
    text = (run.work / "FAILED.txt").read_text()
    assert "RuntimeError: boom" in text and "the same command with --name r2" in text and "Traceback" in text
    again = RunDir.create(tmp_path, "r2")
    assert again.work == run.work and not (run.work / "FAILED.txt").exists()


@pytest.mark.parametrize("name", ["", "../up", "a b", "x.incomplete", "-dash"])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="run name"):
        RunDir(tmp_path, name)


def test_load_run_refuses_what_is_not_a_finished_run(tmp_path):
    with pytest.raises(RunDirError, match="not found"):
        load_run(tmp_path / "missing")
    with pytest.raises(RunDirError, match="config.json is missing"):
        load_run(tmp_path)
    work = RunDir.create(tmp_path, "half").work
    with pytest.raises(RunDirError, match="incomplete"):
        load_run(work)
