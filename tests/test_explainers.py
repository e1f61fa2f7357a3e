"""Explainer plugins: CAM vs hand computation, Grad-CAM on known answers, alignment, sanity checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import toy_plugins
from torch import nn

import ecgzoo
from ecgzoo.testing import check_explainer_plugin


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread; on a loaded 2-core machine two threads can be 100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def toy() -> ecgzoo.EcgModel:
    ecgzoo.register_plugin(toy_plugins)
    torch.manual_seed(0)
    return ecgzoo.create_model("toy", num_classes=3, width=6).eval()


class NoCamConfig(ecgzoo.ModelConfig):
    pass


class NoCamModel(ecgzoo.EcgModel):
    """A conv model with a biased head: no native CAM, but a Grad-CAM layer."""

    gradcam_layer = "conv"

    def __init__(self, config: NoCamConfig | None = None):
        super().__init__()
        self.config = config or NoCamConfig(num_classes=2)
        self.num_classes, self.in_leads = self.config.num_classes, self.config.in_leads
        self.conv = nn.Conv1d(self.in_leads, 4, 3, padding=1)
        self.head = nn.Linear(4, self.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def test_cam_equals_hand_computation_from_head_weights_and_feature_map(toy):
    x = torch.randn(2, 1, 300)
    target = torch.tensor([2, 0])
    attr = ecgzoo.create_explainer("cam").explain(toy, x, target=target)
    with torch.no_grad():
        features = torch.relu(toy.conv(x))  # (B, C, T), computed by hand from the toy's layers
        w = toy.head.weight  # (classes, C)
        expected = torch.stack([(w[c][:, None] * features[b]).sum(0) for b, c in enumerate(target.tolist())])
        logits = toy(x)
    assert attr.shape == (2, 300)
    assert torch.allclose(attr, expected, atol=1e-5)
    # the map's time-mean is the logit of its class (GAP + bias-free head)
    assert torch.allclose(attr.mean(dim=1), logits[torch.arange(2), target], atol=1e-5)


def test_cam_conformance_default_target_is_predicted(toy):
    attr = check_explainer_plugin("cam", toy, torch.randn(3, 1, 200))
    assert attr.shape == (3, 200)


def test_cam_positive_only_clips_at_zero(toy):
    x = torch.randn(1, 1, 200)
    raw = ecgzoo.create_explainer("cam").explain(toy, x)
    clipped = ecgzoo.create_explainer("cam", positive_only=True).explain(toy, x)
    assert torch.equal(clipped, raw.clamp_min(0))


def test_cam_refuses_model_without_native_map_and_suggests_gradcam():
    with pytest.raises(TypeError, match=r"NoCamModel.*gradcam"):
        ecgzoo.create_explainer("cam").explain(NoCamModel().eval(), torch.randn(1, 1, 50))


def test_cam_rejects_out_of_range_target(toy):
    with pytest.raises(ValueError, match="0..2"):
        ecgzoo.create_explainer("cam").explain(toy, torch.randn(1, 1, 50), target=torch.tensor([5]))


# ---------------------------------------------------------------- gradient and captum explainers

ALL = {"cam": {}, "gradcam": {}, "saliency": {}, "integrated-gradients": {"n_steps": 16},
       "occlusion": {"fs": 100.0, "window_s": 0.1, "stride_s": 0.02}}


@pytest.mark.parametrize("name", sorted(ALL))
def test_conformance_on_toy_model(name, toy):
    attr = check_explainer_plugin(name, toy, torch.randn(2, 1, 150), **ALL[name])
    assert attr.shape == (2, 150)


def test_explainer_list_has_the_five_reference_explainers():
    assert set(ALL) <= set(ecgzoo.list_plugins("explainer"))


class IdentityFeatures(ecgzoo.EcgModel):
    """features = a 1x1 conv whose output is the input scaled by `gains`; GAP; head weights `w` (no bias)."""

    has_cam = True
    gradcam_layer = "conv"

    def __init__(self, gains: list[float], w: list[list[float]], stride: int = 1):
        super().__init__()
        self.config = NoCamConfig(num_classes=len(w))
        self.num_classes, self.in_leads = len(w), 1
        self.conv = nn.Conv1d(1, len(gains), 1, stride=stride, bias=False)
        self.head = nn.Linear(len(gains), len(w), bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(gains)[:, None, None])
            self.head.weight.copy_(torch.tensor(w))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_gradcam_known_answer():
    # logit_c = mean_t sum_k w[c,k] g_k x(t), so d logit_c / d A_k(t) = w[c,k] / T and
    # Grad-CAM_c(t) = ReLU(sum_k (w[c,k]/T) g_k x(t)) = ReLU(x(t) * sum_k w[c,k] g_k / T)
    model = IdentityFeatures(gains=[1.0, 2.0], w=[[0.5, 1.0], [-1.0, 0.25]]).eval()
    x = torch.linspace(-1, 1, 40)[None, None]
    t = x.shape[-1]
    for c, coef in ((0, 0.5 * 1 + 1.0 * 2), (1, -1.0 * 1 + 0.25 * 2)):
        attr = ecgzoo.create_explainer("gradcam").explain(model, x, target=torch.tensor([c]))
        assert torch.allclose(attr[0], torch.relu(x[0, 0] * coef / t), atol=1e-6)
    signed = ecgzoo.create_explainer("gradcam", relu=False).explain(model, x, target=torch.tensor([1]))
    assert torch.allclose(signed[0], x[0, 0] * (-0.5) / t, atol=1e-6)


def test_gradcam_upsamples_a_shorter_feature_map_to_the_input_length():
    model = IdentityFeatures(gains=[1.0], w=[[1.0], [-1.0]], stride=4).eval()
    x = torch.rand(1, 1, 64) + 0.1
    attr = ecgzoo.create_explainer("gradcam").explain(model, x, target=torch.tensor([0]))
    assert attr.shape == (1, 64)
    coarse = torch.relu(x[0, 0, ::4] / 16)  # T' = 16 feature samples, gradient 1/T'
    expected = torch.nn.functional.interpolate(coarse[None, None], size=64, mode="linear", align_corners=False)[0, 0]
    assert torch.allclose(attr[0], expected, atol=1e-6)


def test_gradcam_needs_a_layer():
    model = IdentityFeatures(gains=[1.0], w=[[1.0], [-1.0]])
    model.gradcam_layer = ""
    with pytest.raises(TypeError, match="declares no gradcam_layer"):
        ecgzoo.create_explainer("gradcam").explain(model, torch.randn(1, 1, 10))
    with pytest.raises(ValueError, match="no sub-module 'nope'"):
        ecgzoo.create_explainer("gradcam", layer="nope").explain(model, torch.randn(1, 1, 10))


def test_gradcam_works_on_a_model_without_native_cam():
    torch.manual_seed(0)
    attr = check_explainer_plugin_local(NoCamModel().eval(), "gradcam")
    assert attr.shape == (2, 80) and (attr >= 0).all()


def check_explainer_plugin_local(model: ecgzoo.EcgModel, name: str) -> torch.Tensor:
    explainer = ecgzoo.create_explainer(name)
    x = torch.randn(2, 1, 80)
    attr = explainer.explain(model, x)
    assert torch.allclose(attr, explainer.explain(model, x, target=model(x).argmax(1)))
    return attr


def test_integrated_gradients_completeness_from_zero_baseline(toy):
    # sum over samples and leads of IG = F(x) - F(0) for the target logit (Sundararajan et al. 2017)
    x = torch.randn(1, 1, 120)
    target = torch.tensor([1])
    attr = ecgzoo.create_explainer("integrated-gradients", n_steps=64, internal_batch_size=16).explain(toy, x, target)
    with torch.no_grad():
        delta = toy(x)[0, 1] - toy(torch.zeros_like(x))[0, 1]
    assert attr.sum().item() == pytest.approx(delta.item(), rel=0.02, abs=1e-3)


def test_saliency_sums_absolute_gradients_over_leads():
    torch.manual_seed(0)
    model = IdentityFeatures(gains=[2.0], w=[[3.0], [-1.0]]).eval()
    x = torch.randn(1, 1, 30)
    attr = ecgzoo.create_explainer("saliency").explain(model, x, target=torch.tensor([1]))
    assert torch.allclose(attr, torch.full((1, 30), 2.0 / 30), atol=1e-7)  # |d logit_1/dx| = |-1 * 2| / T
    signed = ecgzoo.create_explainer("saliency", absolute=False).explain(model, x, target=torch.tensor([1]))
    assert torch.allclose(signed, torch.full((1, 30), -2.0 / 30), atol=1e-7)


def test_occlusion_window_is_in_seconds_and_needs_the_sampling_rate(toy):
    occ = ecgzoo.create_explainer("occlusion", window_s=0.5, stride_s=0.1)
    assert occ.window_samples(fs=300) == (150, 30)
    assert occ.window_samples(fs=200) == (100, 20)
    with pytest.raises(ValueError, match=r"sampling rate is unknown; pass it \(explain\(..., fs=300\)\)"):
        occ.explain(toy, torch.randn(1, 1, 400))
    with pytest.raises(ValueError, match="longer than the input"):
        occ.explain(toy, torch.randn(1, 1, 100), fs=300)
    with pytest.raises(ValueError, match="sampled at 200 Hz but the option fs is 300 Hz"):
        ecgzoo.create_explainer("occlusion", fs=300).explain(toy, torch.randn(1, 1, 400), fs=200)
    # the rate travels with the call: the explainer's config is never changed behind its back
    occ.explain(toy, torch.randn(1, 1, 400), fs=300)
    assert occ.config.fs is None


# ---------------------------------------------------------------- alignment and sanity checks

FS = 100.0
SPIKE_AT = 173  # sample of the planted spike in a 3-s signal


def spike_detector() -> ecgzoo.EcgModel:
    """Toy CAM model set by hand: channel 0 fires only on a sharp spike (kernel -1 2 -1, bias -1)."""
    ecgzoo.register_plugin(toy_plugins)
    model = ecgzoo.create_model("toy", num_classes=2, width=1).eval()
    with torch.no_grad():
        model.conv.weight.copy_(torch.tensor([[[0.0, -1.0, 2.0, -1.0, 0.0]]]))
        model.conv.bias.fill_(-1.0)
        model.head.weight.copy_(torch.tensor([[-1.0], [1.0]]))  # class 1 = "spike present"
    return model


def spike_signal(seed: int = 0) -> torch.Tensor:
    """A slow wave as large as the spike (so the input alone does not point at the spike), noise, one spike."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(300) / FS
    x = torch.sin(2 * torch.pi * (1.1 + 0.2 * seed) * t + seed) * 2.0 + 0.02 * torch.randn(300, generator=g)
    x[SPIKE_AT] += 3.0
    return x[None, None]
    return x


