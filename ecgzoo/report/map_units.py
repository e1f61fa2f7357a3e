"""The unit every drawn map is in: percent of what the map explains, per second of recording.

Explainers return raw maps in their own units (`ecgzoo.Explainer`: CAM values average to the
class logit, Integrated Gradients sum to logit(x) - logit(zero signal), saliency is a gradient
per mV), so their colour bars cannot be compared: a CAM reads +-40, the same record's Integrated
Gradients +-0.08. The pictures (`ecgzoo.report.figures`, `ecgzoo.report.figures_leads`) therefore
draw every map as a share, one definition per explainer family, chosen by the explainer's
`sums_to` (part of the explainer contract):

* complete maps (`sums_to` names the quantity the map's recorded part sums to: `cam` "the class
  logit", `integrated-gradients` "the class logit minus the zero signal's"):
  share(t) = 100 * fs * v(t) / |sum over the recorded samples of v|, in **% of that quantity per
  second**. A CAM's sum is T x the logit, so its share is 100 * fs * M(t) / (T * |logit|).
* every other map (`sums_to` None: clipped or absolute maps, gradients, occlusion):
  share(t) = 100 * fs * v(t) / (sum of |v|), in **% of the map's total |value| per second**.
  A complete map whose net total is near zero (below NET_FLOOR of its total |value|, so a share of
  it would be a division by almost nothing) is drawn this way too, and the label says why.

Either way the area under the drawn map over a stretch (share x seconds) is that stretch's percent:
a 0.1-s QRS complex drawn at 50 %/s carries 5 % of the class logit; the recorded part's shares add
up to +-100 % (complete maps) or their absolute values to 100 %. Only the recorded part counts:
padding added for the model is left out of the sums (and is not drawn).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ecgzoo.core.model import EcgModel

#: a complete map's net total below this share of its total |value| is treated as zero
NET_FLOOR = 0.05


@dataclasses.dataclass(frozen=True)
class MapShare:
    """A map in % per second (same shape as given) and the colour-bar label stating that unit."""

    values: np.ndarray
    label: str
    denominator: float  # the sum the shares are of (0 for an all-zero map)


def map_share(values: np.ndarray, fs: float, valid_length: int | None = None, *, sums_to: str | None = None,
              explainer: str | None = None) -> MapShare:
    """`values` (T,) or (leads, T) as % per second of `sums_to` (or of the map's total |value|), over
    the first `valid_length` samples (all when None); samples after those keep their share but are
    not summed. `explainer` names the map in the label."""
    if not fs > 0:
        raise ValueError(f"sampling rate fs must be positive, got {fs}")
    v = np.asarray(values, dtype=np.float64)
    recorded = v[..., :valid_length] if valid_length is not None else v
    finite = recorded[np.isfinite(recorded)]
    net, total = float(finite.sum()), float(np.abs(finite).sum())
    name = f"{explainer}: " if explainer else ""
    if sums_to and total > 0 and abs(net) >= NET_FLOOR * total:
        denominator, label = abs(net), f"{name}% of {sums_to} per s"
    else:
        denominator, label = total, f"{name}% of the map's total |value| per s"
        if sums_to and total > 0:
            label += f" ({sums_to}, its net total, is near zero)"
    if denominator == 0:
        return MapShare(np.zeros_like(v, dtype=np.float32), f"{name}map is zero everywhere", 0.0)
    return MapShare((100.0 * fs * v / denominator).astype(np.float32), label, denominator)


#: what `cam`'s map sums to; a model that adds a `logit_offset` to its CAM's mean (cnnv7-local) changes it
CAM_LOGIT = "the class logit"


def sums_to(explainer: object, model: object | None = None) -> str | None:
    """The quantity an explainer's map sums to (`Explainer.sums_to`), None for explainers without one.
    With `model`: a map that sums to the class logit through the CAM identity sums, on a model that
    declares a `logit_offset` (logits = CAM mean + offset), to the logit minus that offset, and says so."""
    value = getattr(explainer, "sums_to", None)
    if not (isinstance(value, str) and value):
        return None
    overrides = model is not None and type(model).logit_offset is not EcgModel.logit_offset
    return f"{CAM_LOGIT} minus the model's logit_offset" if value == CAM_LOGIT and overrides else value
