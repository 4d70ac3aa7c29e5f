"""The REST endpoint of ``sqlml serve``: JSON scoring of stored models over HTTP."""
