"""The `mtlens` command. Each command group lives in its own module here; they only parse and call the library.

User errors (MtlensError) print as one line on stderr and exit with code 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import sys

import typer

from mtlens.errors import MtlensError

app = typer.Typer(
    name="mtlens",
    help="Shared representations in multi-task learning: data, training, measures, studies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


_registered = False


def _register_groups() -> None:
    # Imported here so that `import mtlens.cli` stays cheap and each group stays in its own module.
    global _registered
    if _registered:
        return
    from mtlens.cli import data, eval, methods, runs, studies, train

    app.add_typer(data.app, name="data")
    app.add_typer(runs.app, name="runs")
    app.command("train")(train.train)
    app.command("reproduce")(studies.reproduce)
    app.command("sweep")(studies.sweep)
    app.command("report")(studies.report)
    app.command("methods")(methods.methods)
    app.command("eval")(eval.eval_run)
    _registered = True


def main(argv: list[str] | None = None) -> None:
    """Runs the CLI; returns only through SystemExit (0 on success, 2 on a user error)."""
    _register_groups()
    exceptions = _click_exceptions()
    try:
        # With standalone_mode=False, click returns the code of a `typer.Exit` instead of raising it.
        code = app(args=argv, standalone_mode=False)
    except MtlensError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except exceptions.ClickException as err:  # usage errors: one line, exit 2, like MtlensError
        print(f"error: {err.format_message()}", file=sys.stderr)
        raise SystemExit(2) from None
    except getattr(exceptions, "Abort", KeyboardInterrupt):
        raise SystemExit(130) from None
    raise SystemExit(code if isinstance(code, int) else 0)


def _click_exceptions():  # type: ignore[no-untyped-def]
    """Returns click's exceptions module (recent Typer releases vendor click as typer._click)."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions
    return exceptions
