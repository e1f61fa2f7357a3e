"""The markdown tables of the evidence-removal benchmarks (bench_trust.py, bench_trust_multilabel.py), from
their summaries (`ecgzoo.explain.evidence.summary` per group) as written to their result files."""

from __future__ import annotations

from ecgzoo.explain import evidence


def _cell(row: dict) -> str:
    lo, hi = row["diff_ci95"]
    return (f"{row['auc_mean']:.3f} ({row['random_mean']:.3f}) | {row['diff_mean']:+.3f} [{lo:+.3f}, {hi:+.3f}] | "
            f"{row['wilcoxon_p']:.1e} | {row['beats_random']}/{row['records']}")


def markdown(summaries: dict, fractions: list[float], margin_name: str = "margin", unit: str = "predicted class",
             items: str = "records") -> str:
    """The BENCHMARKS.md tables: per fill, every ordering over all `items`, then MoRF probability per class
    (`margin_name`: what the margin column holds; `unit`: what the class columns group)."""
    j = [fractions.index(f) for f in (0.1, 0.3) if f in fractions]
    lines = []
    for fill, s in summaries["all"].items():
        lines += [f"Fill `{fill}`, all {s['records']} {items} (model passes per record: {s['passes_mean']:.0f}):", "",
                  "| ordering | MoRF prob. AUC (random) | diff [95% CI] | Wilcoxon p | beats random | LeRF prob. AUC (random) "
                  f"| diff [95% CI] | Wilcoxon p | beats random | MoRF {margin_name} diff [95% CI] | energy removed at "
                  + " / ".join(f"{fractions[k]:.0%}" for k in j) + " | R-peaks removed at "
                  + " / ".join(f"{fractions[k]:.0%}" for k in j) + " |",
                  "|---|---|---|---:|---:|---|---|---:|---:|---|---|---|"]
        for name, r in s["orderings"].items():
            m = r["morf_margin"]
            morf = "n/a (the baseline) | | |" if name == evidence.RANDOM_ORDER else _cell(r["morf_probability"])
            lerf = "n/a | | |" if name == evidence.RANDOM_ORDER else _cell(r["lerf_probability"])
            margin = "" if name == evidence.RANDOM_ORDER else f"{m['diff_mean']:+.2f} [{m['diff_ci95'][0]:+.2f}, {m['diff_ci95'][1]:+.2f}]"
            energy = " / ".join(f"{r['morf_energy_share'][k]:.1%}" for k in j)
            peaks = " / ".join(f"{r['morf_rpeaks_share'][k]:.1%}" for k in j)
            lines.append(f"| `{name}` | {morf} | {lerf} | {margin} | {energy} | {peaks} |")
        lines += ["", f"Fill `{fill}`, MoRF probability AUC per {unit}: diff to random [95% CI], Wilcoxon p, records won", "",
                  "| ordering | " + " | ".join(f"{c} ({summaries[c][fill]['records']})" for c in summaries if c != "all") + " |",
                  "|---|" + "---|" * (len(summaries) - 1)]
        for name in s["orderings"]:
            if name == evidence.RANDOM_ORDER:
                continue
            cells = []
            for c in [c for c in summaries if c != "all"]:
                r = summaries[c][fill]["orderings"][name]["morf_probability"]
                cells.append(f"{r['diff_mean']:+.3f} [{r['diff_ci95'][0]:+.3f}, {r['diff_ci95'][1]:+.3f}], "
                             f"p {r['wilcoxon_p']:.1e}, {r['beats_random']}/{r['records']}")
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def old_markdown(old: dict) -> str:
    """What the old test (0.5-s windows zeroed, most attributed first) removed, per order: means over records."""
    fr = list(next(iter(old.values())))
    lines = ["| order (0.5-s windows) | " + " | ".join(f"energy / R-peaks / QRS cut at {float(f):.0%}" for f in fr) + " |",
             "|---|" + "---|" * len(fr)]
    for name, row in old.items():
        lines.append(f"| `{name}` | " + " | ".join(f"{row[f]['energy']:.1%} / {row[f]['rpeaks']:.1%} / {row[f]['qrs_cut']:.1%}"
                                                   for f in fr) + " |")
    return "\n".join(lines)
