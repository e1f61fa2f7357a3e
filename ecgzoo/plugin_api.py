"""The public API for plugin authors: what a dataset, model, trainer or explainer plugin may import.

A plugin (the reference ones under `plugins/` included) imports `ecgzoo` (the interfaces and
factories in `ecgzoo.__all__`) and this module, nothing else from ecgzoo: every other module
is internal and may change between releases. `tests/test_plugin_api.py` enforces it for the
reference plugins by reading their imports.

What is here, by use:

* checkpoints: `save_checkpoint` (safetensors + JSON metadata, atomic), `load_checkpoint`,
  `load_checkpoint_bytes`, `model_from_checkpoint`, `CheckpointError`, `write_bytes_atomic`;
  RNG: `seed_everything`, `rng_state`, `set_rng_state`; `cudnn_flags_restored` (decorator or
  `with` block that puts cuDNN's global flags back).
* scores: `confusion_matrix`, `metrics_from_confusion`, `classification_metrics`;
  splits: `stratified_split`, `stratified_kfold`, `class_weights`.
* several processes: the `distributed` module (`context`, `setup`, `is_main_process`, `barrier`,
  `all_reduce_sum`, `broadcast_bytes`, `all_gather_objects`, `launch`, `DistContext`).
* downloads: `download_file` (resumable, SHA-256 verified, atomic), `fetch_text`,
  `parse_sha256sums`, `extract_zip_atomically`, `reachable`, `DownloadError`;
  `default_cache_dir` (the per-user cache root).
* WFDB records: `normalize_header`, `readable_record`, `samples_in_file`, `BYTES_PER_SAMPLE`;
  `is_multi_segment` and `read_multi_segment` (a multi-segment record whole, gaps as NaN, `InputError`
  naming the problem); `bridge_gaps` and `BRIDGE_SECONDS` (short gaps of missing samples filled).
* models: `masked_mean` (mean over the valid samples), `facts_for` (an `ecgzoo info` facts callable).
* files: `write_atomic`, `write_json`, `safe_filename`, `csv_text`; `dumps` (strict JSON: non-finite
  floats become null).
* explainers: `FastPathConfig` (the `fast`/`precision` options) and `engine_for` (the model's
  fast exact engine, or None); the `evidence` module (beats cut at R-R midpoints, `beat_bounds`,
  and their in-distribution ROAD fill, `road_fill`).
* leads: `canonical_lead_name`, `canonical_leads`, `STANDARD_12` (the standard order);
  `fetch_listed_files` (many checksummed files). A dataset's own vocabulary and challenge score are
  the dataset plugin's (the CinC 2021 tables and score: `ecgzoo_plugins.cinc2021_score`), added to
  the metrics through the `ecgzoo_task_scores` hook.
* beats filled in-distribution: the `evidence` module (`rpeaks_of`, `beat_bounds`: R-R-midpoint
  segments; `road_fill`: ROAD's noisy linear imputation), e.g. for beat masking during training.
* multi-label training: `bce_loss` (binary cross-entropy with optional per-class `pos_weights`),
  `validation_figures`, `selection_score`; each task kind's training: `training_for(task)`
  (`ecgzoo.training.task_training`: loss weights, what a validation pass keeps, each epoch's
  figures); progress: `run_progress` (the whole run's line: epoch k of n, elapsed, time left),
  `format_duration`.
"""

from __future__ import annotations

from ecgzoo._infra.csv_files import csv_text
from ecgzoo._infra.download import (
    DownloadError,
    attempt_download,
    download_file,
    extract_zip_atomically,
    fetch_listed_files,
    fetch_text,
    parse_sha256sums,
    reachable,
)
from ecgzoo._infra.files import safe_filename, write_atomic, write_bytes_atomic, write_json
from ecgzoo._infra.jsonio import dumps
from ecgzoo.core.explainer import FastPathConfig, engine_for
from ecgzoo.core.leads import STANDARD_12, canonical_lead_name, canonical_leads
from ecgzoo.core.model import masked_mean
from ecgzoo.core.tasks import bce_loss, pos_weights
from ecgzoo.data.prepared import default_cache_dir
from ecgzoo.data.signal_source import BRIDGE_SECONDS, InputError, bridge_gaps
from ecgzoo.data.splits import class_weights, stratified_kfold, stratified_split
from ecgzoo.data.wfdb_header import BYTES_PER_SAMPLE, is_multi_segment, normalize_header, readable_record, samples_in_file
from ecgzoo.data.wfdb_segments import read_multi_segment
from ecgzoo.evaluation.metrics import (
    classification_metrics,
    confusion_matrix,
    metrics_from_confusion,
    selection_score,
    validation_figures,
)
from ecgzoo.explain import evidence
from ecgzoo.models.checkpoint import (
    CheckpointError,
    cudnn_flags_restored,
    load_checkpoint,
    load_checkpoint_bytes,
    model_from_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from ecgzoo.models.model_facts import facts_for
from ecgzoo.training import distributed
from ecgzoo.training.estimate import format_duration, run_progress
from ecgzoo.training.task_training import training_for

__all__ = [
    "BRIDGE_SECONDS", "BYTES_PER_SAMPLE", "STANDARD_12", "CheckpointError", "InputError", "bridge_gaps", "is_multi_segment",
    "read_multi_segment", "DownloadError", "FastPathConfig", "attempt_download", "canonical_lead_name",
    "bce_loss", "canonical_leads", "class_weights",
    "classification_metrics", "confusion_matrix", "csv_text", "cudnn_flags_restored", "default_cache_dir", "distributed",
    "download_file", "dumps", "engine_for", "evidence", "extract_zip_atomically", "facts_for", "fetch_listed_files", "fetch_text",
    "format_duration", "run_progress", "training_for",
    "load_checkpoint", "load_checkpoint_bytes", "masked_mean", "metrics_from_confusion", "model_from_checkpoint",
    "normalize_header", "parse_sha256sums", "reachable", "readable_record", "rng_state", "safe_filename",
    "pos_weights", "samples_in_file", "save_checkpoint", "selection_score", "seed_everything", "set_rng_state",
    "stratified_kfold", "stratified_split",
    "validation_figures", "write_atomic", "write_bytes_atomic", "write_json",
]
