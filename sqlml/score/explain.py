"""Explanations: global feature importance at training time, per-row contributions at scoring.

Global (``FROM ml_explain_model(model)``), computed once at training time and stored with the
version in ``sqlml.feature_importance``:

- ``permutation`` rows, one per input column: the mean drop of the model's objective (greater is
  better, as in scikit-learn) on the validation rows when that DuckDB column is shuffled before
  the pipeline (``sklearn.inspection.permutation_importance``), fitted on the training split only,
  3 repeats on at most 2,000 validation rows. When tuning has used up max_runtime, fewer
  repeats, then fewer rows (down to one repeat on 200), so training still ends near the budget;
  the summary notes it.
- ``coefficient`` rows for linear models (logistic, linear, lasso, elastic_net), one per
  transformed column of the served model (refit on every row), with the input column it comes
  from; zero where L1 removed it. Binary classifiers' coefficients push towards the positive class
  (log-odds). Text columns keep their 200 largest terms per class. ``intercept`` rows hold the
  intercepts.

Per row (``<function>_explain(...)``): the 5 input columns with the largest absolute
contribution, largest first.

- Linear models: contribution of a column = sum over its transformed columns of coefficient x
  transformed value, so contributions + intercept = the decision function (log-odds of the
  positive class for binary, of the predicted class for multiclass; the prediction itself for
  regression).
- Every other model (trees, KNN, MLP): contribution of a column = the model output for the row
  minus the output with that column replaced by its training baseline (median for numbers and
  booleans, most frequent value for categories and dates, NULL i.e. empty for text). The output is
  P(positive class) for binary, P(predicted class) for multiclass, the prediction for regression.
  Baselines are stored in ``sqlml.explain_baselines``.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from sklearn.inspection import permutation_importance
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import check_scoring

from sqlml.errors import PredictionInputError

LINEAR = (LogisticRegression, LinearRegression, Ridge, Lasso, ElasticNet)
N_REPEATS = 3
MAX_ROWS = 2000
MIN_ROWS = 200
TEXT_TERMS = 200
TOP_K = 5
ARROW_TYPE = pa.list_(pa.struct([("feature", pa.string()), ("contribution", pa.float64())]))
SQL_TYPE = "STRUCT(feature VARCHAR, contribution DOUBLE)[]"


# -- training time --------------------------------------------------------------------------------
def permutation_rows(fitted, Xv: pd.DataFrame, yv, scoring, random_state: int,
                     seconds: float | None = None) -> tuple[list[tuple], str | None]:
    """Rows (kind, rank, feature, term, class_label, importance, importance_std, coefficient),
    and a note when ``seconds`` (what is left of max_runtime) made the estimate coarser."""
    est = getattr(fitted, "named_steps", {}).get("model")
    jobs = est.get_params().get("n_jobs") if est is not None else None
    if est is None or jobs is None:
        return _permutation_rows(fitted, Xv, yv, scoring, random_state, seconds)
    # Small predictions are 3x quicker in one thread than with a thread team per call.
    est.set_params(n_jobs=None)
    try:
        return _permutation_rows(fitted, Xv, yv, scoring, random_state, seconds)
    finally:
        est.set_params(n_jobs=jobs)


def sample_rows(Xv: pd.DataFrame, yv, rows: int, random_state: int):
    """At most ``rows`` validation rows, a seeded sample in their original order."""
    if len(Xv) <= rows:
        return Xv, yv
    keep = np.sort(np.random.default_rng(random_state).choice(len(Xv), rows, replace=False))
    return Xv.iloc[keep], yv[keep]


def affordable(seconds: float | None, columns: int, rows: int, one_pass: float
               ) -> tuple[int, int]:
    """(repeats, rows) whose shuffled passes fit in ``seconds``, given one scoring pass over
    ``rows`` rows took ``one_pass`` seconds: fewer repeats first, then fewer rows, never below
    one repeat on MIN_ROWS (a coarse estimate beats none)."""
    need = columns * one_pass
    if seconds is None or need * N_REPEATS <= seconds:
        return N_REPEATS, rows
    if need <= seconds:
        return max(1, int(seconds // need)), rows
    return 1, min(rows, max(MIN_ROWS, int(rows * max(seconds, 0.0) / need)))


def _permutation_rows(fitted, Xv, yv, scoring, random_state: int, seconds: float | None
                      ) -> tuple[list[tuple], str | None]:
    Xv, yv = sample_rows(Xv, yv, MAX_ROWS, random_state)
    note = None
    try:
        if seconds is not None:
            t0 = time.perf_counter()
            one_pass = _one_pass(fitted, Xv, yv, scoring)
            seconds -= time.perf_counter() - t0
            repeats, rows = affordable(seconds, Xv.shape[1], len(Xv), one_pass)
        else:
            repeats, rows = N_REPEATS, len(Xv)
        if (repeats, rows) != (N_REPEATS, len(Xv)):
            Xv, yv = sample_rows(Xv, yv, rows, random_state)
            note = (f"max_runtime left too little time for full permutation importance: "
                    f"{repeats} repeat(s) on {rows} validation rows instead of {N_REPEATS} "
                    f"on up to {MAX_ROWS}; raise max_runtime for a steadier ranking")
        imp = _by_blocks(fitted, Xv, yv, scoring, random_state, repeats)
        if imp is None:
            result = permutation_importance(fitted, Xv, yv, scoring=scoring,
                                            n_repeats=repeats, random_state=random_state)
            imp = result.importances
    except ValueError:
        # e.g. a validation sample with one class: importance is undefined, not fatal
        return [], None
    mean, std = imp.mean(axis=1), imp.std(axis=1)
    order = np.argsort(-mean, kind="stable")
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(1, len(order) + 1)
    return [("permutation", int(rank[j]), col, None, None, float(mean[j]), float(std[j]), None)
            for j, col in enumerate(Xv.columns)], note


def _one_pass(fitted, Xv: pd.DataFrame, yv, scoring) -> float:
    """Seconds one shuffled column costs to score: where the blocks apply, the estimator on the
    transformed rows plus one column's share of the transform (a wide table's transform is most
    of a whole-pipeline pass, and is done once); else the whole pipeline."""
    layout = _blocks(fitted, Xv)
    t0 = time.perf_counter()
    if layout is None:
        check_scoring(fitted, scoring=scoring)(fitted, Xv, yv)
        return time.perf_counter() - t0
    prep, est, _ = layout
    Xt = prep.transform(Xv)
    t1 = time.perf_counter()
    check_scoring(est, scoring=scoring)(est, Xt, yv)
    return time.perf_counter() - t1 + (t1 - t0) / max(1, Xv.shape[1])


def _blocks(fitted, Xv: pd.DataFrame):
    """(ColumnTransformer, estimator, {column: (transformer, columns, output slice)}) where each
    input column has a transformer of its own; None otherwise."""
    steps = getattr(fitted, "named_steps", {})
    prep, est = steps.get("prep"), steps.get("model")
    if prep is None or est is None or len(fitted.steps) != 2 \
            or not hasattr(prep, "output_indices_"):
        return None
    blocks = {}
    for name, trans, cols in prep.transformers_:
        if name == "remainder" and trans == "drop":
            continue
        col = cols if isinstance(cols, str) else (cols[0] if len(cols) == 1 else None)
        if col is None or isinstance(trans, str) or col in blocks:
            return None
        blocks[col] = (trans, cols, prep.output_indices_[name])
    return (prep, est, blocks) if set(blocks) == set(Xv.columns) else None


def _by_blocks(fitted, Xv: pd.DataFrame, yv, scoring, random_state: int, repeats: int):
    """What ``permutation_importance(pipeline, Xv, ...)`` computes, (columns, repeats), faster.

    Each input column goes through its own transformer in the ColumnTransformer, so shuffling a
    DuckDB column changes only that transformer's block of the transformed matrix: the rest is
    transformed once, not once per column and repeat (which cost 40% of a logistic fit on the
    demo data). None where the pipeline is not laid out that way.
    """
    layout = _blocks(fitted, Xv)
    if layout is None:
        return None
    prep, est, blocks = layout
    score = check_scoring(est, scoring=scoring)
    Xt = prep.transform(Xv)
    base = score(est, Xt, yv)
    # The same random streams as permutation_importance: one seed, one generator per column,
    # each repeat shuffling the previous repeat's order again.
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max + 1)
    out = np.zeros((len(Xv.columns), repeats))
    for j, col in enumerate(Xv.columns):
        trans, cols, sl = blocks[col]
        rng, idx = np.random.RandomState(seed), np.arange(len(Xv))
        sub = Xv[cols].reset_index(drop=True)
        for r in range(repeats):
            rng.shuffle(idx)
            sub = sub.iloc[idx].reset_index(drop=True)
            block = trans.transform(sub)
            if sp.issparse(Xt):
                Xp = sp.hstack([Xt[:, :sl.start], block, Xt[:, sl.stop:]], format="csr")
            else:
                Xp = Xt.copy()
                Xp[:, sl] = block.toarray() if sp.issparse(block) else block
            out[j, r] = base - score(est, Xp, yv)
    return out


def _terms(prep) -> list[tuple[str, str]]:
    """(input column, transformed column name) for every output column of the transformer."""
    out = []
    for name, trans, cols in prep.transformers_:
        sl = prep.output_indices_.get(name)
        if sl is None or sl.stop == sl.start:
            continue
        width = sl.stop - sl.start
        names = None
        for get in (lambda t=trans, c=cols: t.get_feature_names_out(
                        [c] if isinstance(c, str) else list(c)),
                    lambda t=trans: t.steps[-1][1].get_feature_names_out()):
            try:
                names = [str(n) for n in get()]
            except Exception:  # transformers without names: numbered instead
                continue
            if len(names) == width:
                break
            names = None
        out += [(name, n) for n in (names or [f"{name}[{i}]" for i in range(width)])]
    return out


def coefficient_rows(served, positive) -> list[tuple]:
    steps = getattr(served, "named_steps", {})
    prep, est = steps.get("prep"), steps.get("model")
    if prep is None or not isinstance(est, LINEAR):
        return []
    terms = _terms(prep)
    coef, intercept = np.atleast_2d(est.coef_), np.atleast_1d(est.intercept_)
    if coef.shape[1] != len(terms):
        return []
    classes = getattr(est, "classes_", None)
    labels: list[str | None]
    if classes is None:
        labels = [None]
    elif len(classes) == 2:
        labels = [str(positive)]
        if positive == classes[0]:
            coef, intercept = -coef, -intercept
    else:
        labels = [str(c) for c in classes]
    text = {name for name, t, _ in prep.transformers_ if _is_text(t)}
    rows: list[tuple] = []
    for k, label in enumerate(labels):
        c = coef[k]
        keep = np.ones(len(terms), dtype=bool)
        for name in text:
            idx = np.array([j for j, (f, _) in enumerate(terms) if f == name])
            if len(idx) > TEXT_TERMS:
                keep[idx] = False
                keep[idx[np.argsort(-np.abs(c[idx]), kind="stable")[:TEXT_TERMS]]] = True
        idx = np.flatnonzero(keep)
        idx = idx[np.argsort(-np.abs(c[idx]), kind="stable")]
        rows += [("coefficient", r, terms[j][0], terms[j][1], label, None, None,
                  float(c[j]) + 0.0)   # -0.0 shows as 0
                 for r, j in enumerate(idx, start=1)]
        rows.append(("intercept", None, None, "(intercept)", label, None, None,
                     float(intercept[k])))
    return rows


def _is_text(trans) -> bool:
    last = trans.steps[-1][1] if hasattr(trans, "steps") else None
    if last is None:
        return False
    parts = [t for _, t in last.transformer_list] if hasattr(last, "transformer_list") else [last]
    return all(type(t).__name__ == "TfidfVectorizer" for t in parts)


def baseline_rows(X: pd.DataFrame, features) -> list[tuple]:
    """(feature, JSON value) per input column: what a column is replaced by to explain a row."""
    rows = []
    for f in features:
        col = X[f.name]
        value: float | str | None
        if f.kind in ("numeric", "boolean"):
            v = col.median()
            value = None if pd.isna(v) else float(v)
        elif f.kind == "text":
            value = None
        else:
            mode = col.dropna().mode()
            value = None if mode.empty else (
                pd.Timestamp(mode.iloc[0]).isoformat() if f.kind == "date" else str(mode.iloc[0]))
        rows.append((f.name, json.dumps(value)))
    return rows


def catalog_rows(served, features, X: pd.DataFrame, importance: list[tuple],
                 positive) -> dict[str, list[tuple]]:
    """{table: rows} for catalog.publish(extra_rows=...)."""
    return {"feature_importance": importance + coefficient_rows(served, positive),
            "explain_baselines": baseline_rows(X, features)}


# -- scoring time ---------------------------------------------------------------------------------
def _baselines(inst, model) -> dict:
    cached = getattr(model, "_sqlml_baselines", None)
    if cached is not None:
        return cached
    cur = inst.cursor()
    try:
        rows = cur.execute("SELECT feature, value FROM sqlml.explain_baselines WHERE name = ? "
                           "AND version = ?", [model.name, model.version]).fetchall()
    finally:
        cur.close()
    if not rows:
        raise PredictionInputError(
            f"{model.function_name}_explain: model {model.name!r} version {model.version} has no "
            f"stored explanation baselines (it was trained before sqlml stored them). Retrain it "
            f"with ml_create_model to explain its predictions.")
    out = {}
    for f in model.features:
        value = json.loads(dict(rows).get(f.name, "null"))
        if value is not None and f.kind == "date":
            value = np.datetime64(pd.Timestamp(value).to_datetime64(), "us")
        out[f.name] = np.nan if value is None else value
    model._sqlml_baselines = out
    return out


def contributions(inst, model, columns: list, fn: str) -> pa.Array:
    frame = model.frame(columns, fn)
    n = len(frame)
    names = [f.name for f in model.features]
    if n == 0:
        return pa.array([], type=ARROW_TYPE)
    est = model.pipeline.named_steps["model"]
    if isinstance(est, LINEAR):
        C = _linear(model, frame, names)
    else:
        C = _replacement(inst, model, frame, names)
    out = []
    for row in C:
        order = np.argsort(-np.abs(row), kind="stable")[:TOP_K]
        out.append([{"feature": names[j], "contribution": float(row[j])} for j in order])
    return pa.array(out, type=ARROW_TYPE)


def _linear(model, frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    prep, est = model.pipeline.named_steps["prep"], model.pipeline.named_steps["model"]
    Xt = prep.transform(frame)
    coef = np.atleast_2d(est.coef_)
    n = len(frame)
    if model.problem_type == "multiclass_classification":
        k = np.argmax(np.asarray(Xt @ coef.T) + est.intercept_, axis=1)
    else:
        k = np.zeros(n, dtype=int)
        if model.problem_type == "binary_classification" and \
                model.positive_class == est.classes_[0]:
            coef = -coef
    C = np.zeros((n, len(names)))
    for j, name in enumerate(names):
        sl = prep.output_indices_.get(name)
        if sl is None or sl.stop == sl.start:
            continue
        per_class = np.asarray(Xt[:, sl] @ coef[:, sl].T)   # (n, classes)
        C[:, j] = per_class[np.arange(n), k]
    return C


def _replacement(inst, model, frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    base = _baselines(inst, model)
    n, p = len(frame), len(names)
    variants = [frame]
    for name in names:
        v = frame.copy()
        v[name] = pd.Series([base[name]] * n, index=v.index, dtype=frame[name].dtype)
        variants.append(v)
    big = pd.concat(variants, ignore_index=True)
    if model.is_classifier:
        proba = model.pipeline.predict_proba(big)
        if model.problem_type == "binary_classification":
            out = proba[:, model.classes.index(model.positive_class)]
        else:
            k = np.tile(np.argmax(proba[:n], axis=1), p + 1)
            out = proba[np.arange(len(big)), k]
    else:
        out = np.asarray(model.pipeline.predict(big), dtype=np.float64)
    out = out.reshape(p + 1, n)
    return (out[0] - out[1:]).T
