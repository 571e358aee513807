"""Grid sweeps over any config key: `--grid train.lr=1e-3,1e-4 --grid method.name=ew,mgda`.

Each grid point is the config with one value per key; its cells are the study's cells for that config, run
by the same engine and backends (a finished point is skipped like any finished cell). Each point gets its
own report, and an index lists them.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtlens.config import apply_overrides, parse_value
from mtlens.errors import MtlensError
from mtlens.plots.report import Report
from mtlens.studies.registry import STUDIES


def _split_top(raw: str) -> list[str]:
    """Returns `raw` split at the commas outside brackets and quotes ('[1, 2],[3]' -> ['[1, 2]', '[3]'])."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in raw:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Returns [(key, raw values)] for `key=v1,v2` items, or raises one line naming the bad item."""
    grid = []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        values = _split_top(raw) if sep else []
        if not sep or not key or not all(values):
            raise MtlensError(f"grid {item!r} is not key=value1,value2; write e.g. --grid train.lr=1e-3,1e-4")
        if key in (k for k, _ in grid):
            raise MtlensError(f"grid key {key!r} is given twice; list all its values in one --grid")
        for value in values:
            parse_value(value, key)
        grid.append((key, values))
    if not grid:
        raise MtlensError("a sweep needs at least one --grid key=v1,v2")
    return grid


def expand(data: dict[str, Any], grid: list[tuple[str, list[str]]], origin: str) -> tuple[list[Any], list[str]]:
    """Returns (the validated config of every grid point, their labels like 'train.lr=0.001 method.name=ew')."""
    configs, labels = [], []
    for values in itertools.product(*(v for _, v in grid)):
        overrides = [f"{k}={v}" for (k, _), v in zip(grid, values)]
        point = apply_overrides(copy.deepcopy(data), overrides)
        label = " ".join(overrides)
        try:
            cfg = STUDIES.validate(point, origin=f"{origin} [{label}]")
        except MtlensError as err:
            raise MtlensError(f"grid: {err}") from None
        configs.append(cfg)
        labels.append(label)
    for key, _ in grid:
        if key.split(".")[0] in ("store", "study"):
            raise MtlensError(f"grid key {key!r} cannot be swept: one sweep runs one study into one store")
    return [c.model_copy(update={"report_dir": str(_point_dir(c, i))}) for i, c in enumerate(configs)], labels


def _point_dir(cfg: Any, index: int) -> Path:
    root = Path(cfg.report_dir) if cfg.report_dir else Path(cfg.store).parent / "reports" / f"{cfg.study}_{cfg.preset}_sweep"
    return root / f"point_{index:03d}"


def write_index(configs: Sequence[Any], labels: Sequence[str], reports: Sequence[Path], counts: Sequence[str]) -> Path:
    """Writes the sweep's index (HTML and Markdown) beside the points' reports; returns the HTML path."""
    root = Path(reports[0]).parent.parent
    rep = Report(f"Sweep of {configs[0].study}: {len(configs)} grid points")
    rows = [[label, count, str(Path(r).relative_to(root))] for label, count, r in zip(labels, counts, reports)]
    rep.table("Grid points and their reports", ["grid point", "cells", "report"], rows)
    return rep.write(root)
