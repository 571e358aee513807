"""Calling the CLI in-process from a test (shared by the test folders; tests/conftest.py puts this folder on the
path, as pytest runs in importlib mode)."""

from __future__ import annotations

import pytest

from mtlens.cli import main


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Returns (exit code, stdout, stderr) of `mtlens ARGV`; a command that returns normally exits 0."""
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
