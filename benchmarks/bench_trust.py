"""How far each explainer can be trusted, measured on held-out real PhysioNet 2017 records.

For a finished run of a model of the CNNv7 family (`--run runs/NAME`, or shipped weights `--run MODEL:TAG`) and the challenge records
(`--data DIR` with A?????.hea/.mat and the reference CSV), on `--records` records the run never
trained on (its validation and test lists, in sorted order), each record preprocessed by the run's
own pipeline and explained for the model's predicted class:

1. Deletion and insertion AUC of every explainer next to the random baseline (random window
   order, mean over `--seeds` seeds, same record and target): the valid signal is cut into
   `--window-s` windows; deletion zeroes the most-attributed windows first (lower AUC = more
   faithful), insertion starts from zero and puts them back first (higher = more faithful). Paired
   statistics per explainer: mean difference to random with a paired bootstrap 95% interval,
   Wilcoxon signed-rank p-value, and the number of records where the explainer beats random.
2. The model-parameter randomisation test (Adebayo et al. 2018) on the first `--sanity` records:
   Spearman rank correlation between the map of the trained model and that of the same
   architecture with re-initialised weights (a map that survives randomisation shows the input,
   not the model; below 0.5 passes, as in tests/test_explainers.py).
3. The beat-template view per true class (paper section 5): CAM and Integrated Gradients cut
   around every R-peak and averaged per class (figure), with the mean normalised map in the P-wave
   region (-250..-80 ms), the QRS (-50..+50 ms) and the T wave (+150..+400 ms), and the beat-to-beat
   RR irregularity (coefficient of variation of RR within a record) per class.

    nice -n 19 .venv/bin/python benchmarks/bench_trust.py --run runs/NAME --data /tmp/ecgzoo-data/training2017
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

import ecgzoo
from ecgzoo.faithfulness import deletion_curve_for_order, window_order

NAMES = ["cam", "gradcam", "saliency", "integrated-gradients", "occlusion"]
REGIONS_MS = {"P wave (-250..-80 ms)": (-250, -80), "QRS (-50..+50 ms)": (-50, 50), "T wave (+150..+400 ms)": (150, 400)}


def held_out_records(run, data_path: str | None, count: int) -> tuple[list, list[str]]:
    """The first `count` (sorted) validation records of the run, preprocessed by its pipeline; skipped ids."""
    split = run.splits or json.loads((run.path / "split.json").read_text())
    ids = sorted(set(split["val"]) | set(split.get("test", [])) - set(split["train"]))
    dataset_opts = dict(run.config.get("dataset", {}))
    if data_path is not None:
        dataset_opts["path"] = data_path
    data = ecgzoo.get_dataset(run.info["dataset"], **dataset_opts)
    records, skipped = [], []
    for rid in ids:
        if len(records) == count:
            break
        try:
            records.append(run.pipeline(data.load(rid)))
        except ecgzoo.RecordError as exc:
            skipped.append(f"{rid}: {exc}")
    return records, skipped


def curves(model, x: torch.Tensor, valid: int, order: np.ndarray, window: int, target: int, steps: int) -> tuple[float, float]:
    """(deletion AUC, insertion AUC) of one window order."""
    kw = {"valid_length": valid, "steps": steps, "batch_size": steps + 1}
    return (deletion_curve_for_order(model, x, order, window, target, **kw).auc,
            deletion_curve_for_order(model, x, order, window, target, insertion=True, **kw).auc)


def paired(expl: np.ndarray, rnd: np.ndarray, better: str) -> dict:
    """Paired comparison of per-record AUCs against random: `better` is 'lower' (deletion) or 'higher'."""
    diff = expl - rnd
    rng = np.random.default_rng(0)
    boot = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(2000)])
    wins = int((diff < 0).sum() if better == "lower" else (diff > 0).sum())
    p = float(stats.wilcoxon(diff).pvalue) if np.any(diff != 0) else 1.0
    return {"auc_mean": float(expl.mean()), "random_mean": float(rnd.mean()), "diff_mean": float(diff.mean()),
            "diff_ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "wilcoxon_p": p, "beats_random": wins, "records": len(diff)}


def randomised(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """The same architecture with every conv and linear weight re-drawn (Xavier, as CNNv7 initialises)."""
    other = copy.deepcopy(model)
    torch.manual_seed(seed)
    for m in other.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear)):
            torch.nn.init.xavier_uniform_(m.weight)
    return other.eval()


def explainers(args: argparse.Namespace, fs: float) -> dict:
    opts = {"integrated-gradients": {"n_steps": args.ig_steps, "internal_batch_size": 8},
            "occlusion": {"window_s": args.occlusion_window, "stride_s": args.occlusion_window}}
    return {n: ecgzoo.create_explainer(n, **opts.get(n, {}), **({"fs": fs} if n == "occlusion" else {})) for n in args.explainers}


def faithfulness(args, run, records) -> tuple[dict, dict, list[int]]:
    """Per-explainer paired tables (deletion, insertion), the maps, and the targets."""
    model, fs = run.model, run.fs
    window = max(1, round(args.window_s * fs))
    expl = explainers(args, fs)
    aucs = {n: {"deletion": [], "insertion": []} for n in [*args.explainers, "random"]}
    maps = {n: [] for n in args.explainers}
    targets = []
    started = time.perf_counter()
    for i, rec in enumerate(records):
        if args.max_seconds and time.perf_counter() - started > args.max_seconds:
            print(f"  time budget of {args.max_seconds:g} s spent: stopping after {i} records", flush=True)
            break
        x = torch.from_numpy(np.ascontiguousarray(rec.signal))
        vl = torch.tensor([rec.valid_length])
        with torch.no_grad():
            target = int(model(x[None], valid_length=vl).argmax())
        targets.append(target)
        for n, e in expl.items():
            m = e.explain(model, x[None], torch.tensor([target]), vl)[0].numpy()
            maps[n].append(m)
            d, ins = curves(model, x, rec.valid_length, window_order(m, window, rec.valid_length), window, target, args.steps)
            aucs[n]["deletion"].append(d)
            aucs[n]["insertion"].append(ins)
        n_win = -(-rec.valid_length // window)
        rnd = [curves(model, x, rec.valid_length, np.random.default_rng(s).permutation(n_win), window, target, args.steps)
               for s in range(args.seeds)]
        aucs["random"]["deletion"].append(float(np.mean([r[0] for r in rnd])))
        aucs["random"]["insertion"].append(float(np.mean([r[1] for r in rnd])))
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{len(records)} records", flush=True)
    table = {}
    for n in args.explainers:
        table[n] = {mode: paired(np.array(aucs[n][mode]), np.array(aucs["random"][mode]),
                                 "lower" if mode == "deletion" else "higher") for mode in ("deletion", "insertion")}
    return table, maps, targets


def sanity(args, run, records, maps, targets) -> dict:
    """Spearman correlation of each explainer's map under the trained vs re-initialised weights."""
    other, fs = randomised(run.model), run.fs
    expl = explainers(args, fs)
    out = {}
    for n, e in expl.items():
        rhos = []
        for rec, m, t in zip(records[:args.sanity], maps[n], targets, strict=False):
            x = torch.from_numpy(np.ascontiguousarray(rec.signal))[None]
            r = e.explain(other, x, torch.tensor([t]), torch.tensor([rec.valid_length]))[0].numpy()
            v = rec.valid_length
            rhos.append(float(stats.spearmanr(m[:v], r[:v]).statistic))
        rhos = np.nan_to_num(np.array(rhos))
        out[n] = {"spearman_mean": float(rhos.mean()), "spearman_abs_mean": float(np.abs(rhos).mean()),
                  "records": len(rhos), "passes": bool(np.abs(rhos).mean() < 0.5)}
    return out


