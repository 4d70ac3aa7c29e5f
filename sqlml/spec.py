"""Every option of ``ml_create_model`` declared once: its parameters, settings, problem types,
model types, objectives and preprocessors, each with its type, default, rule and one line of
documentation.

The SQL macro ``ml_create_model`` is generated from ``PARAMS`` at install time
(``create_model_macro``); ``sqlml.create_model``, the Redshift mapping, ``parse_request`` and the
recommender read their names from here; the training registries (model types, objectives,
preprocessors) are checked against it by ``tests/test_spec.py``. ``check`` is the one validator,
in the spirit of scikit-learn's ``_parameter_constraints``: every message names the option,
states the rule, quotes the value and gives the remedy.

This module must stay light (no scikit-learn, numpy, pandas or duckdb): the statement parser and
the Postgres server read names from it. ``python -m sqlml.spec`` prints the option tables as
Markdown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlml.catalog.generated import IDENTIFIER
from sqlml.errors import TrainingError, did_you_mean

FN = "ml_create_model"
ENGINES = ("sqlml", "spark")
SUPERVISED, RECOMMENDATION, FORECAST = "supervised", "recommendation", "forecast"


# -- rules --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Number:
    """A number (or an integer) within optional bounds; ``text`` is how messages state it."""

    text: str
    low: float | None = None
    high: float | None = None
    low_open: bool = True       # True: value > low; False: value >= low
    high_open: bool = True
    integer: bool = False

    @property
    def kind(self) -> str:
        return "integer" if self.integer else "number"

    def ok(self, v: object) -> bool:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False
        if self.integer and not isinstance(v, int):
            return False
        if isinstance(v, float) and math.isnan(v):
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return not (self.high is not None and (v >= self.high if self.high_open
                                               else v > self.high))


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (case folded); ``auto`` also accepts 'auto'."""

    values: tuple[str, ...]
    auto: bool = False
    kind: str = "text"

    @property
    def text(self) -> str:
        return ("'auto' or " if self.auto else "") + "one of: " + ", ".join(map(repr, self.values))

    def ok(self, v: object) -> bool:
        return isinstance(v, str) and (v.lower() in self.values or (self.auto and v.lower()
                                                                     == "auto"))


@dataclass(frozen=True)
class Kind:
    """A value of one kind: boolean, text, identifier, query, struct or any."""

    kind: str
    text: str

    def ok(self, v: object) -> bool:
        if self.kind == "boolean":
            return isinstance(v, bool)
        if self.kind in ("text", "query"):
            return isinstance(v, str) and bool(v.strip())
        if self.kind == "identifier":
            return isinstance(v, str) and bool(IDENTIFIER.match(v))
        return True   # struct values are read by as_dict, any value by its consumer


Rule = Number | Choice | Kind
FLAG = Kind("boolean", "true or false")
TEXT = Kind("text", "text")
ANY = Kind("any", "any value")
STRUCT = Kind("struct", "a STRUCT, a MAP or the JSON text of an object")
IDENT = Kind("identifier", "a plain identifier (a letter or _, then letters, digits or _, at "
                           "most 63 characters)")
QUERY = Kind("query", "a table name or a SELECT query")
POSITIVE = Number("a positive number", low=0)
POSITIVE_INT = Number("a positive integer", low=0, integer=True)


# -- the options --------------------------------------------------------------------------------
REQUIRED = object()   # the default of a positional parameter


@dataclass(frozen=True)
class Param:
    """One parameter of ``ml_create_model``, in call order."""

    name: str
    sql_type: str
    default: Any
    rule: Rule
    doc: str
    example: str = ""
    gloss: str = ""    # said in parentheses after the name in messages

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def subject(self) -> str:
        return self.name

    @property
    def remedy(self) -> str:
        return f"Pass e.g. {self.name} := {self.example}."


@dataclass(frozen=True)
class Setting:
    """One key of ``settings := {...}``; ``scopes`` are the kinds of model that read it."""

    name: str
    default: Any
    rule: Rule
    doc: str
    scopes: tuple[str, ...] = (SUPERVISED,)
    example: Any = None
    gloss: str = ""

    @property
    def subject(self) -> str:
        return f"setting {self.name}"

    @property
    def remedy(self) -> str:
        return f"Use e.g. settings := {{{self.name}: {sql_literal(self.example_value)}}}."

    @property
    def example_value(self) -> Any:
        if self.example is not None:
            return self.example
        if self.default is not None:
            return self.default
        return self.rule.values[0] if isinstance(self.rule, Choice) else 1


