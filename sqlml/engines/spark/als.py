"""Recommenders on engine 'spark': Spark MLlib's ALS fits the factors, sqlml stores them as the
factor tables and artifact its own recommender writes.

One way: request -> DuckDB groups the rows into (user code, item code, value) pairs in TEMP
tables -> COPY to Parquet -> ALS fits in Spark, which writes its factors back as Parquet ->
DuckDB reads them -> a :class:`RecommenderModel` -> checked against Spark -> the catalog.

Explicit feedback adds the user and item biases that ALS lacks, the way sqlml's own recommender
scores: DuckDB computes a damped baseline ``mu + b_u + b_i`` and ALS factorises what it leaves
(``r - mu - b_u - b_i``); the stored model's score is ``mu + b_u + b_i + x_u . y_i``, and an
unknown item still scores ``mu + b_u``. Implicit feedback has no biases, as in-process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from sqlml import progress
from sqlml.catalog import generated, sources
from sqlml.catalog import store as catalog
from sqlml.engines.spark import handoff, session
from sqlml.engines.spark.verify import check_recommender, sample_pairs, spark_side
from sqlml.errors import TrainingError
from sqlml.recommend import train as rec
from sqlml.recommend.evaluate import evaluate_explicit, evaluate_ranking
from sqlml.recommend.model import RecommenderModel, _id_kind

FN = "ml_create_model"
DAMPING = 5.0           # pseudo-count of the bias baseline, as sqlml's own sampler starts from
T = "__sqlml_spark"     # prefix of this run's TEMP tables (one cursor, under the write lock)


def q(name: str) -> str:
    return generated.quote(name)


@dataclass(frozen=True)
class AlsParams:
    """Spark ALS's parameters, from sqlml's recommender settings names."""
    rank: int
    reg: float
    iters: int
    alpha: float
    implicit: bool
    seed: int

    @classmethod
    def of(cls, s: dict) -> AlsParams:
        implicit = s["feedback"] == "implicit"
        return cls(rank=int(s["factors"] or (64 if implicit else 10)),
                   reg=float(s["regularization"] or 0.1), iters=int(s["iterations"] or 10),
                   alpha=float(s["alpha"] or 10.0), implicit=implicit,
                   seed=int(s["random_state"]))

    def settings(self) -> dict:
        return {"factors": self.rank, "regularization": self.reg, "iterations": self.iters,
                "alpha": self.alpha if self.implicit else None}


def _refuse(s: dict, name: str) -> None:
    if s["recency_half_life"] not in (None, 0):
        raise TrainingError(
            f"{FN}: settings recency_half_life {s['recency_half_life']!r} of model {name!r} is "
            f"not available with engine 'spark': Spark's ALS weighs every interaction by its "
            f"value alone. Leave it out (or 0) with engine 'spark', or train in-process.")
    if s["feedback"] == "explicit" and s["rating_col"] is None:
        raise TrainingError(
            f"{FN}: an explicit recommender predicts ratings and needs settings rating_col, got "
            f"none. Name the rating column, or use feedback: 'implicit' for interactions.")
    for key in ("alpha", "implicit_threshold"):
        if s["feedback"] == "explicit" and s[key] is not None:
            raise TrainingError(
                f"{FN}: settings {key} only applies to feedback 'implicit'; got {key} "
                f"{s[key]!r} with feedback 'explicit'. Set feedback: 'implicit' or leave "
                f"{key} out.")


def train(cur, name: str, function: str, query: str, s: dict) -> dict:
    """ml_create_model(..., problem_type := 'recommendation', settings := {engine: 'spark'})."""
    started = time.perf_counter()
    _refuse(s, name)
    report = progress.reporter(cur, name, started, s["max_runtime"])
    report.emit("start")
    types = rec.check_columns(sources.relation(cur, query, FN, "training data", TrainingError),
                              s, name)
    spark = session.get_session(s, name)
    p = AlsParams.of(s)
    with handoff.workdir(s["spark_workdir"], name) as hand, _pairs(cur, query, s, name):
        with session.jobs(spark, name, started, s["max_runtime"], report) as jobs:
            fits = _fit_all(cur, spark, hand, p, s, jobs)
            metrics, held_rows = _metrics(cur, fits, s)
            model = _model(cur, fits["all"], p, s, "TRUE", seen=False, seen_in_table=True)
            sample = sample_pairs(cur, f"{T}_pairs", f"{T}_users", f"{T}_items", p.seed)
            spark_scores = spark_side(spark, fits["all"].als, sample)
        report.emit("store", model_type="spark_als")
        summary = _publish(cur, name, function, query, s, types, model, metrics, held_rows,
                           started, (spark, p, sample, spark_scores))
    report.emit("done", model_type="spark_als", score=summary["validation_score"])
    return summary


# -- DuckDB: rows to pairs ---------------------------------------------------------------------
@contextmanager
def _pairs(cur, query: str, s: dict, name: str) -> Iterator[None]:
    """TEMP tables of this run: users and items with dense codes (in id order), and the
    distinct pairs with their value and hold-out flags; dropped afterwards."""
    u, i, r, ts = (None if c is None else q(c)
                   for c in (s["user_col"], s["item_col"], s["rating_col"], s["timestamp_col"]))
    try:
        _nulls(cur, query, s, name)
        for side, col in (("users", u), ("items", i)):
            # Codes in the order numpy sorts the ids (UUIDs as their text), as in-process.
            cur.execute(f"CREATE OR REPLACE TEMP TABLE {T}_{side} AS SELECT id, "
                        f"(row_number() OVER (ORDER BY CASE WHEN typeof(id) = 'UUID' THEN "
                        f"id::VARCHAR END, id) - 1)::INTEGER AS code FROM "
                        f"(SELECT DISTINCT {col} AS id FROM ({query}))")
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {T}_raw AS SELECT uu.code AS u, ii.code AS i, "
                    f"{_value(s, r, cur, query, name)} AS r, {ts or 'NULL::INTEGER'} AS ts "
                    f"FROM ({query}) q JOIN {T}_users uu ON q.{u} = uu.id "
                    f"JOIN {T}_items ii ON q.{i} = ii.id")
        implicit = s["feedback"] == "implicit"
        agg, pos = ("sum(r)", "r > 0") if implicit else ("avg(r)", "true")
        seed = int(s["random_state"])
        # Held out for the ranking metrics: each user's latest positive pair (a seeded random
        # one without timestamps), when the user has two or more; for RMSE, a seeded share.
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {T}_pairs AS SELECT u, i, r, {pos} AS positive, "
            f"{pos} AND row_number() OVER (PARTITION BY u, {pos} ORDER BY ts DESC NULLS LAST, "
            f"hash(u, i, {seed})) = 1 AND count(*) FILTER (WHERE {pos}) OVER (PARTITION BY u) "
            f">= 2 AS held, (hash(i, u, {seed + 1}) % 1000000) / 1e6 < {float(s['test_size'])} "
            f"AS test, n FROM (SELECT u, i, {agg} AS r, max(ts) AS ts, count(*) AS n "
            f"FROM {T}_raw GROUP BY u, i)")
        cur.execute(f"DROP TABLE {T}_raw")
        _enough(cur, name)
        yield
    finally:
        for t in ("raw", "pairs", "users", "items", "bias_u", "bias_i", "eval"):
            cur.execute(f"DROP TABLE IF EXISTS {T}_{t}")


def _nulls(cur, query: str, s: dict, name: str) -> None:
    cols = [(s["user_col"], "user id"), (s["item_col"], "item id"), (s["rating_col"], "rating")]
    cols = [(c, w) for c, w in cols if c is not None]
    counts = cur.execute("SELECT count(*), " + ", ".join(
        f"count(*) FILTER (WHERE {q(c)} IS NULL)" for c, _ in cols)
        + f" FROM ({query})").fetchall()[0]
    if counts[0] == 0:
        raise TrainingError(f"{FN}: the training query for model {name!r} returned no rows. "
                            f"Query: {query}")
    for (col, what), n in zip(cols, counts[1:], strict=True):
        if n:
            raise TrainingError(
                f"{FN}: {what} column {col!r} has {n} NULL value(s); every interaction needs a "
                f"{what}. Filter them out (WHERE {col} IS NOT NULL) or fill them.")


def _value(s: dict, r: str | None, cur, query: str, name: str) -> str:
    """The SQL of one row's value: its rating (explicit), or its implicit weight."""
    if r is None:
        return "1.0::DOUBLE"
    if s["feedback"] == "explicit":
        return f"{r}::DOUBLE"
    if s["implicit_threshold"] is not None:
        return f"({r} >= {float(s['implicit_threshold'])})::DOUBLE"
    low = cur.execute(f"SELECT min({r}::DOUBLE) FROM ({query})").fetchall()[0][0]
    if low is not None and low < 0:
        raise TrainingError(
            f"{FN}: an implicit recommender reads ratings as interaction counts or weights "
            f"(>= 0); model {name!r} got {low!r}. To treat explicit ratings as implicit feedback, "
            f"pass implicit_threshold (e.g. 4: ratings >= 4 are positives).")
    return f"{r}::DOUBLE"


