"""Errors sqlml raises.

Every message names the object, states the rule, quotes the value it got and gives the remedy,
because inside DuckDB a UDF error reaches the user as ``ClassName: message`` and nothing more.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SqlmlError(ValueError):
    """Base class: a ValueError so that existing ``except ValueError`` clauses still catch it."""


class ModelNotFoundError(SqlmlError):
    pass


class InvalidNameError(SqlmlError):
    pass


class TrainingError(SqlmlError):
    pass


class PredictionInputError(SqlmlError):
    pass


class ArtifactError(SqlmlError):
    """A stored model artifact is not one sqlml wrote, or it was altered."""


class CatalogVersionError(SqlmlError):
    """The file's catalog has a schema version this sqlml cannot serve (newer, or not migrated)."""


def closest(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    hits = closest(word, choices)
    if not hits:
        return ""
    return " Did you mean " + " or ".join(repr(h) for h in hits) + "?"
