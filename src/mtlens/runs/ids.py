"""Run ids and config hashes.

A run id is ``YYMMDD-HHMMSS-xxxxxx``: the UTC creation second then 6 random hex digits, e.g.
``251123-152301-a3f9c2``. Ids sort by creation time to the second, read as a date, and stay unique across
processes without coordination (the random part comes from the OS, so forked workers never repeat each
other; a collision is caught by the primary key and the store draws again).
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
from typing import Any

from mtlens.errors import MtlensError


def new_run_id(now: float) -> str:
    """Returns a fresh run id for a run created at Unix time ``now``."""
    return time.strftime("%y%m%d-%H%M%S", time.gmtime(now)) + "-" + secrets.token_hex(3)


def canonical_json(config: dict[str, Any]) -> str:
    """Returns the config as JSON with sorted keys and no whitespace, the form that is stored and hashed."""
    if not isinstance(config, dict):
        raise MtlensError(f"run config must be a dict, got {type(config).__name__}")
    _check_json(config, "config")
    return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(config: dict[str, Any]) -> str:
    """Returns the first 16 hex digits of the SHA-256 of the canonical JSON of ``config``."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


def _check_json(value: Any, where: str) -> None:
    # json.dumps would fail on the first bad value with a message that does not say where it is; walking the
    # config first lets the error name the key.
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MtlensError(f"run {where} has a non-string key {key!r}; config keys must be strings")
            _check_json(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise MtlensError(f"run {where} is {value}; configs hold finite numbers only")
    elif value is not None and not isinstance(value, (str, int, bool)):
        raise MtlensError(
            f"run {where} is a {type(value).__name__}, which JSON cannot hold; "
            "convert it to a string, number, list or dict before creating the run"
        )
