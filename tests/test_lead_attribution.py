"""Per-lead attribution (lead-occlusion, lead-gradxinput) and the lead fills, against hand computations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ecgzoo
from ecgzoo.core.leads import STANDARD_12
from ecgzoo_plugins.lead_fill import fill_leads

T, V1 = 200, STANDARD_12.index("V1")


class LinearConfig(ecgzoo.ModelConfig):
    pass


class OnlyV1(ecgzoo.EcgModel):
    """logit_c = mean_t(w_c * x_V1(t)) + b_c: a 12-lead model that looks at lead V1 alone."""

    def __init__(self, config: LinearConfig | None = None):
        super().__init__()
        self.config, self.num_classes, self.in_leads = config, 2, 12
        self.body = nn.Conv1d(12, 1, 1, bias=False)
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.body.weight.zero_()
            self.body.weight[0, V1, 0] = 1.0
            self.head.weight.copy_(torch.tensor([[2.0], [-1.0]]))
            self.head.bias.copy_(torch.tensor([0.3, -0.2]))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _records(n: int = 3, seed: int = 0) -> torch.Tensor:
    """(n, 12, T): V1 with a positive mean (so zeroing it lowers class 0's logit), the other leads noise."""
    x = torch.randn(n, 12, T, generator=torch.Generator().manual_seed(seed))
    x[:, V1] += 1.0
    return x


CASES = [("lead-occlusion", {"fill": fill}) for fill in ("zero", "other-record", "reconstruct")] + [("lead-gradxinput", {})]


@pytest.mark.parametrize("name, options", CASES, ids=[f"{n}-{o.get('fill', '')}" for n, o in CASES])
def test_a_model_that_reads_only_v1_ranks_v1_first_and_gives_every_other_lead_exactly_zero(name, options):
    model, x = OnlyV1().eval(), _records()
    explainer = ecgzoo.create_explainer(name, **options)
    explainer.reference = torch.randn(4, 12, T, generator=torch.Generator().manual_seed(9))  # V1 near 0: its fill lowers class 0
    scores = explainer.lead_scores(model, x, torch.tensor([0, 0, 0]))
    assert scores.shape == (3, 12)
    assert (scores.argmax(dim=1) == V1).all()
    others = torch.cat([scores[:, :V1], scores[:, V1 + 1:]], dim=1)
    assert torch.equal(others, torch.zeros_like(others))


def test_occlusion_scores_are_the_logit_drop_by_hand_and_gradxinput_equals_it_on_a_linear_model():
    model, x = OnlyV1().eval(), _records()
    w = torch.tensor([2.0, -1.0])
    for target in (0, 1):
        expected = w[target] * x[:, V1].mean(dim=1)  # zeroing V1 removes w_c * mean(x_V1) from logit c
        occ = ecgzoo.create_explainer("lead-occlusion").lead_scores(model, x, torch.tensor([target] * 3))
        gxi = ecgzoo.create_explainer("lead-gradxinput").lead_scores(model, x, torch.tensor([target] * 3))
        torch.testing.assert_close(occ[:, V1], expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(gxi[:, V1], expected, atol=1e-5, rtol=1e-5)
    probs = ecgzoo.create_explainer("lead-occlusion", output="sigmoid").lead_scores(model, x, torch.tensor([0] * 3))
    logit = model(x)[:, 0].detach()
    torch.testing.assert_close(probs[:, V1], torch.sigmoid(logit) - torch.sigmoid(logit - 2.0 * x[:, V1].mean(dim=1)))


def test_the_map_is_each_leads_score_over_its_valid_samples_and_explain_their_sum():
    model, x = OnlyV1().eval(), _records(2)
    explainer = ecgzoo.create_explainer("lead-occlusion")
    vl = torch.tensor([T, 150])
    scores = explainer.lead_scores(model, x, valid_length=vl)
    maps = explainer.explain_leads(model, x, valid_length=vl)
    assert maps.shape == x.shape and maps.dtype == torch.float32
    torch.testing.assert_close(maps[0], scores[0][:, None].expand(12, T))
    torch.testing.assert_close(maps[1, :, :150], scores[1][:, None].expand(12, 150))
    assert torch.equal(maps[1, :, 150:], torch.zeros(12, T - 150))  # padding carries no score
    torch.testing.assert_close(explainer.explain(model, x, valid_length=vl), maps.sum(dim=1))


def test_all_occlusions_of_a_record_go_through_the_model_in_one_forward_pass():
    model, x = OnlyV1().eval(), _records(1)
    calls = []
    model.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape[0]))
    ecgzoo.create_explainer("lead-occlusion").lead_scores(model, x)
    assert calls == [13]  # the record and its 12 occluded copies
    calls.clear()
    ecgzoo.create_explainer("lead-occlusion", batch_size=30).lead_scores(model, _records(4))
    assert calls == [26, 26]  # two records (2 x 13 inputs) per pass of at most 30


def _limb_leads(t: int = 300) -> torch.Tensor:
    """(1, 12, t) in mV: random I and II, the other limb leads by Einthoven/Goldberger, random chest leads."""
    g = torch.Generator().manual_seed(3)
    lead_i, lead_ii = torch.randn(t, generator=g, dtype=torch.float64), torch.randn(t, generator=g, dtype=torch.float64)
    limbs = [lead_i, lead_ii, lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2]
    return torch.cat([torch.stack(limbs), torch.randn(6, t, generator=g, dtype=torch.float64)])[None]


