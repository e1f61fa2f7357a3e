"""How much to trust a map: the deletion curve (Petsiuk et al. 2018, RISE) for ECG.

Cut the valid part of a record into windows (0.5 s by default), rank them by mean
attribution, and replace the most-attributed windows step by step with the baseline (the
zero signal). Track the target-class probability: a faithful map makes it fall fast, so a
LOWER area under the curve is better. Each explainer's AUC is reported next to a random
attribution (random window order, mean over a few seeds): an explainer that does not beat
random tells the reader nothing about the model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ecgzoo.core.explainer import check_supports
from ecgzoo.core.model import EcgModel

RANDOM = "random"


@dataclasses.dataclass
class DeletionCurve:
    """Target probability after deleting a growing fraction of the valid signal."""

    fraction: np.ndarray  # (steps + 1,) fraction of valid samples replaced by the baseline, 0 .. 1
    probability: np.ndarray  # (steps + 1,) target-class probability at each step
    target: int

    @property
    def auc(self) -> float:
        """Area under probability vs deleted fraction (trapezoid); lower = more faithful map."""
        return float(np.trapezoid(self.probability, self.fraction))


def window_order(attribution: np.ndarray, window: int, valid_length: int) -> np.ndarray:
    """Window indices over samples [0, valid_length), most attributed (highest mean) first."""
    attr = np.asarray(attribution, dtype=np.float64)[:valid_length]
    n = math.ceil(valid_length / window)
    means = np.array([attr[i * window:(i + 1) * window].mean() for i in range(n)])
    return np.argsort(-means, kind="stable")


def _window_samples(fs: float, window_s: float) -> int:
    if not fs > 0:
        raise ValueError(f"sampling rate fs must be positive, got {fs}")
    if not window_s > 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    return max(1, round(window_s * fs))


def deletion_curve_for_order(
    model: EcgModel, x: torch.Tensor, order: np.ndarray, window: int, target: int, *,
    valid_length: int | None = None, steps: int = 20, baseline: float = 0.0, batch_size: int = 8,
    insertion: bool = False,
) -> DeletionCurve:
    """Deletion curve of one record (leads, T) deleting windows in `order`; with `insertion`, the
    insertion curve instead: from the valid part all baseline, the windows put back in `order`
    (a faithful map makes the probability RISE fast: higher AUC is better)."""
    samples = x.shape[-1]
    valid = samples if valid_length is None else int(valid_length)
    n = len(order)
    counts = sorted({math.ceil(k * n / steps) for k in range(steps + 1)})
    inputs, fractions = [], []
    for count in counts:
        changed = order[:count] if not insertion else order[count:]
        xd = x.clone()
        for w in changed:
            xd[..., int(w) * window:min((int(w) + 1) * window, valid)] = baseline
        inputs.append(xd)
        fractions.append(min(count * window, valid) / valid)
    batch = torch.stack(inputs)
    probs = []
    vl = None if valid_length is None else torch.tensor([valid], device=x.device)
    with torch.no_grad():
        for start in range(0, len(batch), batch_size):
            chunk = batch[start:start + batch_size]
            lengths = None if vl is None else vl.expand(len(chunk))
            probs.append(torch.softmax(model(chunk, valid_length=lengths), dim=1)[:, target].cpu())
    return DeletionCurve(np.asarray(fractions), torch.cat(probs).numpy().astype(np.float64), int(target))


def predicted_class(model: EcgModel, x: torch.Tensor, valid_length: int | None = None) -> int:
    """The model's class for one record (leads, T)."""
    device = next(model.parameters()).device
    vl = None if valid_length is None else torch.tensor([int(valid_length)], device=device)
    with torch.no_grad():
        return int(model(x.to(device)[None], valid_length=vl).argmax(dim=1))


