"""The `device="auto"` convention: CUDA when present, else the CPU."""

from __future__ import annotations

import torch

from mtlens.errors import MtlensError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Returns the torch device for "auto" (CUDA when present, else CPU) or the one named."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise MtlensError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from err
