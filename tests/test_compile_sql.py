"""Models compiled to plain SQL (sqlml/compile_sql.py): the `_sql` macros against the Python-served
functions and scikit-learn itself, their life cycle with versions, the not-compiled note, the
materialised scores table, and scoring with the real duckdb 1.5 CLI on a file sqlml wrote."""

import csv
import io
import subprocess
import warnings

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import shared_file
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from test_metrics_cli import duckdb_cli

import sqlml
from sqlml.compile import estimators as compile_estimators
from sqlml.compile import model as compile_sql
from sqlml.datasets import make_customers, make_new_customers
from sqlml.train import preprocessing
from sqlml.train.preprocessing import DateParts, Feature

NO_TEXT = "SELECT * EXCLUDE (support_notes) FROM customers"
FEATURES_ONLY = "SELECT * EXCLUDE (support_notes, churned) FROM customers"


def col(con, sql):
    return np.array([r[0] for r in con.execute(sql).fetchall()], dtype=float)


def names_in(con, fn):
    return {r[0] for r in con.execute(
        "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_name LIKE ?",
        [fn + "%"]).fetchall()}


@pytest.fixture(scope="module")
def shop():
    con = sqlml.connect()
    con.register("frame", make_customers(500))
    con.register("fresh", make_new_customers(120))
    con.execute("CREATE TABLE customers AS FROM frame")
    con.execute("CREATE TABLE new_customers AS FROM fresh")
    # What the Python path must survive: NULLs everywhere, NaN, unseen categories.
    con.execute("""UPDATE new_customers SET
        plan = CASE WHEN customer_id % 7 = 0 THEN 'platinum' WHEN customer_id % 9 = 0 THEN NULL
                    ELSE plan END,
        monthly_charges = CASE WHEN customer_id % 5 = 0 THEN NULL
                               WHEN customer_id % 13 = 0 THEN 'nan'::DOUBLE
                               ELSE monthly_charges END,
        tenure_months = CASE WHEN customer_id % 6 = 0 THEN NULL ELSE tenure_months END,
        signup_date = CASE WHEN customer_id % 11 = 0 THEN NULL ELSE signup_date END,
        autopay = CASE WHEN customer_id % 4 = 0 THEN NULL ELSE autopay END,
        region = CASE WHEN customer_id % 8 = 0 THEN 'Atlantis' ELSE region END""")
    train = {
        "lr": dict(source=NO_TEXT, target="churned", model_type="logistic"),
        "plan_lr": dict(source=FEATURES_ONLY, target="plan", model_type="logistic"),
        "mlp": dict(source=NO_TEXT, target="churned", model_type="mlp",
                    hyperparameters={"hidden_layer_sizes": [24], "activation": "tanh"}),
        "plan_mlp": dict(source=FEATURES_ONLY, target="plan", model_type="mlp",
                         hyperparameters={"hidden_layer_sizes": [16, 8]}),
        "spend_ridge": dict(source=FEATURES_ONLY, target="monthly_charges", model_type="linear"),
        "spend_lasso": dict(source=FEATURES_ONLY, target="monthly_charges", model_type="lasso"),
        "spend_mlp": dict(source=FEATURES_ONLY, target="monthly_charges", model_type="mlp",
                          hyperparameters={"hidden_layer_sizes": [16],
                                           "activation": "logistic"}),
    }
    summaries = {}
    for name, opts in train.items():
        source = opts.pop("source")
        summaries[name] = sqlml.create_model(con, name, source, function=f"p_{name}",
                                             progress=False, **opts)
    yield con, summaries
    con.close()


def _frame(con):
    return con.sql("FROM new_customers").df()


@pytest.mark.parametrize("name,tol", [("lr", 1e-12), ("mlp", 1e-9)])
def test_binary_sql_equals_python_and_sklearn(shop, name, tol):
    con, summaries = shop
    assert "not compiled" not in (summaries[name]["notes"] or "")
    fn = f"p_{name}"
    sql_p = col(con, f"SELECT {fn}_probability_sql(c) FROM new_customers c ORDER BY customer_id")
    py_p = col(con, f"SELECT {fn}_probability(c) FROM new_customers c ORDER BY customer_id")
    model = sqlml.load_model(con, name)
    frame = _frame(con).sort_values("customer_id")
    pos = model.classes.index(model.positive_class)
    sk = model.pipeline.predict_proba(frame)[:, pos]     # scikit-learn itself
    assert np.max(np.abs(sql_p - py_p)) <= tol and np.max(np.abs(sql_p - sk)) <= tol
    assert 0 < sql_p.min() and sql_p.max() < 1
    rows = con.execute(f"""SELECT {fn}_sql(c) = {fn}(c),
            {fn}_sql(c) = {fn}_sql(*COLUMNS(c.* EXCLUDE (customer_id, support_notes))),
            ({fn}_probabilities_sql(c)).labels = ({fn}_probabilities(c)).labels,
            list_max(list_transform(list_zip(({fn}_probabilities_sql(c)).probabilities,
                                             ({fn}_probabilities(c)).probabilities),
                                    lambda z: abs(z[1] - z[2])))
        FROM new_customers c""").fetchall()
    assert all(r[0] and r[1] and r[2] for r in rows)
    assert max(r[3] for r in rows) <= tol


