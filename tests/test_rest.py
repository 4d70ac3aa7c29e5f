"""The REST endpoint (sqlml/rest.py) through a real uvicorn server on loopback and httpx.

The reference for every answer is the SQL function on the same rows: the endpoint promises the
numbers ``SELECT predict_churn(c) FROM t c`` gives.
"""

import json
import shutil
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime

import httpx
import pytest

import sqlml
from sqlml.datasets import make_customers, make_ratings
from sqlml.server.rest import app as rest

TOKEN = "test-token-0123456789"
MAX_ROWS = 200
MAX_BODY = 100_000
PROBE = """CREATE TABLE probe AS
    SELECT * REPLACE (
        CASE WHEN customer_id % 3 = 0 THEN NULL ELSE tenure_months END AS tenure_months,
        CASE WHEN customer_id % 5 = 0 THEN NULL ELSE plan END AS plan)
    FROM customers ORDER BY customer_id LIMIT 60"""


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("rest") / "rest.duckdb"
    con = sqlml.connect(path)
    customers = make_customers(500)  # noqa: F841 (read by DuckDB)
    ratings = make_ratings(60, 80, density=0.1)  # noqa: F841
    con.execute("CREATE TABLE customers AS FROM customers")
    con.execute("CREATE TABLE ratings AS FROM ratings")
    con.execute(PROBE)
    # Version 1 strongly regularised, version 2 not: pinning a version changes the answers.
    for c in (0.01, 1.0):
        con.execute("SELECT ml_create_model('churn', 'customers', target := 'churned', "
                    "function := 'predict_churn', model_type := 'logistic', "
                    f"hyperparameters := {{C: {c}}})").fetchall()
    con.execute("SELECT ml_create_model('plan_lr', 'SELECT plan, tenure_months, monthly_charges,"
                " contract FROM customers', target := 'plan', function := 'predict_plan', "
                "model_type := 'logistic')").fetchall()
    con.execute("SELECT ml_create_model('spend', 'SELECT contract, tenure_months, "
                "monthly_charges FROM customers', target := 'monthly_charges', "
                "function := 'predict_spend', model_type := 'linear')").fetchall()
    con.execute("SELECT ml_create_model('movie_recs', 'SELECT user_id, movie_id, rating FROM "
                "ratings', problem_type := 'recommendation', function := 'recommend_movies', "
                "settings := {user_col: 'user_id', item_col: 'movie_id', rating_col: 'rating'})"
                ).fetchall()
    con.execute("CHECKPOINT")
    shutil.copy(path, path.with_name("copy.duckdb"))
    yield con, path.with_name("copy.duckdb")
    con.close()


@pytest.fixture(scope="module")
def server(db):
    app = rest.build_app(db[0], token=TOKEN, max_rows=MAX_ROWS, max_body_bytes=MAX_BODY)
    handle = rest.start_in_thread(app, "127.0.0.1", 0)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=30) as c:
        yield c


@pytest.fixture
def con(db):
    return db[0]


def records(con, sql):
    """Rows as JSON-ready dicts, the way a client would send them."""
    rel = con.execute(sql)
    cols = [d[0] for d in rel.description]
    return [{k: v.isoformat() if isinstance(v, date | datetime) else v
             for k, v in zip(cols, row, strict=True)} for row in rel.fetchall()]


def error_of(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}
    return body["error"]


def still_serving(client):
    assert client.get("/v1/models").status_code == 200


# -- predict ------------------------------------------------------------------------------------
def test_predict_by_rows_equals_sql_including_nulls_and_absent_keys(client, con):
    rows = records(con, "FROM probe ORDER BY customer_id")
    # An absent key is a NULL, like the NULLs the probe table has; both go to the imputer.
    rows = [{k: v for k, v in r.items() if v is not None} for r in rows]
    assert any("tenure_months" not in r for r in rows) and any("plan" not in r for r in rows)
    got = client.post("/v1/models/churn/predict", json={"rows": rows})
    assert got.status_code == 200, got.text
    body = got.json()
    want = con.execute("SELECT predict_churn(c), predict_churn_probability(c) FROM probe c "
                       "ORDER BY customer_id").fetchall()
    assert body["predictions"] == [w[0] for w in want]
    assert body["probabilities"] == [w[1] for w in want]
    assert all(isinstance(p, bool) for p in body["predictions"])   # BOOLEAN target
    assert (body["model"], body["version"], body["function"]) == ("churn", 2, "predict_churn")
    threshold = con.execute("SELECT threshold FROM ml_models() WHERE name = 'churn'"
                            ).fetchall()[0][0]
    assert body["threshold"] == threshold
    assert body["predictions"] == [p >= threshold for p in body["probabilities"]]


