"""Tuning on engine 'spark': sqlml's hyperparameter ranges and search settings, run by MLlib's
TrainValidationSplit on the training split.

The points come from sqlml's own search space (``{min, max}``, ``{values: [...]}``): a grid
(``strategy: 'grid'``) or seeded random draws (``'random'``, and ``'bayesian'``, which Spark
runs as random: MLlib chooses no point from earlier results), at most ``max_trials``. Each
point's sqlml names become MLlib parameters as the untuned fit does (estimators.py);
TrainValidationSplit holds out ``1 / cv_folds`` of the training split, scores every point with
the objective's MLlib evaluator, and refits the best on the whole training split.
"""

from __future__ import annotations

import time

import numpy as np

from sqlml.engines.spark.estimators import spark_estimator
from sqlml.errors import TrainingError
from sqlml.train import tuning

FN = "ml_create_model"
# objective -> (MLlib evaluator, metric name)
EVALUATORS = {"auc": ("BinaryClassificationEvaluator", "areaUnderROC"),
              "accuracy": ("MulticlassClassificationEvaluator", "accuracy"),
              "log_loss": ("MulticlassClassificationEvaluator", "logLoss"),
              "rmse": ("RegressionEvaluator", "rmse"), "mae": ("RegressionEvaluator", "mae"),
              "r2": ("RegressionEvaluator", "r2")}


def points(req) -> tuple[list[dict], list[str]]:
    """The hyperparameter points to try (sqlml's names), and notes."""
    s = req.settings
    fixed, space = tuning.split_space(req.hyperparameters)
    plan = tuning.plan(s)
    notes = []
    if plan.strategy == "grid":
        found = tuning.grid_points(space)[: plan.max_trials] if space else [{}]
    else:
        if plan.strategy == "bayesian":
            notes.append("strategy 'bayesian' ran as random search on Spark: MLlib's "
                         "TrainValidationSplit chooses no point from the earlier ones")
        rng = np.random.default_rng(s["random_state"])
        found = [{k: p.sample(rng) for k, p in space.items()} for _ in range(plan.max_trials)]
        found = [dict(t) for t in dict.fromkeys(tuple(sorted(p.items())) for p in found)]
    return [{**fixed, **p} for p in found], notes


def evaluator(problem, objective: str):
    from pyspark.ml import evaluation

    if objective not in EVALUATORS:
        raise TrainingError(
            f"{FN}: objective {objective!r} cannot rank tuning trials on engine 'spark'; MLlib's "
            f"evaluators give {', '.join(EVALUATORS)}. Choose one of them, or tune in-process.")
    kind, metric = EVALUATORS[objective]
    return getattr(evaluation, kind)(metricName=metric, labelCol="label")


def search(pipeline_for, part, req, problem, rows: int) -> tuple:
    """TrainValidationSplit over the points: the best model refitted on ``part``, the best
    point's MLlib estimator and parameters, sqlml's trial rows, and notes."""
    from dataclasses import replace

    from pyspark.ml.tuning import TrainValidationSplit

    tried, notes = points(req)
    ests = [spark_estimator(replace(req, hyperparameters=p), problem, rows) for p in tried]
    base, _ = ests[0]
    maps = [{base.getParam(k): v for k, v in params.items() if k != "estimator"}
            for _, params in ests]
    ev = evaluator(problem, problem.objective)
    t0 = time.perf_counter()
    tvs = TrainValidationSplit(estimator=pipeline_for(base), estimatorParamMaps=maps,
                               evaluator=ev, trainRatio=1 - 1 / req.settings["cv_folds"],
                               seed=int(req.settings["random_state"]))
    model = tvs.fit(part)
    each = (time.perf_counter() - t0) / len(tried)
    sign = 1.0 if ev.isLargerBetter() else -1.0
    scores = [sign * float(m) for m in model.validationMetrics]
    best = int(np.argmax(scores))
    trials = [{"trial": k + 1, "model_type": req.model_type,
               "parameters": {n: tuning.jsonable(v) for n, v in p.items()},
               "objective": problem.objective, "score": scores[k], "fold_scores": None,
               "seconds": each, "status": "completed"} for k, p in enumerate(tried)]
    notes.append(f"tuned on Spark: {len(tried)} trials by TrainValidationSplit (1/"
                 f"{req.settings['cv_folds']} of the training split held out)")
    return model.bestModel, ests[best][0], ests[best][1], trials, notes