@pytest.mark.parametrize("name,tol", [("plan_lr", 1e-12), ("plan_mlp", 1e-9)])
def test_multiclass_sql_equals_python_and_sklearn(shop, name, tol):
    con, _ = shop
    fn = f"p_{name}"
    got = con.execute(f"""SELECT ({fn}_probabilities_sql(c)).probabilities,
        ({fn}_probabilities(c)).probabilities, {fn}_sql(c), {fn}(c), typeof({fn}_sql(c))
        FROM new_customers c ORDER BY customer_id""").fetchall()
    sql_p = np.array([r[0] for r in got])
    model = sqlml.load_model(con, name)
    sk = model.pipeline.predict_proba(_frame(con).sort_values("customer_id"))
    assert sql_p.shape == sk.shape == (120, 4)
    assert np.max(np.abs(sql_p - np.array([r[1] for r in got]))) <= tol
    assert np.max(np.abs(sql_p - sk)) <= tol
    assert [r[2] for r in got] == [r[3] for r in got] and got[0][4] == "VARCHAR"
    assert {r[2] for r in got} == set(np.asarray(model.classes)[np.argmax(sk, axis=1)])


@pytest.mark.parametrize("name,tol", [("spend_ridge", 1e-12), ("spend_lasso", 1e-12),
                                      ("spend_mlp", 1e-9)])
def test_regression_sql_equals_python_and_sklearn(shop, name, tol):
    con, _ = shop
    fn = f"p_{name}"
    sql = col(con, f"SELECT {fn}_sql(c) FROM new_customers c ORDER BY customer_id")
    py = col(con, f"SELECT {fn}(c) FROM new_customers c ORDER BY customer_id")
    sk = sqlml.load_model(con, name).pipeline.predict(_frame(con).sort_values("customer_id"))
    scale = np.maximum(1.0, np.abs(sk))
    assert np.max(np.abs(sql - py) / scale) <= tol and np.max(np.abs(sql - sk) / scale) <= tol
    assert names_in(con, fn + "_prob") == set()     # regression: no probability functions


def test_preprocessing_variants_are_exact(con):
    """DECIMAL, FLOAT, DATE and TIMESTAMP inputs; min-max scaling; ordinal and one-hot on
    integers and booleans; more than 50 categories (infrequent grouping); NaN, NULL, unseen."""
    con.execute("""CREATE TABLE t AS SELECT
        (i % 997 * 1.37)::DECIMAL(9, 3) AS amount,
        (i % 89 / 7.0)::FLOAT AS ratio,
        DATE '2020-01-01' + (i * 37 % 1400)::INTEGER AS opened,
        TIMESTAMP '2021-03-01 08:00:00' + to_seconds(i * 7919 % 9000000) AS seen_at,
        (i % 5)::INTEGER AS tier,
        i % 3 = 0 AS flag,
        'city_' || CASE WHEN i % 2 = 0 THEN i % 10 ELSE i % 83 END AS city,
        ['n', 's', 'e', 'w'][1 + i % 4] AS side,
        CASE WHEN i % 17 = 0 THEN NULL ELSE (i % 23)::DOUBLE END AS score,
        (hash(i) % 100 < 35 + 10 * (i % 5)) AS y
        FROM range(900) r(i)""")
    con.execute("""CREATE TABLE q AS SELECT * EXCLUDE (y) FROM t WHERE rowid < 60 UNION ALL
        SELECT NULL, 'nan'::FLOAT, NULL, NULL, 7, NULL, 'city_999', 'up', 'nan'::DOUBLE, UNION ALL
        SELECT 123456.789, 1e30::FLOAT, DATE '1999-12-31', TIMESTAMP '2030-07-04 23:59:59.999',
               -1, false, NULL, NULL, -1e300""")
    sqlml.create_model(con, "variants", "t", target="y", model_type="logistic",
                       function="p_var", progress=False,
                       preprocessors={"ratio": "minmax", "tier": "one_hot", "flag": "one_hot",
                                      "side": "ordinal"})
    model = sqlml.load_model(con, "variants")
    kinds = {f.name: f.preprocessor for f in model.features}
    assert kinds["city"] == "one_hot" and kinds["opened"] == "date"
    enc = model.pipeline.named_steps["prep"].named_transformers_["city"].steps[1][1]
    assert len(enc.infrequent_categories_[0]) > 0          # grouping is exercised
    got = col(con, "SELECT p_var_probability_sql(q) FROM q")
    q = con.sql("FROM q").to_arrow_table()   # the frame exactly as the Python path builds it
    frame = preprocessing.to_frame([q.column(f.name) for f in model.features], model.features,
                                   "test")
    want = model.pipeline.predict_proba(frame)[:, 1]
    assert len(got) == 62 and np.max(np.abs(got - want)) <= 1e-12


