"""Does a map rank the evidence? Removal of whole segments, filled in-distribution (ROAD for ECG).

The valid part of a record is cut into segments: whole beats (from one R-R midpoint to the next, so
each segment holds one R-peak; `beat_bounds`) or windows of 1 s or more (`window_bounds`). Removed
segments are not zeroed (a flat line is evidence of its own, for "noisy" say, and a zero-filled gap
cuts QRS complexes) but filled in-distribution:

* `road`: noisy linear imputation (ROAD, Rong et al. 2022): each removed sample is the linear
  interpolation between the segment's edge samples plus Gaussian noise whose standard deviation is
  the local residual's (the signal minus its 50-ms moving average, 1.4826 x MAD over the segment and
  one segment-length either side: the noise floor, not the QRS);
* `donor`: another record's stretch, taken from one of that record's own segment starts (a beat
  boundary for beat segments), so the filled stretch is a real ECG of the same device and scale;
* `zero`: the old zero fill, kept to show its artefacts.

Each fill is drawn once per record, so every ordering removes the same stretch the same way and the
orderings differ only in WHICH segments go. Orderings rank segments most relevant first: a map's
segment mean (`segment_scores`), random orders (several seeds), each segment's own removal effect
(the drop of the target's logit margin when it alone is removed: a ceiling a map can approach) and
segment energy (a control: a map that only finds loud stretches does this well). Most-relevant-first
(MoRF, lower area = more faithful) and least-relevant-first (LeRF, higher = more faithful) curves of
the target probability and the logit margin (target logit minus the largest other) are taken at
fractions of the segments removed, with the share of signal energy and of R-peaks each step removes.
The reverse of a uniform random order is again one, so random orders give one curve, the baseline of
both directions. `paired` compares an ordering with random record by record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy import stats
from scipy.ndimage import uniform_filter1d

from ecgzoo.core.create import create_preprocessor
from ecgzoo.core.model import EcgModel
from ecgzoo.core.record import Record

FILLS = ("road", "donor", "zero")
RANDOM_ORDER = "random order"
CEILING = "removal effect"
ENERGY = "energy"
DEFAULT_FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def beat_bounds(rpeaks: np.ndarray, valid_length: int, beats_per_segment: int = 1) -> np.ndarray:
    """Segment bounds (n + 1,) over [0, valid_length): cuts at R-R midpoints, every `beats_per_segment`-th,
    so each segment holds that many R-peaks (the first and last also the partial beats at the ends)."""
    peaks = np.unique(np.asarray(rpeaks, dtype=np.int64))
    peaks = peaks[(peaks >= 0) & (peaks < valid_length)]
    if peaks.size < 2:
        raise ValueError(f"beat segments need at least 2 R-peaks in the valid part, got {peaks.size}")
    if beats_per_segment < 1:
        raise ValueError(f"beats_per_segment must be at least 1, got {beats_per_segment}")
    mids = (peaks[:-1] + peaks[1:]) // 2
    return np.unique(np.r_[0, mids[beats_per_segment - 1::beats_per_segment], valid_length])


def window_bounds(valid_length: int, window: int) -> np.ndarray:
    """Bounds of consecutive windows of `window` samples; a tail shorter than half a window joins the last."""
    if window < 1 or valid_length < 1:
        raise ValueError(f"window and valid_length must be positive, got {window} and {valid_length}")
    cuts = np.arange(0, valid_length, window)
    if len(cuts) > 1 and valid_length - cuts[-1] < window / 2:
        cuts = cuts[:-1]
    return np.r_[cuts, valid_length]


def rpeaks_of(record: Record) -> np.ndarray:
    """The record's R-peaks: `meta["rpeaks"]` when its pipeline found them, else the `rpeaks` plugin's."""
    if "rpeaks" not in record.meta:
        record = create_preprocessor("rpeaks")(record)
    return np.asarray(record.meta["rpeaks"], dtype=np.int64)


def segments_of(record: Record, kind: str = "beats", *, window_s: float = 1.0,
                beats_per_segment: int = 1) -> np.ndarray:
    """Segment bounds of a record: `beats` (R-R midpoints) or `window` (window_s seconds, >= 1 s)."""
    valid = int(record.valid_length)
    if kind == "beats":
        return beat_bounds(rpeaks_of(record), valid, beats_per_segment)
    if kind == "window":
        if window_s < 1.0:
            raise ValueError(f"window segments must be 1 s or longer (shorter ones cut every beat), got {window_s:g} s")
        return window_bounds(valid, max(1, round(window_s * record.fs)))
    raise ValueError(f"segments must be 'beats' or 'window', got {kind!r}")


def _pairs(bounds: np.ndarray) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def road_fill(x: np.ndarray, bounds: np.ndarray, rng: np.random.Generator, fs: float) -> np.ndarray:
    """(leads, T): x with every segment replaced by the line between its edge samples plus local noise."""
    x = np.asarray(x, dtype=np.float64)
    valid = int(bounds[-1])
    smooth = max(1, round(0.05 * fs))
    resid = x[:, :valid] - uniform_filter1d(x[:, :valid], smooth, axis=-1, mode="nearest")
    fill = x.copy()
    for a, b in _pairs(bounds):
        left, right = x[:, max(a - 1, 0)], x[:, min(b, valid - 1)]
        t = (np.arange(a, b) - (a - 1)) / (b - a + 1)
        span = b - a
        local = resid[:, max(0, a - span):min(valid, b + span)]
        sigma = 1.4826 * np.median(np.abs(local - np.median(local, axis=1, keepdims=True)), axis=1)
        fill[:, a:b] = left[:, None] + (right - left)[:, None] * t + rng.standard_normal((x.shape[0], span)) * sigma[:, None]
    return fill.astype(np.float32)


def donor_fill(x: np.ndarray, bounds: np.ndarray, donor: np.ndarray, donor_bounds: np.ndarray) -> np.ndarray:
    """(leads, T): segment i replaced by the donor's stretch of the same length from the donor's segment
    start i (cycling; the donor's valid part repeated if the stretch runs past its end)."""
    fill = np.array(x, dtype=np.float32)
    d = np.asarray(donor, dtype=np.float32)[:, :int(donor_bounds[-1])]
    starts = np.asarray(donor_bounds[:-1], dtype=np.int64)
    for i, (a, b) in enumerate(_pairs(bounds)):
        c = int(starts[i % len(starts)])
        fill[:, a:b] = np.take(d, np.arange(c, c + b - a), axis=-1, mode="wrap")
    return fill


def zero_fill(x: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    fill = np.array(x, dtype=np.float32)
    fill[:, :int(bounds[-1])] = 0
    return fill


def segment_scores(attribution: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Mean attribution of each segment (higher = more relevant)."""
    attr = np.asarray(attribution, dtype=np.float64)
    return np.array([attr[a:b].mean() for a, b in _pairs(bounds)])


def order_from_scores(scores: np.ndarray) -> np.ndarray:
    """Segment indices, highest score first (ties in segment order)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


@dataclasses.dataclass
class Outputs:
    """Target probability and logit margin of a batch of inputs."""

    probability: np.ndarray
    margin: np.ndarray


def model_outputs(model: EcgModel, inputs: torch.Tensor, target: int, valid: int, batch_size: int,
                  multilabel: bool = False) -> Outputs:
    """Target probability and margin of inputs (N, leads, T). Single-label: the softmax probability and the
    target logit minus the largest other. Multi-label (`multilabel`): the target's sigmoid probability and
    its logit (the margin to the sigmoid's 0.5 point; the other classes do not compete)."""
    probs, margins = [], []
    with torch.no_grad():
        for s in range(0, len(inputs), batch_size):
            chunk = inputs[s:s + batch_size]
            logits = model(chunk, valid_length=torch.full((len(chunk),), valid)).double()
            if multilabel:
                probs.append(torch.sigmoid(logits[:, target]))
                margins.append(logits[:, target])
                continue
            others = logits.clone()
            others[:, target] = -torch.inf
            probs.append(torch.softmax(logits, dim=1)[:, target])
            margins.append(logits[:, target] - others.max(dim=1).values)
    return Outputs(torch.cat(probs).numpy(), torch.cat(margins).numpy())


class Remover:
    """One record, one fill: the model's outputs with any set of segments removed, each set run once."""

    def __init__(self, model: EcgModel, x: np.ndarray, fill: np.ndarray, bounds: np.ndarray, target: int,
                 *, batch_size: int = 8, multilabel: bool = False):
        self.model, self.x, self.fill, self.bounds = model, np.asarray(x, dtype=np.float32), fill, bounds
        self.target, self.batch_size, self.multilabel = int(target), batch_size, multilabel
        self.valid = int(bounds[-1])
        self.cache: dict[bytes, tuple[float, float]] = {}

    @staticmethod
    def key(removed: Sequence[int]) -> bytes:
        return np.sort(np.asarray(removed, dtype=np.int64)).tobytes()

    def removed_input(self, removed: Sequence[int]) -> np.ndarray:
        out = self.x.copy()
        for i in removed:
            a, b = int(self.bounds[i]), int(self.bounds[i + 1])
            out[:, a:b] = self.fill[:, a:b]
        return out

    def run(self, sets: Sequence[Sequence[int]]) -> None:
        """Evaluate every set not evaluated yet, in batches."""
        todo = {}
        for s in sets:
            k = self.key(s)
            if k not in self.cache:
                todo.setdefault(k, s)
        if not todo:
            return
        inputs = torch.from_numpy(np.stack([self.removed_input(s) for s in todo.values()]))
        out = model_outputs(self.model, inputs, self.target, self.valid, self.batch_size, self.multilabel)
        for k, p, m in zip(todo, out.probability, out.margin, strict=True):
            self.cache[k] = (float(p), float(m))

    def outputs(self, removed: Sequence[int]) -> tuple[float, float]:
        return self.cache[self.key(removed)]

    @property
    def passes(self) -> int:
        return len(self.cache)


def removal_effects(remover: Remover) -> np.ndarray:
    """Each segment's own removal effect: the drop of the logit margin when it alone is removed."""
    n = len(remover.bounds) - 1
    remover.run([[], *([i] for i in range(n))])
    m0 = remover.outputs([])[1]
    return np.array([m0 - remover.outputs([i])[1] for i in range(n)])


def step_counts(n: int, fractions: Sequence[float]) -> np.ndarray:
    """Numbers of segments removed at each step: round(f * n) for fractions rising from 0 to 1 (one step
    per fraction, so step j means the same nominal fraction on every record; repeats cost nothing)."""
    f = np.asarray(fractions, dtype=float)
    if f.size < 2 or f[0] != 0 or f[-1] != 1 or np.any(np.diff(f) <= 0):
        raise ValueError(f"fractions must rise from 0 to 1, got {list(fractions)}")
    return np.round(f * n).astype(int)


@dataclasses.dataclass
class Removal:
    """What one ordering removes at each step: shares of the energy and of the R-peaks of the valid part."""

    energy: np.ndarray  # (n,) energy of each segment (sum of x^2 over leads and samples)
    peaks: np.ndarray  # (n,) R-peaks in each segment

    def shares(self, order: np.ndarray, counts: np.ndarray) -> tuple[list[float], list[float]]:
        e_tot, p_tot = max(self.energy.sum(), 1e-30), max(self.peaks.sum(), 1)
        return ([float(self.energy[order[:k]].sum() / e_tot) for k in counts],
                [float(self.peaks[order[:k]].sum() / p_tot) for k in counts])


def removal_of(x: np.ndarray, bounds: np.ndarray, rpeaks: np.ndarray | None) -> Removal:
    x = np.asarray(x, dtype=np.float64)
    energy = np.array([float((x[:, a:b] ** 2).sum()) for a, b in _pairs(bounds)])
    peaks = np.zeros(len(bounds) - 1)
    if rpeaks is not None and len(rpeaks):
        inside = np.asarray(rpeaks)[(np.asarray(rpeaks) >= 0) & (np.asarray(rpeaks) < bounds[-1])]
        np.add.at(peaks, np.searchsorted(bounds, inside, side="right") - 1, 1)
    return Removal(energy, peaks)


def _curve(remover: Remover, removal: Removal, order: np.ndarray, counts: np.ndarray) -> dict[str, list[float]]:
    outs = [remover.outputs(order[:k]) for k in counts]
    energy, peaks = removal.shares(order, counts)
    return {"probability": [o[0] for o in outs], "margin": [o[1] for o in outs], "energy": energy, "rpeaks": peaks}


def record_curves(remover: Remover, removal: Removal, orders: Mapping[str, np.ndarray], random_orders: Sequence[np.ndarray],
                  fractions: Sequence[float] = DEFAULT_FRACTIONS) -> dict[str, Any]:
    """MoRF and LeRF curves of every ordering, and the mean curve of the random orders (both directions)."""
    n = len(remover.bounds) - 1
    counts = step_counts(n, fractions)
    sets = [o[:k] for o in orders.values() for k in counts] + [o[::-1][:k] for o in orders.values() for k in counts]
    remover.run(sets + [o[:k] for o in random_orders for k in counts])
    curves = {name: {"morf": _curve(remover, removal, o, counts), "lerf": _curve(remover, removal, o[::-1], counts)}
              for name, o in orders.items()}
    rnd = [_curve(remover, removal, o, counts) for o in random_orders]
    mean = {k: np.mean([r[k] for r in rnd], axis=0).tolist() for k in rnd[0]}
    curves[RANDOM_ORDER] = {"morf": mean, "lerf": mean}
    return {"fraction": (counts / n).tolist(), "segments": n, "curves": curves}


def auc(fraction: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoid area of a curve over the fraction of segments removed."""
    return float(np.trapezoid(np.asarray(values, dtype=float), np.asarray(fraction, dtype=float)))


def paired(expl: np.ndarray, rnd: np.ndarray, better: str) -> dict:
    """Paired comparison of per-record areas with random: `better` is 'lower' (MoRF) or 'higher' (LeRF).
    Mean difference with a paired bootstrap 95% interval (2,000 resamples), Wilcoxon signed-rank p, wins."""
    expl, rnd = np.asarray(expl, dtype=float), np.asarray(rnd, dtype=float)
    diff = expl - rnd
    rng = np.random.default_rng(0)
    boot = diff[rng.integers(0, len(diff), (2000, len(diff)))].mean(axis=1)
    wins = int((diff < 0).sum() if better == "lower" else (diff > 0).sum())
    p = float(stats.wilcoxon(diff).pvalue) if np.any(diff != 0) and len(diff) > 1 else 1.0
    return {"auc_mean": float(expl.mean()), "random_mean": float(rnd.mean()), "diff_mean": float(diff.mean()),
            "diff_ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "wilcoxon_p": p, "beats_random": wins, "records": len(diff)}


def score_record(model: EcgModel, x: np.ndarray, bounds: np.ndarray, target: int,
                 maps: Mapping[str, np.ndarray], fills: Mapping[str, np.ndarray], *, rpeaks: np.ndarray | None = None,
                 seeds: Sequence[int] = (0, 1, 2), fractions: Sequence[float] = DEFAULT_FRACTIONS,
                 ceiling: bool = True, record_seed: int = 0, batch_size: int = 8, multilabel: bool = False) -> dict[str, Any]:
    """Curves of one record (leads, T) for each fill: every map's order, energy-first, the removal-effect
    ceiling (when `ceiling`) and `seeds` random orders (seeded by (seed, record_seed)). `multilabel`: the
    target's sigmoid probability and logit instead of softmax and margin (`model_outputs`)."""
    removal = removal_of(x, bounds, rpeaks)
    n = len(bounds) - 1
    orders = {name: order_from_scores(segment_scores(m, bounds)) for name, m in maps.items()}
    orders[ENERGY] = order_from_scores(removal.energy)
    random_orders = [np.random.default_rng([seed, record_seed]).permutation(n) for seed in seeds]
    out = {}
    for fill_name, fill in fills.items():
        remover = Remover(model, x, fill, bounds, target, batch_size=batch_size, multilabel=multilabel)
        fill_orders = dict(orders)
        if ceiling:
            fill_orders[CEILING] = order_from_scores(removal_effects(remover))
        out[fill_name] = {**record_curves(remover, removal, fill_orders, random_orders, fractions),
                          "passes": remover.passes}
    return out


def summary(results: Sequence[Mapping[str, Any]], group: str = "all") -> dict[str, Any]:
    """Paired statistics over records (each a `score_record` result) for every fill, ordering, direction
    (MoRF lower / LeRF higher is better) and quantity (probability, margin), with the mean energy and
    R-peak shares each ordering removes at each nominal step."""
    out: dict[str, Any] = {}
    for fill in results[0]:
        rows: dict[str, Any] = {}
        for name in results[0][fill]["curves"]:
            row: dict[str, Any] = {}
            for direction, better in (("morf", "lower"), ("lerf", "higher")):
                for q in ("probability", "margin"):
                    a = [auc(r[fill]["fraction"], r[fill]["curves"][name][direction][q]) for r in results]
                    b = [auc(r[fill]["fraction"], r[fill]["curves"][RANDOM_ORDER][direction][q]) for r in results]
                    row[f"{direction}_{q}"] = paired(np.array(a), np.array(b), better)
                for q in ("energy", "rpeaks"):
                    row[f"{direction}_{q}_share"] = np.mean([r[fill]["curves"][name][direction][q] for r in results],
                                                            axis=0).tolist()
            rows[name] = row
        out[fill] = {"group": group, "records": len(results), "orderings": rows,
                     "passes_mean": float(np.mean([r[fill]["passes"] for r in results]))}
    return out
