"""Fuzzing the statement parser: random and mutated statements raise SqlSyntaxError or parse.

Parsing only, nothing runs. Every statement that parses compiles to SQL that DuckDB's own parser
accepts, so no input can smuggle broken quoting into the generated call.
"""

from __future__ import annotations

import json

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlml.errors import SqlSyntaxError
from sqlml.redshift.parser import parse, split, tokenize

KEYWORDS = ["CREATE", "MODEL", "FROM", "TARGET", "FUNCTION", "IAM_ROLE", "DEFAULT", "AUTO", "ON",
            "OFF", "MODEL_TYPE", "PROBLEM_TYPE", "OBJECTIVE", "PREPROCESSORS",
            "HYPERPARAMETERS", "EXCEPT", "SETTINGS", "SHOW", "ALL", "DROP", "IF", "EXISTS",
            "EXPLAIN_MODEL", "SELECT", "XGBOOST", "MLP", "LINEAR_LEARNER", "KMEANS", "logistic",
            "REGRESSION", "BINARY_CLASSIFICATION", "RECOMMENDATION", "NUM_ROUND", "ETA",
            "MAX_DEPTH", "NUM_CLASS", "C", "MAX_RUNTIME", "MAX_CELLS", "S3_BUCKET", "KMS_KEY_ID",
            "S3_GARBAGE_COLLECT", "max_trials", "test_size", "fn_cost", "TRUE", "NULL"]
IDENTIFIERS = ["m", "customers", "churned", "predict_m", '"Quoted Name"', '"a""b"', "s.t",
               "_x1", "Model"]
LITERALS = ["0", "-1", "1.5", ".25", "1e999", "9" * 400, "'" + "9" * 400 + "'", "'x'", "'it''s'",
            "'AUC'", "'MSE'", "'binary:logistic'", "'none'", "'[]'", "'{}'", "'{\"a\": 1}'",
            "'[{\"ColumnSet\": [\"a\"], \"Transformers\": [\"OneHotEncoder\"]}]'",
            "'[{\"ColumnSet\": [], \"Transformers\": [1]}]'", "'[1, {\"ColumnSet\": 2}]'",
            "'{\"a\": \"onehot\"}'", "'nan'", "'inf'", "'-0'", "$$x;y$$", "E'\\n'",
            "'\u00e9\u2603'"]
PUNCTUATION = ["(", ")", ",", ";", ".", "-", "*", "=", ":=", "::", "[", "]", "{", "}"]
SEPARATORS = [" ", "\n", "  ", "\t", " -- note;\n", " /* ; */ "]

VALID = [
    "CREATE MODEL m FROM customers TARGET churned FUNCTION predict_m",
    "CREATE MODEL m FROM (SELECT * FROM customers WHERE plan <> ';') TARGET churned "
    "FUNCTION predict_m IAM_ROLE default AUTO OFF MODEL_TYPE XGBOOST PROBLEM_TYPE "
    "BINARY_CLASSIFICATION OBJECTIVE 'AUC' "
    "PREPROCESSORS '[{\"ColumnSet\": [\"plan\"], \"Transformers\": [\"OneHotEncoder\"]}]' "
    "HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '50', ETA '0.1') "
    "SETTINGS (S3_BUCKET 'b', MAX_RUNTIME 30, MAX_CELLS 1000, test_size .25)",
    "CREATE MODEL \"M\" FROM \"T\" TARGET \"y\" FUNCTION \"f\" MODEL_TYPE logistic "
    "HYPERPARAMETERS DEFAULT EXCEPT (C 0.5) SETTINGS (fn_cost 3, max_trials 4)",
    "SHOW MODEL m",
    "SHOW MODEL ALL",
    "DROP MODEL m",
    "DROP MODEL IF EXISTS m",
    "EXPLAIN_MODEL(m)",
    "SELECT EXPLAIN_MODEL('m')",
]

token = st.sampled_from(KEYWORDS + IDENTIFIERS + LITERALS + PUNCTUATION)
separator = st.sampled_from(SEPARATORS)
FUZZ = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _check(text: str) -> None:
    """Parse ``text``: a SqlSyntaxError is fine, anything else raised fails the test."""
    try:
        statements = parse(text)
    except SqlSyntaxError as exc:
        assert exc.line >= 1 and exc.column >= 1 and exc.expected
        return
    for s in statements:
        if s.kind != "sql":
            tree = json.loads(duckdb.execute("SELECT json_serialize_sql(?)",
                                             [s.sql]).fetchall()[0][0])
            assert not tree.get("error"), (s.sql, tree)


