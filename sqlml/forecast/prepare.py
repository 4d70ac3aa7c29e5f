"""From a training query to the regular panel the forecasting engine reads.

``ml_create_model(..., problem_type := 'forecast')`` reads the rows, checks them, and hands
``sqlml.forecast.engine.fit_forecast`` one row per series and period, with no gap and no
duplicate. Every check here names the column, the series or the period it is about, the rule,
and the remedy. The rules (``docs/forecasting.md``):

- the time column is a DATE, TIMESTAMP or TIMESTAMPTZ (read as wall time in settings
  time_zone, so that days and months follow its calendar across daylight saving), or text with a
  ``time_format``;
- the frequency is inferred from the most common step between a series' periods (hour, day,
  week, month, quarter, year), or given; a step that is not a whole number of periods is an
  irregular timestamp, refused with an example;
- a missing period, or a NULL target, is filled by ``fill`` (0 by default, as Amazon Forecast
  fills the middle of a series) and counted in the notes; rows of one series and period are
  summed (``duplicates: 'aggregate'``) or refused;
- a series needs at least ``MIN_POINTS`` (5) observed periods.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import duckdb
import pandas as pd

from sqlml import spec
from sqlml.catalog import sources
from sqlml.catalog.generated import quote
from sqlml.errors import TrainingError, did_you_mean
from sqlml.forecast import checks

FN = "ml_create_model"
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "UTINYINT",
           "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")
TIMESTAMPS = ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP_US",
              "DATETIME")
TZ = ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")
MIN_POINTS = checks.MIN_POINTS     # observed periods per series, the engine's minimum


@dataclass(frozen=True)
class Settings:
    time_col: str | None      # None: the data's one DATE, TIMESTAMP or TIMESTAMPTZ column
    series_cols: list[str]
    horizon: int
    quantiles: list[float]
    frequency: str
    time_format: str | None
    time_zone: str
    duplicates: str
    fill: str
    method: str
    covariates: list[str]
    future: str | None
    max_runtime: float
    random_state: int

    @property
    def time(self) -> str:
        """The time column, once :func:`resolve` has found it."""
        assert self.time_col is not None
        return self.time_col

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _names(value, key: str) -> list[str]:
    """A column name or a list of them; '*' (series_cols) stands for every other column."""
    if value is None:
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise TrainingError(
            f"{FN}: setting {key} must be a column name or a list of column names, got "
            f"{value!r}. Use e.g. settings := {{{key}: ['store', 'dept']}}.")
    if len(set(values)) != len(values):
        raise TrainingError(f"{FN}: setting {key} names a column twice: {values!r}. Name each "
                            f"column once.")
    return list(values)


def quantiles_of(value) -> list[float]:
    """The quantiles setting checked by the engine's rule: numbers in (0, 1), sorted, each
    once; 0.1, 0.5 and 0.9 when left out."""
    if value is None:
        return list(DEFAULT_QUANTILES)
    return list(checks.check_quantiles(value if isinstance(value, list) else [value]))


def settings_of(raw: dict) -> Settings:
    s = spec.check_settings(raw, spec.FORECAST)
    covariates = _names(s["covariates"], "covariates")
    if covariates and not s["future"]:
        raise TrainingError(
            f"{FN}: settings covariates {covariates!r} need their future values: pass settings "
            f"future naming a table or query with the series columns, the time column and "
            f"{', '.join(covariates)} for each of the {s['horizon']} periods after each "
            f"series' last one.")
    return Settings(
        time_col=s["time_col"], series_cols=_names(s["series_cols"], "series_cols"),
        horizon=s["horizon"], quantiles=quantiles_of(s["quantiles"]),
        frequency=s["frequency"], time_format=s["time_format"], time_zone=s["time_zone"],
        duplicates=s["duplicates"],
        fill=s["fill"], method=s["method"], covariates=covariates, future=s["future"],
        max_runtime=float(s["max_runtime"]), random_state=s["random_state"])


# -- reading the rows -----------------------------------------------------------------------------
@dataclass
class Columns:
    """The training data's columns and what each setting names."""
    types: dict[str, str]
    time_type: str           # the time column's DuckDB type as read
    output_type: str         # the type the generated function gives it back in
    target_type: str
    zone: str = "UTC"        # TIMESTAMPTZ: settings time_zone, in which periods are read


def _require(col: str, types: dict, what: str, where: str) -> None:
    if col not in types:
        raise TrainingError(
            f"{FN}: {what} {col!r} is not a column {where}."
            f"{did_you_mean(col, types)} Columns: {', '.join(types)}.")


