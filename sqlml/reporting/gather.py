"""What the model report shows, read from the catalog (and, for a recommender, its stored
factors): plain records and arrays, no HTML. sqlml/reporting/page.py draws them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sqlml.catalog import store as catalog

FN = "ml_report"
# Users whose top-k the coverage and popularity-bias figures are computed over (a seeded sample
# of a larger user base); the share of the most popular items counted as "the head".
COVERAGE_USERS = 2000
HEAD_SHARE = 0.10


@dataclass
class Facts:
    """Everything the report draws for one model version."""
    row: dict                                   # the model_versions row (no artifact)
    metrics: list[tuple]                        # ml_model_metrics: (metric, class_label, value)
    confusion: list[tuple] = field(default_factory=list)   # (actual, predicted, n)
    predictions: Any = None                     # (actual, predicted) arrays, or None
    stored_predictions: bool = False            # the catalog has the table at all
    thresholds: list[tuple] = field(default_factory=list)  # threshold_metrics rows
    calibration: list[tuple] = field(default_factory=list)
    importance: list[tuple] = field(default_factory=list)  # (feature, importance, std)
    diagnosis: list[tuple] = field(default_factory=list)
    trials: list[tuple] = field(default_factory=list)      # (trial, model_type, score, seconds,
    #                                                         status)
    recommender: dict | None = None
    drift: tuple[str, list[dict]] | None = None            # (query, sqlml.drift rows)
    forecast: dict | None = None                           # a forecast model's tables

    @property
    def parameters(self) -> dict:
        return json.loads(self.row["parameters"]) or {}

    @property
    def costs(self) -> dict:
        return self.parameters.get("costs") or {}


def _rows(cur, sql: str, params: list) -> list[tuple]:
    return cur.execute(sql, params).fetchall()


def _has_table(cur, table: str) -> bool:
    return bool(_rows(cur, "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'sqlml' "
                           "AND table_name = ? AND database_name = current_database()",
                      [table])[0][0])


def gather(cur, inst, name: str) -> Facts:
    """The active version of model ``name``; ModelNotFoundError names the models there are."""
    if not isinstance(name, str) or not name:
        from sqlml.errors import ModelNotFoundError

        raise ModelNotFoundError(f"{FN}: the model name must be text such as 'customer_churn', "
                                 f"got {name!r}. List the models with FROM ml_models().")
    model = catalog.require_model(cur, name, FN)
    version = model["active_version"]
    row = catalog.version_row(cur, name, version)
    key = [name, version]
    facts = Facts(row, _rows(cur, "SELECT metric, class_label, value FROM ml_model_metrics(?)",
                             [name]))
    if row["problem_type"] == "recommendation":
        facts.recommender = _recommender(cur, inst, name, row)
        return facts
    facts.trials = _rows(cur, "SELECT trial, model_type, score, seconds, status FROM "
                              "sqlml.trials WHERE name = ? AND version = ? ORDER BY trial", key)
    if row["problem_type"] == "forecast":
        facts.forecast = _forecast(cur, key)
        return facts
    facts.confusion = _rows(cur, "SELECT actual, predicted, n FROM sqlml.confusion_matrices "
                                 "WHERE name = ? AND version = ? ORDER BY actual, predicted", key)
    facts.importance = _rows(
        cur, "SELECT feature, importance, importance_std FROM sqlml.feature_importance WHERE "
             "name = ? AND version = ? AND kind = 'permutation' ORDER BY rank", key)
    facts.diagnosis = _rows(
        cur, "SELECT step, kind, train_rows, training_score, validation_score, verdict, remedy "
             "FROM sqlml.diagnosis WHERE name = ? AND version = ? ORDER BY step", key)
    facts.calibration = _rows(
        cur, "SELECT bin, lower_bound, upper_bound, mean_predicted, observed_rate, n, "
             "brier_score, method FROM sqlml.calibration WHERE name = ? AND version = ? "
             "ORDER BY bin", key)
    facts.thresholds = _rows(
        cur, "SELECT threshold, tp, fp, tn, fn, cost FROM sqlml.threshold_metrics "
             "WHERE name = ? AND version = ? ORDER BY threshold", key)
    facts.stored_predictions = _has_table(cur, "validation_predictions")
    if facts.stored_predictions:
        got = _rows(cur, 'SELECT actual, predicted FROM sqlml.validation_predictions '
                         'WHERE name = ? AND version = ? ORDER BY "row"', key)
        if got:
            arr = np.asarray(got, dtype=float)
            facts.predictions = (arr[:, 0], arr[:, 1])
    return facts


FAN_LARGEST = 2     # the fan chart's series: the largest (mean |actual| in the backtest) ...
FAN_WORST = 1       # ... and the worst by scaled pinball loss


def _forecast(cur, key: list) -> dict:
    """Per series (method, scale, metrics), the backtest rows, the ml_diagnose flags and the
    stored forecasts of the series the fan chart shows."""
    where = "WHERE name = ? AND version = ?"
    series = cur.execute(
        "SELECT series_id, array_to_string(series, ' / ') AS label, method, points, scale, "
        f"coverage, scaled_pinball FROM sqlml.forecast_series {where} ORDER BY series_id",
        key).df()
    backtest = cur.execute(
        "SELECT series_id, \"window\", step, period, actual, quantile, forecast FROM "
        f"sqlml.forecast_backtest {where} ORDER BY series_id, \"window\", step, quantile", key).df()
    flags = _rows(cur, "SELECT series_id, flag, detail FROM sqlml.forecast_diagnostics "
                       f"{where} ORDER BY flag, series_id", key)
    size = backtest.groupby("series_id")["actual"].apply(lambda a: a.abs().mean())
    chosen = list(size.sort_values(ascending=False, kind="stable").index[:FAN_LARGEST])
    worst = series.sort_values("scaled_pinball", ascending=False, kind="stable")
    chosen += [s for s in worst["series_id"] if s not in chosen][:FAN_WORST]
    forecasts = cur.execute(
        f"SELECT series_id, step, period, \"values\" FROM sqlml.forecasts {where} "
        "AND list_contains(?, series_id) ORDER BY series_id, step", [*key, chosen]).df()
    return {"series": series, "backtest": backtest, "flags": flags, "chosen": chosen,
            "forecasts": forecasts}


def drift(cur, name: str, query: str) -> tuple[str, list[dict]]:
    """The rows of ``sqlml.drift(cur, name, query)`` (its prediction row scored by the model's
    function); DriftError, as ml_drift raises it, for a query the check refuses."""
    import duckdb

    from sqlml import api
    from sqlml.connection import serve_from_python
    from sqlml.errors import DriftError, describe

    if not isinstance(query, str) or not query.strip():
        raise DriftError(f"{FN}: drift must be a query such as 'SELECT * FROM "
                         f"customers_this_month', got {query!r}. Pass the rows to compare with "
                         f"model {name!r}'s training data.")
    serve_from_python(cur)   # a cursor does not see the connection's TEMP dispatch macros
    try:
        return query, api.drift(cur, name, query)
    except duckdb.Error as exc:
        out = describe(exc)
        if out.cls_name == "DriftError":    # ml_drift's own check: its message as it is
            raise DriftError(out.message) from None
        raise DriftError(f"{FN}: the drift query {query!r} of model {name!r} failed: "
                         f"{out.message.splitlines()[0].rstrip('!.')}. Check that it runs on "
                         f"its own (FROM ml_drift({name!r}, <query>) gives the same error).") \
            from None


def _recommender(cur, inst, name: str, row: dict) -> dict:
    """Rating distribution, coverage and popularity bias of the top-k, and an example user."""
    stored = inst.models.get(f"{name}@{row['version']}")
    model = stored.model
    settings = (json.loads(row["parameters"]) or {}).get("settings", {})
    k = int(settings.get("k") or 10)
    n_users, n_items = len(model.user_ids), len(model.item_ids)
    rng = np.random.default_rng(settings.get("random_state", 42))
    users = np.arange(n_users) if n_users <= COVERAGE_USERS else np.sort(
        rng.choice(n_users, size=COVERAGE_USERS, replace=False))
    # A model trained on Spark keeps its seen pairs in SQL: the sampled users' are read here,
    # and the rating distribution is theirs.
    model = stored.serving(cur, users) if model.seen_in_table else model
    top = model.recommend_all(k, True, reasons=False, users=users)
    items = model._codes(np.asarray(top["item"]), "item")
    order = np.argsort(-model.popularity, kind="stable")      # most popular first
    decile = np.empty(n_items, dtype=int)
    decile[order] = np.minimum((np.arange(n_items) * 10) // max(n_items, 1), 9)
    head = max(1, int(np.ceil(HEAD_SHARE * n_items)))
    in_head = np.zeros(n_items, dtype=bool)
    in_head[order[:head]] = True
    per_user = np.diff(model.seen_indptr)
    example = int(users[np.argmax(per_user[users] >= min(5, per_user.max()))])
    example_id = model._id(example, "user")
    return {
        "k": k, "feedback": model.feedback, "users": n_users, "items": n_items,
        "pairs": int(model.info.get("pairs", len(model.seen_items))),
        "values": np.asarray(model.seen_values, dtype=float),
        "sampled_users": len(users), "slots": len(items),
        "coverage": len(np.unique(items)) / max(n_items, 1),
        "head_items": head, "head_share": float(np.mean(in_head[items])) if len(items) else 0.0,
        "by_decile": np.bincount(decile[items], minlength=10),
        "example_user": example_id, "example_seen": int(per_user[example]),
        "example": model.recommend(example_id, k, True),
    }
