"""Which leads carry each diagnosis: a lead-deletion test of per-lead attribution on PTB-XL fold 10.

For a 12-lead model (`--run runs/NAME`, or shipped weights `--run MODEL:TAG`; `--untrained MODEL` with
`--model-set key=value` builds an untrained one, for smoke tests) and PTB-XL (`--data`, `--task`, which
must give the run's classes), on the records of fold 10 (the first `--max-records` by ecg_id), each
preprocessed by the run's pipeline, for every class a record is positive for:

1. Each explainer of `--explainers` (`lead-occlusion`, `lead-gradxinput`, both in units of the class
   probability: sigmoid for multi-label models) ranks the 12 leads, most relevant first.
2. Lead deletion: the leads are replaced one after another by the fill (`--fill`: zero; other-record,
   the leads of one fold-9 record per record; reconstruct) in the ranking's order and in `--seeds`
   random orders, the same fill and reference record for all; the class probability after 0, 1, ..., 12
   deleted leads and its area over the deleted fraction 0..1 (lower: the ranking found the leads the
   model uses first). Per class: mean AUC of ranking and random (mean over seeds), their paired
   difference with a bootstrap 95% interval and Wilcoxon p, records won (ranking below random); pooled
   over all (record, class) pairs too. Curves are shared: a set of deleted leads is evaluated once per
   record, whichever order reaches it, and all classes come from the same forward pass.
3. The mean rank of each lead per class (1 = most relevant; random: 6.5), with the leads textbooks name
   for CLBBB / CRBBB (V1, V6), IMI (II, III, aVF), AMI (V1-V4), and the superclasses CD and MI.

Cost: per record about 13 + 10 x (seeds + positive classes x explainers) forward passes, plus a backward
pass per positive class for lead-gradxinput: ~90 for task `all` (2.5 positive labels per record). Measured
with an untrained xresnet1d101 on 30-60 fold-10 records (CPU time of one core of this 2-core EPYC): 0.49 s
per record in bf16 with both explainers, 0.34 s with lead-occlusion alone, 0.72 s in fp32 with both; so
all 2,198 records take about 18, 12.5 and 26 minutes. `--max-seconds` (wall time) stops scoring early and
the JSON says how many records were scored (the first ones by ecg_id).

    OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python benchmarks/bench_lead_attribution.py --run MODEL:TAG \\
        --data /tmp/ecgzoo-data/ptb-xl --task all --precision bf16 --explainers lead-occlusion --max-seconds 840
    .venv/bin/python benchmarks/bench_lead_attribution.py --table benchmarks/results/lead_attribution_all.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ecgzoo
from ecgzoo.core.leads import STANDARD_12, canonical_leads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info  # noqa: E402

from ecgzoo.explain.evidence import paired  # noqa: E402 (the paired statistics of the trust benchmark)

EXPLAINERS = ("lead-occlusion", "lead-gradxinput")
#: the leads textbooks name for a statement (empty: reported without expected leads)
TEXTBOOK = {"CLBBB": ("V1", "V6"), "CRBBB": ("V1", "V6"), "IMI": ("II", "III", "aVF"), "AMI": ("V1", "V2", "V3", "V4"),
            "CD": (), "MI": ()}
RESULTS = Path(__file__).resolve().parent / "results"


@dataclasses.dataclass
class Subject:
    """The model under test and how its inputs are made."""

    model: ecgzoo.EcgModel
    pipeline: Any
    classes: list[str]
    multi: bool
    label: str
    model_name: str

    @property
    def output(self) -> str:
        return "sigmoid" if self.multi else "softmax"


def _set_value(text: str) -> tuple[str, Any]:
    key, _, value = text.partition("=")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def load_subject(args: argparse.Namespace, dataset: Any) -> Subject:
    """The run (`--run`) or an untrained model (`--untrained`); exits naming both lists when classes differ."""
    from ecgzoo.data.pipeline import Pipeline
    from ecgzoo.serving.loaded_run import load_run

    if args.run:
        run = load_run(args.run)
        if list(run.classes) != list(dataset.classes):
            raise SystemExit(f"{args.run}: its {len(run.classes)} classes are not those of PTB-XL task {args.task!r} "
                             f"({len(dataset.classes)}); pass the task the run was trained on (--task)")
        return Subject(run.model, run.pipeline, list(run.classes), run.task.multi, run.label or str(run.path),
                       str(run.info.get("model")))
    torch.manual_seed(args.model_seed)
    options = dict(_set_value(s) for s in args.model_set)
    model = ecgzoo.create_model(args.untrained, num_classes=len(dataset.classes), in_leads=12, **options).eval()
    return Subject(model, Pipeline.for_dataset(dataset, "ptbxl"), list(dataset.classes), dataset.task.multi,
                   f"untrained {args.untrained} {options}", args.untrained)


def load_records(dataset: Any, pipeline: Any, ids: list[str], limit: int) -> tuple[list, list[str]]:
    """The first `limit` (0: all) of `ids` by ecg_id, preprocessed; the skipped ones with their reason."""
    records, skipped = [], []
    for rid in sorted(ids, key=int):
        if limit and len(records) == limit:
            break
        try:
            records.append(pipeline(dataset.load(rid)))
        except ecgzoo.RecordError as exc:
            skipped.append(f"{rid}: {exc}")
    return records, skipped


def rankings(subject: Subject, explainers: dict, x: torch.Tensor, positives: list[int], base: torch.Tensor,
             occluded: torch.Tensor) -> dict[str, np.ndarray]:
    """Per explainer, the lead orders (positives, leads), most relevant first, for the positive classes."""
    out = {}
    for name, explainer in explainers.items():
        if name == "lead-occlusion":  # from the occlusions already computed for the curves
            p = len(positives)
            scores = explainer.drops(base.expand(p, -1), occluded.expand(p, -1, -1, -1), torch.tensor(positives))
        else:
            scores = explainer.lead_scores(subject.model, x[None].expand(len(positives), -1, -1), torch.tensor(positives))
        out[name] = np.argsort(-scores.numpy(), axis=1, kind="stable")
    return out


def evaluate_sets(subject: Subject, x: torch.Tensor, sets: list[frozenset], fill: str, reference: torch.Tensor | None,
                  lead_names: tuple[str, ...], batch_size: int) -> list[torch.Tensor]:
    """Class probabilities (K,) of `x` with each set of leads filled, `batch_size` inputs per forward pass."""
    from ecgzoo_plugins.lead_attribution import explained
    from ecgzoo_plugins.lead_fill import fill_leads

    out = []
    for s in range(0, len(sets), batch_size):
        chunk = sets[s:s + batch_size]
        deleted = torch.zeros(len(chunk), x.shape[0], dtype=torch.bool)
        for i, leads in enumerate(chunk):
            deleted[i, list(leads)] = True
        copies = x[None].expand(len(chunk), -1, -1)
        ref = None if reference is None else reference[None].expand(len(chunk), -1, -1)
        with torch.no_grad():
            logits = subject.model(fill_leads(copies, deleted, fill, reference=ref, lead_names=lead_names)).float()
        out.extend(explained(logits, subject.output))
    return out


def record_curves(subject: Subject, explainers: dict, x: torch.Tensor, positives: list[int], fill: str,
                  reference: torch.Tensor | None, lead_names: tuple[str, ...], orders_seed: list[int], args: Any) -> dict:
    """Deletion AUCs of one record for its positive classes: {"random": (P,), explainer: (P,)} and the lead ranks."""
    leads = x.shape[0]
    occ = explainers.get("lead-occlusion") or ecgzoo.create_explainer("lead-occlusion", fill=fill, leads=list(lead_names))
    base, occluded = occ.occluded_logits(subject.model, x[None], reference=None if reference is None else reference[None, None])
    base, occluded = base.float(), occluded.float()  # bf16 under --precision bf16
    from ecgzoo_plugins.lead_attribution import explained

    probs = explained(torch.cat([base, occluded[0, 0]]), subject.output)  # the record, then lead k filled
    cache = {frozenset(): probs[0], **{frozenset([k]): probs[1 + k] for k in range(leads)}}
    ranks = rankings(subject, explainers, x, positives, base, occluded)
    randoms = [np.random.default_rng([*orders_seed, s]).permutation(leads) for s in range(args.seeds)]
    orders = [*randoms, *(o for r in ranks.values() for o in r)]
    missing = sorted({frozenset(o[:k].tolist()) for o in orders for k in range(2, leads + 1)} - set(cache), key=sorted)
    cache.update(zip(missing, evaluate_sets(subject, x, missing, fill, reference, lead_names, args.batch_size), strict=True))
    fraction = np.arange(leads + 1) / leads

    def curve(order: np.ndarray) -> np.ndarray:  # (leads + 1, K)
        return torch.stack([cache[frozenset(order[:k].tolist())] for k in range(leads + 1)]).numpy()

    rand = np.mean([np.trapezoid(curve(o)[:, positives], fraction, axis=0) for o in randoms], axis=0)
    result = {"random": rand, "ranks": {}}
    for name, r in ranks.items():
        result[name] = np.array([np.trapezoid(curve(o)[:, c], fraction) for o, c in zip(r, positives, strict=True)])
        result["ranks"][name] = np.argsort(r, axis=1) + 1  # (P, leads): rank of each lead, 1 = most relevant
    result["forwards"] = 1 + leads + len(missing)
    return result


def score_records(subject: Subject, records: list, references: list, lead_names: tuple[str, ...], args: Any) -> dict:
    """Per fill, per (record, positive class): the AUCs and lead ranks; stops after `--max-seconds`."""
    rows: dict[str, list[dict]] = {f: [] for f in args.fill}
    started, scored, forwards = time.perf_counter(), 0, 0
    for i, rec in enumerate(records):
        if args.max_seconds and time.perf_counter() - started > args.max_seconds:
            print(f"  time budget of {args.max_seconds:g} s spent: stopping after {i} records", flush=True)
            break
        x = torch.from_numpy(np.ascontiguousarray(rec.signal, dtype=np.float32))
        positives = [subject.classes.index(c) for c in rec.label]
        for fill in args.fill:
            ref = torch.from_numpy(references[i % len(references)].signal) if fill == "other-record" else None
            explainers = {n: ecgzoo.create_explainer(n, output=subject.output, **(
                {"fill": fill, "leads": list(lead_names)} if n == "lead-occlusion" else {})) for n in args.explainers}
            r = record_curves(subject, explainers, x, positives, fill, ref, lead_names, [args.seed, i], args)
            forwards += r["forwards"] + (3 * len(positives) if "lead-gradxinput" in explainers else 0)
            for j, c in enumerate(positives):
                rows[fill].append({"record": rec.record_id, "class": subject.classes[c], "random": float(r["random"][j]),
                                   **{n: float(r[n][j]) for n in args.explainers},
                                   "ranks": {n: r["ranks"][n][j].tolist() for n in args.explainers}})
        scored = i + 1
        if scored % 25 == 0:
            rate = scored / (time.perf_counter() - started)
            print(f"  {scored}/{len(records)} records, {rate:.2f} records/s", flush=True)
    return {"rows": rows, "records_scored": scored, "forward_equivalents": forwards}


def class_table(rows: list[dict], name: str, classes: list[str]) -> dict:
    """Per class with >= 2 positive records, and pooled: the paired comparison of the ranking with random."""
    table = {}
    for cls in [*classes, "all"]:
        mine = [r for r in rows if cls in ("all", r["class"])]
        if len(mine) >= 2:
            table[cls] = paired(np.array([r[name] for r in mine]), np.array([r["random"] for r in mine]), "lower")
        elif mine:
            table[cls] = {"auc_mean": mine[0][name], "random_mean": mine[0]["random"], "records": 1}
    return table


def lead_ranking(rows: list[dict], name: str, classes: list[str], lead_names: tuple[str, ...]) -> dict:
    """Per class: mean rank of each lead (1 = most relevant), leads by mean rank; the textbook statements' check."""
    out = {}
    for cls in classes:
        ranks = np.array([r["ranks"][name] for r in rows if r["class"] == cls], dtype=np.float64)
        if not len(ranks):
            continue
        mean = ranks.mean(axis=0)
        entry = {"records": len(ranks), "mean_rank": dict(zip(lead_names, mean.round(3).tolist(), strict=True)),
                 "order": [lead_names[k] for k in np.argsort(mean, kind="stable")]}
        expected = TEXTBOOK.get(cls)
        if expected:
            idx = [lead_names.index(lead) for lead in expected if lead in lead_names]
            entry["textbook"] = {"leads": list(expected), "mean_rank": float(mean[idx].mean()),
                                 "random_mean_rank": (len(lead_names) + 1) / 2,
                                 "top_lead_in_textbook": float(np.isin(ranks.argmin(axis=1), idx).mean()),
                                 "random_top_lead_in_textbook": len(idx) / len(lead_names)}
        out[cls] = entry
    return out


