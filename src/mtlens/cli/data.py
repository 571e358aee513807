"""`mtlens data ...`: list, describe, preview and label the datasets."""

from __future__ import annotations

import typer

app = typer.Typer(help="Datasets with known factors and their tasks.", no_args_is_help=True)


@app.command("list")
def list_datasets() -> None:
    """List the registered datasets."""
    from mtlens.data import available_datasets

    for name in available_datasets():
        print(name)
