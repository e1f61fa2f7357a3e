"""How long `ecgzoo run` will take on this machine, measured before the run starts.

`announce(...)` runs a few records through the run's own preprocessing (or finds them already
prepared in the cache), builds a throwaway copy of the run's model on the records' real shape,
times a few training steps (the trainer's batch size, crop and precision) and validation
forward passes, and prints the whole job's estimated time: preparation + epochs x (training
batches + validation records) + the final scoring. Where that is beyond `LONG_S` (a few hours)
it says so and names a preset that fits, estimated the same way (registry.toml's `use_with`).

Contract: the estimate never changes the run's result. It works on its own model instance and
its own optimizer, never on the run's, and every random number generator (python, numpy, torch
CPU and CUDA) is restored afterwards (`preserved_rng`), so the run that follows draws the same
numbers it would have drawn without it. `--set estimate=false` skips it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: beyond this many seconds a job counts as out of reach of the machine at hand (a few hours)
LONG_S = 3 * 3600.0
SAMPLE_RECORDS = 4  # records run through the preprocessing to learn its cost and the input shape


def format_duration(seconds: float) -> str:
    """`seconds` as a person says it: 12 ms, 2.5 s, 40 s, 12 min, 3 h 05 min, 29 days (700 h)."""
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{hours / 24:.0f} days ({hours} h)"


def run_progress(done: int, total: int, elapsed_s: float, epoch_s: list[float], may_stop_early: bool = False) -> str:
    """The whole run's progress after `done` of `total` epochs: elapsed time and, from the mean of the
    epochs timed so far (`epoch_s`, validation included), the time left."""
    left = float(np.mean(epoch_s)) * (total - done) if epoch_s else math.nan
    text = f"epoch {done} of {total} done, elapsed {format_duration(elapsed_s)}"
    if done < total:
        text += f", about {format_duration(left)} left{' at most (early stopping may end it sooner)' if may_stop_early else ''}"
    return text


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Every generator (python, numpy, torch CPU and CUDA) as it was before the block."""
    from ecgzoo.models.checkpoint import rng_state, set_rng_state

    saved = rng_state()
    try:
        yield
    finally:
        set_rng_state(saved)


def _once(step: Callable[[], None], device: str) -> float:
    t0 = time.perf_counter()
    step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def _timed(step: Callable[[], None], device: str, budget_s: float = 10.0, repeats: int = 3) -> float:
    """Seconds per call of `step`: one warm-up call, then up to `repeats` timed calls within `budget_s`
    (a warm-up slower than half the budget is the figure itself: minutes of timing buy nothing)."""
    first = _once(step, device)
    if first > budget_s / 2:
        return first
    times: list[float] = []
    while len(times) < repeats and sum(times) < budget_s:
        times.append(_once(step, device))
    return float(np.median(times))


