"""`beat-removal`: one score per beat (per lead of each beat): the model's response to its removal.

The valid part of each input is cut into whole beats at the R-R midpoints (`ecgzoo.explain.evidence.beat_bounds`,
R-peaks by the `rpeaks` plugin on lead `rpeak_lead` of the input, the last lead where it has fewer), and every beat of every lead is in turn
replaced by the ROAD noisy linear imputation (`ecgzoo.explain.evidence.road_fill`: the line between the beat's
edge samples plus noise at the local noise floor, drawn once per input with `seed`, so a rerun gives the
same map). Lead k of beat i scores

    score(k, i) = f(x)_c - f(x with lead k of beat i filled)_c,

f the target logit (or its sigmoid / softmax, `output`): positive where the beat is evidence for class
c. `explain_leads` gives (B, leads, T), each lead's score held over its beat's samples (a piecewise
constant map, zero past the valid part); `explain` is the sum over leads (for one lead: the beat's score).
An input with fewer than two R-peaks is one segment (the whole valid part).

Cost: one evaluation per lead and beat plus one. Where the model declares a finite receptive field
(`receptive_radius` R and a native CAM, so the logit is the pooled CAM), removing [a, b) changes the
CAM only on [a - R, b + R), which a crop [a - 2R, b + 2R) of the input computes exactly: each
evaluation runs on that crop (through the model's fast engine where it has one) instead of the whole
input, the idea of `ecgzoo_plugins.cnnv7_occlusion`. Other models: whole inputs, `batch_size` per pass.
`last_cost` holds the count of the last `explain` call (evaluations and input samples they read).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pydantic
import torch

import ecgzoo
from ecgzoo.plugin_api import FastPathConfig, engine_for, evidence
from ecgzoo_plugins.lead_attribution import OUTPUT_HELP, Output, explained

UNITS = {"logit": "drop of the class logit", "sigmoid": "drop of the class probability (sigmoid)",
         "softmax": "drop of the class probability (softmax)"}


class BeatRemovalConfig(FastPathConfig):
    output: Output = pydantic.Field("logit", description=OUTPUT_HELP)
    seed: int = pydantic.Field(0, ge=0, description="seed of the ROAD fill's noise (one draw per input)")
    rpeak_lead: int = pydantic.Field(0, ge=0, description="lead the R-peaks are detected on")
    beats_per_segment: int = pydantic.Field(1, ge=1, description="beats removed together (cuts at every n-th R-R midpoint)")
    batch_size: int = pydantic.Field(32, ge=1, description="removed copies per forward pass")


@dataclasses.dataclass
class Cost:
    """What one `explain` call cost: model evaluations and the input samples they read (all leads count once)."""

    evaluations: int = 0
    samples: int = 0
    input_length: int = 1

    @property
    def full_pass_equivalents(self) -> float:
        """The evaluations' work in whole-input forward passes (samples read / input length)."""
        return self.samples / self.input_length


