"""Beat masking (augment.BeatMask, trainer-beat-mask): whole beats replaced by evidence.road_fill, only
inside the valid part, with the probability asked for, reproducible from torch's RNG state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecgzoo
from ecgzoo.core.trainer import FitContext, TrainingTask
from ecgzoo.explain import evidence
from ecgzoo.models.checkpoint import load_checkpoint
from ecgzoo.testing import check_trainer_plugin
from ecgzoo_plugins.augment import BeatMask, BeatMaskedDataset

FS = 300.0


def _ecg(seconds: float = 8.0, padded: int = 0, index: int = 0) -> tuple[torch.Tensor, int]:
    """A synthetic sinus-rhythm record (1, T + padded) and its valid length T."""
    data = ecgzoo.create("dataset", "synthetic", records=3, seconds=seconds, fs=FS, seed=1)
    record = data.load(data.record_ids()[index])
    x = np.pad(record.signal, ((0, 0), (0, padded)))
    return torch.from_numpy(x), record.signal.shape[1]


def _changed_segments(before: torch.Tensor, after: torch.Tensor, bounds: np.ndarray) -> list[int]:
    return [i for i in range(len(bounds) - 1) if not torch.equal(before[:, bounds[i]:bounds[i + 1]], after[:, bounds[i]:bounds[i + 1]])]


def test_masked_beats_are_whole_segments_filled_as_evidence_fills_them():
    x, valid = _ecg(padded=300)
    rpeaks = evidence.rpeaks_of(ecgzoo.Record(signal=x[:, :valid].numpy(), fs=FS, record_id="r"))
    bounds = evidence.beat_bounds(rpeaks, valid)
    torch.manual_seed(3)
    out = BeatMask(p=1.0, beats=3, fs=FS)(x, valid, lambda: rpeaks)
    changed = _changed_segments(x, out, bounds)
    assert len(changed) == 3
    assert torch.equal(out[:, valid:], x[:, valid:])  # padding untouched
    # the same draws, replayed by hand: which beats, then the fill's seed; each beat filled as
    # evidence.road_fill fills it in the whole record (its edges, its noise level), each with its own noise seed
    torch.manual_seed(3)
    torch.rand(())
    chosen = torch.randperm(len(bounds) - 1)[:3].tolist()
    assert sorted(chosen) == changed
    for i in chosen:
        a, b = bounds[i], bounds[i + 1]
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        expected = evidence.road_fill(x[:, :valid].numpy(), np.unique([a, b, valid]), rng, FS)[:, a:b]
        np.testing.assert_allclose(out[:, a:b].numpy(), expected, rtol=0, atol=1e-6)
        # the R-peak is gone: the filled beat is a line plus noise, far below the R amplitude
        assert out[0, a:b].abs().max() < 0.5 * x[0, a:b].abs().max()


def test_probability_and_at_least_one_beat_kept():
    x, valid = _ecg(seconds=2.5)
    peaks = np.array([150, 450, 700])  # three beats
    mask = BeatMask(p=0.3, beats=10, fs=FS)
    torch.manual_seed(0)
    bounds = evidence.beat_bounds(peaks, valid)
    counts = [len(_changed_segments(x, mask(x, valid, lambda: peaks), bounds)) for _ in range(400)]
    assert set(counts) == {0, 2}  # 10 asked, 3 beats: all but one
    assert 0.23 < np.mean([c > 0 for c in counts]) < 0.37  # binomial(400, 0.3): +-3.5 sd
    assert all(torch.equal(mask(x, valid, lambda: None), x) for _ in range(20))  # no beats found: left as it is


def test_masks_replay_from_the_saved_rng_state(monkeypatch):
    x, valid = _ecg()
    calls = []
    find = evidence.rpeaks_of
    monkeypatch.setattr(evidence, "rpeaks_of", lambda record: calls.append(record.record_id) or find(record))
    data = BeatMaskedDataset([(x, 1, valid)] * 8, BeatMask(p=0.5, beats=2, fs=FS))
    torch.manual_seed(7)
    state = torch.get_rng_state()
    first = [data[i][0] for i in range(8)]
    torch.set_rng_state(state)
    again = [data[i][0] for i in range(8)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert any(not torch.equal(a, x) for a in first) and any(torch.equal(a, x) for a in first)
    # R-peaks are found for the items a draw masked, once each (kept for the next read)
    masked = {f"training item {i}" for i, a in enumerate(first) if not torch.equal(a, x)}
    assert sorted(calls) == sorted(masked)
    assert data[0][1:] == (1, valid)


def _tiny_model() -> ecgzoo.EcgModel:
    torch.manual_seed(0)
    return ecgzoo.create_model("cnnv7-s8", num_classes=3, filters=4, conv_a=4, conv_b=4, dilations=[1, 2])


def _fit(p: float, epochs: int = 1, checkpoint_dir=None) -> dict[str, torch.Tensor]:
    """Final weights of a tiny training (best = last: selection by the lowest loss is not what is compared)."""
    data = ecgzoo.create("dataset", "synthetic", records=12, seconds=4.0, fs=FS, seed=2)
    classes = list(data.classes)
    items = [(torch.from_numpy(r.signal), classes.index(r.label), r.signal.shape[1]) for r in map(data.load, data.record_ids())]
    trainer = ecgzoo.create("trainer", "trainer-beat-mask", epochs=epochs, batch_size=4, progress=False, augment_beat_mask=p,
                            augment_beat_mask_fs=FS)
    model = _tiny_model()
    ctx = FitContext(device="cpu", seed=0, checkpoint_dir=checkpoint_dir)
    trainer.fit(model, items[:9], items[9:], TrainingTask.single_label(classes), ctx)
    return {k: v.clone() for k, v in model.state_dict().items()} if checkpoint_dir is None else load_checkpoint(
        checkpoint_dir / "last.safetensors")[0]


def test_training_sees_the_masked_records_and_stays_deterministic():
    plain, masked, again = _fit(0.0), _fit(1.0), _fit(1.0)
    assert all(torch.equal(masked[k], again[k]) for k in masked)
    assert any(not torch.equal(plain[k], masked[k]) for k in plain)


def test_a_resumed_training_masks_as_an_uninterrupted_one(tmp_path):
    """Stopped after epoch 1 and continued, the run draws the same masks in epoch 2: the same weights."""
    whole = _fit(0.5, epochs=2, checkpoint_dir=tmp_path / "whole")
    _fit(0.5, epochs=1, checkpoint_dir=tmp_path / "parts")
    epoch_1 = (tmp_path / "parts" / "epochs.jsonl").read_text()
    resumed = _fit(0.5, epochs=2, checkpoint_dir=tmp_path / "parts")
    assert (tmp_path / "parts" / "epochs.jsonl").read_text().startswith(epoch_1)  # epoch 1 (and its timing) not redone
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_trainer_conformance_and_clear_errors():
    check_trainer_plugin("trainer-beat-mask", _tiny_model(), length=600, epochs=1, progress=False, augment_beat_mask=0.5,
                         augment_beat_mask_fs=FS)
    items = [(torch.zeros(1, 600), 0, 600)] * 4
    task = TrainingTask.single_label(["a", "b", "c"])
    for options, message in [({}, "needs augment_beat_mask_fs"), ({"augment_beat_mask_fs": FS, "num_workers": 1}, "needs num_workers=0")]:
        trainer = ecgzoo.create("trainer", "trainer-beat-mask", augment_beat_mask=0.5, **options)
        with pytest.raises(ValueError, match=message):
            trainer.fit(_tiny_model(), items, items, task, FitContext())


def test_the_documented_command_is_the_cpu_recipe_plus_beat_masking():
    """The documented cnnv7-s8-rf2 training keeps every lever and the split of the shipped weights' run."""
    import shlex

    from doc_blocks import doc_block

    from ecgzoo.core.config import parse_assignments
    from ecgzoo.training.run_config import resolve_run_config

    command = doc_block("rf2-training", "bash")[0]  # docs/pretrained.md
    words = shlex.split(command)
    assert words[:4] == ["ecgzoo", "run", "cnnv7-s8-rf2", "physionet2017"] and words[words.index("--preset") + 1] == "cpu"
    sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
    ours = resolve_run_config("cnnv7-s8-rf2", "physionet2017", "cpu", None, parse_assignments(sets))
    shipped = resolve_run_config("cnnv7-s8", "physionet2017", "cpu", None, parse_assignments(["dataset.path=/data/training2017"]))
    assert ours.trainer_plugin == "trainer-beat-mask"
    extra = {"augment_beat_mask": 0.5, "augment_beat_mask_beats": 4, "augment_beat_mask_fs": 300}
    assert ours.trainer == {**shipped.trainer, **extra}
    assert ours.split == shipped.split and ours.seed == shipped.seed and ours.dataset == shipped.dataset
    assert ours.preprocessing == shipped.preprocessing
