"""`mtlens methods`: the MTL methods, their kind and levels, whether the task count is fixed, their options and
defaults, and the LibMTL 1.1.5 / TorchJD 0.18 methods each implements."""

from __future__ import annotations


def methods() -> None:
    """List the MTL optimisation methods (registry names) with kind, levels, task count, options and peers."""
    from rich.console import Console
    from rich.table import Table

    from mtlens.methods.catalog import method_rows

    table = Table("name", "kind", "levels", "n_tasks", "options (defaults)", "peers", "summary", show_lines=True)
    for row in method_rows():
        table.add_row(row.name, row.kind, ", ".join(row.levels), row.n_tasks, ", ".join(row.options) or "-",
                      ", ".join(row.peers) or "-", row.summary)
    console = Console()
    console.width = max(console.width, 160)  # seven columns: narrower than this, every cell wraps
    console.print(table)
