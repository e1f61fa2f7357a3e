"""The Explainer contract: sign, scale, units and shape of every explainer, `supports` checked before
any work, the sampling rate passed explicitly, and a third-party explainer package end to end."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from thirdparty import installed, pyproject
from tiny_models import tiny_options
from torch import nn

import ecgzoo
from ecgzoo.testing import check_explainer_plugin

T, A, W = 50, 0.5, (2.0, -1.5)  # samples, the 1x1 conv's gain, the head's weight per class


class LinearConfig(ecgzoo.ModelConfig):
    pass


class LinearCam(ecgzoo.EcgModel):
    """logit_c = mean_t(W_c * A * x(t)): every explainer's answer is known in closed form."""

    has_cam = True
    gradcam_layer = "body"

    def __init__(self, config: LinearConfig | None = None):
        super().__init__()
        self.config, self.num_classes, self.in_leads = config, 2, 1
        self.body = nn.Conv1d(1, 1, 1, bias=False)
        self.head = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.body.weight.fill_(A)
            self.head.weight.copy_(torch.tensor([[W[0]], [W[1]]]))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


X = torch.randn(1, 1, T, generator=torch.Generator().manual_seed(0))


def _contribution(c: int) -> torch.Tensor:
    """Each sample's contribution to logit c: W_c * A * x(t) / T (they sum to the logit)."""
    return W[c] * A * X[:, 0] / T


# explainer name, options, fs, expected map for target class c: the units stated in `ecgzoo.Explainer`
KNOWN = [
    ("cam", {}, None, lambda c: T * _contribution(c)),  # T x contribution: the time-mean is the logit
    ("gradcam", {"relu": False}, None, _contribution),
    ("integrated-gradients", {"n_steps": 8}, None, _contribution),
    ("occlusion", {"window_s": 0.1, "stride_s": 0.1}, 10.0, _contribution),  # one-sample windows at 10 Hz
    ("saliency", {"absolute": False}, None, lambda c: torch.full((1, T), W[c] * A / T)),  # d logit / d x(t)
    ("saliency", {}, None, lambda c: torch.full((1, T), abs(W[c] * A) / T)),
    ("gradcam", {}, None, lambda c: _contribution(c).clamp_min(0)),
    ("cam", {"positive_only": True}, None, lambda c: (T * _contribution(c)).clamp_min(0)),
    # per-lead explainers: the lead's score at each of its samples; zeroing the only lead removes the whole logit
    ("lead-occlusion", {}, None, lambda c: torch.full((1, T), float(_contribution(c).sum()))),
    ("lead-gradxinput", {}, None, lambda c: torch.full((1, T), float(_contribution(c).sum()))),
]


@pytest.mark.parametrize("name, options, fs, expected", KNOWN, ids=[f"{k[0]}{k[1] or ''}" for k in KNOWN])
@pytest.mark.parametrize("target", [0, 1])
def test_scale_units_and_sign_against_a_linear_model(name, options, fs, expected, target):
    model = LinearCam().eval()
    logit = model(X)[0, target]
    explainer = ecgzoo.create_explainer(name, **options)
    attr = explainer.explain(model, X, torch.tensor([target]), fs=fs)
    torch.testing.assert_close(attr, expected(target).float(), atol=1e-5, rtol=1e-4)
    if name in ("integrated-gradients", "occlusion") or (name == "gradcam" and not options.get("relu", True)):
        torch.testing.assert_close(attr.sum(), logit, atol=1e-5, rtol=1e-4)  # completeness: the logit
    if explainer.non_negative:
        assert (attr >= 0).all()


def test_non_negative_is_declared_exactly_by_the_clipping_options():
    assert ecgzoo.create_explainer("cam", positive_only=True).non_negative
    assert not ecgzoo.create_explainer("cam").non_negative
    assert ecgzoo.create_explainer("gradcam").non_negative and not ecgzoo.create_explainer("gradcam", relu=False).non_negative
    assert ecgzoo.create_explainer("saliency").non_negative
    assert not ecgzoo.create_explainer("saliency", absolute=False).non_negative
    assert not ecgzoo.create_explainer("integrated-gradients").non_negative
    assert not ecgzoo.create_explainer("occlusion").non_negative


FAST = {"integrated-gradients": {"n_steps": 4}, "occlusion": {"window_s": 0.1, "stride_s": 0.1}}


def _pairs() -> list[tuple[str, str]]:
    ecgzoo.reset_registry()
    try:
        return [(m, e) for m in ecgzoo.list_models() for e in ecgzoo.list_plugins("explainer")]
    finally:
        ecgzoo.reset_registry()


@pytest.mark.parametrize("model_name, explainer_name", _pairs())
def test_every_registered_model_with_every_explainer_that_supports_it(model_name, explainer_name):
    """Each registered model at its tiny options (tests/tiny_models.py: a model without them fails, never runs full size)."""
    torch.manual_seed(0)
    model = ecgzoo.create_model(model_name, num_classes=3, **tiny_options(model_name)).eval()
    explainer = ecgzoo.create_explainer(explainer_name, **FAST.get(explainer_name, {}))
    reason = explainer.supports(model)
    if reason is not None:
        with pytest.raises((TypeError, ValueError), match=re.escape(reason)):
            explainer.explain(model, torch.randn(1, 1, 300), fs=100.0)
        return
    x = torch.randn(2, 1, 300, generator=torch.Generator().manual_seed(1))
    attr = check_explainer_plugin(explainer_name, model, x, fs=100.0, **FAST.get(explainer_name, {}))
    assert attr.shape == (2, 300)


