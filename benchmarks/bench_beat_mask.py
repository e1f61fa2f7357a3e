"""What beat masking (trainer-beat-mask) and the local-map variant cost per training step of the cpu recipe.

Two measurements, side by side in one run, on the wall clock and in CPU seconds of this process (on a
shared machine the wall clock also counts other work's turns; CPU seconds do not):
- model step: seconds per bf16 training step (batch 32, 9,000-sample crops: the cpu preset's) of
  `cnnv7-s8` (the shipped weights' model) and `cnnv7-s8-rf2`, interleaved `--rounds` times;
- data: seconds to read one batch of 32 real PhysioNet 2017 records (the default pipeline, 60-s
  padded) through `BeatMaskedDataset` (p, k as the README's command): the first read of an item
  also finds its R-peaks (once per record and run), later reads only draw and fill.

    .venv/bin/python benchmarks/bench_beat_mask.py --path /tmp/ecgzoo-data/training2017 \\
        --cache-dir /tmp/ecgzoo-cache-variant --out benchmarks/results/beat_mask_cost.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import torch
from bench_training import measure
from machine import machine_info

import ecgzoo
from ecgzoo.data.pipeline import Pipeline
from ecgzoo.data.prepared import prepare
from ecgzoo_plugins.augment import BeatMask, BeatMaskedDataset


def data_seconds(path: str, cache_dir: str, records: int, p: float, beats: int) -> dict:
    """Seconds per batch of 32 read plainly, through the mask on first read, and on a later read."""
    data = ecgzoo.create("dataset", "physionet2017", path=path, download=False)
    prepared = prepare(data, Pipeline.for_dataset(data), record_ids=data.record_ids()[:records], cache_dir=cache_dir,
                       progress=False)
    plain = prepared.torch_dataset()
    masked = BeatMaskedDataset(plain, BeatMask(p, beats, prepared.fs))
    torch.manual_seed(0)
    out = {"records": len(plain), "p": p, "beats": beats}
    for label, dataset in (("plain", plain), ("masked_first_read", masked), ("masked_later_read", masked)):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(len(dataset)):
            dataset[i]
        out[f"{label}_seconds_per_batch_of_32"] = round((time.perf_counter() - t0) / len(dataset) * 32, 3)
        out[f"{label}_cpu_seconds_per_batch_of_32"] = round((time.process_time() - c0) / len(dataset) * 32, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", required=True, help="PhysioNet 2017 record folder")
    parser.add_argument("--cache-dir", required=True, help="preprocessed-signal cache folder")
    parser.add_argument("--records", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the two models' step timing")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "beat_mask_cost.json"))
    args = parser.parse_args()
    device = torch.device("cpu")
    steps: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in ("cnnv7-s8", "cnnv7-s8-rf2")}
    for _ in range(args.rounds):
        for name, times in steps.items():
            row = measure(name, 32, args.steps, 9000, 4, device, "bf16")
            times["wall"].append(row["train_seconds_per_step"])
            times["cpu"].append(row["train_cpu_seconds_per_step"])
    results = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), **machine_info(),
        "platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "train_seconds_per_step": {name: {clock: {"rounds": t, "mean": round(sum(t) / len(t), 3)} for clock, t in times.items()}
                                   for name, times in steps.items()},
        "data": data_seconds(args.path, args.cache_dir, args.records, 0.5, 4),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{out.read_text()}wrote {out}")


if __name__ == "__main__":
    main()
