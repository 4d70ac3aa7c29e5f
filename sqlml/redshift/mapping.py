"""Redshift ML's words mapped onto sqlml's: model types, problem types, objectives, settings,
XGBoost hyperparameters and PREPROCESSORS JSON. The README lists the same tables.

sqlml's own names and setting types are read from ``sqlml.spec``, so parsing a statement loads
no training code; only naming hyperparameters reads the estimators' signatures.
"""

from __future__ import annotations

import inspect
import json

from sqlml import spec
from sqlml.errors import closest

IGNORED_NOTICE = ("{what} is accepted for Redshift compatibility and ignored: sqlml trains "
                  "inside this DuckDB process, with no AWS account or S3 bucket.")


class MappingError(Exception):
    """A value the grammar accepts in form but not in meaning; the parser adds the position."""

    def __init__(self, expected: str, hint: str = "", got: str | None = None,
                 at_value: bool = True):
        super().__init__(expected)
        self.expected, self.hint, self.got, self.at_value = expected, hint, got, at_value


def _hint(word: str, choices) -> str:
    hits = closest(word, choices, n=1)
    return f" Did you mean {' or '.join(hits)}?" if hits else ""


# -- MODEL_TYPE, PROBLEM_TYPE, OBJECTIVE ---------------------------------------------------------
MODEL_TYPES = {"XGBOOST": "gradient_boosting", "MLP": "mlp", "LINEAR_LEARNER": "linear",
               **{m.upper(): m for m in (*spec.MODEL_TYPES, "auto")}}
UNSUPPORTED_MODEL_TYPES = {
    "KMEANS": "k-means clustering is not available: sqlml trains supervised models (and "
              "recommenders with PROBLEM_TYPE RECOMMENDATION)",
}


def model_type(word: str) -> str:
    u = word.upper()
    if u in UNSUPPORTED_MODEL_TYPES:
        raise MappingError("a supported model type", f" MODEL_TYPE {u}: "
                           f"{UNSUPPORTED_MODEL_TYPES[u]}. Use one of: {', '.join(MODEL_TYPES)}.")
    if u not in MODEL_TYPES:
        raise MappingError(f"a model type ({', '.join(MODEL_TYPES)})", _hint(u, MODEL_TYPES))
    return MODEL_TYPES[u]


PROBLEM_TYPES = {p.upper(): p for p in (*spec.PROBLEM_TYPES, "auto")}


def problem_type(word: str) -> str:
    u = word.upper()
    if u not in PROBLEM_TYPES:
        raise MappingError(f"a problem type ({', '.join(PROBLEM_TYPES)})",
                           _hint(u, PROBLEM_TYPES))
    return PROBLEM_TYPES[u]


# Redshift's objective names (AUTO ON), then XGBoost's (AUTO OFF), to sqlml's. XGBoost's are
# training losses; the sqlml objective scores models with the same loss or the metric it serves.
# MODEL_TYPE FORECAST's objectives (Amazon Forecast's accuracy metrics): accepted there with a
# notice, since AUTO chooses a forecast method by its own rule (scaled pinball loss).
FORECAST_OBJECTIVES = ("AverageWeightedQuantileLoss", "WAPE", "RMSE", "MASE", "MAPE")
FORECAST_PREFIX = "forecast:"
FORECAST_OBJECTIVE_NOTICE = (
    "OBJECTIVE {name!r} is accepted for Redshift compatibility and ignored: sqlml's AUTO chooses "
    "a forecast method by the scaled pinball loss over its backtest (Amazon Forecast's "
    "weighted quantile loss, scaled per series); MASE, sMAPE, RMSSE and the pinball loss per "
    "quantile are in ml_model_metrics.")
OBJECTIVES = {"mse": "rmse", "accuracy": "accuracy", "f1": "f1", "f1macro": "f1_macro",
              "f1_macro": "f1_macro", "auc": "auc", "reg:squarederror": "rmse",
              "binary:logistic": "log_loss", "multi:softmax": "log_loss",
              "multi:softprob": "log_loss",
              **{o.lower(): FORECAST_PREFIX + o for o in FORECAST_OBJECTIVES if o != "RMSE"},
              **{o: o for o in spec.OBJECTIVES}}