@st.composite
def token_soup(draw):
    n = draw(st.integers(1, 30))
    parts = []
    for _ in range(n):
        parts += [draw(token), draw(separator)]
    return "".join(parts)


@st.composite
def grammar_led(draw):
    """A statement head followed by random tokens, so the parser goes deep into each clause."""
    create = "CREATE MODEL m FROM customers TARGET y FUNCTION f "
    head = draw(st.sampled_from([
        create, create + "MODEL_TYPE XGBOOST HYPERPARAMETERS DEFAULT EXCEPT (",
        create + "MODEL_TYPE logistic HYPERPARAMETERS DEFAULT EXCEPT (", create + "SETTINGS (",
        create + "PREPROCESSORS ", create + "OBJECTIVE ", create + "MODEL_TYPE ",
        create + "PROBLEM_TYPE ", create + "AUTO ", create + "IAM_ROLE ",
        "CREATE MODEL m FROM ", "SHOW MODEL ", "DROP MODEL ", "EXPLAIN_MODEL",
        "SELECT EXPLAIN_MODEL("]))
    return head + draw(token_soup())


HYPER_KEYS = ["NUM_ROUND", "ETA", "MAX_DEPTH", "LAMBDA", "MAX_LEAVES", "MAX_BIN",
              "COLSAMPLE_BYNODE", "EARLY_STOPPING_ROUNDS", "NUM_CLASS", "SUBSAMPLE", "C",
              "max_iter", "class_weight", '"C"', "learning_rate", "nope"]
SETTING_KEYS = ["MAX_RUNTIME", "MAX_CELLS", "S3_BUCKET", "KMS_KEY_ID", "S3_GARBAGE_COLLECT",
                "TAGS", "max_trials", "strategy", "test_size", "random_state", "fn_cost",
                "min_recall", "median_stopping", "user_col", "k", "nope"]
WORDS = ["XGBOOST", "MLP", "LINEAR_LEARNER", "KMEANS", "FORECAST", "logistic", "auto",
         "REGRESSION", "RECOMMENDATION", "ON", "OFF", "DEFAULT", "nope"]
value = st.sampled_from(LITERALS + WORDS)


@st.composite
def grammar_statement(draw):
    """A CREATE MODEL built from the grammar: clauses in random order, values drawn from odd
    literals and words, so the mapping tables see numbers, strings and JSON of every kind."""
    def pick(*good):
        # Half the time a value the clause accepts, so later clauses are reached too.
        return draw(st.sampled_from(good) | value)

    def pairs(keys):
        items = [f"{draw(st.sampled_from(keys))} {draw(value)}"
                 for _ in range(draw(st.integers(1, 4)))]
        return "(" + ", ".join(items) + ")"

    clauses = {
        "TARGET": "TARGET y", "FUNCTION": "FUNCTION f",
        "IAM_ROLE": "IAM_ROLE " + pick("default", "'arn'"),
        "AUTO": "AUTO " + pick("ON", "OFF"),
        "MODEL_TYPE": f"MODEL_TYPE {pick('XGBOOST', 'logistic', 'MLP')}",
        "PROBLEM_TYPE": f"PROBLEM_TYPE {pick('REGRESSION', 'RECOMMENDATION')}",
        "OBJECTIVE": "OBJECTIVE " + pick("'AUC'", "'MSE'"),
        "PREPROCESSORS": f"PREPROCESSORS {draw(value)}",
        "HYPERPARAMETERS": "HYPERPARAMETERS DEFAULT EXCEPT " + pairs(HYPER_KEYS),
        "SETTINGS": "SETTINGS " + pairs(SETTING_KEYS),
    }
    required = ["FUNCTION", "TARGET"] if draw(st.booleans()) else []
    chosen = required + draw(st.lists(st.sampled_from(sorted(set(clauses) - set(required))),
                                      unique=True, max_size=8))
    chosen = draw(st.permutations(chosen))
    return "CREATE MODEL m FROM customers " + " ".join(clauses[c] for c in chosen)


