"""Preprocessing inferred from DuckDB column types, stored inside the model's pipeline.

Every input reaches the pipeline through :func:`to_frame`, at training and at prediction time
alike, so a column is always seen in one representation: numbers and booleans as float64 with NaN
for NULL, dates as datetime64, categories and text as object arrays with NaN for NULL.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

from sqlml import spec
from sqlml.catalog import generated
from sqlml.catalog.artifacts import register_type
from sqlml.errors import PredictionInputError, TrainingError, did_you_mean

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
INTEGER_TYPES = NUMERIC_TYPES[:10]
DATE_TYPES = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS",
              "TIMESTAMP_NS")
TEXT_TYPES = ("VARCHAR", "ENUM", "UUID")

# Per-column overrides a user may name in preprocessors := {column: choice}, from sqlml.spec.
PREPROCESSORS = spec.PREPROCESSORS
KIND_OF = {p.name: p.kind for p in spec.PREPROCESSOR_SPECS if p.kind is not None}

MAX_ONE_HOT = 50           # more distinct values than this: grouped as infrequent
TEXT_MIN_WORDS = 3.0       # average words per value above which a high-cardinality column is text


@dataclass(frozen=True)
class Feature:
    name: str
    type: str          # DuckDB type at training
    kind: str          # numeric | boolean | date | categorical | text
    preprocessor: str  # one of PREPROCESSORS

    def to_dict(self) -> dict:
        return asdict(self)


def base_type(duckdb_type: str) -> str:
    t = duckdb_type.upper()
    if t.startswith("DECIMAL"):
        return "DECIMAL"
    if t.startswith("ENUM"):
        return "ENUM"
    return t


def infer_features(frame: pd.DataFrame, types: dict[str, str], overrides: dict[str, str],
                   scale: bool) -> tuple[list[Feature], list[dict]]:
    """Choose a preprocessor per column from its DuckDB type and its values."""
    unknown = [c for c in overrides if c not in types]
    if unknown:
        raise TrainingError(
            f"ml_create_model: preprocessors names column {unknown[0]!r}, which is not in the "
            f"training query.{did_you_mean(unknown[0], types)} Name one of: {', '.join(types)}.")
    features, excluded = [], []
    n = len(frame)
    for name, duck in types.items():
        t = base_type(duck)
        choice = overrides.get(name)
        if choice is not None:
            spec.check_choice("preprocessor", choice, PREPROCESSORS, about=f"for column {name!r}")
        if choice == "drop":
            excluded.append({"name": name, "reason": "dropped by preprocessors"})
            continue
        if not choice and not supported(duck):
            excluded.append({"name": name, "reason": f"type {duck} is not supported"})
            continue
        col = frame[name]
        nonnull = col.dropna()
        if nonnull.empty:
            # pandas counts NaN as missing too, and an all-NaN column is as useless.
            excluded.append({"name": name, "reason": "every value is NULL or NaN"
                             if t in ("FLOAT", "DOUBLE") else "every value is NULL"})
            continue
        if choice:
            features.append(Feature(name, duck, KIND_OF[choice], choice))
            continue
        if t in NUMERIC_TYPES or t == "BOOLEAN":
            # Only integers can be identifiers; counting distinct floats would cost a hash pass.
            if t in INTEGER_TYPES and n > 20 and nonnull.nunique() == n:
                excluded.append({"name": name, "reason": "identifier-like: unique per row"})
                continue
            kind = "boolean" if t == "BOOLEAN" else "numeric"
            features.append(Feature(name, duck, kind, "standard" if scale else "numeric"))
        elif t in DATE_TYPES:
            features.append(Feature(name, duck, "date", "date"))
        else:   # text: supported() leaves no other type
            distinct = nonnull.nunique()
            words = nonnull.astype(str).str.count(r"\S+").mean()
            if distinct == n and n > 20 and words < TEXT_MIN_WORDS:
                excluded.append({"name": name, "reason": "identifier-like: unique per row"})
            elif distinct > MAX_ONE_HOT and words >= TEXT_MIN_WORDS:
                features.append(Feature(name, duck, "text", "tfidf"))
            else:
                features.append(Feature(name, duck, "categorical", "one_hot"))
    if not features:
        left = ("after excluding " + ", ".join(f"{e['name']} ({e['reason']})" for e in excluded)
                if excluded else "(the training data has no column besides the target)")
        raise TrainingError(
            f"ml_create_model: no usable feature columns remain {left}. Select at least one "
            f"numeric, boolean, date or text column besides the target.")
    return features, excluded


def supported(duckdb_type: str) -> bool:
    """Whether sqlml infers a preprocessor for a column of this DuckDB type; others (LIST,
    STRUCT, MAP, UNION, BLOB, INTERVAL, TIME, ...) are left out, and never read from Arrow."""
    t = base_type(duckdb_type)
    return t in NUMERIC_TYPES or t in DATE_TYPES or t in TEXT_TYPES or t == "BOOLEAN"


@register_type
class DateParts(TransformerMixin, BaseEstimator):
    """Splits dates and timestamps into numeric parts a model can use."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        cols = []
        for j in range(X.shape[1]):
            raw = np.asarray(X)[:, j]
            d = pd.DatetimeIndex(pd.to_datetime(raw))
            if raw.dtype.kind == "M" and np.datetime_data(raw.dtype)[0] in ("ms", "us"):
                # pandas 2 holds these in nanoseconds, whose counts a double cannot hold
                # exactly; in the column's own unit the quotient is the compiled SQL's.
                d = d.as_unit("us")
            # numpy divides in the index's unit; pandas 2's Timedelta would use nanoseconds
            days = (d - pd.Timestamp("1970-01-01")).to_numpy() / np.timedelta64(1, "D")
            cols += [d.year, d.month, d.day, d.day_of_week, d.day_of_year, d.hour, np.asarray(days)]
        return np.column_stack([np.asarray(c, dtype=float) for c in cols])


