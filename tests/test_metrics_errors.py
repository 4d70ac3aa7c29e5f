"""Bad input to the SQL metrics fails with a message naming the function, rule, value and remedy."""

import re

import duckdb
import pytest


@pytest.fixture
def data(con):
    con.execute("""CREATE TABLE t AS FROM (VALUES
        (1, 'yes', 'yes', 0.9, 'a', 1, 1.0), (2, 'no', 'yes', 0.6, 'a', 2, NULL),
        (3, 'yes', 'no', 0.4, 'b', 1, 1.0), (4, 'no', 'no', 0.1, 'b', 2, 0.0)
    ) v(id, churned, predicted, p, model, rank, relevance)""")
    return con


def fails(con, sql, *fragments):
    """The query fails and the message holds every fragment, in order."""
    with pytest.raises(duckdb.Error) as info:
        con.execute(sql).fetchall()
    message = str(info.value)
    pattern = ".*".join(re.escape(f) for f in fragments)
    assert re.search(pattern, message, re.S), message
    return message


def test_negative_cost_message_reads_as_specified(data):
    message = fails(data, "SELECT ml_cost(churned, predicted, fn_cost := -3) FROM t",
                    "ml_cost: fn_cost must be a non-negative number, got -3.")
    assert message.endswith("Pass the cost of one missed positive, e.g. fn_cost := 50.")


@pytest.mark.parametrize(("function", "call"), [
    ("ml_cost", "ml_cost(churned, predicted, {arg})"),
    ("ml_business_impact", "ml_business_impact(churned, predicted, {arg})"),
    ("ml_best_threshold", "ml_best_threshold(churned, p, {arg})"),
])
@pytest.mark.parametrize(("arg", "shown"), [
    ("fp_cost := -0.5", "-0.5"),
    ("fp_cost := 'abc'", "'abc'"),
    ("fp_cost := '3'", "'3'"),              # a number in a string is still the wrong type
    ("tp_cost := NULL", "NULL"),
    ("tn_cost := 'nan'::DOUBLE", "nan"),
    ("fn_cost := 'infinity'::DOUBLE", "inf"),
])
def test_bad_costs(data, function, call, arg, shown):
    name = arg.split(" :=")[0]
    fails(data, f"SELECT {call.format(arg=arg)} FROM t",
          f"{function}: {name} must be a non-negative number, got {shown}.", f"e.g. {name} := ")


@pytest.mark.parametrize("table_call", [
    "ml_threshold_table('t', actual := 'churned', score := 'p', fn_cost := -1)",
    "ml_compare_models('t', actual := 'churned', model := 'model', score := 'p', fn_cost := -1)",
])
def test_bad_costs_in_table_functions(data, table_call):
    function = table_call.split("(")[0]
    fails(data, f"FROM {table_call}", f"{function}: fn_cost must be a non-negative number, got -1")


@pytest.mark.parametrize(("arg", "shown"), [
    ("min_recall := 1.5", "1.5"), ("min_recall := -0.1", "-0.1"),
    ("min_recall := 'high'", "'high'"), ("max_fnr := 2", "2"),
])
def test_constraints_outside_zero_one(data, arg, shown):
    name = arg.split(" :=")[0]
    for sql in (f"SELECT ml_best_threshold(churned, p, {arg}) FROM t",
                f"FROM ml_compare_models('t', actual := 'churned', model := 'model', score := 'p',"
                f" {arg})"):
        fails(data, sql, f"{name} must be a number between 0 and 1, got {shown}.",
              f"e.g. {name} := 0.")


def test_no_threshold_meets_the_constraint_says_what_is_reachable(data):
    message = fails(
        data, "SELECT ml_best_threshold(churned, p, min_recall := 0.9) FROM t WHERE churned = 'no'",
        "ml_best_threshold: no threshold meets min_recall := 0.9.",
        "The best reachable recall is 0.0 at threshold inf",
        "no positive rows", "Relax the constraint, e.g. min_recall := 0.0.")
    assert "false negative rate" not in message  # undefined without positives


