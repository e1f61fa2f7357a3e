"""docs/tutorial.ipynb runs as written: executed in a fresh kernel, every cell without an error, in bounded time."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: seconds one cell may take before the kernel is stopped and the test fails (the notebook must never hang the suite)
CELL_TIMEOUT_S = 120


def test_the_tutorial_notebook_runs_from_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's tempfile.mkdtemp lands here, removed with tmp_path
    nb = nbformat.read(DOCS / "tutorial.ipynb", as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=CELL_TIMEOUT_S, startup_timeout=60, kernel_name="python3",
                   resources={"metadata": {"path": str(DOCS)}}).execute()
    elapsed = time.perf_counter() - start
    outputs = {i: "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
               for i, cell in enumerate(nb.cells) if cell.cell_type == "code"}
    text = "\n".join(outputs.values())
    assert "A00001" in text and "(N " in text  # predict printed the record's class and probabilities
    assert "wrote " in text and "A00001_cam.png" in text  # explain wrote the picture the next line shows
    assert text.count("trained on dataset **synthetic**") == 3  # the quick run, the plugin's run, the fine-tuned run
    assert "Model **tinynet**" in text
    assert "initial weights cnnv7-s8:physionet2017" in text and "replaced head.weight (classes 4 -> 3)" in text
    images = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) == 1  # the explanation picture, shown in the notebook
    print(f"tutorial executed in {elapsed:.1f} s")
