"""``ml_create_model``: from a query to a stored, served model version.

Data flows one way: arguments -> training data -> features -> candidates -> validation metrics
-> refit on all rows -> artifact -> catalog (with the generated functions) in one transaction.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression
from sklearn.metrics import f1_score, make_scorer, precision_score, recall_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline

from sqlml import progress, spec, testing_hooks
from sqlml.catalog import artifacts, generated, sources
from sqlml.catalog import store as catalog
from sqlml.compile import model as compile_sql
from sqlml.compile import text as compile_text
from sqlml.errors import InvalidNameError, TrainingError, did_you_mean
from sqlml.score import explain
from sqlml.train import (
    calibration,
    diagnose,
    estimators,
    evaluation,
    preprocessing,
    profile,
    thresholds,
    tuning,
)
from sqlml.train.estimators import CLASSIFICATION, PROBLEM_TYPES

FN = "ml_create_model"
POSITIVE_WORDS = ("yes", "y", "true", "t", "1", "positive", "pos", "churn", "churned", "spam",
                  "fraud", "default", "bad")
DEFAULT_SETTINGS = spec.defaults(spec.SUPERVISED)   # declared, with their rules, in sqlml.spec
# AUTO keeps a slower candidate only when its mean gain over a quicker one beats one standard
# error of their paired fold differences (docs/training.md, "How AUTO chooses").
NOISE_RULE = True
COMPARE_WORKERS = 2   # candidates cross-validated side by side (see compare)


@dataclass
class Request:
    name: str
    source: str
    target: str
    function: str
    problem_type: str = "auto"
    model_type: str = "auto"
    objective: str = "auto"
    hyperparameters: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    preprocessors: dict = field(default_factory=dict)
    fn_cost: float | None = None
    fp_cost: float | None = None
    min_recall: float | None = None


def check_identifier(kind: str, value) -> str:
    if not isinstance(value, str) or not generated.IDENTIFIER.match(value):
        raise InvalidNameError(
            f"{FN}: the {kind} must be a plain identifier (a letter or _, then letters, digits "
            f"or _, at most 63 characters), got {value!r}. Use e.g. 'customer_churn'.")
    return value


def as_dict(value, what: str) -> dict:
    """STRUCT, MAP or JSON text given for hyperparameters, settings or preprocessors."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise TrainingError(
                f"{FN}: {what} must be a STRUCT such as {{max_runtime: 60}} or a JSON object, "
                f"got text that is not JSON ({exc.msg}): {value!r}.") from None
        if isinstance(parsed, dict):
            return parsed
    raise TrainingError(
        f"{FN}: {what} must be a STRUCT such as {{max_runtime: 60}} or a JSON object, "
        f"got {value!r}.")