@dataclass(frozen=True)
class ProblemTypeSpec:
    name: str
    doc: str
    classification: bool = False


@dataclass(frozen=True)
class ModelTypeSpec:
    name: str
    problem_types: tuple[str, ...]
    doc: str


@dataclass(frozen=True)
class ObjectiveSpec:
    name: str
    applies: str     # binary | classification | regression
    doc: str


@dataclass(frozen=True)
class PreprocessorSpec:
    name: str
    kind: str | None   # the feature kind it makes; None: the column is dropped
    doc: str


PROBLEM_TYPE_SPECS = (
    ProblemTypeSpec("binary_classification", "a target with two classes; P(positive) and a "
                    "decision threshold", classification=True),
    ProblemTypeSpec("multiclass_classification", "a target with three or more classes",
                    classification=True),
    ProblemTypeSpec("regression", "a numeric target"),
    ProblemTypeSpec("recommendation", "(user, item, rating) rows to a recommender; "
                    "settings name the columns"),
    ProblemTypeSpec("forecast", "time series to P10/P50/P90 quantile forecasts, stored for "
                    "the horizon; settings name the time and series columns"),
)
PROBLEM_TYPES = tuple(p.name for p in PROBLEM_TYPE_SPECS)
CLASSIFICATION = tuple(p.name for p in PROBLEM_TYPE_SPECS if p.classification)
SUPERVISED_PROBLEM_TYPES = (*CLASSIFICATION, "regression")

_C, _R = CLASSIFICATION, ("regression",)
MODEL_TYPE_SPECS = (
    ModelTypeSpec("logistic", _C, "logistic regression"),
    ModelTypeSpec("linear", (*_C, *_R), "ridge for regression, logistic for classification"),
    ModelTypeSpec("lasso", _R, "L1-regularised linear regression"),
    ModelTypeSpec("elastic_net", _R, "L1 and L2-regularised linear regression"),
    ModelTypeSpec("decision_tree", (*_C, *_R), "one readable tree (max_depth 12, "
                  "min_samples_leaf 5 by default)"),
    ModelTypeSpec("random_forest", (*_C, *_R), "a random forest of 200 trees"),
    ModelTypeSpec("gradient_boosting", (*_C, *_R), "histogram-based gradient boosting"),
    ModelTypeSpec("knn", (*_C, *_R), "k nearest neighbours (brute force, scaled features)"),
    ModelTypeSpec("mlp", (*_C, *_R), "a multi-layer perceptron (regression learns the "
                  "standardised target)"),
)
MODEL_TYPES = tuple(m.name for m in MODEL_TYPE_SPECS)

OBJECTIVE_SPECS = (
    ObjectiveSpec("auc", "binary", "area under the ROC curve (binary default)"),
    ObjectiveSpec("f1", "binary", "F1 of the positive class"),
    ObjectiveSpec("accuracy", "classification", "share of rows labelled right (multiclass "
                  "default)"),
    ObjectiveSpec("recall", "binary", "recall of the positive class"),
    ObjectiveSpec("precision", "binary", "precision of the positive class"),
    ObjectiveSpec("log_loss", "classification", "log loss of the probabilities"),
    ObjectiveSpec("cost", "binary", "ranks by AUC, then picks the threshold of least "
                  "fn_cost x FN + fp_cost x FP"),
    ObjectiveSpec("f1_macro", "classification", "F1 averaged over the classes"),
    ObjectiveSpec("rmse", "regression", "root mean squared error (regression default)"),
    ObjectiveSpec("mae", "regression", "mean absolute error"),
    ObjectiveSpec("r2", "regression", "coefficient of determination"),
    ObjectiveSpec("mape", "regression", "mean absolute percentage error"),
)
OBJECTIVES = tuple(o.name for o in OBJECTIVE_SPECS)
DEFAULT_OBJECTIVE = {"binary_classification": "auc", "multiclass_classification": "accuracy",
                     "regression": "rmse"}

