"""Reference trainer `trainer`: the paper's recipe, resumable to the bit, data-parallel when asked.

Defaults follow REFERENCE.md section 4: Adam at a constant 1e-3, batch size 10, 100 epochs,
cross-entropy weighted by inverse class frequency of the training split (Keras-style: each
record's loss times its class weight, averaged over the batch), model selection by the
validation challenge F1 (mean F1 of N, A, O). Options add early stopping, cosine/step LR
schedules, gradient clipping, bf16/fp16 autocast on CUDA and DistributedDataParallel
(see `ecgzoo.training.distributed`).

Files in `checkpoint_dir` (rank 0 only):
  best.safetensors   weights of the best validation epoch (+ its metrics); `ecgzoo.models.checkpoint.model_from_checkpoint`
  last.safetensors   full training state (weights, optimizer, scheduler, RNG of every rank, position in the
                     epoch, history): written after every epoch and every `save_every_batches` batches
  metrics.jsonl      one JSON line per finished epoch, flushed and fsynced as it is written

Calling `fit` again with the same arguments continues from `last.safetensors` (after SIGKILL, a
crash or Ctrl-C); with the same seed the result is bit-for-bit that of an uninterrupted run.
Ctrl-C finishes the current batch, saves, then raises KeyboardInterrupt; a second Ctrl-C aborts.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import pydantic
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm import tqdm

import ecgzoo
from ecgzoo.plugin_api import (
    CheckpointError,
    class_weights,
    cudnn_flags_restored,
    distributed,
    dumps,
    load_checkpoint_bytes,
    metrics_from_confusion,
    multilabel_training,
    rng_state,
    run_progress,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    write_bytes_atomic,
)
from ecgzoo_plugins.augment import BatchAugment

ml = multilabel_training

BEST, LAST, METRICS = "best.safetensors", "last.safetensors", "metrics.jsonl"
# options that may change between a run and its resumption without changing the result's meaning
_RESUME_FREE = {"epochs", "patience", "progress", "num_workers", "resume", "device", "eval_batch_size", "save_every_batches"}
# model options that say where the weights started, not what is trained: a saved state resumes whatever they say
# (and states saved before the option existed still resume)
_MODEL_RESUME_FREE = {"init_weights"}


class TrainerConfig(ecgzoo.PluginConfig):
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


def _labels_of(dataset: torch.utils.data.Dataset) -> np.ndarray:
    """Class indices of all items: a `labels` attribute when the dataset has one, else by reading items."""
    if isinstance(dataset, Subset):
        return _labels_of(dataset.dataset)[np.asarray(dataset.indices, dtype=np.int64)]
    labels = getattr(dataset, "labels", None)
    if labels is not None and len(labels) == len(dataset):
        return np.asarray(labels, dtype=np.int64)
    return np.array([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def warmup_cosine(step: int, warm: int, total: int) -> float:
    """Learning-rate factor at batch `step`: linear from 1/(warm+1) to 1 over `warm` batches, then cosine to 0 at `total`."""
    if step < warm:
        return (step + 1) / (warm + 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warm, total - warm) / max(total - warm, 1)))


class WeightAverage:
    """Exponential moving average of a model's weights (floating-point entries; others copied).

    The decay ramps up as min(decay, (1 + n) / (10 + n)) after n updates, so the first batches'
    weights do not dominate the average of a short run.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.state = {n: t.detach().clone() for n, t in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, value in model.state_dict().items():
            avg = self.state[name]
            if avg.is_floating_point():
                avg.lerp_(value.detach(), 1.0 - d)
            else:
                avg.copy_(value)

    @contextlib.contextmanager
    def swapped_in(self, model: torch.nn.Module):
        """Load the average into `model` for the block, then restore the trained weights."""
        current = {n: t.detach().clone() for n, t in model.state_dict().items()}
        model.load_state_dict(self.state)
        try:
            yield model
        finally:
            model.load_state_dict(current)

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "weights": dict(self.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        for name, value in state["weights"].items():
            self.state[name].copy_(value)


class _StopRequest:
    """First Ctrl-C asks to stop after the current batch; a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if distributed.is_main_process():
            print("\necgzoo: stopping after this batch and saving (Ctrl-C again to abort now)", file=sys.stderr, flush=True)

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _ignore_sigint(_: int) -> None:
    """DataLoader workers leave Ctrl-C to the main process, which stops cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _ResumableSampler(DistributedSampler):
    """DistributedSampler (same shuffling per epoch and rank) that can skip the batches already done."""

    def __init__(self, n: int, ctx: distributed.DistContext, seed: int) -> None:
        super().__init__(range(n), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed)
        self.start = 0

    def __iter__(self):  # type: ignore[override]
        return iter(list(super().__iter__())[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start


class ReferenceTrainer(ecgzoo.Trainer):
    """The paper's training recipe with resumable, optionally distributed, training."""

    def __init__(self, config: TrainerConfig) -> None:
        self.config = config
        self._multi = False

    # ---------------------------------------------------------------- set-up
    def _device(self, ctx: distributed.DistContext) -> torch.device:
        want = self.config.device
        if want == "cuda" and not torch.cuda.is_available():
            raise ValueError("trainer option device='cuda' but no CUDA device is available (use device='cpu' or 'auto')")
        use_cuda = want == "cuda" or (want == "auto" and torch.cuda.is_available())
        if self.config.precision == "fp16" and not use_cuda:
            raise ValueError(
                "trainer option precision='fp16' needs a CUDA device; this run trains on cpu (use precision='bf16' or 'fp32')"
            )
        return torch.device("cuda", ctx.local_rank if ctx.enabled else torch.cuda.current_device()) if use_cuda else torch.device("cpu")

    def _fingerprint(self, model: ecgzoo.EcgModel, classes: list[str], n_train: int, n_val: int, world: int) -> dict[str, Any]:
        trainer = {k: v for k, v in self.config.model_dump(mode="json").items() if k not in _RESUME_FREE}
        if self.config.lr_schedule in ("cosine", "warmup-cosine"):
            trainer["epochs"] = self.config.epochs
        config = getattr(model, "config", None)
        return {
            "model": getattr(model, "plugin_name", type(model).__name__),
            "model_config": {k: v for k, v in config.model_dump(mode="json").items() if k not in _MODEL_RESUME_FREE}
            if config is not None else {},
            "classes": list(classes), "n_train": n_train, "n_val": n_val, "world_size": world, "trainer": trainer,
        }

    # ---------------------------------------------------------------- the Trainer contract
    def fit(self, model: ecgzoo.EcgModel, train: torch.utils.data.Dataset, val: torch.utils.data.Dataset,
            task: ecgzoo.TrainingTask, ctx: ecgzoo.FitContext) -> ecgzoo.FitResult:
        """`ecgzoo.Trainer.fit`: the run's device and seed apply unless this trainer's own options set them;
        the resumable state lives in `ctx.checkpoint_dir` (a private temporary folder when None)."""
        update: dict[str, Any] = {}
        if self.config.device == "auto":
            update["device"] = ctx.device
        if self.config.seed is None:
            update["seed"] = ctx.seed
        if self.config.precision == "fp32" and ctx.precision != "fp32":
            update["precision"] = ctx.precision
        run = ReferenceTrainer(self.config.model_copy(update=update))
        run.scored_classes = getattr(task, "scored_classes", None)
        with contextlib.ExitStack() as stack:
            folder = ctx.checkpoint_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ecgzoo-fit-")))
            history = run.train_and_checkpoint(model, train, val, list(task.classes), folder, task)
        return _fit_result(model, history)

    # ---------------------------------------------------------------- training
    scored_classes: tuple[str, ...] | None = None  #: what challenge_f1 averages (the task's); None: 0.1's default

    @cudnn_flags_restored()  # the deterministic cuDNN flags set below hold for this call only
    def train_and_checkpoint(
        self,
        model: ecgzoo.EcgModel,
        train: torch.utils.data.Dataset,
        val: torch.utils.data.Dataset,
        classes: list[str],
        checkpoint_dir: Path,
        task: ecgzoo.Task | None = None,
    ) -> list[dict[str, Any]]:
        """Train with this trainer's own files in `checkpoint_dir` (best, last, metrics.jsonl); resumes from
        `last.safetensors`; returns the history rows and leaves the best weights in `model`.

        Stages: set up (checks, optimizer, schedule, averaging) -> resume -> epochs (batches, then
        validation, best weights, state saved) -> best weights loaded.
        """
        if self.config.seed is None:
            self.config = self.config.model_copy(update={"seed": 0})
        self._multi = task is not None and task.multi  # multi-label: sigmoid + BCE (ecgzoo.training.multilabel_training)
        f = self._setup(model, train, val, list(classes), Path(checkpoint_dir))
        self._resume(f)
        net: torch.nn.Module = model
        if f.ctx.enabled:
            net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[f.device.index] if f.device.type == "cuda" else None)
        done = f.st["stopped_early"] or f.st["epoch"] >= f.cfg.epochs
        sampler = _ResumableSampler(len(train), f.ctx, f.cfg.seed)
        with _StopRequest() as stop:
            while not done:
                done = self._epoch(f, net, train, val, sampler, stop)
        if f.st["stopped_early"] and f.ctx.is_main and f.cfg.progress:
            print(f"ecgzoo: early stop after epoch {f.st['epoch']} (best epoch {f.st['best_epoch']})", file=sys.stderr)
        if f.ctx.enabled:
            # the DDP wrapper sits in reference cycles; collect it while the process group is alive,
            # else gloo may abort the process at interpreter exit
            del net
            gc.collect()
        if f.best_state is not None:
            model.load_state_dict(f.best_state)
        return list(f.st["history"])

    def _setup(self, model: ecgzoo.EcgModel, train: torch.utils.data.Dataset, val: torch.utils.data.Dataset,
               classes: list[str], checkpoint_dir: Path) -> SimpleNamespace:
        """Checks, class weights, seeds, optimizer, schedule, augmentation, averaging, scaler: the fit's state."""
        cfg = self.config
        ctx = distributed.setup("cuda" if cfg.device == "cuda" else "cpu")
        device = self._device(ctx)
        k = len(classes)
        if len(train) == 0 or len(val) == 0:
            raise ValueError(f"trainer needs records in both splits, got {len(train)} training and {len(val)} validation records")
        if getattr(model, "num_classes", k) != k:
            raise ValueError(f"model has {model.num_classes} outputs but there are {k} classes {classes}")
        labels = _labels_of(train)
        if self._multi:
            weight_t = ml.pos_weights(labels, cfg.pos_weight)
            weight_t = weight_t.to(device) if weight_t is not None else None
        else:
            if cfg.selection_metric in ("macro_auroc", "f_max"):
                raise ValueError(
                    f"trainer option selection_metric={cfg.selection_metric!r} is for multi-label tasks; this task is single-label")
            if labels.min() < 0 or labels.max() >= k:
                raise ValueError(f"training labels must be class indices 0..{k - 1} ({classes}), found {int(labels.max())}")
            weights = class_weights(labels, k) if cfg.class_weighting != "none" else np.ones(k, dtype=np.float32)
            if cfg.class_weighting == "sqrt-inverse-frequency":
                weights = np.sqrt(weights).astype(np.float32)
            weight_t = torch.tensor(weights, dtype=torch.float32, device=device)

        if device.type == "cuda":
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        seed_everything(cfg.seed + ctx.rank)
        model.to(device)
        optimizer_class = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        optimizer = optimizer_class(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = self._scheduler(optimizer, math.ceil(math.ceil(len(train) / ctx.world_size) / cfg.batch_size))
        st: dict[str, Any] = {
            "epoch": 0, "batch": 0, "history": [], "best_score": None, "best_epoch": None, "bad_epochs": 0,
            "stopped_early": False, "running": {"loss_sum": 0.0, "count": 0, "confusion": [[0] * k for _ in range(k)]},
        }
        return SimpleNamespace(
            cfg=cfg, ctx=ctx, device=device, model=model, classes=classes, k=k, optimizer=optimizer, scheduler=scheduler,
            weight_t=weight_t,
            per_batch_schedule=cfg.lr_schedule == "warmup-cosine",
            augment=BatchAugment(cfg.crop_samples, cfg.augment_scale, cfg.augment_flip, cfg.augment_noise),
            ema=WeightAverage(model, cfg.ema_decay) if cfg.ema_decay else None,
            scaler=torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None,
            amp_dtype={"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision),
            fingerprint=self._fingerprint(model, classes, len(train), len(val), ctx.world_size), st=st, best_state=None,
            checkpoint_dir=checkpoint_dir, last_path=checkpoint_dir / LAST, best_path=checkpoint_dir / BEST,
            metrics_path=checkpoint_dir / METRICS, t_fit=time.perf_counter(), epoch_walls=[],
        )

    def _resume(self, f: SimpleNamespace) -> None:
        """Continue from last.safetensors (rank 0 reads, every rank receives) or start metrics.jsonl afresh."""
        if f.ctx.is_main:
            f.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        last_path = f.last_path
        data = distributed.broadcast_bytes(last_path.read_bytes() if f.cfg.resume and f.ctx.is_main and last_path.is_file() else None)
        if data is None:
            if f.ctx.is_main:
                write_bytes_atomic(f.metrics_path, b"")
            return
        state, meta = load_checkpoint_bytes(data, str(last_path))
        self._check_resumable(meta, f.fingerprint, last_path)
        f.model.load_state_dict(state)
        f.optimizer.load_state_dict(meta["optimizer"])
        for part, key in ((f.scheduler, "scheduler"), (f.scaler, "scaler"), (f.ema, "ema")):
            if part is not None:
                part.load_state_dict(meta[key])
        f.st.update({key: meta[key] for key in f.st})
        best_data = distributed.broadcast_bytes(f.best_path.read_bytes() if f.ctx.is_main and f.best_path.is_file() else None)
        if best_data is not None:
            f.best_state = {n: t.to(f.device) for n, t in load_checkpoint_bytes(best_data, str(f.best_path))[0].items()}
        set_rng_state(meta["rng"][f.ctx.rank])
        if f.ctx.is_main:
            write_bytes_atomic(f.metrics_path, "".join(dumps(h) + "\n" for h in f.st["history"]).encode())
            if f.cfg.progress:
                print(f"ecgzoo: resuming from {last_path} (epoch {f.st['epoch'] + 1}, batch {f.st['batch']})", file=sys.stderr)

    def _save_last(self, f: SimpleNamespace, finished: bool = False) -> None:
        """The whole training state (every rank's RNG gathered) to last.safetensors, by rank 0."""
        rngs = distributed.all_gather_objects(rng_state())
        if not f.ctx.is_main:
            return
        meta = {
            **f.st, "kind": "training-state", "classes": f.classes, "finished": finished, "fingerprint": f.fingerprint,
            "trainer_config": f.cfg.model_dump(mode="json"), "optimizer": f.optimizer.state_dict(),
            "scheduler": f.scheduler.state_dict() if f.scheduler is not None else None,
            "scaler": f.scaler.state_dict() if f.scaler is not None else None, "rng": rngs,
            "ema": f.ema.state_dict() if f.ema is not None else None,
        }
        save_checkpoint(f.last_path, f.model, meta)

    def _stop_saved(self, f: SimpleNamespace, bar: Any) -> None:
        """Every rank has agreed to stop and rank 0 has saved: say so and raise KeyboardInterrupt."""
        distributed.barrier()  # rank 0 has written the state before any rank leaves
        bar.close()
        if f.ctx.is_main:
            print(f"ecgzoo: training state saved to {f.last_path}", file=sys.stderr)  # the caller says how to continue
        raise KeyboardInterrupt

    def _epoch(self, f: SimpleNamespace, net: torch.nn.Module, train: torch.utils.data.Dataset, val: torch.utils.data.Dataset,
               sampler: _ResumableSampler, stop: _StopRequest) -> bool:
        """One epoch (from the saved position inside it), its validation and bookkeeping; True when training is done."""
        cfg, st, epoch = f.cfg, f.st, f.st["epoch"]
        sampler.set_epoch(epoch)
        sampler.start = st["batch"] * cfg.batch_size
        loader = DataLoader(
            train, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
            generator=torch.Generator().manual_seed(cfg.seed + epoch),
            worker_init_fn=_ignore_sigint if cfg.num_workers else None, pin_memory=f.device.type == "cuda",
        )
        bar = tqdm(
            total=sampler.num_samples * f.ctx.world_size,
            initial=min(st["batch"] * cfg.batch_size, sampler.num_samples) * f.ctx.world_size,
            unit="rec", desc=f"epoch {epoch + 1}/{cfg.epochs}", file=sys.stderr, dynamic_ncols=True,
            disable=not (cfg.progress and f.ctx.is_main), leave=True,
        )
        t0 = time.perf_counter()
        seen = self._train_batches(f, net, loader, math.ceil(sampler.num_samples / cfg.batch_size), bar, stop)
        row, done = self._close_epoch(f, val, epoch, time.perf_counter() - t0, seen)
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_loss=f"{row['val_loss']:.4f}",
                        val=_figure(row.get("val_macro_auroc" if self._multi else "val_challenge_f1")), refresh=True)
        bar.close()
        f.epoch_walls.append(time.perf_counter() - t0)  # this epoch with its validation: the whole run's clock
        if f.ctx.is_main and cfg.progress:
            line = run_progress(st["epoch"], cfg.epochs, time.perf_counter() - f.t_fit, f.epoch_walls, cfg.patience is not None)
            print(f"ecgzoo: {line}", file=sys.stderr, flush=True)
        if self._agree_to_stop(stop.requested) and not done:
            distributed.barrier()
            if f.ctx.is_main:
                print(f"ecgzoo: training state saved to {f.last_path}", file=sys.stderr)  # the caller says how to continue
            raise KeyboardInterrupt
        return done

    def _train_batches(self, f: SimpleNamespace, net: torch.nn.Module, loader: DataLoader, batches: int, bar: Any,
                       stop: _StopRequest) -> int:
        """The epoch's remaining batches: step, schedule, average, running figures, periodic saves; records seen."""
        cfg, st, k = f.cfg, f.st, f.k
        seen = 0
        net.train()
        running = st["running"]
        confusion = torch.tensor(running["confusion"], dtype=torch.int64)
        for x, y, vl in loader:
            x, y, vl = x.to(f.device, non_blocking=True), y.to(f.device), vl.to(f.device)
            if f.augment.active:
                x, vl = f.augment(x, vl)
            logits, loss = self._step(f, net, x, y, vl)
            running["loss_sum"] += float(loss.detach()) * len(y)
            running["count"] += len(y)
            if not self._multi:
                confusion += torch.bincount((y * k + logits.argmax(1)).cpu(), minlength=k * k).reshape(k, k)
            running["confusion"] = confusion.tolist()
            st["batch"] += 1
            seen += len(y)
            bar.update(len(y) * f.ctx.world_size)
            bar.set_postfix(loss=f"{running['loss_sum'] / running['count']:.4f}", refresh=False)
            stop_now = self._agree_to_stop(stop.requested)
            if stop_now or (cfg.save_every_batches and st["batch"] % cfg.save_every_batches == 0 and st["batch"] < batches):
                self._save_last(f)
            if stop_now:
                self._stop_saved(f, bar)
        return seen

    def _step(self, f: SimpleNamespace, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
              vl: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step (autocast, weighted smoothed cross-entropy, scaler, clipping, schedule, average)."""
        cfg = f.cfg
        f.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(f.device.type, dtype=f.amp_dtype or torch.float32, enabled=f.amp_dtype is not None):
            logits = net(x, valid_length=vl)
        if self._multi:
            loss = ml.loss(logits, y, f.weight_t)
        else:
            per_record = F.cross_entropy(logits.float(), y, reduction="none", label_smoothing=cfg.label_smoothing)
            loss = (per_record * f.weight_t[y]).mean()
        if f.scaler is not None:
            f.scaler.scale(loss).backward()
            f.scaler.unscale_(f.optimizer)
        else:
            loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(f.model.parameters(), cfg.grad_clip)
        if f.scaler is not None:
            f.scaler.step(f.optimizer)
            f.scaler.update()
        else:
            f.optimizer.step()
        if f.per_batch_schedule:
            f.scheduler.step()
        if f.ema is not None:
            f.ema.update(f.model)
        return logits, loss

    def _close_epoch(self, f: SimpleNamespace, val: torch.utils.data.Dataset, epoch: int, seconds: float,
                     seen: int) -> tuple[dict[str, Any], bool]:
        """Validate (the weight average when there is one), keep the best weights, step the schedule,
        save the state and append the metrics line; returns (history row, training done)."""
        cfg, st, k = f.cfg, f.st, f.k
        lr_now = f.optimizer.param_groups[0]["lr"]
        with f.ema.swapped_in(f.model) if f.ema is not None else contextlib.nullcontext():
            # with an average of the weights, it is the average that is validated and kept
            row = self._end_epoch(f.model, val, f.classes, f.device, f.amp_dtype, f.weight_t, st, lr_now, f.ctx, seconds, seen)
            improved = row["best"]
            if improved:
                f.best_state = {n: t.detach().clone() for n, t in f.model.state_dict().items()}
                if f.ctx.is_main:
                    meta = {"kind": "best", "classes": f.classes, "epoch": epoch + 1, "metrics": row.pop("_val_metrics"),
                            "trainer_config": cfg.model_dump(mode="json")}
                    save_checkpoint(f.best_path, f.model, meta)
        row.pop("_val_metrics", None)
        if f.scheduler is not None and not f.per_batch_schedule:
            f.scheduler.step()
        st["history"].append(row)
        st["epoch"], st["batch"] = epoch + 1, 0
        st["running"] = {"loss_sum": 0.0, "count": 0, "confusion": [[0] * k for _ in range(k)]}
        st["bad_epochs"] = 0 if improved else st["bad_epochs"] + 1
        st["stopped_early"] = cfg.patience is not None and st["bad_epochs"] >= cfg.patience
        done = st["stopped_early"] or st["epoch"] >= cfg.epochs
        self._save_last(f, finished=done)
        if f.ctx.is_main:
            with open(f.metrics_path, "a", encoding="utf-8") as fh:
                fh.write(dumps(row) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        return row, done

    def _scheduler(self, optimizer: torch.optim.Optimizer, batches_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler | None:
        """The learning-rate schedule; warmup-cosine counts batches, the others epochs."""
        cfg = self.config
        if cfg.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
        if cfg.lr_schedule == "step":
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step_size, gamma=cfg.lr_gamma)
        if cfg.lr_schedule == "warmup-cosine":
            total = max(cfg.epochs * batches_per_epoch, 1)
            warm = min(round(cfg.warmup_epochs * batches_per_epoch), total - 1)
            return torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(warmup_cosine, warm=warm, total=total))
        return None

    @staticmethod
    def _agree_to_stop(requested: bool) -> bool:
        """All ranks stop at the same batch when any of them saw Ctrl-C."""
        flag = distributed.all_reduce_sum(torch.tensor([int(requested)]))
        return bool(flag.item())

    def _check_resumable(self, meta: dict[str, Any], fingerprint: dict[str, Any], path: Path) -> None:
        saved = meta.get("fingerprint")
        if meta.get("kind") != "training-state" or saved is None:
            raise CheckpointError(f"{path}: not a training state written by the trainer (remove it or set resume=false)")
        if isinstance(saved.get("model_config"), dict):  # states written while init_weights was part of the fingerprint
            saved = {**saved, "model_config": {k: v for k, v in saved["model_config"].items() if k not in _MODEL_RESUME_FREE}}
        if saved != fingerprint:
            diffs = [f"{key}: {saved.get(key)!r} -> {fingerprint[key]!r}" for key in fingerprint if saved.get(key) != fingerprint[key]]
            raise CheckpointError(
                f"{path} belongs to another training ({'; '.join(diffs)}); remove it or set resume=false to start over"
            )

    def _end_epoch(
        self, model: ecgzoo.EcgModel, val: torch.utils.data.Dataset, classes: list[str], device: torch.device,
        amp_dtype: torch.dtype | None, weight_t: torch.Tensor, st: dict[str, Any], lr: float,
        ctx: distributed.DistContext, seconds: float, seen: int,
    ) -> dict[str, Any]:
        """Reduce the epoch's training figures, score the validation split, decide whether it is the best."""
        k = len(classes)
        running = st["running"]
        train_tot = distributed.all_reduce_sum(torch.tensor([running["loss_sum"], float(running["count"])], dtype=torch.float64))
        train_cm = distributed.all_reduce_sum(torch.tensor(running["confusion"], dtype=torch.int64))
        val_loss, val_cm = self._evaluate(model, val, k, device, amp_dtype, weight_t, ctx)
        if self._multi:
            return self._multilabel_row(st, lr, float(train_tot[0] / train_tot[1]), val_loss, val_cm, ctx, seconds, seen)
        train_m = metrics_from_confusion(train_cm.numpy(), classes, self.scored_classes)
        val_m = metrics_from_confusion(val_cm, classes, self.scored_classes)
        metric = self.config.selection_metric
        score = -val_loss if metric == "loss" else val_m[metric]
        # an undefined figure (None: no scored class in the validation labels or predictions) beats nothing
        improved = st["best_epoch"] is None or (score is not None and (st["best_score"] is None or score > st["best_score"]))
        if improved:
            st["best_score"], st["best_epoch"] = score, st["epoch"] + 1
        return {
            "epoch": st["epoch"] + 1,
            "lr": lr,
            "train_loss": float(train_tot[0] / train_tot[1]),
            "train_accuracy": train_m["accuracy"],
            "train_challenge_f1": train_m["challenge_f1"],
            "val_loss": val_loss,
            "val_accuracy": val_m["accuracy"],
            "val_challenge_f1": val_m["challenge_f1"],
            "val_macro_f1": val_m["macro_f1"],
            "val_f1": {c: val_m["per_class"][c]["f1"] for c in classes},
            "best": improved,
            "seconds": round(seconds, 3),
            "records_per_s": round(seen * ctx.world_size / seconds, 2) if seconds > 0 else None,
            "_val_metrics": val_m,
        }

    def _multilabel_row(self, st: dict[str, Any], lr: float, train_loss: float, val_loss: float,
                        val_out: tuple[np.ndarray, np.ndarray], ctx: distributed.DistContext, seconds: float, seen: int) -> dict[str, Any]:
        """The epoch's history row of a multi-label task: losses and validation macro AUROC, F-max, macro F1 at 0.5."""
        figures = ml.validation_figures(*val_out)
        score = ml.selection_score(figures, val_loss, self.config.selection_metric)
        improved = st["best_score"] is None or score > st["best_score"]
        if improved:
            st["best_score"], st["best_epoch"] = score, st["epoch"] + 1
        return {
            "epoch": st["epoch"] + 1, "lr": lr, "train_loss": train_loss, "val_loss": val_loss,
            **{f"val_{name}": value for name, value in figures.items()}, "best": improved, "seconds": round(seconds, 3),
            "records_per_s": round(seen * ctx.world_size / seconds, 2) if seconds > 0 else None, "_val_metrics": figures,
        }

    def _evaluate(
        self, model: ecgzoo.EcgModel, val: torch.utils.data.Dataset, k: int, device: torch.device,
        amp_dtype: torch.dtype | None, weight_t: torch.Tensor | None, ctx: distributed.DistContext,
    ) -> tuple[float, Any]:
        """Weighted loss and confusion matrix of the whole validation split (each rank scores a shard);
        multi-label: loss and (targets, sigmoid probabilities) of every validation record, gathered from all ranks."""
        shard = Subset(val, range(ctx.rank, len(val), ctx.world_size)) if ctx.enabled else val
        loader = DataLoader(shard, batch_size=self.config.eval_batch_size, shuffle=False, num_workers=self.config.num_workers,
                            worker_init_fn=_ignore_sigint if self.config.num_workers else None)
        was_training = model.training
        model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64)
        cm = torch.zeros(k * k, dtype=torch.int64)
        outputs: list[tuple[np.ndarray, np.ndarray]] = []
        bar = tqdm(total=len(val), unit="rec", desc="validation", file=sys.stderr, dynamic_ncols=True, leave=False,
                   disable=not (self.config.progress and ctx.is_main))
        with torch.no_grad():
            for x, y, vl in loader:
                bar.update(len(y) * ctx.world_size)
                x, y, vl = x.to(device), y.to(device), vl.to(device)
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    logits = model(x, valid_length=vl)
                if self._multi:
                    loss_sum += ml.loss(logits, y, weight_t, reduction="sum").double().cpu()
                    outputs.append((y.cpu().numpy(), torch.sigmoid(logits.float()).cpu().numpy()))
                    continue
                loss_sum += (F.cross_entropy(logits.float(), y, reduction="none") * weight_t[y]).sum().double().cpu()
                cm += torch.bincount((y * k + logits.argmax(1)).cpu(), minlength=k * k)
        bar.close()
        model.train(was_training)
        totals = distributed.all_reduce_sum(torch.cat([loss_sum.reshape(1), torch.tensor([float(len(shard))], dtype=torch.float64)]))
        if self._multi:
            parts = [part for rank in distributed.all_gather_objects(outputs) for part in rank]
            return float(totals[0] / totals[1]), (np.concatenate([t for t, _ in parts]), np.concatenate([p for _, p in parts]))
        cm = distributed.all_reduce_sum(cm)
        return float(totals[0] / totals[1]), cm.reshape(k, k).numpy()


_RECORD_KEYS = {"epoch", "train_loss", "val_loss", "best", "seconds"}


def _fit_result(model: ecgzoo.EcgModel, history: list[dict[str, Any]]) -> ecgzoo.FitResult:
    """The contract's result from this trainer's history rows; the best weights are those `model` holds now."""
    epochs = []
    for row in history:
        metrics = {k[4:]: float(v) for k, v in row.items() if k.startswith("val_") and k != "val_loss" and isinstance(v, (int, float))}
        train_metrics = {k[6:]: float(v) for k, v in row.items()
                         if k.startswith("train_") and k != "train_loss" and isinstance(v, (int, float))}
        extra = {k: v for k, v in row.items() if k not in _RECORD_KEYS and not k.startswith(("val_", "train_"))}
        extra.update({k: v for k, v in row.items() if k.startswith("val_") and not isinstance(v, (int, float))})
        epochs.append(ecgzoo.EpochRecord(epoch=int(row["epoch"]), train_loss=float(row["train_loss"]), val_loss=float(row["val_loss"]),
                                         metrics=metrics, train_metrics=train_metrics, best=bool(row["best"]),
                                         seconds=float(row["seconds"]), extra=extra))
    best = max((e.epoch for e in epochs if e.best), default=epochs[-1].epoch if epochs else 0)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return ecgzoo.FitResult(epochs=epochs, best_state=state, best_epoch=best)


@ecgzoo.hookimpl
def ecgzoo_trainers() -> list[ecgzoo.PluginSpec]:
    return [
        ecgzoo.PluginSpec(
            "trainer", ReferenceTrainer, TrainerConfig,
            summary="paper recipe (Adam 1e-3, batch 10, 100 epochs, weighted CE, best val challenge F1); resumable, DDP",
        )
    ]
