"""The ``sqlml`` command line.

Exit codes: 0 success; 1 an error in the SQL, the data or a model (the message on stderr, no
traceback); 2 a usage error (a missing argument or script file), reported by click; 3 from
``sqlml drift --fail-on``, a drift verdict at least that bad.
"""

from __future__ import annotations

import os
import sys

import click


def _fail(command: str, text: str) -> None:
    click.echo(f"sqlml {command}: {text}", err=True)
    sys.exit(1)


def _open(command: str, database: str, *, read_only: bool = False, must_exist: bool = False):
    import duckdb

    import sqlml
    from sqlml.cli.console import message

    if must_exist and database != ":memory:" and not os.path.exists(database):
        _fail(command, f"database file {database!r} does not exist. Check the path, or create "
                       f"it with: sqlml shell {database}")
    try:
        return sqlml.connect(database, read_only=read_only)
    except (duckdb.Error, OSError, sqlml.SqlmlError) as exc:
        _fail(command, f"cannot open {database!r}: {message(exc)}")


def _has_catalog(con) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'sqlml' "
                       "AND table_name = 'models'").fetchall()[0][0] > 0


def _progress_option(f):
    return click.option(
        "--progress/--quiet", "-p/-q", "progress", default=None,
        help="Show the training progress bar, or hide it. By default it shows when stderr is a "
             "terminal and training lasts more than 2 seconds.")(f)


@click.group()
@click.version_option(package_name="sqlml")
def main() -> None:
    """Machine learning inside DuckDB, done in SQL.

    \b
    Example:
        sqlml demo shop.duckdb
        sqlml shell shop.duckdb
    """


@main.command()
@click.argument("path", default="sqlml_demo.duckdb", required=False)
# Fewer customers can leave a cross-validation fold, or the whole table, without a churner.
@click.option("--rows", default=5000, show_default=True, type=click.IntRange(min=100),
              help="Synthetic customers to generate (at least 100).")
def demo(path: str, rows: int) -> None:
    """Create a demo database, train a churn model, score new customers.

    \b
    Example:
        sqlml demo churn_demo.duckdb
    """
    from sqlml.cli import demo as demo_module

    try:
        demo_module.run(path, rows=rows, echo=click.echo)
    except Exception as exc:  # the message is the product; a traceback is not
        click.echo(f"sqlml demo: {exc}", err=True)
        sys.exit(1)


@main.command()
@click.argument("database", default=":memory:", required=False)
@_progress_option
def shell(database: str, progress: bool | None) -> None:
    """Interactive SQL shell on DATABASE (created if missing; in memory if omitted).

    Runs DuckDB SQL and the Redshift ML statements (CREATE MODEL, SHOW MODEL, DROP MODEL,
    EXPLAIN_MODEL) and prints results as tables. A statement ends with ';' and may span lines.
    Dot commands: .help, .models, .tables, .quit (or Ctrl-D). History is kept in
    ~/.sqlml_history, or the file $SQLML_HISTORY names. With standard input from a pipe or a
    file it runs the statements it reads, and exits with 1 if one failed.

    \b
    Example:
        sqlml shell shop.duckdb
        echo "SHOW MODEL ALL;" | sqlml shell shop.duckdb
    """
    from sqlml.cli import shell as shell_module
    from sqlml.cli.console import Console

    con = _open("shell", database)
    console = Console(con, out=click.echo, err=lambda m: click.echo(m, err=True),
                      progress=progress)
    try:
        code = shell_module.run(console, database)
    finally:
        con.close()
    sys.exit(code)


@main.command()
@click.argument("database")
# surrogateescape: bytes that are not UTF-8 reach Console.run, which names their line and column.
@click.argument("script", type=click.File("r", encoding="utf-8", errors="surrogateescape"))
@_progress_option
@click.option("--max-rows", default=40, show_default=True, type=click.IntRange(min=0),
              help="Rows printed per result (first and last halves); 0 prints every row.")
