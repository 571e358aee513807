"""What the run store hands back: a run with its timings, and metric rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from mtlens.runs.checks import owner_dead

# The state shown for a 'running' run whose owner process is gone; a view, never stored.
DEAD = "dead"


class Metric(NamedTuple):
    """One logged value: metric name, training step, value."""

    name: str
    step: int
    value: float


@dataclass(frozen=True)
class Timings:
    """When a run was created, first started and last ended (Unix seconds, UTC) and how long it ran.

    ``wall_seconds`` sums the finished attempts of a run (a resumed run counts each attempt once);
    ``last_started_at`` is when the current or latest attempt began.
    """

    created_at: float
    started_at: float | None
    last_started_at: float | None
    finished_at: float | None
    wall_seconds: float

    def elapsed(self, status: str, now: float) -> float:
        """Returns the seconds the run has run so far, counting the attempt in progress when it is running.

        For a dead run (status "dead": its process is gone) only the attempts that ended count: when the
        killed attempt stopped is not known.
        """
        if status == "running" and self.last_started_at is not None:
            return self.wall_seconds + max(0.0, now - self.last_started_at)
        return self.wall_seconds


@dataclass(frozen=True)
class Run:
    """One run of a study: its identity, config, status, timings and where its artifacts live."""

    id: str
    study: str
    name: str | None
    config: dict[str, Any]
    config_hash: str
    seed: int
    status: str
    timings: Timings
    artifacts_dir: Path
    attempts: int = 0
    host: str | None = None
    pid: int | None = None
    error: str | None = None
    error_step: int | None = None
    summary: dict[str, float] = field(default_factory=dict)

    @property
    def dead(self) -> bool:
        """Returns True for a 'running' run whose process is known to be gone (killed, crashed)."""
        return self.status == "running" and owner_dead(self.host, self.pid)

    @property
    def state(self) -> str:
        """Returns the status to show: the stored one, or "dead" for a running run whose process is gone.

        Such a run resumes (`mtlens train --resume`) like an interrupted one. A run owned by another host is
        shown as stored: its process cannot be checked from here.
        """
        return DEAD if self.dead else self.status