def summarise(scored: dict, subject: Subject, lead_names: tuple[str, ...], args: Any) -> dict:
    return {fill: {name: {"classes": class_table(rows, name, subject.classes),
                          "ranking": lead_ranking(rows, name, subject.classes, lead_names)} for name in args.explainers}
            for fill, rows in scored["rows"].items()}


def _ci(row: dict) -> str:
    if "diff_ci95" not in row:
        return "-"
    lo, hi = row["diff_ci95"]
    return f"{row['diff_mean']:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def markdown(result: dict, min_records: int = 5) -> str:
    """The deletion tables (classes with >= `min_records` positive records, pooled row first) and the rank table."""
    lines = [f"Lead deletion on PTB-XL fold {result['fold']}, task {result['task']}: {result['run']}, {result['records']} records; "
             f"AUC of the class probability over the deleted fraction of leads (lower = the ranking found the leads the model "
             f"uses), ranking vs {result['settings']['seeds']} random orders, same fill."]
    for fill, per_explainer in result["results"].items():
        for name, res in per_explainer.items():
            lines += ["", f"**fill {fill}, {name}**", "",
                      "| class | records | AUC ranking | AUC random | difference [95% CI] | won |", "|---|---|---|---|---|---|"]
            rows = sorted(((c, r) for c, r in res["classes"].items() if c == "all" or r["records"] >= min_records),
                          key=lambda cr: (cr[0] != "all", -cr[1]["records"], cr[0]))
            for cls, r in rows:
                won = f"{r['beats_random']}/{r['records']}" if "beats_random" in r else "-"
                lines.append(f"| {'all (pooled)' if cls == 'all' else cls} | {r['records']} | {r['auc_mean']:.3f} | "
                             f"{r['random_mean']:.3f} | {_ci(r)} | {won} |")
    for fill, per_explainer in result["results"].items():
        for name, res in per_explainer.items():
            lines += ["", f"**mean lead rank per statement (1 = most relevant, random 6.5), fill {fill}, {name}**", ""]
            lines += rank_rows(res["ranking"]) or [f"(none of {', '.join(TEXTBOOK)} among the scored records)"]
    return "\n".join(lines)


