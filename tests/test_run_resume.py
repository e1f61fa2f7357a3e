"""One resume instruction everywhere: stderr and FAILED.txt give the same exact command, and it works."""

from __future__ import annotations

import shlex

import pytest
from run_helpers import cli, register_toy, tiny_run_args

import ecgzoo.training.runner
from ecgzoo.training.run_dir import RunDir


@pytest.fixture(autouse=True)
def _toy():
    register_toy()


def _command_in(err: str) -> str:
    line = next(x for x in err.splitlines() if "interrupted; the incomplete run is kept in" in x)
    return line.split("To continue it, run: ", 1)[1]


def test_ctrl_c_gives_one_command_on_stderr_and_in_failed_txt_and_it_continues_the_run(tmp_path, monkeypatch):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ecgzoo.training.runner, "save_fit_result", ctrl_c)  # Ctrl-C after training, before the report
    sets = tiny_run_args(tmp_path, "unused")[7:]  # the tiny run's --set options, without its --name
    args = ["run", "toy", "synthetic", *sets, "--set", "report.examples_per_class=0", "--output-dir", str(tmp_path)]
    code, _, err = cli(*args)  # no --name: the run is named by the time it started
    assert code == 130 and "Traceback" not in err
    folder = next(tmp_path.glob("toy-synthetic-*.incomplete"))
    name = folder.name.removesuffix(".incomplete")
    command = _command_in(err)
    expected = shlex.join(["ecgzoo", *args, "--name", name])
    assert command == expected
    assert f"if this run stops (Ctrl-C, a crash, a kill), continue it with: {expected}" in err  # said at the start too
    failed = (folder / "FAILED.txt").read_text()
    assert f"To continue it, run:\n\n    {expected}\n" in failed and "Traceback" not in failed and "KeyboardInterrupt" not in failed
    assert "ecgzoo run: interrupted" in err
    monkeypatch.undo()
    register_toy()
    code, _, err = cli(*shlex.split(command)[1:])  # the printed command, as given
    assert code == 0, err
    assert "continuing an incomplete run" in err and (tmp_path / name / "report.md").is_file()


def test_a_given_name_is_kept_and_a_name_set_another_way_is_replaced(tmp_path):
    from ecgzoo.cli import build_parser
    from ecgzoo.cli.cmd_run import resume_command

    args = build_parser().parse_args(["run", "cnnv7", "physionet2017", "--preset", "cpu", "--set", "name=old",
                                      "--set", "trainer.epochs=3", "--device", "cpu"])
    assert resume_command(args)("old") == ("ecgzoo run cnnv7 physionet2017 --preset cpu --set trainer.epochs=3 "
                                           "--device cpu --name old")


def test_an_error_keeps_its_traceback_in_failed_txt_with_the_same_command(tmp_path):
    run = RunDir.create(tmp_path, "r")
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        run.fail(exc, "ecgzoo run a b --name r")
    text = (run.work / "FAILED.txt").read_text()
    assert "To continue it, run:\n\n    ecgzoo run a b --name r\n" in text and "Traceback" in text


def test_the_resume_command_keeps_the_initial_weights():
    """Continuing a fine-tuning run that stopped before its first saved state must start from the same weights."""
    from ecgzoo.cli import build_parser
    from ecgzoo.cli.cmd_run import resume_command

    args = build_parser().parse_args(["run", "xresnet1d101", "ptbxl", "--preset", "ptbxl-cpu", "--init", "xresnet1d101:ptbxl-all"])
    assert resume_command(args)("ft") == "ecgzoo run xresnet1d101 ptbxl --preset ptbxl-cpu --init xresnet1d101:ptbxl-all --name ft"
