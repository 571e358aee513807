"""The run store: runs, their configs, status, timings and metrics in one SQLite file.

Many processes may write to one store at once: see ``mtlens.runs.database`` for how (WAL, short
``BEGIN IMMEDIATE`` transactions, busy timeout and retry, one connection per process and thread).

Metrics have the primary key (run_id, name, step) and are written with an upsert: a run resumed from an
older checkpoint replays its steps and overwrites the rows it had logged, never duplicating them.
``delete_metrics_after`` drops rows past the checkpoint when a replay should not keep them.

Status moves created -> running -> finished | failed | interrupted; an interrupted or failed run, or a
'running' one whose process is gone, can be started again (resumed); a finished run cannot.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple

from mtlens.errors import MtlensError
from mtlens.runs import schema
from mtlens.runs.checks import as_int, finite_values, owner_dead
from mtlens.runs.database import Database
from mtlens.runs.export import export_csv as _export_csv
from mtlens.runs.ids import canonical_json, config_hash, new_run_id
from mtlens.runs.records import DEAD, Metric, Run, Timings
from mtlens.runs.removal import Removal
from mtlens.runs.removal import remove_runs as _remove_runs

DEFAULT_STORE = Path("runs") / "mtlens.sqlite"
# Which statuses each transition may start from.
_CAN_START = ("created", "interrupted", "failed", "running")
_CAN_FAIL = ("created", "running", "interrupted")
_CAN_INTERRUPT = ("created", "running")


class RunStore:
    """A run store in one SQLite file (created with its directory when missing, unless ``create=False``).

    ``read_only=True`` (list, show, export) opens an existing store and never writes to it: every write is
    refused by SQLite, and an empty file is reported as not a store instead of being given a schema.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_STORE,
        *,
        create: bool = True,
        read_only: bool = False,
        busy_timeout: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout = float(busy_timeout)
        create = create and not read_only
        if self.path.is_dir():
            raise MtlensError(f"run store {self.path} is a directory; pass the path of a .sqlite file inside it")
        if not self.path.exists():
            if not create:
                raise MtlensError(
                    f"no run store at {self.path}; pass --store with the path of an existing store "
                    "(runs are recorded in runs/mtlens.sqlite by default)"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = Database(self.path, self.busy_timeout, create=create, read_only=read_only)
        self._db.connection()  # fail now, not at the first write, on a file that is not a store

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes this thread's connection (a later call reopens one); returns None."""
        self._db.close()

    def journal_mode(self) -> str:
        """Returns the store's SQLite journal mode ('wal' for every store this class opened)."""
        return str(self._db.connection().execute("PRAGMA journal_mode").fetchone()[0])

    # ---- runs --------------------------------------------------------------------------------------------

    def create_run(self, study: str, config: dict[str, Any], seed: int, name: str | None = None) -> str:
        """Returns the id of a new run in status 'created'."""
        if not isinstance(study, str) or not study:
            raise MtlensError(f"run study must be a non-empty string, got {study!r}")
        if name is not None and not isinstance(name, str):
            raise MtlensError(f"run name must be a string or None, got {type(name).__name__}")
        seed = as_int(seed, "run seed")
        config_json = canonical_json(config)
        digest = config_hash(config)

        def insert(conn: sqlite3.Connection) -> str:
            now = time.time()
            while True:
                run_id = new_run_id(now)
                try:
                    conn.execute(
                        "INSERT INTO runs (id, study, name, config, config_hash, seed, status, created_at, "
                        "artifacts_dir) VALUES (?, ?, ?, ?, ?, ?, 'created', ?, ?)",
                        (run_id, study, name, config_json, digest, seed, now, str(Path("artifacts") / run_id)),
                    )
                except sqlite3.IntegrityError as err:
                    if "runs.id" in str(err):
                        continue  # the random part repeated within the same second: draw another
                    raise
                return run_id

        return self._db.write(insert)

    def start(self, run_id: str) -> None:
        """Marks a run running in this process (a created, interrupted, failed or stale run); returns None."""

        def update(conn: sqlite3.Connection) -> None:
            row = self._status_row(conn, run_id)
            if row["status"] not in _CAN_START:
                raise MtlensError(f"run {run_id} is {row['status']}; create a new run to train again")
            if row["status"] == "running" and not owner_dead(row["host"], row["pid"]):
                raise MtlensError(
                    f"run {run_id} is already running (process {row['pid']} on {row['host']}); "
                    "wait for it or stop that process"
                )
            now = time.time()
            conn.execute(
                "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?), last_started_at = ?, "
                "finished_at = NULL, attempts = attempts + 1, host = ?, pid = ?, error = NULL, error_step = NULL "
                "WHERE id = ?",
                (now, now, socket.gethostname(), os.getpid(), run_id),
            )

        self._db.write(update)

    def finish(self, run_id: str, summary: Mapping[str, float] | None = None) -> None:
        """Marks a running run finished, with optional summary values (finite floats); returns None."""
        summary_json = json.dumps(finite_values(summary or {}, run_id), sort_keys=True)
        self._end(run_id, ("running",), "finished", summary_json=summary_json)

    def fail(self, run_id: str, message: str, step: int | None = None) -> None:
        """Marks a run failed with the message (and step) that says why; returns None."""
        if not isinstance(message, str) or not message.strip():
            raise MtlensError(f"fail({run_id!r}) needs a non-empty message saying why the run failed")
        error_step = None if step is None else as_int(step, "failure step")
        self._end(run_id, _CAN_FAIL, "failed", error=message, error_step=error_step)

    def mark_interrupted(self, run_id: str) -> None:
        """Marks a created or running run interrupted (stopped, resumable from its checkpoint); returns None."""
        self._end(run_id, _CAN_INTERRUPT, "interrupted")

    def _end(
        self,
        run_id: str,
        allowed: tuple[str, ...],
        status: str,
        *,
        summary_json: str | None = None,
        error: str | None = None,
        error_step: int | None = None,
    ) -> None:
        def update(conn: sqlite3.Connection) -> None:
            row = self._status_row(conn, run_id)
            if row["status"] not in allowed:
                raise MtlensError(
                    f"run {run_id} is {row['status']}, cannot mark it {status} "
                    f"(only a run that is {' or '.join(allowed)} can be)"
                )
            now = time.time()
            ran = now - row["last_started_at"] if row["status"] == "running" else 0.0
            conn.execute(
                "UPDATE runs SET status = ?, finished_at = ?, wall_seconds = wall_seconds + ?, "
                "summary = COALESCE(?, summary), error = ?, error_step = ? WHERE id = ?",
                (status, now, max(ran, 0.0), summary_json, error, error_step, run_id),
            )

        self._db.write(update)

    def _status_row(self, conn: sqlite3.Connection, run_id: str) -> sqlite3.Row:
        cur = conn.execute("SELECT status, last_started_at, host, pid FROM runs WHERE id = ?", (run_id,))
        cur.row_factory = sqlite3.Row
        row = cur.fetchone()
        if row is None:
            raise self._unknown(run_id)
        return row

    def _unknown(self, run_id: str) -> MtlensError:
        return MtlensError(f"no run {run_id!r} in {self.path}; `mtlens runs list` shows the ids")

    def get_run(self, run_id: str) -> Run:
        """Returns the run with this id."""
        rows = self._select_runs("WHERE id = ?", (run_id,))
        if not rows:
            raise self._unknown(run_id)
        return rows[0]

    def resolve_id(self, prefix: str) -> str:
        """Returns the id of the one run whose id is ``prefix`` or starts with it."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        ids = self._db.read(
            lambda conn: [r[0] for r in conn.execute(
                "SELECT id FROM runs WHERE id = ? OR id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 6",
                (prefix, escaped + "%"),
            )]
        )
        if prefix in ids:
            return prefix
        if len(ids) == 1 and prefix:
            return ids[0]
        if not ids or not prefix:
            raise self._unknown(prefix)
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise MtlensError(f"run id prefix {prefix!r} matches several runs in {self.path} ({shown}); give more of the id")

    def list_runs(self, study: str | None = None, status: str | None = None) -> list[Run]:
        """Returns the runs (of a study, in a state, when given), oldest first.

        ``status`` is a stored status or "dead"; "running" then means running with a live (or unknown) owner,
        "dead" running with an owner process known to be gone (see `Run.state`).
        """
        states = (*schema.STATUSES, DEAD)
        if status is not None and status not in states:
            raise MtlensError(f"unknown run status {status!r}; use one of {', '.join(states)}")
        clauses, params = [], []
        if study is not None:
            clauses.append("study = ?")
            params.append(study)
        if status is not None:
            clauses.append("status = ?")
            params.append("running" if status == DEAD else status)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        runs = self._select_runs(where, tuple(params))
        return runs if status is None else [run for run in runs if run.state == status]

    def find_resumable(self, study: str, config_hash: str, seed: int) -> Run | None:
        """Returns the newest run of this study, config hash and seed that can resume, or None.

        Created and interrupted runs can resume, and so can a 'running' run whose process is known to be gone
        (same host, pid no longer alive: it was killed before it could mark itself). Failed runs are not
        offered: the same config and seed would fail the same way.
        """
        runs = self._select_runs(
            "WHERE study = ? AND config_hash = ? AND seed = ? AND status IN ('created', 'interrupted', 'running')",
            (study, config_hash, as_int(seed, "seed")),
        )
        for run in reversed(runs):
            if run.status != "running" or owner_dead(run.host, run.pid):
                return run
        return None

    def _select_runs(self, where: str, params: tuple[Any, ...]) -> list[Run]:
        def select(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            cur = conn.execute(f"SELECT * FROM runs {where} ORDER BY created_at, id", params)
            cur.row_factory = sqlite3.Row
            return cur.fetchall()

        return [self._to_run(row) for row in self._db.read(select)]

    def _to_run(self, row: sqlite3.Row) -> Run:
        return Run(
            id=row["id"],
            study=row["study"],
            name=row["name"],
            config=json.loads(row["config"]),
            config_hash=row["config_hash"],
            seed=row["seed"],
            status=row["status"],
            timings=Timings(
                created_at=row["created_at"],
                started_at=row["started_at"],
                last_started_at=row["last_started_at"],
                finished_at=row["finished_at"],
                wall_seconds=row["wall_seconds"],
            ),
            artifacts_dir=self.path.parent / row["artifacts_dir"],
            attempts=row["attempts"],
            host=row["host"],
            pid=row["pid"],
            error=row["error"],
            error_step=row["error_step"],
            summary=json.loads(row["summary"]) if row["summary"] else {},
        )

    def artifacts_dir(self, run_id: str) -> Path:
        """Returns the run's artifacts directory (next to the store file), creating it when missing."""
        path = self.get_run(run_id).artifacts_dir
        path.mkdir(parents=True, exist_ok=True)
        return path

    def remove_runs(self, run_ids: Iterable[str], *, force: bool = False, dry_run: bool = False) -> list[Removal]:
        """Removes runs with their metrics and artifacts folders; returns what was (or would be) removed.

        See `mtlens.runs.removal.remove_runs` (a live run is refused unless ``force``; only the store's own
        ``artifacts/<run id>`` folders are deleted).
        """
        return _remove_runs(self, self._db, run_ids, force=force, dry_run=dry_run)

    # ---- metrics -----------------------------------------------------------------------------------------

    def log_metrics(self, run_id: str, step: int, values: Mapping[str, float]) -> None:
        """Writes all values of one step in one transaction (a replayed step overwrites); returns None."""
        step = as_int(step, "metric step")
        if step < 0:
            raise MtlensError(f"metric step is {step} for run {run_id}; steps start at 0")
        rows = [(run_id, name, step, value) for name, value in finite_values(values, run_id).items()]
        if not rows:
            return

        def upsert(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise self._unknown(run_id)
            conn.executemany(
                "INSERT INTO metrics (run_id, name, step, value) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run_id, name, step) DO UPDATE SET value = excluded.value",
                rows,
            )

        self._db.write(upsert)

    def metrics(self, run_id: str, name: str | None = None) -> list[Metric]:
        """Returns the run's metric rows (of one metric when ``name`` is given), ordered by name then step."""
        self.get_run(run_id)
        sql = "SELECT name, step, value FROM metrics WHERE run_id = ?"
        params: tuple[Any, ...] = (run_id,)
        if name is not None:
            sql += " AND name = ?"
            params = (run_id, name)
        return [Metric(*row) for row in self._db.read(lambda conn: conn.execute(sql + " ORDER BY name, step", params).fetchall())]

    def series(self, run_id: str) -> dict[str, list[tuple[int, float]]]:
        """Returns each metric of the run as its list of (step, value), steps ascending."""
        out: dict[str, list[tuple[int, float]]] = {}
        for metric in self.metrics(run_id):
            out.setdefault(metric.name, []).append((metric.step, metric.value))
        return out

    def final_metrics(self, run_id: str) -> dict[str, tuple[int, float]]:
        """Returns each metric's last logged (step, value)."""
        self.get_run(run_id)
        rows = self._db.read(
            lambda conn: conn.execute(
                "SELECT m.name, m.step, m.value FROM metrics m JOIN "
                "(SELECT name, MAX(step) AS step FROM metrics WHERE run_id = ? GROUP BY name) last "
                "ON m.name = last.name AND m.step = last.step WHERE m.run_id = ? ORDER BY m.name",
                (run_id, run_id),
            ).fetchall()
        )
        return {name: (step, value) for name, step, value in rows}

    def summary(self, run_id: str) -> dict[str, float]:
        """Returns the summary values the run was finished with (empty when none)."""
        return self.get_run(run_id).summary

    def last_step(self, run_id: str) -> int | None:
        """Returns the largest step the run logged a metric at, or None when it logged none."""
        self.get_run(run_id)
        return self._db.read(
            lambda conn: conn.execute("SELECT MAX(step) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()[0]
        )

    def delete_metrics_after(self, run_id: str, step: int) -> int:
        """Deletes the run's metric rows with step > ``step``; returns how many it deleted."""
        step = as_int(step, "step")

        def delete(conn: sqlite3.Connection) -> int:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise self._unknown(run_id)
            return conn.execute("DELETE FROM metrics WHERE run_id = ? AND step > ?", (run_id, step)).rowcount

        return self._db.write(delete)

    def count_metrics(self, run_id: str | None = None) -> int:
        """Returns the number of metric rows (of one run, or of the whole store)."""
        if run_id is None:
            return self._db.read(lambda conn: conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0])
        return self._db.read(lambda conn: conn.execute("SELECT COUNT(*) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()[0])

    # ---- export ------------------------------------------------------------------------------------------

    def export_csv(self, dest: str | os.PathLike[str] | IO[str], run_ids: Iterable[str] | None = None) -> int:
        """Writes one CSV row per (run, metric, step) with the run's fields; returns the number of data rows."""
        return _export_csv(self, dest, run_ids)