PREPROCESSOR_SPECS = (
    PreprocessorSpec("standard", "numeric", "impute the median, then standard scaling"),
    PreprocessorSpec("minmax", "numeric", "impute the median, then scale to [0, 1]"),
    PreprocessorSpec("numeric", "numeric", "impute the median only"),
    PreprocessorSpec("one_hot", "categorical", "one column per category"),
    PreprocessorSpec("ordinal", "categorical", "one integer code per category"),
    PreprocessorSpec("tfidf", "text", "TF-IDF of words and word pairs"),
    PreprocessorSpec("tfidf_stop_words", "text", "TF-IDF without English stop words"),
    PreprocessorSpec("date", "date", "year, month, day, weekday, day of year, hour, days "
                     "since 1970"),
    PreprocessorSpec("drop", None, "leave the column out"),
)
PREPROCESSORS = tuple(p.name for p in PREPROCESSOR_SPECS)

PARAMS = (
    Param("name", "VARCHAR", REQUIRED, IDENT, "the model's name", "'customer_churn'",
          gloss="model name"),
    Param("source", "VARCHAR", REQUIRED, QUERY, "the training data: a table name or a query",
          "'customers'"),
    Param("target", "VARCHAR", None, TEXT, "the column to predict (required, except for "
          "recommenders)", "'churned'"),
    Param("function", "VARCHAR", None, IDENT, "the generated SQL functions' name (default "
          "`predict_<name>`, or `recommend_<name>`)", "'predict_churn'", gloss="function name"),
    Param("problem_type", "VARCHAR", "auto", Choice(PROBLEM_TYPES, auto=True),
          "inferred from the target when 'auto'", "'regression'"),
    Param("model_type", "VARCHAR", "auto", Choice(MODEL_TYPES, auto=True),
          "'auto' compares candidates by cross-validation", "'gradient_boosting'"),
    Param("objective", "VARCHAR", "auto", Choice(OBJECTIVES, auto=True),
          "the validation metric models are chosen by", "'f1'"),
    Param("hyperparameters", "STRUCT/MAP/JSON", None, STRUCT, "the estimator's parameters, "
          "or tuning ranges {min, max} and {values: [...]}", "{max_depth: 4}"),
    Param("settings", "STRUCT/MAP/JSON", None, STRUCT, "training settings (see below)",
          "{max_runtime: 60}"),
    Param("preprocessors", "STRUCT/MAP/JSON", None, STRUCT,
          "{column: preprocessor} overrides of the inferred preprocessing", "{plan: 'one_hot'}"),
    Param("fn_cost", "DOUBLE", None,
          Number("a non-negative number (the cost of one missed positive)", low=0,
                 low_open=False),
          "binary: the cost of a missed positive, for the decision threshold", "3"),
    Param("fp_cost", "DOUBLE", None,
          Number("a non-negative number (the cost of one false alarm)", low=0, low_open=False),
          "binary: the cost of a false alarm, for the decision threshold", "1"),
    Param("min_recall", "DOUBLE", None,
          Number("a number in [0, 1]", low=0, high=1, low_open=False, high_open=False),
          "binary: the threshold keeps at least this recall", "0.85"),
)
PARAM_NAMES = tuple(p.name for p in PARAMS)
PARAM = {p.name: p for p in PARAMS}