def _per_batch(make_step: Callable[[int], Callable[[], None]], size: int, device: str, budget_s: float = 10.0) -> float:
    """Seconds of one step on a batch of `size` records. A one-record probe first; where the full batch would
    take longer than `budget_s` on the CPU (whose cost grows in proportion to the records), fewer records
    are timed and the figure scaled to `size`."""
    probe = _once(make_step(1), device)
    n = size if device != "cpu" or probe * size <= budget_s else max(1, min(size, int(budget_s // max(probe, 1e-9))))
    return _timed(make_step(n), device, budget_s) * size / n


@dataclasses.dataclass
class Estimate:
    """The measured costs and the job's size; `total_s` is the estimate."""

    prepare_s: float | None  #: seconds to prepare every record (None: already prepared, in the cache)
    step_s: float  #: one training batch
    val_record_s: float  #: one record's validation forward pass
    epochs: int
    batch_size: int
    train_records: int
    val_records: int
    final_records: int  #: validation + test records scored once at the end

    @property
    def train_batches(self) -> int:
        return math.ceil(self.train_records / self.batch_size)

    @property
    def epoch_s(self) -> float:
        return self.train_batches * self.step_s + self.val_records * self.val_record_s

    @property
    def total_s(self) -> float:
        return (self.prepare_s or 0.0) + self.epochs * self.epoch_s + self.final_records * self.val_record_s

    def describe(self) -> str:
        prep = "already done (cache)" if self.prepare_s is None else format_duration(self.prepare_s)
        return (f"about {format_duration(self.total_s)}: preparation {prep}; {self.epochs} epochs of "
                f"{format_duration(self.epoch_s)} ({self.train_batches} training batches of {self.batch_size} at "
                f"{format_duration(self.step_s)}, {self.val_records} validation records at {format_duration(self.val_record_s)}); "
                f"the report's figures and explanation examples come on top")


def _is_prepared(data: Any, pipeline: Any, cache_dir: str | None) -> bool:
    """True when `prepare` will find every record in its cache (nothing to preprocess)."""
    from ecgzoo.data.prepared import cache_key

    folder = cache_dir if cache_dir is not None else getattr(data, "cache_dir", None)
    if folder is None:
        return False
    return (Path(folder) / cache_key(data, pipeline, list(data.record_ids())) / "meta.json").is_file()


def _sample(data: Any, pipeline: Any) -> tuple[list[Any], float]:
    """The first few records that preprocess without error, and the seconds one record takes (warm-up excluded)."""
    from ecgzoo.core.record import RecordError

    records, times = [], []
    for rid in list(data.record_ids())[:SAMPLE_RECORDS]:
        t0 = time.perf_counter()
        try:
            records.append(pipeline(data.load(rid)))
        except RecordError:
            continue
        times.append(time.perf_counter() - t0)
    if not records:
        return [], math.nan
    return records, float(np.mean(times[1:] if len(times) > 1 else times))


def _batch(records: list[Any], size: int, crop: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """`size` records (the samples repeated) as one batch, cut to `crop` samples as the trainer's crops are."""
    signals = np.stack([records[i % len(records)].signal for i in range(size)]).astype(np.float32)
    lengths = [int(records[i % len(records)].valid_length or signals.shape[-1]) for i in range(size)]
    if crop is not None and crop < signals.shape[-1]:
        signals, lengths = signals[..., :crop], [min(n, crop) for n in lengths]
    return torch.from_numpy(np.ascontiguousarray(signals)), torch.tensor(lengths)


def _measure(model: Any, records: list[Any], plan: dict[str, Any], task: Any, device: str) -> tuple[float, float]:
    """(seconds per training batch, seconds per validation record) of `model` on batches of the records' shape."""
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(plan["precision"])
    autocast = {"device_type": torch.device(device).type, "dtype": amp or torch.float32,
                "enabled": amp is not None and (device == "cuda" or amp == torch.bfloat16)}
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-6)

    def train_step(n: int) -> Callable[[], None]:
        x, vl = (t.to(device) for t in _batch(records, n, plan["crop_samples"]))

        def step() -> None:
            model.train()
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(**autocast):
                logits = model(x, valid_length=vl).float()
            task.loss_value(logits, task.zero_targets(logits)).backward()
            optimizer.step()
        return step

    def val_step(n: int) -> Callable[[], None]:
        x, vl = (t.to(device) for t in _batch(records, n, None))

        def step() -> None:
            model.eval()
            with torch.no_grad(), torch.autocast(**autocast):
                model(x, valid_length=vl)
        return step

    eval_size = plan["eval_batch_size"]
    return _per_batch(train_step, plan["batch_size"], device), _per_batch(val_step, eval_size, device, 5.0) / eval_size


def _trainer_plan(config: Any) -> dict[str, Any] | None:
    """epochs, batch size, crop, precision and validation batch from the trainer's validated options (None: not declared)."""
    from ecgzoo.core.registry import get_registry

    reg = get_registry()
    options = reg.make_config(reg.resolve(config.trainer_plugin, "trainer"), config.trainer)
    plan = {key: getattr(options, key, default) for key, default in
            (("epochs", None), ("batch_size", None), ("crop_samples", None), ("precision", "fp32"), ("eval_batch_size", 16))}
    return plan if plan["epochs"] and plan["batch_size"] else None


def _split_sizes(data: Any, config: Any) -> tuple[int, int, int]:
    """(train, validation, test) record counts the run's split will give."""
    from ecgzoo.data.splits import dataset_split

    ids = [str(r) for r in data.record_ids()]
    fixed = dataset_split(data, ids)
    if fixed is not None:
        return len(fixed[0]), len(fixed[1]), len(fixed[2])
    test = round(len(ids) * config.split.test_fraction)
    val = round((len(ids) - test) * config.split.val_fraction)
    return len(ids) - test - val, val, test


def estimate(model_name: str, data: Any, pipeline: Any, config: Any, device: str) -> Estimate | None:
    """The whole job's cost on this machine (None: the trainer declares no epochs/batch size, or no record prepares)."""
    from ecgzoo.core.tasks import task_of
    from ecgzoo.models.create import create_model

    plan = _trainer_plan(config)
    if plan is None:
        return None
    with preserved_rng():
        records, per_record = _sample(data, pipeline)
        if not records:
            return None
        task = task_of(data)
        options = {**config.model, "num_classes": len(task.classes), "in_leads": int(records[0].signal.shape[0])}
        model = create_model(model_name, **options)
        step_s, val_s = _measure(model, records, plan, task, device)
    train, val, test = _split_sizes(data, config)
    workers = max(1, min(config.workers, os.cpu_count() or 1))
    prepare_s = None if _is_prepared(data, pipeline, config.cache_dir) else per_record * len(data.record_ids()) / workers
    return Estimate(prepare_s, step_s / max(config.nproc, 1), val_s, int(plan["epochs"]), int(plan["batch_size"]),
                    train, val, val + test)


def _candidates(model: str, dataset: str) -> list[tuple[str, str]]:
    """(model, preset) pairs registry.toml's presets declare for this dataset (`use_with`), specific ones before `*`."""
    from ecgzoo.core.registry import get_registry
    from ecgzoo.training.run_config import _resolved

    name = _resolved(dataset, "dataset")
    specific, generic = [], []
    for preset, table in get_registry().presets().items():
        use = table.get("use_with") or {}
        matched = [p for p in use.get("datasets", []) if fnmatch.fnmatch(name, p)]
        if matched:
            (generic if matched == ["*"] else specific).append((str(use.get("model", model)), preset))
    return specific + generic


def suggest(model: str, dataset: str, data: Any, config: Any, device: str) -> tuple[str, Estimate] | None:
    """The preset declared for this dataset whose job, estimated the same way, is shortest: the first one that
    fits in `LONG_S`, else the quickest; its command line and estimate (None: no preset declared for it)."""
    from ecgzoo.core.create import get_dataset
    from ecgzoo.training.run_config import _resolved, build_pipeline, preset_values, resolve_run_config

    best: tuple[str, Estimate] | None = None
    for other, preset in _candidates(model, dataset):
        # the user's dataset options (where the data is, its task) stay; the preset's own dataset options win
        data_options = {**config.dataset, **preset_values(preset, other, dataset).get("dataset", {})}
        candidate = resolve_run_config(other, dataset, preset, assignments={
            "device": config.device, "cache_dir": config.cache_dir, "dataset": data_options})
        same_model = _resolved(other, "model") == _resolved(model, "model")
        if same_model and (candidate.model, candidate.trainer) == (config.model, config.trainer):
            continue  # the run asked for is this preset already
        same_data = candidate.dataset == config.dataset
        cand_data = data if same_data else get_dataset(dataset, **candidate.dataset)
        found = estimate(other, cand_data, build_pipeline(candidate, cand_data, dataset), candidate, device)
        if found is not None and (best is None or found.total_s < best[1].total_s):
            best = f"`ecgzoo run {other} {dataset} --preset {preset}`", found
        if best is not None and best[1].total_s <= LONG_S:
            break
    return best


def cpu_has_bf16() -> bool:
    """True when oneDNN runs bf16 natively on this CPU (AVX512-BF16 or AMX); False: it is emulated, and slow."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def announce(model: str, dataset: str, data: Any, pipeline: Any, config: Any, device: str,
             say: Callable[[str], None]) -> Estimate | None:
    """Measure, print the whole job's estimated time and, beyond `LONG_S`, the preset that fits; returns the estimate."""
    found = estimate(model, data, pipeline, config, device)
    if found is None:
        say("no time estimate (the trainer declares no epochs or batch size, or no record could be preprocessed)")
        return None
    where = f"{device}, {torch.get_num_threads()} thread(s)" if device == "cpu" else device
    say(f"estimated time of the whole job on this machine ({where}): {found.describe()}")
    if device == "cpu" and (_trainer_plan(config) or {}).get("precision") == "bf16" and not cpu_has_bf16():
        say("this CPU has no bf16 instructions (AVX512-BF16 or AMX): bf16 autocast is emulated and runs many times "
            "slower than float32 here; --set trainer.precision=fp32 trains the same recipe in float32")
    if found.total_s <= LONG_S:
        return found
    hint = suggest(model, dataset, data, config, device)
    if hint is None:
        advice = "fewer epochs (--set trainer.epochs=N), a smaller model or a GPU (--device cuda) would fit"
    else:
        fits = "the preset that fits" if hint[1].total_s <= LONG_S else "the quickest preset declared for it"
        advice = f"{fits}: {hint[0]} (about {format_duration(hint[1].total_s)} here, estimated the same way)"
    say(f"that is beyond a few hours on this machine; {advice}")
    return found