def _enough(cur, name: str) -> None:
    users, items = cur.execute(f"SELECT count(DISTINCT u), count(DISTINCT i) FROM {T}_pairs "
                               f"WHERE positive").fetchall()[0]
    for what, n in (("users", users), ("items", items)):
        if n < 2:
            raise TrainingError(
                f"{FN}: model {name!r}: a recommender needs at least 2 distinct {what} with a "
                f"positive value to learn from; got {n}. Train on more data, or check "
                f"implicit_threshold.")


# -- Spark: fit ALS on each subset -------------------------------------------------------------
SUBSETS = {"all": "TRUE", "part": "NOT held", "split": "NOT test"}


@dataclass(frozen=True)
class Fit:
    """One ALS fit: the rows it saw, its baseline, and its factors as DuckDB read them back."""
    where: str
    mu: float
    user_factors: np.ndarray       # by code, zeros for a user the fit did not see
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    als: object                    # the Spark ALSModel (for the checks)


def _fit_all(cur, spark, hand, p: AlsParams, s: dict, jobs) -> dict[str, Fit]:
    """The model to serve (every pair), and the fits the validation metrics are measured on:
    without the held-out latest pairs (ranking) and, explicit only, without the test split."""
    subsets = ["all", "part"] + ([] if p.implicit else ["split"])
    fits = {}
    for tag in subsets:
        jobs.check(f"before the ALS fit on {tag} pairs")
        fits[tag] = _fit(cur, spark, hand, p, tag, SUBSETS[tag])
    return fits


