import importlib.util
from pathlib import Path

import pytest

import sqlml

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def con():
    c = sqlml.connect()
    yield c
    c.close()


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "test.duckdb"


def shared_file(*parts: str) -> Path:
    """A file from ../shared/data, or a clean skip where the folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: real-data checks need ../shared/data beside the checkout")
    return path


# ETS, ARIMA and Theta come from statsforecast, sqlml's optional extra 'forecast' (it declares
# pandas<3): .ci/run installs it in the lowest env only, so these tests run there and skip in
# the newest (pandas 3).
needs_statsforecast = pytest.mark.skipif(
    importlib.util.find_spec("statsforecast") is None,
    reason="statsforecast is not installed (ETS, ARIMA, Theta): pip install 'sqlml[forecast]'")


SMALL_CUSTOMERS = """
CREATE OR REPLACE TABLE customers AS
SELECT
    i AS customer_id,
    (18 + (hash(i) % 60))::INTEGER AS age,
    ['basic', 'standard', 'premium'][1 + (hash(i * 7) % 3)::INTEGER] AS plan,
    round(20 + (hash(i * 13) % 8000) / 100.0, 2) AS monthly_spend,
    (hash(i * 17) % 2 = 0) AS autopay,
    DATE '2022-01-01' + ((hash(i * 19) % 1000)::INTEGER) AS signup_date,
    CASE WHEN hash(i * 23) % 10 = 0 THEN NULL ELSE (hash(i * 29) % 9)::INTEGER END AS support_calls
FROM range(600) t(i);
CREATE OR REPLACE TABLE customers AS
SELECT *,
    (coalesce(support_calls, 2) * 0.6 + CASE plan WHEN 'basic' THEN 1.5 ELSE 0 END
     - (age - 40) * 0.03 + CASE WHEN autopay THEN -0.8 ELSE 0.4 END
     + ((hash(customer_id * 31) % 1000) / 1000.0 - 0.5) * 2.5 > 3.2) AS churned
FROM customers;
"""


@pytest.fixture
def customers(con):
    """600 synthetic customers with numeric, categorical, boolean, date and NULL values."""
    for stmt in SMALL_CUSTOMERS.strip().split(";\n"):
        if stmt.strip():
            con.execute(stmt)
    return con
