"""The report's sections per problem type: from gathered facts to charts and tables."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from sqlml.forecast.engine import quantile_column
from sqlml.reporting import charts
from sqlml.reporting.charts import Chart
from sqlml.reporting.gather import HEAD_SHARE, Facts


@dataclass
class Table:
    key: str
    title: str
    columns: tuple[str, ...]
    rows: list[tuple]
    caption: str = ""


@dataclass
class Section:
    title: str
    items: list[Chart | Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def metric_table(facts: Facts) -> Table:
    """ml_model_metrics, as stored: the numbers tests compare with the SQL."""
    return Table("metrics", "Validation metrics (FROM ml_model_metrics)",
                 ("metric", "class", "value"),
                 [(m, c or "", v) for m, c, v in facts.metrics])


def sections(facts: Facts) -> list[Section]:
    kind = facts.row["problem_type"]
    if kind == "recommendation":
        return _recommender(facts)
    if kind == "forecast":
        return _forecast(facts)
    out = []
    if kind == "binary_classification":
        out.append(_binary(facts))
    elif kind == "regression":
        out.append(_regression(facts))
    else:
        out.append(Section("Classes", [_confusion(facts)]))
    out.append(_importance(facts))
    out.append(_training(facts))
    out.append(_data_summary(facts))
    if facts.drift is not None:
        out.insert(1, _drift(facts))
    return [s for s in out if s.items or s.notes]


# -- binary classification --------------------------------------------------------------------
def curves(y: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """Counts at every distinct score used as the threshold (predict positive when p >= t),
    from the highest down, after the point where nothing is predicted positive."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ps)), len(ps) - 1]
    tp = np.r_[0, np.cumsum(ys)[last]]
    fp = np.r_[0, np.cumsum(1 - ys)[last]]
    pos, neg = ys.sum(), len(ys) - ys.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
    return {"threshold": np.r_[np.inf, ps[last]], "tp": tp, "fp": fp, "fn": pos - tp,
            "tn": neg - fp, "tpr": tp / max(pos, 1), "fpr": fp / max(neg, 1),
            "precision": precision}


