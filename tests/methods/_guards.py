"""A liveness guard for the tests that must show a call returns (a bound far above any normal call)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hang_guard(seconds: float = 60.0) -> Iterator[None]:
    """Raises TimeoutError in the guarded block after `seconds`, so a hang fails its test instead of the suite."""

    def _raise(*_: object) -> None:
        raise TimeoutError(f"the call did not return within {seconds} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
