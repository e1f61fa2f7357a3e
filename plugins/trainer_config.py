"""Options of the reference trainer `trainer` (`ecgzoo info trainer` lists them) and which of them a resumed run may change."""

from __future__ import annotations

from typing import Any, Literal

import pydantic

import ecgzoo

# options that may change between a run and its resumption without changing the result's meaning
RESUME_FREE = {"epochs", "patience", "progress", "num_workers", "resume", "device", "eval_batch_size", "save_every_batches"}
# model options that say where the weights started, not what is trained: a saved state resumes whatever they say
# (and states saved before the option existed still resume)
MODEL_RESUME_FREE = {"init_weights"}


class CallbackSpec(pydantic.BaseModel):
    """One entry of the trainer's `callbacks` option: a callback by name or import path, with its options."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str = pydantic.Field(
        min_length=1, description="a callback plugin's registered name (`ecgzoo list callback`) or an import path package.module:Class"
    )
    options: dict[str, Any] = pydantic.Field(
        default_factory=dict, description="the callback's options: its config (a plugin) or keyword arguments (an import path)"
    )

    @pydantic.model_validator(mode="before")
    @classmethod
    def _a_bare_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class TrainerConfig(ecgzoo.PluginConfig):
    """The reference trainer's options.

    Every lever below that acts during training (the learning-rate schedule, the weight average,
    early stopping, saving the resumable state, the progress bars, Ctrl-C) is a callback the trainer
    builds from these options (`ecgzoo.core.callback` states what a callback may do and when it is called).

    `callbacks` adds further callbacks, e.g. a third party's logger, each by the name its plugin
    registered (hook `ecgzoo_callbacks`, `ecgzoo list callback`) or by import path
    `package.module:Class`, with its options::

        [trainer]
        callbacks = ["my-logger", {name = "mypackage.callbacks:Recorder", options = {path = "hooks.txt"}}]

    They run after the trainer's own schedule, average and early stopping and before the state is
    saved, in the order listed; what each one's `state_dict()` returns is saved in `last.safetensors`,
    so a resumed run continues them too. The list is part of what a resumed run must repeat.
    """

    epochs: int = pydantic.Field(100, ge=1, description="training epochs (paper: 100)")
    batch_size: int = pydantic.Field(10, ge=1, description="records per training batch and process (paper: 10)")
    lr: float = pydantic.Field(1e-3, gt=0, description="Adam learning rate (paper: 1e-3, constant)")
    optimizer: Literal["adam", "adamw"] = pydantic.Field(
        "adam", description="adam (L2 weight decay, the paper's) or adamw (decoupled weight decay)"
    )
    weight_decay: float = pydantic.Field(0.0, ge=0, description="weight decay (adam: L2 penalty; adamw: decoupled)")
    class_weighting: Literal["inverse-frequency", "sqrt-inverse-frequency", "none"] = pydantic.Field(
        "inverse-frequency",
        description="cross-entropy class weights: inverse class frequency of the training split (ecgzoo.data.splits.class_weights), "
                    "its square root, or none",
    )
    label_smoothing: float = pydantic.Field(0.0, ge=0, lt=1, description="cross-entropy label smoothing")
    selection_metric: Literal["challenge_f1", "macro_f1", "accuracy", "loss", "macro_auroc", "f_max"] = pydantic.Field(
        "challenge_f1", description="validation figure that picks the best epoch (loss: lowest wins); multi-label tasks: "
        "macro_auroc, f_max, macro_f1 or loss (a single-label figure means macro_auroc)"
    )
    pos_weight: Literal["none", "balanced"] = pydantic.Field(
        "none", description="multi-label tasks: per-class positive weights of the binary cross-entropy "
        "(balanced: negatives / positives of the training split)"
    )
    patience: int | None = pydantic.Field(
        None, ge=1, description="stop after this many epochs without a better validation score (None: all epochs)"
    )
    lr_schedule: Literal["constant", "cosine", "step", "warmup-cosine"] = pydantic.Field(
        "constant",
        description="learning-rate schedule: constant, cosine or step (stepped once per epoch), or warmup-cosine (linear warm-up over "
        "warmup_epochs, then cosine to zero at the last batch; stepped every batch)",
    )
    warmup_epochs: float = pydantic.Field(0.5, ge=0, description="warmup-cosine schedule: epochs of linear warm-up")
    lr_step_size: int = pydantic.Field(30, ge=1, description="step schedule: epochs between learning-rate drops")
    lr_gamma: float = pydantic.Field(0.1, gt=0, le=1, description="step schedule: factor of each drop")
    grad_clip: float | None = pydantic.Field(None, gt=0, description="clip the global gradient norm to this value (None: no clipping)")
    seed: int | None = pydantic.Field(
        None, ge=0, description="seed of python, numpy and torch generators and of the shuffling (None: the run's seed; 0 alone)"
    )
    precision: Literal["fp32", "bf16", "fp16"] = pydantic.Field(
        "fp32",
        description="fp32, or autocast: bf16 (CUDA, or CPUs; fast where the CPU has bf16 instructions, e.g. AVX512-BF16/AMX) or fp16 "
                    "(CUDA only, with gradient scaling)"
    )
    ema_decay: float | None = pydantic.Field(
        None, ge=0, lt=1,
        description="keep an exponential moving average of the weights with this decay per batch; validation and the best checkpoint use "
                    "the average (None or 0: off)"
    )
    crop_samples: int | None = pydantic.Field(
        None, ge=1,
        description="train on a random window of this many samples of each record's valid part, new every epoch (validation sees whole "
                    "records; None: whole records)"
    )
    augment_scale: tuple[float, float] | None = pydantic.Field(
        None, description="multiply each training record by a uniform random factor in [low, high]"
    )
    augment_flip: bool = pydantic.Field(False, description="invert each training record's polarity with probability 1/2")
    augment_noise: float = pydantic.Field(
        0.0, ge=0, description="add Gaussian noise of this standard deviation (signal units) to training records"
    )
    device: Literal["auto", "cpu", "cuda"] = pydantic.Field("auto", description="auto: cuda when available, else cpu")
    num_workers: int = pydantic.Field(0, ge=0, description="DataLoader worker processes")
    eval_batch_size: int = pydantic.Field(16, ge=1, description="records per validation batch (full-size 60-s inputs take GBs per 16)")
    save_every_batches: int = pydantic.Field(
        0, ge=0, description="also save a resumable state every N training batches (0: only after each epoch)"
    )
    resume: bool = pydantic.Field(True, description="continue from checkpoint_dir/last.safetensors when it exists")
    progress: bool = pydantic.Field(True, description="show a progress bar per epoch on stderr (false: quiet)")
    callbacks: list[CallbackSpec] = pydantic.Field(
        default_factory=list,
        description="more training-loop callbacks, each a registered callback name or package.module:Class, or a table "
                    "{name = ..., options = {...}}; called after the trainer's own, their state saved with the training's",
    )