def resolve(s: Settings, types: dict[str, str], target: str) -> Settings:
    """``s`` with the time column found when left out (the one date-like column) and
    ``series_cols: '*'`` expanded to every column that has no other role."""
    time_col = s.time_col
    if time_col is None:
        dated = [c for c, t in types.items() if t.upper() in ("DATE", *TIMESTAMPS, *TZ)]
        if len(dated) != 1:
            found = (f"it has {len(dated)}: {', '.join(dated)}" if dated else
                     f"none of its columns is a DATE, TIMESTAMP or TIMESTAMPTZ (columns: "
                     f"{', '.join(f'{c} {t}' for c, t in types.items())})")
            raise TrainingError(
                f"{FN}: a forecast needs a time column, and settings time_col names none while "
                f"the training data has no single date or timestamp column to take: {found}. "
                f"Pass e.g. settings := {{time_col: 'month'}} (with time_format for text "
                f"dates).")
        time_col = dated[0]
    series = s.series_cols
    if series == ["*"]:
        series = [c for c in types if c not in (target, time_col, *s.covariates)]
    return replace(s, time_col=time_col, series_cols=series)


def check_columns(rel, s: Settings, target: str | None, what: str = "training data"
                  ) -> Columns:
    """The columns checked; ``target`` None for the future covariates (settings future)."""
    types = {c: str(t) for c, t in zip(rel.columns, rel.types, strict=True)}
    where = f"of the {what}"
    assert s.time_col is not None   # resolve() found it
    if target is not None:
        _require(target, types, "target", where)
    _require(s.time_col, types, "time column (settings time_col)", where)
    for col in s.series_cols:
        _require(col, types, "series column (settings series_cols)", where)
    for col in s.covariates:
        _require(col, types, "covariate (settings covariates)", where)
        if not _numeric(types[col]):
            raise TrainingError(
                f"{FN}: covariate {col!r} must be numeric, got {types[col]}. Cast it in the "
                f"query (e.g. {col}::DOUBLE, or CASE WHEN ... THEN 1 ELSE 0 END for a flag).")
    roles = [c for c in (target, s.time_col, *s.series_cols, *s.covariates) if c is not None]
    twice = next((c for c in roles if roles.count(c) > 1), None)
    if twice is not None:
        raise TrainingError(f"{FN}: column {twice!r} has two roles (target, time column, series "
                            f"column or covariate); give each column one role.")
    if target is not None and not _numeric(types[target]):
        raise TrainingError(
            f"{FN}: the target {target!r} of a forecast must be numeric, got {types[target]}. "
            f"Cast it in the query, e.g. {target}::DOUBLE, or forecast a count of rows "
            f"(count(*) ... GROUP BY the time and series columns).")
    time_type, output = _time_types(rel, s, types[s.time_col])
    return Columns(types, time_type, output, types[target] if target else "")


def _numeric(t: str) -> bool:
    t = t.upper()
    return t in NUMERIC or t.startswith("DECIMAL")


def _time_types(rel, s: Settings, t: str) -> tuple[str, str]:
    u, col = t.upper(), s.time
    if u == "DATE":
        return u, "DATE"
    if u in TIMESTAMPS:
        return u, "TIMESTAMP"
    if u in TZ:
        return "TIMESTAMPTZ", "TIMESTAMPTZ"
    if u == "VARCHAR":
        first = rel.filter(f"{quote(col)} IS NOT NULL").limit(1).fetchall()
        value = first[0][0] if first else None
        if s.time_format is None:
            fits = _format_of(value)
            hint = f" {value!r} reads with time_format: {fits!r}." if fits else ""
            raise TrainingError(
                f"{FN}: time column {col!r} is text (first value {value!r}); a text date needs "
                f"settings time_format, the strptime format it is written in: for example "
                f"'1982 Apr' needs time_format: '%Y %b', '2024-03-01' '%Y-%m-%d'.{hint} Or cast "
                f"it in the query ({col}::DATE).")
        timed = any(d in s.time_format for d in ("%H", "%I", "%M", "%S", "%f", "%p"))
        return "VARCHAR", "TIMESTAMP" if timed else "DATE"
    raise TrainingError(
        f"{FN}: time column {col!r} must be a DATE, TIMESTAMP or TIMESTAMPTZ (or text with "
        f"settings time_format), got {t}. Convert it in the query, e.g. make_date({col}, 1, 1) "
        f"for a year number, or to_timestamp({col}) for seconds since 1970.")


