"""``sqlml demo``: a demo database built from the shipped synthetic generators."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable

import sqlml
from sqlml import datasets

PASTE_SQL = """\
-- Run these on con = sqlml.connect('{path}') from Python, or paste them into any DuckDB
-- client: the models' functions are plain SQL stored in the file.
FROM ml_models();
FROM ml_show_model('customer_churn');
FROM ml_model_metrics('customer_churn');
SELECT plan, count(*) AS customers, avg(predict_churn_probability(c)) AS avg_risk
FROM customers c GROUP BY plan ORDER BY avg_risk DESC;
SELECT customer_id, predict_churn(c) AS churn, round(predict_churn_probability(c), 3) AS p_churn
FROM new_customers c ORDER BY p_churn DESC LIMIT 5;
SELECT r.rank, m.title, round(r.score, 2) AS score, r.reason
FROM recommend_movies(42, k := 5) r JOIN movies m USING (movie_id) ORDER BY r.rank;"""

# The same dashboard query from the plain duckdb CLI (pip install duckdb-cli), without Python.
CLI_COMMAND = ("duckdb -readonly {path} -c \"SELECT plan, count(*) AS customers, "
               "round(avg(predict_churn_probability(c)), 4) AS avg_risk FROM customers c "
               "GROUP BY plan ORDER BY avg_risk DESC\"")


def run(path: str | os.PathLike = "sqlml_demo.duckdb", *, rows: int = 5000,
        echo: Callable[[str], None] = print) -> dict:
    """Create the demo database at ``path`` (replacing it), train, score and print."""
    path = os.fspath(path)
    for p in (path, path + ".wal"):
        if os.path.exists(p):
            os.remove(p)
    con = sqlml.connect(path)
    customers = datasets.make_customers(rows)
    new_customers = datasets.make_new_customers(20)
    con.execute("CREATE TABLE customers AS SELECT * FROM customers")
    con.execute("CREATE TABLE new_customers AS SELECT * FROM new_customers")
    echo(f"Created {path}: customers ({len(customers):,} rows), new_customers "
         f"({len(new_customers)} rows).")
    echo("\nTraining: SELECT ml_create_model('customer_churn', 'customers', "
         "target := 'churned', function := 'predict_churn', settings := {max_runtime: 120})")
    summary = con.execute(
        "SELECT ml_create_model('customer_churn', 'customers', target := 'churned', "
        "function := 'predict_churn', settings := {max_runtime: 120})").fetchall()[0][0]
    echo(f"  version {summary['version']}: {summary['model_type']} chosen by "
         f"{summary['objective']}, validation score {summary['validation_score']:.3f}, "
         f"{summary['seconds']:.1f}s")
    if summary["notes"]:
        echo(f"  notes: {summary['notes']}")
    echo("\nCandidates compared (FROM ml_trials('customer_churn')):")
    for mt, score, sec in con.execute(
            "SELECT model_type, score, seconds FROM ml_trials('customer_churn')").fetchall():
        echo(f"  {mt:18s} {'-' if score is None else f'{score:.3f}'}  {sec:.1f}s")
    echo("\nValidation metrics (FROM ml_model_metrics('customer_churn')):")
    metrics = dict(con.execute("SELECT metric, value FROM ml_model_metrics('customer_churn') "
                               "WHERE class_label IS NULL").fetchall())
    for key in ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss"):
        echo(f"  {key:10s} {metrics[key]:.3f}")
    echo("\nScoring new customers:")
    top = con.execute(
        "SELECT customer_id, plan, contract, predict_churn(c) AS churn, "
        "round(predict_churn_probability(c), 3) AS p FROM new_customers c "
        "ORDER BY p DESC LIMIT 5").fetchall()
    for cid, plan, contract, churn, p in top:
        echo(f"  customer {cid}: {plan:10s} {contract:15s} churn={churn!s:5s} p={p}")
    recommend_demo(con, echo)
    report = write_report(con, path, echo)
    echo("\nTry it yourself:\n" + PASTE_SQL.format(path=path))
    echo("\nOr from the duckdb command line, with no Python at all:\n"
         + CLI_COMMAND.format(path=shlex.quote(os.fspath(path))))
    con.close()
    return {"summary": summary, "metrics": metrics, "top": top, "report": report}


def write_report(con, path: str, echo: Callable[[str], None]) -> str:
    """The churn model's HTML report beside the database file; returns its path."""
    out = os.path.splitext(path)[0] + "_report.html"
    sqlml.report(con, "customer_churn", out)
    echo(f"\nModel report (SELECT ml_report('customer_churn')): {os.path.abspath(out)}\n"
         f"  open it in a browser; the recommender's: sqlml report {shlex.quote(path)} "
         f"movie_recs")
    return os.path.abspath(out)


def recommend_demo(con, echo: Callable[[str], None]) -> None:
    ratings = datasets.make_ratings()  # noqa: F841 (read by DuckDB)
    movies = datasets.make_movies()  # noqa: F841
    con.execute("CREATE TABLE ratings AS FROM ratings")
    con.execute("CREATE TABLE movies AS FROM movies")
    echo("\nRecommender: ml_create_model('movie_recs', 'ratings', problem_type := "
         "'recommendation', function := 'recommend_movies', settings := {...})")
    s = con.execute(
        "SELECT ml_create_model('movie_recs', 'ratings', problem_type := 'recommendation', "
        "function := 'recommend_movies', settings := {user_col: 'user_id', item_col: "
        "'movie_id', rating_col: 'rating', timestamp_col: 'rated_at'})").fetchall()[0][0]
    echo(f"  version {s['version']}: holdout RMSE {s['validation_score']:.3f}, "
         f"{s['seconds']:.1f}s")
    echo("Top 5 for user 42 (FROM recommend_movies(42, k := 5)):")
    for rank, title, score, reason in con.execute(
            "SELECT r.rank, m.title, r.score, r.reason FROM recommend_movies(42, k := 5) r "
            "JOIN movies m USING (movie_id) ORDER BY r.rank").fetchall():
        echo(f"  {rank}. {title:40s} {score:.2f}  {reason or ''}")