@pytest.mark.parametrize("name", sorted(ALL))
def test_map_peaks_at_the_planted_spike(name):
    model = spike_detector()
    x = spike_signal()
    assert model(x).argmax(1).item() == 1
    attr = ecgzoo.create_explainer(name, **ALL[name]).explain(model, x)[0]
    tolerance = round(ALL[name].get("window_s", 0) * FS) // 2  # occlusion smears over half a window
    assert abs(int(attr.argmax()) - SPIKE_AT) <= tolerance, f"{name} peaks at {int(attr.argmax())}"


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    denom = a.norm() * b.norm()
    return float((a @ b) / denom) if denom > 0 else 0.0


def randomisation_correlations(explainer: ecgzoo.Explainer) -> list[float]:
    """Correlation of each record's map before and after re-initialising every weight of the spike detector."""
    model = spike_detector()
    x = torch.cat([spike_signal(s) for s in range(3)])
    target = torch.ones(3, dtype=torch.long)
    before = explainer.explain(model, x, target)
    torch.manual_seed(1)
    for module in model.modules():
        if hasattr(module, "reset_parameters") and module is not model:
            module.reset_parameters()
    after = explainer.explain(model, x, target)
    return [_correlation(before[i], after[i]) for i in range(3)]


@pytest.mark.parametrize("name", sorted(ALL))
def test_randomising_the_weights_changes_the_map(name):
    """Model-parameter randomisation test (Adebayo et al. 2018): a map that survives it ignores the model."""
    correlations = randomisation_correlations(ecgzoo.create_explainer(name, **ALL[name]))
    assert max(correlations) < 0.5, f"{name}: maps barely changed after randomisation {correlations}"


