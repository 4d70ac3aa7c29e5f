"""The SQL metrics of sql/metrics.sql against scikit-learn (and small independent references).

Property tests draw random inputs that include ties, a single class, constant scores, NULLs and
tiny groups, and compare every value with sklearn.metrics on the same rows with the NULL rows
dropped (the documented NULL rule).
"""

from __future__ import annotations

import math
import warnings

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics

# The `con` fixture is one in-memory database per test function; every example registers its own
# frame, so sharing the connection across examples is safe.
PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
FEW = settings(max_examples=12, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])


def approx(value):
    return pytest.approx(value, rel=1e-9, abs=1e-12)


def register(con, name, **columns):
    """Register typed columns (NULLs included) as a relation; pyarrow keeps NULLs typed."""
    con.register(name, pa.table({k: pa.array(v[0], type=v[1]) for k, v in columns.items()}))


def one(con, sql):
    rows = con.execute(sql).fetchall()
    assert len(rows) == 1
    return rows[0]


def sk(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# Label encodings that need no pos_label: (arrow type, positive, negative).
ENCODINGS = {
    "bool": (pa.bool_(), True, False),
    "int": (pa.int64(), 1, 0),
    "int_minus_one": (pa.int32(), 1, -1),
    "double": (pa.float64(), 1.0, 0.0),
    "yes_no": (pa.string(), "yes", "no"),
    "Yes_No": (pa.string(), "Yes", "No"),
    "churned_stayed": (pa.string(), "Churned", "Stayed"),
    "true_false_text": (pa.string(), "TRUE", "false"),
}

maybe_bool = st.one_of(st.none(), st.booleans())
label_pairs = st.lists(st.tuples(maybe_bool, maybe_bool), max_size=30)
tied_score = st.sampled_from([0.0, 0.2, 0.5, 0.5, 0.8, 1.0])
any_score = st.one_of(tied_score, st.floats(0, 1, allow_nan=False))
score_pairs = st.lists(st.tuples(maybe_bool, st.one_of(st.none(), any_score)), max_size=30)


def encode(values, encoding):
    typ, pos, neg = ENCODINGS[encoding]
    return [None if v is None else (pos if v else neg) for v in values], typ


def kept(*columns):
    """Rows with no NULL in any column, as numpy arrays."""
    rows = [r for r in zip(*columns, strict=True) if all(v is not None for v in r)]
    return [np.array(c) for c in zip(*rows, strict=True)] if rows else [np.array([])] * len(columns)


def binary_reference(y, p, beta):
    tn, fp, fn, tp = metrics.confusion_matrix(y, p, labels=[0, 1]).ravel()
    return {
        "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        "precision": sk(metrics.precision_score, y, p, zero_division=0),
        "recall": sk(metrics.recall_score, y, p, zero_division=0),
        "specificity": sk(metrics.recall_score, y, p, pos_label=0, zero_division=0),
        "f1": sk(metrics.f1_score, y, p, zero_division=0),
        "fbeta": sk(metrics.fbeta_score, y, p, beta=beta, zero_division=0),
        "fnr": fn / (fn + tp) if fn + tp else 0.0,
        "fpr": fp / (fp + tn) if fp + tn else 0.0,
    }


BINARY_SQL = """
SELECT ml_confusion(a, p), ml_precision(a, p), ml_recall(a, p), ml_specificity(a, p),
       ml_f1(a, p), ml_fbeta(a, p, beta := {beta}), ml_false_negative_rate(a, p),
       ml_false_positive_rate(a, p)
FROM d
"""
BINARY_NAMES = ["confusion", "precision", "recall", "specificity", "f1", "fbeta", "fnr", "fpr"]


@PROPERTY
@given(pairs=label_pairs, encoding=st.sampled_from(sorted(ENCODINGS)),
       beta=st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5]))