def test_literals_round_trip_exactly():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(size=300) * 10.0 ** rng.integers(-300, 300, 300),
                             [0.1, -1 / 3, 5e-324, -1.7976931348623157e308, 0.0, 123.0]])
    con = duckdb.connect()
    got = con.execute("SELECT [" + ", ".join(map(compile_sql.num, values)) + "]").fetchall()
    assert np.array_equal(np.array(got[0][0]), values)
    assert con.execute(f"SELECT typeof({compile_sql.num(0.5)})").fetchall()[0][0] == "DOUBLE"


@pytest.mark.parametrize("decimal,digits", [
    ("DECIMAL(4,1)", 3), ("DECIMAL(9,3)", 6), ("DECIMAL(18,6)", 12), ("DECIMAL(18,0)", 18),
    ("DECIMAL(38,10)", 28), ("DECIMAL(38,3)", 35), ("HUGEINT", 30)])
def test_decimals_convert_as_pyarrow_does(decimal, digits):
    """Small and large unscaled values, whole parts above 2^53 and 2^64, negatives, NULL."""
    con = duckdb.connect()
    t = con.sql(f"""SELECT ((random() - 0.5) * 2 * 10 ** (i % {digits}))::{decimal} AS x
                    FROM range(6000) r(i) UNION ALL SELECT NULL""").to_arrow_table()
    con.register("t", t)
    f = Feature("x", decimal, "numeric", "numeric")
    got = con.execute(f"SELECT {compile_sql.double_input(f, 'x')} FROM t").fetchall()
    got = np.array([np.nan if r[0] is None else r[0] for r in got])
    want = pc.cast(t.column(0), pa.float64()).to_numpy(zero_copy_only=False)
    assert ((got == want) | (np.isnan(got) & np.isnan(want))).all()
    if decimal in ("DECIMAL(9,3)", "DECIMAL(18,6)"):
        plain = np.array([r[0] for r in con.execute("SELECT x::DOUBLE FROM t").fetchall()[:-1]])
        assert (plain != want[:-1]).any()    # DuckDB's own cast would not match Python's


@pytest.mark.parametrize("sql_type", ["DATE", "TIMESTAMP", "TIMESTAMP_MS", "TIMESTAMP_S",
                                      "TIMESTAMP_NS"])
def test_date_parts_match_dateparts(sql_type):
    con = duckdb.connect()
    t = con.sql(f"""SELECT (TIMESTAMP '1960-01-01' + to_microseconds(
                        (hash(i) % 3000000000000000)::BIGINT))::{sql_type} AS d
                    FROM range(3000) r(i) UNION ALL SELECT NULL""").to_arrow_table()
    con.register("t", t)
    f = Feature("d", sql_type, "date", "date")
    prep = preprocessing.build_transformer([f], dense=True)
    frame = preprocessing.to_frame(list(t.columns), [f], "test")
    prep.fit(frame)
    inputs = compile_sql.columns(prep, [f], ['"d"'])
    got = np.array(con.execute("SELECT " + ", ".join(c.sql for c in inputs) + " FROM t"
                               ).fetchall(), dtype=float)
    want = prep.transform(frame)
    assert got.shape == want.shape == (3001, 14)       # 7 parts and 7 missing indicators
    assert np.array_equal(got, want)
    parts = DateParts().transform(frame)
    assert np.isnan(parts[-1]).all() and not np.isnan(parts[:-1]).any()