def _plain(v):
    """SQL literals such as 0.1 arrive as DECIMAL; estimators want float."""
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() and "." not in str(v) else float(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def parse_request(args: list) -> Request:
    """The UDF's positional arguments, bound by the spec's parameter order and checked."""
    given = spec.bind(args)
    name = check_identifier("model name", given["name"])
    source, target = given["source"], given["target"]
    if not isinstance(source, str) or not source.strip():
        raise TrainingError(
            f"{FN}: the training data must be a table name or a SELECT query, got {source!r}.")
    if not isinstance(target, str) or not target:
        raise TrainingError(
            f"{FN}: target := '<column>' names the column to predict and is required, got "
            f"{target!r}. Call e.g. ml_create_model('churn', 'customers', target := 'churned').")
    function = check_identifier("function name", given["function"] or f"predict_{name}")
    choices = {key: spec.check(spec.PARAM[key], given[key])
               for key in ("problem_type", "model_type", "objective")}
    costs = {key: spec.check(spec.PARAM[key], _plain(given[key]))
             for key in ("fn_cost", "fp_cost", "min_recall")}
    return Request(
        name=name, source=source, target=target, function=function, **choices,
        hyperparameters=as_dict(given["hyperparameters"], "hyperparameters"),
        settings=spec.check_settings(as_dict(given["settings"], "settings")),
        preprocessors=as_dict(given["preprocessors"], "preprocessors"), **costs)


# --------------------------------------------------------------------------------------------
def load_data(cur, req: Request) -> tuple[pa.Table, dict[str, str], str]:
    query = sources.query_of(req.source)
    try:
        rel = sources.relation(cur, query, FN, "training data", TrainingError)
        types = column_types(rel, req)
        table = rel.to_arrow_table()
    except duckdb.Error as exc:
        raise TrainingError(
            f"{FN}: the training query for model {req.name!r} failed: {exc}. Query: "
            f"{query}") from None
    if table.num_rows == 0:
        raise TrainingError(
            f"{FN}: the training query for model {req.name!r} returned no rows. Check its "
            f"WHERE clause, or that the table is loaded. Query: {query}")
    return table, types, query


def column_types(rel, req: Request) -> dict[str, str]:
    """The training data's column types, once each column has a name of its own and the target
    is found (``req.target`` takes the column's own case)."""
    seen: dict[str, str] = {}
    for c in rel.columns:
        if c.lower() in seen:
            # A feature is found by its name, in training and in every later prediction.
            raise TrainingError(
                f"{FN}: column {c!r} appears more than once in the training data (as "
                f"{seen[c.lower()]!r} and {c!r}); each feature needs a name of its own. "
                f"Rename one in the query, e.g. SELECT ..., {c} AS {c}_2.")
        seen[c.lower()] = c
    types = {c: str(t) for c, t in zip(rel.columns, rel.types, strict=True)}
    # DuckDB matches column names without regard to case, and so does target := ...
    same = [c for c in types if c.lower() == req.target.lower()]
    if req.target not in types and len(same) == 1:
        req.target = same[0]
    if req.target not in types:
        raise TrainingError(
            f"{FN}: target column {req.target!r} is not in the training data."
            f"{did_you_mean(req.target, types)} Columns: {', '.join(types)}.")
    return types


def sample_cells(table: pa.Table, max_cells: int | None, seed: int) -> tuple[pa.Table, list]:
    """Redshift's MAX_CELLS: a seeded random sample of rows when rows x columns exceed it."""
    n, cols = table.num_rows, table.num_columns
    if max_cells is None or n * cols <= max_cells:
        return table, []
    keep = max_cells // cols
    if keep < 10:
        raise TrainingError(
            f"{FN}: settings max_cells {max_cells} leaves {keep} row(s) of the {cols} columns "
            f"to train on; at least 10 are needed. Raise it, e.g. settings := {{max_cells: "
            f"{cols * 1000}}}, or leave it out to train on all {n} rows.")
    rows = np.sort(np.random.default_rng(seed).choice(n, size=keep, replace=False))
    return table.take(pa.array(rows)), [
        f"trained on a random sample of {keep} of {n} rows: {n} rows x {cols} columns = "
        f"{n * cols} cells exceed settings max_cells {max_cells}"]


def infer_problem_type(y: pd.Series, target_type: str, requested: str, target: str) -> str:
    if requested != "auto":  # parse_request has checked it against the spec
        return spec.check_choice("problem_type", requested, PROBLEM_TYPES, auto=True)
    t = preprocessing.base_type(target_type)
    distinct = y.nunique()
    if t in ("BOOLEAN", "VARCHAR", "ENUM", "UUID"):
        return "binary_classification" if distinct == 2 else "multiclass_classification"
    if t in preprocessing.INTEGER_TYPES:
        if distinct == 2:
            return "binary_classification"
        if distinct <= 20:
            return "multiclass_classification"
        return "regression"
    if t in preprocessing.NUMERIC_TYPES:
        return "regression"
    raise TrainingError(
        f"{FN}: target {target!r} has type {target_type}, which sqlml cannot predict. Cast it "
        f"to VARCHAR (classification) or DOUBLE (regression) in the training query.")


def _decimal_labels(y: np.ndarray) -> np.ndarray:
    """HUGEINT, UHUGEINT and DECIMAL targets arrive as Decimal objects, which scikit-learn's
    classifiers reject as an "unknown" target type: whole numbers become int64 (text beyond
    its range), others float64."""
    if y.dtype != object or not len(y) or not isinstance(y[0], Decimal):
        return y
    if any(v != v.to_integral_value() for v in y):
        return y.astype(np.float64)
    ints = [int(v) for v in y]
    if all(-2**63 <= v < 2**63 for v in ints):
        return np.array(ints, dtype=np.int64)
    return np.array([str(v) for v in ints], dtype=object)


def positive_class(classes: list, y: np.ndarray, setting):
    if setting is not None:
        for c in classes:
            if str(c) == str(setting):
                return c
        raise TrainingError(
            f"{FN}: settings positive_class {setting!r} is not a class of the target; classes "
            f"are {', '.join(map(repr, classes))}. Name one of them.")
    for c in classes:
        if c is True or (isinstance(c, int | np.integer) and not isinstance(c, bool) and c == 1):
            return c
    for c in classes:
        if isinstance(c, str) and c.strip().lower() in POSITIVE_WORDS:
            return c
    counts = {c: int(np.sum(y == c)) for c in classes}
    return min(classes, key=lambda c: (counts[c], -classes.index(c)))


def scorer(objective: str, problem_type: str, positive):
    name, kind = evaluation.OBJECTIVES[objective]
    if not _fits(kind, problem_type):
        fitting = [o for o, (_, k) in evaluation.OBJECTIVES.items() if _fits(k, problem_type)]
        raise TrainingError(
            f"{FN}: objective {objective!r} does not apply to {problem_type}, the problem type "
            f"of this target. Use one of: {', '.join(fitting)}.")
    metric = {"f1": f1_score, "recall": recall_score, "precision": precision_score}.get(name)
    if metric is not None:
        return make_scorer(metric, pos_label=positive, zero_division=0)
    return name


def _fits(kind: str, problem_type: str) -> bool:
    if kind == "regression":
        return problem_type == "regression"
    if kind == "binary":
        return problem_type == "binary_classification"
    return problem_type in CLASSIFICATION


# --------------------------------------------------------------------------------------------
# train() runs the stages below in order, each handing the next a small record.

@dataclass
class _Run:
    """One ml_create_model call: its request, its clock and progress reporter, and the notes
    every stage adds to the summary (in the order they arise)."""
    cur: duckdb.DuckDBPyConnection
    req: Request
    started: float
    report: progress.Reporter
    notes: list[str] = field(default_factory=list)
    # Another engine (engine 'spark') that trained on more rows than this process holds: the
    # record's row counts, and parameters kept beside the estimator's (engine, Spark check).
    stored: dict = field(default_factory=dict)
    # Seconds per stage after loading (select, validate_refit, explain, profile, store, compile),
    # kept in the version's parameters as stage_seconds: where a training's time went.
    stages: dict = field(default_factory=dict)

    def timed(self, stage: str, since: float) -> float:
        """Record a stage that began at ``since``; returns the clock, the next stage's start."""
        now = time.perf_counter()
        self.stages[stage] = round(now - since, 4)
        return now

    @property
    def settings(self) -> dict:
        return self.req.settings

    def seconds_left(self) -> float:
        return self.started + self.req.settings["max_runtime"] - time.perf_counter()


@dataclass
class TrainingData:
    """load: the rows with a known target, the feature columns' types and the target (which
    infer turns to float for a regression)."""
    table: pa.Table
    types: dict[str, str]          # feature columns only
    target_type: str
    query: str
    y: np.ndarray


@dataclass(frozen=True)
class Problem:
    """infer: the kind of prediction, its classes and the objective that ranks candidates."""
    problem_type: str
    classes: list | None
    positive: Any
    objective: str
    score_with: Any                # a scikit-learn scoring name or scorer


@dataclass(frozen=True)
class Split:
    """split: row positions to fit on and to measure on."""
    train_idx: np.ndarray
    val_idx: np.ndarray


@dataclass(frozen=True)
class Built:
    """One candidate model type: its unfitted pipeline and the features it reads."""
    pipeline: Pipeline
    features: list[preprocessing.Feature]
    excluded: list[dict]


@dataclass(frozen=True)
class Candidates:
    """The model types select chooses among, over one feature frame."""
    names: list[str]
    built: dict[str, Built]
    X: pd.DataFrame
    tune: bool


@dataclass(frozen=True)
class Selection:
    """select: the chosen model type, its pipeline (calibrated when asked) and the trials."""
    model_type: str
    pipeline: Pipeline
    features: list[preprocessing.Feature]
    excluded: list[dict]
    trials: list[dict]
    tuned: bool
    X: pd.DataFrame


@dataclass(frozen=True)
class Validation:
    """validate: the training split's fit, measured on the validation rows."""
    fitted: Pipeline
    headline: dict
    metric_rows: list[tuple]
    confusion_rows: list = field(default_factory=list)
    threshold: float | None = None
    threshold_reason: str | None = None
    threshold_rows: list | None = None
    calibration_rows: list = field(default_factory=list)
    # (actual, predicted) per validation row, for the model report's curves (evaluation.py)
    predictions: pd.DataFrame | None = None


@dataclass(frozen=True)
class Fitted:
    """validate and refit: the measurements, and the pipeline to serve."""
    validation: Validation
    served: Pipeline


def train(cur, args: list) -> dict:
    """ml_create_model, from the UDF's arguments to its summary row, in stages that each hand
    the next a record: load (TrainingData), infer (Problem), split (Split), select (Selection),
    validate and refit side by side (Fitted), publish (the summary)."""
    started = time.perf_counter()
    req = parse_request(args)
    if req.settings["engine"] == "spark":   # Spark MLlib fits, DuckDB serves (docs/spark.md)
        from sqlml.engines.spark import supervised as on_spark

        return on_spark.train(cur, req, started)
    report = progress.reporter(cur, req.name, started, req.settings["max_runtime"])
    report.emit("start")
    clash_check(cur, req)
    run = _Run(cur, req, started, report)
    data = _load(run)
    problem = _infer(run, data)
    split = _split(run, data, problem)
    t = time.perf_counter()
    chosen = _select(run, data, problem, split)
    t = run.timed("select", t)
    fitted = _validate_and_refit(run, data.y, split, problem, chosen)
    run.timed("validate_refit", t)
    testing_hooks.pause("fit")
    return _publish(run, data, problem, split, chosen, fitted)


# load ---------------------------------------------------------------------------------------
def _load(run: _Run) -> TrainingData:
    """The training rows (sampled to max_cells), less those whose target is NULL."""
    req = run.req
    table, types, query = load_data(run.cur, req)
    testing_hooks.pause("load")
    table, notes = sample_cells(table, req.settings["max_cells"], req.settings["random_state"])
    run.notes += notes
    target_type = types.pop(req.target)
    y_all = table.column(req.target).to_pandas()
    keep = y_all.notna().to_numpy()
    if not keep.any():
        raise TrainingError(
            f"{FN}: target column {req.target!r} is NULL in all {len(keep)} rows, so there is "
            f"nothing to learn. Fill the target, or choose another column.")
    if not keep.all():
        run.notes.append(f"{int((~keep).sum())} rows with a NULL target were left out")
        table = table.filter(pa.array(keep))
    y = y_all[keep].to_numpy()
    if y.dtype == object and len(y) and isinstance(y[0], (bool, np.bool_)):
        y = y.astype(bool)
    return TrainingData(table, types, target_type, query, _decimal_labels(y))


# infer --------------------------------------------------------------------------------------
def _infer(run: _Run, data: TrainingData) -> Problem:
    """Problem type, classes and objective, each checked against the request."""
    req = run.req
    problem_type = infer_problem_type(pd.Series(data.y), data.target_type, req.problem_type,
                                      req.target)
    classes, positive = None, None
    if problem_type in CLASSIFICATION:
        classes = _classes(req, data.y, problem_type)
        if problem_type == "binary_classification":
            positive = positive_class(classes, data.y, req.settings["positive_class"])
    else:
        data.y = _regression_target(req, data.y)
    calibration.check_problem(req.settings["calibrate"], problem_type, req.target)
    objective = (evaluation.DEFAULT_OBJECTIVE[problem_type] if req.objective == "auto"
                 else req.objective)
    spec.check_choice("objective", objective, evaluation.OBJECTIVES)
    score_with = scorer(objective, problem_type, positive)
    if problem_type != "binary_classification" and thresholds.wanted(
            objective, req.fn_cost, req.fp_cost, req.min_recall):
        raise TrainingError(
            f"{FN}: fn_cost, fp_cost and min_recall choose the decision threshold of a binary "
            f"model, but target {req.target!r} is {problem_type}. Leave them out.")
    return Problem(problem_type, classes, positive, objective, score_with)


def _classes(req: Request, y: np.ndarray, problem_type: str) -> list:
    classes = sorted(pd.unique(y).tolist())
    if len(classes) < 2:
        raise TrainingError(
            f"{FN}: target {req.target!r} has a single class ({classes[0]!r}) in all "
            f"{len(y)} rows; a classifier needs at least two. Add rows of another class, or "
            f"check the query's WHERE clause.")
    if problem_type == "binary_classification" and len(classes) != 2:
        raise TrainingError(
            f"{FN}: problem_type 'binary_classification' needs exactly 2 classes, target "
            f"{req.target!r} has {len(classes)}. Use 'multiclass_classification' or 'auto'.")
    return classes


def _regression_target(req: Request, y: np.ndarray) -> np.ndarray:
    y = y.astype(np.float64)
    if np.isinf(y).any():
        raise TrainingError(
            f"{FN}: target {req.target!r} holds {int(np.isinf(y).sum())} infinite value(s), "
            f"which a regression cannot fit. Leave those rows out, e.g. WHERE NOT "
            f"isinf({req.target}), or replace them with NULL (rows with a NULL target are "
            f"left out).")
    return y


# split --------------------------------------------------------------------------------------
def _split(run: _Run, data: TrainingData, problem: Problem) -> Split:
    s = run.settings
    train_idx, val_idx = evaluation.split(len(data.y), data.y, problem.problem_type,
                                          s["test_size"], s["random_state"], FN)
    return Split(train_idx, val_idx)


# select -------------------------------------------------------------------------------------
def _select(run: _Run, data: TrainingData, problem: Problem, split: Split) -> Selection:
    """Tune, compare or take the one candidate; calibrate the chosen pipeline when asked."""
    cands = _candidates(run, data, problem, split)
    if any(f.kind == "text" for b in cands.built.values() for f in b.features):
        # The Unicode tables a text column's SQL needs, built while the candidates fit.
        threading.Thread(target=compile_text.warm, daemon=True, name="sqlml-text-tables").start()
    if cands.tune:
        trials, best, chosen = _tune(run, problem, split, data.y, cands)
    else:
        trials, best = [], cands.names[0]
        if len(cands.names) > 1:
            trials = compare(cands.names, {c: b.pipeline for c, b in cands.built.items()},
                             cands.X, data.y, split.train_idx, problem.problem_type,
                             problem.score_with, problem.objective, run.settings, run.started,
                             on_trial=run.report.trial)
            best = choose(trials)
        chosen = cands.built[best]
    run.report.emit("fit", model_type=best)
    pipeline, s = chosen.pipeline, run.settings
    if s["calibrate"]:
        pipeline = calibration.wrap(pipeline, s["calibrate"],
                                    cv_for(problem.problem_type, data.y[split.train_idx], s))
    return Selection(best, pipeline, chosen.features, chosen.excluded, trials, cands.tune,
                     cands.X)


def _candidate_names(req: Request, problem_type: str) -> list[str]:
    names = ([req.model_type] if req.model_type != "auto" else list(
        estimators.AUTO_CANDIDATES["regression" if problem_type == "regression"
                                   else "classification"]))
    for c in names:
        estimators.lookup(c).estimator_class(problem_type)
    return names


def _candidates(run: _Run, data: TrainingData, problem: Problem, split: Split) -> Candidates:
    """Each candidate's pipeline, and the feature frame they all read."""
    req, s, problem_type = run.req, run.settings, problem.problem_type
    # Columns of unsupported types are left out unread: pandas has no form for some (UNION).
    feature_frame = pd.DataFrame({c: data.table.column(c).to_pandas() for c in data.types
                                  if c in req.preprocessors
                                  or preprocessing.supported(data.types[c])})
    names = _candidate_names(req, problem_type)
    tune = tuning.wanted(req.hyperparameters, s)
    fixed_hyper = tuning.split_space(req.hyperparameters)[0] if tune else req.hyperparameters
    if req.model_type == "auto" and req.hyperparameters:
        names = tuning.accepting(names, req.hyperparameters, problem_type)
    built: dict[str, Built] = {}
    X: pd.DataFrame | None = None
    for c in names:
        mt = estimators.lookup(c)
        features, excluded = preprocessing.infer_features(
            feature_frame, data.types, req.preprocessors, mt.needs_scaling)
        if X is None:
            X = preprocessing.to_frame([data.table.column(f.name) for f in features], features,
                                       FN)
            preprocessing.refuse_infinite(X, features, FN)
        est = mt.make(problem_type, fixed_hyper, s["random_state"], rows=len(split.train_idx))
        prep = preprocessing.build_transformer(features, dense=not mt.sparse_ok)
        built[c] = Built(Pipeline([("prep", prep), ("model", est)]), features, excluded)
    run.notes += [f"column {e['name']} left out: {e['reason']}" for e in excluded]
    assert X is not None    # tuning.accepting leaves at least one candidate
    return Candidates(names, built, X, tune)


def _tune(run: _Run, problem: Problem, split: Split, y: np.ndarray,
          cands: Candidates) -> tuple[list[dict], str, Built]:
    """Tune (sqlml.train.tuning): the trials, and the best trial's model type and pipeline."""
    cur, req, s = run.cur, run.req, run.settings
    rs = s["random_state"]

    def maker(c):
        return lambda hp: estimators.lookup(c).make(problem.problem_type, hp, rs,
                                                    rows=len(split.train_idx))

    candidates = [tuning.Candidate(c, cands.built[c].pipeline.named_steps["prep"], maker(c))
                  for c in cands.names]
    version = catalog.next_version(cur, req.name)
    catalog.clear_training_log(cur, req.name, version)
    lock = threading.Lock()

    def log(row: dict) -> None:
        with lock:
            catalog.log_training(cur, req.name, version, row)
        run.report.epoch(row)

    yt = y[split.train_idx]
    trials, best, notes = tuning.tune(candidates, req.hyperparameters,
                                      cands.X.iloc[split.train_idx], yt,
                                      cv_for(problem.problem_type, yt, s), problem.score_with,
                                      problem.objective, s, run.started, log,
                                      on_trial=run.report.trial)
    run.notes += notes
    c = best["model_type"]
    chosen = cands.built[c]
    pipeline = Pipeline([("prep", chosen.pipeline.named_steps["prep"]),
                         ("model", maker(c)(best["hyperparameters"]))])
    return trials, c, replace(chosen, pipeline=pipeline)


# The solvers whose ConvergenceWarning the final fit silences: a note says it instead.
_ITERATIVE = (MLPClassifier, MLPRegressor, LogisticRegression, Lasso, ElasticNet)


def _fit_seconds(trials: list[dict], model_type: str) -> float:
    """What one fit of ``model_type`` on the training split is expected to take: a trial fits
    k folds on (k-1)/k of it each, about the work of k-1 fits of the whole split."""
    own = [t["seconds"] / max(1, len(t["fold_scores"]) - 1) for t in trials
           if t["model_type"] == model_type and t["status"] != "failed" and t["fold_scores"]]
    return max(own, default=0.0)


def cv_for(problem_type: str, yt, s: dict):
    if problem_type in CLASSIFICATION:
        folds = min(s["cv_folds"], int(pd.Series(yt).value_counts().min()))
        return StratifiedKFold(n_splits=max(folds, 2), shuffle=True,
                               random_state=s["random_state"])
    return KFold(n_splits=s["cv_folds"], shuffle=True, random_state=s["random_state"])


# validate and refit -------------------------------------------------------------------------
def _validate_and_refit(run: _Run, y: np.ndarray, split: Split, problem: Problem,
                        chosen: Selection) -> Fitted:
    """The validation fit, and the served model's refit on every row beside it."""
    s = run.settings
    # The served model is refit on every row while the validation fit measures it: the two fits
    # are independent, and on 2 cores running them side by side hides most of the second one.
    # When tuning has left less of max_runtime than a fit takes, the validation fit is served
    # (as BigQuery ML serves its training-split model) so training ends near the budget.
    refit = not chosen.tuned or run.seconds_left() >= _fit_seconds(chosen.trials,
                                                                   chosen.model_type)
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=1) as pool:
        # An MLP that uses up max_iter says so in the summary's notes (below), not on stderr.
        warnings.simplefilter("ignore", ConvergenceWarning)
        full_fit = pool.submit(clone(chosen.pipeline).fit, chosen.X, y) if refit else None
        validation = _validate(run, chosen.pipeline, chosen.X, y, split, problem)
        served = full_fit.result() if full_fit is not None else validation.fitted
    _note_convergence(run, chosen.model_type, served)
    if not refit:
        run.notes.append(f"max_runtime {s['max_runtime']:g} s left no time to refit on every "
                         f"row: the served model is the one fitted on the training split "
                         f"({len(split.train_idx)} of {len(y)} rows); raise max_runtime to "
                         f"refit")
    return Fitted(validation, served)


