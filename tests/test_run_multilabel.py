"""`ecgzoo run` on multi-label 12-lead data end to end: PTB-XL (fabricated tree, published layout) and the
real CinC 2021 sample; thresholds stored and reused by predict and evaluate; 12-lead pictures from explain."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED_DATA
from ptbxl_fixtures import write_ptbxl_tree
from run_helpers import cli

from ecgzoo.core.manifest import InputContract
from ecgzoo.models.checkpoint import load_checkpoint

CINC_SAMPLE = SHARED_DATA / "cinc2021-sample"
COMMON = ["trainer.epochs=1", "trainer.batch_size=8", "trainer.progress=false", "report.examples_per_class=1",
          "device=cpu", 'explainer="saliency"']
TINY_XRESNET = ["model.layers=[1,1,1,1]", "model.width=4", "model.stem=[4,4,8]"]
TINY_INCEPTION = ["model.depth=3", "model.filters=4", "model.bottleneck=4"]


def _run(tmp_path, model, dataset, name, *sets):
    args = ["run", model, dataset, "--output-dir", str(tmp_path / "runs"), "--name", name]
    for item in [*COMMON, *sets]:
        args += ["--set", item]
    code, out, err = cli(*args)
    assert code == 0, err[-3000:]
    return tmp_path / "runs" / name, out, err


@pytest.fixture(scope="module")
def ptbxl_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ptbxl-run")
    tree = write_ptbxl_tree(tmp / "ptb-xl", records=40, rates=(100,))
    run, out, err = _run(tmp, "xresnet1d101", "ptbxl", "px", f'dataset.path="{tree}"', "dataset.download=false", *TINY_XRESNET)
    return run, tree, out, err


def test_xresnet1d101_on_ptbxl_writes_a_multi_label_report_on_the_recommended_folds(ptbxl_run):
    run, tree, out, err = ptbxl_run
    assert "report:" in out and "macro AUROC" in err
    info = json.loads((run / "run.json").read_text())
    contract = InputContract(**info["input"])
    assert info["task"]["kind"] == "multi-label" and contract.leads == 12 and contract.samples == 1000
    assert contract.lead_names == ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    assert len(info["classes"]) == 12  # task "all" of the fabricated statements
    split = json.loads((run / "split.json").read_text())
    folds = {str(i + 1): i % 10 + 1 for i in range(40)}
    assert {folds[r] for r in split["val"]} == {9} and {folds[r] for r in split["test"]} == {10}
    assert {folds[r] for r in split["train"]} == set(range(1, 9))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "multi-label" and metrics["n"] == 4 and "macro_auroc" in metrics
    report = (run / "report.md").read_text()
    assert "macro AUROC" in report and "| class | name | AUROC |" in report and "normal ECG" in report
    assert list((run / "figures").glob("explain_saliency_*.png"))
    history = json.loads((run / "history.json").read_text())
    assert "val_macro_auroc" in history[0] and history[0]["best"]


def test_thresholds_are_stored_with_the_checkpoint_and_reused_by_predict_and_evaluate(ptbxl_run, tmp_path):
    run, tree, _, _ = ptbxl_run
    metrics = json.loads((run / "metrics.json").read_text())
    _, meta = load_checkpoint(run / "checkpoints" / "best.safetensors")
    stored = meta["thresholds"]
    assert stored == [metrics["per_class"][c]["threshold"] for c in metrics["classes"]]
    code, out, err = cli("predict", str(run), str(tree / "records100" / "00000" / "00009_lr.hea"), "--json")
    assert code == 0, err
    result = json.loads(out)["results"][0]
    probs = np.array([result["probabilities"][c] for c in metrics["classes"]])
    # the JSON rounds probabilities to 5 decimals: compare the classes clearly above or below their threshold
    clear = {c: p >= t for c, p, t in zip(metrics["classes"], probs, stored, strict=True) if abs(p - t) > 1e-4}
    predicted = set(result["class"].split(",")) - {"-"}
    assert {c for c in predicted if c in clear} == {c for c, above in clear.items() if above}
    code, out, err = cli("predict", str(run), str(tree / "records100" / "00000" / "00009_lr.hea"))
    assert code == 0 and ("above threshold" in out or "no label above its threshold" in out)
    code, out, err = cli("evaluate", str(run), "ptbxl", "--split", "test", "--out", str(tmp_path / "ev"))
    assert code == 0, err
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert ev["n"] == 4 and [ev["per_class"][c]["threshold"] for c in ev["classes"]] == stored


def test_explain_on_a_12_lead_record_draws_the_clinical_picture(ptbxl_run, tmp_path):
    run, tree, _, _ = ptbxl_run
    code, out, err = cli("explain", str(run), str(tree / "records100" / "00000" / "00002_lr.hea"),
                         "--explainer", "saliency", "--out", str(tmp_path / "ex"))
    assert code == 0, err
    assert (tmp_path / "ex" / "00002_lr_saliency_leads.png").stat().st_size > 20_000


def test_a_record_with_other_leads_is_refused_naming_both_lists(ptbxl_run, tmp_path):
    run, tree, _, _ = ptbxl_run
    hea = (tree / "records100" / "00000" / "00002_lr.hea").read_text()
    (tmp_path / "00002_lr.hea").write_text(hea.replace(" V1\n", " X1\n"))
    (tmp_path / "00002_lr.dat").write_bytes((tree / "records100" / "00000" / "00002_lr.dat").read_bytes())
    code, out, err = cli("predict", str(run), str(tmp_path / "00002_lr.hea"))
    assert code != 0 and "lead V1 missing: the file has leads" in err and "'X1'" in err and "'V1'" in err


def test_inception1d_on_the_real_cinc2021_sample(tmp_path):
    if not (CINC_SAMPLE / "E07500.hea").is_file():
        pytest.skip(f"shared CinC 2021 sample not found at {CINC_SAMPLE} (set ECGZOO_SHARED_DATA)")
    run, out, err = _run(tmp_path, "inception1d", "cinc2021", "cinc", f'dataset.path="{CINC_SAMPLE}"', *TINY_INCEPTION)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "multi-label" and len(metrics["classes"]) == 26 and "challenge_score_2021" in metrics
    info = json.loads((run / "run.json").read_text())
    contract = InputContract(**info["input"])
    assert contract.fs == 100.0 and contract.samples == 1000 and contract.leads == 12
    assert "CinC 2021 challenge score" in (run / "report.md").read_text()


def test_publishing_a_multi_label_run_ships_auroc_interval_thresholds_and_statement_names(ptbxl_run, tmp_path):
    from ecgzoo.core.manifest import read_manifest
    from ecgzoo.serving.publish import publish_run

    run, _, _, _ = ptbxl_run
    path = publish_run(run, "px", tmp_path / "w", command="ecgzoo run xresnet1d101 ptbxl ...", license_weights="MIT",
                       license_data="CC BY 4.0", lead_names=["I", "II", "III", "aVR", "aVL", "aVF", *[f"V{i}" for i in range(1, 7)]])
    manifest = read_manifest(path)
    metrics = json.loads((run / "metrics.json").read_text())
    test = manifest.metrics["test"]
    assert test["macro_auroc"] == metrics["test"]["macro_auroc"] and test["macro_auroc_ci95"] == metrics["test"]["macro_auroc_ci95"]
    assert set(test["per_class"]) == set(manifest.classes)
    stored = load_checkpoint(run / "checkpoints" / "best.safetensors")[1]["thresholds"]
    assert [test["per_class"][c]["threshold"] for c in manifest.classes] == [round(t, 4) for t in stored]
    card = (tmp_path / "w" / "xresnet1d101.px.md").read_text()
    assert "macro AUROC" in card and "normal ECG" in card and "| class | name | AUROC | F1 | threshold | support |" in card
    assert "challenge F1" not in card
    assert manifest.training["dataset_options"]["task"] == "all" and "path" not in manifest.training["dataset_options"]
