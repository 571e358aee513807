"""The run store (SQLite): runs, configs, status, timings, metrics and artifacts directories."""

from mtlens.runs.ids import config_hash
from mtlens.runs.records import DEAD, Metric, Run, Timings
from mtlens.runs.store import DEFAULT_STORE, Removal, RunStore

__all__ = ["DEAD", "DEFAULT_STORE", "Metric", "Removal", "Run", "RunStore", "Timings", "config_hash"]