def test_unknown_objective(data):
    fails(data, "SELECT ml_best_threshold(churned, p, objective := 'accuracy') FROM t",
          "ml_best_threshold: objective must be 'cost', 'f1' or 'youden', got 'accuracy'.",
          "e.g. objective := 'cost'")


@pytest.mark.parametrize(("sql", "function", "where"), [
    ("SELECT ml_f1(churned, predicted, pos_label := 'Yes') FROM t", "ml_f1",
     "actual or predicted"),
    ("SELECT ml_cost(churned, predicted, pos_label := 'Yes') FROM t", "ml_cost",
     "actual or predicted"),
    ("SELECT ml_roc_auc(churned, p, pos_label := 'Yes') FROM t", "ml_roc_auc", "actual"),
    ("SELECT ml_pr_auc(churned, p, pos_label := 'Yes') FROM t", "ml_pr_auc", "actual"),
    ("SELECT ml_log_loss(churned, p, pos_label := 'Yes') FROM t", "ml_log_loss", "actual"),
    ("SELECT ml_brier(churned, p, pos_label := 'Yes') FROM t", "ml_brier", "actual"),
    ("SELECT ml_best_threshold(churned, p, pos_label := 'Yes') FROM t", "ml_best_threshold",
     "actual"),
    ("FROM ml_threshold_table('t', actual := 'churned', score := 'p', pos_label := 'Yes')",
     "ml_threshold_table", "actual"),
])
def test_unknown_pos_label_lists_the_values_and_suggests_the_case_fix(data, sql, function, where):
    fails(data, sql, f"{function}: pos_label := 'Yes' matches no value of {where}",
          "(values seen: no, yes)", "case included", "e.g. pos_label := 'yes'.")


def test_a_pos_label_absent_from_a_one_class_group_is_not_an_error(data):
    # Such a group is simply all negative, as in scikit-learn.
    rows = data.execute("SELECT churned, ml_recall(churned, churned, pos_label := 'yes')"
                        " FROM t GROUP BY churned ORDER BY churned").fetchall()
    assert rows == [("no", 0.0), ("yes", 1.0)]


def test_labels_the_default_rule_does_not_know(con):
    con.execute("CREATE TABLE tiers AS FROM (VALUES ('Gold', 'Silver'), ('Silver', 'Silver'))"
                " v(tier, predicted)")
    fails(con, "SELECT ml_precision(tier, predicted) FROM tiers",
          "ml_precision: cannot tell whether actual = 'Gold' is the positive class.",
          "Without pos_label, positives are true, 1", "e.g. pos_label := 'Gold'.")
    fails(con, "SELECT ml_roc_auc(n, 0.5) FROM (VALUES (2), (1)) v(n)",
          "ml_roc_auc: cannot tell whether actual = 2 is the positive class.",
          "pos_label := 2.")


def test_mismatched_lengths_in_list_forms(con):
    fails(con, "SELECT ml_ndcg_at_k(['a', 'b', 'c'], ['a', 'b'], gains := [3])",
          "ml_ndcg_at_k: gains must hold one gain per item of relevant, got 1 gains for 2"
          " relevant items.", "Pass lists of equal length")
    fails(con, "SELECT ml_ndcg_at_k([1, 2], [1, 2, 3], gains := [3, 2])",
          "got 2 gains for 3 relevant items")


@pytest.mark.parametrize(("k", "shown"), [("0", "0"), ("2.5", "2.5"), ("'ten'", "'ten'"),
                                          ("NULL", "NULL")])
def test_bad_k(data, k, shown):
    for sql in (f"SELECT ml_precision_at_k(['a'], ['a'], k := {k})",
                f"SELECT ml_ndcg_at_k(rank, relevance, k := {k}) FROM t GROUP BY id"):
        fails(data, sql, f"k must be a whole number of at least 1, got {shown}.",
              "e.g. k := 10.")