def test_predict_by_columns_equals_rows_and_ignores_extra_columns(client, con):
    rows = records(con, "FROM probe ORDER BY customer_id LIMIT 25")
    columns = {k: [r[k] for r in rows] for k in reversed(list(rows[0]))}
    columns["not_a_feature"] = list(range(25))
    by_columns = client.post("/v1/models/churn/predict", json={"columns": columns}).json()
    want = con.execute("SELECT predict_churn_probability(c) FROM "
                       "(FROM probe ORDER BY customer_id LIMIT 25) c ORDER BY customer_id"
                       ).fetchall()
    assert by_columns["probabilities"] == [w[0] for w in want]
    by_rows = client.post("/v1/models/churn/predict", json={"rows": rows}).json()
    assert by_rows == by_columns


def test_pinned_version_equals_ml_predict_of_that_version(client, con):
    rows = records(con, "FROM probe ORDER BY customer_id LIMIT 30")
    v1 = client.post("/v1/models/churn/predict", json={"rows": rows, "version": 1}).json()
    want = con.execute("SELECT ml_predict('churn@1', c), ml_predict_probability('churn@1', c) "
                       "FROM (FROM probe ORDER BY customer_id LIMIT 30) c ORDER BY customer_id"
                       ).fetchall()
    assert v1["version"] == 1
    assert v1["probabilities"] == [w[1] for w in want]
    assert [str(p) for p in v1["predictions"]] == [w[0] for w in want]
    active = client.post("/v1/models/churn/predict", json={"rows": rows}).json()
    assert active["version"] == 2 and active["probabilities"] != v1["probabilities"]
    error = error_of(client.post("/v1/models/churn/predict", json={"rows": rows, "version": 9}),
                     404)
    assert "model 'churn' has no version 9; stored versions are 1, 2" in error["message"]


def test_multiclass_and_regression_answers_equal_sql(client, con):
    rows = records(con, "FROM customers ORDER BY customer_id LIMIT 20")
    plan = client.post("/v1/models/plan_lr/predict", json={"rows": rows}).json()
    want = con.execute("SELECT predict_plan(c), predict_plan_probabilities(c) FROM "
                       "(FROM customers ORDER BY customer_id LIMIT 20) c ORDER BY customer_id"
                       ).fetchall()
    # REST scores through Python; a linear model's SQL functions run its compiled SQL, which
    # agrees to 1e-12.
    assert plan["predictions"] == [w[0] for w in want]
    for got, w in zip(plan["probabilities"], want, strict=True):
        assert got == pytest.approx(dict(zip(w[1]["labels"], w[1]["probabilities"],
                                             strict=True)), rel=0, abs=1e-12)
    assert "threshold" not in plan
    spend = client.post("/v1/models/spend/predict", json={"rows": rows}).json()
    assert spend["predictions"] == pytest.approx([w[0] for w in con.execute(
        "SELECT predict_spend(c) FROM (FROM customers ORDER BY customer_id LIMIT 20) c "
        "ORDER BY customer_id").fetchall()], rel=1e-12)
    assert set(spend) == {"model", "version", "function", "problem_type", "predictions"}


def test_missing_feature_columns_get_sqlmls_message(client):
    error = error_of(client.post("/v1/models/churn/predict",
                                 json={"rows": [{"plan": "basic", "tenure_months": 3}]}), 422)
    assert error["type"] == "PredictionInputError"
    assert error["message"].startswith("predict_churn: the row passed has no column ")
    assert "'monthly_charges'" in error["message"] and "'autopay'" in error["message"]
    assert "'plan'" not in error["message"].split("which model")[0]
    still_serving(client)


def test_value_that_does_not_convert_names_column_type_and_value(client, con):
    row = records(con, "FROM customers LIMIT 1")[0] | {"tenure_months": "three"}
    error = error_of(client.post("/v1/models/churn/predict", json={"rows": [row]}), 422)
    assert error["message"] == (
        "POST /v1/models/churn/predict: column 'tenure_months' has type BIGINT (its type at "
        "training), but row 0 has 'three', which does not convert to it. Send a value of that "
        "type, or null to have the stored imputer fill it.")


@pytest.mark.parametrize(("body", "words"), [
    ({"rows": [], "columns": {}}, "send exactly one of \"rows\""),
    ({}, "got neither"),
    ({"columns": {"plan": ["a"], "tenure_months": [1, 2]}}, "must have the same length"),
    ({"row": []}, "row: Extra inputs are not permitted"),
    ({"rows": [1, 2]}, "rows.0: Input should be a valid dictionary"),
])
def test_malformed_bodies_are_422_with_what_to_send(client, body, words):
    error = error_of(client.post("/v1/models/churn/predict", json=body), 422)
    assert words in error["message"]
    still_serving(client)