def test_large_models_stay_within_the_expression_depth_limit(monkeypatch):
    """Balanced sums keep a 1500-input dot product shallow, where a chain would break DuckDB's
    max_expression_depth; a deep MLP bound layer by layer gives the same numbers."""
    rng = np.random.default_rng(0)
    n_in = 1500
    X = rng.normal(size=(40, n_in))
    ridge = Ridge().fit(X, X[:, :5].sum(axis=1) + rng.normal(size=40))
    con = duckdb.connect()
    con.register("t", pa.table({f"x{i}": X[:, i] for i in range(n_in)}))
    inputs = [f"x{i}" for i in range(n_in)]
    (expr,) = compile_sql.linear.scores_sql(ridge, inputs)
    got = col(con, f"SELECT {expr} FROM t")
    assert np.max(np.abs(got - ridge.predict(X))) <= 1e-12 * np.abs(ridge.predict(X)).max()
    chain = " + ".join(f"(x{i} * {compile_sql.num(w)})" for i, w in enumerate(ridge.coef_))
    with pytest.raises(duckdb.Error, match="depth"):
        con.execute(f"SELECT {chain} FROM t").fetchall()

    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    net = MLPClassifier(hidden_layer_sizes=(6, 5, 4), max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X[:, :15], y)
    small = [f"x{i}" for i in range(15)]
    monkeypatch.setattr(compile_estimators, "MAX_SQL_CHARS", 10 ** 9)
    inline = compile_sql.mlp.scores_sql(net, small)
    monkeypatch.setattr(compile_estimators, "MAX_SQL_CHARS", 1000)
    monkeypatch.setattr(compile_estimators, "INLINE_SOFTMAX_CHARS", 10)
    bound = compile_sql.mlp.scores_sql(net, small)
    assert "__sqlml_h" in bound and "__sqlml_h" not in inline   # hidden layers bound once
    assert len(bound) < len(inline) / 3
    want = net.predict_proba(X[:, :15])
    for expr in (inline, bound):
        got = np.array([r[0] for r in con.execute(f"SELECT {expr} FROM t").fetchall()])
        assert np.max(np.abs(got - want)) <= 1e-9


def test_not_compilable_models_say_why(con):
    con.register("frame", make_customers(400))
    con.execute("CREATE TABLE customers AS FROM frame")
    cases = {"text": dict(source="customers", model_type="mlp"),
             "near": dict(source=NO_TEXT, model_type="knn",
                          hyperparameters={"metric": "cosine"}),
             "calib": dict(source=NO_TEXT, model_type="knn", hyperparameters={"metric": "cosine"},
                           settings={"calibrate": "sigmoid"})}
    why = {"text": "MLP model over text column support_notes: each hidden unit weighs every "
                   "vocabulary term", "near": "KNN model with metric 'cosine'",
           "calib": "KNN model with metric 'cosine'"}   # a calibrated model: its base's reason
    for name, opts in cases.items():
        s = sqlml.create_model(con, name, opts.pop("source"), target="churned",
                               function=f"p_{name}", progress=False, **opts)
        assert f"not compiled to SQL: {why[name]}" in s["notes"]
        shown = con.execute(f"SELECT value FROM ml_show_model('{name}') "
                            "WHERE property = 'compiled_sql'").fetchall()[0][0]
        assert shown.startswith(f"not compiled to SQL: {why[name]}")
        assert names_in(con, f"p_{name}_") == {f"p_{name}_probability",
                                               f"p_{name}_probabilities", f"p_{name}_explain"}