def auc(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def _at(y: np.ndarray, p: np.ndarray, t: float) -> dict[str, float]:
    pred = p >= t
    tp, fp = float(np.sum(pred & (y == 1))), float(np.sum(pred & (y == 0)))
    pos, neg = float(np.sum(y == 1)), float(np.sum(y == 0))
    return {"tpr": tp / max(pos, 1), "fpr": fp / max(neg, 1),
            "precision": tp / (tp + fp) if tp + fp else 1.0, "fn": pos - tp, "fp": fp}


def _binary(facts: Facts) -> Section:
    sec = Section("Classification at the threshold")
    row, t = facts.row, facts.row["threshold"]
    t = 0.5 if t is None else float(t)
    if facts.predictions is None:
        sec.notes.append(_no_predictions(facts))
        sec.items.append(_confusion(facts))
        if facts.calibration:
            sec.items.append(charts.calibration(facts.calibration, facts.calibration[0][6]))
        return sec
    y, p = facts.predictions
    c, chosen = curves(y, p), _at(y, p, t)
    label = f"threshold {t:.3g}"
    sec.items.append(charts.curve(
        "roc", f"ROC curve (AUC {auc(c['fpr'], c['tpr']):.3f})",
        "false positive rate (share of negatives flagged)",
        "true positive rate (recall)", c["fpr"], c["tpr"],
        (chosen["fpr"], chosen["tpr"], label), label="model", diagonal=True,
        caption="Each point is one threshold; the red point is the model's."))
    sec.items.append(charts.curve(
        "pr", "Precision-recall curve", "recall (share of positives found)",
        "precision (share of flagged that are positive)", c["tpr"][1:], c["precision"][1:],
        (chosen["tpr"], chosen["precision"], label), label="model",
        caption=f"Positive class: {row['positive_class']!s}; base rate "
                f"{np.mean(y):.1%} of validation rows."))
    sec.items.append(_cost(facts, y, p, c, t))
    sec.items.append(_confusion(facts))
    if facts.calibration:
        sec.items.append(charts.calibration(facts.calibration, facts.calibration[0][6]))
    positive = str(row["positive_class"])
    sec.items.append(charts.histogram(
        "scores", "Score distribution by class", f"P({positive}) (model score)",
        [(f"actual {positive}", p[y == 1]), ("actual other", p[y == 0])],
        np.linspace(0, 1, 21), caption=f"The threshold {t:.3g} splits flagged from not."))
    if len(y) < row["validation_rows"]:
        sec.notes.append(f"Curves drawn from a random sample of {len(y):,} of the "
                         f"{row['validation_rows']:,} validation rows.")
    return sec


def _cost(facts: Facts, y, p, c, t) -> Chart:
    costs = facts.costs
    fn_c = 1.0 if costs.get("fn_cost") is None else float(costs["fn_cost"])
    fp_c = 1.0 if costs.get("fp_cost") is None else float(costs["fp_cost"])
    cost = fn_c * c["fn"] + fp_c * c["fp"]
    thr = np.clip(c["threshold"], 0, 1)
    at = _at(y, p, t)
    given = costs.get("fn_cost") is not None or costs.get("fp_cost") is not None
    title = (f"Cost against threshold (fn_cost {fn_c:g}, fp_cost {fp_c:g})" if given
             else "Errors against threshold (each error costs 1)")
    return charts.curve(
        "cost", title, "threshold on P(positive)",
        "cost on the validation rows (cost units)" if given else "errors on the validation rows",
        thr[::-1], cost[::-1], (t, fn_c * at["fn"] + fp_c * at["fp"], f"threshold {t:.3g}"),
        label="fn_cost × FN + fp_cost × FP",
        caption=("Business impact at every threshold with the model's stored costs."
                 if given else "No costs were given at training: pass fn_cost and fp_cost "
                               "to ml_create_model for business impact."))


def _no_predictions(facts: Facts) -> str:
    why = ("this version was trained before sqlml stored validation predictions"
           if facts.stored_predictions else
           "this file's catalog predates stored validation predictions (open it read-write "
           "once to migrate it)")
    return (f"ROC, precision-recall, cost and score charts need the validation rows' scores: "
            f"{why}. Retrain the model (ml_create_model with the same arguments) to draw them.")


def _confusion(facts: Facts) -> Table:
    labels = sorted({a for a, _, _ in facts.confusion} | {p for _, p, _ in facts.confusion})
    n = {(a, p): v for a, p, v in facts.confusion}
    t = facts.row["threshold"]
    title = "Confusion matrix" + (f" at threshold {t:.3g}" if t is not None else "")
    return Table("confusion", title, ("actual \\ predicted", *labels),
                 [(a, *(n.get((a, p), 0) for p in labels)) for a in labels],
                 "Validation rows; rows are the actual class, columns the predicted one.")


# -- regression -------------------------------------------------------------------------------
def _regression(facts: Facts) -> Section:
    sec = Section("Predictions against actual values")
    if facts.predictions is None:
        sec.notes.append(_no_predictions(facts).replace("ROC, precision-recall, cost and score",
                                                        "Prediction and residual"))
        return sec
    y, pred = facts.predictions
    target = facts.row["target"]
    sec.items.append(charts.scatter(
        "predicted", "Predicted against actual", f"actual {target} (target units)",
        f"predicted {target} (target units)", y, pred, identity=True,
        caption="Points on the dashed line are exact predictions."))
    resid = y - pred
    lim = float(np.max(np.abs(resid))) if len(resid) else 1.0
    sec.items.append(charts.histogram(
        "residuals", "Residuals (actual − predicted)", f"residual {target} (target units)",
        [("validation rows", resid)], np.linspace(-lim, lim, 31),
        caption=f"Mean residual {np.mean(resid):.4g}; a centred, narrow peak is a good fit."))
    return sec


# -- common to supervised models --------------------------------------------------------------
def _importance(facts: Facts) -> Section:
    sec = Section("Feature importance")
    top = facts.importance[:15]
    if top:
        sec.items.append(charts.bars(
            "importance", "Permutation importance (validation rows)",
            f"drop in {facts.row['objective']} when the column is shuffled",
            [str(f) for f, _, _ in top], [float(v or 0) for _, v, _ in top],
            [float(s or 0) for _, _, s in top],
            caption="Longer bars matter more; FROM ml_explain_model lists every column.",
            columns=("feature", "importance", "std")))
    return sec


def _training(facts: Facts) -> Section:
    sec = Section("Training")
    curve = [d for d in facts.diagnosis if d[1] == "learning_curve"]
    verdict = [d for d in facts.diagnosis if d[1] == "holdout"]
    if curve:
        sec.items.append(charts.lines(
            "learning", "Learning curve", "training rows",
            f"{facts.row['objective']} (greater is better)", [int(d[2]) for d in curve],
            {"training score": [d[3] for d in curve], "validation score": [d[4] for d in curve]},
            caption=f"Diagnosis: {verdict[0][5]}. {verdict[0][6] or ''}" if verdict else ""))
    else:
        sec.notes.append("No learning curve: train with settings := {diagnose: true} for one "
                         "and an over/underfitting diagnosis (FROM ml_diagnose).")
    done = [t for t in facts.trials if t[2] is not None]
    if len(facts.trials) == 1:
        sec.notes.append(f"One trial ({facts.trials[0][1]}): model_type := 'auto' or a tuning "
                         f"search compares several and draws them over time here.")
    elif done:
        elapsed = np.cumsum([float(t[3] or 0) for t in facts.trials])
        x = [round(float(elapsed[i]), 3) for i, t in enumerate(facts.trials) if t[2] is not None]
        scores = [float(t[2]) for t in done]
        sec.items.append(charts.lines(
            "trials", f"Trials over time ({len(facts.trials)} trials)",
            "seconds since tuning started", f"{facts.row['objective']} (cross-validated, "
            f"greater is better)", x,
            {"trial score": scores, "best so far": list(np.maximum.accumulate(scores))},
            step="best so far", caption="FROM ml_trials lists every trial and its parameters."))
    return sec


def _data_summary(facts: Facts) -> Section:
    row = facts.row
    features, excluded = json.loads(row["features"]), json.loads(row["excluded"])
    rows: list[tuple] = [
        ("training rows", row["training_rows"]), ("validation rows", row["validation_rows"]),
        ("feature columns", len(features)), ("columns left out", len(excluded)),
        ("target", f"{row['target']} ({row['target_type']})")]
    balance: dict[str, int] = {}
    for actual, _, n in facts.confusion:
        balance[actual] = balance.get(actual, 0) + int(n)
    total = sum(balance.values())
    rows += [(f"class {k} (validation rows)", f"{v:,} ({v / total:.1%})")
             for k, v in balance.items()] if total else []
    rows += [("threshold", row["threshold_reason"])] if row["threshold_reason"] else []
    rows += [("training seconds", round(float(row["training_seconds"]), 2)),
             ("training query", row["training_query"])]
    sec = Section("Training data", [Table("data", "Training data summary", ("", "value"), rows)])
    sec.items.append(Table("features", "Features", ("column", "type", "used as"),
                           [(f["name"], f["type"], f.get("preprocessor") or f.get("kind"))
                            for f in features]))
    sec.notes += [f"column {e['name']} left out: {e['reason']}" for e in excluded]
    compiled = (facts.parameters.get("compiled_sql") or {}).get("summary")
    sec.notes += [f"compiled SQL: {compiled}"] if compiled else []
    return sec


# -- drift ----------------------------------------------------------------------------------------
# The columns of the drift table: (heading, ml_drift's column); every number FROM ml_drift gives.
DRIFT_COLUMNS = (("feature", "feature"), ("kind", "kind"), ("rows", "rows"), ("PSI", "psi"),
                 ("KS", "ks"), ("missing rate", "missing_rate"),
                 ("missing rate change", "missing_rate_change"), ("training mean", "training_mean"),
                 ("mean", "mean"), ("unseen categories", "unseen_categories"),
                 ("training hit rate", "training_hit_rate"), ("hit rate", "hit_rate"),
                 ("hit rate change", "hit_rate_change"), ("verdict", "verdict"), ("note", "note"))


def drift_summary(rows: list[dict]) -> str:
    """'9 stable, 2 shifted, 1 broken': the verdict counts of ml_drift's rows."""
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("stable", "shifted", "broken")}
    unjudged = sum(r["verdict"] is None for r in rows)
    return ", ".join(f"{n} {v}" for v, n in counts.items()) + (
        f", {unjudged} not computed" if unjudged else "")