def test_unknown_model_is_404_with_sqlmls_message(client):
    error = error_of(client.post("/v1/models/chrun/predict", json={"rows": [{}]}), 404)
    assert error == {"type": "ModelNotFoundError", "message":
                     "POST /v1/models/chrun/predict: model 'chrun' does not exist (it was never "
                     "trained, or it was dropped). Did you mean 'churn'? Models in this "
                     "database: churn, movie_recs, plan_lr, spend."}
    error = error_of(client.get("/v1/models/nothing"), 404)
    assert "model 'nothing' does not exist" in error["message"]
    still_serving(client)


def test_predict_on_a_recommender_points_to_recommend(client):
    error = error_of(client.post("/v1/models/movie_recs/predict", json={"rows": [{}]}), 400)
    assert "is a recommender" in error["message"]
    assert "POST /v1/models/movie_recs/recommend" in error["message"]


# -- models -------------------------------------------------------------------------------------
def test_models_list_is_ml_models(client, con):
    body = client.get("/v1/models").json()
    want = con.execute("SELECT name, version, function, versions, metrics FROM ml_models()"
                       ).fetchall()
    assert [(m["name"], m["version"], m["function"], m["versions"]) for m in body["models"]] == \
        [w[:4] for w in want]
    assert body["models"][0]["metrics"] == json.loads(want[0][4])


def test_show_model_is_ml_show_model_plus_typed_features(client, con):
    body = client.get("/v1/models/plan_lr").json()
    assert body["properties"] == dict(
        con.execute("FROM ml_show_model('plan_lr')").fetchall())
    types = dict(con.execute("SELECT column_name, column_type FROM "
                             "(DESCRIBE customers)").fetchall())
    assert [(f["name"], f["type"]) for f in body["features"]] == \
        [(c, types[c]) for c in ("tenure_months", "monthly_charges", "contract")]
    assert (body["version"], body["function"], body["problem_type"]) == \
        (1, "predict_plan", "multiclass_classification")
    recs = client.get("/v1/models/movie_recs").json()
    assert [(f["name"], f["kind"]) for f in recs["features"]] == \
        [("user_id", "user"), ("movie_id", "item")]
    assert recs["properties"]["problem_type"] == "recommendation"


# -- recommend ----------------------------------------------------------------------------------
def test_recommend_equals_the_generated_table_macro(client, con):
    users = [r[0] for r in con.execute(
        "SELECT DISTINCT user_id FROM ratings ORDER BY 1 LIMIT 3").fetchall()]
    body = client.post("/v1/models/movie_recs/recommend",
                       json={"users": [*users, 10**6], "k": 4, "exclude_seen": False}).json()
    assert [r["user"] for r in body["results"]] == [*users, 10**6]
    for result in body["results"]:
        want = con.execute("SELECT rank, movie_id, score, source, reason FROM "
                           "recommend_movies(?, k := 4, exclude_seen := false)",
                           [result["user"]]).fetchall()
        got = [tuple(i.values()) for i in result["items"]]
        # Several users are scored in one matrix product, one user in a vector product: the
        # scores may differ in the last bit, the ranking may not.
        assert [g[:2] + g[3:] for g in got] == [w[:2] + w[3:] for w in want]
        assert [g[2] for g in got] == pytest.approx([w[2] for w in want], rel=1e-12, abs=0)
    assert {i["source"] for i in body["results"][-1]["items"]} == {"popular"}
    one = client.post("/v1/models/movie_recs/recommend", json={"user": users[0], "k": 4}).json()
    seen = {r[0] for r in con.execute("SELECT movie_id FROM ratings WHERE user_id = ?",
                                      [users[0]]).fetchall()}
    assert [tuple(i.values()) for i in one["results"][0]["items"]] == con.execute(
        "FROM recommend_movies(?, k := 4)", [users[0]]).fetchall()
    assert not seen & {i["item"] for i in one["results"][0]["items"]}   # exclude_seen default


def test_recommend_refusals(client):
    error = error_of(client.post("/v1/models/churn/recommend", json={"user": 1}), 400)
    assert error["type"] == "NotARecommender"
    assert "model 'churn' is binary_classification, not a recommender" in error["message"]
    error = error_of(client.post("/v1/models/movie_recs/recommend",
                                 json={"user": 1, "k": 0}), 422)
    assert "must be a positive integer; got 0" in error["message"]
    error = error_of(client.post("/v1/models/movie_recs/recommend",
                                 json={"users": list(range(MAX_ROWS + 1))}), 413)
    assert f"has {MAX_ROWS + 1} users; this server accepts at most {MAX_ROWS}" in \
        error["message"]
    still_serving(client)


