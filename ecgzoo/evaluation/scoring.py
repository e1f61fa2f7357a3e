"""Scoring a model: class probabilities of every item of a prepared dataset, in batches.

Called by the runner (validation and test splits), the multi-label steps and `ecgzoo evaluate`; the
metrics of those probabilities are `ecgzoo.evaluation.metrics` (both kinds).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ecgzoo.core.model import EcgModel


@torch.no_grad()
def predict_dataset(model: EcgModel, dataset: torch.utils.data.Dataset, device: str, batch_size: int,
                    precision: str = "fp32", task: Any = None) -> np.ndarray:
    """Class probabilities (N, classes) of every item of a `(signal, label, valid_length)` dataset
    (softmax; a multi-label `task`: a sigmoid per class).

    precision="bf16" runs the network under bfloat16 autocast (faster on CPUs with bf16 units; the
    probabilities move by about 1e-3, see BENCHMARKS.md); "fp32" is the exact path.
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    model.eval()
    out = []
    for x, _, vl in loader:
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(x.to(device), valid_length=vl.to(device))
        out.append((task.probabilities(logits) if task is not None else torch.softmax(logits.float(), dim=1)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.num_classes), dtype=np.float32)
