"""The run store's SQLite schema, and opening a connection to a store file with the settings it needs.

Schema version 1:

- ``meta(key PRIMARY KEY, value)`` holds ``app = 'mtlens-runs'`` and ``schema_version``; a file without
  them is not a run store and is never written to.
- ``runs``: one row per run (id, study, name, config JSON + its hash, seed, status, timings in Unix seconds,
  owner host/pid of the current attempt, error message and step, summary JSON, artifacts directory).
- ``metrics(run_id, name, step, value)`` with primary key ``(run_id, name, step)``: a replayed step (a run
  resumed from a checkpoint older than its last logged step) overwrites its row instead of duplicating it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mtlens.errors import MtlensError

APP_NAME = "mtlens-runs"
SCHEMA_VERSION = 1
STATUSES = ("created", "running", "finished", "failed", "interrupted")

_DDL = f"""
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    study TEXT NOT NULL,
    name TEXT,
    config TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
    created_at REAL NOT NULL,
    started_at REAL,
    last_started_at REAL,
    finished_at REAL,
    wall_seconds REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    host TEXT,
    pid INTEGER,
    error TEXT,
    error_step INTEGER,
    summary TEXT,
    artifacts_dir TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_study ON runs (study, created_at);
CREATE INDEX IF NOT EXISTS runs_by_config ON runs (study, config_hash, seed);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run_id, name, step)
) WITHOUT ROWID;
"""


def connect(path: Path, busy_timeout: float, read_only: bool = False) -> sqlite3.Connection:
    """Returns an autocommit connection (transactions are explicit) with busy timeout and foreign keys on.

    A read-only connection refuses every write (``PRAGMA query_only``); it is still opened read-write so that
    SQLite can clean up the WAL side files when it closes (a ``mode=ro`` connection leaves them behind).
    """
    try:
        conn = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None)
    except sqlite3.OperationalError as err:
        raise MtlensError(f"cannot open run store {path}: {err}; check that the path is a writable file") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if read_only:
            conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA foreign_keys = ON")
        # In WAL mode NORMAL still commits atomically and survives a killed process; only an OS crash or
        # power loss can drop the last commits, a fair price for not syncing on every metric write.
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as err:
        conn.close()
        if isinstance(err, sqlite3.OperationalError) and "locked" in str(err):
            raise
        raise _not_a_database(path, err) from None
    return conn


def is_damage(err: sqlite3.DatabaseError) -> bool:
    """Returns whether SQLite's error says the file's pages are damaged (not a lock, not a constraint)."""
    message = str(err)
    return "malformed" in message or "corrupt" in message or type(err) is sqlite3.DatabaseError


def damaged(path: Path, err: sqlite3.DatabaseError) -> MtlensError:
    """Returns the one-line error for a store whose pages SQLite cannot read."""
    return MtlensError(
        f"run store {path} is damaged ({err}); check it with `sqlite3 {path} 'PRAGMA integrity_check'` "
        "and restore it from a copy"
    )


def empty_file(path: Path) -> MtlensError:
    """Returns the one-line error for an empty file given where an existing store is expected."""
    return MtlensError(
        f"{path} is empty, not a run store; pass --store with the path of an existing store "
        "(a store is created by `mtlens train`)"
    )


def _not_a_database(path: Path, err: sqlite3.DatabaseError) -> MtlensError:
    if "malformed" in str(err):
        return damaged(path, err)
    return MtlensError(
        f"{path} is not an mtlens run store (not an SQLite database: {err}); "
        "pass --store with a run store path, or move the file away"
    )


def check_file(conn: sqlite3.Connection, path: Path) -> str:
    """Returns 'ok' for an mtlens store of a readable version, 'empty' for a database without tables."""
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as err:
        if "not a database" in str(err) or "malformed" in str(err):
            raise _not_a_database(path, err) from None
        raise
    if not tables:
        return "empty"
    if "meta" not in tables:
        raise MtlensError(
            f"{path} is an SQLite database but not an mtlens run store (no 'meta' table); "
            "pass --store with a run store path, or move the file away"
        )
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("app") != APP_NAME:
        raise MtlensError(
            f"{path} is an SQLite database but not an mtlens run store (meta app is {meta.get('app')!r}, "
            f"expected {APP_NAME!r}); pass --store with a run store path"
        )
    try:
        version = int(meta.get("schema_version", ""))
    except ValueError:
        raise MtlensError(
            f"{path}: run store schema_version is {meta.get('schema_version')!r}, expected an integer; "
            "the file is damaged, restore it from a copy"
        ) from None
    if version > SCHEMA_VERSION:
        raise MtlensError(
            f"{path} has run store schema version {version}, this mtlens reads up to {SCHEMA_VERSION}; "
            "upgrade mtlens to open it"
        )
    if version < 1:
        raise MtlensError(f"{path}: run store schema version {version} is invalid; restore the file from a copy")
    return "ok"


def create_schema(conn: sqlite3.Connection) -> None:
    """Creates the tables and the meta rows; runs inside the caller's write transaction, idempotent."""
    for statement in _DDL.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('app', ?)", (APP_NAME,))
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
