"""The driver: plan every cell, check everything, then run what is not finished and write the store.

Order matters for "nothing written on bad input": configs are validated and cells planned (the studies'
`check`), the store and report paths checked, the backend started (a Ray address must answer) and only
then is the store opened and a run created. A cell's run is created when it is dispatched; a cell that
already has a run (killed, failed, created) continues it, resuming from its checkpoint; a finished one is
skipped.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtlens.errors import MtlensError
from mtlens.runs import RunStore
from mtlens.runs.checks import owner_dead
from mtlens.runs.ids import config_hash
from mtlens.runs.records import Run
from mtlens.studies import provenance
from mtlens.studies.backends import check_backend, open_backend
from mtlens.studies.base import StudyConfig, base_config, check_writable, run_config
from mtlens.studies.display import Display
from mtlens.studies.engine import Cell, CellOutcome, CellTask, Study
from mtlens.studies.registry import STUDIES

MAX_ATTEMPTS = 2  # a failed cell is retried once, then recorded as failed with its reason
CELL_FILE = "cell.json"


@dataclass
class Job:
    """One planned cell of one (grid point's) config."""

    key: int
    study: Study
    config: StudyConfig
    cell: Cell
    run_config: dict[str, Any]
    label: str

    @property
    def hash(self) -> str:
        return config_hash(self.run_config)


@dataclass
class EngineResult:
    """What a study or sweep run did: cell counts, per-config reports, the run ids of every planned cell."""

    configs: list[StudyConfig]
    finished: int = 0
    failed: int = 0
    skipped: int = 0
    reports: list[Path] = field(default_factory=list)
    run_ids: dict[str, str] = field(default_factory=dict)

    @property
    def report_html(self) -> Path | None:
        return self.reports[0] if self.reports else None


def plan(configs: Sequence[StudyConfig], labels: Sequence[str] | None = None) -> list[Job]:
    """Returns every cell of every config (validated by its study's `check`), in dispatch order."""
    from mtlens.data import resolve_data_dir

    jobs: list[Job] = []
    for i, cfg in enumerate(configs):
        study = STUDIES.get(cfg.study)
        resolved = resolve_data_dir(cfg.data_dir)  # $MTLENS_DATA counts: it decides file vs renderer
        cfg = cfg.model_copy(update={"data_dir": None if resolved is None else str(resolved)})
        if study.check is not None:
            study.check(cfg)
        cells = study.cells(cfg)
        names = [c.name for c in cells]
        if len(set(names)) != len(names):
            raise RuntimeError(f"study {study.name} planned two cells with one name: {names}")
        base = base_config(cfg)
        prefix = f"{labels[i]} " if labels else ""
        jobs += [Job(len(jobs) + k, study, cfg, c, run_config(base, c.params), prefix + c.name)
                 for k, c in enumerate(cells)]
    return jobs


def _existing(store_path: Path, jobs: list[Job]) -> dict[int, Run]:
    """Returns job key -> its newest run in the store; raises when another live process runs one of them."""
    if not store_path.exists():
        return {}
    store = RunStore(store_path, create=False)
    by_key: dict[tuple[str, str, int], Run] = {}
    for study in {j.study.name for j in jobs}:
        for run in store.list_runs(study=study):
            prev = by_key.get((study, run.config_hash, run.seed))
            if prev is None or prev.status != "finished" or run.status == "finished":
                by_key[(study, run.config_hash, run.seed)] = run
    found = {}
    for j in jobs:
        run = by_key.get((j.study.name, j.hash, j.cell.seed))
        if run is None:
            continue
        if run.status == "running" and not owner_dead(run.host, run.pid):
            raise MtlensError(f"cell {j.label} is being run by process {run.pid} on {run.host} (run {run.id}); "
                              "wait for it to end or stop that process")
        found[j.key] = run
    return found


def run_study_configs(configs: Sequence[StudyConfig], *, backend: str = "pool", workers: int | None = None,
                      threads: int | None = None, address: str | None = None, display: bool = True,
                      labels: Sequence[str] | None = None, title: str | None = None) -> EngineResult:
    """Runs every cell of the configs that is not finished, then writes each config's report; returns counts."""
    from mtlens.studies.reporting import write_report

    check_backend(backend, workers, threads, address)
    stores = {Path(c.store) for c in configs}
    if len(stores) != 1:
        raise MtlensError(f"one run writes one store, got {len(stores)}; do not sweep over `store`")
    store_path = stores.pop()
    check_writable(store_path, "run store")  # before any data is touched
    for c in configs:
        check_writable(c.report_path(), "report folder")
    jobs = plan(configs, labels)
    configs = list(dict((id(j.config), j.config) for j in jobs).values()) or list(configs)
    existing = _existing(store_path, jobs)
    todo = [j for j in jobs if existing.get(j.key) is None or existing[j.key].status != "finished"]
    result = EngineResult(list(configs), skipped=len(jobs) - len(todo))
    result.run_ids = {j.label: existing[j.key].id for j in jobs if j.key in existing}
    if todo:
        pool = open_backend(backend, workers=workers, threads=threads, address=address, n_cells=len(todo))
        store = RunStore(store_path)
        shown = Display(display, title or ", ".join(sorted({j.study.name for j in jobs})), len(jobs), result.skipped)
        try:
            with shown:
                _drive(todo, existing, pool, store, shown, result)
        finally:
            pool.close()
    store = RunStore(store_path)
    for cfg in configs:
        mine = [j for j in jobs if j.config is cfg]
        result.reports.append(write_report(cfg, store, [(j.cell, j.hash) for j in mine]))
    return result


def _drive(todo: list[Job], existing: dict[int, Run], pool: Any, store: RunStore, shown: Display,
           result: EngineResult) -> None:
    pending = deque(todo)
    attempts: dict[int, int] = {}
    running: dict[int, Job] = {}
    try:
        while pending or running:
            while pending and len(running) < pool.slots:
                job = pending.popleft()
                attempts[job.key] = attempts.get(job.key, 0) + 1
                run_id, resume = _start(job, attempts[job.key], existing, store, result)
                task = CellTask(job.study.name, job.study.run_cell.__module__, job.config, job.cell, run_id,
                                str(store.artifacts_dir(run_id)), resume, pool.threads)
                pool.submit(job.key, task)
                running[job.key] = job
                shown.started(job.key, job.label, attempts[job.key])
            for key, outcome in pool.poll(timeout=0.5):
                job = running.pop(key)
                again = _record(job, outcome, attempts[key], store, result)
                if again:
                    pending.appendleft(job)
                status = "retry" if again else ("finished" if outcome.ok else "failed")
                shown.ended(key, job.label, status, outcome.seconds, outcome.error)
    except BaseException:
        for job in running.values():  # resumable next time, from their checkpoints
            store.mark_interrupted(result.run_ids[job.label])
        raise


def _start(job: Job, attempt: int, existing: dict[int, Run], store: RunStore, result: EngineResult) -> tuple[str, bool]:
    run_id = result.run_ids.get(job.label)
    if run_id is None:
        run_id = store.create_run(job.study.name, job.run_config, job.cell.seed, name=job.cell.name)
        result.run_ids[job.label] = run_id
        resume = False
    else:
        resume = True  # an earlier attempt (this time or a killed study) may have left a checkpoint
        if attempt > 1:
            store.mark_interrupted(run_id)
    store.start(run_id)
    return run_id, resume


def _record(job: Job, outcome: CellOutcome, attempt: int, store: RunStore, result: EngineResult) -> bool:
    """Writes a cell's outcome (the one writer); returns True when the cell goes back for its retry."""
    run_id = result.run_ids[job.label]
    folder = store.artifacts_dir(run_id)
    if outcome.traceback:
        (folder / f"error_attempt{attempt}.txt").write_text(outcome.traceback)
    if not outcome.ok and attempt < MAX_ATTEMPTS:
        return True
    by_step: dict[int, dict[str, float]] = {}
    for name, step, value in outcome.rows:
        by_step.setdefault(step, {})[name] = value
    for step in sorted(by_step):
        store.log_metrics(run_id, step, by_step[step])
    notes = {**outcome.notes, "preset": job.config.preset, "versions": provenance.versions(),
             "commit": provenance.commit(), **provenance.machine(), "attempts": attempt}
    (folder / CELL_FILE).write_text(json.dumps(notes, indent=1, sort_keys=True))
    if outcome.ok:
        store.finish(run_id, outcome.summary)
        result.finished += 1
    else:
        store.fail(run_id, f"{outcome.error} (after {attempt} attempts)", step=outcome.error_step)
        result.failed += 1
    return False