def test_repeated_ranks_point_at_a_missing_group_by(data):
    fails(data, "SELECT ml_ndcg_at_k(rank, relevance) FROM t",
          "ml_ndcg_at_k: each rank may occur once per group, got 4 ranked rows but 2 distinct"
          " ranks.", "GROUP BY user_id")


@pytest.mark.parametrize(("value", "shown"), [("0", "0"), ("1.5", "1.5"), ("'top'", "'top'")])
def test_bad_rank(con, value, shown):
    fails(con, f"SELECT ml_precision_at_k({value}, 1)",
          "ml_precision_at_k: rank must be a whole number of at least 1", f"got {shown}.",
          "Use NULL for relevant items that were not recommended.")


@pytest.mark.parametrize(("value", "shown"), [("-1", "-1"), ("'x'", "'x'")])
def test_bad_relevance(con, value, shown):
    fails(con, f"SELECT ml_recall_at_k(1, {value})",
          f"ml_recall_at_k: relevance must be a non-negative number or boolean, got {shown}.")


def test_bad_beta(data):
    fails(data, "SELECT ml_fbeta(churned, predicted, beta := -1) FROM t",
          "ml_fbeta: beta must be a non-negative number, got -1.", "e.g. beta := 2.")


@pytest.mark.parametrize("function", ["ml_log_loss", "ml_brier"])
@pytest.mark.parametrize(("value", "shown"), [("1.5", "1.5"), ("-0.2", "-0.2"),
                                              ("'nan'::DOUBLE", "nan")])
def test_probability_outside_zero_one(data, function, value, shown):
    fails(data, f"SELECT {function}(churned, {value}) FROM t",
          f"{function}: probability must be between 0 and 1, got {shown}.",
          "not a label or a raw score")


@pytest.mark.parametrize("function", ["ml_roc_auc", "ml_pr_auc", "ml_best_threshold"])
@pytest.mark.parametrize(("value", "shown"), [("'nan'::DOUBLE", "nan"),
                                              ("'-infinity'::DOUBLE", "-inf"),
                                              ("'high'", "'high'")])
def test_scores_must_be_finite_numbers(data, function, value, shown):
    fails(data, f"SELECT {function}(churned, {value}) FROM t",
          f"{function}: score must be a finite number, got {shown}.", "WHERE isfinite(score)")


def test_interval_with_lo_above_hi(con):
    fails(con, "SELECT ml_interval_coverage(5, 7, 3)",
          "ml_interval_coverage: lo must not exceed hi, got lo = 7 and hi = 3.",
          "Pass the lower bound first")


@pytest.mark.parametrize(("q", "shown"), [("1.5", "1.5"), ("'median'", "'median'"),
                                          ("NULL", "NULL")])
def test_bad_quantile(con, q, shown):
    fails(con, f"SELECT ml_pinball_loss(3, 2, q := {q})",
          f"ml_pinball_loss: q must be a number between 0 and 1, got {shown}.", "e.g. q := 0.9.")


@pytest.mark.parametrize(("call", "missing"), [
    ("ml_threshold_table('t', score := 'p')", "actual"),
    ("ml_threshold_table('t', actual := 'churned')", "score"),
    ("ml_classification_report('t', actual := 'churned')", "predicted"),
    ("ml_confusion_matrix_table('t', predicted := 'predicted')", "actual"),
    ("ml_compare_models('t', actual := 'churned', score := 'p')", "model"),
])
def test_table_functions_require_their_column_names(data, call, missing):
    function = call.split("(")[0]
    fails(data, f"FROM {call}", f"{function}: {missing} is required: pass the name of the column"
          f" as a string, e.g. {missing} := '")


def test_compare_models_threshold_must_be_a_number(data):
    fails(data, "FROM ml_compare_models('t', actual := 'churned', model := 'model', score := 'p',"
          " threshold := 'best')", "ml_compare_models: threshold must be a number or NULL, got"
          " 'best'.", "threshold := 0.5.")


def test_a_misspelt_column_name_is_reported_by_duckdb(data):
    fails(data, "FROM ml_threshold_table('t', actual := 'churn', score := 'p')",
          'Could not find key "churn"', "churned")
