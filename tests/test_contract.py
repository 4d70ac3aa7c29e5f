"""The model-type contract: every model type and problem type sqlml registers, none listed here.

For each (model type, problem type) pair the registry says fits (:func:`registered_cases`), one
model is trained through SQL on small data and shared by every check below:

- the generated functions give what the stored model gives in Python (labels equal,
  probabilities within 1e-12);
- the Python-served function takes the numpy fast path exactly when the serving code says it
  covers the type, and its scores equal scikit-learn's to 1e-9;
- the compiled ``_sql`` macros exist exactly when the compiler supports the model, give the same
  labels and probabilities to 1e-9, and otherwise the notes say why;
- a new process that opens the saved file scores alike;
- ``ml_explain_model`` ranks every input column (recommenders: the documented error);
- a second version with other hyperparameters, rolled back, serves the first version's answers.

The data are small (150 to 442 rows) and the size-driving hyperparameters small (:data:`QUICK`),
so a fit takes about a second: the contract is about the serving paths agreeing, not about
model quality.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import clients
import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris, make_classification
from sklearn.linear_model import LogisticRegression

import sqlml
from sqlml import spec
from sqlml.compile import estimators as compile_estimators
from sqlml.compile import explain as compile_explain
from sqlml.compile import model as compile_model
from sqlml.compile.expressions import NotCompilable
from sqlml.datasets import make_ratings
from sqlml.recommend import fit as recommend_fit
from sqlml.recommend.model import RecommenderModel
from sqlml.score import explain, serving
from sqlml.score.serving import StoredRecommender
from sqlml.train import estimators, penalties
from sqlml.train.preprocessing import to_frame

# Size-driving hyperparameters, smaller than the registry's defaults so that a fit takes about a
# second. Keyed by scikit-learn parameter, so a new model type needs no entry here.
QUICK: dict[str, Any] = {"n_estimators": 10, "max_iter": 20, "hidden_layer_sizes": [16]}
# Version 2's change: the first of these the estimator accepts (sqlml's own l1/l2 penalties
# first). Each changes the fitted model.
OTHER: tuple[tuple[str, Any], ...] = (("l2", 10.0), ("l1", 1.0), ("max_depth", 2),
                                      ("n_neighbors", 3))
RECOMMENDER_MODEL_TYPE = "matrix_factorization"   # what sqlml/recommend/train.py records
OTHER_FACTORS = 4                                  # version 2 of a recommender

SUPERVISED_DATA = {"binary_classification": "two_classes",
                   "multiclass_classification": "three_classes", "regression": "amounts"}


# -- the registry: the one place this suite reads it ----------------------------------------------
def supervised_pairs() -> list[tuple[str, str]]:
    """(model type, problem type) for every pair sqlml/spec.py declares. tests/test_spec.py checks
    the spec against the estimators registry both ways, so a type registered there is here."""
    return [(m.name, p) for m in spec.MODEL_TYPE_SPECS for p in m.problem_types]


def registered_cases() -> list[Case]:
    """Every supervised pair, and the recommender once per feedback kind it fits."""
    cases: list[Case] = [SupervisedCase(m, p) for m, p in supervised_pairs()]
    cases += [RecommenderCase(RECOMMENDER_MODEL_TYPE, "recommendation", feedback)
              for feedback in recommend_fit.DEFAULTS]
    return cases


def estimator_class(case: SupervisedCase) -> type:
    return estimators.MODEL_TYPES[case.model_type].estimator_class(case.problem_type)


def fast_path_expected(case: SupervisedCase, kinds: set[str]) -> bool:
    """What sqlml/score/serving.py covers: numeric and boolean inputs only (``kinds``, the
    stored features' kinds), and a linear, logistic or histogram-boosting model."""
    covered = (LogisticRegression, *serving._LINEAR, *serving._HGB)
    return kinds <= {"numeric", "boolean"} and issubclass(estimator_class(case), covered)


# -- what a model answers -------------------------------------------------------------------------
@dataclass
class Outputs:
    """Labels (exact) and numbers (to a tolerance, relative to max(1, |number|) as
    tests/test_compile_sql.py compares regression) from one way of scoring."""
    labels: list
    scores: np.ndarray
    classes: list | None = None     # the labels list of ``_probabilities``

    def assert_matches(self, want: Outputs, tol: float, what: str) -> None:
        assert self.labels == want.labels, f"{what}: labels differ"
        assert self.scores.shape == want.scores.shape, f"{what}: shapes differ"
        scale = np.maximum(1.0, np.abs(want.scores))
        err = float(np.max(np.abs(self.scores - want.scores) / scale, initial=0.0))
        assert err <= tol, f"{what}: scores differ by {err:.3g} (tolerance {tol:g})"
        if self.classes is not None and want.classes is not None:
            assert self.classes == want.classes, f"{what}: class lists differ"


def as_json_rows(rows: list) -> list:
    """Rows as the new process sends them back (JSON keeps every float's bits)."""
    return json.loads(json.dumps(rows, default=str))


@dataclass(frozen=True)
class Case:
    model_type: str
    problem_type: str

    @property
    def id(self) -> str:
        return f"{self.model_type}-{self.problem_type}"

    @property
    def name(self) -> str:
        return self.id.replace("-", "_")

    @property
    def function(self) -> str:
        return "p_" + self.name

    # Each kind of model says how to train it and how to read its answers.
    def train(self, con, version: int) -> dict:
        raise NotImplementedError

    def queries(self, compiled: bool) -> list[str]:
        raise NotImplementedError

    def outputs(self, rows: list[list]) -> Outputs:
        raise NotImplementedError

    def python_outputs(self, con) -> Outputs:
        raise NotImplementedError


@dataclass(frozen=True)
class SupervisedCase(Case):
    @property
    def data(self) -> str:
        return SUPERVISED_DATA[self.problem_type]

    def hyperparameters(self, version: int) -> dict:
        cls = estimator_class(self)
        accepted = set(inspect.signature(cls).parameters) | set(
            penalties.accepted(cls))
        out = {k: v for k, v in QUICK.items() if k in accepted}
        if version == 2:
            knob = next(((k, v) for k, v in OTHER if k in accepted), None)
            assert knob is not None, f"add a hyperparameter of {cls.__name__} to OTHER"
            out[knob[0]] = knob[1]
        return out

    def train(self, con, version: int) -> dict:
        return con.execute(
            "SELECT ml_create_model(?, ?, target := ?, problem_type := ?, model_type := ?, "
            "\"function\" := ?, hyperparameters := ?)",
            [self.name, f"SELECT * EXCLUDE (id) FROM {self.data}", TARGETS[self.data],
             self.problem_type, self.model_type, self.function,
             json.dumps(self.hyperparameters(version))]).fetchall()[0][0]

    def queries(self, compiled: bool) -> list[str]:
        s, fn = "_sql" if compiled else "", self.function
        cols = [f"{fn}{s}(t)"]
        if self.problem_type != "regression":
            cols += [f"({fn}_probabilities{s}(t)).labels",
                     f"({fn}_probabilities{s}(t)).probabilities"]
        if self.problem_type == "binary_classification":
            cols.append(f"{fn}_probability{s}(t)")
        return [f"SELECT {', '.join(cols)} FROM {self.data}_x t ORDER BY id"]

    def outputs(self, rows: list[list]) -> Outputs:
        (rows,) = rows
        labels = [r[0] for r in rows]
        if self.problem_type == "regression":
            return Outputs([], np.array(labels, dtype=float))
        classes = {tuple(r[1]) for r in rows}
        assert len(classes) == 1, "every row lists the same classes"
        # Binary: P(positive) as the last column, beside every class's probability.
        scores = np.array([list(r[2]) + list(r[3:]) for r in rows], dtype=float)
        return Outputs(labels, scores, list(classes.pop()))

    def python_outputs(self, con) -> Outputs:
        model = sqlml.load_model(con, self.name)
        df = con.sql(f"FROM {self.data}_x ORDER BY id").df()
        if self.problem_type == "regression":
            return Outputs([], model.predict(df).astype(float))
        proba = model.predict_proba(df)
        if self.problem_type == "binary_classification":
            pos = list(model.classes or []).index(model.positive_class)
            proba = np.column_stack([proba, proba[:, pos]])
        return Outputs(model.predict(df).tolist(), proba, None)


@dataclass(frozen=True)
class RecommenderCase(Case):
    feedback: str = "explicit"

    @property
    def id(self) -> str:
        return f"{self.model_type}-{self.problem_type}-{self.feedback}"

    def train(self, con, version: int) -> dict:
        factors = f", factors: {OTHER_FACTORS}" if version == 2 else ""
        return con.execute(
            f"SELECT ml_create_model('{self.name}', 'ratings', problem_type := "
            f"'{self.problem_type}', \"function\" := '{self.function}', settings := "
            f"{{user_col: 'user_id', item_col: 'movie_id', rating_col: 'rating', "
            f"timestamp_col: 'rated_at', feedback: '{self.feedback}'{factors}}})"
        ).fetchall()[0][0]

    def queries(self, compiled: bool) -> list[str]:
        s, fn = "_sql" if compiled else "", self.function
        out = [f"SELECT {fn}_rating{s}(user_id, movie_id) FROM rating_pairs ORDER BY n"]
        out += [f"SELECT movie_id, source, score FROM {fn}{s}({u}, k := 5) ORDER BY rank"
                for u in USERS]
        return out

    def outputs(self, rows: list[list]) -> Outputs:
        ratings, *tops = rows
        labels = [[(r[0], r[1]) for r in top] for top in tops]
        scores = [r[0] for r in ratings] + [r[2] for top in tops for r in top]
        return Outputs(labels, np.array(scores, dtype=float))

    def python_outputs(self, con) -> Outputs:
        stored: object = sqlml.load_model(con, self.name)   # a StoredRecommender here
        assert isinstance(stored, StoredRecommender)
        model = stored.model
        assert isinstance(model, RecommenderModel)
        pairs = con.execute("SELECT user_id, movie_id FROM rating_pairs ORDER BY n").fetchall()
        ratings = model.predict([p[0] for p in pairs], [p[1] for p in pairs])
        tops = [model.recommend(u, k=5) for u in USERS]
        labels = [[(r[1], r[3]) for r in top] for top in tops]
        scores = [*ratings, *(r[2] for top in tops for r in top)]
        return Outputs(labels, np.array(scores, dtype=float))


# -- the data --------------------------------------------------------------------------------------
TARGETS = {"two_classes": "y", "three_classes": "species", "amounts": "progression"}
UNKNOWN = 10**9                      # a user or item no model has seen: cold start
USERS = (1, 2, 3, UNKNOWN)           # three who rated (checked in load_data) and a cold one


def _frames() -> dict[str, pd.DataFrame]:
    X, y = make_classification(n_samples=300, n_features=5, n_informative=3, random_state=0)
    binary = pd.DataFrame(X[:, :4], columns=["x0", "x1", "x2", "x3"])
    binary["flag"] = X[:, 4] > 0
    binary["y"] = y.astype(bool)
    iris = load_iris(as_frame=True)
    multiclass = iris.data.set_axis(["sepal_l", "sepal_w", "petal_l", "petal_w"], axis=1)
    multiclass["species"] = iris.target_names[iris.target]
    regression = load_diabetes(as_frame=True).data
    # One text column, so one-hot encoding is in the contract (and the fast path declines it).
    regression["sex"] = np.where(regression["sex"] > 0, "f", "m")
    regression["progression"] = load_diabetes().target
    return {"two_classes": binary, "three_classes": multiclass, "amounts": regression}


def load_data(con) -> None:
    """Each table with an id, NULLs in its first feature; ``<table>_x`` to score: its features,
    one row of NULLs, and an unseen category. Ratings, and (user, item) pairs with cold users
    and items."""
    for table, frame in _frames().items():
        con.register("frame", frame)
        con.execute(f"CREATE TABLE {table} AS SELECT row_number() OVER () AS id, * FROM frame")
        con.unregister("frame")
        first = frame.columns[0]
        con.execute(f"UPDATE {table} SET {first} = NULL WHERE id % 11 = 0")
        con.execute(f"CREATE TABLE {table}_x AS SELECT * EXCLUDE ({TARGETS[table]}) FROM {table}")
        con.execute(f"INSERT INTO {table}_x (id) VALUES ({UNKNOWN})")
    con.execute(f"INSERT INTO amounts_x (id, sex) VALUES ({UNKNOWN + 1}, 'x')")
    ratings = make_ratings(150, 200, density=0.08)  # noqa: F841 (read by DuckDB)
    con.execute("CREATE TABLE ratings AS FROM ratings")
    known = con.execute("SELECT count(DISTINCT user_id) FROM ratings WHERE user_id IN "
                        f"{USERS[:3]}").fetchall()[0][0]
    assert known == 3
    con.execute(f"""CREATE TABLE rating_pairs AS
        SELECT row_number() OVER (ORDER BY user_id, movie_id) AS n, user_id, movie_id FROM (
            (SELECT user_id, movie_id FROM ratings ORDER BY hash(user_id, movie_id) LIMIT 40)
            UNION ALL SELECT {UNKNOWN}, min(movie_id) FROM ratings
            UNION ALL SELECT min(user_id), {UNKNOWN} FROM ratings)""")


# -- one trained model per case, shared by every check ---------------------------------------------
@dataclass
class Trained:
    """Version 1 of a case's model: its summary and its answers, kept for the later checks."""
    summary: dict
    rows: list[list]                      # the generated functions', as JSON rows
    compiled_rows: list[list] | None      # the ``_sql`` macros', where they were published


@dataclass
class Suite:
    path: Path
    con: duckdb.DuckDBPyConnection
    models: dict[Case, Trained] = field(default_factory=dict)

    def trained(self, case: Case) -> Trained:
        if case not in self.models:
            summary = case.train(self.con, 1)
            compiled = self.run(case.queries(True)) if self.compiles(case) else None
            self.models[case] = Trained(summary, self.run(case.queries(False)), compiled)
        return self.models[case]

    def run(self, queries: list[str]) -> list[list]:
        return [as_json_rows(self.con.execute(q).fetchall()) for q in queries]

    def compiles(self, case: Case) -> bool:
        """Whether the case's ``_sql`` macros are in the database now."""
        names = [*compile_model.all_names(case.function), case.function + "_rating_sql"]
        return bool(self.con.execute(
            "SELECT count(*) FROM duckdb_functions() WHERE function_name IN (SELECT unnest(?))",
            [names]).fetchall()[0][0])


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    path = tmp_path_factory.mktemp("contract") / "contract.duckdb"
    con = sqlml.connect(path)
    load_data(con)
    s = Suite(path, con)
    yield s
    s.con.close()


CASES = registered_cases()
parametrize = pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])


