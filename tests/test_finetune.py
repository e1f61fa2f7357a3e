"""Fine-tuning from pretrained weights: create_model(..., num_classes=K, in_leads=L) and `ecgzoo run --init`."""

from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import pytest
import torch
from run_helpers import cli

import ecgzoo
from ecgzoo.core.manifest import InputContract, PretrainedError, PretrainedManifest
from ecgzoo.models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint, seed_everything
from ecgzoo.models.finetune import adapt_pretrained
from ecgzoo.models.pretrained import find_manifest, weights_path
from ecgzoo.training.run_config import read_config_file, resolve_run_config

SHIPPED = "cnnv7-s8:physionet2017"


def shipped_state() -> tuple[PretrainedManifest, dict[str, torch.Tensor]]:
    manifest = find_manifest(SHIPPED)
    return manifest, load_checkpoint(weights_path(manifest))[0]


def declare(*manifests: PretrainedManifest, name: str = "finetune-test-weights") -> None:
    """A plugin whose `ecgzoo_pretrained` hook returns these manifests."""
    ecgzoo.register_plugin(types.SimpleNamespace(ecgzoo_pretrained=ecgzoo.hookimpl(lambda: list(manifests))), name)


def test_finetuning_loads_the_shipped_layers_unchanged_and_replaces_head_and_stem():
    manifest, shipped = shipped_state()
    model = ecgzoo.create_model("cnnv7-s8", pretrained="physionet2017", num_classes=3, in_leads=12)
    state, summary = model.state_dict(), model.init_summary
    assert set(summary.replaced) == {"head.weight", "input_conv.weight"}
    assert summary.replaced == {"head.weight": "classes 4 -> 3", "input_conv.weight": "leads 1 -> 12"}
    assert set(summary.loaded) == set(state) - set(summary.replaced) and len(summary.loaded) == len(shipped) - 2
    for key in summary.loaded:
        assert torch.equal(state[key], shipped[key]), f"{key} is not the shipped tensor"
    assert state["head.weight"].shape == (3, shipped["head.weight"].shape[1])
    assert state["input_conv.weight"].shape == (shipped["input_conv.weight"].shape[0], 12, shipped["input_conv.weight"].shape[2])
    assert summary.line() == (f"initial weights {SHIPPED} (sha256 {manifest.sha256[:12]}): loaded {len(shipped) - 2} tensors, "
                              "replaced head.weight (classes 4 -> 3); input_conv.weight (leads 1 -> 12)")
    assert model.config.init_weights == f"{SHIPPED} sha256:{manifest.sha256}"
    assert (model.num_classes, model.in_leads, model.config.filters) == (3, 12, 64)  # the weights' own architecture
    assert not model.training and model(torch.zeros(2, 12, 2400)).shape == (2, 3)


def test_the_origin_survives_a_checkpoint_round_trip(tmp_path):
    model = ecgzoo.create_model(SHIPPED, num_classes=3)
    again = model_from_checkpoint(save_checkpoint(tmp_path / "m.safetensors", model))
    assert again.config.init_weights == model.config.init_weights == f"{SHIPPED} sha256:{find_manifest(SHIPPED).sha256}"


def test_same_classes_and_leads_is_the_plain_pretrained_model():
    plain = ecgzoo.create_model("cnnv7-s8", pretrained="physionet2017").state_dict()
    same = ecgzoo.create_model("cnnv7-s8", pretrained="physionet2017", num_classes=4, in_leads=1)
    assert same.init_summary.replaced == {} and set(same.init_summary.loaded) == set(plain)
    assert all(torch.equal(v, plain[k]) for k, v in same.state_dict().items())


def test_other_class_names_of_the_same_count_replace_the_head():
    model = adapt_pretrained(SHIPPED, classes=["a", "b", "c", "d"])
    assert model.init_summary.replaced == {"head.weight": "classes N,A,O,~ -> a,b,c,d"}
    assert adapt_pretrained(SHIPPED, classes=["N", "A", "O", "~"]).init_summary.replaced == {}


