"""The catalog: the ``sqlml`` schema's tables, model artifacts, the names of generated
functions and the training sources they are read from."""