def _drift(facts: Facts) -> Section:
    assert facts.drift is not None
    query, rows = facts.drift
    sec = Section("Drift against the training data")
    sec.notes.append(f"FROM ml_drift('{facts.row['name']}', {query!r}): {drift_summary(rows)} "
                     f"(psi >= 0.1 shifted, > 0.25 broken; see docs/monitoring.md).")
    judged = [r for r in rows if r["psi"] is not None]
    labels = [r["feature"] + (" (prediction)" if r["kind"] == "prediction" else "")
              for r in judged]
    verdicts = [r["verdict"] for r in judged]
    if judged:
        sec.items.append(charts.drift_bars(
            "drift_psi", "Population stability index per feature", "PSI (0 = same as training)",
            labels, [float(r["psi"]) for r in judged], verdicts, thresholds=True,
            caption=f"{drift_summary(rows).capitalize()}. Dashed lines: PSI 0.1 (shifted) and "
                    f"0.25 (broken); bar colour is the verdict.",
            columns=("feature", "PSI", "verdict")))
    with_ks = [(lab, r) for lab, r in zip(labels, judged, strict=True) if r["ks"] is not None]
    if with_ks:
        sec.items.append(charts.drift_bars(
            "drift_ks", "Kolmogorov-Smirnov distance per numeric feature",
            "KS distance (max gap between the two CDFs)", [lab for lab, _ in with_ks],
            [float(r["ks"]) for _, r in with_ks], [r["verdict"] for _, r in with_ks],
            thresholds=False, caption="Numeric columns, text lengths and the model's score.",
            columns=("feature", "KS", "verdict")))
    present = [(h, c) for h, c in DRIFT_COLUMNS if any(c in r for r in rows)]
    sec.items.append(Table(
        "drift", "Drift per feature (FROM ml_drift)", tuple(h for h, _ in present),
        [tuple(_drift_cell(r.get(c)) for _, c in present) for r in rows],
        "The prediction row compares the model's scores with its validation scores."))
    return sec


