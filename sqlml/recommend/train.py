"""``ml_create_model(..., problem_type := 'recommendation')``: from (user, item, rating) rows to a
stored recommender, its factor tables and its generated functions.

Factors are stored twice on purpose: as the artifact (numpy arrays, loaded without pickle) that
the Python functions serve, and as plain DuckDB tables that the generated ``_sql`` macros read,
so that any DuckDB client, BI tools included, can recommend without Python.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from sqlml import spec
from sqlml.catalog import artifacts, generated, sources
from sqlml.catalog import store as catalog
from sqlml.errors import ArtifactError, TrainingError, did_you_mean
from sqlml.recommend import auto
from sqlml.recommend.evaluate import evaluate_explicit, evaluate_ranking, leave_last_out
from sqlml.recommend.fit import fit_recommender
from sqlml.recommend.model import RecommenderModel
from sqlml.train import supervised as training

FN = "ml_create_model"
FORMAT = "sqlml.recommender/1+npz"
SETTINGS = spec.defaults(spec.RECOMMENDATION)   # declared, with their rules, in sqlml.spec


def settings_of(raw: dict) -> dict:
    s = spec.check_settings(raw, spec.RECOMMENDATION)
    for key in ("user_col", "item_col"):
        if not isinstance(s[key], str) or not s[key]:
            raise TrainingError(
                f"{FN}: a recommendation model needs settings {key} naming the column of "
                f"{key[:4]} ids, got {s[key]!r}. Pass e.g. settings := {{user_col: 'user_id', "
                f"item_col: 'movie_id', rating_col: 'rating'}}.")
    if s["weighting"] is not None and s["feedback"] == "explicit":
        raise TrainingError(
            f"{FN}: settings weighting {s['weighting']!r} applies to implicit ALS, but feedback "
            f"is 'explicit'. Leave weighting out, or set feedback: 'implicit'.")
    if s["algorithm"] == "ease" and s["feedback"] == "explicit":
        raise TrainingError(
            f"{FN}: settings algorithm 'ease' ranks items from implicit feedback, but feedback is "
            f"'explicit'. Set feedback: 'implicit' (with implicit_threshold for star ratings), "
            f"or leave algorithm out.")
    return s


def check_columns(rel, s: dict, name: str) -> dict[str, str]:
    """The training data's column types, once the columns the settings name are found and the
    rating column is numeric."""
    types = {c: str(t) for c, t in zip(rel.columns, rel.types, strict=True)}
    wanted = [s["user_col"], s["item_col"], s["rating_col"], s["timestamp_col"]]
    for col in [c for c in wanted if c is not None]:
        if col not in types:
            raise TrainingError(
                f"{FN}: column {col!r} named in settings is not in the training data."
                f"{did_you_mean(col, types)} Columns: {', '.join(types)}.")
    if s["rating_col"] is not None:
        t = types[s["rating_col"]].upper()
        if not (t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE",
                      "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "BOOLEAN")
                or t.startswith("DECIMAL")):
            raise TrainingError(
                f"{FN}: rating column {s['rating_col']!r} must be numeric, got {t}. Cast it in "
                f"the query, e.g. {s['rating_col']}::DOUBLE, or map labels to numbers.")
    return types


def load(cur, query: str, s: dict, name: str):
    try:
        rel = sources.relation(cur, query, FN, "training data", TrainingError)
        types = check_columns(rel, s, name)
        table = rel.to_arrow_table()
    except duckdb.Error as exc:
        raise TrainingError(f"{FN}: the training query for model {name!r} failed: {exc}. "
                            f"Query: {query}") from None
    if table.num_rows == 0:
        raise TrainingError(f"{FN}: the training query for model {name!r} returned no rows. "
                            f"Query: {query}")
    for col, what in ((s["user_col"], "user id"), (s["item_col"], "item id"),
                      (s["rating_col"], "rating")):
        if col is not None and table.column(col).null_count:
            raise TrainingError(
                f"{FN}: {what} column {col!r} has {table.column(col).null_count} NULL value(s); "
                f"every interaction needs a {what}. Filter them out (WHERE {col} IS NOT NULL) "
                f"or fill them.")
    return table, types


def _fit(s, users, items, ratings, ts, **chosen):
    """A fit with the settings, where ``chosen`` (an AUTO candidate) overrides them."""
    args = {"factors": s["factors"], "regularization": s["regularization"],
            "iterations": s["iterations"], "alpha": s["alpha"]} | chosen
    return fit_recommender(
        users, items, ratings, ts, feedback=s["feedback"],
        implicit_threshold=s["implicit_threshold"], recency_half_life=s["recency_half_life"],
        random_state=s["random_state"], **args)


def _column(table: pa.Table, col):
    if col is None:
        return None
    arr = table.column(col)
    if pa.types.is_decimal(arr.type) or pa.types.is_boolean(arr.type):
        arr = arr.cast(pa.float64())
    return arr.to_pandas().to_numpy()


@dataclass(frozen=True)
class Interactions:
    """The training rows as arrays: user and item ids, ratings and timestamps (or None)."""
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None
    ts: np.ndarray | None

    def where(self, rows: np.ndarray) -> Interactions:
        return Interactions(self.users[rows], self.items[rows],
                            None if self.ratings is None else self.ratings[rows],
                            None if self.ts is None else self.ts[rows])


def train(cur, name: str, function: str, query: str, raw_settings: dict) -> dict:
    started = time.perf_counter()
    s = settings_of(raw_settings)
    if s["engine"] == "spark":   # Spark MLlib's ALS; the same stored form (docs/spark.md)
        from sqlml.engines.spark import als

        return als.train(cur, name, function, query, s)
    table, types = load(cur, query, s, name)
    data = Interactions(_column(table, s["user_col"]), _column(table, s["item_col"]),
                        _column(table, s["rating_col"]), _column(table, s["timestamp_col"]))
    if s["feedback"] == "explicit" and data.ratings is None:
        raise TrainingError(
            f"{FN}: an explicit recommender predicts ratings and needs settings rating_col, got "
            f"none. Name the rating column, or use feedback: 'implicit' for interactions.")
    metrics, held, chosen, trials, notes = _validation_metrics(s, data)
    model = _fit(s, data.users, data.items, data.ratings, data.ts, **chosen)
    record = _record(name, function, query, s, types, model, metrics, data, held, started)
    metric_rows = [(k, None, float(v)) for k, v in metrics.items()]
    user_type, item_type = types[s["user_col"]], types[s["item_col"]]

    def write_factors(cur, version):
        for stmt in factor_tables(cur, name, version, model, user_type, item_type):
            cur.execute(stmt)
        return generated.recommender_statements(
            name, function, version, s["user_col"], s["item_col"], user_type, item_type,
            model.global_mean, model.feedback, model.algorithm)

    ddl = []
    previous = catalog.model_row(cur, name)
    if previous and previous["function_name"] != function:
        ddl = generated.drop_statements(generated.all_names(previous["function_name"]))
    version = catalog.publish(cur, record, metric_rows, [], trials, ddl, extra=write_factors)
    if model.info["duplicates"]:
        notes.insert(0, f"{model.info['duplicates']} duplicate (user, item) rows aggregated "
                        f"({'mean rating' if model.feedback == 'explicit' else 'summed'})")
    return {"name": name, "version": version, "problem_type": "recommendation",
            "model_type": record["model_type"], "function": function,
            "objective": record["objective"],
            "validation_score": metrics["rmse"] if s["feedback"] == "explicit"
            else metrics["ndcg_at_k"], "threshold": None, "training_rows": len(data.users),
            "seconds": round(time.perf_counter() - started, 3),
            "notes": "; ".join(notes) or None}


def _validation_metrics(s: dict, data: Interactions):
    """Ranking metrics on each user's held-out latest interaction and, for explicit feedback,
    rating errors on a random test split; which rows were held out; and AUTO's choice (the fit
    arguments), its trial rows and notes (sqlml/recommend/auto.py)."""
    # Ranking quality on each user's latest interaction (by timestamp where there is one).
    held = leave_last_out(data.users, data.items, data.ts, random_state=s["random_state"])
    part_data = data.where(~held)
    cands, notes = auto.candidates(s, len(np.unique(data.items)))

    def fit(**cand):
        return _fit(s, part_data.users, part_data.items, part_data.ratings, part_data.ts, **cand)

    chosen, trials, part = auto.search(cands, fit, data.users[held], data.items[held], s["k"],
                                       s["max_runtime"] * 0.8)
    if len(cands) > 1:
        notes.append(auto.chosen_note(chosen, trials))
    metrics = {k.replace(f"@{s['k']}", "_at_k"): v for k, v in evaluate_ranking(
        part, data.users[held], data.items[held], s["k"]).items() if k != "n"}
    metrics["k"] = s["k"]
    if s["feedback"] == "explicit":
        assert data.ratings is not None     # train() refuses explicit feedback without ratings
        rng = np.random.default_rng(s["random_state"])
        test = rng.random(len(data.users)) < s["test_size"]
        fit_data = data.where(~test)
        rated = _fit(s, fit_data.users, fit_data.items, fit_data.ratings, fit_data.ts)
        err = evaluate_explicit(rated, data.users[test], data.items[test], data.ratings[test])
        metrics.update(rmse=err["rmse"], mae=err["mae"])
        trials[0].update(objective="rmse", score=err["rmse"], fold_scores=[err["rmse"]])
    return metrics, held, chosen, trials, notes


def _record(name: str, function: str, query: str, s: dict, types: dict, model: RecommenderModel,
            metrics: dict, data: Interactions, held: np.ndarray, started: float) -> dict:
    """The model's catalog row, its artifact included."""
    return record_of(name, function, query, s, types, model, metrics,
                     training_rows=len(data.users), validation_rows=int(held.sum()),
                     fingerprint=training.fingerprint(
                         pd.DataFrame({"user": data.users, "item": data.items}).astype(str),
                         np.zeros(len(data.users)) if data.ratings is None else data.ratings),
                     started=started)


