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
import torch

from ecgzoo._infra.files import safe_filename, save_figure, write_atomic
from ecgzoo._infra.jsonio import dumps
from ecgzoo.core.create import create_explainer
from ecgzoo.core.model import EcgModel
from ecgzoo.evaluation.metrics import figure_text
from ecgzoo.report import report_multilabel as ml_report
from ecgzoo.report.viewer import write_viewer

Figure = tuple[str, ...]  # (caption, path relative to the report[, interactive view relative to the report])


def plot_training_curves(history: Sequence[dict[str, Any]]) -> Any:
    """Loss and challenge F1 against epoch for training and validation; best epoch marked.

    Rows are `EpochRecord.to_json()` rows of any trainer: `train_loss`/`val_loss` are always there;
    a curve whose key some epoch lacks (a trainer that measures no training F1, say) is left out.
    """
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    fig = MplFigure(figsize=(10, 3.6))
    ax_loss, ax_f1 = fig.subplots(1, 2)
    multi = "val_macro_auroc" in history[0]  # a multi-label task: binary cross-entropy, macro AUROC (validation only)
    panels = ((ax_loss, "loss", "loss (binary cross-entropy)" if multi else "loss (weighted cross-entropy)"),
              (ax_f1, "macro_auroc" if multi else "challenge_f1", "macro AUROC" if multi else "challenge F1"))
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
        save_figure(folder / "figures" / "training_curves.png", plot_training_curves(history))
        figures.append(("Training curves: loss and the selection figure per epoch (as in the paper's figure 5)",
                        "figures/training_curves.png"))
    if "confusion" in metrics:  # single-label; a multi-label task has one 2x2 table per class, in the metrics table
        save_figure(folder / "figures" / "confusion_matrix.png", plot_confusion(metrics))
        figures.append(("Confusion matrix", "figures/confusion_matrix.png"))
    return figures


def pick_examples(labels: np.ndarray, probs: np.ndarray, per_class: int) -> list[int]:
    """Positions of up to `per_class` records per true class: confident correct ones first, then the rest."""
    chosen: list[int] = []
    pred = probs.argmax(1)
    for c in range(probs.shape[1]):
        idx = np.flatnonzero(labels == c)
        if len(idx) == 0:
            continue
        order = sorted(idx, key=lambda i: (pred[i] != c, -probs[i, c]))
        chosen.extend(int(i) for i in order[:per_class])
    return chosen


def explanation_examples(
    folder: Path, model: EcgModel, prepared: Any, positions: np.ndarray, probs: np.ndarray,
    classes: list[str], explainer_name: str, explainer_options: dict[str, Any], per_class: int, device: str,
) -> list[Figure]:
    """One attribution picture per class (explainer target: the predicted class) under folder/figures."""
    from ecgzoo.report.figures import plot_attribution

    if per_class <= 0:
        return []
    explainer = create_explainer(explainer_name, **explainer_options)
    positions = np.asarray(positions)
    labels = np.asarray(prepared.labels)[positions]
    figures: list[Figure] = []
    units = getattr(prepared, "units", None) or "a.u."
    for k in pick_examples(labels, probs, per_class):
        i = int(positions[k])
        signal = np.array(prepared.signals[i], dtype=np.float32)  # a writable copy of one memory-mapped record
        vl = int(prepared.valid_lengths[i])
        x = torch.from_numpy(signal)[None].to(device)
        attribution = explainer.explain(model, x, None, torch.tensor([vl], device=device), fs=float(prepared.fs))
        attribution = attribution.detach().float().cpu().numpy()[0]
        true, pred = classes[int(labels[k])], classes[int(probs[k].argmax())]
        rid = str(prepared.record_ids[i])
        fig = plot_attribution(signal, float(prepared.fs), attribution, valid_length=vl, title=rid, units=units,
                               true_label=true, predicted_label=pred, explainer=explainer_name,
                               probabilities={c: float(p) for c, p in zip(classes, probs[k], strict=True)})
        rel = f"figures/explain_{explainer_name}_{safe_filename(true)}_{safe_filename(rid)}.png"
        save_figure(folder / rel, fig)
        view = f"views/{safe_filename(rid)}.html"
        write_viewer(folder / view, title=f"{rid}: {pred} explained", signal=signal[:, :vl], fs=float(prepared.fs),
                     units=units, maps={explainer_name: attribution[:vl]}, classes=classes,
                     windows=[(0.0, vl / float(prepared.fs), probs[k])],
                     facts={"record": rid, "true class": true, "predicted (explained) class": pred,
                            "rate": f"{float(prepared.fs):g} Hz", "leads": signal.shape[0], "units": units,
                            "model": f"{type(model).__name__} ({sum(q.numel() for q in model.parameters()):,} parameters)",
                            "preprocessing": "the run's pipeline (report.md, Settings)",
                            "explainer": f"{explainer_name} {explainer_options or ''}"})
        figures.append((f"{explainer_name} map of {rid} (true {true}, predicted {pred})", rel, view))
    return figures