def test_versions_rollback_and_drop_keep_sql_macros_in_step(con):
    con.register("frame", make_customers(400))
    con.execute("CREATE TABLE customers AS FROM frame")
    con.register("fresh", make_new_customers(30))
    con.execute("CREATE TABLE new_customers AS FROM fresh")
    sql_names = {"p_m_sql", "p_m_probability_sql", "p_m_probabilities_sql"}
    sqlml.create_model(con, "m", NO_TEXT, target="churned", model_type="logistic",
                       function="p_m", progress=False)
    v1 = col(con, "SELECT p_m_probability_sql(c) FROM new_customers c")
    assert sql_names <= names_in(con, "p_m")
    sqlml.create_model(con, "m", NO_TEXT, target="churned", model_type="knn",
                       hyperparameters={"metric": "cosine"}, function="p_m", progress=False)
    assert not sql_names & names_in(con, "p_m")            # v2 does not compile: none left
    con.execute("SELECT ml_rollback_model('m', 1)").fetchall()
    back = col(con, "SELECT p_m_probability_sql(c) FROM new_customers c")
    assert np.array_equal(back, v1)
    assert np.max(np.abs(back - col(con, "SELECT p_m_probability(c) FROM new_customers c"))
                  ) <= 1e-12
    con.execute("SELECT ml_rollback_model('m', 2)").fetchall()
    assert not sql_names & names_in(con, "p_m")
    sqlml.create_model(con, "m", NO_TEXT, target="churned", model_type="logistic",
                       function="p_renamed", progress=False)
    assert names_in(con, "p_m") == set() and "p_renamed_sql" in names_in(con, "p_renamed")
    con.execute("SELECT ml_drop_model('m')").fetchall()
    assert names_in(con, "p_renamed") == set()


def test_refresh_scores_writes_the_served_scores(shop):
    con, _ = shop
    n = con.execute("SELECT ml_refresh_scores('lr', 'new_customers', key := 'customer_id')"
                    ).fetchall()[0][0]
    assert n == 120
    cols = [r[0] for r in con.execute("DESCRIBE sqlml_scores.lr").fetchall()]
    assert cols == ["customer_id", "label", "probability", "probabilities", "model_version",
                    "refreshed_at"]
    # Refreshed through Python; a logistic model's function serves its compiled SQL: 1e-12.
    diff = con.execute("""SELECT count(*), max(abs(s.probability - p_lr_probability(c))),
            count(*) FILTER (WHERE s.label IS DISTINCT FROM p_lr(c)),
            count(*) FILTER (WHERE s.probabilities.labels
                             IS DISTINCT FROM p_lr_probabilities(c).labels),
            max(list_max(list_transform(list_zip(s.probabilities.probabilities,
                p_lr_probabilities(c).probabilities), lambda z: abs(z[1] - z[2])))),
            min(s.model_version)
        FROM new_customers c JOIN sqlml_scores.lr s USING (customer_id)""").fetchall()[0]
    assert diff[0] == 120 and diff[1] <= 1e-12 and diff[2:4] == (0, 0)
    assert diff[4] <= 1e-12 and diff[5] == 1
    # A query as source, two key columns, a regression model.
    n = con.execute("""SELECT ml_refresh_scores('spend_ridge',
            'SELECT customer_id, region AS r, * EXCLUDE (customer_id) FROM new_customers
             WHERE plan = ''basic''', key := ['customer_id', 'r'])""").fetchall()[0][0]
    want = con.execute("SELECT count(*) FROM new_customers WHERE plan = 'basic'"
                       ).fetchall()[0][0]
    assert n == want > 0
    cols = [r[0] for r in con.execute("DESCRIBE sqlml_scores.spend_ridge").fetchall()]
    assert cols == ["customer_id", "r", "label", "model_version", "refreshed_at"]


@pytest.mark.parametrize("call,message", [
    ("ml_refresh_scores('nope', 'new_customers', key := 'customer_id')",
     "ml_refresh_scores: model 'nope' does not exist"),
    ("ml_refresh_scores('lr', 'new_customers')",
     "key := ... names the column(s) that identify a row of the source"),
    ("ml_refresh_scores('lr', 'new_customers', key := 'customer')",
     "key column 'customer' is not in the source. Did you mean 'customer_id'?"),
    ("ml_refresh_scores('lr', 'SELECT customer_id, plan FROM new_customers', "
     "key := 'customer_id')", "the source has no column 'signup_date'"),
    ("ml_refresh_scores('lr', 'SELECT *, 1 AS label FROM new_customers', key := 'label')",
     "key column 'label' has the name of a column the scores table adds"),
    ("ml_refresh_scores('lr', 'missing_table', key := 'customer_id')",
     "the source query for model 'lr' failed"),
])
def test_refresh_scores_errors(shop, call, message):
    con, _ = shop
    with pytest.raises(duckdb.Error) as err:
        con.execute(f"SELECT {call}").fetchall()
    assert message in str(err.value)


