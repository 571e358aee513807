"""Output paths: whether a file can be written at a path, checked before any work is done.

An errors-level utility (it imports only `mtlens.errors`), so every layer may use it: the CLI for `--out` /
`--csv`, the studies for `--store`, report writers for their folders.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mtlens.errors import MtlensError


def writable_path(path: str | os.PathLike[str], what: str = "output file", *, make_parents: bool = False) -> Path:
    """Returns `path` as a Path once a file can be written there; else raises a one-line MtlensError.

    The path must not be a folder, an existing file must be writable, and its folder must exist (or, with
    `make_parents`, be creatable: the nearest existing ancestor is a writable folder) and be writable. A
    path "through a file" (`results.csv/out.csv`) names the file that is in the way. Writability is tried,
    not guessed from permission bits: an existing file is opened for appending (nothing is appended), else
    a probe file is created in the folder (or nearest existing ancestor) and removed. Nothing else is created.
    """
    target = Path(path).expanduser()
    if target.is_dir():
        raise MtlensError(f"cannot write {what} {target}: it is a folder; give a file path")
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise MtlensError(f"cannot write {what} {target}: {ancestor} is a file, not a folder")
    if ancestor != target.parent and not make_parents:
        raise MtlensError(f"cannot write {what} {target}: folder {target.parent} does not exist; create it first")
    try:
        if target.exists():
            with open(target, "ab"):  # appends nothing: the file is left as it is
                pass
        else:
            # Trying is the only reliable answer (root, ACLs, read-only mounts, /proc): a probe file, removed.
            handle, probe = tempfile.mkstemp(dir=ancestor, prefix=".mtlens-write-probe-")
            os.close(handle)
            os.unlink(probe)
    except OSError as err:
        where = "the file" if target.exists() else f"folder {ancestor}"
        raise MtlensError(f"cannot write {what} {target}: {where} is not writable ({err.strerror or err})") from None
    return target