def record_of(name: str, function: str, query: str, s: dict, types: dict,
              model: RecommenderModel, metrics: dict, *, training_rows: int,
              validation_rows: int, fingerprint: str, started: float,
              engine: dict | None = None) -> dict:
    """A recommender's catalog row, its artifact included; ``engine``: where it was fitted
    (engine 'spark': Spark's version and master), kept in its parameters."""
    blob = dumps(model)
    target = s["rating_col"] or "(interactions)"
    features = [{"name": s["user_col"], "type": types[s["user_col"]], "kind": "user",
                 "preprocessor": "id"},
                {"name": s["item_col"], "type": types[s["item_col"]], "kind": "item",
                 "preprocessor": "id"}]
    parameters = {"settings": s, "model": model.params, "data": model.info,
                  "global_mean": model.global_mean}
    if engine is not None:
        parameters["engine"] = engine
    return {
        "name": name, "problem_type": "recommendation",
        "model_type": "ease" if model.algorithm == "ease" else "matrix_factorization",
        "target": target, "target_type": types.get(s["rating_col"], "NULL"),
        "features": features, "excluded": [], "classes": None, "positive_class": None,
        "function_name": function, "threshold": None, "threshold_reason": None,
        "objective": "rmse" if s["feedback"] == "explicit" else "ndcg_at_k",
        "metrics": metrics, "parameters": parameters,
        "training_rows": training_rows, "validation_rows": validation_rows,
        "training_query": query, "data_fingerprint": fingerprint,
        "library_versions": training.library_versions(),
        "created_at": catalog.now(), "training_seconds": time.perf_counter() - started,
        "artifact_format": FORMAT, "artifact_sha256": artifacts.sha256(blob), "artifact": blob,
    }