def objective(text: str) -> str:
    low = text.lower()
    if low not in OBJECTIVES:
        raise MappingError(
            "an objective such as 'AUC', 'F1', 'Accuracy', 'MSE' or sqlml's "
            + ", ".join(repr(o) for o in spec.OBJECTIVES), _hint(low, OBJECTIVES))
    return OBJECTIVES[low]


# -- SETTINGS -----------------------------------------------------------------------------------
CLOUD_SETTINGS = {"s3_bucket": str, "kms_key_id": str, "s3_garbage_collect": bool, "tags": str}
_INT, _NUM, _BOOL, _STR = "an integer", "a number", "ON/OFF or TRUE/FALSE", "a string"
_WORDS = {"integer": _INT, "number": _NUM, "boolean": _BOOL, "text": _STR}
# fn_cost, fp_cost and min_recall are ml_create_model arguments of their own; SETTINGS is the
# only place the statement has for them.
_COSTS = tuple(spec.PARAM[k] for k in ("fn_cost", "fp_cost", "min_recall"))
SETTINGS = (*(s.name for s in spec.SETTINGS), *(p.name for p in _COSTS))
_TYPED: tuple[spec.Setting | spec.Param, ...] = (*spec.SETTINGS, *_COSTS)
SETTING_TYPES = {o.name: _WORDS[o.rule.kind] for o in _TYPED if o.rule.kind in _WORDS}


def _is(kind: str, value) -> bool:
    if value is None:
        return True
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _NUM:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == _BOOL:
        return isinstance(value, bool)
    return isinstance(value, str)


# MODEL_TYPE FORECAST's settings (Amazon Forecast's words): FREQUENCY's letters, and
# PERCENTILES, the quantiles as one comma-separated string.
FREQUENCIES = {"Y": "year", "M": "month", "W": "week", "D": "day", "H": "hour"}
SUB_HOURLY = ("30min", "15min", "10min", "5min", "1min")


def frequency(value) -> str:
    text = str(value)
    if text.upper() in FREQUENCIES:
        return FREQUENCIES[text.upper()]
    if text.lower() in (*spec.FREQUENCIES, "auto"):
        return text.lower()
    why = (" sqlml forecasts hourly and coarser periods; aggregate the rows to hours in the "
           "query (date_trunc('hour', t)) and use FREQUENCY 'H'." if text.lower() in SUB_HOURLY
           else "")
    raise MappingError("a frequency: 'Y', 'M', 'W', 'D' or 'H' (or sqlml's "
                       + ", ".join(spec.FREQUENCIES) + ")", why or _hint(text, FREQUENCIES))


def percentiles(value) -> list[float]:
    parts = [p.strip() for p in str(value).split(",")]
    if any(p.lower() == "mean" for p in parts):
        raise MappingError("percentiles between 0 and 1, e.g. '0.1,0.5,0.9'", " sqlml forecasts "
                           "quantiles, not Amazon Forecast's mean: use 0.5 for the median.")
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise MappingError("percentiles as one string of numbers between 0 and 1 separated by "
                           "commas, e.g. PERCENTILES '0.1,0.5,0.9'") from None


def setting(key: str, value) -> tuple[object, str | None]:
    """(value for sqlml, None) or (None, notice) for a cloud-only setting."""
    if key == "frequency":
        return frequency(value), None
    if key == "percentiles":
        return percentiles(value), None
    if key in CLOUD_SETTINGS:
        kind = _BOOL if CLOUD_SETTINGS[key] is bool else _STR
        if not _is(kind, value):
            raise MappingError(f"{kind} for {key.upper()}")
        return None, IGNORED_NOTICE.format(what=f"SETTINGS {key.upper()}")
    if key not in SETTINGS:
        raise MappingError(
            "a setting name: Redshift's " + ", ".join(k.upper() for k in (
                "max_runtime", "max_cells", *CLOUD_SETTINGS)) + " or sqlml's "
            + ", ".join(s for s in SETTINGS if s not in ("max_runtime", "max_cells")),
            _hint(key, (*SETTINGS, *CLOUD_SETTINGS, "percentiles")), at_value=False)
    wanted = SETTING_TYPES.get(key)
    if wanted is not None and not _is(wanted, value):
        unit = " of seconds" if key == "max_runtime" else ""
        raise MappingError(f"{wanted}{unit} for {key.upper()}",
                           f" Write e.g. {key.upper()} {_example(wanted, key)}.")
    return value, None