def test_confusion_metrics_match_sklearn(con, pairs, encoding, beta):
    actual, predicted = [a for a, _ in pairs], [p for _, p in pairs]
    a_vals, typ = encode(actual, encoding)
    p_vals, _ = encode(predicted, encoding)
    register(con, "d", a=(a_vals, typ), p=(p_vals, typ))
    got = dict(zip(BINARY_NAMES, one(con, BINARY_SQL.format(beta=beta)), strict=True))
    y, p = kept(actual, predicted)
    if len(y) == 0:
        assert got["confusion"] == {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
        assert all(got[name] is None for name in BINARY_NAMES[1:])
        return
    want = binary_reference(y.astype(int), p.astype(int), beta)
    assert got["confusion"] == want["confusion"]
    for name in BINARY_NAMES[1:]:
        assert got[name] == approx(want[name]), name


@PROPERTY
@given(pairs=st.lists(st.tuples(st.one_of(st.none(), st.sampled_from("ABC")),
                                st.one_of(st.none(), st.sampled_from("ABCD"))), max_size=30),
       pos=st.sampled_from("ABCD"))
def test_pos_label_scores_one_class_against_the_rest(con, pairs, pos):
    actual, predicted = [a for a, _ in pairs], [p for _, p in pairs]
    register(con, "d", a=(actual, pa.string()), p=(predicted, pa.string()))
    y, p = kept(actual, predicted)
    labels = set(y.tolist()) | set(p.tolist())
    sql = (f"SELECT ml_precision(a, p, pos_label := '{pos}'),"
           f" ml_recall(a, p, pos_label := '{pos}'), ml_f1(a, p, pos_label := '{pos}') FROM d")
    if pos not in labels and len(labels) >= 2:
        # scikit-learn refuses such a pos_label too ("not a valid label").
        with pytest.raises(Exception, match="matches no value"):
            con.execute(sql).fetchall()
        return
    got = one(con, sql)
    if len(y) == 0:
        assert got == (None, None, None)
        return
    yb, pb = (y == pos).astype(int), (p == pos).astype(int)
    assert got[0] == approx(sk(metrics.precision_score, yb, pb, zero_division=0))
    assert got[1] == approx(sk(metrics.recall_score, yb, pb, zero_division=0))
    assert got[2] == approx(sk(metrics.f1_score, yb, pb, zero_division=0))


multiclass_label = st.one_of(st.none(), st.sampled_from(["Gold", "Silver", "Platinum"]))


@PROPERTY
@given(pairs=st.lists(st.tuples(multiclass_label, multiclass_label), max_size=30))
def test_symmetric_metrics_match_sklearn_for_any_number_of_classes(con, pairs):
    actual, predicted = [a for a, _ in pairs], [p for _, p in pairs]
    register(con, "d", a=(actual, pa.string()), p=(predicted, pa.string()))
    got = one(con, "SELECT ml_accuracy(a, p), ml_balanced_accuracy(a, p), ml_mcc(a, p) FROM d")
    y, p = kept(actual, predicted)
    if len(y) == 0:
        assert got == (None, None, None)
        return
    assert got[0] == approx(metrics.accuracy_score(y, p))
    assert got[1] == approx(sk(metrics.balanced_accuracy_score, y, p))
    assert got[2] == approx(sk(metrics.matthews_corrcoef, y, p))


@PROPERTY
@given(pairs=score_pairs, encoding=st.sampled_from(["bool", "int", "yes_no", "churned_stayed"]))
def test_score_metrics_match_sklearn(con, pairs, encoding):
    actual, scores = [a for a, _ in pairs], [s for _, s in pairs]
    a_vals, typ = encode(actual, encoding)
    register(con, "d", a=(a_vals, typ), s=(scores, pa.float64()))
    got = one(con, "SELECT ml_roc_auc(a, s), ml_pr_auc(a, s), ml_log_loss(a, s), ml_brier(a, s)"
                   " FROM d")
    y, s = kept(actual, scores)
    if len(y) == 0:
        assert got == (None, None, None, None)
        return
    y = y.astype(int)
    s = s.astype(float)
    if len(set(y.tolist())) == 2:
        assert got[0] == approx(metrics.roc_auc_score(y, s))
    else:
        assert got[0] is None  # undefined: scikit-learn raises
    assert got[1] == approx(sk(metrics.average_precision_score, y, s))
    assert got[2] == approx(sk(metrics.log_loss, y, s, labels=[0, 1]))
    assert got[3] == approx(sk(metrics.brier_score_loss, y, s, pos_label=1))


@FEW
@given(n=st.integers(1, 40), value=st.floats(-5, 5, allow_nan=False),
       pos_share=st.floats(0, 1))
def test_constant_scores_give_auc_one_half_and_ap_the_positive_share(con, n, value, pos_share):
    positives = round(n * pos_share)
    actual = [True] * positives + [False] * (n - positives)
    register(con, "d", a=(actual, pa.bool_()), s=([value] * n, pa.float64()))
    auc, ap = one(con, "SELECT ml_roc_auc(a, s), ml_pr_auc(a, s) FROM d")
    if 0 < positives < n:
        assert auc == approx(0.5)
    else:
        assert auc is None
    assert ap == approx(positives / n)


def test_roc_auc_handles_ties_like_sklearn_on_heavily_tied_data(con):
    rng = np.random.default_rng(7)
    y = rng.random(5000) < 0.4
    s = np.round(rng.random(5000) * 0.5 + y * 0.2, 1)  # ~8 distinct scores, every one mixed
    register(con, "d", a=(y.tolist(), pa.bool_()), s=(s.tolist(), pa.float64()))
    auc, ap = one(con, "SELECT ml_roc_auc(a, s), ml_pr_auc(a, s) FROM d")
    assert auc == approx(metrics.roc_auc_score(y, s))
    assert ap == approx(metrics.average_precision_score(y, s))


maybe_num = st.one_of(st.none(), st.floats(-1000, 1000, allow_nan=False),
                      st.sampled_from([0.0, 1.0, -2.5]))


@PROPERTY
@given(pairs=st.lists(st.tuples(maybe_num, maybe_num), max_size=30),
       q=st.floats(0, 1, allow_nan=False))
def test_regression_metrics_match_sklearn(con, pairs, q):
    actual, predicted = [a for a, _ in pairs], [p for _, p in pairs]
    register(con, "d", a=(actual, pa.float64()), p=(predicted, pa.float64()))
    got = one(con, f"SELECT ml_mse(a, p), ml_rmse(a, p), ml_mae(a, p), ml_mape(a, p), ml_r2(a, p),"
                   f" ml_pinball_loss(a, p, {q!r}) FROM d")
    y, p = kept(actual, predicted)
    if len(y) == 0:
        assert got == (None,) * 6
        return
    y, p = y.astype(float), p.astype(float)
    assert got[0] == approx(metrics.mean_squared_error(y, p))
    assert got[1] == approx(metrics.root_mean_squared_error(y, p))
    assert got[2] == approx(metrics.mean_absolute_error(y, p))
    assert got[3] == pytest.approx(metrics.mean_absolute_percentage_error(y, p), rel=1e-9)
    if len(y) < 2:
        assert got[4] is None  # scikit-learn: NaN with a warning
    else:
        assert got[4] == approx(sk(metrics.r2_score, y, p))
    assert got[5] == approx(metrics.mean_pinball_loss(y, p, alpha=q))


@PROPERTY
@given(rows=st.lists(st.tuples(maybe_num, maybe_num, maybe_num), max_size=30))
def test_interval_coverage_counts_rows_inside_the_closed_interval(con, rows):
    actual = [r[0] for r in rows]
    lo = [None if r[1] is None or r[2] is None else min(r[1], r[2]) for r in rows]
    hi = [None if r[1] is None or r[2] is None else max(r[1], r[2]) for r in rows]
    register(con, "d", a=(actual, pa.float64()), lo=(lo, pa.float64()), hi=(hi, pa.float64()))
    (got,) = one(con, "SELECT ml_interval_coverage(a, lo, hi) FROM d")
    y, lo_k, hi_k = kept(actual, lo, hi)
    if len(y) == 0:
        assert got is None
    else:
        assert got == approx(np.mean((lo_k <= y) & (y <= hi_k)))


group_rows = st.lists(st.tuples(st.integers(0, 4), maybe_bool, maybe_bool,
                                st.one_of(st.none(), tied_score)), min_size=1, max_size=40)


@PROPERTY
@given(rows=group_rows)
def test_group_by_gives_each_group_its_own_sklearn_value(con, rows):
    g, a, p, s = (list(c) for c in zip(*rows, strict=True))
    register(con, "d", g=(g, pa.int64()), a=(a, pa.bool_()), p=(p, pa.bool_()),
             s=(s, pa.float64()))
    got = {r[0]: r[1:] for r in con.execute(
        "SELECT g, ml_f1(a, p), ml_recall(a, p), ml_mcc(a, p), ml_roc_auc(a, s), ml_pr_auc(a, s),"
        " ml_cost(a, p, fn_cost := 5, fp_cost := 1), ml_best_threshold(a, s).threshold"
        " FROM d GROUP BY g").fetchall()}
    assert set(got) == set(g)
    for group, values in got.items():
        sel = [i for i, gi in enumerate(g) if gi == group]
        y, pr = kept([a[i] for i in sel], [p[i] for i in sel])
        ys, sc = kept([a[i] for i in sel], [s[i] for i in sel])
        if len(y):
            y, pr = y.astype(int), pr.astype(int)
            _, fp, fn, _ = metrics.confusion_matrix(y, pr, labels=[0, 1]).ravel()
            assert values[0] == approx(sk(metrics.f1_score, y, pr, zero_division=0))
            assert values[1] == approx(sk(metrics.recall_score, y, pr, zero_division=0))
            assert values[2] == approx(sk(metrics.matthews_corrcoef, y, pr))
            assert values[5] == approx(5 * fn + fp)
        else:
            assert values[0] is None and values[5] is None
        if len(ys) and len(set(ys.tolist())) == 2:
            assert values[3] == approx(metrics.roc_auc_score(ys.astype(int), sc.astype(float)))
        else:
            assert values[3] is None
        if len(ys):
            assert values[4] == approx(sk(metrics.average_precision_score, ys.astype(int),
                                          sc.astype(float)))
            assert values[6] == reference_best(ys.astype(bool), sc.astype(float), "cost",
                                               1, 1)["threshold"]


@pytest.mark.skipif(int(duckdb.__version__.split(".")[0]) < 2,
                    reason="macros as window functions need DuckDB 2 (documented)")
@FEW
@given(rows=st.lists(st.tuples(maybe_bool, maybe_bool, st.one_of(st.none(), tied_score)),
                     min_size=1, max_size=25),
       width=st.integers(0, 6))
def test_metrics_work_as_rolling_window_functions(con, rows, width):
    a, p, s = (list(c) for c in zip(*rows, strict=True))
    register(con, "d", i=(list(range(len(rows))), pa.int64()), a=(a, pa.bool_()),
             p=(p, pa.bool_()), s=(s, pa.float64()))
    frame = f"OVER (ORDER BY i ROWS BETWEEN {width} PRECEDING AND CURRENT ROW)"
    got = con.execute(f"SELECT ml_f1(a, p) {frame}, ml_roc_auc(a, s) {frame},"
                      f" ml_accuracy(a, p) {frame} FROM d ORDER BY i").fetchall()
    for i, (f1, auc, acc) in enumerate(got):
        lo = max(0, i - width)
        y, pr = kept(a[lo:i + 1], p[lo:i + 1])
        ys, sc = kept(a[lo:i + 1], s[lo:i + 1])
        if len(y):
            assert f1 == approx(sk(metrics.f1_score, y.astype(int), pr.astype(int),
                                   zero_division=0))
            assert acc == approx(metrics.accuracy_score(y, pr))
        else:
            assert f1 is None and acc is None
        if len(ys) and len(set(ys.tolist())) == 2:
            assert auc == approx(metrics.roc_auc_score(ys.astype(int), sc.astype(float)))
        else:
            assert auc is None


# ---------------------------------------------------------------------------------------------
# Thresholds
# ---------------------------------------------------------------------------------------------

def reference_rows(y, s, fn_cost=1, fp_cost=1, tp_cost=0, tn_cost=0):
    """The threshold table by brute force: flag score >= t for every distinct score and +inf."""
    p_total, n_total = int(y.sum()), int((~y).sum())
    rows = []
    for t in [math.inf, *sorted(set(s.tolist()), reverse=True)]:
        flagged = s >= t
        tp, fp = int((flagged & y).sum()), int((flagged & ~y).sum())
        fn, tn = p_total - tp, n_total - fp
        rows.append({
            "threshold": t, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / p_total if p_total else 0.0,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
            "fnr": fn / p_total if p_total else 0.0,
            "fpr": fp / n_total if n_total else 0.0,
            "accuracy": (tp + tn) / len(y),
            "cost": fn * fn_cost + fp * fp_cost + tp * tp_cost + tn * tn_cost,
        })
    return rows


def reference_best(y, s, objective, fn_cost, fp_cost, min_recall=None, max_fnr=None):
    """The documented choice: best objective, then higher recall, then higher threshold."""
    feasible = [r for r in reference_rows(y, s, fn_cost, fp_cost)
                if (min_recall is None or r["recall"] >= min_recall)
                and (max_fnr is None or r["fnr"] <= max_fnr)]
    if not feasible:
        return None
    value = {"cost": lambda r: -r["cost"], "f1": lambda r: r["f1"],
             "youden": lambda r: r["recall"] - r["fpr"]}[objective]
    return max(feasible, key=lambda r: (value(r), r["recall"], r["threshold"]))


def assert_rows_equal(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert set(g) == set(w)
        for key in w:
            assert g[key] == approx(w[key]), key


threshold_data = st.lists(st.tuples(st.booleans(), tied_score), min_size=1, max_size=30)


@PROPERTY
@given(rows=threshold_data, fn_cost=st.sampled_from([0, 1, 3, 50]),
       fp_cost=st.sampled_from([0, 1, 2.5]))
def test_threshold_table_matches_brute_force_and_sklearn_roc_curve(con, rows, fn_cost, fp_cost):
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows])
    register(con, "d", a=(y.tolist(), pa.bool_()), s=(s.tolist(), pa.float64()))
    cur = con.execute(f"FROM ml_threshold_table('d', actual := 'a', score := 's',"
                      f" fn_cost := {fn_cost}, fp_cost := {fp_cost})")
    names = [c[0] for c in cur.description]
    got = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    assert_rows_equal(got, reference_rows(y, s, fn_cost, fp_cost))
    if 0 < y.sum() < len(y):
        fpr, tpr, thresholds = metrics.roc_curve(y, s, drop_intermediate=False)
        assert [r["threshold"] for r in got] == thresholds.tolist()
        assert [r["fpr"] for r in got] == approx(fpr.tolist())
        assert [r["recall"] for r in got] == approx(tpr.tolist())