# Valid statements with one slot; the slot gets any literal, number or text.
SLOTS = [
    "CREATE MODEL m FROM t TARGET y FUNCTION f MODEL_TYPE XGBOOST "
    "HYPERPARAMETERS DEFAULT EXCEPT ({key} {v})",
    "CREATE MODEL m FROM t TARGET y FUNCTION f MODEL_TYPE logistic "
    "HYPERPARAMETERS DEFAULT EXCEPT ({key} {v})",
    "CREATE MODEL m FROM t TARGET y FUNCTION f SETTINGS ({setting} {v})",
    "CREATE MODEL m FROM t TARGET y FUNCTION f PREPROCESSORS {v}",
    "CREATE MODEL m FROM t TARGET y FUNCTION f OBJECTIVE {v}",
    "CREATE MODEL m FROM t TARGET y FUNCTION f MODEL_TYPE {v}",
    "CREATE MODEL m FROM t TARGET y FUNCTION f PROBLEM_TYPE {v}",
    "CREATE MODEL m FROM t TARGET y FUNCTION f IAM_ROLE {v}",
    "CREATE MODEL m FROM t TARGET y FUNCTION f AUTO {v}",
    "CREATE MODEL {v} FROM t TARGET y FUNCTION f",
    "CREATE MODEL m FROM {v} TARGET y FUNCTION f",
    "SHOW MODEL {v}", "DROP MODEL IF EXISTS {v}", "EXPLAIN_MODEL({v})",
]


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


any_value = st.one_of(
    value,
    st.integers(min_value=-(10 ** 400), max_value=10 ** 400).map(str),
    st.integers(min_value=-(10 ** 400), max_value=10 ** 400).map(lambda n: f"'{n}'"),
    st.floats().map(lambda x: f"'{x!r}'"),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=20).map(_sql_string),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(
                     st.sampled_from(["ColumnSet", "Transformers", "a"]), c, max_size=3),
                 max_leaves=6).map(lambda j: _sql_string(json.dumps(j))),
)


@st.composite
def slot_filled(draw):
    return draw(st.sampled_from(SLOTS)).format(
        key=draw(st.sampled_from(HYPER_KEYS)), setting=draw(st.sampled_from(SETTING_KEYS)),
        v=draw(any_value))


@st.composite
def mutated(draw):
    """A valid statement with its tokens deleted, swapped, duplicated or replaced, or cut."""
    text = draw(st.sampled_from(VALID))
    parts = [text[t.start:t.end] for t in tokenize(text)]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "swap", "insert", "duplicate", "truncate_tokens",
                                   "truncate_chars"]))
        if not parts:
            break
        i = draw(st.integers(0, len(parts) - 1))
        if op == "delete":
            del parts[i]
        elif op == "swap":
            j = draw(st.integers(0, len(parts) - 1))
            parts[i], parts[j] = parts[j], parts[i]
        elif op == "insert":
            parts.insert(i, draw(token))
        elif op == "duplicate":
            parts.insert(i, parts[i])
        elif op == "truncate_tokens":
            parts = parts[:i]
        else:
            joined = " ".join(parts)
            return joined[:draw(st.integers(0, len(joined)))]
    return draw(separator).join(parts)


@FUZZ
@given(token_soup())
def test_random_token_sequences_raise_only_syntax_errors(text):
    _check(text)


@FUZZ
@given(grammar_led())
def test_statement_heads_with_random_tails_raise_only_syntax_errors(text):
    _check(text)


@FUZZ
@given(grammar_statement())
def test_grammar_built_statements_raise_only_syntax_errors(text):
    _check(text)


@FUZZ
@given(slot_filled())
def test_every_value_in_every_slot_raises_only_syntax_errors(text):
    _check(text)


@FUZZ
@given(mutated())
def test_mutated_valid_statements_raise_only_syntax_errors(text):
    _check(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([*VALID, "SELECT 'a;b' -- c;\n", "SELECT $$;$$",
                                 "SELECT (1;2)"]), min_size=1, max_size=5))
def test_split_then_join_is_stable(statements):
    script = ";\n".join(statements)
    parts = split(script)
    assert split(";\n".join(parts)) == parts
    assert len(parts) == len(statements)