# -- the checks ---------------------------------------------------------------------------------
@parametrize
def test_trains_through_sql_and_serves_the_stored_model(suite, case):
    model = suite.trained(case)
    assert (model.summary["problem_type"], model.summary["model_type"],
            model.summary["version"]) == (case.problem_type, case.model_type, 1)
    got = case.outputs(model.rows)
    got.assert_matches(case.python_outputs(suite.con), 1e-12, "generated function vs Python")
    if isinstance(case, SupervisedCase) and case.problem_type != "regression":
        stored = sqlml.load_model(suite.con, case.name)
        assert got.classes == [str(c) for c in stored.classes]


@parametrize
def test_fast_path_is_taken_where_serving_covers_it(suite, case):
    suite.trained(case)
    model = sqlml.load_model(suite.con, case.name)
    if isinstance(case, RecommenderCase):
        assert isinstance(model, StoredRecommender) and not hasattr(model, "_fast")
        return
    kinds = {f.kind for f in model.features}
    assert (model._fast is not None) == fast_path_expected(case, kinds)
    table = suite.con.sql(f"FROM {case.data}_x ORDER BY id").to_arrow_table()
    cols = [table.column(f.name) for f in model.features]
    served = model.scores(cols, case.function)
    frame = to_frame(cols, model.features, "contract")
    plain = (model.pipeline.predict_proba(frame) if model.is_classifier
             else model.pipeline.predict(frame))
    Outputs([], served).assert_matches(Outputs([], plain), 1e-9, "served vs scikit-learn")