# -- the real duckdb 1.5 CLI on a file sqlml wrote ------------------------------------------------
def cli_rows(path, sql):
    done = subprocess.run([duckdb_cli(), "-readonly", "-csv", str(path), "-c", sql],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return list(csv.DictReader(io.StringIO(done.stdout)))


def _cli_check(path, table, fn, key, tol):
    rows = cli_rows(path, f"""SELECT count(*) AS n,
        max(abs(p.p - {fn}_probability_sql(c))) AS err,
        count(*) FILTER (WHERE p.label <> {fn}_sql(c)) AS flips,
        max(abs(p.p - ({fn}_probabilities_sql(c)).probabilities[p.pos])) AS err2
        FROM {table} c JOIN py_{fn} p USING ({key})""")[0]
    assert int(rows["n"]) > 0 and int(rows["flips"]) == 0
    assert float(rows["err"]) <= tol and float(rows["err2"]) <= tol


def _store_python_scores(con, model, table, fn, key):
    """The Python-served scores, stored in the file for the CLI to compare with."""
    m = sqlml.load_model(con, model)
    pos = m.classes.index(m.positive_class) + 1
    con.execute(f"""CREATE TABLE py_{fn} AS SELECT {key}, {fn}_probability(c) AS p,
        {fn}(c) AS label, {pos} AS pos FROM {table} c""")


def test_cli_scores_synthetic_file_like_python(tmp_path):
    path = tmp_path / "shop.duckdb"
    con = sqlml.connect(path)
    con.register("frame", make_customers(600))
    con.register("fresh", make_new_customers(150))
    con.execute("CREATE TABLE customers AS FROM frame")
    con.execute("CREATE TABLE new_customers AS FROM fresh")
    con.execute("UPDATE new_customers SET plan = 'platinum', monthly_charges = NULL "
                "WHERE customer_id % 6 = 0")
    for name, mt, hyper in (("lr", "logistic", None), ("nn", "mlp", {"hidden_layer_sizes": [16]}),
                            ("gb", "gradient_boosting", {"max_iter": 25})):
        s = sqlml.create_model(con, name, NO_TEXT, target="churned", model_type=mt,
                               function=f"p_{name}", hyperparameters=hyper, progress=False)
        if name != "gb" or "not compiled" not in (s["notes"] or ""):
            _store_python_scores(con, name, "new_customers", f"p_{name}", "customer_id")
    trees = "not compiled" not in (s["notes"] or "")
    con.close()
    _cli_check(path, "new_customers", "p_lr", "customer_id", 1e-12)
    _cli_check(path, "new_customers", "p_nn", "customer_id", 1e-9)
    if trees:
        _cli_check(path, "new_customers", "p_gb", "customer_id", 1e-9)


@pytest.mark.slow
def test_cli_scores_real_churn_file_like_python(tmp_path):
    csv_path = shared_file("churn", "mlc_churn.csv")
    path = tmp_path / "churn.duckdb"
    con = sqlml.connect(path)
    con.execute(f"CREATE TABLE customers AS SELECT * FROM read_csv('{csv_path}')")
    for name, mt, hyper in (("lr", "logistic", None),
                            ("nn", "mlp", {"hidden_layer_sizes": [16]}),
                            ("gb", "gradient_boosting", {"max_iter": 30})):
        s = sqlml.create_model(con, name, "SELECT * EXCLUDE (rownames) FROM customers",
                               target="churn", model_type=mt, function=f"churn_{name}",
                               hyperparameters=hyper, progress=False)
        assert "not compiled" not in (s["notes"] or ""), s
        _store_python_scores(con, name, "customers", f"churn_{name}", "rownames")
    con.close()
    _cli_check(path, "customers", "churn_lr", "rownames", 1e-12)
    _cli_check(path, "customers", "churn_nn", "rownames", 1e-9)
    _cli_check(path, "customers", "churn_gb", "rownames", 1e-9)


def test_python_path_and_sklearn_agree_on_imputer_reference():
    """The reference the SQL is compared with: SimpleImputer on NaN and the median."""
    imp = SimpleImputer(strategy="median", add_indicator=True).fit([[1.0], [np.nan], [5.0]])
    ct = ColumnTransformer([("x", Pipeline([("impute", imp)]), ["x"])]).fit(
        pd.DataFrame({"x": [1.0, np.nan, 5.0]}))
    cols = compile_sql.columns(ct, [Feature("x", "DOUBLE", "numeric", "numeric")], "x")
    con = duckdb.connect()
    got = con.execute("SELECT " + ", ".join(c.sql for c in cols)
                      + " FROM (VALUES (1.0), (NULL), ('nan'::DOUBLE), (5.0)) v(x)").fetchall()
    assert got == [(1.0, 0.0), (3.0, 1.0), (3.0, 1.0), (5.0, 0.0)]
