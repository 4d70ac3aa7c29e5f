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


def report(con: duckdb.DuckDBPyConnection, name: str, path=None, *,
           drift: str | None = None) -> str:
    """``SELECT ml_report(name, drift := drift)``: the model's HTML report (one self-contained
    page), with a drift section comparing the rows of query ``drift`` with the training data
    (``sqlml.drift(con, name, drift)``) when given; also written to ``path`` when given."""
    # Without a drift query, the one-argument form: a read-only file whose persisted macros
    # predate the drift section has only that one.
    html = (con.execute("SELECT ml_report(?)", [name]) if drift is None else con.execute(
        "SELECT ml_report(?, drift := ?)", [name, drift])).fetchall()[0][0]
    if path is not None:
        from sqlml.reporting.output import write

        write(path, html, "sqlml.report")
    return html


def drift(con: duckdb.DuckDBPyConnection, model: str, query: str, *,
          by: str | None = None) -> list[dict]:
    """``FROM ml_drift(model, query)`` (or ``ml_drift_by(model, query, by)``) as a list of
    dict rows, with the prediction row filled in: the model's scores are added to the query as
    its column ml_score, by the model's generated function (compiled SQL, or Python in a sqlml
    session). Raises DriftError (through DuckDB) on a query the check refuses."""
    rows = con.execute(
        "SELECT m.function_name, v.problem_type, v.features FROM sqlml.models m "
        "JOIN sqlml.model_versions v ON v.name = m.name AND v.version = m.active_version "
        "WHERE m.name = ?", [model]).fetchall()
    scored = query
    if rows and rows[0][1] in ("binary_classification", "regression"):
        fn, problem, features = rows[0]
        name = fn + ("_probability" if problem == "binary_classification" else "")
        args = ", ".join('"' + f["name"].replace('"', '""') + '"' for f in json.loads(features))
        scored = (f'SELECT *, "{name}"({args}) AS ml_score FROM ({query.rstrip().rstrip(";")}) '
                  f"AS __sqlml_drift_query")
    try:
        return _drift_rows(con, model, scored, by)
    except duckdb.Error as exc:
        if scored is query:
            raise
        failure = exc
    # The query itself fails the check (a missing column, no rows): that error names it. Else
    # scoring failed: the feature rows stand, and the prediction row says why.
    out = _drift_rows(con, model, query, by)
    for row in out:
        if row["kind"] == "prediction":
            row["note"] = f"not computed: scoring the query failed: {failure}"
    return out


def _drift_rows(con: duckdb.DuckDBPyConnection, model: str, query: str,
                by: str | None) -> list[dict]:
    literal = "'" + query.replace("'", "''") + "'"
    rel = con.execute(f"FROM ml_drift_by(?, {literal}, ?)", [model, by])
    names = [d[0] for d in rel.description]
    out = [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
    if by is None:
        for row in out:
            row.pop("group", None)
    return out