def compile_reason(model) -> str | None:
    """Why the compiler refuses the stored model's estimator, or None if it supports it."""
    try:
        compile_estimators.emitter(model.pipeline.named_steps["model"])
    except NotCompilable as exc:
        return str(exc)
    return None


@parametrize
def test_compiled_sql_agrees_or_the_notes_say_why(suite, case):
    model = suite.trained(case)
    shown = suite.con.execute(f"SELECT value FROM ml_show_model('{case.name}') "
                              f"WHERE property = 'compiled_sql'").fetchall()[0][0]
    if isinstance(case, RecommenderCase):
        assert shown.startswith(f"pure-SQL functions {case.function}_sql")
        reason = None
    else:
        reason = compile_reason(sqlml.load_model(suite.con, case.name))
    if reason is None:
        assert model.compiled_rows is not None, shown
        case.outputs(model.compiled_rows).assert_matches(
            case.outputs(model.rows), 1e-9, "compiled SQL vs Python")
    if isinstance(case, SupervisedCase):
        est = sqlml.load_model(suite.con, case.name).pipeline.named_steps["model"]
        made = compile_model.names(case.function, case.problem_type,
                                   explain=compile_explain.supports(est))
        present = {r[0] for r in suite.con.execute(
            "SELECT function_name FROM duckdb_functions()").fetchall()}
        if reason is None:
            assert shown == "pure-SQL functions " + ", ".join(made) and set(made) <= present
        else:
            why = f"not compiled to SQL: {reason}"
            assert why in (model.summary["notes"] or "") and shown.startswith(why)
            assert not set(compile_model.all_names(case.function)) & present