@pytest.mark.parametrize("lead", ["I", "II", "III", "aVR", "aVL", "aVF"])
def test_reconstruct_rebuilds_every_limb_lead_exactly_in_mv_and_after_z_scoring(lead):
    x = _limb_leads()
    k = STANDARD_12.index(lead)
    deleted = torch.zeros(1, 12, dtype=torch.bool)
    deleted[0, k] = True
    rebuilt = fill_leads(x, deleted, "reconstruct", lead_names=STANDARD_12)
    torch.testing.assert_close(rebuilt, x, atol=1e-9, rtol=0)
    z = (x - x.mean(dim=-1, keepdim=True)) / x.std(dim=-1, keepdim=True)  # per-lead z-score: the relations need new coefficients
    torch.testing.assert_close(fill_leads(z, deleted, "reconstruct", lead_names=STANDARD_12), z, atol=1e-9, rtol=0)


def test_reconstruct_uses_the_surviving_limb_leads_and_zero_fills_chest_leads_and_lost_limb_leads():
    x = _limb_leads()
    names = [n.upper() for n in STANDARD_12]  # 'AVR' as some headers spell it
    deleted = torch.zeros(3, 12, dtype=torch.bool)
    deleted[0, [0, 1, 3]] = True  # I, II and aVR: rebuilt from III and aVL
    deleted[1, [0, 1, 2, 3, 4]] = True  # only aVF survives: nothing to rebuild from
    deleted[2, V1] = True
    out = fill_leads(x.expand(3, -1, -1), deleted, "reconstruct", lead_names=names)
    torch.testing.assert_close(out[0], x[0], atol=1e-9, rtol=0)
    assert torch.equal(out[1, :5], torch.zeros(5, x.shape[-1])) and torch.equal(out[1, 5:], x[0, 5:])
    assert torch.equal(out[2, V1], torch.zeros(x.shape[-1])) and torch.equal(out[2, :V1], x[0, :V1])


def test_other_record_fill_takes_the_same_lead_of_the_reference_and_needs_one():
    x, ref = _records(2, seed=1), _records(2, seed=2)
    deleted = torch.zeros(2, 12, dtype=torch.bool)
    deleted[:, 4] = True
    out = fill_leads(x, deleted, "other-record", reference=ref)
    assert torch.equal(out[:, 4], ref[:, 4]) and torch.equal(out[:, :4], x[:, :4]) and torch.equal(out[:, 5:], x[:, 5:])
    with pytest.raises(ValueError, match="fill 'other-record' needs a reference batch"):
        fill_leads(x, deleted, "other-record")
    explainer = ecgzoo.create_explainer("lead-occlusion", fill="other-record")
    with pytest.raises(ValueError, match="needs another record; explain a batch of two or more records"):
        explainer.lead_scores(OnlyV1().eval(), x[:1])
    model = OnlyV1().eval()
    in_batch = explainer.lead_scores(model, x, torch.tensor([0, 0]))  # each record filled from the other one
    explainer.reference = x.flip(0)
    torch.testing.assert_close(explainer.lead_scores(model, x, torch.tensor([0, 0])), in_batch)
    expected = 2.0 * (x[:, V1].mean(dim=1) - x.flip(0)[:, V1].mean(dim=1))
    torch.testing.assert_close(in_batch[:, V1], expected, atol=1e-5, rtol=1e-5)


def test_wrong_lead_names_are_refused_with_the_counts():
    explainer = ecgzoo.create_explainer("lead-occlusion", fill="reconstruct", leads=["I", "II"])
    with pytest.raises(ValueError, match="option leads names 2 leads, the input has 12"):
        explainer.lead_scores(OnlyV1().eval(), _records(1))


def test_the_per_lead_map_draws_on_the_12_lead_paper():
    from ecgzoo.report.figures_leads import plot_leads

    model, x = OnlyV1().eval(), _records(1)
    maps = ecgzoo.create_explainer("lead-occlusion").explain_leads(model, x, torch.tensor([0]))
    fig = plot_leads(x[0].numpy(), 100.0, maps[0].numpy(), STANDARD_12, explainer="lead-occlusion")
    assert len(fig.axes) >= 1


FAMILIES = {"xresnet1d50": {"layers": [1, 1, 1, 1], "width": 4, "stem": [4, 4, 8]},
            "inception1d": {"depth": 3, "filters": 4, "bottleneck": 4},
            "cnnv7-small": {"filters": 4, "conv_a": 4, "conv_b": 4, "dilations": [1, 2]}}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_batched_occlusion_equals_occluding_one_lead_at_a_time_on_the_12_lead_families(name):
    torch.manual_seed(0)
    model = ecgzoo.create_model(name, num_classes=4, in_leads=12, **FAMILIES[name]).eval()
    x = torch.randn(2, 12, 300, generator=torch.Generator().manual_seed(5))
    scores = ecgzoo.create_explainer("lead-occlusion", output="sigmoid", batch_size=13).lead_scores(model, x, torch.tensor([1, 3]))
    with torch.no_grad():
        for b, c in ((0, 1), (1, 3)):
            for k in range(12):
                occluded = x[b:b + 1].clone()
                occluded[0, k] = 0.0
                expected = torch.sigmoid(model(x[b:b + 1])[0, c]) - torch.sigmoid(model(occluded)[0, c])
                torch.testing.assert_close(scores[b, k], expected, atol=1e-5, rtol=1e-4)
