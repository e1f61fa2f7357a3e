"""Conformance kit: call these from your own pytest suite to prove a plugin honours its interface.

    from ecgzoo.testing import check_model_plugin
    def test_my_model():
        check_model_plugin("my-model", length=1000, filters=8)

Each check raises AssertionError with a message saying what the plugin got wrong.
ecgzoo runs the same checks on every reference plugin.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ecgzoo.core.dataset import Dataset
from ecgzoo.core.explainer import Explainer
from ecgzoo.core.model import EcgModel
from ecgzoo.core.preprocessor import Preprocessor
from ecgzoo.core.record import Record
from ecgzoo.core.registry import get_registry
from ecgzoo.core.tasks import task_of


def _config_round_trip(kind: str, name: str, obj: Any) -> None:
    config = getattr(obj, "config", None)
    assert config is not None, f"{kind} {name!r}: instance has no .config (factory must accept the config object)"
    dumped = config.model_dump()
    again = get_registry().create(kind, name, **dumped).config
    assert again.model_dump() == dumped, f"{kind} {name!r}: config does not survive model_dump -> create"


def check_model_plugin(name: str, length: int = 1024, batch: int = 2, atol: float = 1e-4, **config: Any) -> EcgModel:
    """Shapes, dtype, determinism in eval mode, CAM identity (where declared), config round-trip."""
    model = get_registry().create("model", name, **config)
    assert isinstance(model, EcgModel), f"model {name!r}: factory returned {type(model).__name__}, not an EcgModel"
    model.eval()
    torch.manual_seed(0)
    for t in (length, length // 2 + 7):
        x = torch.randn(batch, model.in_leads, t)
        with torch.no_grad():
            logits = model(x)
            again = model(x)
        assert logits.shape == (batch, model.num_classes), (
            f"model {name!r}: logits shape {tuple(logits.shape)} for input {tuple(x.shape)}, "
            f"expected ({batch}, {model.num_classes})"
        )
        assert logits.dtype == torch.float32, f"model {name!r}: logits dtype {logits.dtype}, expected float32"
        assert torch.isfinite(logits).all(), f"model {name!r}: non-finite logits"
        assert torch.equal(logits, again), f"model {name!r}: eval-mode forward is not deterministic (dropout on?)"
        if model.has_cam:
            with torch.no_grad():
                features = model.forward_features(x)
                maps = torch.einsum("ck,bkt->bct", model.head.weight, features)
                logits2, cam = model.forward_with_cam(x)
                offset = model.logit_offset(x)
            assert cam.shape == (batch, model.num_classes, t), (
                f"model {name!r}: CAM shape {tuple(cam.shape)}, expected one value per input sample "
                f"({batch}, {model.num_classes}, {t})"
            )
            assert torch.allclose(logits2, logits, atol=atol), f"model {name!r}: forward_with_cam logits differ"
            mean = maps.mean(dim=-1) + (0 if offset is None else offset)
            assert torch.allclose(mean, logits, atol=atol, rtol=1e-4), (
                f"model {name!r}: logits are not the time-mean of the class activation map"
                f"{'' if offset is None else ' plus its logit_offset'} (max diff {(mean - logits).abs().max():.3g})"
            )
    if model.gradcam_layer:
        try:
            model.get_submodule(model.gradcam_layer)
        except AttributeError as exc:
            raise AssertionError(f"model {name!r}: gradcam_layer {model.gradcam_layer!r} is no sub-module") from exc
    _config_round_trip("model", name, model)
    return model


def check_dataset_plugin(name: str, max_records: int = 5, **config: Any) -> Dataset:
    """Ids unique, labels among the classes (a set of them for a multi-label task), records load with
    the right id, label, lead names and a finite 2-D signal."""
    data = get_registry().create("dataset", name, **config)
    assert isinstance(data, Dataset), f"dataset {name!r}: factory returned {type(data).__name__}, not a Dataset"
    ids = data.record_ids()
    assert ids, f"dataset {name!r}: no records"
    assert len(set(ids)) == len(ids), f"dataset {name!r}: record ids are not unique"
    classes = list(data.classes)
    assert classes and len(set(classes)) == len(classes), f"dataset {name!r}: classes {classes} empty or repeated"
    task = task_of(data)
    assert list(task.classes) == classes, f"dataset {name!r}: task classes {list(task.classes)} differ from classes {classes}"
    for rid in ids[:max_records]:
        rec = data.load(rid)
        assert isinstance(rec, Record), f"dataset {name!r}: load({rid!r}) returned {type(rec).__name__}"
        assert rec.record_id == rid, f"dataset {name!r}: load({rid!r}) returned record {rec.record_id!r}"
        assert rec.label == data.label(rid), f"dataset {name!r}: record {rid!r} label differs from label()"
        try:
            task.encode(rec.label, rid)
        except ValueError as exc:
            raise AssertionError(f"dataset {name!r}: {exc} ({task.kind} task)") from None
        assert rec.lead_names is None or len(rec.lead_names) == rec.leads, f"dataset {name!r}: record {rid!r} lead names"
        if data.lead_names is not None:
            assert rec.lead_names == tuple(data.lead_names), (
                f"dataset {name!r}: record {rid!r} leads {rec.lead_names} differ from the dataset's {data.lead_names}")
        assert rec.signal.dtype == np.float32, f"dataset {name!r}: record {rid!r} signal is {rec.signal.dtype}"
        assert np.isfinite(rec.signal).all(), f"dataset {name!r}: record {rid!r} has non-finite samples"
    _config_round_trip("dataset", name, data)
    return data


def check_preprocessor_plugin(name: str, record: Record, **config: Any) -> Record:
    """Output is a new finite float32 Record with the same id and label, and a rate the step announced."""
    step = get_registry().create("preprocessor", name, **config)
    assert isinstance(step, Preprocessor), f"preprocessor {name!r}: factory returned {type(step).__name__}"
    step.requires.check(record, name)
    out = step(record)
    assert isinstance(out, Record), f"preprocessor {name!r}: returned {type(out).__name__}, not a Record"
    assert out.record_id == record.record_id and out.label == record.label, (
        f"preprocessor {name!r}: record id or label changed"
    )
    assert out.signal.dtype == np.float32, f"preprocessor {name!r}: output dtype {out.signal.dtype}, expected float32"
    assert np.isfinite(out.signal).all(), f"preprocessor {name!r}: non-finite output samples"
    assert out.fs == step.output_fs(record.fs), f"preprocessor {name!r}: output rate {out.fs} != output_fs()"
    _config_round_trip("preprocessor", name, step)
    return out


def check_explainer_plugin(name: str, model: EcgModel, x: torch.Tensor, fs: float = 300.0, **config: Any) -> torch.Tensor:
    """The `ecgzoo.Explainer` contract on `model` and input `x` sampled at `fs` Hz.

    `supports(model)` is None or a reason (a supported pair is required here); the map is a finite
    float32 (B, T) tensor on `x`'s device, for the predicted class by default and for explicit
    targets; `non_negative` explainers return no negative value; neither the model's weights nor
    the explainer's options change.
    """
    explainer = get_registry().create("explainer", name, **config)
    assert isinstance(explainer, Explainer), f"explainer {name!r}: factory returned {type(explainer).__name__}"
    model.eval()
    reason = explainer.supports(model)
    assert reason is None or (isinstance(reason, str) and reason), f"explainer {name!r}: supports() returned {reason!r}"
    assert reason is None, f"explainer {name!r} does not support {type(model).__name__}: {reason}"
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    options = explainer.config.model_dump() if getattr(explainer, "config", None) is not None else None
    attr = explainer.explain(model, x, fs=fs)
    assert isinstance(attr, torch.Tensor) and attr.dtype == torch.float32, f"explainer {name!r}: map must be a float32 tensor"
    assert attr.device == x.device, f"explainer {name!r}: map on {attr.device}, input on {x.device}"
    assert attr.shape == (x.shape[0], x.shape[-1]), (
        f"explainer {name!r}: attribution shape {tuple(attr.shape)}, expected ({x.shape[0]}, {x.shape[-1]})"
    )
    assert torch.isfinite(attr).all(), f"explainer {name!r}: non-finite attributions"
    if explainer.non_negative:
        assert (attr >= 0).all(), f"explainer {name!r} declares non_negative but returned {attr.min().item():g}"
    predicted = model(x).argmax(dim=1)
    explicit = explainer.explain(model, x, target=predicted, fs=fs)
    assert torch.allclose(attr, explicit, atol=1e-5, rtol=1e-4), (
        f"explainer {name!r}: default target is not the predicted class"
    )
    per_lead = explainer.explain_leads(model, x, fs=fs)
    assert per_lead.shape == x.shape, (
        f"explainer {name!r}: explain_leads shape {tuple(per_lead.shape)}, expected the input's {tuple(x.shape)}"
    )
    if explainer.per_lead:
        assert torch.allclose(per_lead.sum(dim=1), attr, atol=1e-5, rtol=1e-4), (
            f"explainer {name!r}: explain is not the sum over leads of explain_leads"
        )
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items()), f"explainer {name!r} changed the weights"
    if options is not None:
        assert explainer.config.model_dump() == options, f"explainer {name!r} changed its own options while explaining"
    _config_round_trip("explainer", name, explainer)
    return attr


class _TinyData(torch.utils.data.Dataset):
    """`n` records of a learnable toy task: class c has a bump at a class-specific position."""

    def __init__(self, n: int, classes: int, leads: int, length: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.y = torch.arange(n) % classes
        self.x = 0.1 * torch.randn(n, leads, length, generator=g)
        for i, c in enumerate(self.y.tolist()):
            start = (c + 1) * length // (classes + 1) - length // 20
            self.x[i, :, start:start + length // 10] += 1.0

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        return self.x[i], int(self.y[i]), self.x.shape[-1]


def check_trainer_plugin(name: str, model: EcgModel, checkpoint_dir: Any = None, length: int = 200, **config: Any) -> Any:
    """The `ecgzoo.Trainer` contract on `model` (num_classes classes, in_leads leads) and a tiny learnable set.

    `fit(model, train, val, task, ctx)` returns an `ecgzoo.FitResult` whose epochs are numbered 1, 2, ...
    with finite losses and the task's selection metric among the validation metrics, exactly one
    epoch record per epoch, a best epoch among them, and a best state that loads into the model
    (same keys and shapes). The history rows are JSON-able. Returns the FitResult.
    """
    import json

    from ecgzoo.core.trainer import FitContext, FitResult, Trainer, TrainingTask

    trainer = get_registry().create("trainer", name, **config)
    assert isinstance(trainer, Trainer), f"trainer {name!r}: factory returned {type(trainer).__name__}"
    k, leads = model.num_classes, model.in_leads
    task = TrainingTask.single_label([f"c{i}" for i in range(k)])
    train, val = _TinyData(8 * k, k, leads, length, 1), _TinyData(4 * k, k, leads, length, 2)
    keys = {n: tuple(t.shape) for n, t in model.state_dict().items()}
    result = trainer.fit(model, train, val, task, FitContext(device="cpu", seed=0, checkpoint_dir=checkpoint_dir))
    assert isinstance(result, FitResult), f"trainer {name!r}: fit returned {type(result).__name__}, not an ecgzoo.FitResult"
    assert [e.epoch for e in result.epochs] == list(range(1, len(result.epochs) + 1)), f"trainer {name!r}: epochs not 1, 2, ..."
    for e in result.epochs:
        assert np.isfinite(e.train_loss) and np.isfinite(e.val_loss), f"trainer {name!r}: epoch {e.epoch} has a non-finite loss"
        assert task.selection_metric in e.metrics, f"trainer {name!r}: epoch {e.epoch} lacks {task.selection_metric!r}"
    assert {n: tuple(t.shape) for n, t in result.best_state.items()} == keys, f"trainer {name!r}: best_state does not fit the model"
    model.load_state_dict(result.best_state)
    json.dumps(result.history())
    return result
