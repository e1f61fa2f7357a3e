"""`ecgzoo list [KIND]`: every plugin with its kind, source and summary; broken ones with their error."""

from __future__ import annotations

import argparse

from ecgzoo.core.manifest import PretrainedManifest
from ecgzoo.core.registry import KINDS, get_registry

HELP = "list plugins (name, kind, source, summary) and any broken plugin with its error"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", choices=KINDS, help="only plugins of this kind")
    p.add_argument("--pattern", default="*", help="shell-style name filter, e.g. 'cnnv7*'")
    p.add_argument("--pretrained", action="store_true", help="list pretrained weights (MODEL:TAG) with their test figures")


def _list_pretrained(pattern: str) -> int:
    from ecgzoo.models.pretrained import list_pretrained, manifests

    known = manifests()
    found = {n: known[n] for n in list_pretrained(pattern)}
    if not found:
        print(f"no pretrained weights match {pattern!r}")
        return 0
    width = max(len(n) for n in [*found, "NAME"])
    classes = {n: ",".join(m.classes) if len(m.classes) <= 5 else f"{len(m.classes)} labels" for n, m in found.items()}
    cw = max(len(c) for c in [*classes.values(), "CLASSES"])
    print(f"{'NAME':<{width}}  {'CLASSES':<{cw}}  INPUT                  TEST")
    for name, m in found.items():
        contract = f"{m.input.leads} lead, {m.input.fs:g} Hz, {m.input.units}"
        print(f"{name:<{width}}  {classes[name]:<{cw}}  {contract:<21}  {_test_figure(m)}")
    return 0


def _test_figure(m: PretrainedManifest) -> str:
    """The headline test figure of a manifest with its interval: the key its task names (`Task.headline_metric`:
    challenge F1, macro AUROC), called as its scoring calls it; '-' where the test split has none."""
    from ecgzoo.evaluation.task_scoring import scoring
    from ecgzoo.report.task_report import task_of_manifest

    test, task = m.metrics.get("test", {}), task_of_manifest(m)
    key = task.headline_metric
    if test.get(key) is None or not test.get(f"{key}_ci95"):
        return "-"
    lo, hi = test[f"{key}_ci95"]
    return f"{scoring(task).headline_name} {test[key]:.3f} [{lo:.3f}, {hi:.3f}] on {test['n']} records"


def main(args: argparse.Namespace) -> int:
    if args.pretrained:
        return _list_pretrained(args.pattern)
    reg = get_registry()
    entries = reg.entries(args.kind, args.pattern)
    rows = [(e.name, e.kind, e.source, e.summary) for e in entries]
    if rows:
        widths = [max(len(r[i]) for r in rows + [("NAME", "KIND", "SOURCE", "")]) for i in range(3)]
        print(f"{'NAME':<{widths[0]}}  {'KIND':<{widths[1]}}  {'SOURCE':<{widths[2]}}  SUMMARY")
        for r in rows:
            print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
    else:
        print(f"no {args.kind or ''} plugins match {args.pattern!r}".replace("  ", " "))
    broken = [b for b in reg.broken() if args.kind is None or b.kind in ("", args.kind)]
    if broken:
        print(f"\nBROKEN ({len(broken)}): these plugins could not be loaded")
        for b in broken:
            label = f"{b.kind} {b.name}: " if b.name else ""
            print(f"  {label}{b.source}\n    {b.error}")
    return 0
