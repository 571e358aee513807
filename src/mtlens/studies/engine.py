"""The study engine's contract: what a study author writes, and what the engine gives each cell.

A study is four things, registered with one `STUDIES.add(Study(...))` line (see hard_sharing.py):

1. **A config class**, a subclass of `StudyConfig` (studies/base.py): the shared base (`study`, `preset`,
   `seeds`, `store`, `report_dir`, `data_dir`, `train`: the Trainer's own `TrainConfig`) plus the study's
   sections. Free-form mappings are called `options`. `cell_fields` names the fields that only choose cells
   (`variants`, `methods`): they are left out of a run's identity, so a finished cell is found again when the
   selection changes. `check(cfg)` (optional) validates what types cannot (method options, metric names,
   task indices): it runs before anything is written, so a bad config leaves no run behind.
2. **`cells(cfg) -> list[Cell]`**: one `Cell(seed, params, name)` per independent run: `params` is a small
   JSON mapping of what the cell varies besides the seed (`{"variant": "single_task", "task": 3}`), `name`
   says what it runs (`seed0/single_task/task_3`; shown in the display and stored as the run's name).
3. **`run_cell(cfg, cell, ctx) -> dict[str, float]`**: runs ONE cell in a worker process and returns its
   summary values (final test measures, scores). It builds its data through `ctx.cached(key, build)` (built
   once per worker process), seeds its model, and hands the Trainer `store=ctx.sink, run_id=ctx.run_id,
   checkpoint_dir=ctx.artifacts` and `fit(resume=ctx.resume)`; it may `ctx.note(key, value)` strings or lists
   for the report (the data source, task names and kinds). Its **records** are that summary plus every
   (name, step, value) row logged into `ctx.sink` (by the Trainer, or by the cell itself); the worker returns
   them and the driver writes them to the cell's run. A cell never opens the run store.
4. **`report(cfg, runs, rep)`**: fills a `plots.report.Report` (`rep.section`, `rep.text`, `rep.table`,
   `rep.figure`) from `runs`, the `CellRun`s read from the store (`status`, `params`, `seed`, `summary`,
   `series()`, `notes`); it reads nothing else, so `mtlens report` re-renders it without training. Table
   cells give mean ± std over seeds (`plots.report.mean_std`). Published numbers are data, declared by the
   study's `published="seed000"` (package file `mtlens/configs/published/seed000.yaml`: per table its
   number, page, section, columns and rows): `rep.published_table(key)` adds one as it was printed, and
   `rep.published` holds them all to put a column beside ours. The engine adds the failed cells (with their
   reasons) and the provenance (data source, preset, seeds, versions, commit, wall time, device) to every
   report, and writes it as one self-contained HTML file plus Markdown.

What the engine owns (studies/runner.py and friends): planning every cell (x grid point of a sweep),
skipping finished cells, resuming killed ones from their checkpoint (metric rows logged before the kill are
kept in `metrics.jsonl` next to the checkpoint and the replay overwrites the same (name, step), so nothing
is recorded twice), retrying a failed cell once (an exception, a non-finite loss, a killed worker) and then
recording it as failed with its reason, the backends (serial; a local process pool, the default, with
workers x torch threads = cores; Ray), the one writer (workers return `CellOutcome`s, the driver writes the
store), the Rich display, and writing the report with its provenance.

`ctx` (a `CellContext`) offers: `artifacts` (the run's folder for checkpoints and files), `sink` (the metric
sink to give the Trainer), `run_id`, `device` (the resolved `train.device`), `threads` (torch threads of
this worker), `resume` (True when an earlier attempt of this cell may have left a checkpoint), `cached`,
`note`.

Presets are YAML files shipped in the package, `mtlens/configs/<study>/<preset>.yaml` (a complete config);
`mtlens/configs/wall_times.yaml` holds each preset's measured wall time per machine kind, which
`mtlens reproduce --list` prints ("not measured" where there is none).
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtlens.errors import MtlensError

METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class Cell:
    """One independent run of a study: a seed, what else it varies (JSON-able), and a name saying what it runs."""

    seed: int
    params: Mapping[str, Any]
    name: str


@dataclass(frozen=True)
class Study:
    """A registered study: its config class, cells, one-cell runner, report builder and published numbers."""

    name: str
    config: type
    cells: Callable[[Any], list[Cell]]
    run_cell: Callable[[Any, Cell, CellContext], dict[str, float]]
    report: Callable[[Any, list[Any], Any], None]
    title: str
    published: str | None = None
    check: Callable[[Any], None] | None = None
    # `--method NAME --method-level LEVEL` as config overrides; a study whose cells choose the method differ.
    method_overrides: Callable[[str | None, str | None], list[str]] | None = None


class MetricBuffer:
    """The metric sink a cell's Trainer logs into: rows kept by (name, step), mirrored to a JSON-lines file.

    The file lets a retried cell keep the rows its killed attempt logged before its last checkpoint; the
    resumed Trainer replays the steps after it and overwrites the same keys.
    """

    def __init__(self, path: Path | None, resume: bool) -> None:
        from mtlens.runs.checks import finite_values

        self._finite = finite_values
        self.rows: dict[tuple[str, int], float] = {}
        self.failure: tuple[str, int | None] | None = None
        self.path = path
        if path is None:
            return
        if resume and path.is_file():
            for line in path.read_text().splitlines():
                try:
                    name, step, value = json.loads(line)
                except (ValueError, TypeError):
                    continue  # the last line of a killed attempt may be cut short
                self.rows[(str(name), int(step))] = float(value)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "w", encoding="utf-8")
        for (name, step), value in self.rows.items():
            self._file.write(json.dumps([name, step, value]) + "\n")

    def log_metrics(self, run_id: str, step: int, values: Mapping[str, float]) -> None:
        """Keeps one step's values (a replayed step overwrites); returns None."""
        for name, value in self._finite(values, run_id).items():
            self.rows[(name, int(step))] = value
            if self.path is not None:
                self._file.write(json.dumps([name, int(step), value]) + "\n")
        if self.path is not None:
            self._file.flush()

    def fail(self, run_id: str, message: str, step: int | None = None) -> None:
        """Remembers why the cell failed (the Trainer calls this before raising NonFiniteLoss); returns None."""
        self.failure = (message, step)

    def close(self) -> None:
        if self.path is not None and not self._file.closed:
            self._file.close()


