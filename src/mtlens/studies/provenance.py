"""Where numbers came from: package versions, the source commit, the machine."""

from __future__ import annotations

import platform
import socket
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("mtlens", "torch", "numpy", "scipy", "scikit-learn", "pydantic")


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Returns the installed versions of Python and the packages that change numbers."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@lru_cache(maxsize=1)
def commit() -> str:
    """Returns the git commit of the mtlens source (with '+dirty' for local changes), or why there is none."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return "unknown (mtlens is not running from a git checkout)"
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git is not available)"


def machine() -> dict[str, Any]:
    """Returns the host name, processor, and the cores this process may use."""
    from mtlens.studies.backends import available_cores

    return {"host": socket.gethostname(), "processor": platform.processor() or platform.machine(),
            "cores": available_cores()}
