"""Checkpoints: everything a killed run needs to continue bit-for-bit, written atomically, read without running code.

Format 2 (this one) holds only what `torch.load(..., weights_only=True)` accepts: tensors, dicts, lists,
tuples, str, int, float, bool and None. The random states are stored as such plain values (python's as its
tuple of ints, numpy's MT19937 key as an int64 tensor), so a checkpoint is loaded with the weights-only
unpickler: a crafted `checkpoint.pt` cannot run code, it is refused with a one-line error. Checkpoints of
format 1 (mtlens before weights-only loading: numpy arrays in the RNG state) are refused the same way, with a
message that says so; such a run is retrained (`mtlens runs rm` removes it).
"""

from __future__ import annotations

import os
import random
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from mtlens.errors import MtlensError

CHECKPOINT_FORMAT = 2
# What the Trainer writes (Trainer.state_dict) and what a checkpoint must hold to be loaded.
CHECKPOINT_KEYS = ("model", "optimizer", "method", "rng", "epoch", "global_step", "history", "config")
_RNG_KEYS = ("python", "numpy", "torch")
_MT19937_WORDS = 624

_T = TypeVar("_T")


def rng_state() -> dict[str, Any]:
    """Returns the global random states (python, numpy, torch CPU and CUDA) as tensors and plain values."""
    np_state = np.random.get_state(legacy=False)
    if np_state["bit_generator"] != "MT19937":  # np.random's global generator is always MT19937
        raise MtlensError(f"numpy's global generator is {np_state['bit_generator']}; checkpoints store MT19937 only")
    version, words, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": [version, list(words), gauss],
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restores the global random states saved by `rng_state`; a malformed state raises MtlensError."""
    if not isinstance(state, Mapping) or any(k not in state for k in _RNG_KEYS):
        raise MtlensError(f"checkpoint random state must hold {', '.join(_RNG_KEYS)}; the file is damaged")
    try:
        version, words, gauss = state["python"]
        numpy_state = state["numpy"]
        key = numpy_state["key"]
        if not isinstance(key, torch.Tensor) or key.shape != (_MT19937_WORDS,):
            raise ValueError(f"numpy key of shape {getattr(key, 'shape', None)}")
        random.setstate((int(version), tuple(int(w) for w in words), gauss))
        np.random.set_state({
            "bit_generator": "MT19937",
            "state": {"key": key.numpy().astype(np.uint32), "pos": int(numpy_state["pos"])},
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        })
        torch.set_rng_state(state["torch"])
    except (TypeError, ValueError, KeyError, RuntimeError, OverflowError) as err:
        raise MtlensError(f"checkpoint random state is malformed ({_first_line(err)}); the file is damaged") from None
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Writes `payload` (stamped with the format) to `path` atomically (a temporary file, fsync, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        torch.save({**payload, "format": CHECKPOINT_FORMAT}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path, required: Iterable[str] = CHECKPOINT_KEYS) -> dict[str, Any] | None:
    """Returns the checkpoint saved at `path` (checked to hold `required`), or None when there is none.

    Loaded with the weights-only unpickler: nothing in the file is run. A file it refuses, a damaged file
    and one without the keys raise MtlensError (one line naming the file).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with warnings.catch_warnings():
            # torch warns (on stderr) about pickle protocols it did not write; the refusal below says enough
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file (refused global, bad pickle, truncated zip, EOF) is a user error
        raise MtlensError(f"checkpoint {path} {_why_unreadable(err)}; nothing in it was run") from None
    if not isinstance(state, dict):
        raise MtlensError(f"checkpoint {path} holds a {type(state).__name__}, not an mtlens checkpoint; move it away")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise MtlensError(
            f"checkpoint {path} has format {state.get('format')!r}; this mtlens reads format {CHECKPOINT_FORMAT} "
            "(retrain the run: `mtlens runs rm RUN_ID` removes it)"
        )
    missing = [key for key in required if key not in state]
    if missing:
        raise MtlensError(
            f"checkpoint {path} lacks {', '.join(map(repr, missing))}; it is not an mtlens checkpoint or is damaged "
            "(retrain the run: `mtlens runs rm RUN_ID` removes it)"
        )
    return state


def restore(load: Callable[[_T], Any], state: _T, path: Path) -> None:
    """Calls `load(state)` (a load_state_dict); a state that does not fit raises a one-line MtlensError."""
    try:
        load(state)
    except MtlensError:
        raise
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError) as err:
        raise MtlensError(
            f"checkpoint {path} does not fit this run ({_first_line(err)}); it belongs to another model or is damaged"
        ) from None


def _why_unreadable(err: Exception) -> str:
    """Returns why torch refused a file, in a few words (its own message spans many lines)."""
    text = str(err)
    refused = re.search(r"GLOBAL ([\w.]+)", text)
    if refused:
        name = refused.group(1)
        if name.startswith("numpy"):
            return (f"holds {name}, which weights-only loading refuses: it was written by an mtlens before "
                    "weights-only checkpoints (retrain the run) or not by mtlens")
        return f"holds {name}, which weights-only loading refuses: it is not an mtlens checkpoint"
    if isinstance(err, EOFError) or not text:
        return "is empty or truncated"
    operand = re.search(r"Unsupported operand \d+", text)
    if operand:
        return f"is not an mtlens checkpoint (weights-only unpickler: {operand.group(0).lower()})"
    return f"cannot be read ({type(err).__name__}: {_first_line(err)})"


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
