"""The three silent or noisy failures that opened issue 13, as a new user met them with a finished run.

1. A checkpoint with 64 bytes flipped in the middle of its tensor data loaded without complaint:
   `predict` printed a class with NaN probabilities (exit 0), `--json` wrote `NaN`, and `evaluate`
   wrote a report with a challenge F1 as if it were a result.
2. An empty `.npy` ended in an `EOFError` traceback.
3. An empty `.csv` leaked numpy's `UserWarning` and exited 0 with "not classified".
"""

from __future__ import annotations

import json
import shutil
import struct

import numpy as np
from run_helpers import cli

from ecgzoo.serving.loaded_run import BEST_CHECKPOINT, load_run


def strict_loads(text: str):
    """json.loads that refuses NaN / Infinity, as a strict downstream parser does."""
    def refuse(name: str):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def flip_tensor_bytes(path, count: int = 64) -> None:
    """Invert `count` bytes in the middle of the tensor data of a safetensors file (header untouched)."""
    data = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    start = 8 + n + (len(data) - 8 - n) // 2 - count // 2
    assert start > 8 + n
    for i in range(start, start + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _ok_npy(run_dir, folder):
    run = load_run(run_dir)
    t = np.arange(run.input_samples) / run.input_fs
    np.save(folder / "ok.npy", np.sin(2 * np.pi * 1.2 * t)[None].astype(np.float32))
    return folder / "ok.npy", run


def test_damaged_checkpoint_is_refused_by_predict_and_evaluate(tiny_run, tmp_path):
    damaged = tmp_path / "damaged-run"
    shutil.copytree(tiny_run, damaged)
    flip_tensor_bytes(damaged / BEST_CHECKPOINT)
    ok, run = _ok_npy(tiny_run, tmp_path)
    code, out, err = cli("predict", str(damaged), str(ok), "--fs", str(run.input_fs))
    assert code == 2, (out, err)
    assert str(damaged / BEST_CHECKPOINT) in err and "damaged" in err
    assert "nan" not in out.lower() and len(err.strip().splitlines()) == 1
    code, out, err = cli("predict", str(damaged), str(ok), "--fs", str(run.input_fs), "--json")
    assert code == 2 and "NaN" not in out
    code, out, err = cli("evaluate", str(damaged), "synthetic", "--split", "val", "--device", "cpu",
                         "--out", str(tmp_path / "eval"))
    assert code == 2 and "damaged" in err
    assert not (tmp_path / "eval").exists() and not (tmp_path / "eval" / "metrics.json").exists()


def test_empty_npy_is_one_line_error_naming_the_file(tiny_run, tmp_path):
    (tmp_path / "empty.npy").write_bytes(b"")
    code, out, err = cli("predict", str(tiny_run), str(tmp_path / "empty.npy"), "--fs", "300")
    assert code == 2, (out, err)
    assert "Traceback" not in err and "EOFError" not in err
    (line,) = err.strip().splitlines()
    assert str(tmp_path / "empty.npy") in line and "empty" in line


def test_empty_csv_is_one_line_error_without_numpy_warning(tiny_run, tmp_path, recwarn):
    (tmp_path / "empty.csv").write_text("")
    code, out, err = cli("predict", str(tiny_run), str(tmp_path / "empty.csv"), "--fs", "300")
    assert code == 2, (out, err)
    assert "not classified" not in out and "Warning" not in err
    (line,) = err.strip().splitlines()
    assert str(tmp_path / "empty.csv") in line and "empty" in line
    assert not [w for w in recwarn if "loadtxt" in str(w.message)]
