"""Real 12-lead recordings from elsewhere through a multi-label PTB-XL model: `ecgzoo predict` on the real PTB-XL
sample and on the 500-Hz CinC 2021 record E07500 (resampled, leads matched by name whatever their order or spelling,
a missing lead refused naming it, long records window by window), `evaluate` on PTB-XL folds, and publishing."""

from __future__ import annotations

import csv
import json
import os
import types

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from run_helpers import cli, register_toy

import ecgzoo
from ecgzoo.core.leads import canonical_leads
from ecgzoo.core.manifest import read_manifest
from ecgzoo.core.record import Record
from ecgzoo.data.pipeline import Pipeline
from ecgzoo.serving.loaded_run import load_run
from ecgzoo.serving.publish import publish_run

PTBXL_SAMPLE = SHARED_DATA / "ptbxl-sample"
E07500 = SHARED_DATA / "cinc2021-sample" / "E07500"
PER_FOLD = 6  # records of each of PTB-XL's 10 folds in the tiny tree


@pytest.fixture(autouse=True)
def _toy():
    register_toy()


def _tiny_ptbxl(root):
    """The first PER_FOLD real records of each fold of the PTB-XL sample: its tables cut down, its records linked (not copied)."""
    with open(PTBXL_SAMPLE / "ptbxl_database.csv", newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    fold, seen = header.index("strat_fold"), {}
    keep = [r for r in rows if len(seen.setdefault(r[fold], [])) < PER_FOLD and not seen[r[fold]].append(r)]
    root.mkdir()
    with open(root / "ptbxl_database.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *keep])
    (root / "scp_statements.csv").write_bytes((PTBXL_SAMPLE / "scp_statements.csv").read_bytes())
    os.symlink(PTBXL_SAMPLE / "records100", root / "records100")
    return root


@pytest.fixture(scope="module")
def ptbxl_run(tmp_path_factory):
    """A toy 12-lead model trained for one epoch (seconds) on real PTB-XL records, superdiagnostic task."""
    if not (PTBXL_SAMPLE / "ptbxl_database.csv").is_file():
        pytest.skip(f"shared PTB-XL sample not found at {PTBXL_SAMPLE} (set ECGZOO_SHARED_DATA)")
    register_toy()
    tmp = tmp_path_factory.mktemp("ptbxl12")
    tree = _tiny_ptbxl(tmp / "ptb-xl")
    args = ["run", "toy", "ptbxl", "--output-dir", str(tmp / "runs"), "--name", "px"]
    for item in (f'dataset.path="{tree}"', 'dataset.task="superdiag"', "dataset.download=false", "trainer.epochs=1",
                 "trainer.batch_size=16", "trainer.progress=false", "report.examples_per_class=0", "device=cpu"):
        args += ["--set", item]
    code, _, err = cli(*args)
    assert code == 0, err[-3000:]
    return tmp / "runs" / "px", tree


@pytest.fixture
def e07500():
    if not E07500.with_suffix(".hea").is_file():
        pytest.skip(f"shared CinC 2021 sample not found at {E07500.parent} (set ECGZOO_SHARED_DATA)")
    import wfdb

    rec = wfdb.rdrecord(str(E07500))
    return rec.p_signal, list(rec.sig_name)


def _write(tmp_path, name, signal, leads, fs=500):
    """A WFDB record (format 16, 1000 adu/mV, as CinC 2021 ships them) of (samples, leads) mV values."""
    import wfdb

    wfdb.wrsamp(name, fs=fs, units=["mV"] * len(leads), sig_name=list(leads), p_signal=signal, fmt=["16"] * len(leads),
                adc_gain=[1000.0] * len(leads), baseline=[0] * len(leads), write_dir=str(tmp_path))
    return tmp_path / f"{name}.hea"


def _predict(run, path):
    code, out, err = cli("predict", str(run), str(path), "--json")
    assert code == 0, err
    return json.loads(out)["results"][0]


def _probs(result, classes):
    return np.array([result["probabilities"][c] for c in classes])


def test_a_real_ptbxl_record_is_predicted_with_its_labels_names_and_the_models_probabilities(ptbxl_run):
    run_dir, tree = ptbxl_run
    import wfdb

    run = load_run(run_dir)
    rid = json.loads((run_dir / "split.json").read_text())["test"][0]  # fold 10: never trained on
    hea = next(tree.glob(f"records100/*/{int(rid):05d}_lr.hea"))
    rec = wfdb.rdrecord(str(hea.with_suffix("")))
    x = Pipeline(run.pipeline.config)(Record(rec.p_signal.T.astype(np.float32), 100.0, rid, lead_names=canonical_leads(rec.sig_name)))
    with torch.no_grad():
        expected = torch.sigmoid(run.model.eval()(torch.from_numpy(x.signal)[None], valid_length=torch.tensor([x.valid_length])))[0]
    result = _predict(run_dir, hea)
    np.testing.assert_allclose(_probs(result, run.classes), expected.numpy(), atol=1e-5)
    t = np.asarray(run.thresholds)
    above = [c for c, p, th in sorted(zip(run.classes, expected.numpy(), t, strict=True), key=lambda r: -r[1]) if p >= th]
    assert [one["class"] for one in result["labels"]] == above and result["class"] == (",".join(above) or "-")
    assert all(one["name"] == run.task.name(one["class"]) and one["threshold"] == pytest.approx(t[run.classes.index(one["class"])],
               abs=1e-5) for one in result["labels"])
    assert result["notes"] == [] and len(result["windows"]) == 1  # 100 Hz, standard order: nothing to say
    code, out, _ = cli("predict", str(run_dir), str(hea))
    assert code == 0
    for one in result["labels"]:  # every label on its own line with probability and its statement's name
        assert any(line.split()[:2] == [one["class"], f"{one['probability']:.3f}"] and line.endswith(one["name"])
                   for line in out.splitlines())
    if not above:
        assert "no label above its threshold (highest:" in out


def test_nothing_above_threshold_is_said_plainly(ptbxl_run):
    run_dir, _ = ptbxl_run
    run = load_run(run_dir)
    probs = np.full(len(run.classes), 0.01, np.float32)
    from ecgzoo.serving.predict import Prediction, Window, describe

    pred = Prediction("r.hea", 100.0, 10.0, list(run.classes), [Window(0.0, 10.0, probs)], [], run.task, [0.5] * len(run.classes))
    assert describe(pred).startswith(f"r.hea: no label above its threshold (highest: {run.classes[0]} 0.010, threshold 0.500)")
    assert pred.to_dict()["labels"] == [] and pred.to_dict()["class"] == "-"


def test_a_500_hz_record_is_resampled_to_the_models_100_hz_and_the_output_says_so(ptbxl_run):
    run_dir, _ = ptbxl_run
    if not E07500.with_suffix(".hea").is_file():
        pytest.skip(f"shared CinC 2021 sample not found at {E07500.parent}")
    result = _predict(run_dir, E07500.with_suffix(".hea"))
    assert result["fs"] == 500.0 and len(result["windows"]) == 1
    assert "input at 500 Hz resampled to 100 Hz, the rate the model was trained on" in result["notes"]
    code, out, _ = cli("predict", str(run_dir), str(E07500.with_suffix(".hea")))
    assert code == 0 and "note: input at 500 Hz resampled to 100 Hz" in out


def test_leads_in_another_order_and_spelling_give_the_same_probabilities(ptbxl_run, e07500, tmp_path):
    run_dir, _ = ptbxl_run
    signal, leads = e07500
    classes = load_run(run_dir).classes
    original = _predict(run_dir, E07500.with_suffix(".hea"))
    order = [11, 6, 0, 3, 9, 1, 4, 10, 2, 7, 5, 8]
    reordered = _predict(run_dir, _write(tmp_path, "reordered", signal[:, order], [leads[i] for i in order]))
    np.testing.assert_allclose(_probs(reordered, classes), _probs(original, classes), atol=2e-5)
    assert reordered["class"] == original["class"]
    assert "leads matched by name (the file's order: V6, V1, I, aVR, V4, II, aVL, V5, III, V2, aVF, V3)" in reordered["notes"]
    respelt = [{"aVR": "AVR", "aVL": "avl", "aVF": "AVF", "V1": "v1"}.get(n, n) for n in leads]
    renamed = _predict(run_dir, _write(tmp_path, "renamed", signal, respelt))
    np.testing.assert_allclose(_probs(renamed, classes), _probs(original, classes), atol=2e-5)
    assert not any("matched by name" in n for n in renamed["notes"])  # same order: nothing moved


def test_a_missing_lead_is_refused_naming_it_and_the_files_leads(ptbxl_run, e07500, tmp_path):
    run_dir, _ = ptbxl_run
    signal, leads = e07500
    keep = [i for i, n in enumerate(leads) if n != "V4"]
    code, out, err = cli("predict", str(run_dir), str(_write(tmp_path, "no_v4", signal[:, keep], [leads[i] for i in keep])))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "no_v4.hea: lead V4 missing: the file has leads ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V5', 'V6']" in err
    mlii = [("MLII" if n == "II" else n) for n in leads]  # a Holter name, not a 12-lead one
    code, _, err = cli("predict", str(run_dir), str(_write(tmp_path, "mlii", signal, mlii)))
    assert code == 2 and "lead II missing" in err and "(not a standard 12-lead name: MLII)" in err


def test_a_30_s_record_is_classified_in_3_windows_of_10_s(ptbxl_run, e07500, tmp_path):
    run_dir, _ = ptbxl_run
    signal, leads = e07500
    classes = load_run(run_dir).classes
    original = _predict(run_dir, E07500.with_suffix(".hea"))
    result = _predict(run_dir, _write(tmp_path, "long", np.tile(signal, (3, 1)), leads))
    assert result["duration_s"] == 30.0 and [(w["start_s"], w["end_s"]) for w in result["windows"]] == [(0, 10), (10, 20), (20, 30)]
    assert "longer than the model's input (10 s): 3 windows" in result["notes"]
    for w in result["windows"]:  # each window is the original 10-s record
        np.testing.assert_allclose([w["probabilities"][c] for c in classes], _probs(original, classes), atol=2e-5)


def test_evaluate_scores_the_ptbxl_test_fold_at_the_stored_thresholds(ptbxl_run, tmp_path):
    run_dir, tree = ptbxl_run
    code, _, err = cli("evaluate", str(run_dir), "ptbxl", "--set", f'path="{tree}"', "--split", "test", "--out", str(tmp_path / "ev"))
    assert code == 0, err
    ev, trained = (json.loads(p.read_text()) for p in (tmp_path / "ev" / "metrics.json", run_dir / "metrics.json"))
    assert ev["n"] == trained["test"]["n"] and ev["macro_auroc"] == pytest.approx(trained["test"]["macro_auroc"], abs=1e-6)
    assert [ev["per_class"][c]["threshold"] for c in ev["classes"]] == load_run(run_dir).thresholds


def test_publishing_a_multi_label_run_keeps_undefined_f1_as_none(ptbxl_run, tmp_path):
    """`round(None, 4)` stopped publishing of every multi-label run with a class absent from a split (F1 undefined)."""
    run_dir, _ = ptbxl_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    undefined = [c for c, m in metrics["per_class"].items() if m["f1"] is None]
    assert undefined, "the tiny validation split should leave some class's F1 undefined"
    path = publish_run(run_dir, "tiny", tmp_path, command="ecgzoo run toy ptbxl ...", license_weights="MIT",
                       license_data="CC BY 4.0", lead_names=list(load_run(run_dir).lead_names))
    m = read_manifest(path)
    assert [c for c, r in m.metrics["validation"]["per_class"].items() if r["f1"] is None] == undefined
    card = (tmp_path / "toy.tiny.md").read_text()
    for c, one in metrics["test"]["per_class"].items():  # per class on the card, undefined figures as n/a
        f1 = "n/a" if one["f1"] is None else f"{one['f1']:.3f}"
        assert f"| {c} | {one['name']} |" in card and f" | {f1} | " in card.split(f"| {c} | {one['name']} |")[1].splitlines()[0]


def test_published_12_lead_weights_predict_and_evaluate_as_the_run_did(ptbxl_run, e07500, tmp_path):
    """MODEL:TAG weights of a multi-label run were loaded as single-label: predict printed one class with softmax
    probabilities and evaluate stopped with a traceback (the checkpoint's task and thresholds were not read)."""
    run_dir, tree = ptbxl_run
    run = load_run(run_dir)
    path = publish_run(run_dir, "tiny", tmp_path / "w", command="ecgzoo run toy ptbxl ...", license_weights="MIT",
                       license_data="CC BY 4.0", lead_names=list(run.lead_names))
    ecgzoo.register_plugin(types.SimpleNamespace(ecgzoo_pretrained=ecgzoo.hookimpl(lambda: [path])), "tiny-weights")
    weights = load_run("toy:tiny")
    assert (weights.task, weights.thresholds, weights.lead_names) == (run.task, run.thresholds, run.lead_names)
    signal, leads = e07500
    order = list(range(11, -1, -1))
    reordered = _write(tmp_path, "reordered", signal[:, order], [leads[i] for i in order])
    by_run, by_weights = _predict(run_dir, E07500.with_suffix(".hea")), _predict("toy:tiny", reordered)
    assert by_weights["labels"] == by_run["labels"] and by_weights["class"] == by_run["class"]
    np.testing.assert_allclose(_probs(by_weights, run.classes), _probs(by_run, run.classes), atol=2e-5)
    code, _, err = cli("evaluate", "toy:tiny", "ptbxl", "--set", f'path="{tree}"', "--split", "test", "--out", str(tmp_path / "ev"))
    assert code == 0, err
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert ev["macro_auroc"] == pytest.approx(json.loads((run_dir / "metrics.json").read_text())["test"]["macro_auroc"], abs=1e-6)
    # the evaluation carries the same bootstrap interval the run's test split has, and prints it
    assert ev["macro_auroc_ci95"] == pytest.approx(json.loads((run_dir / "metrics.json").read_text())["test"]["macro_auroc_ci95"],
                                                   abs=1e-6)
    assert "95% bootstrap interval" in err
