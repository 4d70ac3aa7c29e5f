"""One error model: every sqlml error class declares its outcome, and the CLI, the REST endpoint
and the Postgres server report a real error alike, whether Python raised it directly, a UDF's
exception came back through DuckDB, or a SQL macro raised it with error()."""

import hashlib
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import duckdb
import pytest
from conftest import SMALL_CUSTOMERS

import sqlml
from sqlml import errors
from sqlml.cli.console import Console, message
from sqlml.server.pgwire import errors as pg_errors
from sqlml.server.rest.app import error_of

ROOT = Path(__file__).resolve().parents[1]
ERROR_CLASSES = [c for _, c in inspect.getmembers(errors, inspect.isclass)
                 if issubclass(c, BaseException) and c.__module__ == errors.__name__]

# Exception classes allowed outside sqlml/errors.py: none reaches a user as itself.
INTERNAL = {
    # validation's control flow: validate() catches it and raises ArtifactError
    ("sqlml.catalog.artifacts", "_Bad"),
    # a CREATE MODEL value the grammar accepts but the mapping does not: the parser catches it
    # and raises SqlSyntaxError with the position
    ("sqlml.redshift.mapping", "MappingError"),
    # a model plain SQL cannot reproduce: training catches it, the model then serves through
    # Python and ml_show_model says why
    ("sqlml.compile.expressions", "NotCompilable"),
    # the Postgres protocol's own failures (a malformed message, a bad SCRAM exchange, an unknown
    # prepared statement), answered with the protocol's SQLSTATEs; no other surface has them
    ("sqlml.server.pgwire.codec", "ProtocolError"),
    ("sqlml.server.pgwire.auth", "AuthFailed"),
    ("sqlml.server.pgwire.errors", "PgError"),
    # a warning category (Redshift compatibility notices), not an error
    ("sqlml.redshift.script", "SqlmlNotice"),
}


# -- every class declares its outcome ---------------------------------------------------------
@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_class_is_documented_and_has_its_codes(cls):
    assert issubclass(cls, errors.SqlmlError) and issubclass(cls, ValueError)
    assert cls.__doc__ and cls.__doc__.strip()
    assert isinstance(cls.sqlstate, str) and re.fullmatch(r"[0-9A-Z]{5}", cls.sqlstate)
    assert isinstance(cls.http_status, int) and 400 <= cls.http_status <= 599
    # DuckDB hands a wrapped error back by its class name: each one must be found by it.
    assert errors.REGISTRY[cls.__name__] is cls


def test_the_public_names_stay_importable_from_the_package_root():
    for name in ("SqlmlError", "ModelNotFoundError", "InvalidNameError", "TrainingError",
                 "PredictionInputError", "ArtifactError", "SqlSyntaxError"):
        assert getattr(sqlml, name) is getattr(errors, name)


def test_no_other_module_defines_an_exception_class():
    found = set()
    for info in pkgutil.walk_packages(sqlml.__path__, "sqlml."):
        if info.name == "sqlml.__main__":
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == info.name and info.name != errors.__name__):
                found.add((info.name, name))
    assert found == INTERNAL


def _lines(pattern: str) -> list[str]:
    hits = []
    for path in [*(ROOT / "sqlml").rglob("*.py"), *(ROOT / "sql").glob("*.sql")]:
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.search(pattern, line, re.I):
                hits.append(str(path.relative_to(ROOT)))
    return hits


def test_unknown_model_and_version_messages_are_written_once_in_the_catalog():
    # Other "does not exist" messages are about files and prepared statements, not models.
    assert _lines(r"model.*does not exist") == ["sqlml/catalog/store.py"]
    assert _lines(r"has no version") == ["sqlml/catalog/store.py"]


# -- real errors, through each surface -------------------------------------------------------
@pytest.fixture(scope="module")
def con(tmp_path_factory):
    path = tmp_path_factory.mktemp("errors") / "errors.duckdb"
    first = sqlml.connect(path)
    for stmt in SMALL_CUSTOMERS.strip().split(";\n"):
        if stmt.strip():
            first.execute(stmt)
    for name in ("churn", "tampered"):
        sqlml.create_model(first, name, "customers", target="churned", model_type="logistic")
    first.execute("UPDATE sqlml.model_versions SET artifact_sha256 = ? WHERE name = 'tampered'",
                  [hashlib.sha256(b"something else").hexdigest()])
    first.close()
    c = sqlml.connect(path)   # as a fresh process would: no model loaded yet
    yield c
    c.close()