def beat_view(args, run, records, maps, labels) -> dict:
    """Per-class beat templates of CAM and IG: region means of the normalised map, RR irregularity, figures."""
    from ecgzoo.beats import class_templates
    from ecgzoo.figures import plot_class_average
    from ecgzoo.run_dir import save_figure

    result = {}
    for name in [n for n in ("cam", "integrated-gradients") if n in maps]:
        per_class, skipped = class_templates(records, maps[name], labels)
        fig = plot_class_average(per_class, explainer=name, units=records[0].units,
                                 title=f"{name}: mean beat and normalised map per true class ({len(records)} held-out records)")
        figure = save_figure(Path(args.figures) / f"trust_beats_{name}.png", fig, dpi=80)
        rows = {}
        for cls, tpl in per_class.items():
            mean = tpl.mean_attribution()
            rows[cls] = {"beats": int(tpl.count), **{k: float(mean[(tpl.offsets_ms >= a) & (tpl.offsets_ms <= b)].mean())
                                                      for k, (a, b) in REGIONS_MS.items()}}
        result[name] = {"classes": rows, "skipped": len(skipped), "figure": str(figure)}
    rr = {}
    for cls in sorted(set(labels)):
        cvs = []
        for rec, lab in zip(records, labels, strict=True):
            peaks = np.asarray(rec.meta.get("rpeaks", []))
            peaks = peaks[peaks < rec.valid_length] if peaks.size else peaks
            if lab == cls and peaks.size >= 4:
                r = np.diff(peaks) / rec.fs
                cvs.append(float(r.std() / r.mean()))
        rr[cls] = {"records": len(cvs), "rr_cv_median": float(np.median(cvs)) if cvs else None}
    result["rr_irregularity"] = rr
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="finished run directory of a CNNv7-family model trained on PhysioNet 2017")
    p.add_argument("--data", help="folder with the challenge records (training2017); default: the run's dataset path")
    p.add_argument("--records", type=int, default=500)
    p.add_argument("--explainers", default=",".join(NAMES))
    p.add_argument("--window-s", type=float, default=0.5)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--sanity", type=int, default=50)
    p.add_argument("--ig-steps", type=int, default=16)
    p.add_argument("--occlusion-window", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-seconds", type=float, default=0, help="stop scoring new records after this long (0: never); "
                   "the statistics then cover the records scored, and the JSON says how many")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "trust.json"))
    p.add_argument("--figures", default=str(Path(__file__).parent / "results"))
    args = p.parse_args(argv)
    args.explainers = [n.strip() for n in args.explainers.split(",") if n.strip()]
    torch.set_num_threads(args.threads)
    from ecgzoo.run_dir import load_run, write_json

    t0 = time.perf_counter()
    run = load_run(args.run)
    records, skipped = held_out_records(run, args.data, args.records)
    labels = [str(r.label) for r in records]
    print(f"{len(records)} held-out records ({', '.join(f'{c} {labels.count(c)}' for c in sorted(set(labels)))}); "
          f"{len(skipped)} skipped", flush=True)
    table, maps, targets = faithfulness(args, run, records)
    records, labels = records[:len(targets)], labels[:len(targets)]
    accuracy = float(np.mean([run.classes[t] == lab for t, lab in zip(targets, labels, strict=True)]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import machine_info

    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), **machine_info(),
        "setup": f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)",
        "run": run.label or str(run.path), "model": run.info.get("model"), "model_options": run.config.get("model"),
        "parameters": sum(q.numel() for q in run.model.parameters()), "records": len(records), "records_requested": args.records,
        "record_ids": [r.record_id for r in records], "skipped": skipped,
        "labels": {c: labels.count(c) for c in sorted(set(labels))}, "accuracy_on_these": accuracy,
        "settings": {k: getattr(args, k) for k in ("window_s", "steps", "seeds", "sanity", "ig_steps", "occlusion_window")},
        "faithfulness": table, "sanity": sanity(args, run, records, maps, targets),
        "beats": beat_view(args, run, records, maps, labels),
    }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(args.out, result)
    for n, t in table.items():
        d, i = t["deletion"], t["insertion"]
        print(f"{n:<22} deletion {d['auc_mean']:.3f} (random {d['random_mean']:.3f}, diff {d['diff_mean']:+.3f}, "
              f"p {d['wilcoxon_p']:.1e}, wins {d['beats_random']}/{d['records']})  insertion {i['auc_mean']:.3f} "
              f"(random {i['random_mean']:.3f}, diff {i['diff_mean']:+.3f}, p {i['wilcoxon_p']:.1e}, wins {i['beats_random']})  "
              f"sanity rho {result['sanity'][n]['spearman_mean']:+.2f}")
    print(f"accuracy on these records {accuracy:.3f}; {result['seconds']} s; wrote {args.out}")


if __name__ == "__main__":
    main()