_BOTH = (SUPERVISED, RECOMMENDATION)
_ALL = (SUPERVISED, RECOMMENDATION, FORECAST)
_REC = (RECOMMENDATION,)
_FC = (FORECAST,)
FREQUENCIES = ("hour", "day", "week", "month", "quarter", "year")
FORECAST_METHODS = ("naive", "seasonal_naive", "drift", "ets", "arima", "theta", "gbm")
SETTINGS = (
    Setting("test_size", 0.2, Number("a fraction strictly between 0 and 1", low=0, high=1),
            "share of rows held out for validation", _BOTH),
    Setting("random_state", 42, Number("a non-negative integer", low=0, low_open=False,
                                       integer=True), "seed of the split and the models", _ALL),
    Setting("max_runtime", 300.0, POSITIVE, "seconds the whole training may take "
            "(recommenders: read by engine 'spark', whose jobs are cancelled past it)", _ALL,
            example=60),
    Setting("cv_folds", 3, Number("a whole number of at least 2", low=2, low_open=False,
                                  integer=True), "cross-validation folds comparing candidates"),
    Setting("positive_class", None, ANY, "binary: the class P(positive) is of (default: "
            "true, 1, 'yes'... or the rarer class)", example="yes"),
    Setting("split", "stratified", TEXT, "unused, accepted for compatibility: classification "
            "splits are always stratified"),
    Setting("strategy", None, Choice(("random", "bayesian", "grid")),
            "turns on tuning: how trials are chosen"),
    Setting("max_trials", None, Number("a whole number of at least 1", low=1, low_open=False,
                                       integer=True), "turns on tuning: at most this many "
            "trials (20 by default)", example=4),
    Setting("max_parallel_trials", None, Number("a whole number of at least 1", low=1,
                                                low_open=False, integer=True),
            "trials run at once (random and grid; default the cores, at most 4)", example=2),
    Setting("median_stopping", True, FLAG, "stop a trial whose epoch scores fall below the "
            "median of earlier trials"),
    Setting("diagnose", False, FLAG, "store an over/underfitting diagnosis "
            "(FROM ml_diagnose(...))", example=True),
    Setting("calibrate", None, Choice(("sigmoid", "isotonic")), "binary: calibrate the "
            "probability (false or leave it out for none)"),
    Setting("max_cells", None, POSITIVE_INT, "train on a seeded sample when rows x columns "
            "exceed it", example=1000000, gloss="rows x columns to train on at most"),
    Setting("user_col", None, TEXT, "recommenders: the column of user ids (required)", _REC,
            example="user_id"),
    Setting("item_col", None, TEXT, "recommenders: the column of item ids (required)", _REC,
            example="item_id"),
    Setting("rating_col", None, TEXT, "recommenders: the rating (explicit) or interaction "
            "weight (implicit)", _REC, example="rating"),
    Setting("timestamp_col", None, TEXT, "recommenders: when each interaction happened", _REC,
            example="rated_at"),
    Setting("feedback", "explicit", Choice(("explicit", "implicit")), "recommenders: "
            "'explicit' (ratings to predict) or 'implicit' (clicks, plays, purchases)", _REC),
    Setting("factors", None, POSITIVE_INT, "recommenders: dimensions of the user and item "
            "vectors (explicit 10, implicit 64)", _REC, example=10),
    Setting("regularization", None, POSITIVE, "recommenders: explicit: learned when left out; "
            "implicit: ridge penalty (30)", _REC, example=30),
    Setting("iterations", None, POSITIVE_INT, "recommenders: sweeps (explicit 25, implicit 3)",
            _REC, example=25),
    Setting("alpha", None, POSITIVE, "implicit recommenders: confidence = 1 + alpha x weight "
            "(10)", _REC, example=10),
    Setting("implicit_threshold", None, Number("a number"), "implicit recommenders: rows "
            "with rating >= threshold are the positives", _REC, example=4),
    Setting("recency_half_life", None, Number("a non-negative number", low=0, low_open=False),
            "implicit recommenders: an interaction counts half per this many later ones of "
            "the user (1; 0 turns recency off)",
            _REC, example=1),
    Setting("algorithm", "auto", Choice(("als", "ease"), auto=True), "implicit recommenders: "
            "'als' (matrix factorization), 'ease' (closed-form item-item weights, up to 20,000 "
            "items) or 'auto': candidates of both compared on a validation split, each in "
            "ml_trials", _REC, example="ease"),
    Setting("weighting", None, Choice(("linear", "bm25")), "implicit ALS: confidence "
            "1 + alpha x weight ('linear'), or 1 + alpha x BM25 of the weights ('bm25'); "
            "AUTO tries both when left out", _REC, example="bm25"),
    Setting("engine", "sqlml", Choice(ENGINES), "where the model is fitted: 'sqlml' (in this "
            "process) or 'spark' (Apache Spark MLlib; docs/spark.md)", _BOTH),
    Setting("spark_master", "local[*]", TEXT, "engine 'spark': the master URL (local[2], "
            "spark://host:7077, yarn, k8s://..., sc://host:15002)", _BOTH,
            example="local[2]"),
    Setting("spark_workdir", None, TEXT, "engine 'spark': the directory the training data is "
            "handed over in as Parquet, readable by Spark's executors (default: a temporary "
            "directory); removed afterwards", _BOTH, example="/mnt/shared/sqlml"),
    Setting("spark_conf", None, STRUCT, "engine 'spark': Spark configuration for a new session, "
            "e.g. {'spark.executor.memory': '8g'}", _BOTH,
            example={"spark.sql.shuffle.partitions": "8"}),
    Setting("k", 10, POSITIVE_INT, "recommenders: the cut-off of the stored ranking metrics",
            _REC, gloss="the cut-off of the stored ranking metrics"),
    Setting("time_col", None, TEXT, "forecasts: the DATE, TIMESTAMP or TIMESTAMPTZ column "
            "(or text with time_format) of each row's period (default: the data's one date or "
            "timestamp column)", _FC, example="month"),
    Setting("series_cols", None, ANY, "forecasts: the column or list of columns that "
            "identify a series (none: one series; '*': every column without another role)",
            _FC, example=["store", "dept"]),
    Setting("horizon", 12, POSITIVE_INT, "forecasts: periods forecast after each series' "
            "last one, stored at training", _FC),
    Setting("quantiles", None, ANY, "forecasts: the quantiles forecast, sorted and in (0, 1) "
            "(0.1, 0.5 and 0.9 when left out); column p10 for 0.1, p2_5 for 0.025", _FC,
            example=[0.1, 0.5, 0.9]),
    Setting("frequency", "auto", Choice(FREQUENCIES, auto=True), "forecasts: the period "
            "length; 'auto' infers it from the timestamps", _FC, example="month"),
    Setting("time_format", None, TEXT, "forecasts: the strptime format of a text time "
            "column, e.g. '%Y %b' for '1982 Apr'", _FC, example="%Y %b"),
    Setting("time_zone", "UTC", TEXT, "forecasts: the zone a TIMESTAMPTZ time column is read "
            "in, so that days and months follow its calendar (e.g. 'America/New_York')", _FC),
    Setting("duplicates", "aggregate", Choice(("aggregate", "refuse")), "forecasts: rows of "
            "one series and period are summed (covariates averaged) with a note, or refused",
            _FC),
    Setting("fill", "zero", Choice(("zero", "interpolate", "previous", "refuse")),
            "forecasts: what a missing period or a NULL target becomes (reported in the "
            "notes): 0, a straight line between its neighbours, the last value, or an error",
            _FC),
    Setting("method", "auto", Choice(FORECAST_METHODS, auto=True), "forecasts: the method; "
            "'auto' keeps the best candidate by rolling-origin backtest", _FC,
            example="seasonal_naive"),
    Setting("covariates", None, ANY, "forecasts: numeric columns known in advance "
            "(prices, holidays), whose future values settings future gives", _FC,
            example=["price"]),
    Setting("future", None, QUERY, "forecasts: a table or query of the covariates' values "
            "for every series and period of the horizon", _FC, example="future_prices"),
)
SETTING = {s.name: s for s in SETTINGS}