@PROPERTY
@given(rows=threshold_data, objective=st.sampled_from(["cost", "f1", "youden", "F1"]),
       fn_cost=st.sampled_from([1, 3, 50]), fp_cost=st.sampled_from([0, 1, 3]),
       min_recall=st.sampled_from([None, 0.0, 0.5, 0.85, 1.0]),
       max_fnr=st.sampled_from([None, 0.2, 1.0]))
def test_best_threshold_is_the_brute_force_optimum(con, rows, objective, fn_cost, fp_cost,
                                                   min_recall, max_fnr):
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows])
    register(con, "d", a=(y.tolist(), pa.bool_()), s=(s.tolist(), pa.float64()))
    sql_null = "NULL"
    sql = (f"SELECT ml_best_threshold(a, s, objective := '{objective}', fn_cost := {fn_cost},"
           f" fp_cost := {fp_cost}, min_recall := {sql_null if min_recall is None else min_recall},"
           f" max_fnr := {sql_null if max_fnr is None else max_fnr}) FROM d")
    want = reference_best(y, s, objective.lower(), fn_cost, fp_cost, min_recall, max_fnr)
    if want is None:
        with pytest.raises(Exception, match="no threshold meets"):
            con.execute(sql).fetchall()
        return
    (got,) = one(con, sql)
    assert_rows_equal([got], [want])