def _example(kind: str, key: str) -> str:
    default = spec.SETTING[key].default if key in spec.SETTING else None
    if kind in (_INT, _NUM) and isinstance(default, int | float) and not isinstance(default, bool):
        return str(int(default) if float(default).is_integer() else default)
    return {_INT: "10", _NUM: "0.5", _BOOL: "ON", _STR: "'text'"}[kind]


# -- HYPERPARAMETERS DEFAULT EXCEPT (...) -------------------------------------------------------
# XGBoost's names (Redshift's AUTO OFF) to scikit-learn's HistGradientBoosting parameters with the
# same meaning. Integers where XGBoost takes integers.
XGBOOST = {"num_round": ("max_iter", int), "max_depth": ("max_depth", int),
           "eta": ("learning_rate", float), "lambda": ("l2_regularization", float),
           "max_leaves": ("max_leaf_nodes", int), "max_bin": ("max_bins", int),
           "colsample_bynode": ("max_features", float),
           "early_stopping_rounds": ("n_iter_no_change", int)}
# XGBoost parameters HistGradientBoosting has no counterpart for.
XGBOOST_NO_COUNTERPART = ("alpha", "gamma", "subsample", "min_child_weight", "colsample_bytree",
                          "colsample_bylevel", "scale_pos_weight", "max_delta_step",
                          "tree_method", "base_score", "eval_metric", "objective", "booster")


def _params_of(mt: str) -> list[str]:
    # Only here, when a statement names hyperparameters, are the estimators loaded.
    from sqlml.train import estimators

    m = estimators.MODEL_TYPES[mt]
    names: list[str] = []
    for cls in (m.classifier, m.regressor):
        if cls is not None:
            names += [p for p in inspect.signature(cls.__init__).parameters
                      if p != "self" and p not in names]
    return names