# (statement, the sqlml class it must report, words of the message): macros, UDFs, the parser.
SQL_ERRORS = [
    ("FROM ml_show_model('nope')", errors.ModelNotFoundError,
     "model 'nope' does not exist (it was never trained, or it was dropped)."),
    ("FROM ml_model_metrics('chrun')", errors.ModelNotFoundError,
     "Models in this database: churn, tampered."),
    ("SELECT ml_predict('chrun', c) FROM customers c", errors.ModelNotFoundError,
     "model 'chrun' does not exist (it was never trained, or it was dropped). Did you mean "
     "'churn'?"),
    ("SELECT ml_predict('churn@7', c) FROM customers c", errors.ModelNotFoundError,
     "model 'churn' has no version '7'; stored versions are 1."),
    ("SELECT ml_rollback_model('churn', 5)", errors.ModelNotFoundError,
     "ml_rollback_model: model 'churn' has no version 5; stored versions are 1. Pass one"),
    # Through Python: a linear model's own function runs its compiled SQL, where a missing
    # column is DuckDB's binder error.
    ("SELECT ml_predict('churn', {'age': 3})", errors.PredictionInputError,
     "ml_predict: the row passed has no column 'plan'"),
    ("SELECT ml_create_model('bad', 'customers', target := 'churned', "
     "settings := {'max_runtime': -1})", errors.TrainingError,
     "setting max_runtime must be a positive number, got -1"),
    ("SELECT ml_create_model('bad name', 'customers', target := 'churned')",
     errors.InvalidNameError, "the model name must be a plain identifier"),
    # The artifact is loaded (and checked) by Python; compiled SQL reads no artifact.
    ("SELECT ml_predict('tampered', c) FROM customers c", errors.ArtifactError,
     "does not match its recorded checksum"),
]


def _raised(con, statement: str) -> BaseException:
    with pytest.raises((duckdb.Error, errors.SqlmlError)) as info:
        sqlml.execute(con, statement)
    return info.value


def _assert_same_everywhere(exc: BaseException, out: errors.Outcome) -> None:
    assert message(exc) == out.message
    assert error_of(exc) == (out.http_status, out.cls_name, out.message)
    assert pg_errors.describe(exc) == (out.sqlstate, out.message)


@pytest.mark.parametrize("statement,cls,words", SQL_ERRORS, ids=[s[0][:40] for s in SQL_ERRORS])
def test_a_sqlml_error_from_sql_has_one_outcome_on_every_surface(con, statement, cls, words):
    exc = _raised(con, statement)
    assert isinstance(exc, duckdb.Error)     # it came back through DuckDB, wrapped
    out = errors.describe(exc)
    assert out == errors.Outcome(cls.__name__, out.message, cls.sqlstate, cls.http_status)
    assert words in out.message and not out.message.startswith(("Invalid Input", cls.__name__))
    _assert_same_everywhere(exc, out)
    printed: list[str] = []
    Console(con, out=printed.append, err=printed.append, progress=False).run(statement)
    assert printed == [f"Error: {out.message}"]


def test_the_macro_and_the_udf_say_the_same_about_an_unknown_model(con):
    by_macro = errors.describe(_raised(con, "FROM ml_show_model('nope')"))
    by_udf = errors.describe(_raised(con, "SELECT ml_drop_model('nope')"))
    # 'nope' is close to no model name, so Python's "Did you mean" adds nothing either.
    assert by_udf.message == "ml_drop_model: " + by_macro.message
    assert (by_macro.cls_name, by_macro.sqlstate) == (by_udf.cls_name, by_udf.sqlstate)


def test_a_redshift_syntax_error_has_one_outcome_on_every_surface(con):
    exc = _raised(con, "CREATE MODEL m FROM customers TARGET")
    assert isinstance(exc, errors.SqlSyntaxError)
    out = errors.describe(exc)
    assert (out.cls_name, out.sqlstate, out.http_status) == ("SqlSyntaxError", "42601", 400)
    assert out.message == ("CREATE MODEL: line 1, column 37: expected a column name after "
                           "TARGET, got the end of the statement.")
    _assert_same_everywhere(exc, out)
    printed: list[str] = []
    Console(con, out=printed.append, err=printed.append).run("CREATE MODEL m FROM customers "
                                                             "TARGET")
    assert printed == [f"Syntax error: {out.message}"]


@pytest.mark.parametrize("statement,cls_name,sqlstate,status", [
    ("SELECT nosuch FROM customers", "BinderException", "42703", 400),
    ("SELECT * FROM no_such_table", "CatalogException", "42P01", 500),
    ("SELEC 1", "ParserException", "42601", 400),
    ("SELECT 'x'::INTEGER", "ConversionException", "22P02", 400),
    # A class name sqlml does not own is not taken for one, and a message is never read for
    # its meaning: this is a user's error(), not an unknown model.
    ("SELECT error('KeyError: model ''x'' does not exist')", "InvalidInputException", "22023",
     400),
])
def test_duckdb_errors_map_by_their_class(con, statement, cls_name, sqlstate, status):
    exc = _raised(con, statement)
    out = errors.describe(exc)
    assert (out.cls_name, out.sqlstate, out.http_status) == (cls_name, sqlstate, status)
    _assert_same_everywhere(exc, out)


def test_an_unexpected_exception_is_an_internal_error():
    out = errors.describe(KeyError("x"))
    assert (out.cls_name, out.sqlstate, out.http_status, out.internal) == (
        "KeyError", "XX000", 500, True)
    assert error_of(KeyError("x")) == (500, "KeyError", "internal error: 'x'")
    assert pg_errors.describe(KeyError("x")) == (
        "XX000", "internal error in sqlml serve: KeyError: 'x'")


def test_a_rest_refusal_keeps_its_status_and_type():
    exc = errors.RequestError(413, "TooManyRows", "too many")
    assert error_of(exc) == (413, "TooManyRows", "too many")
    assert errors.describe(exc).sqlstate == errors.RequestError.sqlstate
