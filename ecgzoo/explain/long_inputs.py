"""Explaining inputs too long for one pass (a 24-hour recording) in bounded memory, exactly.

A model that declares `receptive_radius` R (feature position t sees input [t - R, t + R] and the
zero padding past the ends) gives, on the stretch [s, e) of a crop [s - R, e + R), the same
feature map as the whole input does. So the input is cut into stretches of `chunk` samples,
each run with R samples of context on both sides, and the pieces of the map are joined: the
result equals the whole-input computation while memory holds one crop at a time (plus the
output map). Occlusion needs more context (a window's effect reaches R samples, and recomputing
it reads activations up to 2R further), so its crops carry 3R + the window.

The explained class is the whole input's (its logit is the CAM's mean over the whole input, pooled
from the pieces), or `target`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ecgzoo.core.model import EcgModel

LONG_EXPLAINERS = ("cam", "gradcam", "occlusion")


def _radius(model: EcgModel) -> int:
    if not model.has_cam or model.receptive_radius is None:
        raise TypeError(
            f"{type(model).__name__}: explaining a long input in stretches needs a native CAM (has_cam) and a "
            f"declared receptive_radius; got has_cam={model.has_cam}, receptive_radius={model.receptive_radius}"
        )
    return int(model.receptive_radius)


def stretches(total: int, chunk: int, context: int) -> Iterator[tuple[int, int, int, int]]:
    """(crop_start, crop_stop, start, stop): [start, stop) tiles [0, total) by `chunk`; the crop adds
    `context` samples on both sides, clipped to the input."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 sample, got {chunk}")
    for s in range(0, total, chunk):
        e = min(total, s + chunk)
        yield max(0, s - context), min(total, e + context), s, e


def cam_in_stretches(model: EcgModel, signal: np.ndarray, chunk: int, engine: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Logits (classes,) and CAM (classes, T) of a whole (leads, T) input, computed in stretches."""
    radius = _radius(model)
    total = signal.shape[-1]
    cam = np.empty((model.num_classes, total), dtype=np.float32)
    with torch.no_grad():
        for c0, c1, s, e in stretches(total, chunk, radius):
            crop = torch.from_numpy(np.ascontiguousarray(signal[:, c0:c1], dtype=np.float32))[None]
            cam[:, s:e] = (engine or model).forward_with_cam(crop)[1][0, :, s - c0:e - c0].cpu().numpy()
    return cam.mean(axis=1, dtype=np.float64), cam


def explain_long(model: EcgModel, signal: np.ndarray, name: str, *, chunk: int, target: int | None = None,
                 window: int | None = None, stride: int | None = None, engine: Any = None) -> tuple[np.ndarray, int, np.ndarray]:
    """(map (T,), explained class, logits (classes,)) of `name` in LONG_EXPLAINERS on a whole input.

    cam: the CAM of the class; gradcam: ReLU(CAM) / T (Grad-CAM on the feature map, whose gradient
    weights are w[c, k] / T exactly); occlusion: drop of the class logit when each `window` samples
    (every `stride`) are zeroed, averaged over the windows covering each sample (as captum), from the
    model's engine (`occlusion_logit_changes`).
    """
    if name not in LONG_EXPLAINERS:
        raise ValueError(f"explaining long inputs in stretches supports {LONG_EXPLAINERS}, not {name!r}")
    logits, cam = cam_in_stretches(model, signal, chunk, engine)
    c = int(np.argmax(logits)) if target is None else int(target)
    if name == "cam":
        return cam[c], c, logits
    if name == "gradcam":
        return np.maximum(cam[c], 0) / cam.shape[-1], c, logits
    if engine is None or not hasattr(engine, "occlusion_logit_changes"):
        raise TypeError(f"{type(model).__name__}: occlusion in stretches needs a fast engine with occlusion_logit_changes")
    if window is None or stride is None:
        raise ValueError("occlusion needs window and stride in samples")
    return _occlusion(model, engine, signal, c, chunk, window, stride), c, logits


def _occlusion(model: EcgModel, engine: Any, signal: np.ndarray, target: int, chunk: int, window: int,
               stride: int) -> np.ndarray:
    """Occlusion map of the target logit, windows grouped by the stretch their start falls in."""
    total = signal.shape[-1]
    starts = np.arange(0, total - window + stride, stride)[: int(np.ceil((total - window) / stride)) + 1]
    out, counts = np.zeros(total), np.zeros(total)
    context = 3 * _radius(model) + window
    for c0, c1, s, e in stretches(total, chunk, context):
        mine = starts[(starts >= s) & (starts < e)]
        if not len(mine):
            continue
        crop = torch.from_numpy(np.ascontiguousarray(signal[:, c0:c1], dtype=np.float32))
        weights = torch.full((c1 - c0,), 1.0 / total)
        drop = -engine.occlusion_logit_changes(crop, [int(a - c0) for a in mine], window, weights)[:, target]
        for a, d in zip(mine, drop.tolist(), strict=True):
            out[a:a + window] += d
            counts[a:a + window] += 1
    return (out / np.maximum(counts, 1) * signal.shape[0]).astype(np.float32)