def test_best_threshold_reads_a_registered_pandas_frame(con):
    # The training code chooses thresholds on validation frames this way.
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.3
    s = np.clip(rng.random(300) * 0.7 + y * 0.3, 0, 1)
    con.register("validation", pd.DataFrame({"churned": y, "p_churn": s}))
    (best,) = one(con, "SELECT ml_best_threshold(churned, p_churn, fn_cost := 3, fp_cost := 1,"
                       " min_recall := 0.85) FROM validation")
    assert_rows_equal([best], [reference_best(y, s, "cost", 3, 1, 0.85)])
    table = con.execute("FROM ml_threshold_table('validation', actual := 'churned',"
                        " score := 'p_churn', fn_cost := 3, fp_cost := 1)").df()
    assert len(table) == len(set(s.tolist())) + 1
    assert table["cost"].min() == approx(reference_best(y, s, "cost", 3, 1)["cost"])


def test_compare_models_ranks_by_cost_and_flags_the_recall_bound(con):
    rng = np.random.default_rng(11)
    y = rng.random(400) < 0.3
    signal = {"good": 0.5, "weak": 0.1, "fixed": 0.3}
    rows = []
    for name, strength in signal.items():
        s = np.round(np.clip(rng.random(400) * (1 - strength) + y * strength, 0, 1), 2)
        rows += [(name, bool(a), float(b)) for a, b in zip(y, s, strict=True)]
    register(con, "v", model=([r[0] for r in rows], pa.string()),
             churned=([r[1] for r in rows], pa.bool_()), p=([r[2] for r in rows], pa.float64()))
    cur = con.execute("FROM ml_compare_models('v', actual := 'churned', model := 'model',"
                      " score := 'p', fn_cost := 3, fp_cost := 1, min_recall := 0.85)")
    names = [c[0] for c in cur.description]
    got = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    assert [r["rank"] for r in got] == [1, 2, 3]
    expected_cost = {}
    for r in got:
        sel = [i for i, row in enumerate(rows) if row[0] == r["model"]]
        ys = np.array([rows[i][1] for i in sel])
        ss = np.array([rows[i][2] for i in sel])
        want = reference_best(ys, ss, "cost", 3, 1, min_recall=0.85)
        assert r["threshold"] == want["threshold"] and r["cost"] == approx(want["cost"])
        assert r["recall"] >= 0.85 and r["meets_constraints"] is True
        assert r["roc_auc"] == approx(metrics.roc_auc_score(ys, ss))
        expected_cost[r["model"]] = (want["cost"], -want["recall"], r["model"])
    assert [r["model"] for r in got] == sorted(expected_cost, key=expected_cost.get)
    # A fixed cut-off can break the bound: such models are flagged and ranked last.
    cur = con.execute("FROM ml_compare_models('v', actual := 'churned', model := 'model',"
                      " score := 'p', fn_cost := 3, fp_cost := 1, min_recall := 0.85,"
                      " threshold := 0.6)")
    fixed = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    for r in fixed:
        sel = [i for i, row in enumerate(rows) if row[0] == r["model"]]
        ys = np.array([rows[i][1] for i in sel])
        flagged = np.array([rows[i][2] for i in sel]) >= 0.6
        recall = (flagged & ys).sum() / ys.sum()
        assert r["recall"] == approx(recall)
        assert r["meets_constraints"] is bool(recall >= 0.85)
    meets = [r["meets_constraints"] for r in fixed]
    assert meets == sorted(meets, reverse=True)


