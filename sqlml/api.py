"""The Python face of the SQL surface: thin wrappers that run the same SQL a user would write."""

from __future__ import annotations

import json

import duckdb

from sqlml import context, spec
from sqlml import progress as progress_bar
from sqlml.score.serving import StoredModel, StoredRecommender

# The keyword options: every parameter of ml_create_model after name and source.
_OPTIONS = tuple(p.name for p in spec.PARAMS if not p.required)


def create_model(con: duckdb.DuckDBPyConnection, name: str, source: str, *, progress=None,
                 **options) -> dict:
    """``SELECT ml_create_model(name, source, option := value, ...)``; returns the summary.

    ``progress``: a bar on stderr (trial k of n, best score so far, elapsed time, time budget
    left) for training that lasts more than 2 seconds. None shows it when stderr is a terminal,
    True always, False never; a file-like object receives it instead of stderr.
    """
    unknown = [k for k in options if k not in _OPTIONS]
    if unknown:
        raise TypeError(f"create_model() got an unexpected option {unknown[0]!r}; options are "
                        f"{', '.join(_OPTIONS)}.")
    named, params = [], [name, source]
    for key, value in options.items():
        if value is None:
            continue
        if isinstance(value, dict):
            value = json.dumps(value)
        named.append(f'"{key}" := ?')
        params.append(value)
    sql = f"SELECT ml_create_model(?, ?{''.join(', ' + n for n in named)})"
    if context.lookup(con) is None:
        return con.execute(sql, params).fetchall()[0][0]   # DuckDB's own error says what is wrong
    with progress_bar.shown(con, progress, model=name):
        return con.execute(sql, params).fetchall()[0][0]


def load_model(con: duckdb.DuckDBPyConnection,
               ref: str) -> StoredModel | StoredRecommender:
    """The stored model behind ``ref`` ('name' or 'name@version'), loaded safely.

    ``.pipeline`` is the scikit-learn pipeline; ``.predict(df)`` and ``.predict_proba(df)`` give
    what the generated SQL functions give. A recommender comes back as a StoredRecommender,
    whose ``.model`` ranks items for users.
    """
    inst = context.lookup(con)
    if inst is None:
        raise duckdb.InvalidInputException(
            "load_model: sqlml is not installed on this connection. Open it with "
            "sqlml.connect(path) or call sqlml.install(con) first.")
    return inst.models.get(ref)


def report(con: duckdb.DuckDBPyConnection, name: str, path=None) -> str:
    """``SELECT ml_report(name)``: the model's HTML report (one self-contained page); also
    written to ``path`` when given."""
    html = con.execute("SELECT ml_report(?)", [name]).fetchall()[0][0]
    if path is not None:
        from sqlml.reporting.output import write

        write(path, html, "sqlml.report")
    return html
