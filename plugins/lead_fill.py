"""In-distribution replacements for whole leads: what a lead becomes when it is "deleted".

Three fills, shared by the `lead-occlusion` explainer and the lead-deletion benchmark
(`benchmarks/bench_lead_attribution.py`), so a ranking and its test delete leads the same way:

* `zero`: the lead set to 0, the mean of a normalised lead (PTB-XL's pipeline z-scores each lead;
  on an input in mV it is a flat line);
* `other-record`: the same lead of another record (a reference record the caller chooses);
* `reconstruct`: a limb lead (I, II, III, aVR, aVL, aVF) rebuilt from two surviving limb leads by
  Einthoven's and Goldberger's relations, III = II - I, aVR = -(I + II)/2, aVL = I - II/2,
  aVF = II - I/2 (I = II - III and II = I + III for the two basis leads); chest leads, leads of
  other names and limb leads with fewer than two surviving limb leads fall back to zero. The
  rebuilt lead is the least-squares combination a x_p + b x_q + c of the two basis leads over the
  valid samples: that is the textbook relation on an input in mV, and stays exact after any
  per-lead affine normalisation (a z-scored lead is one), which the textbook coefficients would
  not. On recordings whose limb leads obey the relations (PTB-XL's do, to the 1-uV quantisation),
  the rebuilt lead equals the original: a limb lead's reconstruct score is what the model reads
  from it beyond the other limb leads, zero up to rounding; it measures redundancy, not use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from ecgzoo.plugin_api import canonical_leads

Fill = Literal["zero", "other-record", "reconstruct"]
#: each limb lead in the coordinates (I, II) of Einthoven's triangle
LIMB_COORDS = {"I": (1.0, 0.0), "II": (0.0, 1.0), "III": (-1.0, 1.0), "aVR": (-0.5, -0.5), "aVL": (1.0, -0.5), "aVF": (-0.5, 1.0)}


def limb_rows(lead_names: Sequence[str] | None) -> dict[str, int]:
    """Row index of every limb lead among `lead_names` (matched after canonical spelling), in the order of
    LIMB_COORDS: the first two present are the basis a deleted limb lead is rebuilt from."""
    if not lead_names:
        return {}
    names = canonical_leads(lead_names)
    return {lead: names.index(lead) for lead in LIMB_COORDS if lead in names}


def _rebuilt(target: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Least-squares a basis[0] + b basis[1] + c of `target` (T,), fitted in float64."""
    design = torch.cat([basis.double(), torch.ones(1, basis.shape[-1], dtype=torch.float64, device=basis.device)]).T
    coef = torch.linalg.lstsq(design, target.double()[:, None]).solution
    return (design @ coef)[:, 0].to(target.dtype)


def _reconstruct(out: torch.Tensor, x: torch.Tensor, deleted: torch.Tensor, limbs: dict[str, int],
                 valid: Sequence[int]) -> None:
    """Rebuild, in place in `out` (already zero-filled), each deleted limb lead of each copy from two survivors."""
    for n in range(x.shape[0]):
        survivors = [row for row in limbs.values() if not bool(deleted[n, row])]
        if len(survivors) < 2:
            continue
        v = valid[n]
        basis = x[n, survivors[:2], :v]
        for row in limbs.values():
            if bool(deleted[n, row]):
                out[n, row, :v] = _rebuilt(x[n, row, :v], basis)


def fill_leads(x: torch.Tensor, deleted: torch.Tensor, fill: Fill, *, reference: torch.Tensor | None = None,
               lead_names: Sequence[str] | None = None, valid_length: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
    """A copy of `x` (N, leads, T) with the leads marked in `deleted` (N, leads, bool) replaced by `fill`.

    `reference` (N, leads, T): for `other-record`, the record whose leads fill copy n (the caller picks
    records other than the one explained). `lead_names`: the rows of `x`, for `reconstruct`.
    `valid_length` (N,): `reconstruct` fits and rebuilds over the samples before it; the padding of a
    deleted lead is zero (`zero`, `reconstruct`) or the reference's (`other-record`).
    """
    if x.ndim != 3 or deleted.shape != x.shape[:2]:
        raise ValueError(f"fill_leads: x must be (N, leads, T) and deleted (N, leads); got {tuple(x.shape)} and {tuple(deleted.shape)}")
    deleted = deleted.to(device=x.device, dtype=torch.bool)
    mask = deleted[:, :, None].expand_as(x)
    if fill == "other-record":
        if reference is None or reference.shape != x.shape:
            got = "none" if reference is None else tuple(reference.shape)
            raise ValueError(f"fill 'other-record' needs a reference batch of the input's shape {tuple(x.shape)}, got {got}")
        return torch.where(mask, reference.to(x), x)
    if fill not in ("zero", "reconstruct"):
        raise ValueError(f"unknown fill {fill!r}; expected zero, other-record or reconstruct")
    out = x.masked_fill(mask, 0.0)
    if fill == "reconstruct":
        valid = [x.shape[-1]] * x.shape[0] if valid_length is None else [int(v) for v in valid_length]
        _reconstruct(out, x, deleted, limb_rows(lead_names), valid)
    return out