class InputMagnitude(ecgzoo.Explainer):
    """An 'explainer' that ignores the model (an edge detector on the input)."""

    def explain(self, model, x, target=None, valid_length=None):
        return x.abs().sum(dim=1)


def test_randomisation_check_catches_an_explainer_that_ignores_the_model():
    assert min(randomisation_correlations(InputMagnitude())) > 0.99


# ---------------------------------------------------------------- `ecgzoo explain`


@pytest.fixture
def tiny_run(tmp_path_factory):
    from run_helpers import register_toy, shared_run

    register_toy()
    return shared_run(tmp_path_factory)[0]


def _inputs(tmp_path, count: int = 2) -> list[str]:
    data = ecgzoo.get_dataset("synthetic", records=count, seconds=6.0, fs=300.0, seed=3)
    paths = []
    for rid in data.record_ids():
        path = tmp_path / f"{rid}.npy"
        np.save(path, data.load(rid).signal)
        paths.append(str(path))
    return paths


def test_explain_cli_writes_pictures_and_deletion_table(tiny_run, tmp_path):
    from run_helpers import cli

    out = tmp_path / "expl"
    inputs = _inputs(tmp_path)
    code, stdout, stderr = cli("explain", str(tiny_run), *inputs, "--fs", "300", "--explainer", "cam",
                               "--compare", "cam,gradcam,saliency", "--steps", "4", "--out", str(out))
    assert code == 0, stderr
    stems = [Path(p).stem for p in inputs]
    for stem in stems:
        assert (out / f"{stem}_cam.png").is_file()
        assert (out / f"{stem}_compare.png").is_file()
        assert f"{stem}: predicted " in stdout
    assert (out / "deletion_curves.png").is_file()
    table = json.loads((out / "deletion.json").read_text())
    assert [r["explainer"] for r in table["rows"]] == ["cam", "gradcam", "saliency", "random"]
    assert all(r["records"] == 2 and 0 <= r["auc_mean"] <= 1 for r in table["rows"])
    assert "deletion AUC" in stdout and "random" in stdout