# -- OpenAPI, token, limits ---------------------------------------------------------------------
def test_openapi_document_lists_every_route_with_schemas(server):
    doc = httpx.get(server.url + "/openapi.json").json()   # no token needed for the document
    assert set(doc["paths"]) == {"/v1/models", "/v1/models/{name}",
                                 "/v1/models/{name}/predict", "/v1/models/{name}/recommend",
                                 "/v1/models/{name}/report"}
    predict = doc["paths"]["/v1/models/{name}/predict"]["post"]
    assert predict["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PredictRequest")
    assert {"rows", "columns", "version"} <= set(doc["components"]["schemas"]["PredictRequest"]
                                                 ["properties"])
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "401" in predict["responses"] and "413" in predict["responses"]


@pytest.mark.parametrize(("headers", "words"), [
    ({}, "missing Authorization header"),
    ({"Authorization": "Bearer not-the-token"}, "the bearer token is wrong"),
    ({"Authorization": f"Basic {TOKEN}"}, "must be 'Bearer <token>', got scheme 'Basic'"),
])
def test_missing_or_wrong_token_is_401(server, client, headers, words):
    for request in (lambda: httpx.get(server.url + "/v1/models", headers=headers),
                    lambda: httpx.post(server.url + "/v1/models/churn/predict", headers=headers,
                                       json={"rows": [{}]})):
        response = request()
        error = error_of(response, 401)
        assert words in error["message"] and TOKEN not in error["message"]
        assert response.headers["www-authenticate"] == "Bearer"
    still_serving(client)


def test_row_limit_is_413_naming_limit_and_remedy(client):
    rows = [{"plan": "basic"}] * (MAX_ROWS + 1)
    error = error_of(client.post("/v1/models/churn/predict", json={"rows": rows}), 413)
    assert error["type"] == "TooManyRows"
    assert f"has {MAX_ROWS + 1} rows; this server accepts at most {MAX_ROWS}" in error["message"]
    assert "Split it into requests" in error["message"]
    still_serving(client)


def test_body_size_limit_is_413_declared_or_streamed(client):
    big = json.dumps({"rows": [{"support_notes": "x" * 1000}] * 150}).encode()
    assert len(big) > MAX_BODY
    error = error_of(client.post("/v1/models/churn/predict", content=big,
                                 headers={"Content-Type": "application/json"}), 413)
    assert f"has {len(big)} bytes; this server accepts at most {MAX_BODY}" in error["message"]
    still_serving(client)

    def chunks():   # no Content-Length: the guard counts the streamed bytes
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]
    error = error_of(client.post("/v1/models/churn/predict", content=chunks()), 413)
    assert f"more than {MAX_BODY} bytes" in error["message"]
    still_serving(client)


def test_concurrent_requests_each_get_their_own_answer(client, con):
    rows = records(con, "FROM probe ORDER BY customer_id")
    want = [w[0] for w in con.execute("SELECT predict_churn_probability(c) FROM probe c "
                                      "ORDER BY customer_id").fetchall()]

    def call(i):
        if i % 4 == 3:   # a failing request between good ones
            return client.post("/v1/models/nope/predict", json={"rows": rows}).status_code
        part = rows[i % 7:]
        return client.post("/v1/models/churn/predict", json={"rows": part}
                           ).json()["probabilities"] == want[i % 7:]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(32)))
    assert results == [404 if i % 4 == 3 else True for i in range(32)]


def test_read_only_database_serves_the_same_answers(db, con):
    ro = sqlml.connect(db[1], read_only=True)
    handle = rest.start_in_thread(rest.build_app(ro, token=None, read_only=True),
                                  "127.0.0.1", 0)
    try:
        rows = records(con, "FROM probe ORDER BY customer_id LIMIT 10")
        body = httpx.post(handle.url + "/v1/models/churn/predict", json={"rows": rows}).json()
        assert body["probabilities"] == [w[0] for w in con.execute(
            "SELECT predict_churn_probability(c) FROM (FROM probe ORDER BY customer_id "
            "LIMIT 10) c ORDER BY customer_id").fetchall()]
    finally:
        handle.stop()
        ro.close()
    assert not handle.thread.is_alive()


def test_start_in_thread_refuses_a_port_in_use():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    con = sqlml.connect()
    try:
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}: .*another port"):
            rest.start_in_thread(rest.build_app(con, token=None), "127.0.0.1", port)
    finally:
        taken.close()
        con.close()
