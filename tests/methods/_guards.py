"""A liveness guard for the tests that must show a call returns (bounds far above any normal call)."""

from __future__ import annotations

import faulthandler
import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hang_guard(seconds: float = 60.0) -> Iterator[None]:
    """Fails the guarded block with TimeoutError after `seconds`, so a hang fails its test, not the suite.

    A loop in Python code is interrupted by SIGALRM; a loop inside native code (LAPACK on NaN input) never
    returns to Python to see it, so after twice the time faulthandler prints every thread's stack and ends
    the process: the run fails loudly instead of hanging.
    """

    def _raise(*_: object) -> None:
        raise TimeoutError(f"the call did not return within {seconds} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    faulthandler.dump_traceback_later(2 * seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
