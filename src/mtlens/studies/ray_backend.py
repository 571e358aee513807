"""The Ray backend: each cell is one Ray task; the driver still writes the store (WAL does not span machines).

`--address host:port` (or `ray://host:port`, or `auto`) joins an existing cluster; without it a local instance
is started with this machine's cores (or the one already running in this process is used). Ray is an optional
extra, imported only here.
"""

from __future__ import annotations

import socket
from collections.abc import Hashable
from typing import Any

from mtlens.errors import MtlensError
from mtlens.studies.engine import CellOutcome, CellTask, execute

CONNECT_TIMEOUT_S = 5.0


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MtlensError("the ray backend needs Ray, which is not installed: pip install 'mtlens[ray]'") from None
    return ray


def check_address(address: str) -> None:
    """Raises one line when a `host:port` Ray address does not accept a connection within a few seconds."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise MtlensError(f"Ray address {address!r} is not host:port (e.g. 10.0.0.5:6379 or ray://10.0.0.5:10001)")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or type(err).__name__)
        raise MtlensError(f"Ray address {address} does not answer ({reason}); start the cluster with "
                          "`ray start --head` there, or drop --address to use a local instance") from None


class RayBackend:
    """Cells as Ray tasks of `threads` CPUs each; `slots` = the cluster's CPUs / threads unless `workers`."""

    name = "ray"

    def __init__(self, *, address: str | None, workers: int | None, threads: int, cores: int) -> None:
        ray = self._ray = _import_ray()
        self.threads = threads
        self._owned = False
        if address is not None:
            check_address(address)
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except Exception as err:  # Ray raises ConnectionError, RuntimeError, ...: one line for all
                raise MtlensError(f"cannot join the Ray cluster at {address}: {str(err).splitlines()[0]}") from None
        elif not ray.is_initialized():
            ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
            self._owned = True
        cpus = int(ray.cluster_resources().get("CPU", cores))
        self.slots = workers or max(1, cpus // threads)
        self._remote = ray.remote(num_cpus=threads, max_retries=0)(execute)
        self._refs: dict[Any, Hashable] = {}

    def submit(self, key: Hashable, task: CellTask) -> None:
        self._refs[self._remote.remote(task)] = key

    def poll(self, timeout: float) -> list[tuple[Hashable, CellOutcome]]:
        if not self._refs:
            return []
        ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        done = []
        for ref in ready:
            key = self._refs.pop(ref)
            try:
                outcome = self._ray.get(ref)
            except self._ray.exceptions.RayError as err:  # the worker died or the task could not run
                outcome = CellOutcome(False, error=f"Ray task failed: {type(err).__name__}: {str(err).splitlines()[0]}")
            done.append((key, outcome))
        return done

    def close(self) -> None:
        for ref in list(self._refs):
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._owned:
            self._ray.shutdown()