def metrics_markdown(metrics: dict[str, Any]) -> str:
    """Per-class table, headline scores and the confusion matrix as Markdown (multi-label: `ecgzoo.report.report_multilabel`)."""
    if metrics.get("task") == "multi-label":
        return ml_report.metrics_markdown(metrics)
    classes = metrics["classes"]
    lines = [
        f"**Challenge F1 {figure_text(metrics['challenge_f1'])}** ({metrics['challenge_f1_definition']}), "
        f"accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['macro_f1']:.3f}, n = {metrics['n']} records.",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for c in classes:
        m = metrics["per_class"][c]
        lines.append(f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {figure_text(m['f1'])} | {m['support']} |")
    lines += ["", "Confusion matrix (rows: true class, columns: predicted):", "",
              "| true \\ predicted | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    for c, row in zip(classes, metrics["confusion"], strict=True):
        lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def test_markdown(test: dict[str, Any] | None) -> str:
    """The test-split section of a report ('' when the run kept no test split)."""
    if not test:
        return ""
    if test.get("task") == "multi-label":
        return f"""
## Test metrics (held-out split, best checkpoint, thresholds from validation)

These {test['n']} records were set aside before training and never used for training, for choosing
the epoch or for choosing the thresholds. Per-record predictions: `predictions_test.csv`.

{ml_report.metrics_markdown(test)}
"""
    lo, hi = test["challenge_f1_ci95"]
    return f"""
## Test metrics (held-out split, best checkpoint)

These {test['n']} records were set aside before training and never used for training or for
choosing the epoch; challenge F1 **{figure_text(test['challenge_f1'])}**, 95% bootstrap interval
{figure_text(lo)}-{figure_text(hi)} ({test['bootstrap_resamples']} resamples of the records). Per-record predictions:
`predictions_test.csv`.

{metrics_markdown(test)}
"""


def _figures_markdown(figures: Sequence[Figure]) -> str:
    """Each figure with its caption; a third element links the figure's interactive view."""
    return "\n\n".join(f"![{f[0]}]({f[1]})\n\n*{f[0]}*" + (f" ([interactive view]({f[2]}))" if len(f) > 2 else "")
                         for f in figures)


EXAMPLES_SINGLE = """One validation record per class (a correctly classified one where there is one), with the
`{explainer}` attribution for the predicted class drawn under the trace."""
EXAMPLES_MULTI = """The most confident true positives of the most frequent classes in validation, each with the map
for that class; multi-lead records on calibrated ECG paper, one map per lead where the explainer tells
leads apart."""


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
    best = metrics.get("best_epoch")
    last = history[-1] if history else {}
    explain = [f for f in figures if "/explain_" in f[1]]
    others = [f for f in figures if f not in explain]
    split_seed = cfg["split"]["seed"] if cfg["split"]["seed"] is not None else cfg["seed"]
    multi = metrics.get("task") == "multi-label"
    scores = (f"multi-label validation {ml_report.headline(metrics)}" if multi else
              f"validation challenge F1\n**{figure_text(metrics['challenge_f1'])}**, accuracy **{metrics['accuracy']:.3f}**")
    text = f"""# ecgzoo run `{final.name}`

Model **{info['model']}** trained on dataset **{info['dataset']}**; {scores} (best epoch {best} of {len(history)}),
in {info.get('seconds', float('nan')):.0f} s.
{_chance_markdown(metrics)}
## Data

- {info['records']} records ({counts}); {info['skipped']} skipped{' (see skipped.csv)' if info['skipped'] else ''}.
- Stratified split: {info['train_records']} training, {info['val_records']} validation, {info.get('test_records', 0)} test records
  (validation fraction {cfg['split']['val_fraction']}, seed {split_seed}; record lists in split.json).
- Model input: {info['in_leads']} lead(s) x {info['input_samples']} samples at {info['fs']:g} Hz
  ({info['input_samples'] / info['fs']:.1f} s); recordings read at {info['input_fs']:g} Hz.
- Preprocessing: {' -> '.join(_step(s) for s in info['pipeline']) or '(none)'}.

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

{EXAMPLES_MULTI if multi else EXAMPLES_SINGLE.format(explainer=cfg['explainer'])}

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
