"""`ecgzoo run` end to end on a tiny synthetic set: every file, consistent figures, safe failure."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from run_helpers import cli, register_toy, shared_run, tiny_run_args

import ecgzoo
from ecgzoo.core.manifest import InputContract
from ecgzoo.models.checkpoint import load_checkpoint
from ecgzoo.serving.loaded_run import RunDirError, load_run

EXPECTED = [
    "config.json", "run.json", "environment.json", "split.json", "history.json", "metrics.json",
    "predictions.csv", "report.md", "checkpoints/best.safetensors", "checkpoints/last.safetensors",
    "checkpoints/metrics.jsonl", "figures/training_curves.png", "figures/confusion_matrix.png",
]


@pytest.fixture(autouse=True)
def _toy():
    register_toy()


@pytest.fixture
def tiny(tmp_path_factory):
    return shared_run(tmp_path_factory)


def _leftovers(root):
    return [p for p in root.rglob("*") if ".tmp-" in p.name or p.name.endswith(".incomplete")]


def test_run_writes_every_file_and_prints_where_the_report_is(tiny):
    run_dir, out, err = tiny
    for rel in EXPECTED:
        assert (run_dir / rel).is_file() and (run_dir / rel).stat().st_size > 0, rel
    assert f"report: {run_dir / 'report.md'}" in out
    assert err.count(f"run directory: {run_dir}") == 2  # at start and at the end
    assert not _leftovers(run_dir.parent)
    info = json.loads((run_dir / "run.json").read_text())
    classes = info["classes"]
    pngs = sorted(p.name for p in (run_dir / "figures").glob("explain_cam_*.png"))
    assert len(pngs) == len(classes)  # one CAM example per class (every class is in the validation split)
    report = (run_dir / "report.md").read_text()
    for rel in ["figures/training_curves.png", "figures/confusion_matrix.png", *[f"figures/{p}" for p in pngs]]:
        assert f"]({rel})" in report
    views = sorted((run_dir / "views").glob("*.html"))
    assert len(views) == len(classes)  # each example also as an interactive view, linked from the report
    for view in views:
        assert f"([interactive view](views/{view.name}))" in report
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"


def test_metrics_agree_with_predictions_and_split(tiny):
    run_dir, _, _ = tiny
    metrics = json.loads((run_dir / "metrics.json").read_text())
    split = json.loads((run_dir / "split.json").read_text())
    info = json.loads((run_dir / "run.json").read_text())
    assert not set(split["train"]) & set(split["val"])
    assert len(split["train"]) + len(split["val"]) == info["records"] == 24
    rows = [line.split(",") for line in (run_dir / "predictions.csv").read_text().splitlines()[1:]]
    assert [r[0] for r in rows] == split["val"]
    classes = metrics["classes"]
    cm = np.zeros((len(classes), len(classes)), dtype=int)
    for r in rows:
        cm[classes.index(r[1]), classes.index(r[2])] += 1
    assert cm.tolist() == metrics["confusion"]
    assert metrics["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    f1 = [metrics["per_class"][c]["f1"] for c in metrics["challenge_classes"]]
    assert metrics["challenge_f1"] == pytest.approx(np.mean(f1))
    assert f"{metrics['challenge_f1']:.3f}" in (run_dir / "report.md").read_text()


def test_history_and_checkpoint_metadata(tiny):
    run_dir, _, _ = tiny
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    state, meta = load_checkpoint(run_dir / "checkpoints" / "best.safetensors")
    assert meta["model"] == "toy" and meta["classes"] == json.loads((run_dir / "run.json").read_text())["classes"]
    best = [h["epoch"] for h in history if h["best"]][-1]
    assert meta["epoch"] == best == json.loads((run_dir / "metrics.json").read_text())["best_epoch"]


def test_load_run_gives_an_eval_model_that_reproduces_the_validation_predictions(tiny):
    run_dir, _, _ = tiny
    loaded = load_run(run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    assert not loaded.model.training
    assert loaded.classes == info["classes"] and loaded.pipeline.config == info["input"]["pipeline"]
    assert loaded.input == InputContract(**info["input"]) and loaded.input_samples == int(4.0 * loaded.fs)
    split = json.loads((run_dir / "split.json").read_text())
    data = ecgzoo.get_dataset("synthetic", records=24)
    rid = split["val"][0]
    rec = loaded.pipeline(data.load(rid))
    with torch.no_grad():
        logits = loaded.model(torch.from_numpy(rec.signal)[None], valid_length=torch.tensor([rec.valid_length]))
    probs = torch.softmax(logits, 1)[0].numpy()
    row = next(line.split(",") for line in (run_dir / "predictions.csv").read_text().splitlines() if line.startswith(rid + ","))
    np.testing.assert_allclose(probs, [float(v) for v in row[3:]], atol=1e-4)


def test_a_run_json_of_the_old_layout_still_loads(tiny, tmp_path):
    """run.json written before the input contract was one object: flat fs, input_fs, input_samples, in_leads,
    pipeline, lead_names. It loads to the same contract, rates and pipeline."""
    import shutil

    run_dir, _, _ = tiny
    old = tmp_path / "old-run"
    shutil.copytree(run_dir, old)
    info = json.loads((old / "run.json").read_text())
    contract = info.pop("input")
    info.update(fs=contract["fs"], input_fs=contract["input_fs"] or contract["fs"], in_leads=contract["leads"],
                input_samples=round(contract["window_seconds"] * contract["fs"]), pipeline=contract["pipeline"],
                lead_names=contract["lead_names"] or None)
    (old / "run.json").write_text(json.dumps(info))
    loaded, new = load_run(old), load_run(run_dir)
    assert loaded.input == new.input and loaded.pipeline.config == new.pipeline.config
    assert (loaded.fs, loaded.input_fs, loaded.input_samples, loaded.in_leads, loaded.lead_names) == \
        (new.fs, new.input_fs, new.input_samples, new.in_leads, new.lead_names)
    info["input_samples"] = "many"
    (old / "run.json").write_text(json.dumps(info))
    with pytest.raises(RunDirError, match="must be numbers"):
        load_run(old)


def test_a_crash_leaves_an_incomplete_run_that_the_same_command_finishes(tmp_path, monkeypatch):
    import ecgzoo.report.report

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ecgzoo.report.report, "write_report", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        cli(*tiny_run_args(tmp_path, "crash"))
    assert not (tmp_path / "crash").exists()  # never presented as complete
    work = tmp_path / "crash.incomplete"
    assert "disk on fire" in (work / "FAILED.txt").read_text()
    assert not (work / "report.md").exists()
    assert not [p for p in work.rglob("*") if ".tmp-" in p.name]  # no half-written file
    with pytest.raises(RunDirError, match="incomplete"):
        load_run(work)
    monkeypatch.undo()
    register_toy()
    code, out, err = cli(*tiny_run_args(tmp_path, "crash"))
    assert code == 0, err
    assert "continuing an incomplete run" in err
    assert (tmp_path / "crash" / "report.md").is_file() and not work.exists()
    assert not (tmp_path / "crash" / "FAILED.txt").exists()


def test_an_existing_run_is_not_overwritten(tiny):
    run_dir, _, _ = tiny
    code, _, err = cli(*tiny_run_args(run_dir.parent, run_dir.name))
    assert code == 2 and "already exists" in err and "Traceback" not in err


def test_unknown_plugin_option_stops_before_any_work(tmp_path):
    code, _, err = cli(*tiny_run_args(tmp_path, "typo", "model.widht=3"))
    assert code == 2
    assert re.search(r"unknown option 'widht'.*did you mean 'width'", err) and "Traceback" not in err
    assert not any(tmp_path.iterdir())
    code, _, err = cli(*tiny_run_args(tmp_path, "typo", "trainer.epoch=3"))
    assert code == 2 and "'epochs'" in err
    code, _, err = cli("run", "toy", "synthetic", "--output-dir", str(tmp_path), "--explainer", "nosuch")
    assert code == 2 and "no explainer plugin named 'nosuch'" in err


def test_two_processes_make_one_run(tmp_path):
    """--nproc 2: DistributedDataParallel over gloo on loopback; rank 0 alone writes the run directory."""
    code, out, err = cli(*tiny_run_args(tmp_path, "ddp", "nproc=2"))
    assert code == 0, err
    run_dir = tmp_path / "ddp"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]
    for rel in EXPECTED:
        assert (run_dir / rel).is_file(), rel
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history) == 2 and all(np.isfinite(h["train_loss"]) for h in history)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert np.sum(metrics["confusion"]) == len(json.loads((run_dir / "split.json").read_text())["val"])
    assert json.loads((run_dir / "config.json").read_text())["config"]["nproc"] == 2


def test_physionet2017_without_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGZOO_DATA", str(tmp_path / "nowhere"))
    code, out, err = cli("run", "toy", "physionet2017", "--output-dir", str(tmp_path / "runs"),
                         "--set", f"dataset.path={tmp_path / 'nowhere'}", "--set", "dataset.download=false")
    assert code == 2 and "Traceback" not in err
    assert "training2017" in err and str(tmp_path / "nowhere") in err
    assert not (tmp_path / "runs").exists()  # no run folder for a run that could not start


def test_report_examples_with_an_explainer_that_needs_the_sampling_rate(tmp_path):
    """occlusion's windows are in seconds: the run hands it the data's rate (no 'set fs' error)."""
    code, out, err = cli(*tiny_run_args(tmp_path, "occl"), "--explainer", "occlusion")
    assert code == 0, err
    pictures = sorted(p.name for p in (tmp_path / "occl" / "figures").glob("explain_occlusion_*.png"))
    assert pictures, "no occlusion example pictures in the report"
    assert "explain_occlusion_" in (tmp_path / "occl" / "report.md").read_text()