def _note_convergence(run: _Run, model_type: str, served: Pipeline) -> None:
    solver = served.named_steps["model"]
    if isinstance(solver, _ITERATIVE) and np.max(solver.n_iter_) >= solver.max_iter:
        run.notes.append(f"{model_type} ran all max_iter {solver.max_iter} "
                         f"{'epochs' if model_type == 'mlp' else 'iterations'} without "
                         f"converging; raise it, e.g. hyperparameters := {{max_iter: "
                         f"{2 * solver.max_iter}}}, for a closer fit")


def _validate(run: _Run, pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, split: Split,
              problem: Problem) -> Validation:
    """Fit on the training split; metrics, confusion and threshold on the validation rows."""
    fitted = clone(pipeline).fit(X.iloc[split.train_idx], y[split.train_idx])
    Xv, yv = X.iloc[split.val_idx], y[split.val_idx]
    if problem.problem_type == "binary_classification":
        return _validate_binary(run, fitted, Xv, yv, problem)
    if problem.problem_type in CLASSIFICATION:
        return _validate_multiclass(fitted, Xv, yv)
    pred = fitted.predict(Xv)
    headline = evaluation.regression_metrics(yv, pred)
    return Validation(fitted, headline, [(k, None, v) for k, v in headline.items()],
                      predictions=evaluation.stored_predictions(yv, pred, run.settings))


