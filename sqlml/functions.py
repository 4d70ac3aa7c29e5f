"""The one table of Python UDFs sqlml registers, and the function that registers them.

Python UDFs are private and positional (``__sqlml_*``) where users meet them through the SQL
macros in ``sql/macros.sql`` and the generated per-model macros, which own the named arguments.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sqlml import spec
from sqlml.catalog import generated, sources
from sqlml.catalog import store as catalog
from sqlml.compile import model as compile_sql
from sqlml.context import Instance
from sqlml.errors import PredictionInputError, TrainingError
from sqlml.recommend import train as recommend_train
from sqlml.score import explain, refresh_scores
from sqlml.score.serving import ModelCache, StoredModel, StoredRecommender, feature_columns
from sqlml.train import supervised as training

SUMMARY_TYPE = ("STRUCT(name VARCHAR, version INTEGER, problem_type VARCHAR, model_type VARCHAR,"
                " function VARCHAR, objective VARCHAR, validation_score DOUBLE, "
                "threshold DOUBLE, training_rows BIGINT, seconds DOUBLE, notes VARCHAR)")
_SUMMARY_ARROW = pa.struct([
    ("name", pa.string()), ("version", pa.int32()), ("problem_type", pa.string()),
    ("model_type", pa.string()), ("function", pa.string()), ("objective", pa.string()),
    ("validation_score", pa.float64()), ("threshold", pa.float64()),
    ("training_rows", pa.int64()), ("seconds", pa.float64()), ("notes", pa.string())])
_PROBABILITIES_ARROW = pa.struct([("labels", pa.list_(pa.string())),
                                  ("probabilities", pa.list_(pa.float64()))])


@dataclass(frozen=True)
class Udf:
    name: str
    make: Callable[[Instance], Callable]   # builds the implementation for one instance
    parameters: list | None                # None: any number of arguments of any type
    return_type: str
    side_effects: bool = False


# -- scoring --------------------------------------------------------------------------------------
def _positional(args) -> list:
    """ml_predict's arguments: the macro packs the features given after the model name into
    one STRUCT (fields __sqlml_arg1, ...; NULL for none), since macros are not variadic."""
    packed = args[1]
    if pa.types.is_null(packed.type):
        return [args[0]]
    if isinstance(packed, pa.ChunkedArray):
        packed = packed.combine_chunks()
    return [args[0], *(packed.field(i) for i in range(packed.type.num_fields))]


def _model_for(inst: Instance, args, caller: str | None,
               suffix: str = "") -> tuple[StoredModel, str, list]:
    if caller:   # ml_predict and ml_predict_probability
        args = _positional(args)
    refs = args[0]
    ref = refs[0].as_py()
    if not isinstance(ref, str):
        raise PredictionInputError(
            f"{caller or 'ml_predict'}: the first argument must be a model name such as "
            f"'customer_churn' or 'customer_churn@2', got {ref!r}.")
    # Generated functions pass the name as a literal; only ml_predict(...) can vary it per row.
    if caller and len(refs) > 1 and not pc.all(pc.equal(refs, ref)).as_py():
        raise PredictionInputError(
            f"{caller or 'ml_predict'}: the model name must be the same on every row, got "
            f"{ref!r} and others. Score each model in its own call.")
    model = inst.models.get(ref)
    if isinstance(model, StoredRecommender):
        raise PredictionInputError(
            f"{caller or 'ml_predict'}: model {model.name!r} is a recommender, which ranks items "
            f"for a user rather than scoring rows. Use FROM {model.function_name}(user_id, "
            f"k := 10).")
    fn = caller or model.function_name + suffix   # the generated function called
    return model, fn, feature_columns(model, list(args[1:]), fn)


def _labels(arrow_type, caller=None):
    def make(inst: Instance):
        def udf(*args):
            model, fn, cols = _model_for(inst, args, caller)
            labels = model.labels_from_scores(model.scores(cols, fn))
            if arrow_type == pa.string():
                labels = [None if v is None else str(v) for v in labels]
            return pa.array(labels, type=arrow_type)
        return udf
    return make


def _probability(caller=None):
    def make(inst: Instance):
        def udf(*args):
            model, fn, cols = _model_for(inst, args, caller)
            if model.problem_type != "binary_classification":
                raise PredictionInputError(
                    f"{fn}: P(positive) exists only for binary models; model {model.name!r} is "
                    f"{model.problem_type}. Use {model.function_name}_probabilities(...) for "
                    f"every class, or {model.function_name}(...) for the value.")
            pos = model.classes.index(model.positive_class)
            return pa.array(model.scores(cols, fn)[:, pos], type=pa.float64())
        return udf
    return make


def _probabilities(inst: Instance):
    def udf(*args):
        model, fn, cols = _model_for(inst, args, None)
        scores = np.ascontiguousarray(model.scores(cols, fn), dtype=np.float64)
        n, k = scores.shape
        offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
        labels = pa.array(np.tile(np.asarray([str(c) for c in model.classes], dtype=object), n),
                          type=pa.string())
        return pa.StructArray.from_arrays(
            [pa.ListArray.from_arrays(offsets, labels),
             pa.ListArray.from_arrays(offsets, pa.array(scores.ravel()))],
            fields=list(_PROBABILITIES_ARROW))
    return udf


def _explain(inst: Instance):
    def udf(*args):
        model, fn, cols = _model_for(inst, args, None, "_explain")
        return explain.contributions(inst, model, cols, fn)
    return udf


# -- training and management ----------------------------------------------------------------------
def _create_model(inst: Instance):
    def udf(*args):
        rows = list(zip(*(a.to_pylist() for a in args), strict=True))
        out = []
        for row in rows:
            with inst.write_lock:
                cur = inst.cursor()
                started, t0 = catalog.now(), time.perf_counter()
                try:
                    summary = _train(cur, list(row))
                except (Exception, KeyboardInterrupt) as exc:   # Ctrl-C too: recorded
                    _record_failure(cur, row[0], started, time.perf_counter() - t0, exc)
                    raise
                finally:
                    inst.models.forget(str(row[0]))
                    cur.close()
            out.append(summary)
        return pa.array(out, type=_SUMMARY_ARROW)
    return udf


def _train(cur, args: list) -> dict:
    given = spec.bind(args)
    kind = str(given["problem_type"] or "").lower()
    if kind not in ("recommendation", "forecast"):
        return training.train(cur, args)
    name = training.check_identifier("model name", given["name"])
    prefix = "recommend" if kind == "recommendation" else "forecast"
    function = training.check_identifier("function name", given["function"] or f"{prefix}_{name}")
    req = training.Request(name=name, source=given["source"], target=given["target"] or "",
                           function=function)
    training.clash_check(cur, req)
    query = sources.query_of(given["source"] or "")
    settings = training.as_dict(given["settings"], "settings")
    if kind == "recommendation":
        return recommend_train.train(cur, name, function, query, settings)
    for key in ("model_type", "objective"):
        if str(given[key] or "auto").lower() != "auto":
            raise TrainingError(
                f"ml_create_model: {key} {given[key]!r} does not apply to a forecast model, "
                f"which AUTO chooses by scaled pinball loss over its backtest. Leave {key} out, "
                f"and name a method with settings := {{method: 'ets'}} (naive, seasonal_naive, "
                f"drift, ets, arima, theta, gbm).")
    if not isinstance(given["target"], str) or not given["target"]:
        raise TrainingError(
            f"ml_create_model: a forecast model needs target naming the numeric column to "
            f"forecast, got {given['target']!r}. Pass e.g. target := 'sales'.")
    # Imported here: the engine's methods load their libraries with the first forecast.
    from sqlml.forecast import train as forecast_train

    return forecast_train.train(cur, name, function, query, given["target"], settings)


def _record_failure(cur, name, started, seconds, exc) -> None:
    if isinstance(name, str) and generated.IDENTIFIER.match(name):
        try:
            catalog.record_failure(cur, name, started, seconds, f"{type(exc).__name__}: {exc}")
        except duckdb.Error:
            pass  # the history row is best effort; the user still gets the real error


def _drop_model(inst: Instance):
    def udf(names):
        out = []
        for name in names.to_pylist():
            with inst.write_lock:
                cur = inst.cursor()
                try:
                    model = catalog.require_model(cur, name, "ml_drop_model")
                    fns = generated.all_names(model["function_name"])
                    n = catalog.drop(cur, name, generated.drop_statements(fns))
                finally:
                    inst.models.forget(name)
                    cur.close()
            out.append(f"dropped model {name!r}: {n} version(s) and its functions")
        return pa.array(out, type=pa.string())
    return udf


def version_functions(cur, name: str, row: dict) -> list[str]:
    """The DDL of a stored version's generated functions, as its training made them: for a
    rollback, and for a file whose functions predate the current dispatch (migrations)."""
    if row["problem_type"] == "recommendation":
        return recommend_train.macros_for_version(name, row)
    if row["problem_type"] == "forecast":
        from sqlml.forecast import train as forecast_train

        return forecast_train.macros_for_version(name, row)
    ddl = compile_sql.for_rollback(cur, name, row)
    info = (json.loads(row["parameters"]) or {}).get("compiled_sql") or {}
    return ddl + generated.create_statements(
        name, row["function_name"], [f["name"] for f in json.loads(row["features"])],
        row["problem_type"], row["target_type"],
        compiled=compile_sql.info_functions(info, row["function_name"], row["problem_type"]),
        python_first=info.get("python_first", True),
        reason=info.get("summary", "not compiled to SQL: trained before sqlml compiled models"),
        version=row["version"])


def regenerate_all(cur) -> None:
    """Rewrite every model's generated functions from its active version (inside the caller's
    transaction)."""
    for name in catalog.model_names(cur):
        model = catalog.model_row(cur, name)
        assert model is not None   # listed just now, in this transaction
        row = catalog.version_row(cur, name, model["active_version"])
        try:
            ddl = version_functions(cur, name, row)
        except Exception:   # an artifact this scikit-learn cannot load, say
            # The file must still open: the model keeps the functions it had, which a sqlml
            # session with a scikit-learn that loads it still serves.
            continue
        for stmt in ddl:
            cur.execute(stmt)
    catalog.refresh_recommender_items(cur)


def _rollback_model(inst: Instance):
    def udf(names, versions):
        out = []
        for name, version in zip(names.to_pylist(), versions.to_pylist(), strict=True):
            with inst.write_lock:
                cur = inst.cursor()
                try:
                    current = catalog.require_model(cur, name, "ml_rollback_model")
                    catalog.require_version(cur, name, version, "ml_rollback_model",
                                            "Pass one of them.")
                    row = catalog.version_row(cur, name, version)
                    ddl = generated.drop_statements(generated.all_names(
                        current["function_name"]))
                    ddl += version_functions(cur, name, row)
                    catalog.set_active(cur, name, version, row["function_name"], ddl)
                finally:
                    inst.models.forget(name)
                    cur.close()
            out.append(f"model {name!r} now serves version {version} "
                       f"(was {current['active_version']})")
        return pa.array(out, type=pa.string())
    return udf


def _refresh_scores(inst: Instance):
    def udf(refs, sources, keys):
        out = []
        for ref, source, key in zip(refs.to_pylist(), sources.to_pylist(), keys.to_pylist(),
                                    strict=True):
            with inst.write_lock:
                cur = inst.cursor()
                try:
                    out.append(refresh_scores.refresh(inst, cur, ref, source, key))
                finally:
                    cur.close()
        return pa.array(out, type=pa.int64())
    return udf


def _reports(inst: Instance, names: pa.Array, drifts: list) -> pa.Array:
    from sqlml import reporting  # matplotlib loads with the first report, not with sqlml

    out = []
    for name, drift in zip(names.to_pylist(), drifts, strict=True):
        cur = inst.cursor()
        try:
            out.append(reporting.build(cur, inst, name, drift))
        finally:
            cur.close()
    return pa.array(out, type=pa.string())


def _report(inst: Instance):
    def udf(names):
        return _reports(inst, names, [None] * len(names))
    return udf


def _report_drift(inst: Instance):
    def udf(names, drifts):
        return _reports(inst, names, drifts.to_pylist())
    return udf


def _forecast_future(inst: Instance):
    """<fn>_future(query): the forecasts again with those covariate values."""
    def udf(refs, futures, horizons):
        from sqlml.forecast import future  # the engine loads with its first use

        # Each call refits the model, so a chunk's repeated arguments are computed once.
        rows = list(zip(refs.to_pylist(), futures.to_pylist(), horizons.to_pylist(),
                        strict=True))
        done: dict[tuple, list] = {}
        for args in dict.fromkeys(rows):
            cur = inst.cursor()
            try:
                done[args] = future.forecast_again(cur, *args)
            finally:
                cur.close()
        return pa.array([done[args] for args in rows], type=future.ROW_TYPE)
    return udf


# -- recommenders -------------------------------------------------------------------------------
_RECOMMENDATION_ARROW = pa.list_(pa.struct([
    ("rank", pa.int32()), ("item", pa.string()), ("score", pa.float64()),
    ("source", pa.string()), ("reason", pa.string())]))
_SIMILAR_ARROW = pa.list_(pa.struct([("rank", pa.int32()), ("item", pa.string()),
                                     ("similarity", pa.float64())]))


def _recommender(inst: Instance, refs: pa.Array, caller: str) -> StoredRecommender:
    model = inst.models.get(refs[0].as_py())
    if not isinstance(model, StoredRecommender):   # what serving.load makes of a recommendation
        raise PredictionInputError(
            f"{caller}: model {model.name!r} is {model.problem_type}, not a recommender. Score "
            f"it with {model.function_name}(...), or train one with problem_type := "
            f"'recommendation'.")
    return model


def _serving(inst: Instance, stored: StoredRecommender, codes: np.ndarray):
    """The recommender with the seen pairs of the users ``codes`` (read from its _seen table
    for a model trained on Spark, see StoredRecommender.serving)."""
    if not stored.model.seen_in_table:
        return stored.model
    cur = inst.cursor()
    try:
        return stored.serving(cur, codes)
    finally:
        cur.close()


def _recommend(inst: Instance):
    def udf(refs: pa.Array, users: pa.Array, ks: pa.Array, exclude: pa.Array) -> pa.Array:
        stored = _recommender(inst, refs, "recommend")
        k, excl = ks[0].as_py(), exclude[0].as_py()
        values = users.to_pandas().to_numpy()
        codes = stored.model._codes(values, "user")
        model = _serving(inst, stored, codes[codes >= 0])
        out: list[list[dict]] = [[] for _ in range(len(values))]
        known = np.flatnonzero(codes >= 0)
        if len(known):
            rec = model.recommend_all(k, bool(excl), users=np.unique(codes[known]))
            rows: dict = {}
            for r in zip(rec["user"].tolist(), rec["rank"].tolist(), rec["item"].tolist(),
                         rec["score"].tolist(), rec["source"].tolist(), rec["reason"].tolist(),
                         strict=True):
                rows.setdefault(str(r[0]), []).append(
                    {"rank": r[1], "item": str(r[2]), "score": r[3], "source": r[4],
                     "reason": r[5]})
            for j in known:
                out[j] = rows.get(str(model._id(codes[j], "user")), [])
        for j in np.flatnonzero(codes == -1):
            out[j] = [{"rank": r, "item": str(i), "score": sc, "source": src, "reason": why}
                      for r, i, sc, src, why in model.recommend(values[j], k, bool(excl))]
        if not len(known) and not (codes == -1).any():
            model._check_k(k)
        return pa.array(out, type=_RECOMMENDATION_ARROW)
    return udf


def _rec_rating(inst: Instance):
    def udf(refs, users, items):
        model = _recommender(inst, refs, "rating").model
        return pa.array(model.predict(users.to_pandas().to_numpy(),
                                      items.to_pandas().to_numpy()), type=pa.float64())
    return udf


def _similar_items(inst: Instance):
    def udf(refs, items, ks):
        model = _recommender(inst, refs, "ml_similar_items").model
        k = ks[0].as_py()
        return pa.array([[{"rank": r, "item": str(i), "similarity": sim}
                          for r, i, sim in model.similar_items(v, k)]
                         for v in items.to_pandas().to_numpy()], type=_SIMILAR_ARROW)
    return udf


UDFS = (
    Udf("__sqlml_py_create_model", _create_model, None, SUMMARY_TYPE, side_effects=True),
    Udf(generated.LABEL_UDF["VARCHAR"], _labels(pa.string()), None, "VARCHAR"),
    Udf(generated.LABEL_UDF["BIGINT"], _labels(pa.int64()), None, "BIGINT"),
    Udf(generated.LABEL_UDF["BOOLEAN"], _labels(pa.bool_()), None, "BOOLEAN"),
    Udf(generated.LABEL_UDF["DOUBLE"], _labels(pa.float64()), None, "DOUBLE"),
    Udf(generated.PROBABILITY_UDF, _probability(), None, "DOUBLE"),
    Udf(generated.PROBABILITIES_UDF, _probabilities, None, generated.PROBABILITIES_TYPE),
    Udf(generated.EXPLAIN_UDF, _explain, None, generated.EXPLAIN_TYPE),
    Udf("__sqlml_py_predict", _labels(pa.string(), "ml_predict"), None, "VARCHAR"),
    Udf("__sqlml_py_predict_probability", _probability("ml_predict_probability"), None, "DOUBLE"),
    Udf(generated.RECOMMEND_UDF, _recommend, None,
        "STRUCT(rank INTEGER, item VARCHAR, score DOUBLE, source VARCHAR, reason VARCHAR)[]"),
    Udf(generated.RATING_UDF, _rec_rating, None, "DOUBLE"),
    Udf("__sqlml_py_similar_items", _similar_items, None,
        "STRUCT(rank INTEGER, item VARCHAR, similarity DOUBLE)[]"),
    Udf("__sqlml_py_drop_model", _drop_model, ["VARCHAR"], "VARCHAR", side_effects=True),
    Udf("__sqlml_py_rollback_model", _rollback_model, ["VARCHAR", "INTEGER"], "VARCHAR",
        side_effects=True),
    Udf("__sqlml_py_refresh_scores", _refresh_scores, None, "BIGINT", side_effects=True),
    # side_effects: its timestamp differs per call, so DuckDB must not fold two calls into one
    Udf("__sqlml_py_report", _report, ["VARCHAR"], "VARCHAR", side_effects=True),
    Udf("__sqlml_py_report_drift", _report_drift, ["VARCHAR", "VARCHAR"], "VARCHAR",
        side_effects=True),
    # side_effects: it runs the query it is given, so `sqlml serve` counts it among the writers
    # (as ml_report(drift := query)), which a read-only login may not call
    Udf(generated.FORECAST_FUTURE_UDF, _forecast_future, ["VARCHAR", "VARCHAR", "BIGINT"],
        generated.FORECAST_ROWS_TYPE, side_effects=True),
)


def register(con: duckdb.DuckDBPyConnection, inst: Instance) -> None:
    inst.models = ModelCache(inst)
    for u in UDFS:
        # DuckDB's stubs accept only its enums for type and null_handling; the run time takes
        # the strings its documentation shows, which are the same in duckdb 1.x and 2.x (the enums
        # moved from duckdb.functional to duckdb.func).
        con.create_function(  # type: ignore[call-overload]
            u.name, u.make(inst), u.parameters, u.return_type, type="arrow",
            null_handling="special", side_effects=u.side_effects)
    # Registered last: its presence tells install() that this instance is complete.
    con.create_function("__sqlml_instance", lambda: inst.id, [], "VARCHAR")
