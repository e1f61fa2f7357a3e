"""The long run of the fuzzing harness (tests/fuzz_harness.py): many more cases than CI, all counted.

Builds the tests' tiny run once, then draws `--predict`, `--explain`, `--dataset`, `--evaluate`
and `--checkpoint` cases with hypothesis (random, seeded by `--seed`; generation only, no
shrinking, so each case is a fresh one) and checks the harness invariant on each, recording every
violation instead of stopping at the first. Prints and writes the counts (cases, exits 0 / non-zero,
violations with examples) to `benchmarks/results/fuzz_long.json`.

    nice -n 19 .venv/bin/python benchmarks/fuzz_long.py            # default budget
    nice -n 19 .venv/bin/python benchmarks/fuzz_long.py --predict 50 --explain 5 --dataset 20 --evaluate 3 --checkpoint 20
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import toy_plugins  # noqa: E402
from fuzz_harness import (  # noqa: E402
    Outcome,
    build_input,
    build_run_copy,
    check_dataset,
    check_evaluate,
    check_explain,
    check_predict,
    checkpoint_case,
    input_case,
    load_sources,
    run_cli,
    violations,
    write_folder,
)
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from run_helpers import cli, tiny_run_args  # noqa: E402

import ecgzoo  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "fuzz_long.json"
SAMPLE = Path(os.environ.get("ECGZOO_SHARED_DATA", REPO.parent / "shared" / "data")) / "physionet2017-sample"


class OutOfTime(Exception):
    """A property's time budget (--seconds) is spent: stop drawing cases for it."""


class Tally:
    """Cases, exit codes and violations of one property."""

    def __init__(self) -> None:
        self.out_of_time = False
        self.harness_errors: list[str] = []
        self.cases = 0
        self.exit_codes: collections.Counter = collections.Counter()
        self.violations: list[dict] = []

    def add(self, outcome: Outcome, case: object) -> None:
        found, code = outcome.violations, outcome.code
        self.cases += 1
        self.exit_codes[str(code)] += 1
        if found:
            self.violations.append({"case": repr(case)[:400], "violations": found})
            print(f"  violation: {found} in {repr(case)[:300]}", flush=True)

    def summary(self, seconds: float) -> dict:
        return {"cases": self.cases, "stopped_by_time_budget": self.out_of_time,
                "cases_the_harness_could_not_build": len(self.harness_errors), "harness_errors": self.harness_errors[:5],
                "exit_codes": dict(self.exit_codes), "violations": len(self.violations),
                "violation_examples": self.violations[:10], "seconds": round(seconds, 1)}


def _property(name: str, examples: int, strategy: dict, body, tallies: dict, seed_value: int, seconds: float) -> None:
    """Draw up to `examples` cases (or as many as `seconds` allow) and tally each."""
    tally = tallies.setdefault(name, Tally())
    stop_at = time.perf_counter() + seconds

    @seed(seed_value)
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(**strategy)
    def run(**kwargs):
        if time.perf_counter() > stop_at:
            raise OutOfTime
        try:
            body(tally, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the harness could not build this case (ecgzoo's own calls never raise here)
            tally.harness_errors.append(f"{type(exc).__name__}: {exc}"[:200])

    try:
        run()
    except OutOfTime:
        tally.out_of_time = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("predict", 600), ("explain", 60), ("dataset", 400), ("evaluate", 30), ("checkpoint", 400)):
        parser.add_argument(f"--{name}", type=int, default=default, help=f"{name} cases (default {default})")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--seconds", type=float, default=600.0, help="time budget per property (default 600)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    ecgzoo.register_plugin(toy_plugins, "toy-plugins")
    sources = load_sources(SAMPLE if (SAMPLE / "REFERENCE.csv").is_file() else None)
    tallies: dict[str, Tally] = {}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ecgzoo-fuzz-long-") as tmp:
        root = Path(tmp)
        code, _, err = cli(*tiny_run_args(root / "runs", "tiny"))
        assert code == 0, err
        run_dir = root / "runs" / "tiny"
        counter = iter(range(10**9))

        def fresh() -> Path:
            folder = root / f"case{next(counter)}"
            folder.mkdir()
            return folder

        def predict(tally, case):
            path, extra = build_input(fresh(), sources, case)
            tally.add(check_predict(run_dir, path, extra), case)

        def explain(tally, case):
            folder = fresh()
            path, extra = build_input(folder, sources, case)
            tally.add(check_explain(run_dir, path, extra, folder / "out"), case)

        def dataset(tally, case):
            folder = fresh()
            tally.add(check_dataset(folder, write_folder(folder, sources, case)), case)

        def evaluate(tally, case):
            folder = fresh()
            data = folder / "data"
            data.mkdir()
            rid = write_folder(data, sources, case)
            tally.add(check_evaluate(run_dir, data, rid, folder / "eval"), case)

        def checkpoint(tally, edits, case):
            folder = fresh()
            run_copy = build_run_copy(run_dir, folder, edits)
            path, _ = build_input(folder, sources, {**case, "format": "npy", "mutations": []})
            result = run_cli("predict", str(run_copy), str(path), "--fs", "300", "--json")
            tally.add(Outcome(result[0], violations("predict", result, [str(run_copy)])), (edits, case))

        plan = [("predict", predict, {"case": input_case(len(sources))}),
                ("explain", explain, {"case": input_case(len(sources))}),
                ("dataset", dataset, {"case": input_case(len(sources))}),
                ("evaluate", evaluate, {"case": input_case(len(sources))}),
                ("checkpoint", checkpoint, {"edits": checkpoint_case(), "case": input_case(len(sources))})]
        for name, body, strategy in plan:
            t0 = time.perf_counter()
            _property(name, getattr(args, name), strategy, body, tallies, args.seed, args.seconds)
            seconds[name] = time.perf_counter() - t0
            print(f"{name}: {tallies[name].cases} cases, {len(tallies[name].violations)} violations "
                  f"({seconds[name]:.0f} s)", flush=True)
    result = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()}-core {platform.machine()} CPU, shared (load average {os.getloadavg()[0]:.1f} at end)",
        "command": "benchmarks/fuzz_long.py " + " ".join(sys.argv[1:]),
        "seed": args.seed, "real_records": [s.name for s in sources if s.files],
        "total_cases": sum(t.cases for t in tallies.values()),
        "total_violations": sum(len(t.violations) for t in tallies.values()),
        "seconds": round(time.perf_counter() - started, 1),
        "properties": {name: t.summary(seconds[name]) for name, t in tallies.items()},
    }
    print(json.dumps({k: v for k, v in result.items() if k != "properties"}, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