def _hyper_value(value):
    """Redshift quotes every hyperparameter value ('100'); numbers, booleans and sqlml's
    {"min": .., "max": ..} ranges come back to their own type."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value
    return value


def _xgboost_value(key: str, kind, value):
    expected = f"{'an integer' if kind is int else 'a number'} for {key.upper()}"
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not (is_int or isinstance(value, float)):
        raise MappingError(expected)
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise MappingError(expected)
    try:
        return kind(value)
    except OverflowError:   # a 400-digit integer has no float; inf has no int
        raise MappingError(expected, " The value is out of range.") from None


def hyperparameter(mt: str, key: str, quoted: bool, value):
    """(sklearn name or {name: value}, value, notice) for one EXCEPT entry of model type ``mt``."""
    value = _hyper_value(value)
    low = key.lower()
    params = _params_of(mt)
    if mt == "gradient_boosting" and not quoted:
        if low == "num_class":
            return None, None, ("HYPERPARAMETERS NUM_CLASS is ignored: sqlml counts the classes "
                                "of the target itself.")
        if low in XGBOOST:
            name, kind = XGBOOST[low]
            # A dict is one of sqlml's tuning ranges ({"min": .., "max": ..}): tuning checks it.
            if not isinstance(value, dict):
                value = _xgboost_value(key, kind, value)
            if low == "early_stopping_rounds":
                return {"early_stopping": True, name: value}, value, None
            return name, value, None
        if low in XGBOOST_NO_COUNTERPART:
            raise MappingError(
                "a hyperparameter HistGradientBoosting has",
                f" XGBoost's {key.upper()} has no counterpart in scikit-learn's "
                f"HistGradientBoosting, which sqlml trains for XGBOOST: leave it out. Mapped "
                f"XGBoost names: {', '.join(k.upper() for k in XGBOOST)}; any of "
                f"{', '.join(params)} also works.", at_value=False)
    if quoted:
        match = key if key in params else None
    else:
        lowered = {p.lower(): p for p in params}
        match = lowered.get(low)
    if match is None:
        choices = [*params, *(k.upper() for k in XGBOOST)] if mt == "gradient_boosting" \
            else params
        raise MappingError(f"a hyperparameter of model type {mt} ({', '.join(params)})",
                           _hint(key, choices), at_value=False)
    return match, value, None


# -- PREPROCESSORS ----------------------------------------------------------------------------
# Redshift transformer -> (sqlml preprocessor, rank). Within one ColumnSet the transformers form a
# chain (e.g. ["Imputer", "StandardScaler"]); the highest-ranked one decides, since sqlml always
# imputes numbers (median plus a missing-value indicator) before scaling.
TRANSFORMERS = {"NumericPassthrough": ("numeric", 0), "Imputer": ("numeric", 0),
                "ImputerWithIndicator": ("numeric", 0), "StandardScaler": ("standard", 1),
                "Normalizer": ("standard", 1), "MinMax": ("minmax", 1),
                "MinMaxScaler": ("minmax", 1), "OneHotEncoder": ("one_hot", 2),
                "OrdinalEncoder": ("ordinal", 2), "DateTimeVectorizer": ("date", 2)}
_TRANSFORMERS_LOWER = {k.lower(): k for k in TRANSFORMERS}
_FORMS = ("a JSON list such as '[{\"ColumnSet\": [\"plan\"], \"Transformers\": "
          "[\"OneHotEncoder\"]}]', sqlml's JSON object such as '{\"plan\": \"one_hot\"}', "
          "or 'none'")


def preprocessors(text: str) -> tuple[dict, list[str]]:
    """sqlml's {column: preprocessor} from Redshift's JSON list or sqlml's own JSON object."""
    if text.strip().lower() in ("none", ""):
        return {}, ["PREPROCESSORS 'none': sqlml still imputes, encodes and scales columns by "
                    "their DuckDB types, since its models need numbers without NULLs."]
    try:
        given = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MappingError(_FORMS, f" The text is not JSON: {exc.msg} at character "
                           f"{exc.pos + 1}.", got="text that is not JSON") from None
    if isinstance(given, dict):
        for col, choice in given.items():
            if choice not in spec.PREPROCESSORS:
                raise MappingError(
                    f"one of {', '.join(spec.PREPROCESSORS)} for column {col!r}",
                    _hint(str(choice), spec.PREPROCESSORS), got=repr(choice))
        return given, []
    if not isinstance(given, list):
        raise MappingError(_FORMS, got=f"JSON {type(given).__name__}")
    out: dict[str, str] = {}
    for i, entry in enumerate(given, start=1):
        if not isinstance(entry, dict) or set(entry) != {"ColumnSet", "Transformers"}:
            raise MappingError(
                'entries of the form {"ColumnSet": [...], "Transformers": [...]}',
                got=f"entry {i}: {json.dumps(entry)[:80]}")
        cols, chain = entry["ColumnSet"], entry["Transformers"]
        if (not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols)
                or not isinstance(chain, list) or not chain
                or not all(isinstance(t, str) for t in chain)):
            raise MappingError("a non-empty list of column names in ColumnSet and of "
                               "transformer names in Transformers",
                               got=f"entry {i}: {json.dumps(entry)[:80]}")
        best = None
        for name in chain:
            canon = _TRANSFORMERS_LOWER.get(name.lower())
            if canon is None:
                hint = (" PCA is not available in sqlml." if name.upper() == "PCA"
                        else _hint(name, TRANSFORMERS))
                raise MappingError(f"a transformer ({', '.join(TRANSFORMERS)})", hint,
                                   got=repr(name))
            choice, rank = TRANSFORMERS[canon]
            if best is not None and rank == best[1] and rank > 0 and choice != best[0]:
                raise MappingError(
                    "one encoder or one scaler per ColumnSet",
                    f" Entry {i} asks for both {best[2]} and {canon}; keep one.",
                    got=f"{best[2]} and {canon}")
            if best is None or rank > best[1]:
                best = (choice, rank, canon)
        assert best is not None  # chain is a non-empty list of known transformers
        for col in cols:
            if col in out and out[col] != best[0]:
                raise MappingError("each column in one ColumnSet",
                                   f" Column {col!r} is given {out[col]} and {best[0]}.",
                                   got=f"column {col!r} twice")
            out[col] = best[0]
    return out, []