def factor_tables(cur, name, version, model: RecommenderModel, user_type, item_type,
                  seen_query: str | None = None):
    """Register the factor arrays and return the statements that copy them into the catalog;
    ``seen_query`` (user_id, item_id, value rows), when given, fills the seen table in SQL
    instead of from the model's arrays (engine 'spark': the pairs stay in DuckDB, and the
    table's value column is what serving reads them back with)."""
    k = model.user_factors.shape[1]
    base = generated.factor_table(name, version)
    users = pa.table({"user_id": pa.array(model.user_ids.tolist()), "bias": model.user_bias,
                      "cold": model.cold_users, "factors": pa.FixedSizeListArray.from_arrays(
                          pa.array(model.user_factors.ravel()), k)})
    items = pa.table({"item_id": pa.array(model.item_ids.tolist()),
                      "bias": model.item_bias, "popularity": model.popularity,
                      "factors": pa.FixedSizeListArray.from_arrays(
                          pa.array(model.item_factors.ravel()), k)})
    cur.register("__sqlml_users", users)
    cur.register("__sqlml_items", items)
    seen_from = f"({seen_query})" if seen_query else "__sqlml_seen"
    if seen_query is None:
        owner = np.repeat(np.arange(len(model.user_ids)), np.diff(model.seen_indptr))
        cur.register("__sqlml_seen", pa.table({
            "user_id": pa.array(model.user_ids[owner].tolist()),
            "item_id": pa.array(model.item_ids[model.seen_items].tolist())}))
    return [*_ease_tables(cur, base, model, user_type, item_type),
        f"CREATE TABLE {base}_users AS SELECT user_id::{user_type} AS user_id, bias, cold, "
        f"factors::DOUBLE[{k}] AS factors FROM __sqlml_users",
        f"CREATE TABLE {base}_items AS SELECT item_id::{item_type} AS item_id, bias, "
        f"popularity, factors::DOUBLE[{k}] AS factors FROM __sqlml_items",
        f"CREATE TABLE {base}_seen AS SELECT user_id::{user_type} AS user_id, "
        f"item_id::{item_type} AS item_id{', value' if seen_query else ''} FROM {seen_from}",
    ]


