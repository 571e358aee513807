"""Checks on what callers hand the run store, and whether the process that owns a run is still alive."""

from __future__ import annotations

import math
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any

from mtlens.errors import MtlensError


def finite_values(values: Mapping[str, float], run_id: str) -> dict[str, float]:
    """Returns the values as floats, after checking names are non-empty strings and values finite numbers."""
    if not isinstance(values, Mapping):
        raise MtlensError(f"metric values for run {run_id} must be a dict name -> float, got {type(values).__name__}")
    out: dict[str, float] = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name:
            raise MtlensError(f"metric name {name!r} for run {run_id} must be a non-empty string")
        if isinstance(value, bool):
            raise MtlensError(f"metric {name!r} of run {run_id} is a bool; log 0.0/1.0 if a flag is meant")
        try:
            number = float(value)  # numpy scalars and one-element tensors convert, anything else is refused
        except (TypeError, ValueError, RuntimeError):
            raise MtlensError(
                f"metric {name!r} of run {run_id} is a {type(value).__name__}, not a number; log a float"
            ) from None
        if not math.isfinite(number):
            raise MtlensError(
                f"metric {name!r} of run {run_id} is {number}; the store holds finite values only, "
                f"record the failure with fail({run_id!r}, message, step)"
            )
        out[name] = number
    return out


def as_int(value: Any, what: str) -> int:
    """Returns ``value`` as an int (numpy integers included); bools and floats are refused."""
    if isinstance(value, bool):
        raise MtlensError(f"{what} must be an integer, got a bool")
    try:
        return int(value.__index__())
    except (AttributeError, TypeError):
        raise MtlensError(f"{what} must be an integer, got {value!r}") from None


def owner_dead(host: str | None, pid: int | None) -> bool:
    """Returns True when the process that started a run is known to be gone (same host, pid not alive)."""
    if host is None or pid is None or host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # A killed child that its parent has not reaped yet still answers kill(pid, 0); on Linux /proc tells.
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
