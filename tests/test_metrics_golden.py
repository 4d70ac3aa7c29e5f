"""Worked examples with values computed by hand (issue 3's golden numbers among them)."""

import math

import pytest

# Rows = predicted tier, columns = actual tier, in the order Platinum, Gold, Silver.
TIERS = ["Platinum", "Gold", "Silver"]
MATRIX = [[30, 20, 10],
          [50, 60, 10],
          [20, 20, 80]]


@pytest.fixture
def tiers(con):
    cells = ", ".join(f"('{TIERS[a]}', '{TIERS[p]}', {MATRIX[p][a]})"
                      for p in range(3) for a in range(3))
    con.execute(f"CREATE TABLE tiers AS SELECT tier, predicted FROM (VALUES {cells})"
                f" c(tier, predicted, n), range(n)")
    return con


def report(con):
    cur = con.execute("FROM ml_classification_report('tiers', actual := 'tier',"
                      " predicted := 'predicted')")
    names = [c[0] for c in cur.description]
    return {row[0]: dict(zip(names[1:], row[1:], strict=True)) for row in cur.fetchall()}


def test_three_class_report_per_class(tiers):
    rows = report(tiers)
    expected = {  # label: (precision, recall, f1, one-vs-rest accuracy)
        "Platinum": (30 / 60, 30 / 100, 0.375, 200 / 300),
        "Gold": (60 / 120, 60 / 100, 0.545, 200 / 300),
        "Silver": (80 / 120, 80 / 100, 0.727, 240 / 300),
    }
    for label, (precision, recall, f1, accuracy) in expected.items():
        got = rows[label]
        assert got["precision"] == pytest.approx(precision)
        assert got["recall"] == pytest.approx(recall)
        assert round(got["f1"], 3) == f1
        assert got["accuracy"] == pytest.approx(accuracy)
        assert got["support"] == 100
    assert [round(rows[t]["precision"], 3) for t in TIERS] == [0.5, 0.5, 0.667]
    assert [round(rows[t]["accuracy"], 3) for t in TIERS] == [0.667, 0.667, 0.8]


def test_three_class_report_averages_and_accuracy(tiers):
    rows = report(tiers)
    assert rows["accuracy"]["accuracy"] == pytest.approx(170 / 300)
    assert rows["accuracy"]["support"] == 300
    macro = rows["macro avg"]
    assert round(macro["precision"], 3) == 0.556
    assert round(macro["recall"], 3) == 0.567
    assert round(macro["f1"], 3) == 0.549
    # Micro averaging pools the counts: every measure equals the overall accuracy here.
    assert rows["micro avg"]["precision"] == pytest.approx(170 / 300)
    assert rows["micro avg"]["f1"] == pytest.approx(170 / 300)
    assert list(rows) == ["Gold", "Platinum", "Silver", "accuracy", "macro avg", "micro avg",
                          "weighted avg"]


def test_three_class_example_does_not_reproduce_the_circulating_errors(tiers):
    # Circulating copies divide 170 by 200 (0.85) and take Silver's F1 from wrong cells (0.51).
    rows = report(tiers)
    assert round(rows["accuracy"]["accuracy"], 2) != 0.85
    assert round(rows["Silver"]["f1"], 2) != 0.51
    acc, silver_f1, silver_precision, balanced = tiers.execute(
        "SELECT ml_accuracy(tier, predicted), ml_f1(tier, predicted, pos_label := 'Silver'),"
        " ml_precision(tier, predicted, pos_label := 'Silver'),"
        " ml_balanced_accuracy(tier, predicted) FROM tiers").fetchall()[0]
    assert acc == pytest.approx(170 / 300)
    assert silver_f1 == pytest.approx(2 * (80 / 120) * 0.8 / (80 / 120 + 0.8))
    assert silver_precision == pytest.approx(80 / 120)
    assert balanced == pytest.approx((0.3 + 0.6 + 0.8) / 3)


def test_three_class_confusion_matrix_table(tiers):
    got = {(a, p): n for a, p, n in tiers.execute(
        "FROM ml_confusion_matrix_table('tiers', actual := 'tier', predicted := 'predicted')"
    ).fetchall()}
    assert got == {(TIERS[a], TIERS[p]): MATRIX[p][a] for a in range(3) for p in range(3)}


