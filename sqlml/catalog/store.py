"""Reads and writes of the ``sqlml`` schema. The only module that touches catalog tables.

A model version is written in one transaction together with its generated macros, so a reader
sees either the previous version with its functions, or the new one with its functions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlml import testing_hooks
from sqlml.catalog import generated
from sqlml.errors import ModelNotFoundError, did_you_mean

VERSION_COLUMNS = (
    "name", "version", "state", "problem_type", "model_type", "target", "target_type",
    "features", "excluded", "classes", "positive_class", "function_name", "threshold",
    "threshold_reason", "objective", "metrics", "parameters", "training_rows", "validation_rows",
    "training_query", "data_fingerprint", "library_versions", "created_at", "training_seconds",
    "artifact_format", "artifact_sha256", "artifact",
)

# The columns every INSERT names, per table (model_versions: VERSION_COLUMNS), so that a column a
# migration adds to a table cannot shift the values written by this code.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "models": ("name", "active_version", "function_name", "created_at", "updated_at"),
    "model_versions": VERSION_COLUMNS,
    "model_metrics": ("name", "version", "metric", "class_label", "value"),
    "confusion_matrices": ("name", "version", "actual", "predicted", "n"),
    "trials": ("name", "version", "trial", "model_type", "parameters", "objective", "score",
               "fold_scores", "seconds", "status"),
    "training_runs": ("name", "version", "status", "started_at", "finished_at", "seconds",
                      "error"),
    "threshold_metrics": ("name", "version", "threshold", "tp", "fp", "tn", "fn", "precision",
                          "recall", "f1", "fnr", "fpr", "accuracy", "cost"),
    "training_log": ("name", "version", "trial", "epoch", "model_type", "resource", "score",
                     "running_average", "median_of_earlier", "event", "trials_planned",
                     "best_so_far", "elapsed_seconds", "remaining_seconds", "logged_at"),
    "diagnosis": ("name", "version", "step", "kind", "train_rows", "training_score",
                  "validation_score", "training_skill", "validation_skill", "verdict", "remedy"),
    "calibration": ("name", "version", "bin", "lower_bound", "upper_bound", "mean_predicted",
                    "observed_rate", "n", "brier_score", "method"),
    "feature_importance": ("name", "version", "kind", "rank", "feature", "term", "class_label",
                           "importance", "importance_std", "coefficient"),
    "explain_baselines": ("name", "version", "feature", "value"),
    "model_params": ("name", "version", "key", "ints", "doubles", "texts"),
    "validation_predictions": ("name", "version", "row", "actual", "predicted"),
    "training_profiles": ("name", "version", "feature", "kind", "column_type", "rows",
                          "missing_rate", "mean", "std", "bin_upper", "bin_share", "cdf_at",
                          "cdf", "categories", "category_share", "other_share", "complete"),
    "forecast_series": ("name", "version", "series_id", "series", "method", "season_length",
                        "points", "filled", "first_period", "last_period", "scale",
                        "scale_squared", "mase", "smape", "rmsse", "coverage", "scaled_pinball",
                        "notes"),
    "forecasts": ("name", "version", "series_id", "step", "period", "values"),
    "forecast_backtest": ("name", "version", "series_id", "window", "step", "period", "actual",
                          "quantile", "forecast"),
    "forecast_diagnostics": ("name", "version", "series_id", "flag", "detail"),
}


def columns(table: str, skip: int = 0) -> str:
    """The quoted column list of a catalog table, without its first ``skip`` columns."""
    return ", ".join(f'"{c}"' for c in TABLE_COLUMNS[table][skip:])


def insert(table: str, values: str | None = None) -> str:
    """``INSERT INTO sqlml.<table> (<every column>) VALUES (?, ...)`` (or the given VALUES)."""
    marks = ", ".join("?" * len(TABLE_COLUMNS[table]))
    return f"INSERT INTO sqlml.{table} ({columns(table)}) VALUES ({values or marks})"


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def model_names(cur) -> list[str]:
    return [r[0] for r in cur.execute("SELECT name FROM sqlml.models ORDER BY name").fetchall()]


def model_row(cur, name: str) -> dict | None:
    rows = cur.execute(
        "SELECT name, active_version, function_name FROM sqlml.models WHERE name = ?", [name]
    ).fetchall()
    if not rows:
        return None
    return dict(zip(("name", "active_version", "function_name"), rows[0], strict=True))


# The one wording of an unknown model and of an unknown version. The Python checks below fill
# it in; sqlml/sqlfiles.py writes NOT_FOUND into the SQL macro ml_require_model as an error()
# expression, prefixed with the class name so that sqlml.errors.describe maps both alike.
ABSENT = "model {model} does not exist"
NOT_FOUND = (ABSENT + " (it was never trained, or it was dropped).{suggestion} Models in this "
             "database: {listing}.")
NO_MODELS = "none yet; train one with ml_create_model"
NO_VERSION = "model {model} has no version {version}; stored versions are {stored}."


def absent(name: str) -> str:
    """ABSENT filled in, for a notice that a missing model is fine (IF EXISTS)."""
    return ABSENT.format(model=repr(name))


def require_model(cur, name: str, caller: str) -> dict:
    row = model_row(cur, name)
    if row is None:
        names = model_names(cur)
        raise ModelNotFoundError(f"{caller}: " + NOT_FOUND.format(
            model=repr(name), suggestion=did_you_mean(name, names),
            listing=", ".join(names) if names else NO_MODELS))
    return row


def versions(cur, name: str) -> list[int]:
    return [r[0] for r in cur.execute(
        "SELECT version FROM sqlml.model_versions WHERE name = ? ORDER BY version", [name]
    ).fetchall()]


def require_version(cur, name: str, version: int | str | None, caller: str, remedy: str) -> int:
    """``version`` as a stored version number of model ``name`` (which must exist), or
    ModelNotFoundError naming the stored ones; ``remedy`` says how the caller picks one."""
    require_model(cur, name, caller)
    have = versions(cur, name)
    number = version if isinstance(version, int) else (
        int(version) if isinstance(version, str) and version.isdigit() else None)
    if number is None or number not in have:
        raise ModelNotFoundError(f"{caller}: " + NO_VERSION.format(
            model=repr(name), version=repr(version), stored=", ".join(map(str, have)))
            + f" {remedy}")
    return number


def resolve_version(cur, name: str, pinned: str, ref: str) -> int:
    caller = f"model reference {ref!r}"
    if not pinned:
        return require_model(cur, name, caller)["active_version"]
    return require_version(cur, name, pinned, caller,
                           f"Use '{name}@<version>' with one of them, or {name!r} for the active "
                           f"version.")


def version_row(cur, name: str, version: int, with_artifact: bool = False) -> dict:
    cols = [c for c in VERSION_COLUMNS if with_artifact or c != "artifact"]
    rows = cur.execute(
        f"SELECT {', '.join(cols)} FROM sqlml.model_versions WHERE name = ? AND version = ?",
        [name, version]).fetchall()
    if not rows:
        raise ModelNotFoundError(
            f"model {name!r} has no stored version {version}. List versions with "
            f"FROM ml_show_model('{name}').")
    return dict(zip(cols, rows[0], strict=True))


def function_owner(cur, function_name: str) -> str | None:
    rows = cur.execute(
        # DuckDB resolves function names without regard to case, so ownership does too.
        "SELECT name FROM sqlml.models WHERE lower(function_name) = lower(?)",
        [function_name]).fetchall()
    return rows[0][0] if rows else None


def publish(cur, record: dict, metric_rows: list, confusion_rows: list, trial_rows: list,
            ddl: list[str], threshold_rows=None,
            extra_rows: dict[str, list[tuple]] | None = None, extra=None) -> int:
    """Store a new version and make it active, with its macros, in one transaction.

    ``extra_rows``: {table: rows} for further per-version tables (sqlml.<table>, whose first
    two columns are name and version), e.g. feature importance and diagnosis rows.
    """
    cur.execute("BEGIN")
    try:
        name = record["name"]
        version = cur.execute(
            "SELECT coalesce(max(version), 0) + 1 FROM sqlml.model_versions WHERE name = ?",
            [name]).fetchall()[0][0]
        row = {**record, "version": version, "state": "READY"}
        for key in ("features", "excluded", "classes", "metrics", "parameters",
                    "library_versions"):
            row[key] = None if row[key] is None else json.dumps(row[key], default=str)
        cur.execute(insert("model_versions"), [row[c] for c in VERSION_COLUMNS])
        if metric_rows:
            cur.executemany(insert("model_metrics"),
                            [(name, version, m, c, v) for m, c, v in metric_rows])
        if confusion_rows:
            cur.executemany(insert("confusion_matrices"),
                            [(name, version, a, p, n) for a, p, n in confusion_rows])
        if threshold_rows is not None and len(threshold_rows):
            # A frame of up to thousands of rows: one INSERT ... SELECT, not a row at a time.
            cur.register("__sqlml_thresholds", threshold_rows)
            cur.execute(f"INSERT INTO sqlml.threshold_metrics ({columns('threshold_metrics')}) "
                        f"SELECT ?, ?, {columns('threshold_metrics', 2)} FROM __sqlml_thresholds",
                        [name, version])
            cur.unregister("__sqlml_thresholds")
        if trial_rows:
            cur.executemany(
                insert("trials"),
                [(name, version, t["trial"], t["model_type"], json.dumps(t["parameters"]),
                  t["objective"], t["score"], json.dumps(t["fold_scores"]), t["seconds"],
                  t["status"]) for t in trial_rows])
        _insert_extra(cur, extra_rows or {}, name, version)
        _set_active(cur, name, version, record["function_name"])
        if extra is not None:
            # Per-version tables (recommender factors) need the version number; the callback
            # writes them and returns the macros that read them.
            ddl = [*ddl, *extra(cur, version)]
        for stmt in ddl:
            cur.execute(stmt)
        refresh_recommender_items(cur)
        cur.execute(
            insert("training_runs", "?, ?, 'succeeded', ?, ?, ?, NULL"),
            [name, version, record["created_at"], now(), record["training_seconds"]])
        testing_hooks.pause("store")
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    testing_hooks.pause("published")
    return version


def _insert_extra(cur, extra_rows: dict, name: str, version: int) -> None:
    for table, rows in extra_rows.items():
        if hasattr(rows, "columns"):   # a frame: one INSERT ... SELECT, as for thresholds
            _insert_frame(cur, table, rows, name, version)
        elif rows:
            cur.executemany(insert(table), [(name, version, *r) for r in rows])


def _insert_frame(cur, table: str, frame, name: str, version: int) -> None:
    if not len(frame):
        return
    cur.register("__sqlml_frame", frame)
    cur.execute(f"INSERT INTO sqlml.{table} ({columns(table)}) "
                f"SELECT ?, ?, {columns(table, 2)} FROM __sqlml_frame", [name, version])
    cur.unregister("__sqlml_frame")


def refresh_recommender_items(cur) -> None:
    """Point the view sqlml.recommender_items at every recommender's active item factors, so
    that pure SQL (ml_similar_items) can reach a model's factors by the model's name; DuckDB
    macros cannot name a table from an argument. Run inside the transaction that changes which
    versions are active."""
    rows = cur.execute(
        "SELECT m.name, m.active_version FROM sqlml.models m JOIN sqlml.model_versions v "
        "ON v.name = m.name AND v.version = m.active_version "
        "WHERE v.problem_type = 'recommendation' ORDER BY m.name").fetchall()
    parts = [f"SELECT '{name}' AS model, item_id::VARCHAR AS item, "
             f"row_number() OVER (ORDER BY item_id) AS ordinal, factors::DOUBLE[] AS factors "
             f"FROM {generated.factor_table(name, version)}_items" for name, version in rows]
    cur.execute("CREATE OR REPLACE VIEW sqlml.recommender_items AS " + (
        " UNION ALL ".join(parts) if parts else RECOMMENDER_ITEMS_EMPTY))


# The view's shape while there is no recommender (also in sql/catalog.sql).
RECOMMENDER_ITEMS_EMPTY = ("SELECT NULL::VARCHAR AS model, NULL::VARCHAR AS item, "
                           "NULL::BIGINT AS ordinal, NULL::DOUBLE[] AS factors WHERE false")


def _set_active(cur, name: str, version: int, function_name: str) -> None:
    t = now()
    cur.execute(
        insert("models") + " ON CONFLICT (name) DO UPDATE SET "
        "active_version = excluded.active_version, function_name = excluded.function_name, "
        "updated_at = excluded.updated_at", [name, version, function_name, t, t])


def record_failure(cur, name: str, started: datetime, seconds: float, error: str) -> None:
    cur.execute(insert("training_runs", "?, NULL, 'failed', ?, ?, ?, ?"),
                [name, started, now(), seconds, error])


def set_active(cur, name: str, version: int, function_name: str, ddl: list[str]) -> None:
    cur.execute("BEGIN")
    try:
        for stmt in ddl:
            cur.execute(stmt)
        _set_active(cur, name, version, function_name)
        refresh_recommender_items(cur)
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise


def drop(cur, name: str, ddl: list[str]) -> int:
    cur.execute("BEGIN")
    try:
        n = len(versions(cur, name))
        for table in ("model_versions", "model_metrics", "confusion_matrices", "trials",
                      "threshold_metrics", *TRAINING_DEPTH_TABLES, "model_params", "models"):
            cur.execute(f"DELETE FROM sqlml.{table} WHERE name = ?", [name])
        for stmt in ddl:
            cur.execute(stmt)
        for (table,) in cur.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'sqlml' "
                "AND database_name = current_database() AND regexp_full_match(table_name, ?)",
                [f"rec_{name}_v[0-9]+_(users|items|seen|neighbors|liked)"]).fetchall():
            cur.execute(f'DROP TABLE sqlml."{table}"')
        # Materialised scores (sqlml/refresh_scores.py) describe a model that no longer exists.
        for (table,) in cur.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'sqlml_scores' "
                "AND database_name = current_database() AND table_name = ?", [name]).fetchall():
            cur.execute(f'DROP TABLE sqlml_scores."{table}"')
        refresh_recommender_items(cur)
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    return n


FORECAST_TABLES = ("forecast_series", "forecasts", "forecast_backtest", "forecast_diagnostics")


# -- training depth: tuning log, explanations, diagnosis, calibration -----------------------------
TRAINING_DEPTH_TABLES = ("training_log", "diagnosis", "calibration", "feature_importance",
                         "explain_baselines", "validation_predictions", "training_profiles",
                         *FORECAST_TABLES)


def next_version(cur, name: str) -> int:
    """The version number the running training will get (training holds the write lock)."""
    return cur.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM sqlml.model_versions WHERE name = ?",
        [name]).fetchall()[0][0]


def clear_training_log(cur, name: str, version: int) -> None:
    """Rows left by an earlier failed run that would have become this version."""
    cur.execute("DELETE FROM sqlml.training_log WHERE name = ? AND version = ?", [name, version])


LOG_COLUMNS = ("trial", "epoch", "model_type", "resource", "score", "running_average",
               "median_of_earlier", "event", "trials_planned", "best_so_far", "elapsed",
               "remaining")


def log_training(cur, name: str, version: int, row: dict) -> None:
    """One progress row, committed at once so other connections see it while training runs."""
    cur.execute(insert("training_log"),
                [name, version, *(row.get(c) for c in LOG_COLUMNS), now()])