def run(database: str, script, progress: bool | None, max_rows: int) -> None:
    """Run the SQL script SCRIPT on DATABASE ('-' reads standard input).

    The script may mix DuckDB SQL with CREATE MODEL, SHOW MODEL, DROP MODEL and EXPLAIN_MODEL.
    It is parsed whole first, so a syntax error (reported with its line and column) runs
    nothing; then statements run in order and the first failing one stops the script.

    \b
    Example:
        sqlml run shop.duckdb train.sql
        cat train.sql | sqlml run shop.duckdb - --quiet
    """
    from sqlml.cli.console import Console

    text = script.read()
    source = getattr(script, "name", "<stdin>")     # stdin re-wrapped by click may have none
    con = _open("run", database)
    console = Console(con, out=click.echo, err=lambda m: click.echo(m, err=True),
                      progress=progress, max_rows=max_rows or None)
    try:
        ok = console.run(text, source)
    finally:
        con.close()
    sys.exit(0 if ok else 1)


@main.command()
@click.argument("database")
def models(database: str) -> None:
    """List the models stored in DATABASE, with their active version.

    \b
    Example:
        sqlml models shop.duckdb
    """
    from sqlml.cli import render
    from sqlml.cli.console import model_listing

    con = _open("models", database, read_only=True, must_exist=True)
    columns: list[str] = []
    rows: list[tuple] = []
    if _has_catalog(con):
        rel = con.sql("FROM ml_models() ORDER BY name")
        columns, rows = model_listing(rel.columns, rel.fetchall())
    con.close()
    if not rows:
        click.echo(f"No models in {database}. Train one with CREATE MODEL (sqlml shell "
                   f"{database}) or ml_create_model.")
        return
    click.echo(render.table(columns, rows))


def _model_name(con, model: str) -> str:
    """The stored name the user meant: exact, else the one model equal to it ignoring case, as
    an unquoted name in CREATE MODEL / DROP MODEL is read."""
    if not _has_catalog(con):
        return model
    names = [r[0] for r in con.execute("SELECT name FROM ml_models()").fetchall()]
    folded = [n for n in names if n.lower() == model.lower()]
    return model if model in names or len(folded) != 1 else folded[0]


@main.command()
@click.argument("database")
@click.argument("model")
def show(database: str, model: str) -> None:
    """Show a model's properties (SHOW MODEL): type, target, function, metrics, parameters.

    \b
    Example:
        sqlml show shop.duckdb customer_churn
    """
    import duckdb

    from sqlml.catalog import store as catalog
    from sqlml.cli import render
    from sqlml.cli.console import message

    con = _open("show", database, read_only=True, must_exist=True)
    try:
        # ml_show_model finds nothing to complain about in an empty catalog, so check first.
        if not _has_catalog(con) or not con.execute("SELECT count(*) FROM ml_models()"
                                                    ).fetchall()[0][0]:
            _fail("show", f"{catalog.absent(model)}: {database} holds no sqlml models. "
                          f"Train one with CREATE MODEL (sqlml shell {database}).")
        rows = con.execute("FROM ml_show_model(?)", [_model_name(con, model)]).fetchall()
    except duckdb.Error as exc:
        _fail("show", message(exc))
    finally:
        con.close()
    click.echo(render.table(["property", "value"], rows, wrap=True))


# (heading, row key) of the table `sqlml drift` prints; sqlml.drift() has every column.
DRIFT_COLUMNS = (("feature", "feature"), ("kind", "kind"), ("psi", "psi"), ("ks", "ks"),
                 ("missing +", "missing_rate_change"), ("unseen", "unseen_categories"),
                 ("hit rate +", "hit_rate_change"), ("verdict", "verdict"), ("note", "note"))
VERDICTS = ("stable", "shifted", "broken")


@main.command()
@click.argument("database")
@click.argument("model")
@click.argument("query")
@click.option("--by", default=None, metavar="COLUMN",
              help="Check drift per value of this column of the query (ml_drift_by).")
@click.option("--fail-on", type=click.Choice(["shifted", "broken"]), default=None,
              help="Exit with code 3 when any row's verdict is this bad or worse (for CI).")
