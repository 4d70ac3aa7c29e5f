"""The Spark ML Pipeline of sqlml's in-process preprocessing, and its fitted values.

Per numeric or boolean feature: a missing indicator when the data has NULLs (SQLTransformer),
median imputation (Imputer), and for the linear models standard scaling of the numeric block
(StandardScaler, with mean); per categorical feature: NULL as the category '(missing)'
(SQLTransformer), labels in alphabetical order (StringIndexer, unknown labels kept apart) and
one column per label (OneHotEncoder); then one VectorAssembler and the estimator.
"""

from __future__ import annotations

from sqlml.engines.spark.convert import MISSING, Layout


def names(layout: Layout) -> dict[str, str]:
    """Feature name -> its column in the Parquet hand-off (f0, f1, ...)."""
    return {f.name: f"f{j}" for j, f in enumerate(layout.features)}


def build(layout: Layout, estimator, scale: bool):
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import (
        Imputer,
        OneHotEncoder,
        SQLTransformer,
        StandardScaler,
        StringIndexer,
        VectorAssembler,
    )

    col = names(layout)
    extra = [f"CAST({col[f.name]} IS NULL OR isnan({col[f.name]}) AS DOUBLE) AS {col[f.name]}_m"
             for f in layout.numeric if layout.nullable[f.name]]
    extra += [f"coalesce({col[f.name]}, '{MISSING}') AS {col[f.name]}_c"
              for f in layout.categorical]
    stages: list = []
    if extra:
        stages.append(SQLTransformer(statement=f"SELECT *, {', '.join(extra)} FROM __THIS__"))
    parts = []
    if layout.numeric:
        raw = [col[f.name] for f in layout.numeric]
        stages.append(Imputer(inputCols=raw, outputCols=[c + "_i" for c in raw],
                              strategy="median"))
        block = []
        for f in layout.numeric:
            block += [col[f.name] + "_i"] + ([col[f.name] + "_m"]
                                             if layout.nullable[f.name] else [])
        stages.append(VectorAssembler(inputCols=block, outputCol="__sqlml_num"))
        if scale:
            stages.append(StandardScaler(inputCol="__sqlml_num", outputCol="__sqlml_scaled",
                                         withMean=True, withStd=True))
        parts.append("__sqlml_scaled" if scale else "__sqlml_num")
    cats = [col[f.name] for f in layout.categorical]
    if cats:
        stages.append(StringIndexer(inputCols=[c + "_c" for c in cats],
                                    outputCols=[c + "_x" for c in cats],
                                    stringOrderType="alphabetAsc", handleInvalid="keep"))
        stages.append(OneHotEncoder(inputCols=[c + "_x" for c in cats],
                                    outputCols=[c + "_o" for c in cats], dropLast=False))
        parts += [c + "_o" for c in cats]
    stages.append(VectorAssembler(inputCols=parts, outputCol="features"))
    stages.append(estimator)
    return Pipeline(stages=stages)


def fitted_values(cur, model, layout: Layout, hand, tag: str) -> dict:
    """Spark's fitted medians, means, deviations, labels, and the estimator: coefficients as
    the model object, trees as node rows (Spark saves them as Parquet, DuckDB reads them)."""
    col = names(layout)
    out: dict = {"medians": {}, "mean": None, "std": None, "labels": {}}
    for stage in model.stages:
        kind = type(stage).__name__
        if kind == "ImputerModel":
            row = stage.surrogateDF.collect()[0]
            out["medians"] = {f.name: float(row[col[f.name]]) for f in layout.numeric}
        elif kind == "StandardScalerModel":
            out["mean"], out["std"] = stage.mean.toArray(), stage.std.toArray()
        elif kind == "StringIndexerModel":
            out["labels"] = {f.name: list(labels)
                             for f, labels in zip(layout.categorical, stage.labelsArray,
                                                  strict=True)}
    est = model.stages[-1]
    if hasattr(est, "intercept") or hasattr(est, "interceptVector"):
        out["kind"], out["model"] = "linear", est
        return out
    path, uri = hand.file(tag)
    est.write().overwrite().save(uri)
    data = f"read_parquet('{path.replace(chr(39), chr(39) * 2)}/data/*.parquet')"
    columns = [r[0] for r in cur.execute(f"DESCRIBE SELECT * FROM {data}").fetchall()]
    select = ("treeID, nodeData.*" if "treeID" in columns else "0 AS treeID, *")
    rows = cur.execute(f"SELECT {select} FROM {data}").fetchall()
    fields = [d[0] for d in cur.description]
    nodes: dict[int, list[dict]] = {}
    for r in rows:
        rec = dict(zip(fields, r, strict=True))
        nodes.setdefault(int(rec["treeID"]), []).append(rec)
    out["nodes"] = nodes
    out["kind"] = "boosting" if type(est).__name__.startswith("GBT") else "trees"
    out["weights"] = list(getattr(est, "treeWeights", [])) if out["kind"] == "boosting" else []
    return out