def _validate_binary(run: _Run, fitted: Pipeline, Xv: pd.DataFrame, yv: np.ndarray,
                     problem: Problem) -> Validation:
    req, positive = run.req, problem.positive
    proba = fitted.predict_proba(Xv)
    cls = list(fitted.classes_)
    p_pos = proba[:, cls.index(positive)]
    threshold, threshold_reason, threshold_rows = 0.5, "default: P(positive) >= 0.5", None
    # Chosen (and its threshold table stored) only when asked: on 200,000 validation
    # rows it costs a third of a second, 10% of fitting a logistic model on 1M rows.
    if thresholds.wanted(problem.objective, req.fn_cost, req.fp_cost, req.min_recall):
        threshold, threshold_reason, threshold_rows = thresholds.choose(
            run.cur, yv == positive, p_pos, problem.objective, req.fn_cost, req.fp_cost,
            req.min_recall)
    negative = cls[1 - cls.index(positive)]
    pred = np.where(p_pos >= threshold, positive, negative)
    headline = evaluation.binary_metrics(yv, p_pos, pred, positive)
    calibration_rows = calibration.reliability(yv == positive, p_pos, req.settings["calibrate"])
    headline["cost"] = float(
        (1.0 if req.fn_cost is None else req.fn_cost) * headline["fn"]
        + (1.0 if req.fp_cost is None else req.fp_cost) * headline["fp"])
    return Validation(fitted, headline, [(k, None, float(v)) for k, v in headline.items()],
                      evaluation.confusion(yv, pred, cls), threshold, threshold_reason,
                      threshold_rows, calibration_rows,
                      evaluation.stored_predictions(yv == positive, p_pos, req.settings))


