"""Engine 'spark' checks, made at training time before a version is published: the model as
DuckDB serves it must score a sample as Spark does.

Spark's ALS keeps its factors as float32 and its ``transform`` sums their products in float32
(about 7 significant digits). sqlml stores the same factors widened to float64 and scores in
float64. So the 1e-9 check compares both sides in float64 from the same factors: Spark computes
the float64 dot product of its own factor arrays (Spark SQL, on its userFactors and
itemFactors), DuckDB runs the stored pure-SQL function; and Spark's float32 ``transform`` itself
must agree with that float64 product to float32 precision (1e-5, relative).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sqlml.catalog import generated
from sqlml.errors import TrainingError

FN = "ml_create_model"
TOLERANCE = 1e-9          # float64 against float64, from the same factors
FLOAT32 = 1e-5            # Spark's own float32 transform against the float64 product
SAMPLE = "__sqlml_spark_sample"


@dataclass(frozen=True)
class Sample:
    """(user code, item code) pairs to check, kept in a TEMP table with their ids."""
    u: np.ndarray
    i: np.ndarray


def sample_pairs(cur, pairs: str, users: str, items: str, seed: int, n: int = 300) -> Sample:
    """Up to ``n`` training pairs and ``n`` (user, item) pairs drawn apart (mostly unseen)."""
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {SAMPLE} AS SELECT s.u, s.i, uu.id AS user_id, "
        f"ii.id AS item_id FROM (SELECT u, i FROM (SELECT u, i FROM {pairs} ORDER BY hash(u, i, "
        f"{seed}) LIMIT {n}) UNION SELECT u, i FROM (SELECT code AS u, row_number() OVER () AS "
        f"k FROM (SELECT code FROM {users} ORDER BY hash(code, {seed}) LIMIT {n})) "
        f"JOIN (SELECT code AS i, row_number() OVER () AS k FROM (SELECT code FROM {items} "
        f"ORDER BY hash(code, {seed + 1}) LIMIT {n})) USING (k)) s "
        f"JOIN {users} uu ON uu.code = s.u JOIN {items} ii ON ii.code = s.i")
    got = cur.execute(f"SELECT u, i FROM {SAMPLE} ORDER BY u, i").fetchnumpy()
    return Sample(np.asarray(got["u"], np.int64), np.asarray(got["i"], np.int64))


def spark_side(spark, als, sample: Sample) -> dict[str, np.ndarray]:
    """Spark's scores of the sample: ``transform`` (float32) and the float64 dot product of its
    factors, in the sample's order (NaN where Spark has no factors for the user or item)."""
    from pyspark.sql import functions as F

    frame = spark.createDataFrame([(int(u), int(i)) for u, i in zip(sample.u, sample.i,
                                                                      strict=True)],
                                  "u INT, i INT")
    dot = F.expr("aggregate(zip_with(uf.features, vf.features, (x, y) -> CAST(x AS DOUBLE) * "
                 "CAST(y AS DOUBLE)), CAST(0 AS DOUBLE), (acc, v) -> acc + v)")
    rows = (als.transform(frame).alias("t")
            .join(als.userFactors.alias("uf"), F.col("t.u") == F.col("uf.id"))
            .join(als.itemFactors.alias("vf"), F.col("t.i") == F.col("vf.id"))
            .select("t.u", "t.i", "t.prediction", dot.alias("dot")).collect())
    index = {(u, i): k for k, (u, i) in enumerate(zip(sample.u.tolist(), sample.i.tolist(),
                                                      strict=True))}
    f32, f64 = np.full(len(index), np.nan), np.full(len(index), np.nan)
    for row in rows:
        k = index[(row["u"], row["i"])]
        f32[k], f64[k] = row["prediction"], row["dot"]
    return {"transform": f32, "dot": f64}


def check_recommender(cur, function: str, model, sample: Sample,
                      spark: dict[str, np.ndarray]) -> dict:
    """DuckDB's ``<function>_rating_sql`` and the Python serving path against Spark, on the
    sample; raises (and so rolls the version back) past the tolerances."""
    got = cur.execute(f"SELECT {generated.quote(function + '_rating_sql')}(user_id, item_id) AS s"
                      f", user_id, item_id FROM {SAMPLE} ORDER BY u, i").fetchnumpy()
    duck = np.asarray(got["s"], np.float64)
    known = ~np.isnan(spark["dot"])
    base = model.global_mean + model.user_bias[sample.u] + model.item_bias[sample.i]
    expected = base + np.where(known, spark["dot"], 0.0)
    python = model.predict(np.asarray(got["user_id"]), np.asarray(got["item_id"]))
    diff = float(np.max(np.abs(duck - expected), initial=0.0))
    diff_py = float(np.max(np.abs(python - expected), initial=0.0))
    d32 = np.abs(spark["transform"][known] - spark["dot"][known])
    rel32 = float(np.max(d32 / np.maximum(1.0, np.abs(spark["dot"][known])), initial=0.0))
    if not (diff <= TOLERANCE and diff_py <= TOLERANCE and rel32 <= FLOAT32):
        raise TrainingError(
            f"{FN}: the recommender converted from Spark does not score as Spark does on "
            f"{len(duck)} sample pairs: DuckDB differs by {diff:.3g} and Python by {diff_py:.3g} "
            f"(tolerance {TOLERANCE:g}), Spark's float32 transform by {rel32:.3g} relative "
            f"(tolerance {FLOAT32:g}). Nothing was published; please report this with the "
            f"Spark version.")
    return {"pairs": len(duck), "spark_known_pairs": int(known.sum()),
            "max_abs_diff_duckdb": diff, "max_abs_diff_python": diff_py,
            "max_rel_diff_spark_float32_transform": rel32, "tolerance": TOLERANCE}
