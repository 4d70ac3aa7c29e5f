"""Classification and regression on engine 'spark': Spark MLlib fits, sqlml stores and serves.

One way: request -> DuckDB COPYs the rows (features cast to DOUBLE or VARCHAR, the label as a
class index, a seeded validation flag) to Parquet -> a Spark ML Pipeline (SQLTransformer for
the missing indicators and the missing category, Imputer, StandardScaler, StringIndexer,
OneHotEncoder, VectorAssembler, then LogisticRegression, LinearRegression, DecisionTree or
RandomForest) fits on the training split and on every row -> each fit is converted into sqlml's
scikit-learn pipeline (convert.py) -> checked against Spark's transform on sample rows -> the
in-process publish path (metrics, threshold, importance, compiled SQL, catalog) on a seeded
sample of the rows, which is all that enters this process.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from sqlml import progress
from sqlml.catalog import sources
from sqlml.engines.spark import convert, handoff, session, tune
from sqlml.engines.spark.estimators import SPARK_MODEL_TYPES, spark_estimator
from sqlml.errors import TrainingError
from sqlml.train import estimators, preprocessing, tuning
from sqlml.train import supervised as training

FN = "ml_create_model"
SAMPLE_ROWS = 20_000       # rows read into this process for metrics, importance and checks
CHECK_ROWS = 300           # rows scored by both Spark and sqlml before publishing
TOLERANCE = 1e-9


def q(name: str) -> str:
    from sqlml.catalog.generated import quote

    return quote(name)


def train(cur, req: training.Request, started: float) -> dict:
    """ml_create_model(..., settings := {engine: 'spark'}) for a classifier or a regressor."""
    report = progress.reporter(cur, req.name, started, req.settings["max_runtime"])
    report.emit("start")
    _refuse(req)
    training.clash_check(cur, req)
    run = training._Run(cur, req, started, report)
    query = sources.query_of(req.source)
    types = _types(cur, query, req)
    key = _row_key(types, req.settings["random_state"])
    data, val, keys = _sample(run, query, types, key)
    problem = _classes_of_all(cur, query, req, training._infer(run, data))
    mt = estimators.lookup(req.model_type)
    features, excluded = preprocessing.infer_features(
        pd.DataFrame({c: data.table.column(c).to_pandas() for c in data.types
                      if preprocessing.supported(data.types[c]) or c in req.preprocessors}),
        data.types, req.preprocessors, mt.needs_scaling)
    _supported_features(features, mt.needs_scaling)
    run.notes += [f"column {e['name']} left out: {e['reason']}" for e in excluded]
    X = preprocessing.to_frame([data.table.column(f.name) for f in features], features, FN)
    split = training.Split(np.flatnonzero(~val), np.flatnonzero(val))
    spark = session.get_session(req.settings, req.name)
    with handoff.workdir(req.settings["spark_workdir"], req.name) as hand, \
            session.jobs(spark, req.name, started, req.settings["max_runtime"], report) as jobs:
        fits = _fit(cur, spark, hand, run, query, features, problem, key, jobs)
        check = _check_against_spark(spark, fits, X, keys, problem)
    selection = training.Selection(req.model_type, fits["all"].pipeline, features, excluded,
                                   fits["trials"], bool(fits["trials"]), X)
    validation = _validation(run, fits["train"].pipeline, X, data.y, split, problem)
    engine = {**session.about(spark, req.settings), "spark_params": fits["params"]}
    run.stored = {"record": {"training_rows": fits["rows"], "validation_rows": fits["val_rows"]},
                  "parameters": {"engine": engine, "spark_check": check}}
    run.notes.append(f"trained on Spark {spark.version} ({engine['spark_master']}) on "
                     f"{fits['rows']} rows; validation metrics on a sample of "
                     f"{len(split.val_idx)} validation rows")
    report.emit("fit", model_type=req.model_type)
    return training._publish(run, data, problem, split, selection,
                             training.Fitted(validation, fits["all"].pipeline))


def _refuse(req: training.Request) -> None:
    s = req.settings
    if req.model_type not in SPARK_MODEL_TYPES:
        raise TrainingError(
            f"{FN}: model_type {req.model_type!r} is not available with settings engine "
            f"'spark'. Use one of: {', '.join(SPARK_MODEL_TYPES)} (Spark MLlib), or leave "
            f"engine out to train in-process.")
    for key in ("calibrate", "max_cells"):
        if s[key]:
            raise TrainingError(
                f"{FN}: settings {key} {s[key]!r} is not available with engine 'spark' yet. "
                f"Leave it out, or train in-process (engine 'sqlml').")
    if s["diagnose"]:
        raise TrainingError(f"{FN}: settings diagnose is not available with engine 'spark'; "
                            f"leave it out, or train in-process.")


def _types(cur, query: str, req: training.Request) -> dict[str, str]:
    rel = sources.relation(cur, query, FN, "training data", TrainingError)
    return training.column_types(rel, req)


def _row_key(types: dict[str, str], seed: int) -> str:
    """A row's seeded 63-bit hash: the split flag and the sample are read from it, so DuckDB
    and Spark agree on which row is which without a row number."""
    cols = ", ".join(q(c) for c in types)
    return f"(hash({cols}, {int(seed)}) >> 1)::BIGINT"


def _val_flag(key: str, test_size: float) -> str:
    return f"(({key}) % 1000000) / 1e6 < {float(test_size)}"


def _sample(run, query: str, types: dict, key: str):
    """TrainingData of a seeded sample of at most SAMPLE_ROWS rows with a target, and which
    of them are validation rows."""
    req = run.req
    t = q(req.target)
    table = run.cur.sql(
        f"SELECT *, {_val_flag(key, req.settings['test_size'])} AS __sqlml_val, {key} AS "
        f"__sqlml_key FROM ({query}) WHERE {t} IS NOT NULL ORDER BY __sqlml_key "
        f"LIMIT {SAMPLE_ROWS}").to_arrow_table()
    if table.num_rows == 0:
        raise TrainingError(f"{FN}: the training query for model {req.name!r} returned no rows "
                            f"with a target. Query: {query}")
    val = table.column("__sqlml_val").to_numpy(zero_copy_only=False).astype(bool)
    keys = table.column("__sqlml_key").to_pylist()
    table = table.drop(["__sqlml_val", "__sqlml_key"])
    feature_types = {c: v for c, v in types.items() if c != req.target}
    y = table.column(req.target).to_pandas().to_numpy()
    if y.dtype == object and len(y) and isinstance(y[0], bool | np.bool_):
        y = y.astype(bool)
    data = training.TrainingData(table, feature_types, types[req.target], query,
                                 training._decimal_labels(y))
    if val.all() or not val.any():
        raise TrainingError(
            f"{FN}: model {req.name!r}: the seeded split left no "
            f"{'training' if val.all() else 'validation'} rows in the {len(val)} rows read; "
            f"train on more rows, or change settings test_size.")
    return data, val, keys


def _classes_of_all(cur, query: str, req, problem: training.Problem) -> training.Problem:
    """The classes of every row, not only the sample's."""
    if problem.classes is None:
        return problem
    t = q(req.target)
    got = [r[0] for r in cur.execute(f"SELECT DISTINCT {t} FROM ({query}) WHERE {t} IS NOT "
                                     f"NULL").fetchall()]
    classes = sorted(training._decimal_labels(np.asarray(got)).tolist())
    if len(classes) > 100:
        raise TrainingError(f"{FN}: target {req.target!r} has {len(classes)} classes; engine "
                            f"'spark' takes at most 100. Group them, or use regression.")
    return replace(problem, classes=classes)


