"""Reflection through sqlml.create_engine (duckdb-engine): columns with their types, keys, views,
``Table(autoload_with=...)`` and ``pandas.read_sql_table``, with whichever SQLAlchemy pip resolves
(2.1 broke duckdb-engine's own reflection: pg_catalog.pg_collation, REGCLASS, pg_inherits)."""

import datetime
import uuid

import pandas as pd
import pytest

import sqlml

sa = pytest.importorskip("sqlalchemy")
duckdb_engine = pytest.importorskip("duckdb_engine")
# duckdb-engine reflects no indexes (DuckDB's ART indexes have no SQLAlchemy counterpart).
pytestmark = pytest.mark.filterwarnings("ignore:duckdb-engine doesn't yet support reflection")
VERSIONS = f"SQLAlchemy {sa.__version__}, duckdb-engine {duckdb_engine.__version__}"

COLUMNS = [  # name, DuckDB type, SQLAlchemy type class, nullable
    ("id", "INTEGER PRIMARY KEY", sa.INTEGER, False),
    ("name", "VARCHAR NOT NULL", sa.VARCHAR, False),
    ("score", "DOUBLE", sa.DOUBLE, True),
    ("price", "DECIMAL(10,2)", sa.NUMERIC, True),
    ("joined", "DATE", sa.DATE, True),
    ("seen", "TIMESTAMP", sa.TIMESTAMP, True),
    ("seen_tz", "TIMESTAMPTZ", sa.TIMESTAMP, True),
    ("active", "BOOLEAN", sa.BOOLEAN, True),
    ("token", "UUID", sa.UUID, True),
    ("tags", "VARCHAR[]", sa.ARRAY, True),
    ("big", "BIGINT", sa.BIGINT, True),
    ("plan", "ENUM('basic', 'pro')", sa.Enum, True),
    ("note", "VARCHAR DEFAULT 'none'", sa.VARCHAR, True),
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = tmp_path_factory.mktemp("reflect") / "shop.duckdb"
    con = sqlml.connect(path)
    con.execute(f"CREATE TABLE accounts ({', '.join(f'{n} {t}' for n, t, _, _ in COLUMNS)}, "
                "UNIQUE (name), CHECK (score >= 0))")
    con.execute("INSERT INTO accounts VALUES (1, 'ann', 0.5, 12.30, DATE '2024-01-02', "
                "TIMESTAMP '2024-01-02 03:04:05', TIMESTAMPTZ '2024-01-02 03:04:05+00', true, "
                "'7c9e6679-7425-40de-944b-e07fc1f90ae7', ['a', 'b'], 9007199254740993, 'pro', "
                "DEFAULT)")
    con.execute("CREATE TABLE orders (order_id INTEGER, account_id INTEGER "
                "REFERENCES accounts (id), total DOUBLE)")
    con.execute("CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100")
    con.close()
    engine = sqlml.create_engine(path)
    yield engine
    engine.dispose()


def test_columns_names_types_nullability_and_defaults(shop):
    columns = sa.inspect(shop).get_columns("accounts")
    assert [c["name"] for c in columns] == [n for n, *_ in COLUMNS], VERSIONS
    for column, (name, _, kind, nullable) in zip(columns, COLUMNS, strict=True):
        assert isinstance(column["type"], kind), (name, column["type"], VERSIONS)
        assert column["nullable"] is nullable, (name, VERSIONS)
    by_name = {c["name"]: c for c in columns}
    assert (by_name["price"]["type"].precision, by_name["price"]["type"].scale) == (10, 2)
    assert by_name["seen_tz"]["type"].timezone is True
    assert isinstance(by_name["tags"]["type"].item_type, sa.VARCHAR)
    assert by_name["plan"]["type"].enums == ["basic", "pro"]
    assert by_name["note"]["default"] == "'none'"


def test_tables_views_and_keys(shop):
    inspector = sa.inspect(shop)
    # The user's tables only: sqlml's catalog lives in its own schema (sqlml.models...).
    assert inspector.get_table_names() == ["accounts", "orders"]
    assert inspector.get_view_names() == ["big_orders"]
    assert "models" in inspector.get_table_names(schema="sqlml")
    assert inspector.get_pk_constraint("accounts")["constrained_columns"] == ["id"]
    assert inspector.get_pk_constraint("orders")["constrained_columns"] == []
    [fk] = inspector.get_foreign_keys("orders")
    assert (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]) == (
        ["account_id"], "accounts", ["id"])
    assert [u["column_names"] for u in inspector.get_unique_constraints("accounts")] == [["name"]]
    assert [c["sqltext"] for c in inspector.get_check_constraints("accounts")] == ["(score >= 0)"]
    assert [c["name"] for c in inspector.get_columns("big_orders")] == [
        "order_id", "account_id", "total"]
    with pytest.raises(sa.exc.NoSuchTableError):
        inspector.get_columns("no_such_table")


def test_autoload_and_read_sql_table(shop):
    table = sa.Table("orders", sa.MetaData(), autoload_with=shop)
    assert list(table.c.keys()) == ["order_id", "account_id", "total"]
    assert [fk.target_fullname for fk in table.c.account_id.foreign_keys] == ["accounts.id"]
    frame = pd.read_sql_table("accounts", shop)
    row = frame.iloc[0]
    assert (row["id"], row["name"], row["plan"], row["note"]) == (1, "ann", "pro", "none")
    assert float(row["price"]) == pytest.approx(12.30)  # pandas makes DECIMAL a float
    assert pd.Timestamp(row["seen"]) == pd.Timestamp(datetime.datetime(2024, 1, 2, 3, 4, 5))
    assert str(row["token"]) == str(uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7"))
    meta = sa.MetaData()
    meta.reflect(shop, views=True)
    assert sorted(meta.tables) == ["accounts", "big_orders", "orders"]


def test_install_on_engine_fixes_a_plain_engine(tmp_path):
    path = tmp_path / "plain.duckdb"
    con = sqlml.connect(path)
    con.execute("CREATE TABLE t (x INTEGER, y VARCHAR)")
    con.close()
    plain = sqlml.install_on_engine(sa.create_engine(f"duckdb:///{path}"))
    try:
        columns = sa.inspect(plain).get_columns("t")
        assert [(c["name"], type(c["type"])) for c in columns] == [
            ("x", sa.INTEGER), ("y", sa.VARCHAR)], VERSIONS
    finally:
        plain.dispose()