def _drift_cell(v):
    if isinstance(v, list):
        return ", ".join(map(str, v))
    return v


# -- recommendation ---------------------------------------------------------------------------
def _recommender(facts: Facts) -> list[Section]:
    r = facts.recommender
    assert r is not None
    values, k = r["values"], r["k"]
    distinct = np.unique(values)
    what = "rating" if r["feedback"] == "explicit" else "interaction weight"
    if len(distinct) <= 20:
        edges = np.r_[distinct - 1e-9, distinct[-1] + 1e-9] if len(distinct) else np.r_[0, 1]
        edges = np.unique(np.r_[distinct[0] - 0.25, (distinct[1:] + distinct[:-1]) / 2,
                                distinct[-1] + 0.25]) if len(distinct) > 1 else edges
    else:
        edges = np.linspace(distinct.min(), distinct.max(), 21)
    dist = charts.histogram(
        "ratings", f"{what.capitalize()} distribution", f"{what} per (user, item) pair",
        [("pairs", values)], edges,
        caption=f"{r['pairs']:,} pairs of {r['users']:,} users and {r['items']:,} items.")
    deciles = charts.bars(
        "popularity", f"Top-{k} recommendations by item popularity",
        "share of recommendations (%)", [f"decile {i + 1}" for i in range(10)],
        list(100 * r["by_decile"] / max(r["slots"], 1)),
        caption="Decile 1 holds the most popular 10% of items; a flat profile means little "
                "popularity bias.", columns=("popularity decile", "share of recommendations (%)"))
    reach = Table("coverage", f"Coverage and popularity bias of the top {k}", ("", "value"), [
        ("users sampled", r["sampled_users"]), ("recommendations", r["slots"]),
        ("catalog coverage (distinct items recommended / items)", r["coverage"]),
        (f"share from the most popular {HEAD_SHARE:.0%} of items ({r['head_items']} items)",
         r["head_share"])])
    ranking = Table("ranking", f"Ranking metrics at k = {k}", ("metric", "value"),
                    [(m, v) for m, c, v in facts.metrics if c is None])
    example = Table("example", f"Recommendations for user {r['example_user']} "
                               f"({r['example_seen']} items seen)",
                    ("rank", "item", "score", "source", "reason"),
                    [(a, str(b), c, d, e or "") for a, b, c, d, e in r["example"]],
                    "FROM the recommend function gives these, with their reasons.")
    return [Section("Ratings", [dist]), Section("Coverage and popularity", [reach, deciles]),
            Section("Ranking quality", [ranking]), Section("An example user", [example])]


# -- forecast ---------------------------------------------------------------------------------
def _band(quantiles: list[float]) -> tuple[str, str]:
    """The names of the median and of the band drawn, e.g. ("P50", "P10-P90")."""
    mid = min(quantiles, key=lambda q: abs(q - 0.5))
    return (quantile_column(mid).upper(),
            f"{quantile_column(quantiles[0]).upper()}-{quantile_column(quantiles[-1]).upper()}")


