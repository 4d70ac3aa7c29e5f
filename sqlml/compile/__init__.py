"""Stored models compiled to plain SQL expressions that any DuckDB client can run."""