def test_explain_cli_errors_name_the_problem(tiny_run, tmp_path):
    from run_helpers import cli

    inputs = _inputs(tmp_path, 1)
    code, _, stderr = cli("explain", str(tiny_run), *inputs, "--fs", "300", "--target", "Z", "--out", str(tmp_path / "o"))
    assert code != 0 and "--target 'Z' is not a class of this run" in stderr
    code, _, stderr = cli("explain", str(tiny_run), *inputs, "--fs", "300", "--set", "nope.x=1", "--out", str(tmp_path / "o"))
    assert code != 0 and "'nope' is not among the explainers" in stderr
    code, _, stderr = cli("explain", str(tiny_run), *inputs, "--explainer", "cam", "--out", str(tmp_path / "o"))
    assert code != 0 and "rate" in stderr  # .npy input without --fs


# ---------------------------------------------------------------- the reference CNNv7


@pytest.mark.parametrize("name", sorted(ALL))
def test_conformance_on_cnnv7_small(name):
    if "cnnv7-small" not in ecgzoo.list_models():
        pytest.skip("model plugin cnnv7-small is not installed")
    torch.manual_seed(0)
    model = ecgzoo.create_model("cnnv7-small", num_classes=4, filters=4, conv_a=8, conv_b=8).eval()
    options = {**ALL[name], "fs": 100.0, "window_s": 0.2, "stride_s": 0.2} if name == "occlusion" else ALL[name]
    attr = check_explainer_plugin(name, model, torch.randn(2, 1, 200), **options)
    assert attr.shape == (2, 200)


@pytest.mark.slow
def test_every_explainer_on_a_60_s_record_with_full_size_cnnv7():
    if "cnnv7" not in ecgzoo.list_models():
        pytest.skip("model plugin cnnv7 is not installed")
    torch.manual_seed(0)
    model = ecgzoo.create_model("cnnv7", num_classes=4).eval()
    x = torch.randn(1, 1, 18000)
    for name, options in {**ALL, "occlusion": {"fs": 300.0, "window_s": 2.0, "stride_s": 2.0}}.items():
        attr = ecgzoo.create_explainer(name, **options).explain(model, x)
        assert attr.shape == (1, 18000) and torch.isfinite(attr).all(), name


class BatchRecorder(IdentityFeatures):
    """Records the largest batch a forward pass sees."""

    def __init__(self):
        super().__init__(gains=[1.0], w=[[1.0], [-1.0]])
        self.largest = 0

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.largest = max(self.largest, x.shape[0])
        return super().forward_features(x)


def test_integrated_gradients_and_occlusion_evaluate_in_bounded_batches():
    model = BatchRecorder().eval()
    x = torch.randn(2, 1, 100)
    ecgzoo.create_explainer("integrated-gradients", n_steps=32, internal_batch_size=3).explain(model, x)
    assert model.largest <= 3 * 2  # never all 32 path points of both records at once
    model.largest = 0
    ecgzoo.create_explainer("occlusion", fs=100, window_s=0.1, stride_s=0.1, perturbations_per_eval=2).explain(model, x)
    assert model.largest <= 2 * 2


class MaskedToy(IdentityFeatures):
    """Masked pooling: padding does not count in the logits."""

    masked_pooling = True


@pytest.mark.parametrize("name", sorted(ALL))
def test_a_batch_with_valid_lengths_gives_the_maps_of_its_records_one_by_one(name):
    torch.manual_seed(0)
    model = MaskedToy(gains=[1.0, -0.5], w=[[1.0, 0.5], [-1.0, 2.0]]).eval()
    x = torch.randn(3, 1, 150)
    x[1, :, 100:] = 0
    x[2, :, 60:] = 0
    lengths = torch.tensor([150, 100, 60])
    options = {**ALL[name], "perturbations_per_eval": 3} if name == "occlusion" else ALL[name]
    if name == "integrated-gradients":
        options = {**options, "internal_batch_size": 3}
    explainer = ecgzoo.create_explainer(name, **options)
    batch = explainer.explain(model, x, None, lengths)
    for i in range(3):
        alone = explainer.explain(model, x[i:i + 1], None, lengths[i:i + 1])
        assert torch.allclose(batch[i], alone[0], atol=1e-5), f"{name}: record {i} differs inside a batch"
