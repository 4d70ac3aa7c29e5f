"""Materialised scores: ``ml_refresh_scores(model, source, key := ...)`` writes a table of
predictions that any DuckDB client reads, for models plain SQL cannot express (KNN, TF-IDF
text, calibrated models) and, just as well, for every other model.

The table is ``sqlml_scores.<model>``: the key column(s), ``label`` (the predicted value for
regression), ``probability`` (binary models), ``probabilities`` (classification), the
``model_version`` that scored and ``refreshed_at`` (UTC). Each call replaces it whole, in one
statement, so a reader sees the previous scores or the new ones.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from sqlml.catalog import generated, sources
from sqlml.catalog import store as catalog
from sqlml.errors import PredictionInputError, SqlmlError, did_you_mean
from sqlml.score import serving

FN = "ml_refresh_scores"
SCHEMA = "sqlml_scores"
BATCH = 100_000
LABEL_ARROW = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "BOOLEAN": pa.bool_(),
               "DOUBLE": pa.float64()}
OUTPUT_COLUMNS = ("label", "probability", "probabilities", "model_version", "refreshed_at")
PROBABILITIES_ARROW = pa.struct([("labels", pa.list_(pa.string())),
                                 ("probabilities", pa.list_(pa.float64()))])


def table_name(model: str) -> str:
    return f"{SCHEMA}.{generated.quote(model)}"


def keys_of(key) -> list[str]:
    if isinstance(key, str) and key:
        return [key]
    if isinstance(key, list) and key and all(isinstance(k, str) and k for k in key):
        return list(dict.fromkeys(key))
    raise SqlmlError(
        f"{FN}: key := ... names the column(s) that identify a row of the source, so the scores "
        f"can be joined back to it; it is required and must be a column name or a list of "
        f"them, got {key!r}. Call e.g. {FN}('churn', 'customers', key := 'customer_id').")


def refresh(inst, cur, ref, source, key) -> int:
    if not isinstance(ref, str) or not ref:
        raise SqlmlError(f"{FN}: the first argument must be a model name such as "
                         f"'customer_churn', got {ref!r}.")
    name = ref.partition("@")[0]
    catalog.require_model(cur, name, FN)
    keys = keys_of(key)
    model = inst.models.get(ref)
    if model.problem_type == "recommendation":
        raise SqlmlError(
            f"{FN}: model {name!r} is a recommender; its scores per user come from "
            f"{model.function_name}_all(k := 10), or {model.function_name}_sql(user) in plain "
            f"SQL. Refresh scores of a classification or regression model.")
    if not isinstance(source, str) or not source.strip():
        raise SqlmlError(f"{FN}: the source must be a table name or a SELECT query, got "
                         f"{source!r}.")
    src = source.strip()
    query = sources.query_of(src)
    try:
        rel = sources.relation(cur, query, FN, "source")
        have = {c.lower(): c for c in rel.columns}
    except duckdb.Error as exc:
        raise SqlmlError(f"{FN}: the source query for model {name!r} failed: {exc}. Query: "
                         f"{query}") from None
    for k in keys:
        if k.lower() not in have:
            raise SqlmlError(
                f"{FN}: key column {k!r} is not in the source.{did_you_mean(k, rel.columns)} "
                f"Columns: {', '.join(rel.columns)}. Name the column(s) that identify a row.")
    at, missing = serving.find_features(model, rel.columns)
    if missing:
        raise PredictionInputError(
            f"{FN}: the source has no column {', '.join(map(repr, missing))}, which model "
            f"{name!r} needs (it was trained on "
            f"{', '.join(f.name for f in model.features)}). Select those columns in the source.")
    picked = [have[k.lower()] for k in keys]
    clash = [k for k in picked if k.lower() in OUTPUT_COLUMNS]
    if clash:
        raise SqlmlError(
            f"{FN}: key column {clash[0]!r} has the name of a column the scores table adds "
            f"({', '.join(OUTPUT_COLUMNS)}). Rename it in the source, e.g. "
            f"'SELECT {clash[0]} AS {clash[0]}_id, ... FROM ...'.")
    feats = [rel.columns[i] for i in at]
    cols = ", ".join(generated.quote(c) for c in dict.fromkeys(picked + feats))
    data = cur.sql(f"SELECT {cols} FROM ({query}) AS s").to_arrow_table()
    target_type = catalog.version_row(cur, name, model.version)["target_type"]
    out = _scores(model, data, picked, feats, target_type)
    view = "__sqlml_refresh_scores"
    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    cur.register(view, out)
    try:
        cur.execute(f"CREATE OR REPLACE TABLE {table_name(name)} AS SELECT *, "
                    f"{int(model.version)}::INTEGER AS model_version, "
                    f"?::TIMESTAMP AS refreshed_at FROM {view}", [catalog.now()])
    finally:
        cur.unregister(view)
    return data.num_rows


def _scores(model, data: pa.Table, keys: list[str], feats: list[str],
            target_type: str) -> pa.Table:
    """Scored in batches through the model's own serving path (StoredModel.scores), so the
    table holds exactly what the generated functions return."""
    fn = FN
    parts: dict[str, list[np.ndarray]] = {"label": [], "probability": [], "probabilities": []}
    for start in range(0, data.num_rows, BATCH):
        chunk = data.slice(start, BATCH)
        scores = model.scores([chunk.column(c) for c in feats], fn)
        labels = model.labels_from_scores(scores)
        parts["label"].append(labels)
        if model.is_classifier:
            parts["probabilities"].append(np.asarray(scores, dtype=np.float64))
            if model.problem_type == "binary_classification":
                pos = model.classes.index(model.positive_class)
                parts["probability"].append(scores[:, pos])
    ltype = generated.label_type(model.problem_type, target_type)
    labels = np.concatenate(parts["label"]) if parts["label"] else np.array([])
    if ltype == "VARCHAR":
        labels = [None if v is None else str(v) for v in labels]
    elif ltype != "DOUBLE":
        labels = labels.tolist()
    arrays = {k: data.column(k) for k in keys}
    arrays["label"] = pa.array(labels, type=LABEL_ARROW[ltype])
    if model.problem_type == "binary_classification":
        arrays["probability"] = pa.array(
            np.concatenate(parts["probability"]) if parts["probability"] else [],
            type=pa.float64())
    if model.is_classifier:
        k = len(model.classes)
        probs = (np.concatenate(parts["probabilities"]) if parts["probabilities"]
                 else np.empty((0, k)))
        n = len(probs)
        offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
        names = np.asarray([str(c) for c in model.classes], dtype=object)
        arrays["probabilities"] = pa.StructArray.from_arrays(
            [pa.ListArray.from_arrays(offsets, pa.array(np.tile(names, n), type=pa.string())),
             pa.ListArray.from_arrays(offsets, pa.array(probs.ravel(), type=pa.float64()))],
            fields=list(PROBABILITIES_ARROW))
    return pa.table(arrays)
