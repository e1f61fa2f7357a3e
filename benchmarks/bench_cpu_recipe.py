"""The cpu preset on PhysioNet 2017: train it (or read a finished run) and tabulate what it measured.

Prints Markdown for BENCHMARKS.md and writes results/cpu_recipe.json: wall time (preparation
included), training speed per epoch, validation challenge F1 per epoch, and the test split's figures
with their 95% bootstrap interval, all read from the run's own files (nothing typed in).

    .venv/bin/python benchmarks/bench_cpu_recipe.py --data /data/training2017          # trains (about an hour)
    .venv/bin/python benchmarks/bench_cpu_recipe.py --run runs/cnnv7-s8-cpu             # tabulates a finished run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def train(data: str, out: str, name: str) -> tuple[Path, float]:
    cmd = [str(Path(sys.executable).parent / "ecgzoo"), "run", "cnnv7-s8", "physionet2017", "--preset", "cpu",
           "--set", f"dataset.path={data}", "--set", f"output_dir={out}", "--set", f"name={name}"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return Path(out) / name, time.perf_counter() - t0


def summary(run: Path, wall: float | None) -> dict:
    info = json.loads((run / "run.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    history = json.loads((run / "history.json").read_text())
    env = json.loads((run / "environment.json").read_text())
    test = metrics["test"]
    return {
        "run": str(run), "git_commit": env.get("git_commit"), "torch": env.get("torch"), "platform": env.get("platform"),
        "records": info["records"], "train_records": info["train_records"], "val_records": info["val_records"],
        "test_records": info["test_records"], "run_seconds": info.get("seconds"), "wall_seconds": wall,
        "train_seconds": round(sum(h["seconds"] for h in history), 1),
        "records_per_s": [h["records_per_s"] for h in history], "val_challenge_f1": [round(h["val_challenge_f1"], 4) for h in history],
        "best_epoch": metrics["best_epoch"], "val_best": round(metrics["challenge_f1"], 4),
        "test": {"challenge_f1": test["challenge_f1"], "ci95": test["challenge_f1_ci95"], "accuracy": test["accuracy"],
                 "f1": {c: m["f1"] for c, m in test["per_class"].items()}, "n": test["n"]},
    }


def markdown(s: dict) -> str:
    t = s["test"]
    f1 = ", ".join(f"{c} {v:.3f}" for c, v in t["f1"].items())
    rates = s["records_per_s"]
    return "\n".join([
        "| split | records | challenge F1 | 95% interval | accuracy | F1 per class |",
        "|---|---|---|---|---|---|",
        f"| test (fixed 15%, never seen) | {t['n']} | **{t['challenge_f1']:.3f}** | {t['ci95'][0]:.3f}-{t['ci95'][1]:.3f} "
        f"| {t['accuracy']:.3f} | {f1} |",
        f"| validation (picks the epoch) | {s['val_records']} | {s['val_best']:.3f} (epoch {s['best_epoch']}) | | | |",
        "",
        f"Run {s['run_seconds']} s in all (`run.json`, preparation included); training {s['train_seconds']} s over "
        f"{len(rates)} epochs of {s['train_records']} records ({min(rates):.0f}-{max(rates):.0f} records/s).",
        "Validation challenge F1 per epoch: " + ", ".join(f"{v:.3f}" for v in s["val_challenge_f1"]) + ".",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a finished cpu-preset run to tabulate")
    parser.add_argument("--data", help="PhysioNet 2017 training folder: train first")
    parser.add_argument("--out-dir", default="runs")
    parser.add_argument("--name", default="cnnv7-s8-cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cpu_recipe.json"))
    args = parser.parse_args()
    if args.run is None and args.data is None:
        parser.error("give --run (a finished run) or --data (to train)")
    run, wall = (Path(args.run), None) if args.run else train(args.data, args.out_dir, args.name)
    s = summary(run, wall)
    print(markdown(s))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(s, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