def forecast_figures(f: dict) -> dict:
    """From the stored backtest: the share of actuals inside the band per horizon step, and the
    scaled pinball loss per quantile (per series mean of pinball / scale, mean over series;
    their mean over the quantiles is the stored scaled_pinball)."""
    bt, series = f["backtest"], f["series"]
    quantiles = sorted(bt["quantile"].unique().tolist())
    wide = bt.pivot_table(index=["series_id", "window", "step", "actual"], columns="quantile",
                          values="forecast").reset_index()
    inside = (wide[quantiles[0]] <= wide["actual"]) & (wide["actual"] <= wide[quantiles[-1]])
    coverage = inside.groupby(wide["step"]).mean()
    scale = series.set_index("series_id")["scale"]
    loss = bt["actual"] - bt["forecast"]
    bt = bt.assign(sp=np.maximum(bt["quantile"] * loss, (bt["quantile"] - 1) * loss)
                   / bt["series_id"].map(scale).to_numpy())
    per = bt.groupby(["quantile", "series_id"])["sp"].mean().groupby("quantile").mean()
    return {"quantiles": quantiles, "steps": coverage.index.tolist(),
            "coverage": coverage.tolist(), "nominal": quantiles[-1] - quantiles[0],
            "pinball": [float(per[q]) for q in quantiles]}


def _fans(facts: Facts, f: dict, quantiles: list[float]) -> list:
    out = []
    labels, series = _band(quantiles), f["series"].set_index("series_id")
    mid = quantiles.index(min(quantiles, key=lambda q: abs(q - 0.5)))
    for n, sid in enumerate(f["chosen"]):
        past = f["backtest"].drop_duplicates(["series_id", "period"])
        past = past[past["series_id"] == sid].sort_values("period")
        ahead = f["forecasts"][f["forecasts"]["series_id"] == sid]
        values = np.array([list(v) for v in ahead["values"]], dtype=float)
        row = series.loc[sid]
        why = "largest" if n < len(f["chosen"]) - 1 or len(f["chosen"]) == 1 else "worst"
        why = ("one of the largest series" if why == "largest" else
               f"the worst scaled pinball loss ({row['scaled_pinball']:.3g})")
        out.append(charts.fan(
            f"fan_{n + 1}", f"Series {row['label'] or sid}: {labels[0]} and {labels[1]}",
            f"{facts.row['target']} (target units)",
            (past["period"].to_numpy(), past["actual"].to_numpy()),
            (ahead["period"].to_numpy(), values[:, 0], values[:, mid], values[:, -1]),
            labels, caption=f"Chosen as {why}; method {row['method']}. The actuals shown are "
                            f"the periods the backtest covers (FROM ml_backtest)."))
    return out


def _forecast(facts: Facts) -> list[Section]:
    f = facts.forecast
    assert f is not None
    fig = forecast_figures(f)
    qs, labels = fig["quantiles"], _band(fig["quantiles"])
    cov = charts.lines(
        "coverage", f"Backtest coverage of {labels[1]} per horizon step",
        "horizon step (periods ahead)", "share of actuals inside the band",
        fig["steps"], {"backtest": fig["coverage"],
                       "nominal": [fig["nominal"]] * len(fig["steps"])},
        caption=f"Nominal {fig['nominal']:.0%}: each backtest window is calibrated on the "
                f"others, so this is a held-out figure.")
    names = [quantile_column(q) for q in qs]
    pin = charts.bars(
        "pinball", "Scaled pinball loss per quantile (backtest)",
        "pinball loss / seasonal-naive MAE (lower is better)", names, fig["pinball"],
        caption=f"Their mean, {np.mean(fig['pinball']):.4g}, is the scaled_pinball metric.",
        columns=("quantile", "scaled pinball loss"))
    counts = f["series"]["method"].value_counts()
    methods = charts.bars(
        "methods", "Method used per series", "series", [str(m) for m in counts.index],
        [float(c) for c in counts.to_numpy()], columns=("method", "series"),
        caption=f"{len(f['series']):,} series; FROM ml_explain_model lists each.")
    trials = Table("trials", "Candidates compared (FROM ml_trials)",
                   ("candidate", "scaled pinball", "seconds", "status"),
                   [(t[1], t[2], t[3], t[4]) for t in facts.trials])
    flags = Table("flags", "Diagnosis (FROM ml_diagnose)", ("series", "flag", "detail"),
                  [(s, fl, d) for s, fl, d in f["flags"][:25]],
                  f"{len(f['flags'])} flag(s) in all." if f["flags"] else "No flags.")
    return [Section("Forecasts", _fans(facts, f, qs)),
            Section("Backtest", [cov, pin]), Section("Methods", [methods, trials]),
            Section("Diagnosis", [flags]), _data_summary(facts)]