@pytest.fixture
def retention(con):
    # TP = 8, TN = 81, FP = 8, FN = 3: 100 customers, 11 churners.
    con.execute("""
        CREATE TABLE retention AS
        SELECT churned, flagged
        FROM (VALUES (true, true, 8), (false, false, 81), (false, true, 8), (true, false, 3))
             c(churned, flagged, n), range(n)""")
    return con


def test_business_impact_worked_example(retention):
    impact, cost, accuracy, counts = retention.execute("""
        SELECT ml_business_impact(churned, flagged, fn_cost := 50, fp_cost := 3, tp_cost := 3),
               ml_cost(churned, flagged, fn_cost := 50, fp_cost := 3, tp_cost := 3),
               ml_accuracy(churned, flagged),
               ml_confusion(churned, flagged)
        FROM retention""").fetchall()[0]
    # With the model: 3 lost churners x $50 + 16 incentives x $3. Without: 11 lost x $50.
    assert impact == {"cost_with_model": 198.0, "cost_without_model": 550.0, "savings": 352.0}
    assert cost == 198.0
    assert accuracy == pytest.approx(0.89)
    assert counts == {"tp": 8, "fp": 8, "tn": 81, "fn": 3}


def test_business_impact_with_default_costs_counts_errors(retention):
    impact, cost = retention.execute("SELECT ml_business_impact(churned, flagged),"
                                     " ml_cost(churned, flagged) FROM retention").fetchall()[0]
    assert cost == 11.0  # 8 false alarms + 3 misses
    assert impact == {"cost_with_model": 11.0, "cost_without_model": 11.0, "savings": 0.0}


@pytest.mark.parametrize(("labels", "scores", "auc", "ap"), [
    # scikit-learn's documentation example.
    ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75, (1 / 2 * 1 + 1 / 2 * 2 / 3)),
    # A positive tied with a negative at 0.5 wins half that pair: (0.5 + 1 + 2) / 4.
    ([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9], 0.875, (1 / 2 * 1 + 1 / 2 * 2 / 3)),
    # All scores equal: a coin toss, and precision is the positive share everywhere.
    ([0, 1, 1, 0, 1], [0.3] * 5, 0.5, 3 / 5),
])
def test_roc_auc_and_average_precision_by_hand(con, labels, scores, auc, ap):
    rows = ", ".join(f"({y}, {s})" for y, s in zip(labels, scores, strict=True))
    got = con.execute(f"SELECT ml_roc_auc(y, s), ml_pr_auc(y, s) FROM (VALUES {rows}) t(y, s)"
                      ).fetchall()[0]
    assert got == pytest.approx((auc, ap))


def test_log_loss_and_brier_by_hand(con):
    got = con.execute("SELECT ml_log_loss(y, p), ml_brier(y, p) FROM (VALUES ('yes', 0.8),"
                      " ('no', 0.3), ('yes', 1.0)) t(y, p)").fetchall()[0]
    assert got == pytest.approx((-(math.log(0.8) + math.log(0.7) + math.log(1 - 2.0**-52)) / 3,
                                 (0.04 + 0.09 + 0.0) / 3))


@pytest.fixture
def five(con):
    con.execute("CREATE TABLE five AS FROM (VALUES (true, 0.9), (true, 0.7), (false, 0.7),"
                " (true, 0.4), (false, 0.1)) t(y, s)")
    return con


def test_threshold_table_by_hand(five):
    rows = five.execute("SELECT threshold, tp, fp, tn, fn, cost FROM ml_threshold_table('five',"
                        " actual := 'y', score := 's', fn_cost := 3, fp_cost := 1)").fetchall()
    assert rows == [
        (math.inf, 0, 0, 2, 3, 9.0),
        (0.9, 1, 0, 2, 2, 6.0),
        (0.7, 2, 1, 1, 1, 4.0),   # the tie at 0.7 flags a churner and a stayer together
        (0.4, 3, 1, 1, 0, 1.0),
        (0.1, 3, 2, 0, 0, 2.0),
    ]