def test_compare_models_flags_a_model_that_cannot_reach_the_recall(con):
    register(con, "v", model=(["a"] * 4 + ["b"] * 4, pa.string()),
             y=([True, False, True, False] + [False] * 4, pa.bool_()),
             s=([0.9, 0.1, 0.8, 0.3, 0.5, 0.4, 0.3, 0.2], pa.float64()))
    got = con.execute("SELECT model, meets_constraints, rank FROM ml_compare_models('v',"
                      " actual := 'y', model := 'model', score := 's', min_recall := 0.9)"
                      ).fetchall()
    assert got == [("a", True, 1), ("b", False, 2)]


# ---------------------------------------------------------------------------------------------
# Multiclass
# ---------------------------------------------------------------------------------------------

@PROPERTY
@given(pairs=st.lists(st.tuples(multiclass_label, multiclass_label), min_size=1, max_size=40))
def test_classification_report_matches_sklearn(con, pairs):
    actual, predicted = [a for a, _ in pairs], [p for _, p in pairs]
    register(con, "d", a=(actual, pa.string()), p=(predicted, pa.string()))
    got = {r[0]: r[1:] for r in con.execute(
        "FROM ml_classification_report('d', actual := 'a', predicted := 'p')").fetchall()}
    y, p = kept(actual, predicted)
    if len(y) == 0:
        assert got == {}
        return
    labels = sorted(set(y.tolist()) | set(p.tolist()))
    prec, rec, f1, support = sk(metrics.precision_recall_fscore_support, y, p, labels=labels,
                                zero_division=0)
    cm = metrics.confusion_matrix(y, p, labels=labels)
    ovr = [(len(y) - cm[i].sum() - cm[:, i].sum() + 2 * cm[i, i]) / len(y)
           for i in range(len(labels))]
    assert list(got) == [*labels, "accuracy", "macro avg", "micro avg", "weighted avg"]
    for i, label in enumerate(labels):
        assert got[label] == approx((prec[i], rec[i], f1[i], ovr[i], support[i]))
    assert got["accuracy"][3] == approx(metrics.accuracy_score(y, p))
    assert got["accuracy"][4] == len(y)
    for avg in ("macro", "micro", "weighted"):
        want = sk(metrics.precision_recall_fscore_support, y, p, labels=labels, average=avg,
                  zero_division=0)
        assert got[f"{avg} avg"][:3] == approx(want[:3]), avg
        assert got[f"{avg} avg"][4] == len(y)
    assert got["macro avg"][3] == approx(np.mean(ovr))
    assert got["weighted avg"][3] == approx(np.average(ovr, weights=support)
                                            if support.sum() else 0)


