"""Supervised training: data to a validated, refitted and published model version."""