@parametrize
def test_explain_model_ranks_every_input(suite, case):
    suite.trained(case)
    sql = f"FROM ml_explain_model('{case.name}')"
    if isinstance(case, RecommenderCase):
        with pytest.raises(duckdb.Error, match=r"is a recommender, which has no feature "
                                               r"importance.*ml_similar_items"):
            suite.con.execute(sql).fetchall()
        similar = suite.con.execute(f"FROM ml_similar_items('{case.name}', "
                                    f"(SELECT min(movie_id) FROM ratings), k := 3)").fetchall()
        assert len(similar) == 3
        return
    rows = suite.con.execute(sql).fetchall()
    model = sqlml.load_model(suite.con, case.name)
    ranked = {r[2] for r in rows if r[0] == "permutation"}
    assert ranked == {f.name for f in model.features}
    linear = isinstance(model.pipeline.named_steps["model"], explain.LINEAR)
    assert any(r[0] == "coefficient" for r in rows) == linear


@parametrize
def test_rollback_serves_the_first_version_again(suite, case):
    first = suite.trained(case)
    assert case.train(suite.con, 2)["version"] == 2
    second = case.outputs(suite.run(case.queries(False)))
    assert not np.array_equal(second.scores, case.outputs(first.rows).scores), \
        "version 2 should answer differently"
    suite.con.execute("SELECT ml_rollback_model(?, 1)", [case.name]).fetchall()
    active = suite.con.execute("SELECT version FROM ml_models() WHERE name = ?",
                               [case.name]).fetchall()
    assert active == [(1,)]
    assert suite.run(case.queries(False)) == first.rows
    assert suite.compiles(case) == (first.compiled_rows is not None)
    if first.compiled_rows is not None:
        assert suite.run(case.queries(True)) == first.compiled_rows