@PROPERTY
@given(pairs=st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 3)),
                                st.one_of(st.none(), st.integers(1, 4))), max_size=30))
def test_confusion_matrix_table_matches_sklearn(con, pairs):
    actual, predicted = [a for a, _ in pairs], [p for _, p in pairs]
    register(con, "d", a=(actual, pa.int64()), p=(predicted, pa.int64()))
    got = con.execute("FROM ml_confusion_matrix_table('d', actual := 'a', predicted := 'p')"
                      ).fetchall()
    y, p = kept(actual, predicted)
    labels = sorted(set(y.tolist()) | set(p.tolist()))
    want = []
    if labels:
        cm = metrics.confusion_matrix(y, p, labels=labels)
        want = [(a, b, int(cm[i, j])) for i, a in enumerate(labels) for j, b in enumerate(labels)]
    assert got == want


# ---------------------------------------------------------------------------------------------
# Ranking
# ---------------------------------------------------------------------------------------------

def reference_ranking(rows, k):
    """Straight from the definitions in the README: rows are (rank or None, relevance or None)."""
    gain = {r: g or 0 for r, g in rows if r is not None}
    gains = [g or 0 for _, g in rows]
    relevant = sum(1 for g in gains if g > 0)
    hits = sorted(r for r, g in gain.items() if r <= k and g > 0)
    dcg = sum(g / math.log2(r + 1) for r, g in gain.items() if r <= k)
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(gains, reverse=True)[:k]))
    return {
        "precision": len(hits) / k,
        "recall": len(hits) / relevant if relevant else None,
        "ndcg": dcg / idcg if idcg > 0 else 0.0,
        "map": (sum((j + 1) / r for j, r in enumerate(hits)) / min(k, relevant)
                if relevant else None),
        "hit": (1.0 if hits else 0.0) if relevant else None,
    }