def settings_for(scope: str) -> tuple[Setting, ...]:
    return tuple(s for s in SETTINGS if scope in s.scopes)


def defaults(scope: str) -> dict[str, Any]:
    """``{setting: default}`` for one kind of model, in declaration order."""
    return {s.name: s.default for s in settings_for(scope)}


# -- the validator ------------------------------------------------------------------------------
def check(option: Param | Setting, value: Any, *, caller: str = FN,
          error: type[Exception] = TrainingError) -> Any:
    """``value`` checked against ``option``'s rule; text choices come back lower-cased.

    None (and false, for an optional choice such as calibrate) means "left out" where the
    default is None. Raises ``error`` naming the option, the rule, the value and the remedy."""
    rule = option.rule
    if value is None or (value is False and isinstance(rule, Choice) and option.default is None):
        if isinstance(option, Setting) or not option.required:
            return option.default
    if isinstance(rule, Choice):
        if rule.ok(value):
            return value.lower()
        names = (*(("auto",) if rule.auto else ()), *rule.values)
        hint = did_you_mean(value, names) if isinstance(value, str) else ""
        more = f", e.g. {option.remedy[len('Use e.g. '):-1]}" if isinstance(option, Setting) \
            else ""
        raise error(f"{caller}: {option.subject} {value!r} is unknown.{hint} Use "
                    f"{rule.text}{more}.")
    if not rule.ok(value):
        gloss = f" ({option.gloss})" if option.gloss else ""
        raise error(f"{caller}: {option.subject}{gloss} must be {rule.text}, got {value!r}. "
                    f"{option.remedy}")
    return value


def check_settings(given: Mapping[str, Any], scope: str = SUPERVISED, *, caller: str = FN,
                   error: type[Exception] = TrainingError) -> dict[str, Any]:
    """Every setting of ``scope``: the given ones checked, the others at their defaults."""
    known = settings_for(scope)
    names = [s.name for s in known]
    unknown = [k for k in given if k not in names]
    if unknown:
        where = "" if scope == SUPERVISED else f" for {scope} models"
        raise error(f"{caller}: setting {unknown[0]!r} is unknown{where}."
                    f"{did_you_mean(unknown[0], names)} Known settings: {', '.join(names)}.")
    return {s.name: check(s, given.get(s.name), caller=caller, error=error) for s in known}