def _ease_tables(cur, base: str, model: RecommenderModel, user_type: str,
                 item_type: str) -> list[str]:
    """EASE's item-item weights (item_id, neighbor_id, weight) and each user's liked items, which
    its pure-SQL functions join; nothing for a factor model."""
    nb = model.neighbors
    if nb is None:
        return []
    source = np.repeat(np.arange(nb.shape[0]), np.diff(nb.indptr))
    liked = model._liked.tocoo()
    cur.register("__sqlml_neighbors", pa.table({
        "item_id": pa.array(model.item_ids[source].tolist()),
        "neighbor_id": pa.array(model.item_ids[nb.indices].tolist()), "weight": nb.data}))
    cur.register("__sqlml_liked", pa.table({
        "user_id": pa.array(model.user_ids[liked.row].tolist()),
        "item_id": pa.array(model.item_ids[liked.col].tolist())}))
    return [f"CREATE TABLE {base}_neighbors AS SELECT item_id::{item_type} AS item_id, "
            f"neighbor_id::{item_type} AS neighbor_id, weight::DOUBLE AS weight "
            f"FROM __sqlml_neighbors",
            f"CREATE TABLE {base}_liked AS SELECT user_id::{user_type} AS user_id, "
            f"item_id::{item_type} AS item_id FROM __sqlml_liked"]


def dumps(model: RecommenderModel) -> bytes:
    buf = io.BytesIO()
    # Any, not ndarray: mypy matches a **dict of arrays against savez's allow_pickle: bool.
    arrays: dict[str, Any] = {k: (v.astype(str) if v.dtype == object else v)
                              for k, v in model.to_arrays().items()}
    np.savez(buf, __metadata__=np.array(json.dumps(model.to_metadata())), **arrays)
    return buf.getvalue()


def loads(blob: bytes, what: str) -> RecommenderModel:
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "__metadata__"}
            metadata = json.loads(str(z["__metadata__"]))
    except (ValueError, OSError, KeyError, json.JSONDecodeError) as exc:
        raise ArtifactError(
            f"{what}: the stored recommender is not a numpy archive sqlml wrote ({exc}). Retrain "
            f"the model with sqlml, or restore the file from a trusted copy.") from None
    return RecommenderModel.from_arrays(arrays, metadata)


def macros_for_version(name: str, row: dict) -> list[str]:
    """The generated macros of a stored recommender version, for a rollback."""
    params = json.loads(row["parameters"])
    s = params["settings"]
    types = {f["name"]: f["type"] for f in json.loads(row["features"])}
    return generated.recommender_statements(
        name, row["function_name"], row["version"], s["user_col"], s["item_col"],
        types[s["user_col"]], types[s["item_col"]], params["global_mean"], s["feedback"],
        params["model"].get("algorithm", "als"))
