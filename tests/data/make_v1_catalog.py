"""Write tests/data/v1_catalog.duckdb: a file made by sqlml with catalog schema version 1.

Version 1 is the catalog before it recorded a schema version (sqlml.meta held only the SQL
fingerprint), written by the flat package layout whose artifacts name ``sqlml.preprocessing.*``
and ``sqlml.scaled_mlp.*``. tests/test_migrations.py opens a copy with today's sqlml and checks
that it migrates and serves the predictions stored here.

The file was made from commit 422c6b5 ("Tests: the psql tests' reference scoring written once",
the last commit before "Package layout by data flow"), with duckdb 2.0.1, scikit-learn 1.9.1 and
skops 0.16.0, by:

    git worktree add --detach /tmp/sqlml-v1 422c6b5
    python3 -m venv /tmp/v1-venv && /tmp/v1-venv/bin/pip install /tmp/sqlml-v1
    /tmp/v1-venv/bin/python tests/data/make_v1_catalog.py tests/data/v1_catalog.duckdb
    git worktree remove /tmp/sqlml-v1

(A venv, not PYTHONPATH: an editable install of today's sqlml would win over PYTHONPATH.)

The file is created in the DuckDB 1.4 storage format (as sqlml.connect writes new files), so
duckdb 1.4 can open it, with 16 KB blocks to keep it small.

Contents: tables customers (200 rows of make_customers) and new_customers (20 rows); models
churn_lr (logistic), churn_gb (gradient_boosting) and spend_mlp (an mlp regression, whose
artifact holds sqlml.scaled_mlp.ScaledTargetMLPRegressor), all with date and text columns so the
artifacts hold sqlml.preprocessing.DateParts and TextCleaner; a small recommender movie_recs; and
the predictions they made, in expected_scores, expected_recommendations and expected_ratings.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import duckdb

import sqlml
from sqlml.datasets import make_customers, make_new_customers, make_ratings

MODELS = (
    # (name, columns left out, target, model_type, hyperparameters). A text column's TF-IDF
    # vocabulary takes megabytes of schema.json, so only the first model has support_notes.
    ("churn_lr", "customer_id", "churned", "logistic", "{}"),
    ("churn_gb", "customer_id, support_notes", "churned", "gradient_boosting",
     '{"max_iter": 20}'),
    ("spend_mlp", "customer_id, support_notes, churned", "monthly_charges", "mlp",
     '{"hidden_layer_sizes": [4], "max_iter": 50}'),
)
SCORED = "(SELECT * EXCLUDE (churned) FROM customers UNION ALL BY NAME FROM new_customers)"
RECOMMENDED_USERS = "(SELECT DISTINCT user_id FROM ratings ORDER BY user_id LIMIT 5)"


def main(path: Path) -> None:
    if importlib.util.find_spec("sqlml.train") is not None:
        sys.exit("this is today's sqlml: run it with the sqlml of commit 422c6b5 (see above)")
    path.unlink(missing_ok=True)
    # 16 KB blocks instead of 256 KB: every table takes whole blocks, so this keeps the file
    # small. The 1.4 storage format, as sqlml.connect writes it, keeps duckdb 1.4 able to read.
    duckdb.connect().execute(
        f"ATTACH '{path}' AS new_file (BLOCK_SIZE 16384, STORAGE_VERSION 'v1.4.0')").close()
    con = sqlml.connect(path)
    frames = {"customers": make_customers(200), "new_customers": make_new_customers(20),
              "ratings": make_ratings(40, 60, density=0.2)}
    for table, frame in frames.items():
        con.register(f"{table}_frame", frame)
        con.execute(f"CREATE TABLE {table} AS FROM {table}_frame")
        con.unregister(f"{table}_frame")
    for name, left_out, target, model_type, hyper in MODELS:
        sqlml.create_model(con, name, f"SELECT * EXCLUDE ({left_out}) FROM customers",
                           target=target, model_type=model_type, function=f"predict_{name}",
                           hyperparameters=hyper, progress=False)
    sqlml.create_model(
        con, "movie_recs", "SELECT user_id, movie_id, rating FROM ratings",
        problem_type="recommendation", function="recommend_movies", progress=False,
        settings={"user_col": "user_id", "item_col": "movie_id", "rating_col": "rating",
                  "feedback": "explicit"})
    con.execute(
        f"CREATE TABLE expected_scores AS SELECT customer_id, "
        f"predict_churn_lr(c) AS churn_lr, predict_churn_lr_probability(c) AS churn_lr_p, "
        f"predict_churn_gb(c) AS churn_gb, predict_churn_gb_probability(c) AS churn_gb_p, "
        f"predict_spend_mlp(c) AS spend_mlp FROM {SCORED} c ORDER BY customer_id")
    con.execute(
        f"CREATE TABLE expected_recommendations AS SELECT u.user_id, r.* "
        f"FROM {RECOMMENDED_USERS} u, LATERAL (FROM recommend_movies(u.user_id, k := 5)) r "
        f"ORDER BY u.user_id, r.rank")
    con.execute(
        "CREATE TABLE expected_ratings AS SELECT user_id, movie_id, "
        "recommend_movies_rating(user_id, movie_id) AS predicted FROM ratings "
        "ORDER BY user_id, movie_id LIMIT 50")
    con.execute("CHECKPOINT")
    con.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/v1_catalog.duckdb"))