user_rows = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(0, 3)), st.booleans()), min_size=1, max_size=12)


@PROPERTY
@given(users=st.lists(user_rows, min_size=1, max_size=4), k=st.integers(1, 8))
def test_ranking_metrics_match_their_definitions_per_user(con, users, k):
    data = []  # (user, rank, relevance, item)
    for u, rows in enumerate(users):
        next_rank = 1
        for item, (gain, recommended) in enumerate(rows):
            rank = None
            if recommended or gain in (None, 0):
                rank, next_rank = next_rank, next_rank + 1
            data.append((u, rank, gain, item))
    cols = list(zip(*data, strict=True))
    register(con, "r", u=(cols[0], pa.int64()), rank=(cols[1], pa.int64()),
             rel=(cols[2], pa.int64()), item=(cols[3], pa.int64()))
    got = {row[0]: row[1:] for row in con.execute(
        f"SELECT u, ml_precision_at_k(rank, rel, k := {k}), ml_recall_at_k(rank, rel, k := {k}),"
        f" ml_ndcg_at_k(rank, rel, k := {k}), ml_map_at_k(rank, rel, k := {k}),"
        f" ml_hit_rate(rank, rel, k := {k}) FROM r GROUP BY u").fetchall()}
    lists = {row[0]: row[1:] for row in con.execute(
        f"""WITH l AS (SELECT u, list(item ORDER BY rank) FILTER (WHERE rank IS NOT NULL) AS rec,
                             list(item ORDER BY item) FILTER (WHERE rel > 0) AS relevant
                      FROM r GROUP BY u)
            SELECT u, ml_precision_at_k(coalesce(rec, []), coalesce(relevant, []), k := {k}),
                   ml_recall_at_k(coalesce(rec, []), coalesce(relevant, []), k := {k}),
                   ml_map_at_k(coalesce(rec, []), coalesce(relevant, []), k := {k}),
                   ml_hit_rate(coalesce(rec, []), coalesce(relevant, []), k := {k})
            FROM l""").fetchall()}
    for u in range(len(users)):
        rows = [(d[1], d[2]) for d in data if d[0] == u]
        want = reference_ranking(rows, k)
        keys = ["precision", "recall", "ndcg", "map", "hit"]
        for key, value in zip(keys, got[u], strict=True):
            assert value == (None if want[key] is None else approx(want[key])), key
        for key, value in zip(["precision", "recall", "map", "hit"], lists[u], strict=True):
            assert value == (None if want[key] is None else approx(want[key])), ("list", key)
        ranked = [(r, g or 0) for r, g in rows if r is not None]
        if len(rows) > 1 and k <= len(ranked):
            # scikit-learn's NDCG: unrecommended items score below every recommended one.
            true = [[g or 0 for _, g in rows]]
            score = [[-(r if r is not None else 10**6) for r, _ in rows]]
            assert got[u][2] == approx(metrics.ndcg_score(true, score, k=k))


