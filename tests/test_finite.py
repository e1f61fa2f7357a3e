"""Finite or nothing, and strict JSON in every file a run, an evaluation and a prediction write."""

from __future__ import annotations

import csv
import io
import json
import shutil
import struct

import numpy as np
import pytest
import torch
from run_helpers import cli

import ecgzoo.evaluation.scoring
from ecgzoo._infra.jsonio import loads_strict
from ecgzoo.models.checkpoint import load_checkpoint, save_checkpoint
from ecgzoo.serving.loaded_run import BEST_CHECKPOINT, load_run
from ecgzoo.serving.predict import NON_FINITE


def _nan_run(tiny_run, folder):
    """A copy of the run whose (intact, digest-verified) weights are NaN, as after diverged training."""
    run_copy = folder / "nan-run"
    shutil.copytree(tiny_run, run_copy)
    model = load_run(run_copy).model
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    _, meta = load_checkpoint(run_copy / BEST_CHECKPOINT)
    save_checkpoint(run_copy / BEST_CHECKPOINT, model, meta)
    return run_copy


def _signal(run, folder, name="ok.npy"):
    t = np.arange(run.input_samples) / run.input_fs
    sig = (np.sin(2 * np.pi * 1.1 * t) + 0.3 * np.sin(2 * np.pi * 7 * t))[None].astype(np.float32)
    np.save(folder / name, sig)
    return folder / name


def _json_files(root):
    return sorted(p for p in root.rglob("*") if p.suffix in (".json", ".jsonl") and p.is_file())


def _parse_all(paths):
    for path in paths:
        text = path.read_text()
        docs = text.splitlines() if path.suffix == ".jsonl" else [text]
        for doc in docs:
            loads_strict(doc)  # raises on NaN / Infinity


def test_nan_model_gives_no_class_in_predict_or_explain(tiny_run, tmp_path):
    nan_run = _nan_run(tiny_run, tmp_path)
    ok = _signal(load_run(tiny_run), tmp_path)
    code, out, err = cli("predict", str(nan_run), str(ok), "--fs", str(load_run(tiny_run).input_fs))
    assert code == 2
    assert out.strip() == f"{ok}: not classified: {NON_FINITE}"
    (line,) = err.strip().splitlines()
    assert line == f"ecgzoo predict: error: {ok}: not classified: {NON_FINITE}"
    code, out, err = cli("predict", str(nan_run), str(ok), "--fs", str(load_run(tiny_run).input_fs), "--json")
    assert code == 2
    (result,) = loads_strict(out)["results"]
    assert result["class"] is None and result["probabilities"] is None and result["problem"] == NON_FINITE
    assert result["windows"][0]["problem"] == NON_FINITE
    code, out, err = cli("explain", str(nan_run), str(ok), "--fs", str(load_run(tiny_run).input_fs), "--out", str(tmp_path / "ex"))
    assert code == 2 and NON_FINITE in err and not list((tmp_path / "ex").glob("*.png"))


def test_nan_model_evaluation_is_an_error_and_writes_nothing(tiny_run, tmp_path):
    nan_run = _nan_run(tiny_run, tmp_path)
    code, _, err = cli("evaluate", str(nan_run), "synthetic", "--split", "val", "--device", "cpu", "--out", str(tmp_path / "e"))
    assert code == 2 and "no record of 'synthetic' could be scored" in err and NON_FINITE in err
    assert not (tmp_path / "e").exists() and not (tmp_path / "e.incomplete").exists()


def test_records_with_non_finite_output_are_failed_not_scored(tiny_run, tmp_path, monkeypatch):
    real = ecgzoo.evaluation.scoring.predict_dataset

    def two_fail(*args, **kwargs):
        probs = real(*args, **kwargs)
        probs[0, :] = np.nan
        probs[2, 1] = np.inf
        return probs

    monkeypatch.setattr(ecgzoo.evaluation.scoring, "predict_dataset", two_fail)
    out = tmp_path / "e"
    code, _, err = cli("evaluate", str(tiny_run), "synthetic", "--split", "val", "--device", "cpu", "--out", str(out))
    assert code == 0, err
    val = loads_strict((tiny_run / "split.json").read_text())["val"]
    metrics = loads_strict((out / "metrics.json").read_text())
    assert metrics["failed"] == 2 and metrics["n"] == len(val) - 2
    assert sum(map(sum, metrics["confusion"])) == len(val) - 2
    rows = list(csv.reader(io.StringIO((out / "failed.csv").read_text())))  # written by the one CSV writer
    assert rows == [["record", "problem"], [val[0], NON_FINITE], [val[2], NON_FINITE]]
    scored = [line.split(",")[0] for line in (out / "predictions.csv").read_text().splitlines()[1:]]
    assert scored == [r for i, r in enumerate(val) if i not in (0, 2)]
    assert "2 record(s) failed and were not scored" in (out / "report.md").read_text()


def test_every_json_a_run_an_evaluation_and_a_prediction_write_is_strict(tiny_run, tmp_path):
    run = load_run(tiny_run)
    files = _json_files(tiny_run)
    assert {p.name for p in files} >= {"config.json", "run.json", "environment.json", "split.json", "history.json",
                                       "metrics.json", "metrics.jsonl"}
    out = tmp_path / "eval"
    code, _, err = cli("evaluate", str(tiny_run), "synthetic", "--split", "val", "--device", "cpu", "--out", str(out))
    assert code == 0, err
    files += _json_files(out)
    ok = _signal(run, tmp_path)
    code, _, err = cli("explain", str(tiny_run), str(ok), "--fs", str(run.input_fs), "--compare", "cam,gradcam",
                       "--steps", "4", "--out", str(tmp_path / "ex"))
    assert code == 0, err
    files += _json_files(tmp_path / "ex")
    assert "deletion.json" in {p.name for p in files}
    _parse_all(files)
    code, out_text, err = cli("predict", str(tiny_run), str(ok), "--fs", str(run.input_fs), "--json")
    assert code == 0, err
    (result,) = loads_strict(out_text)["results"]
    probs = np.array(list(result["probabilities"].values()))
    assert np.isfinite(probs).all() and probs.sum() == pytest.approx(1.0, abs=1e-4)
    for path in (tiny_run / BEST_CHECKPOINT, tiny_run / "checkpoints" / "last.safetensors"):
        data = path.read_bytes()
        (n,) = struct.unpack("<Q", data[:8])
        loads_strict(json.loads(data[8 : 8 + n])["__metadata__"]["ecgzoo"])  # the checkpoint header too


def test_history_with_a_nan_loss_is_written_as_null(tmp_path):
    from ecgzoo._infra.files import write_json

    write_json(tmp_path / "history.json", [{"epoch": 1, "val_loss": float("nan"), "train_loss": float("inf")}])
    assert loads_strict((tmp_path / "history.json").read_text()) == [{"epoch": 1, "val_loss": None, "train_loss": None}]
