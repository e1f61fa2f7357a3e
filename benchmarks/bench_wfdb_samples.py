"""Regression table: what `ecgzoo predict cnnv7-s8:physionet2017 RECORD --lead 0 --json` does with
real-world kinds of WFDB record, today.

Two sets of records:
  * the kinds `tests/wfdb_fixtures.py` builds (multi-segment in both layouts with a `~` gap, a long
    record with gaps, skew, FLAC, a truncated format-212 file, an empty header, a folder, a one-row
    CSV) and the tests' real MIMIC-II record with gaps;
  * every header of wfdb-python's own `sample-data/` folder when a copy is given (`--samples DIR`;
    not shipped: `git archive` it from https://github.com/MIT-LCP/wfdb-python). Signal files that
    the copy lacks (wfdb-python keeps a few in Git LFS) show up as refusals naming the missing file.

Each record goes through the command line in this process (`ecgzoo.cli.main`), so the outcome is what
a user sees: the class with the share of the recording analysed, or the one-line refusal. Writes
`benchmarks/results/wfdb_samples.json` and `.md`; `--write` puts the table into BENCHMARKS.md between
its markers.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/bench_wfdb_samples.py --samples /tmp/wfdb-samples/sample-data --write
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

import wfdb_fixtures as fx  # noqa: E402
from machine import machine_info  # noqa: E402

MODEL = "cnnv7-s8:physionet2017"
RESULTS = REPO / "benchmarks" / "results"
START, END = "<!-- bench_wfdb_samples:start -->", "<!-- bench_wfdb_samples:end -->"


def built_records(folder: Path) -> list[tuple[str, Path]]:
    """(kind, path) of every kind of record the fixtures build, at 300 Hz (the model's rate)."""
    long_gaps = [(30.0, 3), (75.0, 40), (200.0, 300), (401.0, 5)]
    return [
        ("multi-segment, variable layout (2 min II+V, 1 min `~`, 2 min V+II, 2 min V only)",
         fx.variable_layout_record(folder / "variable", unit=60.0)),
        ("multi-segment, fixed layout", fx.fixed_layout_record(folder / "fixed")),
        ("10-min record, gaps of 3, 40, 300, 5 samples", fx.gapped_record(folder / "gaps", long_gaps, seconds=600.0)),
        ("real MIMIC-II segment with gaps (tests/data)", fx.REAL_GAPS),
        ("skew of 3 samples", fx.skewed_record(folder / "skew3", skew=3, seconds=60.0)),
        ("FLAC (format 516)", fx.flac_record(folder / "flac", seconds=60.0)),
        ("truncated format 212", fx.truncated_212(folder / "trunc")),
        ("empty header", fx.empty_header(folder / "empty")),
        ("a folder", (folder / "variable")),
        ("one-row CSV of 3,000 values", fx.one_row_csv(folder / "csv")),
    ]


def predict(path: Path, base: Path) -> dict:
    """Exit code, and the class with coverage or the refusal line, of one `ecgzoo predict` call."""
    from ecgzoo.cli import main

    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["predict", MODEL, str(path), "--lead", "0", "--json"])
    row: dict = {"exit": code, "seconds": round(time.perf_counter() - t0, 2)}
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    if code == 0:
        (result,) = json.loads(out.getvalue())["results"]
        skipped = sum(1 for w in result["windows"] if (w.get("problem") or "").startswith("not analysed"))
        row.update({"class": result["class"], "analysed_s": result["analysed_s"], "duration_s": result["duration_s"],
                    "windows": len(result["windows"]), "not_analysed": skipped,
                    "bridged": any("bridged" in n for n in result["notes"])})
    else:
        line = lines[-1].removeprefix("ecgzoo predict: error: ") if lines else "(no message)"
        row["refusal"] = line.replace(f"{base}/", "")  # paths as the table shows them
    return row


def outcome(row: dict) -> str:
    if row["exit"] != 0:
        return f"refused: {row['refusal']}".replace("|", "\\|")
    share = 100 * row["analysed_s"] / row["duration_s"] if row["duration_s"] else 0.0
    gaps = f", {row['not_analysed']} of {row['windows']} windows not analysed (missing samples)" if row["not_analysed"] else ""
    return f"**{row['class']}**, {row['analysed_s']:g} of {row['duration_s']:g} s analysed ({share:.0f}%){gaps}" + \
        (", short gaps bridged" if row["bridged"] else "")


def table(rows: list[dict], meta: dict) -> str:
    head = (f"{START}\n## Real-world WFDB records: what `ecgzoo predict` does with them ({meta['date']})\n\n"
            f"`{meta['command']}` on {meta['machine']}. Each row is `ecgzoo predict {MODEL} RECORD --lead 0 --json` "
            f"(in-process); {meta['summary']}. The built kinds come from `tests/wfdb_fixtures.py` (300 Hz, the model's "
            f"rate; 60-s windows). Sample records whose signal file this copy lacks (wfdb-python stores a few in Git "
            f"LFS, and some headers have no data there at all) are refused naming the missing file; wfdb cannot read "
            f"them either.\n\n| record | kind | outcome |\n|---|---|---|\n")
    body = "".join(f"| `{r['record']}` | {r['kind']} | {outcome(r)} |\n" for r in rows)
    return head + body + END + "\n"


def write_benchmarks(text: str) -> None:
    path = REPO / "BENCHMARKS.md"
    old = path.read_text(encoding="utf-8")
    if START in old and END in old:
        new = old[: old.index(START)] + text.rstrip("\n") + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, help="a copy of wfdb-python's sample-data folder")
    parser.add_argument("--write", action="store_true", help="put the table into BENCHMARKS.md")
    parser.add_argument("--render", action="store_true", help="only redraw the table from results/wfdb_samples.json")
    args = parser.parse_args()
    if args.render:
        saved = json.loads((RESULTS / "wfdb_samples.json").read_text())
        return publish(saved.pop("rows"), saved, args.write)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ecgzoo-bench-wfdb-") as tmp:
        for kind, path in built_records(Path(tmp)):
            rows.append({"record": path.name, "kind": kind, **predict(path, path.parent)})
            print(rows[-1], flush=True)
    for hea in sorted(args.samples.rglob("*.hea")) if args.samples else []:
        rows.append({"record": str(hea.relative_to(args.samples)), "kind": "wfdb-python sample-data", **predict(hea, args.samples)})
        print(rows[-1], flush=True)
    done = sum(r["exit"] == 0 for r in rows)
    meta = {"date": datetime.date.today().isoformat(), **machine_info(),
            "command": "benchmarks/bench_wfdb_samples.py" + (f" --samples {args.samples}" if args.samples else ""),
            "summary": f"{len(rows)} records, {done} predicted, {len(rows) - done} refused"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "wfdb_samples.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    publish(rows, meta, args.write)


def publish(rows: list[dict], meta: dict, write: bool) -> None:
    """The Markdown table: printed, in results/wfdb_samples.md, and with `write` in BENCHMARKS.md."""
    text = table(rows, meta)
    (RESULTS / "wfdb_samples.md").write_text(text)
    print(text)
    if write:
        write_benchmarks(text)


if __name__ == "__main__":
    main()