def _supported_features(features: list, scale: bool) -> None:
    for f in features:
        if f.kind not in ("numeric", "boolean", "categorical"):
            raise TrainingError(
                f"{FN}: column {f.name!r} is {f.kind} ({f.preprocessor}), which engine 'spark' "
                f"does not preprocess yet: it takes numbers, booleans and categories. Derive "
                f"numbers in the query (e.g. epoch({f.name}) or length({f.name})), drop it with "
                f"preprocessors := {{{f.name}: 'drop'}}, or train in-process.")
        wanted = "one_hot" if f.kind == "categorical" else ("standard" if scale else "numeric")
        if f.preprocessor != wanted:
            raise TrainingError(
                f"{FN}: preprocessor {f.preprocessor!r} for column {f.name!r} is not available "
                f"with engine 'spark' for this model type, which preprocesses its "
                f"{f.kind} columns with {wanted!r}. Leave the override out, or train "
                f"in-process.")


# -- Spark -------------------------------------------------------------------------------------
def _handoff_query(query: str, features: list, problem: training.Problem, target: str,
                   key: str, test_size: float) -> str:
    cols = []
    for j, f in enumerate(features):
        cast = "VARCHAR" if f.kind == "categorical" else "DOUBLE"
        cols.append(f"{q(f.name)}::{cast} AS f{j}")
    t = q(target)
    if problem.classes is None:
        label = f"{t}::DOUBLE"
    else:
        from sqlml.spec import sql_literal

        whens = " ".join(f"WHEN {t} = {sql_literal(c)} THEN {k}.0"
                         for k, c in enumerate(problem.classes))
        label = f"CASE {whens} END"
    return (f"SELECT {', '.join(cols)}, {label} AS label, {_val_flag(key, test_size)} AS "
            f"__sqlml_val, {key} AS __sqlml_key FROM ({query}) WHERE {t} IS NOT NULL")


