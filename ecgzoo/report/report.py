"""The report a person reads first: data, settings, scores, training curves and explanations.

`write_report` writes `report.md` into a run directory from what the run produced (info,
resolved config, metrics, per-epoch history, figure files). Figures are written with
`ecgzoo._infra.files.save_figure` (atomic PNGs): training curves as in the paper's figure 5 (loss
and F1 against epoch, training and validation), the confusion matrix, and one explanation
picture per class drawn by `ecgzoo.report.figures.plot_attribution` with the chosen explainer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgzoo._infra.files import save_figure, write_atomic
from ecgzoo._infra.jsonio import dumps
from ecgzoo.core.manifest import InputContract
from ecgzoo.report.task_report import SingleLabelReport, report_for, task_of_metrics

Figure = tuple[str, ...]  # (caption, path relative to the report[, interactive view relative to the report])


def plot_training_curves(history: Sequence[dict[str, Any]], curves: tuple[str, str, str] = SingleLabelReport.curves) -> Any:
    """Loss and the selection figure (`curves`: the task's `TaskReport.curves`) against epoch for training
    and validation; best epoch marked.

    Rows are `EpochRecord.to_json()` rows of any trainer: `train_loss`/`val_loss` are always there;
    a curve whose key some epoch lacks (a trainer that measures no training F1, say) is left out.
    """
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    fig = MplFigure(figsize=(10, 3.6))
    ax_loss, ax_f1 = fig.subplots(1, 2)
    key, label, loss_label = curves
    panels = ((ax_loss, "loss", loss_label), (ax_f1, key, label))
    for ax, key, label in panels:
        for prefix, style, name, colour in (("train_", "o-", "training", "tab:blue"), ("val_", "s-", "validation", "tab:orange")):
            if any(isinstance(h.get(prefix + key), (int, float)) for h in history) and all(prefix + key in h for h in history):
                ax.plot(epochs, [h[prefix + key] if isinstance(h[prefix + key], (int, float)) else float("nan") for h in history],
                        style, label=name, color=colour)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    best = [h["epoch"] for h in history if h.get("best")]
    if best:
        for ax in (ax_loss, ax_f1):
            ax.axvline(best[-1], color="grey", ls="--", lw=1, label=f"best epoch ({best[-1]})")
    ax_f1.set_ylim(0, 1)
    ax_f1.legend(loc="lower right", fontsize=8)
    fig.suptitle("Training curves")
    fig.tight_layout()
    return fig


def plot_confusion(metrics: dict[str, Any]) -> Any:
    """Confusion matrix (rows true, columns predicted) with counts and row percentages."""
    from matplotlib.figure import Figure as MplFigure

    cm = np.asarray(metrics["confusion"], dtype=np.int64)
    classes = metrics["classes"]
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    fig = MplFigure(figsize=(0.9 * len(classes) + 2.2, 0.8 * len(classes) + 1.6))
    ax = fig.subplots()
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{cm[i, j]}\n{100 * frac[i, j]:.0f}%", ha="center", va="center",
                    color="white" if frac[i, j] > 0.6 else "black", fontsize=9)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix ({metrics.get('split', 'evaluation')}, n={int(cm.sum())})")
    fig.tight_layout()
    return fig


def write_evaluation_figures(folder: Path, metrics: dict[str, Any], history: Sequence[dict[str, Any]] | None) -> list[Figure]:
    """Confusion matrix and (when there is a history) training curves, as PNGs under folder/figures."""
    figures: list[Figure] = []
    if history:
        save_figure(folder / "figures" / "training_curves.png", plot_training_curves(history, report_for(task_of_metrics(metrics)).curves))
        figures.append(("Training curves: loss and the selection figure per epoch (as in the paper's figure 5)",
                        "figures/training_curves.png"))
    if "confusion" in metrics:  # single-label; a multi-label task has one 2x2 table per class, in the metrics table
        save_figure(folder / "figures" / "confusion_matrix.png", plot_confusion(metrics))
        figures.append(("Confusion matrix", "figures/confusion_matrix.png"))
    return figures


def metrics_markdown(metrics: dict[str, Any]) -> str:
    """Per-class table, headline scores (and a single-label confusion matrix) as Markdown (`ecgzoo.report.task_report`)."""
    return report_for(task_of_metrics(metrics)).metrics_markdown(metrics)


def test_markdown(test: dict[str, Any] | None) -> str:
    """The test-split section of a report ('' when the run kept no test split)."""
    return report_for(task_of_metrics(test)).test_markdown(test) if test else ""


def _figures_markdown(figures: Sequence[Figure]) -> str:
    """Each figure with its caption; a third element links the figure's interactive view."""
    return "\n\n".join(f"![{f[0]}]({f[1]})\n\n*{f[0]}*" + (f" ([interactive view]({f[2]}))" if len(f) > 2 else "")
                         for f in figures)


def init_markdown(init: dict[str, Any] | None) -> str:
    """The report's line on the pretrained weights a run started from ('' for a run trained from scratch)."""
    if not init:
        return ""
    replaced = "; ".join(f"`{k}` ({why})" for k, why in init["replaced"].items()) or "none"
    return (f"\n- Initial weights: **{init['weights']}** (SHA-256 `{init['sha256']}`): {init['loaded_tensors']} tensors loaded "
            f"unchanged, replaced: {replaced}.")


def _chance_markdown(metrics: dict[str, Any]) -> str:
    """A warning paragraph when the run is at chance level (`ecgzoo.evaluation.chance`), else nothing."""
    from ecgzoo.evaluation.chance import warning

    text = warning(metrics.get("chance"))
    return f"\n> **Warning:** {text[0].upper()}{text[1:]}.\n" if text else ""


def write_report(folder: Path, final: Path, info: dict[str, Any], resolved: dict[str, Any], metrics: dict[str, Any],
                 history: Sequence[dict[str, Any]], figures: Sequence[Figure]) -> Path:
    """report.md of a run: what data, which settings, how good, how it trained, where it looked."""
    cfg = resolved["config"]
    counts = ", ".join(f"{c} {n}" for c, n in info["class_counts"].items())
    contract = InputContract(**info["input"])
    best = metrics.get("best_epoch")
    last = history[-1] if history else {}
    explain = [f for f in figures if "/explain_" in f[1]]
    others = [f for f in figures if f not in explain]
    split_seed = cfg["split"]["seed"] if cfg["split"]["seed"] is not None else cfg["seed"]
    parts = report_for(task_of_metrics(metrics))
    scores = parts.scores(metrics)
    text = f"""# ecgzoo run `{final.name}`

Model **{info['model']}** trained on dataset **{info['dataset']}**; {scores} (best epoch {best} of {len(history)}),
in {info.get('seconds', float('nan')):.0f} s.
{_chance_markdown(metrics)}
## Data

- {info['records']} records ({counts}); {info['skipped']} skipped{' (see skipped.csv)' if info['skipped'] else ''}.
- Stratified split: {info['train_records']} training, {info['val_records']} validation, {info.get('test_records', 0)} test records
  (validation fraction {cfg['split']['val_fraction']}, seed {split_seed}; record lists in split.json).
- Model input: {contract.leads} lead(s) x {contract.samples} samples at {contract.fs:g} Hz
  ({contract.window_seconds:.1f} s); recordings read at {contract.recording_fs:g} Hz.
- Preprocessing: {' -> '.join(_step(s) for s in contract.pipeline) or '(none)'}.

## Settings

- Model options: `{dumps(cfg['model']) if cfg['model'] else '(defaults)'}`{init_markdown(info.get('init'))}
- Trainer `{cfg['trainer_plugin']}` options: `{dumps(cfg['trainer']) if cfg['trainer'] else '(defaults)'}`
- Device {cfg['device']}, seed {cfg['seed']}, processes {cfg['nproc']}. Full resolved configuration: `config.json`;
  versions and git commit: `environment.json`.

## Validation metrics (best checkpoint)

{metrics_markdown(metrics)}

Last epoch: training loss {last.get('train_loss', float('nan')):.4f}, validation loss {last.get('val_loss', float('nan')):.4f}.
Per-epoch figures: `history.json` and `checkpoints/metrics.jsonl`; per-record predictions: `predictions.csv`.

{_figures_markdown(others)}
{test_markdown(metrics.get("test"))}
## Where the network looked ({cfg['explainer']})

{parts.examples_text.format(explainer=cfg['explainer'])}

{_figures_markdown(explain) if explain else '(no examples requested)'}

## Using this run

```bash
ecgzoo predict {final} RECORD.hea            # or .mat / .npy / .csv (--fs HZ where the file does not say)
ecgzoo evaluate {final} DATASET              # metrics and figures on other data
```

Weights: `checkpoints/best.safetensors` (safetensors + JSON metadata; loading never runs code).
"""
    return write_atomic(folder / "report.md", text)


def _step(step: dict[str, Any]) -> str:
    options = ", ".join(f"{k}={v}" for k, v in step.items() if k != "name")
    return f"{step['name']}({options})" if options else step["name"]
