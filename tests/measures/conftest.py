import faulthandler

import pytest

# A test of the metrics' contracts that runs this long is hung (a C loop, e.g. liblinear on overflowing codes):
# the watchdog dumps every thread's traceback and ends the process, since no Python-level signal handler can
# interrupt native code. A hang detector with a wide margin, not a timing assertion.
HANG_SECONDS = 900


@pytest.fixture()
def hang_guard():
    """Ends the test process with a traceback if the test runs past HANG_SECONDS; yields nothing."""
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()
