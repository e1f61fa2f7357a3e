"""The shipped PTB-XL weights scored on fold 10, beside the figures Strodthoff et al. (2021) published.

For every shipped pretrained name whose dataset is `ptbxl` (or the names given), this runs
`ecgzoo evaluate NAME ptbxl --split test` (the weights' own test split: PTB-XL's fold 10, never
used for training, the epoch or the thresholds), and writes `benchmarks/results/ptbxl.json` and a
markdown table: our macro AUROC with its 95% bootstrap interval (1,000 resamples of the records),
F-max, the training wall time and command from the manifest, and the published macro AUROC of
the same task (fold 10, macro AUROC: measured the same way).

The published figures are the paper's Table / the benchmark repository's leaderboard
(helme/ecg_ptbxl_benchmarking, README "Leaderboard"): point estimates with the half-width of a
bootstrap 90% interval in parentheses (their `quantile(0.05)`-`quantile(0.95)`); ours are 95%.

    python benchmarks/bench_ptbxl.py --data /tmp/ecgzoo-data/ptb-xl [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import ecgzoo
from ecgzoo.models.pretrained import find_manifest
from ecgzoo.serving.evaluate import evaluate

sys.path.insert(0, str(Path(__file__).parent))
from machine import machine_info  # noqa: E402

#: Strodthoff et al. 2021 (IEEE JBHI 25(5):1519-1528), macro AUROC on fold 10: (model, AUROC, half-width of 90% CI)
PUBLISHED = {
    "all": [("inception1d", 0.925, 0.008), ("xresnet1d101", 0.925, 0.007), ("resnet1d_wang", 0.919, 0.008)],
    "diag": [("xresnet1d101", 0.937, 0.008), ("resnet1d_wang", 0.936, 0.008), ("inception1d", 0.931, 0.009)],
    "subdiag": [("inception1d", 0.930, 0.010), ("xresnet1d101", 0.929, 0.014), ("resnet1d_wang", 0.928, 0.010)],
    "superdiag": [("resnet1d_wang", 0.930, 0.005), ("xresnet1d101", 0.928, 0.005), ("inception1d", 0.921, 0.006)],
    "form": [("inception1d", 0.899, 0.022), ("xresnet1d101", 0.896, 0.012), ("resnet1d_wang", 0.880, 0.015)],
    "rhythm": [("xresnet1d101", 0.957, 0.019), ("inception1d", 0.953, 0.013), ("lstm", 0.953, 0.009)],
}
RESULTS = Path(__file__).parent / "results" / "ptbxl.json"


def shipped_ptbxl_names() -> list[str]:
    return [n for n in ecgzoo.list_pretrained() if find_manifest(n).training.get("dataset") == "ptbxl"]


def score(name: str, data: str, out: Path) -> dict:
    """Fold-10 figures of one pretrained name, measured now."""
    manifest = find_manifest(name)
    task = manifest.training.get("dataset_options", {}).get("task", "all")
    t0 = time.perf_counter()
    folder = evaluate(name, "ptbxl", {"path": data}, split="test", out=out / name.replace(":", "."), device="cpu")
    metrics = json.loads((folder / "metrics.json").read_text())
    return {"name": name, "task": task, "n": metrics["n"], "macro_auroc": metrics["macro_auroc"],
            "macro_auroc_ci95": metrics.get("macro_auroc_ci95"), "f_max": metrics["f_max"], "macro_f1": metrics["macro_f1"],
            "evaluate_seconds": round(time.perf_counter() - t0, 1), "train_wall_seconds": manifest.training.get("wall_seconds"),
            "training_command": manifest.training_command, "published": PUBLISHED.get(task, [])}


def table(rows: list[dict]) -> str:
    lines = ["| weights | task | fold-10 records | macro AUROC (95% CI) | F-max | train wall time "
             "| best published (Strodthoff et al. 2021) |",
             "|---|---|---:|---|---:|---:|---|"]
    for r in rows:
        lo, hi = r["macro_auroc_ci95"] or (float("nan"), float("nan"))
        pub = ", ".join(f"{m} {a:.3f}({round(h * 1000):02d})" for m, a, h in r["published"][:2])
        wall = f"{r['train_wall_seconds'] / 60:.0f} min" if r["train_wall_seconds"] else "?"
        lines.append(f"| `{r['name']}` | {r['task']} | {r['n']} | **{r['macro_auroc']:.3f}** ({lo:.3f}-{hi:.3f}) | "
                     f"{r['f_max']:.3f} | {wall} | {pub} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="pretrained names (default: every shipped ptbxl one)")
    parser.add_argument("--data", required=True, help="PTB-XL folder (ptbxl_database.csv, records100/)")
    args = parser.parse_args()
    names = args.names or shipped_ptbxl_names()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [score(n, args.data, Path(tmp)) for n in names]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **machine_info(),
                                   "torch": __import__("torch").__version__, "rows": rows}, indent=1) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
