"""The ``sqlml`` command line."""

from __future__ import annotations

import sys

import click


@click.group()
@click.version_option(package_name="sqlml")
def main() -> None:
    """Machine learning inside DuckDB, done in SQL."""


@main.command()
@click.argument("path", default="sqlml_demo.duckdb", required=False)
@click.option("--rows", default=5000, show_default=True, help="Synthetic customers to generate.")
def demo(path: str, rows: int) -> None:
    """Create a demo database, train a churn model, score new customers.

    \b
    Example:
        sqlml demo churn_demo.duckdb
    """
    from sqlml import demo as demo_module

    try:
        demo_module.run(path, rows=rows, echo=click.echo)
    except Exception as exc:  # the message is the product; a traceback is not
        click.echo(f"sqlml demo: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
