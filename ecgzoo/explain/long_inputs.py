"""Explaining inputs too long for one pass (a 24-hour recording) in bounded memory, exactly.

A model that declares `receptive_radius` R (feature position t sees input [t - R, t + R] around its
centre t and the zero padding past the ends) gives, on the stretch [s, e) of a crop [s - R, e + R), the same
feature map as the whole input does. So the input is cut into stretches of `chunk` samples,
each run with R samples of context on both sides, and the pieces of the map are joined: the
result equals the whole-input computation while memory holds one crop at a time (plus the
output map). Occlusion needs more context (a window's effect reaches R samples, and recomputing
it reads activations up to 2R further), so its crops carry 3R + the window.

A strided model (feature step t centred on input sample s t, `feature_grid`) is cut on multiples
of s, so each crop's feature grid is a piece of the whole input's: the CAM is joined on that grid
and upsampled once, as the model's own `forward_with_cam` does.

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


def _stride(model: EcgModel) -> int:
    """The feature grid's stride (1: one feature step per input sample); stretches start on its multiples."""
    grid = model.feature_grid
    if grid is None:
        return 1
    if grid[1] != 0:
        raise TypeError(f"{type(model).__name__}: explaining a long input in stretches needs feature step t centred "
                        f"on input sample stride * t; its feature_grid is {grid}")
    return int(grid[0])


def _up(n: int, s: int) -> int:
    return -(-n // s) * s


def stretches(total: int, chunk: int, context: int) -> Iterator[tuple[int, int, int, int]]:
    """(crop_start, crop_stop, start, stop): [start, stop) tiles [0, total) by `chunk`; the crop adds
    `context` samples on both sides, clipped to the input."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 sample, got {chunk}")
    for s in range(0, total, chunk):
        e = min(total, s + chunk)
        yield max(0, s - context), min(total, e + context), s, e


def _feature_cam(model: EcgModel, engine: Any, crop: torch.Tensor) -> torch.Tensor:
    """The CAM on the feature grid (classes, T') of one crop (1, leads, n)."""
    if engine is not None:
        return engine.forward_with_feature_cam(crop)[1][0]
    return torch.einsum("ck,bkt->bct", model.head.weight, model.forward_features(crop))[0]


def feature_cam_in_stretches(model: EcgModel, signal: np.ndarray, chunk: int, engine: Any = None) -> np.ndarray:
    """CAM on the feature grid (classes, T') of a whole (leads, T) input, computed in stretches that start
    on multiples of the grid's stride (so each crop's grid is the whole input's)."""
    radius, stride = _radius(model), _stride(model)
    total = signal.shape[-1]
    t_feat = -(-total // stride)
    cam = np.empty((model.num_classes, t_feat), dtype=np.float32)
    with torch.no_grad():
        for c0, c1, s, e in stretches(total, _up(chunk, stride), _up(radius, stride) + stride):
            crop = torch.from_numpy(np.ascontiguousarray(signal[:, c0:c1], dtype=np.float32))[None]
            f0, f1 = s // stride, -(-e // stride)
            cam[:, f0:f1] = _feature_cam(model, engine, crop)[:, f0 - c0 // stride:f1 - c0 // stride].cpu().numpy()
    return cam


def cam_in_stretches(model: EcgModel, signal: np.ndarray, chunk: int, engine: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Logits (classes,) and CAM (classes, T) of a whole (leads, T) input, computed in stretches (a strided
    model's feature-grid CAM upsampled to T by its `upsample_map`, as its `forward_with_cam` does)."""
    cam = feature_cam_in_stretches(model, signal, chunk, engine)
    logits = cam.mean(axis=1, dtype=np.float64)
    return logits, _upsampled(model, cam, signal.shape[-1])


def _upsampled(model: EcgModel, cam: np.ndarray, total: int) -> np.ndarray:
    if cam.shape[-1] == total:
        return cam
    with torch.no_grad():
        return model.upsample_map(torch.from_numpy(cam)[None], total)[0].numpy()


def explain_long(model: EcgModel, signal: np.ndarray, name: str, *, chunk: int, target: int | None = None,
                 window: int | None = None, stride: int | None = None, engine: Any = None) -> tuple[np.ndarray, int, np.ndarray]:
    """(map (T,), explained class, logits (classes,)) of `name` in LONG_EXPLAINERS on a whole input.

    cam: the CAM of the class; gradcam: ReLU(CAM) / T' on the feature grid (Grad-CAM on the feature map,
    whose gradient weights are w[c, k] / T' exactly), upsampled; occlusion: drop of the class logit when
    each `window` samples (every `stride`) are zeroed, averaged over the windows covering each sample (as
    captum), from the model's engine (`occlusion_logit_changes`).
    """
    if name not in LONG_EXPLAINERS:
        raise ValueError(f"explaining long inputs in stretches supports {LONG_EXPLAINERS}, not {name!r}")
    feature_cam = feature_cam_in_stretches(model, signal, chunk, engine)
    logits = feature_cam.mean(axis=1, dtype=np.float64)
    c = int(np.argmax(logits)) if target is None else int(target)
    total = signal.shape[-1]
    if name == "cam":
        return _upsampled(model, feature_cam[c:c + 1], total)[0], c, logits
    if name == "gradcam":
        clipped = np.maximum(feature_cam[c:c + 1], 0) / feature_cam.shape[-1]
        return _upsampled(model, clipped, total)[0], c, logits
    if engine is None or not hasattr(engine, "occlusion_logit_changes"):
        raise TypeError(f"{type(model).__name__}: occlusion in stretches needs a fast engine with occlusion_logit_changes")
    if window is None or stride is None:
        raise ValueError("occlusion needs window and stride in samples")
    return _occlusion(model, engine, signal, c, chunk, window, stride), c, logits


def _occlusion(model: EcgModel, engine: Any, signal: np.ndarray, target: int, chunk: int, window: int,
               stride: int) -> np.ndarray:
    """Occlusion map of the target logit, windows grouped by the stretch their start falls in; each crop's
    feature-grid CAM is pooled with the whole input's weights (1 / T' per feature step)."""
    total, grid = signal.shape[-1], _stride(model)
    t_feat = -(-total // grid)
    starts = np.arange(0, total - window + stride, stride)[: int(np.ceil((total - window) / stride)) + 1]
    out, counts = np.zeros(total), np.zeros(total)
    context = _up(3 * _radius(model) + window, grid) + 2 * grid
    for c0, c1, s, e in stretches(total, _up(chunk, grid), context):
        mine = starts[(starts >= s) & (starts < e)]
        if not len(mine):
            continue
        crop = torch.from_numpy(np.ascontiguousarray(signal[:, c0:c1], dtype=np.float32))
        weights = torch.full((-(-(c1 - c0) // grid),), 1.0 / t_feat)
        drop = -engine.occlusion_logit_changes(crop, [int(a - c0) for a in mine], window, weights)[:, target]
        for a, d in zip(mine, drop.tolist(), strict=True):
            out[a:a + window] += d
            counts[a:a + window] += 1
    return (out / np.maximum(counts, 1) * signal.shape[0]).astype(np.float32)
