"""Redshift ML's statements (CREATE MODEL, SHOW MODEL, DROP MODEL) parsed and run as
sqlml calls."""