def _validate_multiclass(fitted: Pipeline, Xv: pd.DataFrame, yv: np.ndarray) -> Validation:
    proba = fitted.predict_proba(Xv)
    cls = list(fitted.classes_)
    # The estimator's own classes_ keep the target's dtype: as an object array, integer
    # labels read to scikit-learn's metrics as an "unknown" target type.
    pred = fitted.classes_[np.argmax(proba, axis=1)]
    headline, per_class = evaluation.multiclass_metrics(yv, proba, pred, cls)
    metric_rows: list[tuple] = [(k, None, v) for k, v in headline.items()]
    metric_rows += [(m, str(c), float(v)) for m, c, v in per_class]
    return Validation(fitted, headline, metric_rows, evaluation.confusion(yv, pred, cls))


# publish ------------------------------------------------------------------------------------
def _publish(run: _Run, data: TrainingData, problem: Problem, split: Split, chosen: Selection,
             fitted: Fitted) -> dict:
    """Explain, store the artifact and its generated functions in one transaction, summarise."""
    cur, req, v = run.cur, run.req, fitted.validation
    t = time.perf_counter()
    depth_rows = _depth_rows(run, data.y, split, problem, chosen, fitted)
    profiled = run.timed("explain", t)
    depth_rows["training_profiles"] = _profile(run, data, split, problem, chosen, fitted)
    t = run.timed("profile", profiled)
    profiled = run.stages["profile"]
    score = _headline_score(v.headline, problem.objective)
    trials = chosen.trials or [{
        "trial": 1, "model_type": chosen.model_type, "parameters": _params(chosen.pipeline),
        "objective": problem.objective, "score": score, "fold_scores": None,
        "seconds": time.perf_counter() - run.started, "status": "completed"}]
    blob = _stored(fitted.served)
    t = run.timed("store", t)
    record = _record(run, data, problem, split, chosen, v, blob)
    record["parameters"]["profile_seconds"] = round(profiled, 6)
    record["parameters"].update(run.stored.get("parameters", {}))
    ddl = _ddl(run, data, problem, chosen, fitted, record)
    run.timed("compile", t)
    record["parameters"]["stage_seconds"] = dict(run.stages)
    depth_rows["model_params"] = record.pop("model_params")
    run.report.emit("store", model_type=chosen.model_type)
    previous = catalog.model_row(cur, req.name)
    if previous and previous["function_name"] != req.function:
        ddl = generated.drop_statements(generated.all_names(previous["function_name"])) + ddl
    version = catalog.publish(cur, record, v.metric_rows, v.confusion_rows, trials, ddl,
                              v.threshold_rows, extra_rows=depth_rows)
    run.report.emit("done", model_type=chosen.model_type, score=score)
    return {
        "name": req.name, "version": version, "problem_type": problem.problem_type,
        "model_type": chosen.model_type, "function": req.function,
        "objective": problem.objective, "validation_score": score,
        "threshold": v.threshold, "training_rows": record["training_rows"],
        "seconds": round(time.perf_counter() - run.started, 3),
        "notes": "; ".join(run.notes) if run.notes else None,
    }