# -- a new process on the saved file (last: it closes this process's connection) -----------------
CHILD = textwrap.dedent("""
    import json, sys
    import sqlml
    spec = json.load(sys.stdin)
    con = sqlml.connect(spec["path"])
    con.execute("SET enable_progress_bar = false")   # a slow query draws one on stdout
    out = {key: [con.execute(q).fetchall() for q in qs] for key, qs in spec["queries"].items()}
    json.dump(out, sys.stdout, default=str)
""")


def run_child(path: Path, queries: dict[str, list[str]]) -> dict[str, list]:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          input=json.dumps({"path": str(path), "queries": queries}),
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def new_process(suite, request) -> dict[Case, list[list]]:
    """What a new process that opens the saved file answers, for every selected case at once
    (one child process: starting Python and sqlml is most of its cost)."""
    wanted = [item.callspec.params["case"] for item in request.session.items
              if item.originalname == "test_a_new_process_scores_the_saved_file_alike"]
    queries = {}
    for case in wanted:
        compiled = suite.trained(case).compiled_rows is not None
        queries[case.id] = case.queries(False) + (case.queries(True) if compiled else [])
    suite.con.execute("CHECKPOINT")
    suite.con.close()      # DuckDB lets one process at a time open a file
    try:
        there = run_child(suite.path, queries)
    finally:
        suite.con = sqlml.connect(suite.path)
    return {case: there[case.id] for case in wanted}


@parametrize
def test_a_new_process_scores_the_saved_file_alike(suite, new_process, case):
    model = suite.trained(case)
    assert new_process[case] == model.rows + (model.compiled_rows or [])


