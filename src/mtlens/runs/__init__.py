"""The run store (SQLite): runs, configs, status, timings, metrics and artifacts directories."""

from mtlens.runs.ids import config_hash
from mtlens.runs.records import Metric, Run, Timings
from mtlens.runs.store import DEFAULT_STORE, RunStore

__all__ = ["DEFAULT_STORE", "Metric", "Run", "RunStore", "Timings", "config_hash"]