# Formats tried on a text time column's first value to suggest one (strptime codes, which
# Python and DuckDB share).
FORMATS = ("%Y-%m-%d", "%Y-%m", "%Y %b", "%b %Y", "%Y %B", "%B %Y", "%Y/%m/%d", "%Y/%m",
           "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d", "%Y%m", "%Y-%m-%d %H:%M:%S",
           "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y")


def _format_of(value) -> str | None:
    for fmt in FORMATS:
        try:
            datetime.strptime(str(value), fmt)
        except ValueError:
            continue
        return fmt
    return None


def time_expression(col: str, kind: str, fmt: str | None, zone: str = "UTC") -> str:
    """SQL reading the time column as a naive TIMESTAMP (a TIMESTAMPTZ as wall time in
    ``zone``)."""
    c = quote(col)
    if kind == "TIMESTAMPTZ":
        return f"timezone({_literal(zone)}, {c})"
    if kind == "VARCHAR":
        return f"try_strptime({c}, {_literal(fmt or '')})"
    return f"{c}::TIMESTAMP"


def _literal(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def read_rows(cur, query: str, s: Settings, target: str | None, name: str,
              what: str = "training data", single: str | None = None
              ) -> tuple[pd.DataFrame, Columns, Settings]:
    """The rows as a frame: series columns as text (__s0, ...), __time, __y (when ``target``
    is given), the covariates, and __series, each row's series id; their columns; the
    settings with the time and series columns resolved (:func:`resolve`). ``single``: the id
    of a model of one series (its target's name), for the future rows, which have no target."""
    try:
        rel = sources.relation(cur, query, FN, what, TrainingError)
        if target is not None:
            s = resolve(s, {c: str(t) for c, t in zip(rel.columns, rel.types, strict=True)},
                        target)
        cols = check_columns(rel, s, target, what)
        if cols.time_type == "TIMESTAMPTZ":
            cols.zone = s.time_zone
        assert s.time_col is not None
        one = single or target or name
        series = [f"{quote(c)}::VARCHAR AS {quote('__s' + str(i))}"
                  for i, c in enumerate(s.series_cols)] + [f"{series_id(s, one)} AS __series"]
        when = time_expression(s.time_col, cols.time_type, s.time_format, cols.zone)
        select = ", ".join([*series, f"{when} AS __time",
                            f"{quote(s.time_col)} IS NULL AS __time_null",
                            f"{quote(s.time_col)}::VARCHAR AS __raw",
                            *([f"{quote(target)}::DOUBLE AS __y"] if target else []),
                            *(f"{quote(c)}::DOUBLE AS {quote(c)}" for c in s.covariates)])
        frame = cur.sql(f"SELECT {select} FROM ({query}) __src").df()
    except duckdb.Error as exc:
        raise TrainingError(f"{FN}: the {what} query for model {name!r} failed: {exc}. "
                            f"Query: {query}") from None
    if frame.empty and target is not None:
        raise TrainingError(f"{FN}: the training query for model {name!r} returned no rows. "
                            f"Query: {query}")
    _check_times(frame, s)
    frame = frame.drop(columns=["__time_null", "__raw"])
    frame["__time"] = pd.to_datetime(frame["__time"]).astype("datetime64[ns]")
    frame["__series"] = frame["__series"].to_numpy(dtype=object)
    return frame, cols, s


def series_id(s: Settings, single: str) -> str:
    """SQL of each row's series as text, 'store=1, dept=A'; ``single`` (the target's name) for
    a model of one series."""
    if not s.series_cols:
        return _literal(single)
    return " || ', ' || ".join(f"{_literal(c + '=')} || coalesce({quote(c)}::VARCHAR, 'NULL')"
                               for c in s.series_cols)


def _check_times(frame: pd.DataFrame, s: Settings) -> None:
    nulls = int(frame["__time_null"].sum())
    if nulls:
        raise TrainingError(
            f"{FN}: time column {s.time_col!r} has {nulls} NULL value(s); every row needs its "
            f"period. Filter them out (WHERE {s.time_col} IS NOT NULL).")
    unparsed = frame["__time"].isna()
    if unparsed.any():
        value = frame.loc[unparsed, "__raw"].iloc[0]
        raise TrainingError(
            f"{FN}: time column {s.time_col!r} has text that time_format {s.time_format!r} "
            f"does not read: {value!r} ({int(unparsed.sum())} value(s) in all). Fix the format "
            f"(strptime codes: %Y year, %m month number, %b month name, %d day) or the data.")



