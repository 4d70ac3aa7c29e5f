"""Engines other than this process that fit a model, whose result comes home into sqlml's own
stored form (settings engine): ``spark`` (Apache Spark MLlib, docs/spark.md)."""