def test_options_that_change_the_network_are_refused():
    beyond = r"options filters=32 change the network beyond the head and the stem \(tensors blocks.0.filter_conv.weight"
    with pytest.raises(PretrainedError, match=beyond):
        adapt_pretrained(SHIPPED, num_classes=3, filters=32)
    kept = adapt_pretrained(SHIPPED, num_classes=3, dropout=0.5)  # changes no shape: allowed
    assert kept.config.dropout == 0.5 and set(kept.init_summary.replaced) == {"head.weight"}
    with pytest.raises(PretrainedError, match="takes the weights' own options"):
        ecgzoo.create_model(SHIPPED, num_classes=3, filters=32)


def test_damaged_weights_are_refused_when_fine_tuning(tmp_path):
    manifest = find_manifest(SHIPPED)
    shutil.copy(weights_path(manifest), tmp_path / manifest.file)
    data = bytearray((tmp_path / manifest.file).read_bytes())
    data[-100] ^= 1
    (tmp_path / manifest.file).write_bytes(bytes(data))
    declare(manifest.model_copy(update={"tag": "damaged", "folder": str(tmp_path)}))
    with pytest.raises(PretrainedError, match=r"is damaged: SHA-256 .* the manifest says"):
        ecgzoo.create_model("cnnv7-s8", pretrained="damaged", num_classes=3)


#: tiny members of every family, and the tensors that take the classes / the leads (read off the code)
FAMILIES = {
    "cnnv7": ({"filters": 4, "conv_a": 4, "conv_b": 4, "dilations": [2, 4]}, ["head.weight"], ["input_conv.weight"]),
    "deepecg13": ({"layers": [[4, 5, 1], [4, 3, 2]], "pool_after": [1]}, ["head.weight"], ["layers.0.1.weight"]),
    "xresnet1d50": ({"width": 2, "stem": [4, 4], "layers": [1, 1]}, ["head.weight"], ["stem.0.0.weight"]),
    "xresnet1d101": ({"width": 2, "stem": [4], "head": "concat-mlp", "head_hidden": 4},
                     ["head.mlp.6.bias", "head.mlp.6.weight"], ["stem.0.0.weight"]),
    "inception1d": ({"depth": 3, "filters": 2, "bottleneck": 2, "kernel_size": 8}, ["head.weight"],
                    ["backbone.blocks.0.bottleneck.weight", "backbone.blocks.0.pool_branch.1.weight",
                     "backbone.shortcuts.0.project.0.weight"]),
}


