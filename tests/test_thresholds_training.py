"""Issue 3, part 5: the decision threshold chosen by business cost at training time."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import train_test_split

import sqlml


def brute_force(y, p, fn_cost, fp_cost, min_recall):
    """Independent reference: try every distinct score as 'positive when p >= t'."""
    best = None
    for t in np.unique(p):
        pred = p >= t
        tp = int(np.sum(pred & y))
        fn = int(np.sum(~pred & y))
        fp = int(np.sum(pred & ~y))
        recall = tp / (tp + fn)
        if recall < min_recall:
            continue
        key = (fn_cost * fn + fp_cost * fp, -recall, -t)
        if best is None or key < best[0]:
            best = (key, t)
    return best[1], best[0][0]


def test_cost_objective_stores_the_cheapest_threshold_meeting_recall(customers):
    con = customers
    s = con.execute("SELECT ml_create_model('churn', 'customers', target := 'churned', "
                    "model_type := 'logistic', objective := 'cost', fn_cost := 3, fp_cost := 1,"
                    " min_recall := 0.85)").fetchall()[0][0]
    model = sqlml.load_model(con, "churn")
    df = con.sql("FROM customers").df()
    y = df["churned"].to_numpy()
    X = df.drop(columns=["churned", "customer_id"])
    tr, va = train_test_split(np.arange(len(y)), test_size=120, random_state=42, stratify=y)
    p = clone(model.pipeline).fit(X.iloc[tr], y[tr]).predict_proba(X.iloc[va])[:, 1]
    t, cost = brute_force(y[va], p, 3, 1, 0.85)
    assert s["threshold"] == model.threshold == pytest.approx(t, abs=0)
    assert s["validation_score"] == cost   # the summary reports the cost objective
    reason = con.execute("SELECT value FROM ml_show_model('churn') "
                         "WHERE property = 'threshold_reason'").fetchall()[0][0]
    assert reason.startswith("minimises validation cost 3 x FN + 1 x FP subject to recall >= "
                             "0.85")
    table = con.execute("SELECT threshold, cost, recall, chosen FROM ml_threshold_metrics('churn')"
                        ).fetchall()
    # Every distinct validation score, plus +inf (nothing flagged), as sklearn's roc_curve.
    assert len(table) == len(np.unique(p)) + 1 and table[0][0] == float("inf")
    chosen = [r for r in table if r[3]]
    assert len(chosen) == 1 and chosen[0][1] == cost and chosen[0][2] >= 0.85
    # The generated function uses the stored threshold.
    probs = [r[0] for r in con.execute("SELECT predict_churn_probability(c) FROM customers c"
                                       ).fetchall()]
    labels = [r[0] for r in con.execute("SELECT predict_churn(c) FROM customers c").fetchall()]
    assert labels == [q >= model.threshold for q in probs]
    assert sum(labels) > sum(q >= 0.5 for q in probs)  # a cheap false alarm moves it down


@pytest.mark.parametrize("args,message", [
    ("fn_cost := -3", r"fn_cost must be a non-negative number \(the cost of one missed "
                      r"positive\), got -3"),
    ("fp_cost := 'x'", r"fp_cost must be a non-negative number .*got 'x'"),
    ("min_recall := 1.5", r"min_recall must be a number in \[0, 1\], got 1.5"),
])
def test_bad_costs_are_clear_errors(customers, args, message):
    with pytest.raises(Exception, match=message):
        customers.execute(f"SELECT ml_create_model('m', 'customers', target := 'churned', "
                          f"objective := 'cost', {args})").fetchall()


def test_costs_on_a_regression_target_are_an_error(customers):
    with pytest.raises(Exception, match=r"fn_cost, fp_cost and min_recall choose the decision "
                                        r"threshold of a binary model, but target "
                                        r"'monthly_spend' is regression"):
        customers.execute("SELECT ml_create_model('m', 'customers', target := 'monthly_spend', "
                          "fn_cost := 3)").fetchall()