_TAG = re.compile(r"<[^>]+>")


@register_type
class TextCleaner(TransformerMixin, BaseEstimator):
    """Lowercases free text and strips HTML tags, leaving words for TF-IDF."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        s = pd.Series(np.asarray(X, dtype=object).ravel()).fillna("").astype(str)
        return s.str.replace(_TAG, " ", regex=True).str.lower().to_numpy()


def build_transformer(features: list[Feature], dense: bool) -> ColumnTransformer:
    # (name, transformer, columns): a text column is named alone, not in a list, so that its
    # pipeline receives the 1-D array of strings TfidfVectorizer takes.
    parts: list[tuple[str, Pipeline, str | list[str]]] = []
    for f in features:
        if f.kind in ("numeric", "boolean"):
            steps = [("impute", SimpleImputer(strategy="median", add_indicator=True))]
            if f.preprocessor == "standard":
                steps.append(("scale", StandardScaler()))
            elif f.preprocessor == "minmax":
                steps.append(("scale", MinMaxScaler()))
            parts.append((f.name, Pipeline(steps), [f.name]))
        elif f.kind == "date":
            steps = [("parts", DateParts()),
                     ("impute", SimpleImputer(strategy="median", add_indicator=True)),
                     ("scale", StandardScaler())]
            parts.append((f.name, Pipeline(steps), [f.name]))
        elif f.kind == "categorical":
            impute = SimpleImputer(strategy="constant", fill_value="(missing)")
            if f.preprocessor == "ordinal":
                enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
            else:
                enc = OneHotEncoder(handle_unknown="infrequent_if_exist",
                                    max_categories=MAX_ONE_HOT, sparse_output=not dense)
            parts.append((f.name, Pipeline([("impute", impute), ("encode", enc)]), [f.name]))
        else:
            tfidf = TfidfVectorizer(
                lowercase=False, ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                max_features=300 if dense else 50_000,
                stop_words="english" if f.preprocessor == "tfidf_stop_words" else None)
            if not dense:
                # Character n-grams inside word boundaries catch what word tokens miss:
                # misspelt and obfuscated words, digits, currency signs and punctuation runs.
                chars = TfidfVectorizer(lowercase=False, analyzer="char_wb", ngram_range=(1, 4),
                                        min_df=2, sublinear_tf=True, max_features=50_000)
                tfidf = FeatureUnion([("words", tfidf), ("chars", chars)])
            parts.append((f.name, Pipeline([("clean", TextCleaner()), ("tfidf", tfidf)]), f.name))
    return ColumnTransformer(parts, sparse_threshold=0.0 if dense else 0.3)


def prepare_for_storage(pipeline) -> None:
    """TF-IDF vocabularies with plain int columns. With max_features, scikit-learn maps terms to
    numpy integers, which skops writes as one array file per term: a 40,000-term vocabulary took
    50 MB and 20 s to store, against 10 MB and under a second with ints."""
    prep = getattr(pipeline, "named_steps", {}).get("prep")
    for _, trans, _ in getattr(prep, "transformers_", ()):
        for _, step in getattr(trans, "steps", ()):
            for vec in [t for _, t in getattr(step, "transformer_list", ())] or [step]:
                vocab = getattr(vec, "vocabulary_", None)
                if isinstance(vocab, dict):
                    vec.vocabulary_ = {k: int(v) for k, v in vocab.items()}


def to_frame(columns: list, features: list[Feature], fn: str) -> pd.DataFrame:
    """Arrow columns (one per feature, in training order) to the frame the pipeline expects."""
    data = {}
    for f, col in zip(features, columns, strict=True):
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        data[f.name] = _convert(col, f, fn)
    return pd.DataFrame(data, copy=False)


def _convert(col: pa.Array, f: Feature, fn: str):
    t = col.type
    if f.kind in ("numeric", "boolean"):
        if pa.types.is_floating(t):
            return col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        if pa.types.is_integer(t):
            # Rounded to the nearest double beyond 2^53, as DuckDB's CAST(... AS DOUBLE) does;
            # pyarrow's default safe cast refuses such values (hashes, 64-bit ids).
            return pc.cast(col, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        if pa.types.is_boolean(t) or pa.types.is_decimal(t) \
                or pa.types.is_null(t):
            return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        try:
            return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad = _first_bad_number(col)
            raise PredictionInputError(
                f"{fn}: feature {f.name!r} must be numeric ({f.type} at training), got {t} value "
                f"{bad!r}. Pass a number, or NULL to use the stored imputer.") from None
    if f.kind == "date":
        if pa.types.is_null(t):
            return np.full(len(col), np.datetime64("NaT", "us"))
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            try:
                col = pc.cast(col, pa.timestamp("us"))
            except pa.ArrowInvalid:
                raise PredictionInputError(
                    f"{fn}: feature {f.name!r} must be a date or timestamp ({f.type} at training),"
                    f" got text that is not a date. Pass a DATE/TIMESTAMP or an ISO date string."
                ) from None
        elif not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
            # pandas would read a number as nanoseconds since 1970: a silent wrong answer.
            raise PredictionInputError(
                f"{fn}: feature {f.name!r} must be a date or timestamp ({f.type} at training), "
                f"got {t} value {_first_value(col)!r}. Pass a DATE/TIMESTAMP or an ISO date "
                f"string, or NULL to use the stored imputer.")
        if pa.types.is_timestamp(col.type) and col.type.tz is not None:
            # TIMESTAMPTZ: its UTC time, whatever the session's TimeZone setting.
            col = col.cast(pa.timestamp(col.type.unit))
        return pd.to_datetime(col.to_pandas()).to_numpy()
    # categorical and text: object array of str with NaN for NULL
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        try:
            col = pc.cast(col, pa.string()) if not pa.types.is_dictionary(t) else \
                pc.cast(col.dictionary_decode(), pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise PredictionInputError(
                f"{fn}: feature {f.name!r} must be text or a category ({f.type} at training), "
                f"got {t} value {_first_value(col)!r}. Pass a value of the training type, or "
                f"NULL for the missing category.") from None
    out = np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
    out[pd.isna(out)] = np.nan
    return out


def refuse_infinite(frame: pd.DataFrame, features: list[Feature], fn: str) -> None:
    """Training rows with an infinite number: every estimator would refuse them with a message
    naming no column, so name it here (at prediction time infinity is served as given)."""
    for f in features:
        if f.kind in ("numeric", "boolean"):
            x = frame[f.name].to_numpy()
            inf = np.isinf(x)
            if inf.any():
                c = f.name if generated.IDENTIFIER.match(f.name) else generated.quote(f.name)
                raise TrainingError(
                    f"{fn}: column {f.name!r} holds {int(inf.sum())} infinite value(s) (first: "
                    f"{float(x[inf][0])}), which no model can learn from. Replace them in the "
                    f"training query, e.g. CASE WHEN isinf({c}) THEN NULL ELSE {c} END AS {c} "
                    f"(NULL is imputed), or leave the column out.")


def _first_value(col: pa.Array):
    return next((v for v in col.to_pylist() if v is not None), None)


def _first_bad_number(col: pa.Array):
    for v in col.to_pylist():
        if v is None:
            continue
        try:
            float(v)
        except (TypeError, ValueError):
            return v
    return None