def _fit(cur, spark, hand, p: AlsParams, tag: str, where: str) -> Fit:
    from pyspark.ml.recommendation import ALS

    nu, ni = (cur.execute(f"SELECT count(*) FROM {T}_{side}").fetchall()[0][0]
              for side in ("users", "items"))
    mu, bu, bi = _baseline(cur, where, nu, ni, p.implicit)
    value = "r" if p.implicit else f"r - {mu!r} - bu.b - bi.b"
    uri = hand.write(cur, f"SELECT p.u, p.i, ({value})::FLOAT AS r FROM {T}_pairs p "
                          f"LEFT JOIN {T}_bias_u bu ON bu.code = p.u "
                          f"LEFT JOIN {T}_bias_i bi ON bi.code = p.i "
                          f"WHERE ({where}){' AND r > 0' if p.implicit else ''}", f"{tag}_pairs")
    blocks = _blocks(cur, spark)
    als = ALS(rank=p.rank, maxIter=p.iters, regParam=p.reg, alpha=p.alpha,
              implicitPrefs=p.implicit, userCol="u", itemCol="i", ratingCol="r", seed=p.seed,
              coldStartStrategy="drop", numUserBlocks=blocks, numItemBlocks=blocks,
              checkpointInterval=session.checkpoint_interval(spark))
    model = als.fit(spark.read.parquet(uri))
    out = []
    for side, frame, n in (("users", model.userFactors, nu), ("items", model.itemFactors, ni)):
        # Back through Parquet too: Spark writes, DuckDB reads; no rows through py4j.
        path, spark_uri = hand.file(f"{tag}_{side}_factors")
        frame.write.mode("overwrite").parquet(spark_uri)
        out.append(_factors(cur, path, n, p.rank))
    return Fit(where, mu, out[0], out[1], bu, bi, model)