def _depth_rows(run: _Run, y: np.ndarray, split: Split, problem: Problem, chosen: Selection,
                fitted: Fitted) -> dict:
    """Calibration, feature importance and (when asked) diagnosis rows for the catalog."""
    s, X = run.settings, chosen.X
    depth_rows: dict = {"calibration": fitted.validation.calibration_rows,
                        "validation_predictions": fitted.validation.predictions}
    importance, note = explain.permutation_rows(
        fitted.validation.fitted, X.iloc[split.val_idx], y[split.val_idx], problem.score_with,
        s["random_state"], seconds=run.seconds_left())
    run.notes += [note] if note else []
    depth_rows.update(explain.catalog_rows(fitted.served, chosen.features, X, importance,
                                           problem.positive))
    if s["diagnose"]:
        depth_rows["diagnosis"] = diagnose.diagnose(
            chosen.pipeline, X, y, split.train_idx, split.val_idx, problem.problem_type,
            problem.score_with,
            cv_for(problem.problem_type, y[split.train_idx], {**s, "cv_folds": diagnose.CV_FOLDS}),
            s["random_state"])
    return depth_rows


def _profile(run: _Run, data: TrainingData, split: Split, problem: Problem, chosen: Selection,
             fitted: Fitted) -> list[tuple]:
    """The training data's profile for ml_drift (sqlml/train/profile.py): every training row's
    features, and the validation fit's scores on the validation rows."""
    model, Xv = fitted.validation.fitted, chosen.X.iloc[split.val_idx]
    scores = None
    if problem.problem_type == "binary_classification":
        scores = model.predict_proba(Xv)[:, list(model.classes_).index(problem.positive)]
    elif problem.problem_type == "regression":
        scores = model.predict(Xv)
    return profile.profile_rows(run.cur, data.table, chosen.features, scores)


