"""The device a command runs on: `--device auto|cpu|cuda` resolved, with a clear error for absent CUDA."""

from __future__ import annotations

import torch


def resolve_device(device: str) -> str:
    """cpu/cuda from auto|cpu|cuda, with a clear error when CUDA is asked for and absent."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is available (use --device cpu or auto)")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device