def deletion_curve(
    model: EcgModel, x: torch.Tensor | np.ndarray, attribution: torch.Tensor | np.ndarray, fs: float, *,
    target: int | None = None, window_s: float = 0.5, steps: int = 20, baseline: float = 0.0,
    valid_length: int | None = None, batch_size: int = 8,
) -> DeletionCurve:
    """Deletion curve of one record x (leads, T) under its attribution (T,) for `target` (default: predicted)."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32) if isinstance(x, np.ndarray) else x)
    if x.dim() != 2:
        raise ValueError(f"deletion_curve takes one record (leads, T), got shape {tuple(x.shape)}")
    attr = np.asarray(attribution.detach().cpu() if isinstance(attribution, torch.Tensor) else attribution)
    if attr.shape != (x.shape[-1],):
        raise ValueError(f"attribution must have shape ({x.shape[-1]},), got {attr.shape}")
    device = next(model.parameters()).device
    x = x.to(device)
    valid = x.shape[-1] if valid_length is None else int(valid_length)
    if target is None:
        target = predicted_class(model, x, valid_length)
    window = _window_samples(fs, window_s)
    return deletion_curve_for_order(model, x, window_order(attr, window, valid), window, target,
                                    valid_length=valid_length, steps=steps, baseline=baseline, batch_size=batch_size)


def random_deletion_curves(
    model: EcgModel, x: torch.Tensor | np.ndarray, fs: float, target: int, *, seeds: Sequence[int] = (0, 1, 2),
    window_s: float = 0.5, steps: int = 20, valid_length: int | None = None, batch_size: int = 8,
) -> list[DeletionCurve]:
    """Deletion curves for random attributions (a random window order per seed)."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32) if isinstance(x, np.ndarray) else x)
    x = x.to(next(model.parameters()).device)
    valid = x.shape[-1] if valid_length is None else int(valid_length)
    window = _window_samples(fs, window_s)
    n = math.ceil(valid / window)
    return [
        deletion_curve_for_order(model, x, np.random.default_rng(seed).permutation(n), window, target,
                                 valid_length=valid_length, steps=steps, batch_size=batch_size)
        for seed in seeds
    ]


@dataclasses.dataclass
class FaithfulnessTable:
    """Deletion AUC per explainer (mean and spread over records) and the mean curves."""

    rows: list[dict[str, Any]]
    curves: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (fraction, mean probability)
    window_s: float
    steps: int

    def auc(self, name: str) -> float:
        return next(r["auc_mean"] for r in self.rows if r["explainer"] == name)

    def to_text(self) -> str:
        """A fixed-width table: explainer, mean AUC, std, records, difference from random, records where
        the explainer's AUC is below the random baseline's (paired, so record difficulty cancels)."""
        rnd = self.auc(RANDOM) if any(r["explainer"] == RANDOM for r in self.rows) else None
        lines = [f"deletion AUC (window {self.window_s:g} s, {self.steps} steps; lower = more faithful)",
                 f"{'explainer':<24} {'AUC':>7} {'std':>7} {'records':>7} {'vs random':>10} {'beats random':>13}"]
        for r in self.rows:
            gain = "" if rnd is None or r["explainer"] == RANDOM else f"{r['auc_mean'] - rnd:+.3f}"
            wins = "" if r.get("beats_random") is None else f"{r['beats_random']}/{r['records']}"
            lines.append(f"{r['explainer']:<24} {r['auc_mean']:7.3f} {r['auc_std']:7.3f} {r['records']:7d} {gain:>10} {wins:>13}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"window_s": self.window_s, "steps": self.steps, "rows": self.rows,
                "curves": {k: {"fraction": f.tolist(), "probability": p.tolist()} for k, (f, p) in self.curves.items()}}


def _records(signals: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray]) -> list[torch.Tensor]:
    if isinstance(signals, (torch.Tensor, np.ndarray)):
        if signals.ndim != 3:
            raise ValueError(f"signals must be (N, leads, T) or a list of (leads, T) records, got shape {tuple(signals.shape)}")
    return [torch.as_tensor(np.asarray(s, dtype=np.float32)) if not isinstance(s, torch.Tensor) else s for s in signals]


