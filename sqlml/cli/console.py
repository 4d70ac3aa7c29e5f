"""Running scripts for a terminal: what ``sqlml run`` and ``sqlml shell`` share.

Each script is parsed whole first (a syntax error runs nothing and names its line and column),
then run one statement at a time through ``sqlml.execute``, so the results of a long script
appear as its statements finish and a training statement gets its progress bar.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from sqlml import progress
from sqlml.cli import render
from sqlml.errors import SqlmlError, SqlSyntaxError, describe
from sqlml.redshift.parser import parse
from sqlml.redshift.script import Result, execute

MAX_ROWS = 40
# What a model listing shows (SHOW MODEL ALL, sqlml models); FROM ml_models() has every column.
MODEL_COLUMNS = ("name", "version", "versions", "state", "problem_type", "model_type", "target",
                 "function", "training_rows", "created_at")
# Leading words of statements whose result is worth a table even when it is a bare count.
_QUERIES = {"SELECT", "FROM", "WITH", "VALUES", "TABLE", "SHOW", "DESCRIBE", "DESC", "SUMMARIZE",
            "PRAGMA", "CALL", "PIVOT", "UNPIVOT", "EXPLAIN", "("}


def message(exc: BaseException) -> str:
    """An error as the user should read it: DuckDB's wrapping of a sqlml error peeled off."""
    return describe(exc).message


def _leading_word(statement: str) -> str:
    body = re.sub(r"^(\s|--[^\n]*\n|/\*.*?\*/)*", "", statement, flags=re.S)
    m = re.match(r"\(|[A-Za-z_]+", body)
    return m.group(0).upper() if m else ""


def _vertical(result: Result) -> tuple[list[str], list[tuple]] | None:
    """A CREATE MODEL summary (one wide row, or one STRUCT) reads better as property, value."""
    if len(result.rows) != 1:
        return None
    if len(result.columns) == 1 and isinstance(result.rows[0][0], dict):
        return ["property", "value"], list(result.rows[0][0].items())
    if result.kind == "create_model":
        return ["property", "value"], list(zip(result.columns, result.rows[0], strict=True))
    return None


def model_listing(columns: list[str], rows: list[tuple]) -> tuple[list[str], list[tuple]]:
    index = [columns.index(c) for c in MODEL_COLUMNS if c in columns]
    return [columns[i] for i in index], [tuple(r[i] for i in index) for r in rows]


def format_result(result: Result, max_rows: int | None = MAX_ROWS) -> str | None:
    """The text to print for one statement's result, or None to print nothing."""
    cols, rows = result.columns, result.rows
    if not cols:
        return None
    if (result.kind == "sql" and cols in (["Count"], ["Success"])
            and _leading_word(result.statement) not in _QUERIES
            and "RETURNING" not in result.statement.upper()):
        return None      # CREATE, INSERT, SET ...: the duckdb CLI prints nothing either
    if cols == ["explain_key", "explain_value"]:
        return "\n".join(str(r[1]) for r in rows)
    if result.kind == "show_models":
        cols, rows = model_listing(cols, rows)
    vertical = _vertical(result)
    if vertical is not None:
        return render.table(*vertical, wrap=True)
    return render.table(cols, rows, max_rows=max_rows)


def _not_utf8(script: str) -> str | None:
    """Where a script read with errors='surrogateescape' holds bytes that are not UTF-8."""
    try:
        script.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        i = exc.start
    line = script.count("\n", 0, i) + 1
    column = i - (script.rfind("\n", 0, i) + 1) + 1
    byte = ord(script[i]) - 0xDC00 if "\udc80" <= script[i] <= "\udcff" else None
    got = f"byte 0x{byte:02x}" if byte is not None else f"the character {script[i]!r}"
    return (f"the script must be UTF-8 text, got {got} at line {line}, column {column}. Save it "
            f"as UTF-8, e.g. iconv -f latin1 -t utf-8 script.sql > script-utf8.sql")


@dataclass
class Console:
    """Runs scripts on one connection and prints to ``out`` / ``err`` (click.echo-like)."""

    con: duckdb.DuckDBPyConnection
    out: Callable[[str], None]
    err: Callable[[str], None]
    progress: bool | None = None      # None: a bar when stderr is a terminal
    max_rows: int | None = MAX_ROWS

    def run(self, script: str, source: str = "") -> bool:
        """Run every statement; False after the first error (the rest do not run)."""
        where = f"{source}: " if source else ""
        undecodable = _not_utf8(script)
        if undecodable:
            self.err(f"Error: {where}{undecodable}")
            return False
        try:
            statements = parse(script)
        except SqlSyntaxError as exc:
            self.err(f"Syntax error: {where}{message(exc)}")
            return False
        except SqlmlError as exc:
            self.err(f"Error: {where}{message(exc)}")
            return False
        for n, st in enumerate(statements, start=1):
            try:
                with progress.shown(self.con, self.progress), self._library_warnings():
                    results = execute(self.con, st.text,
                                      notice=lambda m: self.err(f"Notice: {m}"))
            except (duckdb.Error, SqlmlError) as exc:
                at = (f"statement {n} of {len(statements)}, line {st.line}: "
                      if len(statements) > 1 else "")
                self.err(f"Error: {where}{at}{message(exc)}")
                return False
            for r in results:
                text = format_result(r, self.max_rows)
                if text is not None:
                    self.out(text)
        return True

    @contextlib.contextmanager
    def _library_warnings(self):
        """Warnings libraries raise while a statement runs (scikit-learn's ConvergenceWarning),
        printed once each as one line, without the file and source line Python shows."""
        with warnings.catch_warnings(record=True) as caught:
            try:
                yield
            finally:
                for text in dict.fromkeys(f"Warning: {w.category.__name__}: {w.message}"
                                          for w in caught):
                    self.err(text)
