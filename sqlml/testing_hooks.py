"""Pause points for the crash tests (tests/test_crash.py, benchmarks/soak_crash.py). Test-only.

``pause("store")`` does nothing unless the environment variable ``SQLML_TEST_PAUSE`` names that
point. When it does, the process writes its PID and the point to the file
``SQLML_TEST_PAUSE_FILE`` and sleeps ``SQLML_TEST_PAUSE_SECONDS`` (default 60), so that a test can
``kill -9`` it at a known moment: while loading the training rows (``load``), after fitting
(``fit``), inside the publishing transaction with every row of the new version written but not
committed (``store``), or just after that transaction committed (``published``).

Unset (every real use), a call costs one dictionary lookup and changes nothing.
"""

from __future__ import annotations

import os
import time

POINTS = ("load", "fit", "store", "published")


def pause(point: str) -> None:
    """Sleep at ``point`` if SQLML_TEST_PAUSE names it (a comma-separated list of points)."""
    wanted = os.environ.get("SQLML_TEST_PAUSE")
    if not wanted or point not in wanted.split(","):
        return
    marker = os.environ.get("SQLML_TEST_PAUSE_FILE")
    if marker:
        tmp = f"{marker}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {point}\n")
        os.replace(tmp, marker)   # the test sees the whole line or nothing
    time.sleep(float(os.environ.get("SQLML_TEST_PAUSE_SECONDS", "60")))