def _fit(cur, spark, hand, run, query: str, features: list, problem, key: str, jobs) -> dict:
    """Both Spark fits (training split, every row), each converted into sqlml's pipeline."""
    from sqlml.engines.spark.pipeline import build, fitted_values

    req = run.req
    uri = hand.write(cur, _handoff_query(query, features, problem, req.target, key,
                                         req.settings["test_size"]), "rows")
    nullable = _nullable(cur, query, features)
    layout = convert.Layout(features, nullable)
    rows, val_rows = cur.execute(
        f"SELECT count(*), count(*) FILTER (WHERE __sqlml_val) FROM read_parquet("
        f"'{hand.file('rows')[0]}/*.parquet')").fetchall()[0]
    frame = spark.read.parquet(uri)
    mt = estimators.lookup(req.model_type)
    out: dict = {"rows": int(rows), "val_rows": int(val_rows), "uri": uri, "trials": []}
    for tag, part in (("train", frame.where("NOT __sqlml_val")), ("all", frame)):
        jobs.check(f"before the Spark fit on {tag} rows")
        if tag == "train" and tuning.wanted(req.hyperparameters, req.settings):
            model, est, out["params"], out["trials"], notes = tune.search(
                lambda e: build(layout, e, mt.needs_scaling), part, req, problem, int(rows))
            run.notes += notes
        else:
            if tag == "train":
                est, out["params"] = spark_estimator(req, problem, rows)
            model = build(layout, est, mt.needs_scaling).fit(part)
        values = fitted_values(cur, model, layout, hand, f"{tag}_model")
        out[tag] = _Converted(model, _sklearn(layout, values, mt, problem, run))
    return out


class _Converted:
    def __init__(self, spark_model, pipeline):
        self.spark_model, self.pipeline = spark_model, pipeline


def _nullable(cur, query: str, features: list) -> dict[str, bool]:
    numeric = [f for f in features if f.kind in ("numeric", "boolean")]
    if not numeric:
        return {}
    got = cur.execute("SELECT " + ", ".join(
        f"count(*) FILTER (WHERE {q(f.name)} IS NULL OR isnan({q(f.name)}::DOUBLE))"
        for f in numeric) + f" FROM ({query})").fetchall()[0]
    return {f.name: bool(n) for f, n in zip(numeric, got, strict=True)}


def _sklearn(layout: convert.Layout, values: dict, mt, problem, run):
    prep = convert.prep_of(layout, values, mt.needs_scaling)
    positions = layout.spark_positions(values["labels"])
    template = mt.make(problem.problem_type, {}, run.settings["random_state"])
    dtype = None if problem.classes is None else np.asarray(problem.classes).dtype
    if values["kind"] == "linear":
        est = convert.linear_of(template, values["model"], positions, problem.classes, dtype)
    elif values["kind"] == "boosting":
        est = convert.boosting_of(template, values["nodes"], values["weights"], positions,
                                  problem.classes, dtype)
    else:
        est = convert.trees_of(template, values["nodes"], positions, problem.classes, dtype)
    return convert.pipeline_of(prep, est)


def _check_against_spark(spark, fits: dict, X: pd.DataFrame, all_keys: list, problem) -> dict:
    """Spark's transform and the converted pipeline on sample rows: labels equal, scores
    within TOLERANCE; raises before anything is published otherwise."""
    from pyspark.sql import functions as F

    rows = min(CHECK_ROWS, len(X))
    keys = all_keys[:rows]
    got = (fits["all"].spark_model.transform(
        spark.read.parquet(fits["uri"]).where(F.col("__sqlml_key").isin(keys)))
        .select("__sqlml_key", "prediction", *(["probability"] if problem.classes else []))
        .collect())
    by_key = {r["__sqlml_key"]: r for r in got}
    served = fits["all"].pipeline
    Xc = X.iloc[:rows]
    if problem.classes is None:
        ours = served.predict(Xc)
        theirs = np.array([by_key[k]["prediction"] for k in keys])
        diff = float(np.max(np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs)),
                            initial=0.0))
        labels_equal = True
    else:
        ours = served.predict_proba(Xc)
        theirs = np.array([by_key[k]["probability"].toArray() for k in keys])
        diff = float(np.max(np.abs(ours - theirs), initial=0.0))
        spark_labels = [problem.classes[int(by_key[k]["prediction"])] for k in keys]
        mine = [problem.classes[j] for j in np.argmax(ours, axis=1)]
        labels_equal = spark_labels == mine
    if not (diff <= TOLERANCE and labels_equal):
        raise TrainingError(
            f"{FN}: the model converted from Spark does not score as Spark's transform does on "
            f"{rows} sample rows (largest difference {diff:.3g}, tolerance {TOLERANCE:g}; labels "
            f"equal: {labels_equal}). Nothing was published; please report this with the Spark "
            f"version.")
    return {"rows": rows, "max_diff": diff, "labels_equal": labels_equal,
            "tolerance": TOLERANCE}


def _validation(run, fitted, X: pd.DataFrame, y: np.ndarray, split, problem):
    Xv, yv = X.iloc[split.val_idx], y[split.val_idx]
    if problem.problem_type == "binary_classification":
        return training._validate_binary(run, fitted, Xv, yv, problem)
    if problem.classes is not None:
        return training._validate_multiclass(fitted, Xv, yv)
    from sqlml.train import evaluation

    pred = fitted.predict(Xv)
    headline = evaluation.regression_metrics(yv, pred)
    return training.Validation(fitted, headline, [(k, None, v) for k, v in headline.items()],
                               predictions=evaluation.stored_predictions(yv, pred,
                                                                         run.settings))
