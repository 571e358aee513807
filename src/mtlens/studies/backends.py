"""Where cells run: serially in the driver, on a local process pool (the default), or on Ray.

Each backend takes `CellTask`s and hands back `CellOutcome`s; none of them writes the run store (the driver
is the one writer). The pool is ours rather than `concurrent.futures`: a worker killed mid-cell (SIGKILL,
out of memory) costs only its own cell, which comes back as a failed outcome naming the signal, and a new
worker takes its place; the other workers keep running.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import types
from collections.abc import Hashable
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from mtlens.errors import MtlensError
from mtlens.studies.engine import CellOutcome, CellTask, execute, set_threads

BACKENDS = ("serial", "pool", "ray")


def available_cores() -> int:
    """Returns the CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class Backend(Protocol):
    """Runs cells: `slots` at once, each worker with `threads` torch threads."""

    name: str
    slots: int
    threads: int

    def submit(self, key: Hashable, task: CellTask) -> None: ...

    def poll(self, timeout: float) -> list[tuple[Hashable, CellOutcome]]: ...

    def close(self) -> None: ...


class SerialBackend:
    """One cell at a time in the driver process, with every core's threads."""

    name = "serial"

    def __init__(self, threads: int) -> None:
        self.slots, self.threads = 1, threads
        self._queue: list[tuple[Hashable, CellTask]] = []

    def submit(self, key: Hashable, task: CellTask) -> None:
        self._queue.append((key, task))

    def poll(self, timeout: float) -> list[tuple[Hashable, CellOutcome]]:
        if not self._queue:
            return []
        key, task = self._queue.pop(0)
        return [(key, execute(task))]

    def close(self) -> None:
        self._queue.clear()


def _serve(conn: Connection, threads: int) -> None:
    """A pool worker's loop: receive (key, task), send (key, outcome), until told to stop."""
    set_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it stops the workers
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        key, task = message
        conn.send((key, execute(task)))


class _Worker:
    def __init__(self, context: Any, threads: int) -> None:
        parent, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, threads), name="mtlens-worker")
        # A spawned child re-imports the parent's main script unless told otherwise; the worker needs only
        # mtlens, and a script calling run_study() without `if __name__ == "__main__":` must not run again
        # in every worker. (So a study defined in a script's __main__ runs on the serial backend only.)
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            self.process.start()
        finally:
            sys.modules["__main__"] = main
        child.close()
        self.conn = parent
        self.key: Hashable | None = None

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self.conn.close()


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"worker process was killed by {name} mid-cell"
    return f"worker process exited with code {exitcode} mid-cell"


class PoolBackend:
    """`workers` local processes (spawned: no threads or CUDA state crosses a fork), `threads` torch threads each."""

    name = "pool"

    def __init__(self, workers: int, threads: int) -> None:
        self.slots, self.threads = workers, threads
        self._context = mp.get_context("spawn")
        self._workers: list[_Worker] = []

    def submit(self, key: Hashable, task: CellTask) -> None:
        idle = next((w for w in self._workers if w.key is None), None)
        if idle is None:
            if len(self._workers) >= self.slots:
                raise RuntimeError("submit() with every pool worker busy")
            idle = _Worker(self._context, self.threads)
            self._workers.append(idle)
        idle.conn.send((key, task))
        idle.key = key

    def poll(self, timeout: float) -> list[tuple[Hashable, CellOutcome]]:
        busy = [w for w in self._workers if w.key is not None]
        if not busy:
            return []
        wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout)
        done = []
        for w in busy:
            outcome = None
            try:
                if w.conn.poll():
                    _, outcome = w.conn.recv()
            except (EOFError, OSError):
                pass
            if outcome is None and w.process.is_alive():
                continue
            if outcome is None:
                w.process.join()
                outcome = CellOutcome(False, error=_death(w.process.exitcode))
                self._workers.remove(w)
                w.conn.close()
            done.append((w.key, outcome))
            w.key = None
        return done

    def close(self) -> None:
        # An idle worker is told to stop; a busy one (the driver was interrupted) is killed: its cell's run is
        # marked interrupted and resumes from its checkpoint next time.
        for w in self._workers:
            if w.key is not None:
                w.process.kill()
            w.stop()
        self._workers.clear()


def check_backend(name: str, workers: int | None, threads: int | None, address: str | None) -> None:
    """Raises one line for an unknown backend, a worker or thread count below 1, or --address without ray."""
    if name not in BACKENDS:
        raise MtlensError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    for value, what in ((workers, "--workers"), (threads, "--threads")):
        if value is not None and value < 1:
            raise MtlensError(f"{what} must be >= 1, got {value}")
    if address is not None and name != "ray":
        raise MtlensError(f"--address is for the ray backend; add --backend ray (got --backend {name})")


def open_backend(name: str, *, workers: int | None, threads: int | None, address: str | None,
                 n_cells: int) -> Backend:
    """Returns a started backend; workers x threads = the cores unless given (raises one line on bad input)."""
    check_backend(name, workers, threads, address)
    cores = available_cores()
    if name == "serial":
        # one process: all the cores, unless OMP_NUM_THREADS says how many threads this process may use
        env = os.environ.get("OMP_NUM_THREADS", "")
        return SerialBackend(threads or (int(env) if env.isdigit() and int(env) > 0 else cores))
    if name == "ray":
        from mtlens.studies.ray_backend import RayBackend

        return RayBackend(address=address, workers=workers, threads=threads or 1, cores=cores)
    workers = workers or max(1, min(cores, n_cells))
    return PoolBackend(workers, threads or max(1, cores // workers))