def test_every_registered_type_is_covered():
    """The parameter list is the registry, whole: a new model type is checked without an edit."""
    covered = {c.model_type for c in CASES}
    assert covered == set(estimators.MODEL_TYPES) | {RECOMMENDER_MODEL_TYPE}
    assert {c.problem_type for c in CASES} == {*estimators.PROBLEM_TYPES, "recommendation"}


# -- plain DuckDB clients on the saved file: no sqlml, no Python (tests/clients.py) -------------
def client_queries(case: Case, con) -> list[str]:
    """Every generated function by its own name: by whole row, by position, inside GROUP BY."""
    fn = case.function
    # The catalog functions a plain client calls are pure SQL too.
    catalog = [f"FROM ml_show_model('{case.name}')", f"FROM ml_model_metrics('{case.name}')",
               f"SELECT trial, model_type, score, status FROM ml_trials('{case.name}')"]
    if isinstance(case, RecommenderCase):
        return [*case.queries(False), *catalog,
                f"FROM ml_similar_items('{case.name}', (SELECT min(movie_id) FROM ratings), "
                f"k := 3)",
                f"SELECT user_id % 2 AS g, avg({fn}_rating(user_id, movie_id)) AS r "
                f"FROM rating_pairs GROUP BY g ORDER BY g",
                f"SELECT count(*) AS n, count(DISTINCT user_id) AS users, sum(score) AS s "
                f"FROM {fn}_all(k := 3)"]
    assert isinstance(case, SupervisedCase)
    args = ", ".join(f.name for f in sqlml.load_model(con, case.name).features)
    x = f"{case.data}_x"
    out = [*case.queries(False), f"SELECT {fn}({args}) FROM {x} ORDER BY id", *catalog,
           f"FROM ml_explain_model('{case.name}')"]
    if case.problem_type == "regression":
        out.append(f"SELECT id % 3 AS g, avg({fn}(t)) AS p FROM {x} t GROUP BY g ORDER BY g")
    else:
        out.append(f"SELECT id % 3 AS g, {fn}(t)::VARCHAR AS label, count(*) AS n "
                   f"FROM {x} t GROUP BY ALL ORDER BY ALL")
    if case.problem_type == "binary_classification":
        out.append(f"SELECT id % 3 AS g, avg({fn}_probability(t)) AS p FROM {x} t "
                   f"GROUP BY g ORDER BY g")
    return out


@pytest.fixture(scope="module")
def plain_clients(suite, request) -> dict[Case, dict]:
    """The session's answers and the duckdb CLI's and Node's, for every selected case."""
    wanted = [item.callspec.params["case"] for item in request.session.items
              if item.originalname == "test_plain_clients_call_every_generated_function"]
    for case in wanted:
        suite.trained(case)
    plan = {case: client_queries(case, suite.con) for case in wanted}
    session = {case: [suite.con.execute(q).fetchall() for q in qs] for case, qs in plan.items()}
    suite.con.execute("CHECKPOINT")
    suite.con.close()
    try:
        cli = {case: [clients.cli_json(suite.path, q) for q in qs] for case, qs in plan.items()}
        node = {case: clients.node_json(suite.path, qs) for case, qs in plan.items()} \
            if clients.node_available() else None
    finally:
        suite.con = sqlml.connect(suite.path)
    return {case: {"queries": plan[case], "session": session[case], "cli": cli[case],
                   "node": None if node is None else node[case]} for case in wanted}


def assert_client_agrees(client: str, query: str, got, want: list) -> None:
    if isinstance(got, str):   # an error: only a model sqlml alone scores may give one
        assert "does not exist" not in got, f"{client}: {query}: {got}"
        assert "is scored by sqlml's Python package only" in got and \
            "Score it where sqlml runs" in got, f"{client}: {query}: {got}"
        return
    assert len(got) == len(want), f"{client}: {query}"
    for g, w in zip(got, want, strict=True):
        assert clients.same(list(g.values()) if isinstance(g, dict) else g, list(w)), \
            f"{client}: {query}: {g} != {w}"


@parametrize
def test_plain_clients_call_every_generated_function(plain_clients, case):
    run = plain_clients[case]
    for i, query in enumerate(run["queries"]):
        assert_client_agrees("duckdb CLI", query, run["cli"][i], run["session"][i])
        if run["node"] is not None:
            answer = run["node"][i]
            assert_client_agrees("Node", query, answer.get("rows", answer.get("error")),
                                 run["session"][i])