def rank_rows(ranking: dict) -> list[str]:
    """The markdown rank table of the TEXTBOOK statements present in `ranking`; [] when none is."""
    rows = []
    for cls in [c for c in TEXTBOOK if c in ranking]:
        entry = ranking[cls]
        tb = entry.get("textbook")
        named = ", ".join(tb["leads"]) if tb else "-"
        mean = f"{tb['mean_rank']:.2f}" if tb else "-"
        top = f"{tb['top_lead_in_textbook']:.2f} ({tb['random_top_lead_in_textbook']:.2f})" if tb else "-"
        rows.append(f"| {cls} | {entry['records']} | {named} | {mean} | {top} | {' '.join(entry['order'])} |")
    header = ["| statement | records | textbook leads | their mean rank | top lead among them (random) | leads by mean rank |",
              "|---|---|---|---|---|---|"]
    return header + rows if rows else []


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--run", help="finished run directory or shipped weights MODEL:TAG of a 12-lead PTB-XL model")
    who.add_argument("--untrained", metavar="MODEL", help="an untrained model of this name (smoke tests)")
    who.add_argument("--table", metavar="JSON", help="print the markdown tables of a result file and stop")
    p.add_argument("--model-set", action="append", default=[], metavar="KEY=VALUE", help="--untrained: a model option (JSON value)")
    p.add_argument("--model-seed", type=int, default=0)
    p.add_argument("--data", help="PTB-XL folder (with ptbxl_database.csv)")
    p.add_argument("--task", default="all", help="PTB-XL task: all, diag, subdiag, superdiag, form, rhythm")
    p.add_argument("--fold", type=int, default=10, help="the fold scored (references for other-record come from fold 9)")
    p.add_argument("--fill", default="zero", help="comma-separated: zero, other-record, reconstruct")
    p.add_argument("--explainers", default=",".join(EXPLAINERS))
    p.add_argument("--seeds", type=int, default=3, help="random lead orders per record")
    p.add_argument("--seed", type=int, default=0, help="seed of the random orders")
    p.add_argument("--max-records", type=int, default=0, help="score the first N records of the fold by ecg_id (0: all)")
    p.add_argument("--max-seconds", type=float, default=0, help="stop scoring new records after this long (0: never)")
    p.add_argument("--reference-records", type=int, default=64, help="fold-9 records whose leads the other-record fill uses")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: the model's forward and backward passes under bfloat16 autocast (about twice as fast on CPUs "
                   "with native bf16; class probabilities move by ~0.01, alike for ranking and random orders)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--min-records", type=int, default=5, help="markdown: classes with at least this many positive records")
    p.add_argument("--out", help="result JSON (default: benchmarks/results/lead_attribution_TASK.json)")
    args = p.parse_args(argv)
    if args.table is None and (not args.data or args.seeds < 1):
        p.error("--data is required (the PTB-XL folder) and --seeds must be at least 1")
    args.out = args.out or str(RESULTS / f"lead_attribution_{args.task}.json")
    args.fill = [f.strip() for f in args.fill.split(",") if f.strip()]
    args.explainers = [n.strip() for n in args.explainers.split(",") if n.strip()]
    bad = [f for f in args.fill if f not in ("zero", "other-record", "reconstruct")] + [n for n in args.explainers if n not in EXPLAINERS]
    if bad or not args.fill or not args.explainers:
        p.error(f"unknown fill or explainer {bad}; fills: zero, other-record, reconstruct; explainers: {', '.join(EXPLAINERS)}")
    return args


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    if args.table:
        print(markdown(json.loads(Path(args.table).read_text()), args.min_records))
        return None
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    dataset = ecgzoo.get_dataset("ptbxl", path=args.data, task=args.task, download=False, val_folds=[9], test_folds=[args.fold])
    subject = load_subject(args, dataset)
    split = dataset.default_split()
    records, skipped = load_records(dataset, subject.pipeline, split["test"], args.max_records)
    references = load_records(dataset, subject.pipeline, split["val"], args.reference_records)[0] if "other-record" in args.fill else []
    if not records or ("other-record" in args.fill and not references):
        raise SystemExit(f"{args.data}: no readable record in fold {args.fold} (or none in fold 9 for other-record)")
    names = records[0].lead_names
    lead_names = canonical_leads(names) if names else STANDARD_12[:records[0].signal.shape[0]]
    print(f"{len(records)} records of fold {args.fold} ({len(skipped)} skipped), {len(subject.classes)} classes; {subject.label}",
          flush=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
        scored = score_records(subject, records, references, lead_names, args)
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), **machine_info(),
        "setup": f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)",
        "run": subject.label, "model": subject.model_name, "task": args.task, "fold": args.fold, "data": args.data,
        "parameters": sum(q.numel() for q in subject.model.parameters()), "records": scored["records_scored"],
        "records_requested": args.max_records or len(split["test"]),
        "record_ids": [r.record_id for r in records[:scored["records_scored"]]],
        "skipped": skipped, "lead_names": list(lead_names), "probability": subject.output,
        "settings": {k: getattr(args, k) for k in ("fill", "explainers", "seeds", "seed", "reference_records", "batch_size",
                                                "precision")},
        "forward_equivalents": scored["forward_equivalents"], "results": summarise(scored, subject, lead_names, args),
    }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    from ecgzoo._infra.files import write_json

    write_json(args.out, result)
    print(markdown(result, args.min_records))
    print(f"{result['records']} records in {result['seconds']} s; wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
