"""Tasks (single- vs multi-label), lead names on records, `select-leads`, and prepared multi-label arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecgzoo
from ecgzoo.core.leads import LeadMismatchError, check_leads
from ecgzoo.core.tasks import Task, task_of
from ecgzoo.data.pipeline import Pipeline
from ecgzoo.data.prepared import load_cached, prepare
from ecgzoo.testing import check_dataset_plugin, check_preprocessor_plugin

TWELVE = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def _record(leads=TWELVE, label=("AF",), samples=500) -> ecgzoo.Record:
    signal = np.arange(len(leads), dtype=np.float32)[:, None] + np.zeros((1, samples), np.float32)
    return ecgzoo.Record(signal=signal, fs=500.0, record_id="R1", label=label, lead_names=leads)


def test_single_label_task_encodes_indices_and_decides_by_argmax():
    task = Task.single_label(["N", "A", "O"])
    assert task.encode("A") == 1 and task.decode(2) == "O"
    assert (task.loss, task.activation, task.selection_metric) == ("cross-entropy", "softmax", "challenge_f1")
    np.testing.assert_array_equal(task.decide(np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])), [1, 0])
    with pytest.raises(ecgzoo.RecordError, match="'X' is not one of the classes"):
        task.encode("X", "R9")


def test_multi_label_task_encodes_vectors_and_decides_per_class_threshold():
    task = Task.multi_label(["AF", "RBBB", "NSR"], names={"AF": "atrial fibrillation"})
    np.testing.assert_array_equal(task.encode(("NSR", "AF")), [1, 0, 1])
    np.testing.assert_array_equal(task.encode(()), [0, 0, 0])
    assert task.decode(np.array([0, 1, 1])) == ("RBBB", "NSR")
    assert task.name("AF") == "atrial fibrillation" and task.name("NSR") == "NSR"
    probs = np.array([[0.3, 0.6, 0.9], [0.8, 0.1, 0.2]])
    np.testing.assert_array_equal(task.decide(probs, [0.25, 0.7, 0.5]), [[True, False, True], [True, False, False]])
    np.testing.assert_array_equal(task.decide(probs), probs >= 0.5)
    logits = torch.tensor([[0.0, 2.0, -2.0]])
    torch.testing.assert_close(task.probabilities(logits), torch.sigmoid(logits))
    with pytest.raises(ecgzoo.RecordError, match="set of labels"):
        task.encode("AF")
    with pytest.raises(ecgzoo.RecordError, match="'LBBB' is not one of the classes"):
        task.encode(("AF", "LBBB"))
    assert Task.from_json(task.to_json()) == task
    assert Task.from_json(None, ["N", "A"]) == Task.single_label(["N", "A"])


def test_record_lead_names_must_match_the_signal_rows():
    rec = _record(leads=("I", "II"))
    assert rec.lead_names == ("I", "II") and rec.replace(signal=rec.signal * 2).lead_names == ("I", "II")
    with pytest.raises(ecgzoo.RecordError, match=r"R1.*3 lead names \['I', 'II', 'III'\] for 2 lead"):
        ecgzoo.Record(np.zeros((2, 100), np.float32), 100.0, "R1", lead_names=("I", "II", "III"))


def test_check_leads_names_both_lists_and_accepts_spelling_variants():
    check_leads(TWELVE, [n.upper() for n in TWELVE], "x")  # AVR == aVR
    check_leads(None, ("I",), "x")
    with pytest.raises(LeadMismatchError, match=r"record A: leads \['II', 'I'\] do not match the expected \['I', 'II'\] "
                                                r"\(same leads in another order\).*select-leads"):
        check_leads(("I", "II"), ("II", "I"), "record A")
    with pytest.raises(LeadMismatchError, match=r"\['ECG'\].*\['I'\] \(different leads\)"):
        check_leads(("I",), ("ECG",), "model")


def test_select_leads_reorders_by_name():
    out = check_preprocessor_plugin("select-leads", _record(), leads=["V1", "I", "avf"])
    assert out.lead_names == ("V1", "I", "aVF")
    np.testing.assert_array_equal(out.signal[:, 0], [6, 0, 5])


def test_select_leads_missing_lead_is_an_error_naming_both_lists_unless_zero_fill_is_asked():
    six = _record(leads=TWELVE[:6])
    step = ecgzoo.create_preprocessor("select-leads")
    with pytest.raises(ecgzoo.RecordError, match=r"R1.*has leads \['I', .*'aVF'\], missing \['V1', .*'V6'\] of the requested"):
        step(six)
    out = ecgzoo.create_preprocessor("select-leads", fill_missing="zeros")(six)
    assert out.signal.shape == (12, 500) and not out.signal[6:].any()
    np.testing.assert_array_equal(out.signal[:6, 0], np.arange(6))
    assert out.meta["zero_filled_leads"] == list(TWELVE[6:])
    with pytest.raises(ecgzoo.RecordError, match="no lead names"):
        step(ecgzoo.Record(np.zeros((12, 10), np.float32), 500.0, "R2"))
    with pytest.raises(ecgzoo.ConfigError, match="distinct"):
        ecgzoo.create_preprocessor("select-leads", leads=["I", "i"])


class _MultiLabel(ecgzoo.Dataset):
    """Three 2-lead records; the third has its leads swapped unless `swap` is False."""

    classes = ("AF", "RBBB", "NSR")
    lead_names = None

    def __init__(self, swap: bool = True):
        self.swap = swap
        self._labels = {"a": ("AF", "RBBB"), "b": ("NSR",), "c": ()}

    @property
    def task(self) -> Task:
        return Task.multi_label(self.classes, {"AF": "atrial fibrillation"})

    def record_ids(self):
        return list(self._labels)

    def label(self, rid):
        return self._labels[rid]

    def load(self, rid):
        leads = ("II", "I") if (rid == "c" and self.swap) else ("I", "II")
        sig = np.full((2, 300), float(ord(rid)), np.float32)
        return ecgzoo.Record(sig, 100.0, rid, label=self._labels[rid], lead_names=leads)


def test_prepare_multi_label_targets_round_trip_through_the_cache(tmp_path):
    data = _MultiLabel(swap=False)
    assert task_of(data).multi
    prepared = prepare(data, Pipeline([]), cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(prepared.labels, [[1, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert prepared.task == data.task and prepared.lead_names == ("I", "II")
    again = load_cached(prepared.cache_path)
    np.testing.assert_array_equal(again.labels, prepared.labels)
    assert again.task == data.task and again.lead_names == ("I", "II")
    x, target, vl = again.torch_dataset([0])[0]
    assert target.dtype == torch.float32 and target.tolist() == [1.0, 1.0, 0.0] and vl == 300


def test_prepare_refuses_records_whose_leads_differ_naming_both_lists():
    with pytest.raises(ecgzoo.RecordError, match=r"'c'.*leads \['II', 'I'\], earlier records \(first 'a'\) \['I', 'II'\].*select-leads"):
        prepare(_MultiLabel(), Pipeline([]), progress=False)
    fixed = prepare(_MultiLabel(), Pipeline([{"name": "select-leads", "leads": ["I", "II"]}]), progress=False)
    assert len(fixed) == 3 and fixed.signals[2, 0, 0] == ord("c")


def test_single_label_prepared_entries_keep_int_labels(tmp_path):
    data = ecgzoo.get_dataset("synthetic", records=6, seconds=2.0)
    prepared = prepare(data, Pipeline([]), cache_dir=tmp_path, progress=False)
    assert prepared.labels.dtype == np.int64 and prepared.labels.ndim == 1 and not prepared.task.multi
    assert isinstance(prepared.torch_dataset()[0][1], int)


def test_physionet2017_records_name_their_lead_as_the_header_does(sample_dir):
    data = check_dataset_plugin("physionet2017", path=str(sample_dir), max_records=2)
    assert data.lead_names == ("ECG",) and data.load(data.record_ids()[0]).lead_names == ("ECG",)


def test_predict_checks_lead_names_unless_the_user_picked_the_lead(tmp_path):
    from ecgzoo.core.manifest import InputContract
    from ecgzoo.data.inputs import select_lead
    from ecgzoo.data.signal_source import InputError, SignalSource
    from ecgzoo.serving.loaded_run import LoadedRun
    from ecgzoo.serving.predict import predict_source

    model = ecgzoo.create_model("inception1d", num_classes=2, in_leads=1, depth=3, filters=2, bottleneck=2).eval()
    contract = InputContract(fs=100.0, leads=1, lead_names=["ECG"], window_seconds=2.0, pipeline=[])
    run = LoadedRun(path=tmp_path, model=model, classes=["N", "A"], config={}, input=contract, info={}, label="run")
    signal = np.random.default_rng(0).normal(size=(2, 200)).astype(np.float32)
    two = SignalSource(tmp_path / "rec", 100.0, 2, 200, lambda a, b: signal[:, a:b], lead_names=("I", "II"))
    one = SignalSource(tmp_path / "rec", 100.0, 1, 200, lambda a, b: signal[:1, a:b], lead_names=("I",))
    with pytest.raises(InputError, match=r"leads \['I'\] do not match the expected \['ECG'\]"):
        predict_source(run, one)
    prediction = predict_source(run, select_lead(two, "ii"))  # chosen with --lead: stands for the model's lead
    assert prediction.probabilities is not None and prediction.probabilities.shape == (2,)