def _stored(served: Pipeline) -> bytes:
    """The served pipeline made ready to store, as artifact bytes."""
    est = served.named_steps["model"]
    if "n_jobs" in est.get_params():
        # Fit in parallel, predict in one thread: parallel forests sum tree outputs in whatever
        # order threads finish, which changes the last bits of a probability between calls.
        est.set_params(n_jobs=None)
    calibration.prepare_for_storage(est)
    preprocessing.prepare_for_storage(served)
    return artifacts.dumps(served)


def _record(run: _Run, data: TrainingData, problem: Problem, split: Split, chosen: Selection,
            v: Validation, blob: bytes) -> dict:
    """The model's catalog row."""
    req, classes, positive = run.req, problem.classes, problem.positive
    seconds = time.perf_counter() - run.started
    return {
        "name": req.name, "problem_type": problem.problem_type, "model_type": chosen.model_type,
        "target": req.target, "target_type": data.target_type,
        "features": [f.to_dict() for f in chosen.features], "excluded": chosen.excluded,
        "classes": [tuning.jsonable(c) for c in classes] if classes else None,
        "positive_class": None if positive is None else str(positive),
        "function_name": req.function, "threshold": v.threshold,
        "threshold_reason": v.threshold_reason, "objective": problem.objective,
        "metrics": v.headline, "parameters": {"estimator": _params(chosen.pipeline),
                                              "settings": req.settings,
                                              "hyperparameters": req.hyperparameters,
                                              "preprocessors": req.preprocessors,
                                              # the model report's cost curve
                                              "costs": {"fn_cost": req.fn_cost,
                                                        "fp_cost": req.fp_cost,
                                                        "min_recall": req.min_recall}},
        "training_rows": len(data.y), "validation_rows": len(split.val_idx),
        "training_query": data.query,
        "data_fingerprint": fingerprint(chosen.X, data.y), "library_versions": library_versions(),
        "created_at": catalog.now(), "training_seconds": seconds,
        "artifact_format": artifacts.FORMAT, "artifact_sha256": artifacts.sha256(blob),
        "artifact": blob,
    } | _stored_by_engine(run)


def _stored_by_engine(run: _Run) -> dict:
    """What an engine other than this process adds to the record (``_Run.stored``)."""
    return dict(run.stored.get("record", {}))


def _ddl(run: _Run, data: TrainingData, problem: Problem, chosen: Selection, fitted: Fitted,
         record: dict) -> list[str]:
    """The generated functions' statements; the compiled SQL's summary goes into ``record``."""
    req, names = run.req, [f.name for f in chosen.features]
    version = catalog.next_version(run.cur, req.name)   # training holds the write lock
    ddl, info, param_rows = compile_sql.for_training(
        run.cur, req.name, version, req.function, fitted.served, chosen.features,
        problem.problem_type, data.target_type, record["classes"], problem.positive,
        fitted.validation.threshold, data.table)
    record["parameters"]["compiled_sql"] = info
    record["model_params"] = param_rows
    # After the _sql macros: creating a macro binds its body, and these call them.
    ddl += generated.create_statements(
        req.name, req.function, names, problem.problem_type, data.target_type,
        compiled=compile_sql.info_functions(info, req.function, problem.problem_type),
        python_first=info.get("python_first", True), reason=info["summary"], version=version)
    if not record["parameters"]["compiled_sql"]["compiled"]:
        run.notes.append(record["parameters"]["compiled_sql"]["summary"])
    return ddl


def compare(candidates, pipelines, X, y, train_idx, problem_type, score_with, objective, s,
            started, on_trial=None) -> list[dict]:
    """Cross-validate each candidate on the training split, within the time budget, two at a
    time: a logistic model's text features tokenise in Python while boosting's trees grow in
    compiled threads, so on 2 cores the pair overlaps.

    ``on_trial(trial, planned)`` hears of each candidate as it ends (sqlml.progress)."""
    Xt, yt = X.iloc[train_idx], y[train_idx]
    cv = cv_for(problem_type, yt, s)
    trials: list[dict[str, Any]] = []
    lock = threading.Lock()

    def one(i: int, c: str) -> None:
        t0 = time.perf_counter()
        trial = {"trial": i, "model_type": c, "parameters": _params(pipelines[c]),
                 "objective": objective, "score": None, "fold_scores": None, "seconds": 0.0}
        with lock:
            skip = t0 - started > s["max_runtime"] and any(
                t["status"] == "completed" for t in trials)
        if not skip:
            trial.update(_cross_validate(pipelines[c], Xt, yt, cv, score_with, t0))
            if trial["status"] == "completed" and time.perf_counter() - started > s[
                    "max_runtime"]:
                trial["status"] = "timed_out"
        with lock:
            trials.append({**trial, "status": "skipped"} if skip else trial)
            _told(on_trial, trials, candidates)

    with ThreadPoolExecutor(max_workers=COMPARE_WORKERS) as pool:
        for f in [pool.submit(one, i, c) for i, c in enumerate(candidates, start=1)]:
            f.result()
    trials.sort(key=lambda t: t["trial"])
    if not any(t["status"] in ("completed", "timed_out") for t in trials):
        raise TrainingError(
            f"{FN}: every candidate model failed: "
            + "; ".join(f"{t['model_type']}: {t['fold_scores']}" for t in trials)
            + ". Check the training data, or name a model_type.")
    for t in trials:
        if t["status"] == "timed_out":
            t["status"] = "completed"   # its score counts; the budget only skips later ones
    return trials