def check_choice(what: str, value: str, choices: Iterable[str], *, auto: bool = False,
                 about: str = "", caller: str = FN) -> str:
    """``value`` if it is one of ``choices``, else the "is unknown. Did you mean" error;
    ``about`` follows the value (e.g. "for column 'plan'")."""
    choices = tuple(choices)
    if value in choices or (auto and value == "auto"):
        return value
    about = f" {about}" if about else ""
    hint = did_you_mean(value, choices) if isinstance(value, str) else ""
    raise TrainingError(f"{caller}: {what} {value!r}{about} is unknown.{hint} "
                        f"Use {Choice(choices, auto=auto).text}.")


def bind(args: list | tuple) -> dict[str, Any]:
    """The positional arguments of ``__sqlml_py_create_model``, by parameter name."""
    if len(args) != len(PARAMS):
        raise TrainingError(f"{FN}: expected {len(PARAMS)} arguments "
                            f"({', '.join(PARAM_NAMES)}), got {len(args)}.")
    return dict(zip(PARAM_NAMES, args, strict=True))


def sql_literal(value: Any) -> str:
    """A value as SQL: NULL, true, 'text', 3, {key: value}."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


# -- what is derived from the spec ---------------------------------------------------------------
UDF = "__sqlml_py_create_model"


def _quoted(name: str) -> str:
    return f'"{name}"' if name == "function" else name   # a keyword in DuckDB's grammar


def create_model_macro() -> str:
    """The ``CREATE MACRO ml_create_model`` statement: named parameters and defaults from
    ``PARAMS``, passed on positionally to the Python UDF."""
    heads = [_quoted(p.name) if p.required else f"{_quoted(p.name)} := {sql_literal(p.default)}"
             for p in PARAMS]
    args = ", ".join(_quoted(p.name) for p in PARAMS)
    # Through the Python-only stand-in (sqlml/catalog/generated.py): a plain client is told
    # that training needs sqlml, a sqlml session reaches the UDF.
    return (f"CREATE OR REPLACE MACRO ml_create_model({', '.join(heads)}) AS\n"
            f"    __sqlml_call_create_model({args});\n")


def _rule_text(rule: Rule) -> str:
    if isinstance(rule, Choice):
        return ("`auto` or " if rule.auto else "") + ", ".join(f"`{v}`" for v in rule.values)
    return rule.text


def _default_text(value: Any) -> str:
    return "required" if value is REQUIRED else f"`{sql_literal(value)}`"


def _table(head: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return out + ["| " + " | ".join(r).replace("\n", " ") + " |" for r in rows]


def option_tables_markdown() -> str:
    """The option tables (parameters, settings, problem and model types, objectives,
    preprocessors) as Markdown, for the docs pages."""
    kinds = {"binary": "binary", "classification": "binary, multiclass",
             "regression": "regression"}
    parts = [
        "### Parameters of `ml_create_model`", "",
        *_table(("parameter", "type", "default", "accepts", "meaning"),
                ((f"`{p.name}`", p.sql_type, _default_text(p.default), _rule_text(p.rule), p.doc)
                 for p in PARAMS)), "",
        "### Settings (`settings := {...}`)", "",
        *_table(("setting", "models", "default", "accepts", "meaning"),
                ((f"`{s.name}`", ", ".join(s.scopes), _default_text(s.default),
                  _rule_text(s.rule), s.doc) for s in SETTINGS)), "",
        "### Problem types", "",
        *_table(("problem_type", "meaning"), ((f"`{p.name}`", p.doc)
                                               for p in PROBLEM_TYPE_SPECS)), "",
        "### Model types", "",
        *_table(("model_type", "problem types", "meaning"),
                ((f"`{m.name}`", ", ".join(m.problem_types), m.doc)
                 for m in MODEL_TYPE_SPECS)), "",
        "### Objectives", "",
        *_table(("objective", "problem types", "meaning"),
                ((f"`{o.name}`", kinds[o.applies], o.doc) for o in OBJECTIVE_SPECS)), "",
        "### Preprocessors (`preprocessors := {column: choice}`)", "",
        *_table(("preprocessor", "feature kind", "meaning"),
                ((f"`{p.name}`", p.kind or "-", p.doc) for p in PREPROCESSOR_SPECS)),
    ]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(option_tables_markdown(), end="")
