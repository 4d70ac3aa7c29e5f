"""Engine 'spark': train on Apache Spark MLlib, serve from DuckDB (docs/spark.md).

``session`` starts or reuses the SparkSession and runs one training's jobs under one job group;
``handoff`` moves the training rows DuckDB -> Parquet -> Spark; ``als`` (recommenders) and
``supervised`` (classification, regression) fit in Spark and convert the fitted model into
sqlml's own stored form; ``verify`` checks, before publishing, that DuckDB scores as Spark does.
"""
