"""`mtlens data ...`: list, describe, preview and label the datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Datasets with known factors and their tasks.", no_args_is_help=True)

DataDir = typer.Option(None, "--data-dir", help="Folder with the official data files (else $MTLENS_DATA).")


def _factor_dataset(name: str, data_dir: Optional[Path]):  # type: ignore[no-untyped-def]
    from mtlens.data import available_datasets, create_factor_dataset, dataset_kind
    from mtlens.errors import MtlensError

    if dataset_kind(name) != "factor":
        raise MtlensError(f"{name} is task data, not a factor dataset; this command takes one of: "
                          f"{', '.join(available_datasets('factor'))}")
    return create_factor_dataset(name, data_dir=data_dir)


@app.command("list")
def list_datasets() -> None:
    """List the registered datasets and their kind (factor dataset, or task data that comes with its tasks)."""
    from mtlens.data import DATASET_KINDS, available_datasets

    for kind in DATASET_KINDS:
        for name in available_datasets(kind):  # type: ignore[arg-type]
            print(f"{name}\t{kind}")


@app.command("info")
def info(name: str, data_dir: Optional[Path] = DataDir, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show a dataset's factors, their sizes and value ranges, and where its images come from."""
    from rich.console import Console
    from rich.table import Table

    from mtlens.data import create_factor_dataset, create_task_data, dataset_kind

    create = create_factor_dataset if dataset_kind(name) == "factor" else create_task_data
    desc = create(name, data_dir=data_dir).describe()
    if as_json:
        print(json.dumps(desc, indent=2))
        return
    console = Console()
    console.print(f"[bold]{desc['name']}[/bold]: {desc.get('num_images', '?')} images of shape "
                  f"{desc.get('image_shape', '?')}; source: {desc['source']}")
    if "factors" in desc:
        table = Table("factor", "values", "min", "max")
        for f in desc["factors"]:
            table.add_row(f["name"], str(f["size"]), f"{f['min']:.4g}", f"{f['max']:.4g}")
        console.print(table)
    else:
        for key, value in desc.items():
            if key not in ("name", "source"):
                console.print(f"{key}: {value}")


@app.command("preview")
def preview(
    name: str,
    out: Path = typer.Option(..., "--out", "-o", help="PNG file to write."),
    n: int = typer.Option(24, "--n", help="Number of images."),
    seed: int = typer.Option(0, "--seed"),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """Write a grid of random images labelled with their factor values."""
    from mtlens.paths import writable_path
    from mtlens.plots.data import preview_grid

    writable_path(out, "preview image")  # before the dataset is built
    ds = _factor_dataset(name, data_dir)
    path = preview_grid(ds, out, n=n, seed=seed)
    print(f"wrote {path} ({ds.name}, {ds.source})")


@app.command("tasks")
def tasks(
    name: str,
    n_tasks: int = typer.Option(10, "--n-tasks", help="Number of random-MLP tasks."),
    seed: int = typer.Option(0, "--seed", help="Seed of the task weights."),
    n: int = typer.Option(20000, "--n", help="Number of random images to label (0 = all)."),
    inputs: str = typer.Option("physical", "--inputs", help="physical or unit factor values."),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """Print per-task statistics of random-MLP targets (raw and standardised) on a dataset."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from mtlens.data.random_mlp import RandomMLPTasks
    from mtlens.errors import MtlensError

    if n < 0:
        raise MtlensError(f"--n must be >= 0 (0 labels every image), got {n}")
    ds = _factor_dataset(name, data_dir)
    task_set = RandomMLPTasks.for_dataset(ds, n_tasks, seed, inputs=inputs)
    rng = np.random.default_rng(seed)
    idx = np.arange(len(ds)) if n == 0 or n >= len(ds) else np.sort(rng.choice(len(ds), n, replace=False))
    raw = task_set.raw(ds.factor_values(idx))
    std = task_set.fit(ds.factor_values(idx))(ds.factor_values(idx))
    table = Table("task", "raw mean", "raw std", "raw min", "raw max", "std. mean", "std. std", title=f"{ds.name}: {len(idx)} images")
    for i, spec in enumerate(task_set.tasks):
        r, s = raw[:, i], std[:, i]
        table.add_row(spec.name, f"{r.mean():.3f}", f"{r.std():.3f}", f"{r.min():.3f}", f"{r.max():.3f}",
                      f"{s.mean():.3f}", f"{s.std():.3f}")
    Console().print(table)
