"""The ``sqlml`` command line: a thin shell over the Python API and the statement runner."""
