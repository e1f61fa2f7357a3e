"""What integrity checks cost: checkpoint digests on load, cache digest on use.

Checkpoints: the full-size CNNv7 (4 classes) saved as `best` (weights) and as a training state
(weights + Adam moments + RNG states, as the trainer writes `last.safetensors`). For each, the
median over `--repeats` of:
  * plain load: read the file, parse the safetensors tensors and the ecgzoo header (what loading
    cost before digests existed), `ecgzoo.models.checkpoint._read_header`;
  * verified load: `load_checkpoint`, which also recomputes and compares both SHA-256 digests;
  * the digest alone, and `model_from_checkpoint` (rebuild the model and load the weights).
The figures to read are verified / plain and verified / model_from_checkpoint, measured in the
same process moments apart, as CPU time of this process (median), since the machine is shared.

Prepared-signal cache: a `--cache-mb` signals.npy (float32); the SHA-256 of the file
(`ecgzoo.data.prepared.file_sha256`, run on every use of a cache entry) against one pass reading all
the signals through the memory map (what an epoch of training reads at least once).

    .venv/bin/python benchmarks/bench_integrity.py          # writes benchmarks/results/integrity.json
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import ecgzoo
from ecgzoo.data.prepared import file_sha256
from ecgzoo.models.checkpoint import _data_region, _read_header, load_checkpoint, model_from_checkpoint, rng_state, save_checkpoint

RESULTS = Path(__file__).parent / "results" / "integrity.json"


def _median_s(fn, repeats: int) -> float:
    """Median CPU seconds of this process per call: on a machine shared with other work (load far above
    its core count) wall times measure the scheduler, CPU time measures the work."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def _checkpoint_figures(path: Path, repeats: int) -> dict:
    def plain():
        data = path.read_bytes()
        return _read_header(data, str(path))

    def digest():
        data = path.read_bytes()
        return hashlib.sha256(_data_region(data)).hexdigest()

    load_checkpoint(path)  # warm the page cache: every variant reads from memory
    out = {"file_mb": round(path.stat().st_size / 1e6, 2),
           "plain_load_s": _median_s(plain, repeats),
           "verified_load_s": _median_s(lambda: load_checkpoint(path), repeats),
           "read_and_digest_s": _median_s(digest, repeats),
           "model_from_checkpoint_s": _median_s(lambda: model_from_checkpoint(path), repeats)}
    out["verified_over_plain"] = round(out["verified_load_s"] / out["plain_load_s"], 3)
    out["verified_over_model_from_checkpoint"] = round(out["verified_load_s"] / out["model_from_checkpoint_s"], 3)
    return out


def _training_state(model: ecgzoo.EcgModel) -> dict:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 1, 3000)).sum().backward()
    opt.step()
    return {"kind": "training-state", "optimizer": opt.state_dict(), "rng": [rng_state()], "epoch": 1}


def _cache_figures(folder: Path, mb: int, repeats: int) -> dict:
    path = folder / "signals.npy"
    records = max(1, mb * 1_000_000 // (18_000 * 4))
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(records, 1, 18_000))
    arr[:] = np.random.default_rng(0).standard_normal(arr.shape, dtype=np.float32)
    arr.flush()
    del arr
    file_sha256(path)  # warm the page cache

    def one_pass():
        signals = np.load(path, mmap_mode="r")
        return float(sum(float(np.asarray(signals[i]).sum()) for i in range(signals.shape[0])))

    out = {"file_mb": round(path.stat().st_size / 1e6, 1), "records_60s": records,
           "sha256_s": _median_s(lambda: file_sha256(path), repeats),
           "read_all_signals_once_s": _median_s(one_pass, repeats)}
    out["sha256_over_one_pass"] = round(out["sha256_s"] / out["read_all_signals_once_s"], 3)
    out["sha256_mb_per_s"] = round(out["file_mb"] / out["sha256_s"], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--cache-mb", type=int, default=200)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import machine_info

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ecgzoo.create_model("cnnv7", num_classes=4)
    params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory(prefix="ecgzoo-bench-integrity-") as tmp:
        best = save_checkpoint(Path(tmp) / "best.safetensors", model, {"classes": ["N", "A", "O", "~"]})
        last = save_checkpoint(Path(tmp) / "last.safetensors", model, _training_state(model))
        save_s = _median_s(lambda: save_checkpoint(Path(tmp) / "again.safetensors", model, {"classes": ["N", "A", "O", "~"]}),
                           args.repeats)
        result = {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            **machine_info(),
            "torch": torch.__version__, "threads": 1, "repeats": args.repeats, "timing": "median CPU seconds of this process",
            "model": "cnnv7 (full size, 4 classes)", "parameters": params,
            "best": _checkpoint_figures(best, args.repeats),
            "training_state": _checkpoint_figures(last, args.repeats),
            "save_best_s": save_s,
            "cache": _cache_figures(Path(tmp), args.cache_mb, max(3, args.repeats // 5)),
        }
    result["load_average_end"] = round(os.getloadavg()[0], 1)
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