@pytest.mark.parametrize(("options", "threshold", "cost"), [
    ("fn_cost := 3, fp_cost := 1", 0.4, 1.0),
    ("objective := 'f1'", 0.4, 1.0),               # F1 6/7 beats 3/4 and 2/3
    ("objective := 'youden'", 0.4, 1.0),           # recall 1 - fpr 1/2
    ("fn_cost := 1, fp_cost := 10", 0.9, 2.0),     # false alarms are dear: flag only the surest
    ("fn_cost := 1, fp_cost := 10, min_recall := 0.6", 0.4, 10.0),
    ("fn_cost := 1, fp_cost := 10, max_fnr := 0.4", 0.4, 10.0),
])
def test_best_threshold_by_hand(five, options, threshold, cost):
    got = five.execute(f"SELECT ml_best_threshold(y, s, {options}) FROM five").fetchall()[0][0]
    assert (got["threshold"], got["cost"]) == (threshold, cost)


def test_ranking_list_examples_by_hand(con):
    got = con.execute("""
        SELECT ml_precision_at_k(['m1', 'm7', 'm3'], ['m3', 'm9'], k := 3),
               ml_recall_at_k([1, 7, 3], [3, 9], k := 3),
               ml_ndcg_at_k([1, 7, 3], [3, 9], k := 3, gains := [5, 1]),
               ml_map_at_k([1, 7, 3], [3, 9], k := 3),
               ml_hit_rate([1, 7, 3], [3, 9], k := 1),
               ml_hit_rate([1, 7, 3], [3, 9], k := 3)""").fetchall()[0]
    ndcg = (5 / math.log2(4)) / (5 / math.log2(2) + 1 / math.log2(3))
    assert got == pytest.approx((1 / 3, 1 / 2, ndcg, (1 / 3) / 2, 0.0, 1.0))


def test_ranking_rows_by_hand(con):
    con.execute("""CREATE TABLE recs AS FROM (VALUES
        (1, 1, 1.0), (1, 2, NULL), (1, 3, 1.0), (1, NULL, 1.0),
        (2, 1, NULL), (2, 2, NULL), (2, 3, 5.0)) t(user_id, rank, relevance)""")
    got = con.execute("""
        SELECT user_id, ml_precision_at_k(rank, relevance, k := 2),
               ml_recall_at_k(rank, relevance, k := 3), ml_map_at_k(rank, relevance, k := 3),
               ml_ndcg_at_k(rank, relevance, k := 3), ml_hit_rate(rank, relevance, k := 2)
        FROM recs GROUP BY user_id ORDER BY user_id""").fetchall()
    ideal_1 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert got[0] == pytest.approx((1, 1 / 2, 2 / 3, (1 + 2 / 3) / 3,
                                    (1 + 1 / math.log2(4)) / ideal_1, 1.0))
    assert got[1] == pytest.approx((2, 0.0, 1.0, (1 / 3) / 1, (5 / math.log2(4)) / 5, 0.0))


def test_regression_and_quantile_by_hand(con):
    got = con.execute("""
        SELECT ml_mse(a, p), ml_rmse(a, p), ml_mae(a, p), ml_mape(a, p), ml_r2(a, p),
               ml_pinball_loss(a, p, q := 0.9), ml_interval_coverage(a, p - 1, p + 1)
        FROM (VALUES (2.0, 3.0), (4.0, 4.0), (6.0, 3.0)) t(a, p)""").fetchall()[0]
    # errors -1, 0, 3; mean of actual 4, total sum of squares 8.
    assert got == pytest.approx((10 / 3, math.sqrt(10 / 3), 4 / 3, (1 / 2 + 0 + 1 / 2) / 3,
                                 1 - 10 / 8, (0.1 * 1 + 0 + 0.9 * 3) / 3, 2 / 3))


def test_best_threshold_ties_go_to_higher_recall_then_to_higher_threshold(con):
    con.execute("CREATE TABLE ties AS FROM (VALUES (true, 0.9), (false, 0.8), (true, 0.5),"
                " (false, 0.4)) t(y, s)")
    # Cost 1 at 0.9 (one miss) and at 0.5 (one false alarm): 0.5 catches every churner.
    got = con.execute("SELECT ml_best_threshold(y, s) FROM ties").fetchall()[0][0]
    assert (got["threshold"], got["cost"], got["recall"]) == (0.5, 1.0, 1.0)
    # Free false alarms: 0.5 and 0.4 both cost 0 with recall 1; flag fewer customers.
    got = con.execute("SELECT ml_best_threshold(y, s, fp_cost := 0) FROM ties").fetchall()[0][0]
    assert (got["threshold"], got["cost"]) == (0.5, 0.0)