def _cross_validate(pipeline, Xt, yt, cv, score_with, t0: float) -> dict:
    """One candidate's fold scores (or why it failed) and seconds."""
    try:
        scores = cross_val_score(pipeline, Xt, yt, cv=cv, scoring=score_with,
                                 error_score="raise")
    except ValueError as exc:
        return {"status": "failed", "fold_scores": [str(exc)[:200]],
                "seconds": time.perf_counter() - t0}
    return {"score": float(np.mean(scores)), "fold_scores": [float(v) for v in scores],
            "seconds": time.perf_counter() - t0, "status": "completed"}


def choose(trials: list[dict]) -> str:
    """The model type AUTO keeps, from the compared candidates (quickest first): the best mean
    score, unless a quicker candidate is within the noise of it, i.e. the best one's mean gain
    over it is at most one standard error of their paired fold differences. The decision goes
    into each trial's parameters ("selection"), which ml_trials shows."""
    done = [t for t in trials if t["status"] == "completed"]
    best = max(done, key=lambda t: t["score"])
    kept = best
    for t in done:
        if t is best or not NOISE_RULE:
            break
        gain, se = _paired_gain(best, t)
        if gain is not None and gain <= se:
            kept = t
            break
    for t in done:
        gain, se = _paired_gain(kept, t)
        if t is kept:
            ahead, noise = _paired_gain(best, t)
            why = ("kept: best mean score" if t is best else
                   f"kept: within the noise of {best['model_type']} (its mean gain "
                   f"{ahead or 0.0:.4g} <= one standard error {noise:.4g}) and quicker")
        elif gain is None:
            why = f"not kept: {kept['model_type']} chosen"
        elif gain < 0:   # the better mean, given up for a quicker model within its noise
            why = (f"not kept: its mean gain over {kept['model_type']} ({-gain:.4g}) is within "
                   f"one standard error ({se:.4g}), and {kept['model_type']} is quicker")
        else:
            why = (f"not kept: {kept['model_type']} scores {gain:+.4g} higher (one standard "
                   f"error of the paired fold differences {se:.4g})")
        t["parameters"] = {**(t["parameters"] or {}), "selection": why}
    return kept["model_type"]


def _paired_gain(a: dict, b: dict) -> tuple[float | None, float]:
    """a's mean gain over b across the same folds, and its standard error."""
    fa, fb = a.get("fold_scores"), b.get("fold_scores")
    if not fa or not fb or len(fa) != len(fb) or len(fa) < 2:
        return None, 0.0
    d = np.asarray(fa, dtype=float) - np.asarray(fb, dtype=float)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def _told(on_trial, trials, candidates) -> None:
    if on_trial is not None:
        t = trials[-1]
        # A candidate that ended past the budget still counts (see below), so it reads completed.
        on_trial({**t, "status": "completed"} if t["status"] == "timed_out" else t,
                 len(candidates))


def clash_check(cur, req: Request) -> None:
    names = generated.all_names(req.function)
    rows = cur.execute(
        "SELECT DISTINCT function_name, function_type, internal FROM duckdb_functions() "
        "WHERE lower(function_name) IN (SELECT lower(unnest(?)))", [names]).fetchall()
    owner = catalog.function_owner(cur, req.function)
    for fname, ftype, internal in rows:
        if owner == req.name and not internal:
            continue
        what = "a DuckDB built-in" if internal else (
            f"the function of model {owner!r}" if owner else "an existing")
        # The default name can be the clashing one: two models named alike but for case.
        other = f"predict_{req.name}"
        other = other if other.lower() != req.function.lower() else f"{other}_2"
        case = "" if fname in names else " (DuckDB function names ignore case)"
        raise InvalidNameError(
            f"{FN}: function name {req.function!r} clashes with {what} {ftype} function "
            f"{fname!r}{case}. Choose another name, e.g. function := '{other}'.")


def fingerprint(X: pd.DataFrame, y) -> str:
    """Order-insensitive hash of the training rows, to tell later whether the data changed."""
    frame = X.copy()
    frame["__target__"] = y
    hashes = pd.util.hash_pandas_object(frame.astype(str) if _has_unhashable(frame) else frame,
                                        index=False).to_numpy()
    return f"{len(frame)}:{int(hashes.sum(dtype=np.uint64)):016x}"


def _has_unhashable(frame: pd.DataFrame) -> bool:
    return any(frame[c].dtype == object and frame[c].map(type).eq(list).any()
               for c in frame.columns)


def library_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("sqlml", "duckdb", "scikit-learn", "numpy", "pandas",
                                    "pyarrow", "skops")}


def _params(pipeline: Pipeline) -> dict:
    return tuning.params_of(pipeline.named_steps["model"])


def _headline_score(headline: dict, objective: str) -> float | None:
    key = {"auc": "roc_auc", "f1_macro": "f1_macro"}.get(objective, objective)
    v = headline.get(key)
    return None if v is None else float(v)