def drift(database: str, model: str, query: str, by: str | None, fail_on: str | None) -> None:
    """Compare QUERY's rows with MODEL's training data: PSI, KS distance, missing rates,
    unseen categories and a verdict per feature, and the drift of the model's scores.

    Exit code 0 whatever the verdicts, 1 on an error; with --fail-on, 3 when a verdict is at
    least that bad.

    \b
    Example:
        sqlml drift shop.duckdb churn "SELECT * FROM customers_this_month"
        sqlml drift shop.duckdb churn "FROM customers_this_month" --by region --fail-on broken
    """
    import duckdb

    import sqlml
    from sqlml.cli import render
    from sqlml.cli.console import message

    con = _open("drift", database, read_only=True, must_exist=True)
    try:
        rows = sqlml.drift(con, _model_name(con, model), query, by=by)
    except (duckdb.Error, sqlml.SqlmlError) as exc:
        _fail("drift", message(exc))
    finally:
        con.close()
    columns = ([("group", "group")] if by else []) + list(DRIFT_COLUMNS)
    shown = [tuple(round(r[k], 4) if isinstance(r[k], float) else r[k] for _, k in columns)
             for r in rows]
    click.echo(render.table([h for h, _ in columns], shown, wrap=True))
    if fail_on is not None:
        bad = VERDICTS[VERDICTS.index(fail_on):]
        failing = [r for r in rows if r["verdict"] in bad]
        if failing:
            click.echo(f"sqlml drift: {len(failing)} row(s) with verdict "
                       f"{' or '.join(bad)} (--fail-on {fail_on}).", err=True)
            sys.exit(3)


@main.command()
@click.argument("database")
@click.argument("model")
@click.option("--if-exists", is_flag=True,
              help="Succeed without doing anything when there is no such model.")
def drop(database: str, model: str, if_exists: bool) -> None:
    """Drop a model: every version, its metrics and its SQL functions (DROP MODEL).

    \b
    Example:
        sqlml drop shop.duckdb customer_churn
        sqlml drop shop.duckdb old_model --if-exists
    """
    import duckdb

    from sqlml.catalog import store as catalog
    from sqlml.cli.console import message

    con = _open("drop", database, must_exist=True)
    try:
        model = _model_name(con, model)
        exists = con.execute("SELECT count(*) FROM ml_models() WHERE name = ?",
                             [model]).fetchall()[0][0] > 0
        if not exists and if_exists:
            absent = catalog.absent(model)
            click.echo(f"{absent[:1].upper()}{absent[1:]} in {database}; nothing was dropped.")
            return
        done = con.execute("SELECT ml_drop_model(?)", [model]).fetchall()[0][0]
    except duckdb.Error as exc:
        _fail("drop", message(exc))
    finally:
        con.close()
    click.echo(done[:1].upper() + done[1:] + ".")


@main.command()
@click.argument("database")
@click.argument("model")
@click.option("-o", "--output", default=None, metavar="FILE",
              help="Where to write the HTML report [default: MODEL_report.html].")
@click.option("--drift", default=None, metavar="QUERY",
              help="Add a drift section: the rows of QUERY against the training data "
                   "(FROM ml_drift).")
def report(database: str, model: str, output: str | None, drift: str | None) -> None:
    """Write a model's report: one self-contained HTML page of its charts and tables (ROC,
    precision-recall, cost, calibration, importance, trials; coverage for a recommender), and
    with --drift, the drift of a query's rows against the training data.

    \b
    Example:
        sqlml report shop.duckdb customer_churn -o churn.html
        sqlml report shop.duckdb customer_churn --drift "FROM customers_this_month"
    """
    import duckdb

    import sqlml
    from sqlml.cli.console import message
    from sqlml.reporting.output import write

    con = _open("report", database, read_only=True, must_exist=True)
    try:
        html = sqlml.report(con, _model_name(con, model), drift=drift)
        path = write(output or f"{model}_report.html", html, "sqlml report")
    except (duckdb.Error, sqlml.SqlmlError) as exc:
        _fail("report", message(exc))
    finally:
        con.close()
    click.echo(f"Wrote {path} ({len(html.encode()) / 1024:.0f} KB): open it in a browser.")


