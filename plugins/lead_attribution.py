"""`lead-occlusion` and `lead-gradxinput`: one score per lead, for which leads carry a diagnosis.

`lead-occlusion` scores lead k by the drop of the target output when lead k alone is replaced by an
in-distribution fill (`ecgzoo_plugins.lead_fill`: zero, another record's lead, or the lead rebuilt
from the other limb leads): score_k = f(x)_c - f(x with lead k filled)_c, where f is the logit, the
sigmoid (multi-label models) or the softmax (single-label) of class c. A record's occluded copies go
through the model in one forward pass (with the unoccluded record). `lead-gradxinput` scores lead k
by gradient x input summed over the lead's valid samples, sum_t x_k(t) d f_c / d x_k(t): one
backward pass, the first-order estimate of the zero-fill drop (equal to it for a linear model).

Both are explainers of the `ecgzoo.Explainer` contract: `explain_leads` gives (B, leads, T), each
lead's score repeated over its valid samples (zero over padding), so the 12-lead pictures
(`ecgzoo.report.figures_leads`) colour each lead by its score; `explain` is the sum over leads. Scripts
read the scores themselves with `lead_scores(model, x, target)` -> (B, leads), in the units of
`output` (positive: the lead is evidence for the class).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Literal

import pydantic
import torch

import ecgzoo
from ecgzoo.plugin_api import STANDARD_12
from ecgzoo_plugins.lead_fill import Fill, fill_leads

Output = Literal["logit", "sigmoid", "softmax"]
OUTPUT_HELP = "what each lead's score is in: the class logit, its sigmoid (multi-label models) or its softmax probability"


def explained(logits: torch.Tensor, output: Output) -> torch.Tensor:
    """The explained output of logits (..., classes): themselves, their sigmoid, or their softmax."""
    if output == "sigmoid":
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=-1) if output == "softmax" else logits


def broadcast(scores: torch.Tensor, samples: int, valid_length: torch.Tensor | None = None) -> torch.Tensor:
    """Per-lead scores (B, leads) as a map (B, leads, samples): each score over its lead's valid samples."""
    out = scores.float()[:, :, None].expand(-1, -1, samples)
    if valid_length is not None:
        keep = torch.arange(samples, device=scores.device)[None, :] < valid_length.to(scores.device).reshape(-1, 1)
        out = out * keep[:, None, :]
    return out.contiguous()


class LeadGradXInputConfig(ecgzoo.PluginConfig):
    output: Output = pydantic.Field("logit", description=OUTPUT_HELP)


class LeadOcclusionConfig(LeadGradXInputConfig):
    fill: Fill = pydantic.Field(
        "zero", description="what an occluded lead becomes: zero (a normalised lead's mean), other-record (the same lead "
        "of another record) or reconstruct (limb leads rebuilt from the other limb leads; chest leads zero)")
    leads: list[str] | None = pydantic.Field(
        None, description="names of the input's rows, for fill reconstruct (None: the standard 12 when there are 12 rows)")
    draws: int = pydantic.Field(1, ge=1, description="fill other-record: reference records per lead; their drops are averaged")
    seed: int = pydantic.Field(0, ge=0, description="fill other-record: which reference records are drawn (an offset)")
    batch_size: int = pydantic.Field(64, ge=1, description="inputs per forward pass (one record's occlusions always go together)")