def tiny_weights(folder: Path, model: str, options: dict) -> tuple[PretrainedManifest, dict[str, torch.Tensor]]:
    """Weights of a tiny 4-class 1-lead `model` saved and declared as MODEL:tiny (with a manifest that verifies them)."""
    import hashlib

    net = ecgzoo.create_model(model, num_classes=4, in_leads=1, **options)
    path = save_checkpoint(folder / f"{model}.safetensors", net, {"classes": list("NAO~")})
    manifest = PretrainedManifest(
        model=model, tag="tiny", file=path.name, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), size=path.stat().st_size,
        classes=list("NAO~"), input=InputContract(fs=100, leads=1, units="mV", window_seconds=10, pipeline=[]),
        license_weights="MIT", license_data="CC0", training_command="(a test)", folder=str(folder))
    return manifest, {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_is_fine_tuned_by_shape(tmp_path, family):
    options, class_tensors, lead_tensors = FAMILIES[family]
    manifest, pretrained = tiny_weights(tmp_path, family, options)
    declare(manifest, name=f"tiny-{family}")
    model = ecgzoo.create_model(family, pretrained="tiny", num_classes=3, in_leads=12)
    summary = model.init_summary
    assert summary.replaced == {**{k: "classes 4 -> 3" for k in class_tensors}, **{k: "leads 1 -> 12" for k in lead_tensors}}
    assert set(summary.loaded) == set(pretrained) - set(summary.replaced)
    state = model.state_dict()
    assert all(torch.equal(state[k], pretrained[k]) for k in summary.loaded)
    assert all(state[k].shape != pretrained[k].shape for k in summary.replaced)
    assert model(torch.randn(2, 12, 400)).shape == (2, 3)
    leads_only = ecgzoo.create_model(family, pretrained="tiny", in_leads=2).init_summary
    assert sorted(leads_only.replaced) == sorted(lead_tensors)


# ---------------------------------------------------------------------------------------- ecgzoo run --init

RUN_SETS = ["dataset.records=12", "dataset.seconds=4", 'preprocessing=[{name = "zscore"}, {name = "pad-crop", seconds = 4.0}]',
            "trainer.batch_size=4", "trainer.progress=true", "report.examples_per_class=0", "device=cpu",
            "trainer_plugin=recording-trainer", "eval_batch_size=8"]

#: what the recording trainer saw, one entry per fit call
FITS: list[dict] = []


class RecordingTrainer(ecgzoo.Trainer):
    """The reference trainer, recording the weights `fit` is given and how many training batches it runs;
    with `stop_after_fit` it then raises, as an interruption after the trainer saved its state would."""

    stop_after_fit = False

    def __init__(self, config):
        from ecgzoo_plugins.trainer import ReferenceTrainer

        self.config, self.inner = config, ReferenceTrainer(config)

    def fit(self, model, train, val, task, ctx):
        seen = {"state": {k: v.detach().clone() for k, v in model.state_dict().items()}, "train_batches": 0}
        hook = model.register_forward_hook(lambda m, i, o: seen.__setitem__("train_batches", seen["train_batches"] + m.training))
        try:
            result = self.inner.fit(model, train, val, task, ctx)
        finally:
            hook.remove()
        seen["history"] = result.history()
        FITS.append(seen)
        if RecordingTrainer.stop_after_fit:
            raise RuntimeError("interrupted (test)")
        return result


def register_recording_trainer() -> None:
    from ecgzoo_plugins.trainer import TrainerConfig

    plugin = types.SimpleNamespace(ecgzoo_trainers=ecgzoo.hookimpl(
        lambda: [ecgzoo.PluginSpec("recording-trainer", RecordingTrainer, TrainerConfig, summary="reference trainer, recorded")]))
    ecgzoo.register_plugin(plugin, "recording-trainer")


def init_run(root: Path, *extra: str) -> tuple[int, str, str]:
    args = ["run", "cnnv7-s8", "synthetic", "--init", SHIPPED, "--output-dir", str(root), "--name", "ft"]
    for item in [*RUN_SETS, *extra]:
        args += ["--set", item]
    return cli(*args)


@pytest.fixture(scope="module")
def interrupted_then_resumed(tmp_path_factory):
    """An --init run stopped after its first epoch (trainer state saved), then repeated with 2 epochs: it resumes."""
    root = tmp_path_factory.mktemp("finetune-runs")
    FITS.clear()
    ecgzoo.reset_registry()
    register_recording_trainer()
    RecordingTrainer.stop_after_fit = True
    try:
        with pytest.raises(RuntimeError, match="interrupted"):
            init_run(root, "trainer.epochs=1")
    finally:
        RecordingTrainer.stop_after_fit = False
    code, out, err = init_run(root, "trainer.epochs=2")
    assert code == 0, err
    ecgzoo.reset_registry()
    return root / "ft", err, list(FITS)


def test_init_run_starts_from_the_adapted_pretrained_weights(interrupted_then_resumed):
    run_dir, err, fits = interrupted_then_resumed
    seed_everything(0)  # the run's seed, set before the model is built
    expected = ecgzoo.create_model("cnnv7-s8", pretrained="physionet2017", num_classes=3, in_leads=1).state_dict()
    _, shipped = shipped_state()
    step0 = fits[0]["state"]
    assert set(step0) == set(expected)
    assert all(torch.equal(step0[k], expected[k]) for k in expected), "fit was not given the adapted pretrained weights"
    assert all(torch.equal(step0[k], shipped[k]) for k in shipped if k != "head.weight")
    assert step0["head.weight"].shape == (3, shipped["head.weight"].shape[1])
    manifest = find_manifest(SHIPPED)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["init"] == {"weights": SHIPPED, "sha256": manifest.sha256, "loaded_tensors": len(shipped) - 1,
                            "replaced": {"head.weight": "classes 4 -> 3"}}
    assert f"initial weights {SHIPPED} (sha256 {manifest.sha256[:12]}): loaded {len(shipped) - 1} tensors" in err
    assert f"Initial weights: **{SHIPPED}** (SHA-256 `{manifest.sha256}`)" in (run_dir / "report.md").read_text()
    _, meta = load_checkpoint(run_dir / "checkpoints" / "best.safetensors")
    assert meta["model_config"]["init_weights"] == f"{SHIPPED} sha256:{manifest.sha256}"


def test_init_repeats_from_the_runs_config(interrupted_then_resumed):
    run_dir, _, _ = interrupted_then_resumed
    assert read_config_file(run_dir / "config.json")["init"] == SHIPPED
    assert resolve_run_config("cnnv7-s8", "synthetic", config_file=run_dir / "config.json").init == SHIPPED


def test_interrupted_init_run_resumes_from_the_trainers_state_not_the_init(interrupted_then_resumed):
    run_dir, err, fits = interrupted_then_resumed
    first, second = fits
    assert "resuming from" in err and "(epoch 2, batch 0)" in err
    assert first["train_batches"] > 0 and second["train_batches"] == first["train_batches"]  # only epoch 2 was trained again
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and history[0] == first["history"][0]


def test_wrong_init_is_refused_before_any_work(tmp_path):
    code, _, err = cli("run", "cnnv7", "synthetic", "--init", SHIPPED, "--output-dir", str(tmp_path))
    assert code == 2 and "weights of model 'cnnv7-s8', the run trains model 'cnnv7'" in err and "Traceback" not in err
    code, _, err = cli("run", "cnnv7-s8", "synthetic", "--init", "cnnv7-s8:nope", "--output-dir", str(tmp_path))
    assert code == 2 and "no pretrained weights 'cnnv7-s8:nope'" in err
    code, _, err = cli("run", "cnnv7-s8", "synthetic", "--set", "model.init_weights=x", "--output-dir", str(tmp_path))
    assert code == 2 and "'init_weights' is a record set by `ecgzoo run --init" in err
    code, _, err = cli("run", "cnnv7-s8", "synthetic", "--init", SHIPPED, "--set", "model.conv_b=32", "--output-dir", str(tmp_path))
    assert code == 2 and "model options conv_b=32 change the network beyond the head and the stem (tensors conv_b.0.weight" in err
    assert not list(tmp_path.iterdir())  # refused before a run folder was made


def test_a_training_state_resumes_whatever_the_model_says_about_where_its_weights_started():
    """A state saved before `init_weights` existed (or with another origin) still resumes: the
    resume fingerprint leaves the origin out (it changed nothing the saved state holds)."""
    trainer = ecgzoo.create_trainer("trainer")
    plain = ecgzoo.create_model("cnnv7-small", num_classes=3)
    started = ecgzoo.create_model("cnnv7-small", num_classes=3)
    started.config.init_weights = "cnnv7-s8:physionet2017 sha256:" + "0" * 64
    fingerprints = [trainer._fingerprint(m, ["A", "B", "C"], 10, 2, 1) for m in (plain, started)]
    assert fingerprints[0] == fingerprints[1] and "init_weights" not in fingerprints[0]["model_config"]
    assert fingerprints[0]["model_config"]["filters"] == 16  # the architecture still counts


def test_a_state_whose_fingerprint_still_names_init_weights_resumes(tmp_path):
    trainer = ecgzoo.create_trainer("trainer")
    model = ecgzoo.create_model("cnnv7-small", num_classes=3)
    fingerprint = trainer._fingerprint(model, ["A", "B", "C"], 10, 2, 1)
    older = {**fingerprint, "model_config": {**fingerprint["model_config"], "init_weights": None}}
    trainer._check_resumable({"kind": "training-state", "fingerprint": older}, fingerprint, tmp_path / "last.safetensors")
    changed = {**older, "model_config": {**older["model_config"], "filters": 8}}
    with pytest.raises(Exception, match="belongs to another training.*filters"):
        trainer._check_resumable({"kind": "training-state", "fingerprint": changed}, fingerprint, tmp_path / "last.safetensors")