_CACHE: OrderedDict[str, Any] = OrderedDict()
_CACHE_SIZE = 2  # a sweep over data settings must not pile up copies of the data in every worker


@dataclass
class CellContext:
    """What the engine gives `run_cell`: where to write, where to log, the device, threads and resume flag."""

    run_id: str
    artifacts: Path
    sink: MetricBuffer
    device: str
    threads: int
    resume: bool
    notes: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: Any, build: Callable[[], Any]) -> Any:
        """Returns `build()`, computed once per worker process for equal keys (e.g. the data config)."""
        k = json.dumps(key, sort_keys=True, default=str)
        if k not in _CACHE:
            while len(_CACHE) >= _CACHE_SIZE:
                _CACHE.popitem(last=False)
            _CACHE[k] = build()
        _CACHE.move_to_end(k)
        return _CACHE[k]

    def note(self, key: str, value: Any) -> None:
        """Records a JSON-able value (data source, task names) for the report; returns None."""
        json.dumps(value)
        self.notes[key] = value


@dataclass
class CellTask:
    """What a worker needs to run one cell (picklable: sent to pool workers and Ray tasks)."""

    study: str
    module: str  # where the study is registered: a worker imports it (a user's own study works in workers too)
    config: Any
    cell: Cell
    run_id: str
    artifacts: str
    resume: bool
    threads: int


@dataclass
class CellOutcome:
    """What a worker returns: status, summary, every logged metric row, notes, and the reason of a failure."""

    ok: bool
    summary: dict[str, float] = field(default_factory=dict)
    rows: list[tuple[str, int, float]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_step: int | None = None
    traceback: str | None = None
    seconds: float = 0.0


def set_threads(threads: int) -> None:
    """Sets torch's intra-op threads (and the OpenMP/MKL variables for libraries started later); returns None."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def execute(task: CellTask) -> CellOutcome:
    """Runs one cell where it is called (driver, pool worker or Ray task); returns its outcome, never raises."""
    import importlib

    import mtlens.studies  # noqa: F401  (registers every study in a fresh worker)
    from mtlens.device import resolve_device
    from mtlens.studies.registry import STUDIES

    started = time.perf_counter()
    set_threads(task.threads)
    artifacts = Path(task.artifacts)
    sink = MetricBuffer(artifacts / METRICS_FILE, task.resume)
    ctx = None
    try:
        if task.study not in STUDIES.available():
            importlib.import_module(task.module)
        study = STUDIES.get(task.study)
        ctx = CellContext(task.run_id, artifacts, sink, str(resolve_device(task.config.train.device)), task.threads,
                          task.resume)
        summary = study.run_cell(task.config, task.cell, ctx)
        outcome = CellOutcome(True, {k: float(v) for k, v in summary.items()})
    except Exception as err:  # a cell's failure is recorded with its reason; the study goes on
        message, step = sink.failure or (_reason(err), None)
        outcome = CellOutcome(False, error=message, error_step=step,
                              traceback=None if isinstance(err, MtlensError) else traceback.format_exc())
    finally:
        sink.close()
    outcome.rows = [(name, step, value) for (name, step), value in sink.rows.items()]
    outcome.notes = dict(ctx.notes) if ctx is not None else {}
    outcome.notes.setdefault("device", ctx.device if ctx is not None else "unknown")
    outcome.notes["threads"] = task.threads
    outcome.seconds = time.perf_counter() - started
    return outcome


def _reason(err: BaseException) -> str:
    if isinstance(err, MtlensError):
        return str(err)
    where = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    at = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
    return f"{type(err).__name__}: {err}{at}"
