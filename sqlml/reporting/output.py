"""Writing a report to a file, with an error that says what is wrong with the path."""

from __future__ import annotations

import os

from sqlml.errors import RequestError


def write(path, html: str, caller: str) -> str:
    """Write ``html`` to ``path`` (replacing a file there); returns the absolute path."""
    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    if os.path.isdir(target):
        example = os.path.join(os.fspath(path), "report.html")
        raise RequestError(400, "BadOutputPath",
                           f"{caller}: cannot write the report to "
                           f"{os.fspath(path)!r}: it is a folder. Name a file, e.g. {example!r}.")
    if not os.path.isdir(folder):
        raise RequestError(400, "BadOutputPath",
                           f"{caller}: cannot write the report to {os.fspath(path)!r}: folder "
                           f"{folder!r} does not exist. Create it first, or choose a path in an "
                           f"existing folder.")
    try:
        with open(target, "w", encoding="utf-8") as f:
            f.write(html)
    except OSError as exc:
        raise RequestError(400, "BadOutputPath",
                           f"{caller}: cannot write the report to {os.fspath(path)!r}: "
                           f"{exc.strerror}. Choose a path you can write to.") from None
    return target