class BeatRemoval(ecgzoo.Explainer):
    """Drop of the target output when one beat of one lead is filled in-distribution (ROAD)."""

    per_lead = True

    def __init__(self, config: BeatRemovalConfig):
        self.config = config
        self.last_cost = Cost()

    @property
    def units(self) -> str:
        """What a value of the map is, for figure labels."""
        return UNITS[self.config.output]

    def segment_bounds(self, signal: np.ndarray, fs: float, valid_length: int | None = None) -> np.ndarray:
        """Beat bounds (n + 1,) of one input (leads, T): R-R midpoints over [0, valid_length), or
        [0, valid_length] when fewer than two R-peaks are found."""
        valid = int(signal.shape[-1] if valid_length is None else valid_length)
        rec = ecgzoo.Record(np.asarray(signal, dtype=np.float32), float(fs), "beat-removal input", valid_length=valid)
        try:
            lead = min(self.config.rpeak_lead, rec.leads - 1)
            peaks = evidence.rpeaks_of(ecgzoo.create_preprocessor("rpeaks", lead=lead)(rec))
            return evidence.beat_bounds(peaks, valid, self.config.beats_per_segment)
        except (ecgzoo.RecordError, ValueError):
            return np.array([0, valid])

    def explain_leads(self, model: ecgzoo.EcgModel, x: torch.Tensor, target: torch.Tensor | None = None,
                      valid_length: torch.Tensor | None = None, fs: float | None = None) -> torch.Tensor:
        if fs is None:
            raise ValueError("explainer 'beat-removal': the sampling rate is unknown; pass it (explain(..., fs=300)) "
                             "so the R-peaks can be found")
        target = self.resolve_target(model, x, target, valid_length)
        b, leads, t = x.shape
        valid = [t] * b if valid_length is None else [int(v) for v in valid_length.reshape(-1).tolist()]
        self.last_cost = Cost()
        out = torch.zeros(b, leads, t)
        for i in range(b):
            xi = x[i].detach().cpu().numpy()
            bounds = self.segment_bounds(xi, fs, valid[i])
            fill = evidence.road_fill(xi, bounds, np.random.default_rng(self.config.seed), fs)
            units = [(k, int(a), int(e)) for k in range(leads) for a, e in zip(bounds[:-1], bounds[1:], strict=True)]
            vl = None if valid_length is None else valid_length.reshape(-1)[i:i + 1]
            drops = self._drops(model, x[i:i + 1], torch.from_numpy(fill).to(x), units, int(target[i]), vl)
            for (k, a, e), d in zip(units, drops.tolist(), strict=True):
                out[i, k, a:e] = d
        return out.to(x.device)

    def explain(self, model: ecgzoo.EcgModel, x: torch.Tensor, target: torch.Tensor | None = None,
                valid_length: torch.Tensor | None = None, fs: float | None = None) -> torch.Tensor:
        return self.explain_leads(model, x, target, valid_length, fs=fs).sum(dim=1)

    def _drops(self, model: ecgzoo.EcgModel, x: torch.Tensor, fill: torch.Tensor, units: list[tuple[int, int, int]],
               target: int, valid_length: torch.Tensor | None) -> torch.Tensor:
        """Drops (units,) of the explained output for one input x (1, leads, T) and its fill (leads, T)."""
        radius = model.receptive_radius if model.has_cam else None
        with torch.no_grad():
            if radius is not None:
                base, removed = self._crop_logits(model, x, fill, units, int(radius), valid_length)
            else:
                base, removed = self._full_logits(model, x, fill, units, valid_length)
        out = self.config.output
        return (explained(base, out)[0, target] - explained(removed, out)[:, target]).float()

    def _full_logits(self, model: ecgzoo.EcgModel, x: torch.Tensor, fill: torch.Tensor, units: list[tuple[int, int, int]],
                     valid_length: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (1, K) of x, logits (units, K) with each unit filled): whole inputs, `batch_size` per pass."""
        out = []
        for s in range(0, len(units), self.config.batch_size):
            chunk = units[s:s + self.config.batch_size]
            copies = x.expand(len(chunk), -1, -1).clone()
            for j, (k, a, e) in enumerate(chunk):
                copies[j, k, a:e] = fill[k, a:e]
            vl = None if valid_length is None else valid_length.expand(len(chunk))
            out.append(model(copies, valid_length=vl))
        self._count(len(units) + 1, (len(units) + 1) * x.shape[-1], x.shape[-1])
        return model(x, valid_length=valid_length), torch.cat(out)

    def _crop_logits(self, model: ecgzoo.EcgModel, x: torch.Tensor, fill: torch.Tensor, units: list[tuple[int, int, int]],
                     radius: int, valid_length: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """As `_full_logits`, each removal run on the crop [a - 2R, b + 2R) of the input alone (exact: the CAM
        changes only on [a - R, b + R), which that crop determines; crops of a batch padded on the right,
        which reaches no changed position)."""
        engine = engine_for(model, self.config, x) or model
        t = x.shape[-1]
        base, cam0 = engine.forward_with_cam(x, valid_length)
        n = t if valid_length is None or not model.masked_pooling else int(min(max(int(valid_length[0]), 1), t))
        weights = torch.zeros(t, dtype=cam0.dtype, device=x.device)
        weights[:n] = 1.0 / n
        deltas, read = [], 0
        for s in range(0, len(units), self.config.batch_size):
            chunk = units[s:s + self.config.batch_size]
            spans = [(max(0, a - 2 * radius), min(t, e + 2 * radius)) for _, a, e in chunk]
            width = max(c1 - c0 for c0, c1 in spans)
            crops = torch.zeros(len(chunk), x.shape[1], width, dtype=x.dtype, device=x.device)
            for j, ((k, a, e), (c0, c1)) in enumerate(zip(chunk, spans, strict=True)):
                crops[j, :, :c1 - c0] = x[0, :, c0:c1]
                crops[j, k, a - c0:e - c0] = fill[k, a:e]
            cams = engine.forward_with_cam(crops)[1]
            for j, ((_, a, e), (c0, _)) in enumerate(zip(chunk, spans, strict=True)):
                p0, p1 = max(0, a - radius), min(t, e + radius)
                change = cams[j, :, p0 - c0:p1 - c0] - cam0[0, :, p0:p1]
                deltas.append(change @ weights[p0:p1])
            read += len(chunk) * width
        self._count(len(units) + 1, read + t, t)
        removed = base + torch.stack(deltas) if deltas else base[:0]
        return base, removed

    def _count(self, evaluations: int, samples: int, input_length: int) -> None:
        cost = self.last_cost
        cost.evaluations += evaluations
        cost.samples += samples
        cost.input_length = input_length


@ecgzoo.hookimpl
def ecgzoo_explainers() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("beat-removal", BeatRemoval, BeatRemovalConfig,
                              summary="per-beat (and per-lead) score: drop of the class output when the beat is "
                                      "filled in-distribution (ROAD); needs fs")]
