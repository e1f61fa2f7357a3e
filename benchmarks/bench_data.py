"""Loading + preprocessing throughput on the real PhysioNet 2017 records, cold and cached.

    .venv/bin/python benchmarks/bench_data.py                      # all 7,529 records, 2 workers
    .venv/bin/python benchmarks/bench_data.py --limit 500          # a quick look

Unpacks ../shared/data/physionet2017/training2017.tar.xz to /tmp/ecgzoo-data/ when not there
yet. Each phase runs in a fresh process so its peak RSS is its own:

- load:    reading every record (wfdb, validation), no preprocessing;
- rpeaks:  the R-peak detector alone (XQRS + peak correction) on band-passed records, timed
           around the detector call only;
- cold:    `prepare()` with the paper's pipeline (bandpass -> rpeaks -> rpeak-normalize ->
           pad-crop 60 s) into an empty cache folder;
- cached:  `prepare()` again (cache hit), then reading every signal once (sum over the memmap).

Prints the figures and writes them to benchmarks/results/data.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from machine import machine_info

REPO = Path(__file__).resolve().parent.parent
ARCHIVE = REPO.parent / "shared" / "data" / "physionet2017" / "training2017.tar.xz"
DATA_ROOT = Path("/tmp/ecgzoo-data")
RESULTS = REPO / "benchmarks" / "results" / "data.json"


def ensure_data(archive: Path, root: Path) -> Path:
    folder = root / "training2017"
    if not (folder / "REFERENCE-v3.csv").is_file():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".unpacking-"))
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        os.rename(tmp / "training2017", folder)
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _peak_rss_mb() -> dict[str, float]:
    # ru_maxrss is in KiB on Linux
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_rss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


class _MemorySampler(threading.Thread):
    """Peak anonymous (heap) and file-backed (memmap, page cache) resident memory of this process.

    Separating them shows whether the prepared array is held in the heap (a second copy) or
    only in the memory-mapped cache file; tracemalloc would slow the forked workers down.
    """

    def __init__(self, interval: float = 0.1):
        super().__init__(daemon=True)
        self.interval, self.peak, self._stop_event = interval, {"RssAnon": 0, "RssFile": 0}, threading.Event()

    def sample(self) -> None:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in self.peak:
                self.peak[key] = max(self.peak[key], int(value.split()[0]))  # KiB

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self.sample()
        self._stop_event.set()
        self.join()


def phase(name: str, folder: str, limit: int | None, workers: int, cache: str) -> dict:
    import numpy as np

    import ecgzoo
    from ecgzoo.data.pipeline import Pipeline
    from ecgzoo.data.prepared import prepare

    data = ecgzoo.get_dataset("physionet2017", path=folder, download=False)
    ids = data.record_ids()[:limit] if limit else data.record_ids()
    out: dict = {"records": len(ids)}
    if name == "load":
        t = time.perf_counter()
        samples = sum(data.load(r).samples for r in ids)
        out["seconds"] = time.perf_counter() - t
        out["samples"] = samples
    elif name == "rpeaks":
        from ecgzoo_plugins.rpeaks import detect

        bandpass = ecgzoo.create_preprocessor("bandpass")
        detector_s, beats, total = 0.0, 0, time.perf_counter()
        for r in ids:
            rec = bandpass(data.load(r))
            t = time.perf_counter()
            beats += detect(rec.signal[0], rec.fs).size
            detector_s += time.perf_counter() - t
        out.update(seconds=detector_s, beats=beats, load_and_bandpass_seconds=time.perf_counter() - total - detector_s)
    elif name in ("cold", "cached"):
        sampler = _MemorySampler()
        sampler.start()
        t = time.perf_counter()
        prep = prepare(data, Pipeline.for_dataset(data), record_ids=ids, cache_dir=cache, on_error="skip",
                       progress=False, workers=workers)
        out["prepare_seconds"] = time.perf_counter() - t
        checksum = None
        if name == "cached":  # touch every sample once, a block at a time (no second full copy)
            checksum = sum(float(np.asarray(prep.signals[i : i + 256]).sum(dtype=np.float64))
                           for i in range(0, len(prep), 256))
        out["seconds"] = time.perf_counter() - t
        sampler.stop()
        out.update(peak_anon_mb=sampler.peak["RssAnon"] / 1024, peak_file_mb=sampler.peak["RssFile"] / 1024)
        out.update(from_cache=prep.from_cache, prepared=len(prep), skipped=len(prep.skipped),
                   skipped_examples=prep.skipped[:5], array_mb=prep.signals.nbytes / 2**20,
                   shape=list(prep.signals.shape), checksum=checksum)
    out.update(_peak_rss_mb())
    usage_self, usage_children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    out["cpu_seconds"] = sum(u.ru_utime + u.ru_stime for u in (usage_self, usage_children))
    out["records_per_s"] = out["records"] / out["seconds"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=None, help="first N records only")
    p.add_argument("--workers", type=int, default=2, help="preprocessing processes for the cold phase")
    p.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    p.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    p.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.folder, args.limit, args.workers, args.cache)))
        return
    folder = ensure_data(ARCHIVE, DATA_ROOT)
    cache = tempfile.mkdtemp(prefix="ecgzoo-bench-cache-")
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **machine_info(),
                     "python": platform.python_version(), "workers": args.workers, "load1_before": os.getloadavg()[0]}
    try:
        for name in ("load", "rpeaks", "cold", "cached"):
            cmd = [sys.executable, __file__, "--phase", name, "--folder", str(folder), "--cache", cache,
                   "--workers", str(args.workers)] + (["--limit", str(args.limit)] if args.limit else [])
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
            r = results[name]
            print(f"{name:7s} {r['records']} records in {r['seconds']:8.2f} s = {r['records_per_s']:8.1f} rec/s  "
                  f"CPU {r['cpu_seconds']:7.1f} s  peak RSS {r['peak_rss_mb']:.0f} MB (children {r['peak_rss_children_mb']:.0f} MB)"
                  + (f", heap {r['peak_anon_mb']:.0f} MB, memmap/file {r['peak_file_mb']:.0f} MB" if "peak_anon_mb" in r else ""),
                  flush=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    results["load1_after"] = os.getloadavg()[0]
    results["cached_speedup"] = results["cold"]["seconds"] / results["cached"]["seconds"]
    # detector time (single process) over the whole cold phase's CPU time (all processes)
    results["rpeaks_share_of_cold_cpu"] = results["rpeaks"]["seconds"] / results["cold"]["cpu_seconds"]
    print(f"cached path {results['cached_speedup']:.0f}x faster than cold; detector alone {results['rpeaks']['seconds']:.1f} s "
          f"single-process; skipped {results['cold']['skipped']} record(s); load average {results['load1_before']:.1f} -> "
          f"{results['load1_after']:.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
