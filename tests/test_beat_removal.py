"""`beat-removal`: per-beat scores by ROAD removal, against hand computations and full recomputation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_predict import _toy, tiny  # noqa: F401 (fixtures: the toy plugin, the shared tiny run)
from torch import nn

import ecgzoo
from ecgzoo.explain import evidence
from ecgzoo.testing import check_explainer_plugin

FS = 100.0


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class LinearConfig(ecgzoo.ModelConfig):
    pass


class Linear2(ecgzoo.EcgModel):
    """logit_c = mean_t(sum_k g_k W_c x_k(t)): two leads, gains g = (1, -2), W = (1.5, -0.5); no receptive field declared."""

    has_cam = True

    def __init__(self, config: LinearConfig | None = None):
        super().__init__()
        self.config, self.num_classes, self.in_leads = config, 2, 2
        self.body = nn.Conv1d(2, 1, 1, bias=False)
        self.head = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.body.weight.copy_(torch.tensor([[[1.0], [-2.0]]]))
            self.head.weight.copy_(torch.tensor([[1.5], [-0.5]]))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _ecg(leads: int = 1, seconds: float = 6.0, seed: int = 3) -> torch.Tensor:
    ds = ecgzoo.get_dataset("synthetic", records=1, seconds=seconds, fs=FS, seed=seed)
    sig = ds.load(ds.record_ids()[0]).signal
    return torch.from_numpy(np.concatenate([sig * (1 + 0.3 * k) for k in range(leads)]))[None]


def test_each_beat_of_each_lead_scores_the_logit_drop_of_its_road_fill_by_hand():
    model, x = Linear2().eval(), _ecg(leads=2)
    explainer = ecgzoo.create_explainer("beat-removal", seed=4)
    maps = explainer.explain_leads(model, x, torch.tensor([0]), fs=FS)[0].numpy()
    sig = x[0].numpy()
    bounds = explainer.segment_bounds(sig, FS)
    peaks = evidence.rpeaks_of(ecgzoo.Record(sig, FS, "r"))
    assert len(bounds) - 1 == len(peaks) >= 4  # one beat per R-peak, cut at the R-R midpoints
    fill = evidence.road_fill(sig, bounds, np.random.default_rng(4), FS)
    t = sig.shape[-1]
    for k, gain in enumerate((1.0, -2.0)):
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            drop = 1.5 * gain * float((sig[k, a:b] - fill[k, a:b]).sum()) / t  # logit 0 is mean_t(1.5 g_k x_k)
            np.testing.assert_allclose(maps[k, a:b], drop, rtol=1e-4, atol=1e-6)  # the same value over the whole beat
    assert explainer.last_cost.evaluations == 2 * (len(bounds) - 1) + 1
    torch.testing.assert_close(explainer.explain(model, x, torch.tensor([0]), fs=FS)[0], torch.from_numpy(maps.sum(0)))


def _cnnv7(leads: int = 2, masked: bool = True) -> ecgzoo.EcgModel:
    torch.manual_seed(0)
    return ecgzoo.create_model("cnnv7", num_classes=3, in_leads=leads, filters=4, conv_a=4, conv_b=4,
                               dilations=[1, 2, 4], masked_pooling=masked).eval()


@pytest.mark.parametrize("fast", [True, False])
def test_receptive_field_crops_give_the_scores_of_whole_input_recomputation(fast, monkeypatch):
    model = _cnnv7()
    x = torch.cat([_ecg(leads=2), torch.zeros(1, 2, 100)], dim=-1)  # a padded input, pooled over its valid part
    vl = torch.tensor([600])
    explainer = ecgzoo.create_explainer("beat-removal", fast=fast, batch_size=5)
    cropped = explainer.explain_leads(model, x, torch.tensor([1]), vl, fs=FS)
    crop_cost = explainer.last_cost
    monkeypatch.setattr(type(model), "receptive_radius", property(lambda self: None))  # the whole-input path
    whole = explainer.explain_leads(model, x, torch.tensor([1]), vl, fs=FS)
    torch.testing.assert_close(cropped, whole, atol=1e-5, rtol=1e-4)
    assert whole.abs().max() > 0 and (cropped[..., 600:] == 0).all()
    assert crop_cost.evaluations == explainer.last_cost.evaluations
    assert crop_cost.full_pass_equivalents < 0.5 * explainer.last_cost.full_pass_equivalents  # radius 14 vs 700 samples


def test_the_fill_is_seeded_so_maps_repeat_and_another_seed_gives_another_fill():
    model, x = _cnnv7(leads=1), _ecg()
    first = ecgzoo.create_explainer("beat-removal").explain(model, x, fs=FS)
    again = ecgzoo.create_explainer("beat-removal").explain(model, x, fs=FS)
    other = ecgzoo.create_explainer("beat-removal", seed=1).explain(model, x, fs=FS)
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_an_input_with_fewer_than_two_r_peaks_is_one_segment():
    model = _cnnv7(leads=1)
    x = torch.zeros(1, 1, 300)
    x[0, 0, 150] = 1.0  # one spike: no beat pair
    explainer = ecgzoo.create_explainer("beat-removal")
    assert explainer.segment_bounds(x[0].numpy(), FS).tolist() == [0, 300]
    attr = explainer.explain(model, x, torch.tensor([0]), fs=FS)
    assert torch.unique(attr).numel() == 1 and explainer.last_cost.evaluations == 2


def test_conformance_and_a_clear_error_without_the_sampling_rate():
    model = _cnnv7(leads=1)
    attr = check_explainer_plugin("beat-removal", model, _ecg().expand(2, -1, -1), fs=FS)
    assert attr.shape == (2, 600)
    with pytest.raises(ValueError, match="beat-removal': the sampling rate is unknown"):
        ecgzoo.create_explainer("beat-removal").explain(model, _ecg())


def test_explain_draws_the_beats_with_their_cuts_and_units(tiny, tmp_path, monkeypatch):
    from run_helpers import cli

    import ecgzoo.report.figures

    drawn = {}
    plot = ecgzoo.report.figures.plot_attribution

    def spy(*args, **kwargs):
        drawn.update(kwargs, attribution=args[2])
        return plot(*args, **kwargs)

    monkeypatch.setattr(ecgzoo.report.figures, "plot_attribution", spy)
    data = ecgzoo.get_dataset("synthetic", records=1, seconds=4.0, fs=300.0, seed=3)
    np.save(tmp_path / "rec.npy", data.load(data.record_ids()[0]).signal)
    code, out, err = cli("explain", str(tiny), str(tmp_path / "rec.npy"), "--fs", "300", "--explainer", "beat-removal",
                         "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert (tmp_path / "o" / "rec_beat-removal.png").is_file()
    bounds = drawn["segments"]
    assert len(bounds) > 3 and drawn["segment_units"] == "drop of the class logit"
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        assert np.unique(drawn["attribution"][a:b]).size == 1  # the cuts drawn are those of the map's beats