class NoCamConfig(ecgzoo.ModelConfig):
    pass


class NoCam(ecgzoo.EcgModel):
    """A biased head: no native CAM (Grad-CAM works)."""

    gradcam_layer = "conv"

    def __init__(self, config: NoCamConfig):
        super().__init__()
        self.config, self.num_classes, self.in_leads = config, config.num_classes, config.in_leads
        self.conv = nn.Conv1d(config.in_leads, 3, 5, padding=2)
        self.head = nn.Linear(3, config.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


class _NoCamPlugin:
    @staticmethod
    @ecgzoo.hookimpl
    def ecgzoo_models():
        return [ecgzoo.PluginSpec("nocam", NoCam, NoCamConfig, summary="conv + biased head")]


def test_run_refuses_an_unsupported_explainer_before_reading_data(tmp_path):
    from run_helpers import cli, tiny_run_args

    ecgzoo.register_plugin(_NoCamPlugin, "nocam-plugin")
    args = tiny_run_args(tmp_path / "runs", "refused", "explainer=cam")
    args[1] = "nocam"
    code, _, err = cli(*args)
    assert code == 2
    assert "explainer 'cam' cannot explain model NoCam: model NoCam declares no native class activation map" in err
    assert "use --explainer gradcam" in err
    assert not (tmp_path / "runs").exists()  # refused before any folder, data or training


@pytest.fixture
def tiny_run(tmp_path_factory):
    from run_helpers import register_toy, shared_run

    register_toy()
    return shared_run(tmp_path_factory)[0]


def _npy_input(tmp_path: Path) -> str:
    data = ecgzoo.get_dataset("synthetic", records=1, seconds=6.0, fs=300.0, seed=3)
    path = tmp_path / "rec.npy"
    np.save(path, data.load(data.record_ids()[0]).signal)
    return str(path)


def test_explain_refuses_an_unsupported_explainer_before_reading_inputs(tiny_run, tmp_path):
    from run_helpers import cli

    code, _, err = cli("explain", str(tiny_run), str(tmp_path / "never-read.npy"), "--explainer", "gradcam",
                       "--set", "layer=nope", "--out", str(tmp_path / "o"))
    assert code == 2 and "explainer 'gradcam' cannot explain model ToyModel: model ToyModel has no sub-module 'nope'" in err
    assert not (tmp_path / "o").exists()


THIRD_PARTY_EXPLAINER = {
    "pyproject.toml": pyproject("ecgzoo-thirdparty-gxi", "ecgzoo_thirdparty_gxi", "gxi"),
    "ecgzoo_thirdparty_gxi.py": '''
        """Gradient x input, written against ecgzoo's public interface only."""
        import pydantic
        import torch
        import ecgzoo

        class GxIConfig(ecgzoo.PluginConfig):
            max_leads: int = pydantic.Field(1, ge=1, description="refuse models with more input leads")

        class GradientTimesInput(ecgzoo.Explainer):
            def __init__(self, config):
                self.config = config

            def supports(self, model):
                if model.in_leads > self.config.max_leads:
                    return f"{model.in_leads} leads; gxi handles at most {self.config.max_leads}"
                return None

            def explain(self, model, x, target=None, valid_length=None, fs=None):
                target = self.resolve_target(model, x, target, valid_length)
                with torch.enable_grad():
                    inp = x.detach().clone().requires_grad_(True)
                    score = model(inp, valid_length=valid_length).gather(1, target[:, None]).sum()
                    (grad,) = torch.autograd.grad(score, inp)
                return (grad * inp).detach().sum(dim=1).float()

        @ecgzoo.hookimpl
        def ecgzoo_explainers():
            return [ecgzoo.PluginSpec("gradient-x-input", GradientTimesInput, GxIConfig, summary="gradient times input")]
    ''',
}


def test_third_party_explainer_package_runs_through_ecgzoo_explain(tiny_run, tmp_path):
    from run_helpers import cli, register_toy

    with installed(tmp_path / "pkg", "ecgzoo-thirdparty-gxi", THIRD_PARTY_EXPLAINER):
        register_toy()
        assert "gradient-x-input" in ecgzoo.list_plugins("explainer")
        model = LinearCam().eval()  # its gradient x input is each sample's contribution to the logit
        attr = check_explainer_plugin("gradient-x-input", model, X)
        torch.testing.assert_close(attr, _contribution(int(model(X).argmax())), atol=1e-6, rtol=1e-5)
        code, out, err = cli("explain", str(tiny_run), _npy_input(tmp_path), "--fs", "300", "--explainer",
                             "gradient-x-input", "--compare", "gradient-x-input,cam", "--steps", "3", "--out", str(tmp_path / "o"))
        assert code == 0, err
        assert (tmp_path / "o" / "rec_gradient-x-input.png").is_file() and "gradient-x-input" in out
    assert "gradient-x-input" not in ecgzoo.list_plugins("explainer")