def deletion_table(
    model: EcgModel,
    signals: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    attributions: Mapping[str, Sequence[torch.Tensor | np.ndarray] | torch.Tensor | np.ndarray],
    fs: float, *, targets: Sequence[int] | None = None, valid_lengths: Sequence[int] | None = None, window_s: float = 0.5,
    steps: int = 20, seeds: Sequence[int] = (0, 1, 2), batch_size: int = 8,
) -> FaithfulnessTable:
    """Deletion AUC of each explainer's maps over records (N, leads, T) or a list of (leads, T_i)
    records, next to the random baseline; targets default to the predicted classes."""
    records = _records(signals)
    n = len(records)
    for name, maps in attributions.items():
        if len(maps) != n:
            raise ValueError(f"attributions of {name!r}: {len(maps)} maps for {n} records")
    per_name: dict[str, list[DeletionCurve]] = {name: [] for name in attributions}
    per_name[RANDOM] = []
    grid = np.linspace(0, 1, steps + 1)
    for i, x in enumerate(records):
        vl_i = None if valid_lengths is None else int(valid_lengths[i])
        target = predicted_class(model, x, vl_i) if targets is None else int(targets[i])
        for name, maps in attributions.items():
            per_name[name].append(deletion_curve(model, x, maps[i], fs, target=target, window_s=window_s, steps=steps,
                                                 valid_length=vl_i, batch_size=batch_size))
        randoms = random_deletion_curves(model, x, fs, target, seeds=seeds, window_s=window_s,
                                         steps=steps, valid_length=vl_i, batch_size=batch_size)
        mean_prob = np.mean([np.interp(grid, c.fraction, c.probability) for c in randoms], axis=0)
        per_name[RANDOM].append(DeletionCurve(grid, mean_prob, target))
    rows, curves = [], {}
    random_aucs = np.array([c.auc for c in per_name[RANDOM]])
    for name, found in per_name.items():
        aucs = np.array([c.auc for c in found])
        rows.append({"explainer": name, "auc_mean": float(aucs.mean()), "auc_std": float(aucs.std()), "records": len(aucs),
                     "beats_random": None if name == RANDOM else int((aucs < random_aucs).sum())})
        curves[name] = (grid, np.mean([np.interp(grid, c.fraction, c.probability) for c in found], axis=0))
    return FaithfulnessTable(rows, curves, window_s, steps)


def compare_explainers(
    model: EcgModel, signals: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray], names: Sequence[str],
    fs: float, *, options: Mapping[str, Mapping[str, Any]] | None = None, valid_lengths: Sequence[int] | None = None,
    window_s: float = 0.5, steps: int = 20, seeds: Sequence[int] = (0, 1, 2), batch_size: int = 8,
) -> tuple[FaithfulnessTable, dict[str, list[np.ndarray]]]:
    """Run each named explainer on each record (one at a time: bounded memory; target = predicted class)
    and score the maps; returns (table, maps by explainer name)."""
    from ecgzoo.core.create import create_explainer

    records = _records(signals)
    device = next(model.parameters()).device
    maps: dict[str, list[np.ndarray]] = {}
    for name in names:
        explainer = create_explainer(name, **dict((options or {}).get(name, {})))
        check_supports(explainer, model, name)
        maps[name] = []
        for i, x in enumerate(records):
            vl = None if valid_lengths is None else torch.tensor([int(valid_lengths[i])], device=device)
            maps[name].append(explainer.explain(model, x.to(device)[None], None, vl, fs=fs)[0].detach().cpu().numpy())
    table = deletion_table(model, records, maps, fs, valid_lengths=valid_lengths, window_s=window_s,
                           steps=steps, seeds=seeds, batch_size=batch_size)
    return table, maps
