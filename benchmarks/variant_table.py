"""The variant comparison of issue 18 item 4: test-split figure beside faithfulness and localisation.

Each `--row LABEL=RUN,TRUST,LOCALISATION` names a finished run directory or shipped `MODEL:TAG` (its
test figures: `metrics.json` of the run, the manifest's `metrics` of shipped weights), the
`bench_trust.py` result of it (--out) and the `bench_localisation.py` result of it (--out; `-` for none).
The table is read from those files, never typed in:

    .venv/bin/python benchmarks/variant_table.py \\
        --row "shipped=cnnv7-s8:physionet2017,benchmarks/results/trust.json,benchmarks/results/localisation.json" \\
        --row "rf2=runs/cnnv7-s8-rf2-physionet2017,benchmarks/results/trust_cnnv7-s8-rf2.json,benchmarks/results/localisation_rf2.json"

Columns: the test split's headline figure with its 95% bootstrap interval and record count; for the
CAM (and `--explainers`), the MoRF probability-AUC difference to random orders with its interval and
the records won (ROAD and donor fills, all records), LeRF likewise (ROAD); and the mean per-record AUROC
of the class-A map over annotated AF samples on the CPSC 2021 records that mix AF and other rhythm.
`--paired A_CSV B_CSV` adds the challenge F1 difference of two models on the same records with a
paired bootstrap interval (from their predictions CSVs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HEADLINE = "challenge_f1"


def test_figures(run: str) -> dict:
    """The `test` section of the run's metrics: metrics.json of a run folder, the manifest of MODEL:TAG."""
    path = Path(run)
    if path.is_dir():
        metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    else:
        from ecgzoo.models.pretrained import find_manifest

        metrics = find_manifest(run).metrics
    if "test" not in metrics:
        raise SystemExit(f"{run}: no test-split figures (metrics has {', '.join(metrics) or 'nothing'})")
    return metrics["test"]


def _diff(row: dict) -> str:
    lo, hi = row["diff_ci95"]
    return f"{row['diff_mean']:+.3f} [{lo:+.3f}, {hi:+.3f}], {row['beats_random']}/{row['records']}"


def trust_cells(trust: dict, explainer: str) -> list[str]:
    """MoRF ROAD, MoRF donor, LeRF ROAD of one explainer over all records (`bench_trust.py` summary)."""
    cells = []
    for fill, curve in (("road", "morf_probability"), ("donor", "morf_probability"), ("road", "lerf_probability")):
        orderings = trust["evidence"]["all"].get(fill, {}).get("orderings", {})
        cells.append(_diff(orderings[explainer][curve]) if explainer in orderings else "not run")
    return cells


def localisation_cell(path: str, explainer: str) -> str:
    if path == "-":
        return "not run"
    found = json.loads(Path(path).read_text(encoding="utf-8"))["summary"].get(explainer)
    if not found or found.get("auroc_mean_paroxysmal") is None:
        return "not run"
    return f"{found['auroc_mean_paroxysmal']:.3f} ({len(found['auroc_per_record'])} records)"


def table(rows: list[tuple[str, str, str, str]], explainers: list[str]) -> str:
    head = ("| weights | test challenge F1 [95% CI], records | explainer | MoRF ROAD diff to random [95% CI], won | "
            "MoRF donor diff | LeRF ROAD diff | trust records | AF-sample AUROC, mixed CPSC records |")
    lines = [head, "|" + "---|" * 8]
    for label, run, trust_path, loc_path in rows:
        test = test_figures(run)
        lo, hi = test.get(f"{HEADLINE}_ci95") or (float("nan"), float("nan"))
        figure = f"{test[HEADLINE]:.3f} [{lo:.3f}, {hi:.3f}], {test.get('n', '?')}"
        trust = json.loads(Path(trust_path).read_text(encoding="utf-8"))
        for name in explainers:
            lines.append(f"| {label} | {figure} | `{name}` | " + " | ".join(trust_cells(trust, name))
                         + f" | {trust['records']} | {localisation_cell(loc_path, name)} |")
    return "\n".join(lines)