class _PerLeadExplainer(ecgzoo.Explainer):
    """A score per lead, drawn as a map: `explain_leads` broadcasts `lead_scores`, `explain` sums over leads."""

    per_lead = True

    def __init__(self, config: LeadGradXInputConfig):
        self.config = config

    @abc.abstractmethod
    def lead_scores(self, model: ecgzoo.EcgModel, x: torch.Tensor, target: torch.Tensor | None = None,
                    valid_length: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (B, leads) for the target class of each record (default: the predicted class)."""

    def explain_leads(self, model: ecgzoo.EcgModel, x: torch.Tensor, target: torch.Tensor | None = None,
                      valid_length: torch.Tensor | None = None, fs: float | None = None) -> torch.Tensor:
        return broadcast(self.lead_scores(model, x, target, valid_length), x.shape[-1], valid_length)

    def explain(self, model: ecgzoo.EcgModel, x: torch.Tensor, target: torch.Tensor | None = None,
                valid_length: torch.Tensor | None = None, fs: float | None = None) -> torch.Tensor:
        return self.explain_leads(model, x, target, valid_length, fs=fs).sum(dim=1)


class LeadGradXInput(_PerLeadExplainer):
    """sum_t x_k(t) d f_c / d x_k(t) per lead k (one backward pass)."""

    def lead_scores(self, model: ecgzoo.EcgModel, x: torch.Tensor, target: torch.Tensor | None = None,
                    valid_length: torch.Tensor | None = None) -> torch.Tensor:
        target = self.resolve_target(model, x, target, valid_length)
        with torch.enable_grad():
            inp = x.detach().clone().requires_grad_(True)
            out = explained(model(inp, valid_length=valid_length), self.config.output)
            (grad,) = torch.autograd.grad(out.gather(1, target[:, None]).sum(), inp)
        contribution = broadcast(torch.ones(x.shape[:2], device=x.device), x.shape[-1], valid_length) * grad * inp
        return contribution.detach().sum(dim=-1).float()


class LeadOcclusion(_PerLeadExplainer):
    """Drop of the target output when one lead is replaced by the fill (all leads of a record in one pass).

    `reference`: for fill other-record, a batch (R, leads, T) whose leads fill the occluded ones (record b,
    draw d takes reference record (b * draws + seed + d) mod R); None: the other records of the batch
    being explained (record b takes the next ones), which needs a batch of two or more.
    """

    config: LeadOcclusionConfig

    def __init__(self, config: LeadOcclusionConfig):
        super().__init__(config)
        self.reference: torch.Tensor | None = None

    def lead_names(self, leads: int) -> Sequence[str] | None:
        """The names of the input's rows: the `leads` option, else the standard 12 for 12 rows, else unknown."""
        names = self.config.leads
        if names is not None and len(names) != leads:
            raise ValueError(f"explainer 'lead-occlusion': option leads names {len(names)} leads, the input has {leads}")
        return names if names is not None else (STANDARD_12 if leads == len(STANDARD_12) else None)

    def references(self, x: torch.Tensor) -> torch.Tensor | None:
        """(B, draws, leads, T): the records whose leads fill each record's occluded leads; None unless other-record."""
        c, b = self.config, x.shape[0]
        if c.fill != "other-record":
            return None
        if self.reference is None:
            if b < 2:
                raise ValueError("explainer 'lead-occlusion': fill 'other-record' needs another record; explain a batch of "
                                 "two or more records, or set the explainer's `reference` to a batch (R, leads, T)")
            index = [[(i + 1 + (c.seed + d) % (b - 1)) % b for d in range(c.draws)] for i in range(b)]
            return x[torch.tensor(index, device=x.device)]
        ref = self.reference.to(x)
        if ref.ndim != 3 or ref.shape[1:] != x.shape[1:]:
            raise ValueError(f"explainer 'lead-occlusion': reference batch of shape {tuple(ref.shape)}, expected (R, "
                             f"{x.shape[1]}, {x.shape[2]}) like the input")
        index = [[(i * c.draws + c.seed + d) % ref.shape[0] for d in range(c.draws)] for i in range(b)]
        return ref[torch.tensor(index, device=x.device)]

    def occluded_logits(self, model: ecgzoo.EcgModel, x: torch.Tensor, valid_length: torch.Tensor | None = None,
                        reference: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, K) of `x`, logits (B, draws, leads, K) with lead k filled), a record's copies in one pass.

        `reference` (B, draws, leads, T): the other-record fill of each record (default: `references(x)`).
        """
        b, leads, t = x.shape
        reference = self.references(x) if reference is None and self.config.fill == "other-record" else reference
        draws = 1 if reference is None else reference.shape[1]
        per_record = draws * leads
        step = max(1, self.config.batch_size // (per_record + 1))
        deleted = torch.eye(leads, dtype=torch.bool, device=x.device)
        base, occluded = [], []
        with torch.no_grad():
            for s in range(0, b, step):
                xs = x[s:s + step]
                r = xs.shape[0]
                copies = xs[:, None, None].expand(r, draws, leads, leads, t).reshape(r * per_record, leads, t)
                ref = None if reference is None else reference[s:s + step, :, None].expand(
                    r, draws, leads, leads, t).reshape(r * per_record, leads, t)
                vl = None if valid_length is None else valid_length.to(x.device).reshape(-1)[s:s + step]
                vl_copies = None if vl is None else vl.repeat_interleave(per_record)
                filled = fill_leads(copies, deleted.repeat(r * draws, 1), self.config.fill, reference=ref,
                                    lead_names=self.lead_names(leads), valid_length=vl_copies)
                logits = model(torch.cat([xs, filled]), valid_length=None if vl is None else torch.cat([vl, vl_copies]))
                base.append(logits[:r])
                occluded.append(logits[r:].reshape(r, draws, leads, -1))
        return torch.cat(base), torch.cat(occluded)

    def lead_scores(self, model: ecgzoo.EcgModel, x: torch.Tensor, target: torch.Tensor | None = None,
                    valid_length: torch.Tensor | None = None, reference: torch.Tensor | None = None) -> torch.Tensor:
        base, occluded = self.occluded_logits(model, x, valid_length, reference)
        target = base.argmax(dim=1) if target is None else self.resolve_target(model, x, target, valid_length)
        return self.drops(base, occluded, target)

    def drops(self, base: torch.Tensor, occluded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scores (B, leads) from the logits of `occluded_logits` for target classes (B,): the drop of the
        explained output, averaged over draws."""
        out = self.config.output
        before = explained(base, out).gather(1, target[:, None])  # (B, 1)
        after = explained(occluded, out).gather(-1, target[:, None, None, None].expand(*occluded.shape[:3], 1))[..., 0]
        return (before[:, None, :] - after).mean(dim=1).float()


@ecgzoo.hookimpl
def ecgzoo_explainers() -> list[ecgzoo.PluginSpec]:
    return [
        ecgzoo.PluginSpec("lead-occlusion", LeadOcclusion, LeadOcclusionConfig,
                          summary="per-lead score: drop of the class output when one lead is filled (zero, other record, rebuilt)"),
        ecgzoo.PluginSpec("lead-gradxinput", LeadGradXInput, LeadGradXInputConfig,
                          summary="per-lead score: gradient x input summed over each lead (one backward pass)"),
    ]
