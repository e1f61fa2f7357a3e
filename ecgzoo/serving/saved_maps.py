"""`ecgzoo explain --save-maps DIR`: every class's map of a whole recording, at the recording's own rate.

For each explainer, one float32 `.npy` of shape (classes, samples): `samples` and the rate are the
recording's own (after `--lead`), whatever rate the model runs at. The recording is cut into the
model's windows as `ecgzoo predict` cuts them (`explain_recording.source_windows`), a batch of
windows at a time is preprocessed by the run's pipeline, classified and explained for every class,
and each window's map (at the model's rate, over the window's recorded part) is interpolated
linearly back onto the recording's samples of that window and written into the file, which is a
memory map: memory holds one batch of windows, never the whole recording (a shorter last window is
moved back to full length, as predict does, and overwrites the overlap). Samples of windows that
could not be analysed (missing samples, say) are NaN. Beside each `.npy` a JSON names the classes,
the rate, the explainer with its options, the model, and each window's probabilities.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgzoo._infra.files import safe_filename, write_json
from ecgzoo.core.explainer import Explainer
from ecgzoo.data.signal_source import InputError, SignalSource
from ecgzoo.serving.explain_recording import prepare_window, source_windows, stack_windows
from ecgzoo.serving.loaded_run import LoadedRun
from ecgzoo.serving.predict import fit_leads, pipeline_for


def to_source_rate(values: np.ndarray, fs_model: float, fs_source: float, samples: int) -> np.ndarray:
    """(K, n) values on a window's model-rate samples, linearly interpolated onto its first `samples`
    samples at the source rate (sample i sits at model position i * fs_model / fs_source; held constant
    past the last model sample)."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    if abs(fs_model - fs_source) <= 1e-9 * fs_source and values.shape[-1] >= samples:
        return values[:, :samples].astype(np.float32)
    pos = np.arange(samples) * (fs_model / fs_source)
    grid = np.arange(values.shape[-1])
    return np.stack([np.interp(pos, grid, v) for v in values]).astype(np.float32)


def _open_outputs(out_dir: Path, stem: str, explainers: Mapping[str, Explainer], shape: tuple[int, int]) -> dict:
    """{explainer: (temporary path, NaN-filled float32 memory map)} of the `.npy` files being written."""
    out = {}
    for name in explainers:
        tmp = out_dir / f".{stem}_{safe_filename(name)}.npy.part"
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        array[:] = np.nan
        out[name] = (tmp, array)
    return out


def save_recording_maps(run: LoadedRun, source: SignalSource, explainers: Mapping[str, Explainer], out_dir: str | Path,
                        *, classes: list[int] | None = None, batch_size: int = 8, device: str = "cpu") -> list[Path]:
    """Write `<name>_<explainer>.npy` (classes, samples) and `.json` into `out_dir` for `source`; the paths.

    `classes`: indices of the classes to explain (default all, in the run's order); the array's rows."""
    source, notes = fit_leads(run, source)
    pipeline, resampled = pipeline_for(run, source.fs)
    classes = list(range(len(run.classes))) if classes is None else list(classes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = safe_filename(source.name)
    outputs = _open_outputs(out_dir, stem, explainers, (len(classes), source.samples))
    try:
        windows = _explain_all(run, source, pipeline, explainers, classes, outputs, batch_size, device)
    except BaseException:
        for tmp, _ in outputs.values():
            tmp.unlink(missing_ok=True)
        raise
    written = []
    for name, (tmp, array) in outputs.items():
        array.flush()
        path = out_dir / f"{stem}_{safe_filename(name)}.npy"
        os.replace(tmp, path)
        meta = {"input": str(source.path), "shape": [len(classes), source.samples], "dtype": "float32",
                "fs": source.fs, "lead_names": list(source.lead_names) or None, "classes": [run.classes[c] for c in classes],
                "explainer": name, "options": _options(explainers[name]),
                "units": getattr(explainers[name], "units", "the explainer's (see ecgzoo.Explainer)"),
                "model": run.label or str(run.path), "model_fs": run.fs, "notes": notes + resampled,
                "resampling": "each window's map linearly interpolated from the model's rate to the recording's",
                "not analysed": "NaN", "windows": windows}
        written += [path, write_json(path.with_suffix(".json"), meta)]
    return written


def _options(explainer: Explainer) -> dict[str, Any] | None:
    config = getattr(explainer, "config", None)
    return None if config is None else config.model_dump(mode="json")


def _explain_all(run: LoadedRun, source: SignalSource, pipeline: Any, explainers: Mapping[str, Explainer],
                 classes: list[int], outputs: dict, batch_size: int, device: str) -> list[dict[str, Any]]:
    """Every window of `source`, `batch_size` at a time, classified and explained into `outputs`; their entries."""
    model = run.model.to(device).eval()
    bounds = source_windows(run, source)
    windows: list[dict[str, Any]] = []
    for s in range(0, len(bounds), batch_size):
        prepared = [prepare_window(run, pipeline, source, a, b) for a, b in bounds[s:s + batch_size]]
        windows += _explain_batch(run, model, source, prepared, bounds[s:s + batch_size], explainers, classes, outputs, device)
    if not any(w["probabilities"] is not None for w in windows):
        raise InputError(f"{source.path}: no window could be analysed ({windows[0]['problem'] or 'no finite output'})")
    return windows


def _explain_batch(run: LoadedRun, model: torch.nn.Module, source: SignalSource, prepared: list, bounds: list,
                   explainers: Mapping[str, Explainer], classes: list[int], outputs: dict, device: str) -> list[dict]:
    """Classify and explain one batch of prepared windows for every class into `outputs`; the windows' entries."""
    ok = [k for k, w in enumerate(prepared) if w[2] is not None]
    entries = [{"start_s": w[0], "end_s": w[1], "probabilities": None, "problem": w[3]} for w in prepared]
    if not ok:
        return entries
    recs = [prepared[k][2] for k in ok]
    x, vl = stack_windows(recs, device)
    with torch.no_grad():
        probs = run.task.probabilities(model(x, valid_length=vl).float()).cpu().numpy()
    for k, p in zip(ok, probs, strict=True):
        entries[k]["probabilities"] = [round(float(v), 5) for v in p] if np.isfinite(p).all() else None
    fs_model = float(recs[0].fs)
    for name, explainer in explainers.items():
        array = outputs[name][1]
        for row, c in enumerate(classes):
            tgt = torch.full((len(ok),), c, dtype=torch.long, device=device)
            attr = explainer.explain(model, x, tgt, vl, fs=fs_model).detach().cpu().numpy()
            for j, (k, rec) in enumerate(zip(ok, recs, strict=True)):
                a, b = bounds[k]
                array[row, a:b] = to_source_rate(attr[j, :rec.valid_length], fs_model, source.fs, b - a)[0]
    return entries