def test_ndcg_list_form_with_graded_gains_matches_the_row_form(con):
    (lst,) = one(con, "SELECT ml_ndcg_at_k(['a', 'b', 'c', 'd'], ['c', 'x', 'a'], k := 3,"
                      " gains := [3, 2, 1])")
    (rows,) = one(con, "SELECT ml_ndcg_at_k(rank, rel, k := 3) FROM (VALUES (1, 1), (2, 0),"
                       " (3, 3), (4, 0), (NULL, 2)) t(rank, rel)")
    dcg = 1 / math.log2(2) + 3 / math.log2(4)
    idcg = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert lst == approx(dcg / idcg)
    assert rows == approx(dcg / idcg)


# ---------------------------------------------------------------------------------------------
# Positive labels and NULLs: the documented rules
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_default_positive_label_rule(con, encoding):
    actual = [True, True, False, False, True]
    predicted = [True, False, False, True, True]
    a_vals, typ = encode(actual, encoding)
    p_vals, _ = encode(predicted, encoding)
    register(con, "d", a=(a_vals, typ), p=(p_vals, typ))
    assert one(con, "SELECT ml_confusion(a, p) FROM d")[0] == {"tp": 2, "fp": 1, "tn": 1,
                                                                "fn": 1}


@pytest.mark.parametrize(("column", "pos_label", "tp"), [
    ("CAST(x AS DOUBLE)", "1", 2),          # numbers compare by value: 1 = 1.0
    ("x = 1", "1", 2),                      # ... and 1 = true
    ("CAST(x AS VARCHAR)", "'1'", 2),
    ("CAST(x + 5 AS INTEGER)", "6", 2),     # any label can be named positive
    ("CAST(x + 5 AS INTEGER)", "5", 1),
    ("CASE x WHEN 1 THEN 'Churned' ELSE 'Stayed' END", "'Stayed'", 1),
])
def test_explicit_pos_label(con, column, pos_label, tp):
    sql = (f"SELECT ml_confusion(a, a, pos_label := {pos_label}).tp FROM"
           f" (SELECT {column} AS a FROM (VALUES (1), (0), (1)) t(x))")
    assert one(con, sql)[0] == tp


def test_rows_with_a_null_label_or_score_are_ignored(con):
    register(con, "d", a=([True, None, False, True, None], pa.bool_()),
             p=([True, True, None, False, None], pa.bool_()),
             s=([0.9, 0.8, None, 0.1, 0.5], pa.float64()))
    confusion, auc, acc = one(con, "SELECT ml_confusion(a, p), ml_roc_auc(a, s), ml_accuracy(a, p)"
                                   " FROM d")
    assert confusion == {"tp": 1, "fp": 0, "tn": 0, "fn": 1}
    assert acc == 0.5
    assert auc is None  # the only non-NULL negative had a NULL score: one class left


def test_a_row_left_out_for_a_null_is_never_checked(con):
    # The NULL rule comes first: values that would be errors are ignored with their row.
    register(con, "d", a=([None, "maybe", "yes", "no", None], pa.string()),
             p=(["maybe", None, "yes", "no", "yes"], pa.string()),
             s=([0.5, None, 0.9, 0.1, float("nan")], pa.float64()),
             prob=([0.5, None, 0.9, 0.1, 1.5], pa.float64()))
    got = one(con, "SELECT ml_f1(a, p), ml_roc_auc(a, s), ml_pr_auc(a, s),"
                   " ml_best_threshold(a, s).threshold, ml_log_loss(a, prob), ml_brier(a, prob)"
                   " FROM d")
    assert got[:4] == (1.0, 1.0, 1.0, 0.9)
    assert got[4] == approx(-(math.log(0.9) + math.log(0.9)) / 2)
    assert got[5] == approx(0.01)
    (coverage,) = one(con, "SELECT ml_interval_coverage(a, lo, hi)"
                           " FROM (VALUES (NULL, 5, 3), (1, 0, 2), (7, NULL, 1)) t(a, lo, hi)")
    assert coverage == 1.0


def test_metrics_are_installed_persistently_and_in_the_main_schema(con):
    names = {r[0] for r in con.execute(
        "SELECT function_name FROM duckdb_functions()"
        " WHERE function_name LIKE 'ml%' AND schema_name = 'main'").fetchall()}
    assert {"ml_roc_auc", "ml_best_threshold", "ml_classification_report",
            "ml_threshold_table", "ml_compare_models", "ml_ndcg_at_k"} <= names
