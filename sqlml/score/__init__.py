"""Scoring stored models: the Python-served functions, their fast path, explanations and
the refreshed scores table."""