PAIRS_PER_BLOCK = 2_000_000   # ALS's blocks: one task holds a block's ratings in its heap


def _blocks(cur, spark) -> int:
    """ALS's user and item blocks: the session's parallelism, or more for many pairs, so
    that one task's block stays small (with local[2], 50M ratings in 2 blocks ran Spark's
    1.5 GB heap out of memory)."""
    pairs = cur.execute(f"SELECT count(*) FROM {T}_pairs").fetchall()[0][0]
    return max(session.parallelism(spark), min(200, -(-pairs // PAIRS_PER_BLOCK)))


def _baseline(cur, where: str, nu: int, ni: int, implicit: bool):
    """mu, b_u, b_i of the pairs ``where`` selects (zero for implicit feedback), kept in TEMP
    tables by code for the Parquet the fit reads."""
    if implicit:
        mu = 0.0
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {T}_bias_i AS SELECT code, 0.0 AS b "
                    f"FROM {T}_items")
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {T}_bias_u AS SELECT code, 0.0 AS b "
                    f"FROM {T}_users")
    else:
        mu = float(cur.execute(f"SELECT avg(r) FROM {T}_pairs WHERE {where}").fetchall()[0][0])
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {T}_bias_i AS SELECT ii.code, coalesce("
                    f"(SELECT sum(r - {mu!r}) / (count(*) + {DAMPING}) FROM {T}_pairs p "
                    f"WHERE p.i = ii.code AND ({where})), 0.0) AS b FROM {T}_items ii")
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {T}_bias_u AS SELECT uu.code, coalesce("
                    f"(SELECT sum(r - {mu!r} - bi.b) / (count(*) + {DAMPING}) FROM {T}_pairs p "
                    f"JOIN {T}_bias_i bi ON bi.code = p.i WHERE p.u = uu.code AND ({where})), "
                    f"0.0) AS b FROM {T}_users uu")
    bu = _column(cur, f"SELECT b FROM {T}_bias_u ORDER BY code", nu)
    bi = _column(cur, f"SELECT b FROM {T}_bias_i ORDER BY code", ni)
    return mu, bu, bi


def _column(cur, sql: str, n: int) -> np.ndarray:
    arr = cur.execute(sql).fetchnumpy()
    out = np.asarray(next(iter(arr.values())), dtype=np.float64)
    assert len(out) == n
    return out


def _factors(cur, path: str, n: int, k: int) -> np.ndarray:
    """Spark's float32 factors, read back by DuckDB, as float64 rows by code."""
    table = cur.sql(f"SELECT id, features::DOUBLE[] AS f FROM read_parquet('"
                    f"{path.replace(chr(39), chr(39) * 2)}/*.parquet')").to_arrow_table()
    out = np.zeros((n, k))
    if table.num_rows:
        ids = table.column("id").to_numpy()
        flat = table.column("f").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        out[ids] = flat.reshape(len(ids), k)
    return out


# -- back in sqlml: the stored form --------------------------------------------------------------
def _ids(cur, side: str):
    col = cur.execute(f"SELECT CASE WHEN typeof(id) = 'UUID' THEN 'uuid' END, id::VARCHAR "
                      f"FROM {T}_{side} ORDER BY code LIMIT 1").fetchall()[0]
    cast = "::VARCHAR" if col and col[0] == "uuid" else ""
    arr = cur.execute(f"SELECT id{cast} AS id FROM {T}_{side} ORDER BY code").fetchnumpy()["id"]
    arr = np.asarray(arr.tolist() if hasattr(arr, "mask") else arr)
    kind, ids = _id_kind(arr if arr.dtype.kind != "U" else arr.astype(object), side)
    return ("uuid" if cast else kind), ids


EVAL_USERS = 10_000     # held-out users the ranking metrics are measured on, at most
EVAL_PAIRS = 200_000    # test pairs RMSE and MAE are measured on, at most


def _model(cur, fit: Fit, p: AlsParams, s: dict, seen_where: str, *,
           eval_users: np.ndarray | None = None, seen: bool = True,
           seen_in_table: bool = False) -> RecommenderModel:
    """A RecommenderModel of one fit, its seen pairs those ``seen_where`` selects; for the
    metrics, only ``eval_users`` (codes, sorted), or no seen pairs at all (``seen=False``).
    The served model (``seen_in_table``) keeps none in its arrays: they go to its ``_seen``
    table in SQL, and serving reads the requested users' from there, so no step of training
    or publishing holds every pair in this process."""
    (uk, user_ids), (ik, item_ids) = _ids(cur, "users"), _ids(cur, "items")
    if np.any(user_ids[1:] < user_ids[:-1]) or np.any(item_ids[1:] < item_ids[:-1]):
        raise TrainingError(f"{FN}: the ids of the training data do not sort the same in "
                            f"DuckDB and numpy; cast the id columns to BIGINT or VARCHAR.")
    keep = np.arange(len(user_ids)) if eval_users is None else eval_users
    where = seen_where + ("" if eval_users is None else f" AND u IN (SELECT u FROM {T}_eval)")
    got = cur.execute(f"SELECT u, i, r FROM {T}_pairs WHERE {where}{'' if seen else ' AND false'}"
                      f" ORDER BY u, i").fetchnumpy()
    su = np.searchsorted(keep, np.asarray(got["u"]))
    si, sv = np.asarray(got["i"]), np.asarray(got["r"], np.float64)
    ni = len(item_ids)
    popular = cur.execute(f"SELECT i, count(*)::DOUBLE AS n FROM {T}_pairs WHERE ({seen_where}) "
                          f"AND positive GROUP BY i").fetchnumpy()
    popularity = np.zeros(ni)
    popularity[np.asarray(popular["i"], np.int64)] = popular["n"]
    rows, pairs, low, high = cur.execute(f"SELECT sum(n), count(*), min(r), max(r) FROM "
                                         f"{T}_pairs").fetchall()[0]
    params = {**p.settings(), "feedback": s["feedback"], "random_state": p.seed,
              "implicit_threshold": s["implicit_threshold"], "engine": "spark",
              "algorithm": "Spark MLlib ALS" + (" (implicitPrefs)" if p.implicit else
                                                " on the residuals of a damped bias baseline")}
    info: dict = {"rows": int(rows), "pairs": int(pairs), "duplicates": int(rows - pairs),
            "rating_min": float(low), "rating_max": float(high)}
    if seen_in_table:
        info["seen"] = "table"
    return RecommenderModel(
        feedback=s["feedback"], user_kind=uk, item_kind=ik, user_ids=user_ids[keep],
        item_ids=item_ids, global_mean=fit.mu, user_bias=fit.user_bias[keep],
        item_bias=fit.item_bias, user_factors=fit.user_factors[keep],
        item_factors=fit.item_factors, popularity=popularity,
        seen_indptr=np.concatenate([[0], np.cumsum(np.bincount(su, minlength=len(keep)))]),
        seen_items=si, seen_values=sv, params=params, info=info)


def _metrics(cur, fits: dict[str, Fit], s: dict) -> tuple[dict, int]:
    """sqlml's recommender metrics: ranking on the held-out latest pairs (of at most
    EVAL_USERS seeded users), and for explicit feedback RMSE and MAE on the test split (at
    most EVAL_PAIRS seeded pairs), each from the fit that did not see them."""
    p = AlsParams.of(s)
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {T}_eval AS SELECT u FROM (SELECT DISTINCT u "
                f"FROM {T}_pairs WHERE held) ORDER BY hash(u, {p.seed}) LIMIT {EVAL_USERS}")
    users = np.sort(np.asarray(cur.execute(f"SELECT u FROM {T}_eval").fetchnumpy()["u"]))
    part = _model(cur, fits["part"], p, s, "NOT held", eval_users=users)
    held = cur.execute(f"SELECT uu.id AS u, ii.id AS i FROM {T}_pairs p JOIN {T}_users uu ON "
                       f"uu.code = p.u JOIN {T}_items ii ON ii.code = p.i WHERE held AND p.u "
                       f"IN (SELECT u FROM {T}_eval)").fetchnumpy()
    metrics = {key.replace(f"@{s['k']}", "_at_k"): v for key, v in evaluate_ranking(
        part, _plain(held["u"]), _plain(held["i"]), s["k"]).items() if key != "n"}
    metrics["k"] = s["k"]
    if not p.implicit:
        split = _model(cur, fits["split"], p, s, "NOT test", seen=False)
        test = cur.execute(f"SELECT uu.id AS u, ii.id AS i, r FROM {T}_pairs p JOIN {T}_users "
                           f"uu ON uu.code = p.u JOIN {T}_items ii ON ii.code = p.i WHERE test "
                           f"ORDER BY hash(p.u, p.i, {p.seed + 2}) LIMIT {EVAL_PAIRS}"
                           ).fetchnumpy()
        err = evaluate_explicit(split, _plain(test["u"]), _plain(test["i"]), test["r"])
        metrics.update(rmse=err["rmse"], mae=err["mae"])
    return metrics, len(held["u"])


def _plain(arr) -> np.ndarray:
    arr = np.asarray(arr)
    return arr.astype(str) if arr.dtype == object and len(arr) and not isinstance(
        arr[0], int | np.integer | str) else arr


def _publish(cur, name: str, function: str, query: str, s: dict, types: dict,
             model: RecommenderModel, metrics: dict, held_rows: int, started: float,
             check) -> dict:
    spark, p, sample, spark_scores = check
    fingerprint = cur.execute(f"SELECT count(*) || ':' || lpad(printf('%x', bit_xor(hash(u, i, "
                              f"r))), 16, '0') FROM {T}_pairs").fetchall()[0][0]
    engine = {**session.about(spark, s), "als": p.settings() | {"implicitPrefs": p.implicit}}
    record = rec.record_of(name, function, query, s, types, model, metrics,
                           training_rows=model.info["rows"], validation_rows=held_rows,
                           fingerprint=fingerprint, started=started, engine=engine)
    user_type, item_type = types[s["user_col"]], types[s["item_col"]]

    def write_factors(cur, version):
        seen = (f"SELECT uu.id AS user_id, ii.id AS item_id, p.r AS value FROM {T}_pairs p "
                f"JOIN {T}_users uu ON uu.code = p.u JOIN {T}_items ii ON ii.code = p.i")
        for stmt in rec.factor_tables(cur, name, version, model, user_type, item_type,
                                      seen_query=seen):
            cur.execute(stmt)
        ddl = generated.recommender_statements(
            name, function, version, s["user_col"], s["item_col"], user_type, item_type,
            model.global_mean, model.feedback)
        for stmt in ddl:
            cur.execute(stmt)
        # Before COMMIT: a mismatch raises, and the transaction (this version) rolls back.
        record["parameters"]["spark_check"] = check_recommender(
            cur, function, model, sample, spark_scores)
        cur.execute("UPDATE sqlml.model_versions SET parameters = ? WHERE name = ? AND "
                    "version = ?", [_json(record["parameters"]), name, version])
        return []

    ddl = []
    previous = catalog.model_row(cur, name)
    if previous and previous["function_name"] != function:
        ddl = generated.drop_statements(generated.all_names(previous["function_name"]))
    metric_rows = [(k, None, float(v)) for k, v in metrics.items()]
    version = catalog.publish(cur, record, metric_rows, [], [], ddl, extra=write_factors)
    return {"name": name, "version": version, "problem_type": "recommendation",
            "model_type": "matrix_factorization", "function": function,
            "objective": record["objective"],
            "validation_score": metrics["rmse"] if s["feedback"] == "explicit"
            else metrics["ndcg_at_k"], "threshold": None, "training_rows": model.info["rows"],
            "seconds": round(time.perf_counter() - started, 3),
            "notes": f"trained on Spark {spark.version} ({engine['spark_master']}), ALS rank "
                     f"{p.rank}, {p.iters} iterations"}


def _json(value) -> str:
    import json

    return json.dumps(value, default=str)