@main.command()
@click.argument("database")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; a non-loopback one needs --allow-remote, and TLS "
                   "or --insecure.")
@click.option("--port", default=5433, show_default=True, type=click.IntRange(0, 65535),
              help="Postgres wire protocol port (0 picks a free one).")
@click.option("--http-port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="REST endpoint port (0 picks a free one).")
@click.option("--no-http", is_flag=True, help="Serve Postgres clients only, no REST endpoint.")
@click.option("--password", envvar="SQLML_PASSWORD", default=None,
              help="Postgres password [env SQLML_PASSWORD]. Without one, one is generated on "
                   "first start, printed once and stored hashed in DATABASE.sqlml-serve.json.")
@click.option("--token", envvar="SQLML_TOKEN", default=None,
              help="REST bearer token [env SQLML_TOKEN]; generated and stored like the password "
                   "when absent.")
@click.option("--read-only", is_flag=True,
              help="Open the database read-only: refuse every write, COPY to a file included.")
@click.option("--allow-remote", is_flag=True,
              help="Confirm that --host may accept connections from other machines.")
@click.option("--allow-file-access", is_flag=True,
              help="Trusted setups only: let sessions read and write this machine's files and "
                   "network (read_text, COPY ... TO 'file', ATTACH, INSTALL/LOAD) as the user "
                   "running sqlml serve. Off by default: the server is locked down.")
@click.option("--user", "users", multiple=True, metavar="NAME:ROLE[:PASSWORD]",
              help="A login of its own, repeatable. ROLE admin may do everything; reader may "
                   "score, read the catalog and SELECT, not train, drop, roll back or write. "
                   "Without PASSWORD one is generated, printed once and stored hashed.")
@click.option("--tls-cert", default=None, type=click.Path(dir_okay=False),
              help="PEM certificate: serve Postgres over TLS (plain text refused) and REST "
                   "over HTTPS. Needs --tls-key.")
@click.option("--tls-key", default=None, type=click.Path(dir_okay=False),
              help="PEM private key of --tls-cert (unencrypted).")
@click.option("--insecure", is_flag=True,
              help="Allow a non-loopback --host without TLS (plain text on the network).")
def serve(database: str, host: str, port: int, http_port: int, no_http: bool,
          password: str | None, token: str | None, read_only: bool, allow_remote: bool,
          allow_file_access: bool, users: tuple[str, ...], tls_cert: str | None,
          tls_key: str | None, insecure: bool) -> None:
    """Serve DATABASE to Postgres clients (psql, drivers, BI tools) and over REST.

    Every session has sqlml installed, so predict_<model>(...), the metrics and the Redshift
    statements work from psql or curl. Password and token authentication are always on. Runs
    until Ctrl-C or SIGTERM.

    \b
    Example:
        sqlml serve shop.duckdb
        psql -h 127.0.0.1 -p 5433 -U sqlml -d shop
        sqlml serve shop.duckdb --read-only --port 6543 --no-http
        sqlml serve shop.duckdb --user analyst:reader
    """
    import duckdb

    from sqlml.cli.console import message
    from sqlml.errors import SqlmlError
    from sqlml.server import serve as serve_module

    try:
        serve_module.run(database, host=host, port=port,
                         http_port=None if no_http else http_port, password=password,
                         token=token, read_only=read_only, allow_remote=allow_remote,
                         allow_file_access=allow_file_access, users=users,
                         tls_cert=tls_cert, tls_key=tls_key, insecure=insecure,
                         echo=lambda text: click.echo(text, err=False))
    except serve_module.ServeError as exc:
        _fail("serve", str(exc))
    except (duckdb.Error, OSError, SqlmlError) as exc:
        _fail("serve", f"cannot open {database!r}: {message(exc)}")


if __name__ == "__main__":
    main()