def read_predictions(path: str) -> dict[str, tuple[str, str]]:
    """record -> (true, predicted) of a predictions CSV (`predictions_test.csv` of a run, `predictions.csv`
    of `ecgzoo evaluate`)."""
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return {row["record"]: (row["true"], row["predicted"]) for row in csv.DictReader(f)}


def paired_difference(a_csv: str, b_csv: str, classes: list[str], scored: list[str], resamples: int = 1000,
                      seed: int = 0) -> dict:
    """Challenge F1 of B minus A on the same records, with a paired percentile bootstrap interval (the
    same resampled records for both) and the share of resamples where B is lower."""
    import numpy as np

    from ecgzoo.evaluation.metrics import metrics_from_confusion

    a, b = read_predictions(a_csv), read_predictions(b_csv)
    if set(a) != set(b):
        raise SystemExit(f"{a_csv} and {b_csv} hold different records ({len(set(a) ^ set(b))} not in both)")
    ids = sorted(a)
    if any(a[r][0] != b[r][0] for r in ids):
        raise SystemExit(f"{a_csv} and {b_csv} disagree on a record's reference label")
    index = {c: i for i, c in enumerate(classes)}
    t = np.array([index[a[r][0]] for r in ids])
    pa, pb = (np.array([index[m[r][1]] for r in ids]) for m in (a, b))
    k = len(classes)

    def f1(true: np.ndarray, pred: np.ndarray) -> float:
        return metrics_from_confusion(np.bincount(true * k + pred, minlength=k * k).reshape(k, k), classes, scored)["challenge_f1"]

    draws = np.random.default_rng(seed).integers(0, len(ids), size=(resamples, len(ids)))
    pairs = [(f1(t[d], pb[d]), f1(t[d], pa[d])) for d in draws]
    diffs = np.array([fb - fa for fb, fa in pairs if fb is not None and fa is not None])  # undefined: left out
    return {"records": len(ids), "a": f1(t, pa), "b": f1(t, pb), "diff": f1(t, pb) - f1(t, pa),
            "diff_ci95": [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))],
            "share_b_lower": float(np.mean(diffs < 0)), "resamples": len(diffs)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--row", action="append", required=True, help="LABEL=RUN,TRUST_JSON,LOCALISATION_JSON (- for none)")
    p.add_argument("--explainers", default="cam,gradcam,saliency")
    p.add_argument("--paired", nargs=2, metavar=("A_CSV", "B_CSV"),
                   help="also the paired bootstrap of challenge F1 B - A from two predictions CSVs of the same records")
    p.add_argument("--classes", default="N,A,O,~", help="--paired: the classes, in the models' order")
    p.add_argument("--scored", default="N,A,O", help="--paired: the classes the challenge F1 averages")
    args = p.parse_args(argv)
    rows = []
    for text in args.row:
        label, _, rest = text.partition("=")
        parts = rest.split(",")
        if not label or len(parts) != 3:
            p.error(f"--row {text!r}: expected LABEL=RUN,TRUST_JSON,LOCALISATION_JSON")
        rows.append((label, *parts))
    print(table(rows, [n.strip() for n in args.explainers.split(",") if n.strip()]))
    if args.paired:
        d = paired_difference(*args.paired, args.classes.split(","), args.scored.split(","))
        lo, hi = d["diff_ci95"]
        print(f"\npaired on {d['records']} records: challenge F1 {d['a']:.3f} (A) vs {d['b']:.3f} (B), B - A {d['diff']:+.3f} "
              f"[{lo:+.3f}, {hi:+.3f}] (paired bootstrap, {d['resamples']} resamples); B lower in {d['share_b_lower']:.1%} of them")


if __name__ == "__main__":
    main()
