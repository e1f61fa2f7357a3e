"""`ecgzoo evaluate`: the same numbers as the run on its own split, atomic output, clear refusals."""

from __future__ import annotations

import json
import sys

import numpy as np
import pydantic
import pytest
from run_helpers import cli, register_toy, shared_run

import ecgzoo


class OddConfig(ecgzoo.PluginConfig):
    records: int = pydantic.Field(4, ge=1, description="number of records")


class OddDataset(ecgzoo.Dataset):
    """Noise records labelled with a class the run never saw."""

    classes = ("N", "Z")

    def __init__(self, config: OddConfig) -> None:
        self.n = config.records

    def record_ids(self) -> list[str]:
        return [f"odd{i}" for i in range(self.n)]

    def label(self, record_id: str) -> str:
        return "Z" if record_id.endswith("0") else "N"

    def load(self, record_id: str) -> ecgzoo.Record:
        sig = np.random.default_rng(int(record_id[3:])).normal(size=(1, 1500)).astype(np.float32)
        return ecgzoo.Record(sig, 300.0, record_id, self.label(record_id))


@ecgzoo.hookimpl
def ecgzoo_datasets():
    return [ecgzoo.PluginSpec("odd", OddDataset, OddConfig, summary="noise with an unknown class")]


@pytest.fixture(autouse=True)
def _plugins():
    register_toy()
    ecgzoo.register_plugin(sys.modules[__name__], "evaluate-test-plugins")


@pytest.fixture
def tiny(tmp_path_factory):
    return shared_run(tmp_path_factory)[0]


def test_validation_split_reproduces_the_runs_metrics(tiny, tmp_path):
    out = tmp_path / "eval-val"
    # the run's own dataset options (records=24) are the starting point: no --set needed
    code, stdout, err = cli("evaluate", str(tiny), "synthetic", "--split", "val", "--out", str(out))
    assert code == 0, err
    assert stdout.strip() == f"report: {out / 'report.md'}"
    got = json.loads((out / "metrics.json").read_text())
    run_metrics = json.loads((tiny / "metrics.json").read_text())
    assert got["confusion"] == run_metrics["confusion"]
    assert got["challenge_f1"] == pytest.approx(run_metrics["challenge_f1"])
    assert (out / "predictions.csv").read_text() == (tiny / "predictions.csv").read_text()
    assert (out / "figures" / "confusion_matrix.png").is_file()
    assert "](figures/confusion_matrix.png)" in (out / "report.md").read_text()
    assert not list(tmp_path.glob("*.incomplete"))


def test_other_data_default_output_folder_inside_the_run(tiny):
    code, stdout, err = cli("evaluate", str(tiny), "synthetic", "--set", "dataset.records=9", "--set", "dataset.seed=5")
    assert code == 0, err
    report = stdout.strip().removeprefix("report: ")
    folder = __import__("pathlib").Path(report).parent
    assert folder.parent == tiny / "evaluations" and folder.name.startswith("synthetic-all-")
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["n"] == 9 and np.sum(metrics["confusion"]) == 9


def test_existing_output_and_unknown_classes_are_refused(tiny, tmp_path):
    (tmp_path / "taken").mkdir()
    code, _, err = cli("evaluate", str(tiny), "synthetic", "--set", "records=4", "--out", str(tmp_path / "taken"))
    assert code == 2 and "already exists" in err
    code, _, err = cli("evaluate", str(tiny), "odd", "--out", str(tmp_path / "odd"))
    assert code == 2 and "['Z']" in err and "does not know" in err and "Traceback" not in err
    assert not (tmp_path / "odd").exists()


def test_evaluation_gives_the_bootstrap_interval_of_its_headline_figure(tiny, tmp_path):
    """The interval a run gives its test split (the same function, 1000 resamples), printed and in metrics.json."""
    import csv

    from ecgzoo.evaluation.metrics import bootstrap_interval

    out = tmp_path / "eval-ci"
    code, _, err = cli("evaluate", str(tiny), "synthetic", "--split", "val", "--out", str(out))
    assert code == 0, err
    got = json.loads((out / "metrics.json").read_text())
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    classes = got["classes"]
    truth, predicted = ([classes.index(r[key]) for r in rows] for key in ("true", "predicted"))
    lo, hi = bootstrap_interval(truth, predicted, classes, resamples=1000, scored=("N", "A", "O"))  # synthetic's scored classes
    assert got["challenge_f1_ci95"] == [pytest.approx(lo), pytest.approx(hi)] and got["bootstrap_resamples"] == 1000
    assert f"challenge F1 {got['challenge_f1']:.3f} (95% bootstrap interval {lo:.3f}-{hi:.3f}), accuracy" in err
