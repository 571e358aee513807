"""One SQLite connection per process and thread, and short transactions retried while the file is locked.

Several processes may write to one store at once (a sweep's workers, a trainer and a measuring job). That
works because the file is in WAL mode (readers never block the writer), every write is one short
``BEGIN IMMEDIATE`` transaction (the write lock is taken up front, so two writers never deadlock upgrading a
read lock), each connection waits up to ``busy_timeout`` seconds for the lock, and a transaction that still
finds the file locked is retried with jittered back-off until that deadline. A ``Database`` carried across
``fork`` opens a new connection in the child; a pickled one (spawn, Ray) reconnects where it is unpickled.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mtlens.errors import MtlensError
from mtlens.runs import schema

_T = TypeVar("_T")


class Database:
    """Connections to one run store file, opened lazily per process and thread, checked on opening."""

    def __init__(self, path: Path, busy_timeout: float, *, create: bool = True, read_only: bool = False) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.create = create and not read_only  # write the schema into an empty file
        self.read_only = read_only  # connections refuse every write (PRAGMA query_only)
        self._pid = os.getpid()
        self._local = threading.local()
        self._inherited: list[threading.local] = []

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "busy_timeout": self.busy_timeout, "create": self.create, "read_only": self.read_only}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["busy_timeout"], create=state["create"],  # type: ignore[misc]
                      read_only=state["read_only"])

    def close(self) -> None:
        """Closes this thread's connection (a later call reopens one); returns None."""
        conn = getattr(self._local, "conn", None) if self._pid == os.getpid() else None
        if conn is not None:
            conn.close()
            self._local.conn = None

    def connection(self) -> sqlite3.Connection:
        """Returns this process's and thread's connection, opening and checking it on first use."""
        if self._pid != os.getpid():
            # A connection must not cross fork. The parent's is kept referenced but unused: closing it in the
            # child could checkpoint or remove the WAL files the parent is using.
            self._inherited.append(self._local)
            self._local = threading.local()
            self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = schema.connect(self.path, self.busy_timeout, read_only=self.read_only)
            try:
                self._prepare(conn)
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        if self.retry(lambda: schema.check_file(conn, self.path)) == "empty":
            if not self.create:  # an empty file is not a store; only a writer that may create one fills it in
                raise schema.empty_file(self.path)
            self.retry(lambda: conn.execute("PRAGMA journal_mode = WAL"))
            self._transaction(conn, schema.create_schema, write=True)
            schema.check_file(conn, self.path)
        elif not self.read_only and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self.retry(lambda: conn.execute("PRAGMA journal_mode = WAL"))

    def write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Returns ``fn(conn)`` run in one write transaction (all or nothing)."""
        return self._transaction(self.connection(), fn, write=True)

    def read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Returns ``fn(conn)`` run in one read transaction (one consistent snapshot)."""
        return self._transaction(self.connection(), fn, write=False)

    def _transaction(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], _T], *, write: bool) -> _T:
        def attempt() -> _T:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        return self.retry(attempt)

    def retry(self, attempt: Callable[[], _T]) -> _T:
        """Returns ``attempt()``, called again while SQLite reports the file locked, until busy_timeout."""
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.002
        jitter = random.SystemRandom()  # OS entropy: forked workers must not back off in lockstep
        while True:
            try:
                return attempt()
            except sqlite3.DatabaseError as err:
                if not isinstance(err, sqlite3.OperationalError):
                    if schema.is_damage(err):  # a damaged page is found by the query that reads it
                        raise schema.damaged(self.path, err) from None
                    raise
                message = str(err)
                if "locked" not in message and "busy" not in message:
                    if self.read_only and "readonly" in message:
                        raise MtlensError(f"run store {self.path} was opened read-only; this command cannot write to it") from None
                    if "readonly" in message or "disk is full" in message or "unable to open" in message:
                        raise MtlensError(f"run store {self.path}: {message}; free space or fix permissions") from None
                    raise
                if time.monotonic() >= deadline:
                    raise MtlensError(
                        f"run store {self.path} stayed locked by another process for {self.busy_timeout:g} s; "
                        "stop the process holding it or raise busy_timeout"
                    ) from None
            time.sleep(delay * (0.5 + jitter.random()))
            delay = min(delay * 2, 0.25)
