"""The weights ecgzoo ships: every manifest is intact and honest, and the model answers a real record as recorded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA
from run_helpers import cli

import ecgzoo
from ecgzoo.models.pretrained import manifests

SHIPPED = "cnnv7-s8:physionet2017"
#: `ecgzoo predict cnnv7-s8:physionet2017 A00001.hea --json` on the shared sample record, recorded when the weights were published
EXPECTED = {"class": "N", "probabilities": {"N": 0.82132, "A": 0.01896, "O": 0.1412, "~": 0.01852}}


def shipped_manifests():
    """The manifests inside ecgzoo's own package (not a third party's)."""
    import ecgzoo_plugins.weights

    here = Path(ecgzoo_plugins.weights.__file__).parent
    return [m for m in manifests().values() if m.folder is not None and Path(m.folder) == here]


def test_the_physionet2017_weights_are_shipped():
    assert SHIPPED in ecgzoo.list_pretrained() and SHIPPED in [m.name for m in shipped_manifests()]
    code, out, _ = cli("list", "--pretrained")
    assert code == 0 and SHIPPED in out and "challenge F1" in out


@pytest.mark.parametrize("name", sorted(m.name for m in shipped_manifests()))
def test_shipped_manifest_integrity_and_contract(name):
    m = manifests()[name]
    folder = Path(m.folder)
    data = (folder / m.file).read_bytes()
    assert len(data) == m.size and hashlib.sha256(data).hexdigest() == m.sha256
    assert m.input.fs > 0 and m.input.leads >= 1 and m.input.units == "mV" and m.input.pipeline
    assert m.license_weights and m.license_data and m.training_command.startswith("ecgzoo run ")
    test = m.metrics["test"]
    headline = "macro_auroc" if "per_class" in test else "challenge_f1"  # multi-label: macro AUROC per statement
    lo, hi = test[f"{headline}_ci95"]
    assert lo <= test[headline] <= hi and test["n"] == m.training["test_records"]
    splits = json.loads((folder / m.splits_file).read_text())
    assert len(splits["test"]) == test["n"] and not set(splits["test"]) & (set(splits["train"]) | set(splits["val"]))
    card = (folder / f"{m.model}.{m.tag}.md").read_text()
    assert m.sha256 in card and f"{test[headline]:.3f}" in card
    model = ecgzoo.create_model(m.model, pretrained=m.tag)
    assert not model.training and model.num_classes == len(m.classes) and model.in_leads == m.input.leads
    x = torch.randn(2, m.input.leads, round(m.input.window_seconds * m.input.fs))
    logits, cam = model.forward_with_cam(x)
    assert cam.shape == (2, len(m.classes), x.shape[-1]) and torch.isfinite(logits).all()


def test_prediction_on_a_real_record_is_the_recorded_one(sample_dir):
    code, out, err = cli("predict", SHIPPED, str(sample_dir / "A00001.hea"), "--json")
    assert code == 0, err
    result = json.loads(out)["results"][0]
    assert result["class"] == EXPECTED["class"]
    for c, p in EXPECTED["probabilities"].items():
        assert result["probabilities"][c] == pytest.approx(p, abs=1e-4)


PTBXL = "xresnet1d101:ptbxl-all"
PTBXL_SAMPLE = SHARED_DATA / "ptbxl-sample"
#: `ecgzoo predict xresnet1d101:ptbxl-all .../records100/00000/00009_lr.hea --json` (a fold-10 record, labelled NORM, SR),
#: recorded when the weights were published: every label at or above its threshold, and its probability
EXPECTED_PTBXL = {"NORM": 0.98746, "SR": 0.92891, "SARRH": 0.04625}


@pytest.mark.skipif(not PTBXL_SAMPLE.is_dir(), reason=f"PTB-XL sample not found: {PTBXL_SAMPLE}")
def test_ptbxl_weights_predict_a_real_fold_10_record_as_recorded():
    code, out, err = cli("predict", PTBXL, str(PTBXL_SAMPLE / "records100" / "00000" / "00009_lr.hea"), "--json")
    assert code == 0, err
    result = json.loads(out)["results"][0]
    assert [lab["class"] for lab in result["labels"]] == list(EXPECTED_PTBXL)
    for c, p in EXPECTED_PTBXL.items():
        assert result["probabilities"][c] == pytest.approx(p, abs=1e-4)
    assert {lab["name"] for lab in result["labels"]} >= {"normal ECG", "sinus rhythm"}
    code, out, _ = cli("list", "--pretrained")
    line = next(row for row in out.splitlines() if row.startswith(PTBXL))
    assert code == 0 and line.split()[1:3] == ["71", "labels"] and "macro AUROC 0.932 [0.924, 0.941] on 2198 records" in line
