-- Metrics, costs and thresholds in pure SQL.
--
-- Everything here is a persisted macro with no Python behind it, so a .duckdb file written by
-- sqlml evaluates models in any DuckDB client (the duckdb CLI, BI tools, other languages).
--
-- Conventions that shape the code:
-- * Every aggregate metric contains exactly ONE aggregate call, written in its own body. DuckDB 2
--   accepts a macro as a window function (ml_f1(a, p) OVER (...)) only then: it counts a
--   repeated aggregate twice and does not look into nested macros. (DuckDB 1.5 is stricter: the
--   body must BE the aggregate call, so there only the plain metrics such as ml_accuracy and
--   ml_mse work as windows.) Values derived from that one aggregate are reused through
--   list_transform([value], lambda v: ...)[1], the only way to bind a name to a value inside an
--   expression.
-- * Lambdas use the `lambda x: ...` syntax: DuckDB 2 rejects the old arrow syntax and the 1.5 CLI
--   accepts both. Lambda parameters end in `_` so that they never collide with macro parameters.
-- * Score-based metrics sort each group once into a list and do the rest with vectorised list
--   functions (list_where, list_select, list_zip). A correlated subquery with window functions
--   would be simpler to read but DuckDB decorrelates it with the whole list as a partition key,
--   which is quadratic.
-- * Private helpers are named __sqlml_*, like the private Python UDFs.
-- * A line may end in a semicolon only where a statement ends: sqlml splits this file there.

-- ---------------------------------------------------------------------------------------------
-- Private helpers: labels, argument checks, printing values in messages
-- ---------------------------------------------------------------------------------------------

-- A value as it should appear in an error message: strings quoted, the rest as SQL prints it.
CREATE OR REPLACE MACRO __sqlml_show(v) AS
    CASE
        WHEN v IS NULL THEN 'NULL'
        WHEN __sqlml_is_number(v) OR typeof(v) = 'BOOLEAN' THEN v::VARCHAR
        ELSE '''' || v::VARCHAR || ''''
    END;

CREATE OR REPLACE MACRO __sqlml_is_number(v) AS
    typeof(v) IN ('TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'UTINYINT', 'USMALLINT',
                  'UINTEGER', 'UBIGINT', 'UHUGEINT', 'FLOAT', 'DOUBLE')
    OR typeof(v) LIKE 'DECIMAL%';

-- Is a label the positive class? NULL stays NULL (the row is then ignored by the caller).
-- With pos_label the match is exact, except that numbers compare by value (1 = 1.0 = true).
-- Without it the rule is fixed and documented in the README: true, 1 and a short list of
-- words are positive, false, 0, -1 and their words negative, anything else is an error. An error
-- beats a guess because a wrong guess silently inverts every metric.
CREATE OR REPLACE MACRO __sqlml_is_pos(x, pos_label, fname, role) AS
    CASE
        WHEN x IS NULL THEN NULL
        WHEN pos_label IS NOT NULL THEN
            x::VARCHAR = pos_label::VARCHAR
            OR coalesce(TRY_CAST(x AS DOUBLE) = TRY_CAST(pos_label AS DOUBLE), false)
        WHEN typeof(x) = 'BOOLEAN' THEN TRY_CAST(x AS BOOLEAN)
        WHEN TRY_CAST(x AS DOUBLE) = 1 THEN true
        WHEN TRY_CAST(x AS DOUBLE) IN (0, -1) THEN false
        -- The positive words are those training reads as positive (README), so a model's own
        -- labels evaluate without pos_label, and each has its usual opposite.
        WHEN lower(trim(x::VARCHAR)) IN ('true', 't', 'yes', 'y', 'positive', 'pos', 'churn',
                                         'churned', 'spam', 'fraud', 'default', 'bad') THEN true
        WHEN lower(trim(x::VARCHAR)) IN ('false', 'f', 'no', 'n', 'negative', 'neg', 'no churn',
                                         'not churned', 'stayed', 'retained', 'ham', 'not spam',
                                         'legit', 'legitimate', 'not fraud', 'no default',
                                         'good') THEN false
        ELSE error(fname || ': cannot tell whether ' || role || ' = ' || __sqlml_show(x)
                   || ' is the positive class. Without pos_label, positives are true, 1 and'
                    ' ''yes'', ''y'', ''true'', ''t'', ''positive'', ''pos'', ''churn'','
                    ' ''churned'', ''spam'', ''fraud'', ''default'', ''bad''; negatives are false,'
                    ' 0, -1 and ''no'', ''n'', ''false'', ''f'', ''negative'', ''neg'','
                    ' ''no churn'', ''not churned'', ''stayed'', ''retained'', ''ham'','
                    ' ''not spam'', ''legit'', ''legitimate'', ''not fraud'', ''no default'','
                    ' ''good'' (any case). Name the positive class, e.g. pos_label := '
                   || __sqlml_show(x) || '.')
    END;

-- pos_label matched nothing in a group: is that a typo? Raises if the group holds two or more
-- distinct labels (almost always a typo or a case mismatch, 'Yes' for 'yes', which would
-- otherwise score every row as negative), else returns false. A group holding one label is
-- legitimate: a tiny group, a one-class slice.
CREATE OR REPLACE MACRO __sqlml_pos_label_typo(fname, pos_label, seen, where_) AS
    list_transform([list_sort(list_distinct(seen))], lambda d_:
        CASE WHEN len(d_) < 2 THEN false ELSE
            error(fname || ': pos_label := ' || __sqlml_show(pos_label) || ' matches no value of '
                  || where_ || ' (values seen: ' || array_to_string(d_[1:5], ', ')
                  || CASE WHEN len(d_) > 5 THEN ', ...' ELSE '' END
                  || '). Labels are compared exactly, case included: pass one of the values seen,'
                     ' e.g. pos_label := '
                  || __sqlml_show(coalesce(
                         list_filter(d_, lambda v_: lower(v_::VARCHAR) = lower(pos_label::VARCHAR))[1],
                         d_[-1]))
                  || '.')
        END)[1];

-- A cost: a finite, non-negative number. Non-numeric types are refused rather than cast, so that
-- fn_cost := '50' (a string) is caught like any other type mix-up.
CREATE OR REPLACE MACRO __sqlml_cost_arg(v, fname, name, what, example) AS
    CASE
        WHEN v IS NULL OR NOT __sqlml_is_number(v) OR NOT isfinite(TRY_CAST(v AS DOUBLE))
             OR TRY_CAST(v AS DOUBLE) < 0
        THEN error(fname || ': ' || name || ' must be a non-negative number, got '
                   || __sqlml_show(v) || '. Pass ' || what || ', e.g. ' || name || ' := '
                   || example || '.')
        ELSE TRY_CAST(v AS DOUBLE)
    END;

-- A fraction in [0, 1]; NULL means "not given" and is returned as NULL.
CREATE OR REPLACE MACRO __sqlml_unit_arg(v, fname, name, what, example) AS
    CASE
        WHEN v IS NULL THEN NULL
        WHEN NOT __sqlml_is_number(v) OR NOT coalesce(TRY_CAST(v AS DOUBLE) BETWEEN 0 AND 1, false)
        THEN error(fname || ': ' || name || ' must be a number between 0 and 1, got '
                   || __sqlml_show(v) || '. Pass ' || what || ', e.g. ' || name || ' := '
                   || example || '.')
        ELSE TRY_CAST(v AS DOUBLE)
    END;

-- k of the ranking metrics: a positive whole number.
CREATE OR REPLACE MACRO __sqlml_k_arg(k, fname) AS
    CASE
        WHEN k IS NULL OR NOT __sqlml_is_number(k) OR TRY_CAST(k AS DOUBLE) < 1
             OR TRY_CAST(k AS DOUBLE) <> floor(TRY_CAST(k AS DOUBLE))
        THEN error(fname || ': k must be a whole number of at least 1, got ' || __sqlml_show(k)
                   || '. Pass how many top-ranked items to score, e.g. k := 10.')
        ELSE TRY_CAST(k AS BIGINT)
    END;

-- A score as DOUBLE. NaN and infinities are refused as scikit-learn refuses them: sorting would
-- put NaN above every real score and an infinite score collides with the "flag nobody" threshold.
CREATE OR REPLACE MACRO __sqlml_score(score, fname) AS
    CASE
        WHEN score IS NULL THEN NULL
        WHEN TRY_CAST(score AS DOUBLE) IS NULL OR NOT isfinite(TRY_CAST(score AS DOUBLE))
        THEN error(fname || ': score must be a finite number, got ' || __sqlml_show(score)
                   || '. Remove or impute rows with NaN or infinite scores, or filter them with'
                    ' WHERE isfinite(score).')
        ELSE TRY_CAST(score AS DOUBLE)
    END;

-- A predicted probability, checked to lie in [0, 1] as scikit-learn checks it.
CREATE OR REPLACE MACRO __sqlml_probability(p, fname) AS
    CASE
        WHEN p IS NULL THEN NULL
        WHEN TRY_CAST(p AS DOUBLE) IS NULL OR NOT (TRY_CAST(p AS DOUBLE) BETWEEN 0 AND 1)
        THEN error(fname || ': probability must be between 0 and 1, got ' || __sqlml_show(p)
                   || '. Pass the predicted probability of the positive class, not a label or a'
                    ' raw score.')
        ELSE TRY_CAST(p AS DOUBLE)
    END;

-- A relevance (gain) of the ranking metrics: NULL means "not relevant", which is what a LEFT JOIN
-- of recommendations to interactions produces for items the user never touched.
CREATE OR REPLACE MACRO __sqlml_gain(relevance, fname) AS
    CASE
        WHEN relevance IS NULL THEN 0.0
        WHEN TRY_CAST(relevance AS DOUBLE) IS NULL OR TRY_CAST(relevance AS DOUBLE) < 0
             OR NOT isfinite(TRY_CAST(relevance AS DOUBLE))
        THEN error(fname || ': relevance must be a non-negative number or boolean, got '
                   || __sqlml_show(relevance) || '. Use 0 (or NULL) for items that are not'
                    ' relevant and a positive gain, e.g. 1 or a rating, for relevant ones.')
        ELSE TRY_CAST(relevance AS DOUBLE)
    END;

CREATE OR REPLACE MACRO __sqlml_rank(rank, fname) AS
    CASE
        WHEN rank IS NULL THEN NULL
        WHEN TRY_CAST(rank AS DOUBLE) IS NULL OR TRY_CAST(rank AS DOUBLE) < 1
             OR TRY_CAST(rank AS DOUBLE) <> floor(TRY_CAST(rank AS DOUBLE))
        THEN error(fname || ': rank must be a whole number of at least 1 (1 = top recommendation),'
                    ' got ' || __sqlml_show(rank) || '. Use NULL for relevant items that were'
                    ' not recommended.')
        ELSE TRY_CAST(rank AS DOUBLE)
    END;

-- ---------------------------------------------------------------------------------------------
-- Confusion counts: one histogram aggregate per group
-- ---------------------------------------------------------------------------------------------

-- The histogram key of a row. c codes the cell: 0 = tn, 1 = fp, 2 = fn, 3 = tp. The raw labels
-- ride along only when pos_label is given, to tell a pos_label typo from a one-class group
-- without a second aggregate. Rows with a NULL label get a NULL key, which histogram skips.
-- (DuckDB accepts a macro as a window function only if the aggregate call is written in that
-- macro's own body, so each public macro spells out histogram(...) itself.)
CREATE OR REPLACE MACRO __sqlml_confusion_key(actual, predicted, pos_label, fname) AS
    CASE WHEN actual IS NOT NULL AND predicted IS NOT NULL THEN {
        'c': 2 * __sqlml_is_pos(actual, pos_label, fname, 'actual')::INTEGER
             + __sqlml_is_pos(predicted, pos_label, fname, 'predicted')::INTEGER,
        'a': CASE WHEN pos_label IS NULL THEN NULL ELSE actual END,
        'p': CASE WHEN pos_label IS NULL THEN NULL ELSE predicted END
    } END;

-- STRUCT(tp, fp, tn, fn, n) from that histogram, raising the unknown-pos_label error.
CREATE OR REPLACE MACRO __sqlml_counts(h, pos_label, fname) AS
    list_transform([coalesce(map_entries(h), [])], lambda e_:
        list_transform([{
            'tp': coalesce(list_sum(list_transform(e_, lambda x_: CASE WHEN x_.key.c = 3 THEN x_.value ELSE 0 END)), 0)::BIGINT,
            'fp': coalesce(list_sum(list_transform(e_, lambda x_: CASE WHEN x_.key.c = 1 THEN x_.value ELSE 0 END)), 0)::BIGINT,
            'tn': coalesce(list_sum(list_transform(e_, lambda x_: CASE WHEN x_.key.c = 0 THEN x_.value ELSE 0 END)), 0)::BIGINT,
            'fn': coalesce(list_sum(list_transform(e_, lambda x_: CASE WHEN x_.key.c = 2 THEN x_.value ELSE 0 END)), 0)::BIGINT
        }], lambda c_:
            CASE
                WHEN pos_label IS NOT NULL AND c_.tp + c_.fp + c_.fn = 0
                     AND __sqlml_pos_label_typo(fname, pos_label,
                             flatten(list_transform(e_, lambda x_: [x_.key.a::VARCHAR, x_.key.p::VARCHAR])),
                             'actual or predicted')
                THEN NULL
                ELSE struct_insert(c_, n := c_.tp + c_.fp + c_.tn + c_.fn)
            END
        )[1]
    )[1];

-- A ratio whose denominator may be zero: 0, as scikit-learn's default zero_division gives.
CREATE OR REPLACE MACRO __sqlml_ratio(num, den) AS
    CASE WHEN den = 0 THEN 0.0 ELSE num / den END;

-- ---------------------------------------------------------------------------------------------
-- Confusion-based metrics
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE MACRO ml_confusion(actual, predicted, pos_label := NULL) AS
    list_transform([__sqlml_counts(histogram(__sqlml_confusion_key(actual, predicted, pos_label, 'ml_confusion')), pos_label, 'ml_confusion')], lambda c_:
        {'tp': c_.tp, 'fp': c_.fp, 'tn': c_.tn, 'fn': c_.fn})[1];

CREATE OR REPLACE MACRO ml_precision(actual, predicted, pos_label := NULL) AS
    list_transform([__sqlml_counts(histogram(__sqlml_confusion_key(actual, predicted, pos_label, 'ml_precision')), pos_label, 'ml_precision')], lambda c_:
        CASE WHEN c_.n = 0 THEN NULL ELSE __sqlml_ratio(c_.tp, c_.tp + c_.fp) END)[1];

CREATE OR REPLACE MACRO ml_recall(actual, predicted, pos_label := NULL) AS
    list_transform([__sqlml_counts(histogram(__sqlml_confusion_key(actual, predicted, pos_label, 'ml_recall')), pos_label, 'ml_recall')], lambda c_:
        CASE WHEN c_.n = 0 THEN NULL ELSE __sqlml_ratio(c_.tp, c_.tp + c_.fn) END)[1];

CREATE OR REPLACE MACRO ml_specificity(actual, predicted, pos_label := NULL) AS
    list_transform([__sqlml_counts(histogram(__sqlml_confusion_key(actual, predicted, pos_label, 'ml_specificity')), pos_label, 'ml_specificity')], lambda c_:
        CASE WHEN c_.n = 0 THEN NULL ELSE __sqlml_ratio(c_.tn, c_.tn + c_.fp) END)[1];

CREATE OR REPLACE MACRO ml_false_negative_rate(actual, predicted, pos_label := NULL) AS
    list_transform([__sqlml_counts(histogram(__sqlml_confusion_key(actual, predicted, pos_label, 'ml_false_negative_rate')), pos_label, 'ml_false_negative_rate')], lambda c_:
        CASE WHEN c_.n = 0 THEN NULL ELSE __sqlml_ratio(c_.fn, c_.tp + c_.fn) END)[1];

CREATE OR REPLACE MACRO ml_false_positive_rate(actual, predicted, pos_label := NULL) AS
    list_transform([__sqlml_counts(histogram(__sqlml_confusion_key(actual, predicted, pos_label, 'ml_false_positive_rate')), pos_label, 'ml_false_positive_rate')], lambda c_:
        CASE WHEN c_.n = 0 THEN NULL ELSE __sqlml_ratio(c_.fp, c_.tn + c_.fp) END)[1];

CREATE OR REPLACE MACRO ml_fbeta(actual, predicted, beta := 1.0, pos_label := NULL) AS
    list_transform([__sqlml_counts(histogram(__sqlml_confusion_key(actual, predicted, pos_label, 'ml_fbeta')), pos_label, 'ml_fbeta')], lambda c_:
        CASE
            WHEN beta IS NULL OR NOT __sqlml_is_number(beta) OR NOT (TRY_CAST(beta AS DOUBLE) >= 0)
                 OR NOT isfinite(TRY_CAST(beta AS DOUBLE))
            THEN error('ml_fbeta: beta must be a non-negative number, got ' || __sqlml_show(beta)
                       || '. Pass how many times recall matters more than precision, e.g.'
                        ' beta := 2.')
            WHEN c_.n = 0 THEN NULL
            ELSE list_transform([TRY_CAST(beta AS DOUBLE) ** 2], lambda b2_:
                     __sqlml_ratio((1 + b2_) * c_.tp, (1 + b2_) * c_.tp + b2_ * c_.fn + c_.fp))[1]
        END)[1];

CREATE OR REPLACE MACRO ml_f1(actual, predicted, pos_label := NULL) AS
    list_transform([__sqlml_counts(histogram(__sqlml_confusion_key(actual, predicted, pos_label, 'ml_f1')), pos_label, 'ml_f1')], lambda c_:
        CASE WHEN c_.n = 0 THEN NULL ELSE __sqlml_ratio(2 * c_.tp, 2 * c_.tp + c_.fp + c_.fn) END)[1];

-- Accuracy, balanced accuracy and MCC treat the classes symmetrically, so they need no positive
-- class: they compare the labels as they are and work for any number of classes, like
-- scikit-learn's accuracy_score, balanced_accuracy_score and matthews_corrcoef.
CREATE OR REPLACE MACRO ml_accuracy(actual, predicted) AS
    avg(CASE WHEN actual = predicted THEN 1.0 ELSE 0.0 END)
        FILTER (WHERE actual IS NOT NULL AND predicted IS NOT NULL);

-- Mean recall over the classes present in actual (classes only ever predicted are left out,
-- as scikit-learn leaves them out).
CREATE OR REPLACE MACRO ml_balanced_accuracy(actual, predicted) AS
    list_transform([map_entries(histogram(CASE WHEN actual IS NOT NULL AND predicted IS NOT NULL THEN {'a': actual, 'p': predicted} END))], lambda e_:
        list_avg(list_transform(list_distinct(list_transform(e_, lambda x_: x_.key.a)), lambda k_:
            list_sum(list_transform(e_, lambda x_: CASE WHEN x_.key.a = k_ AND x_.key.p = k_ THEN x_.value ELSE 0 END))
            / list_sum(list_transform(e_, lambda x_: CASE WHEN x_.key.a = k_ THEN x_.value ELSE 0 END))))
    )[1];

-- Multiclass MCC from the pair counts: sum_k t_k p_k and friends are sums over pairs of histogram
-- entries, so no list of classes has to be built.
CREATE OR REPLACE MACRO ml_mcc(actual, predicted) AS
    list_transform([map_entries(histogram(CASE WHEN actual IS NOT NULL AND predicted IS NOT NULL THEN {'a': actual, 'p': predicted} END))], lambda e_:
        list_transform([{
            's': list_sum(list_transform(e_, lambda x_: x_.value::DOUBLE)),
            'c': coalesce(list_sum(list_transform(e_, lambda x_: CASE WHEN x_.key.a = x_.key.p THEN x_.value::DOUBLE ELSE 0 END)), 0),
            'tp': list_sum(list_transform(e_, lambda x_: list_sum(list_transform(e_, lambda y_: CASE WHEN x_.key.a = y_.key.p THEN x_.value::DOUBLE * y_.value ELSE 0 END)))),
            'tt': list_sum(list_transform(e_, lambda x_: list_sum(list_transform(e_, lambda y_: CASE WHEN x_.key.a = y_.key.a THEN x_.value::DOUBLE * y_.value ELSE 0 END)))),
            'pp': list_sum(list_transform(e_, lambda x_: list_sum(list_transform(e_, lambda y_: CASE WHEN x_.key.p = y_.key.p THEN x_.value::DOUBLE * y_.value ELSE 0 END))))
        }], lambda m_:
            CASE
                WHEN m_.s IS NULL THEN NULL
                WHEN (m_.s * m_.s - m_.pp) * (m_.s * m_.s - m_.tt) = 0 THEN 0.0
                ELSE (m_.c * m_.s - m_.tp) / sqrt((m_.s * m_.s - m_.pp) * (m_.s * m_.s - m_.tt))
            END
        )[1]
    )[1];

-- ---------------------------------------------------------------------------------------------
-- Costs
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE MACRO __sqlml_costs(fn_cost, fp_cost, tp_cost, tn_cost, fname) AS {
    'fn': __sqlml_cost_arg(fn_cost, fname, 'fn_cost', 'the cost of one missed positive', '50'),
    'fp': __sqlml_cost_arg(fp_cost, fname, 'fp_cost', 'the cost of one false alarm', '3'),
    'tp': __sqlml_cost_arg(tp_cost, fname, 'tp_cost', 'the cost of acting on one true positive', '3'),
    'tn': __sqlml_cost_arg(tn_cost, fname, 'tn_cost', 'the cost of one true negative', '0')
};

CREATE OR REPLACE MACRO ml_cost(actual, predicted, fn_cost := 1, fp_cost := 1, tp_cost := 0,
                                tn_cost := 0, pos_label := NULL) AS
    list_transform([__sqlml_counts(histogram(__sqlml_confusion_key(actual, predicted, pos_label, 'ml_cost')), pos_label, 'ml_cost')], lambda c_:
        list_transform([__sqlml_costs(fn_cost, fp_cost, tp_cost, tn_cost, 'ml_cost')], lambda k_:
            CASE WHEN c_.n = 0 THEN NULL
                 ELSE c_.fn * k_.fn + c_.fp * k_.fp + c_.tp * k_.tp + c_.tn * k_.tn END
        )[1])[1];

-- "Without a model" nobody is flagged: every actual positive becomes a false negative.
CREATE OR REPLACE MACRO ml_business_impact(actual, predicted, fn_cost := 1, fp_cost := 1,
                                           tp_cost := 0, tn_cost := 0, pos_label := NULL) AS
    list_transform([__sqlml_counts(histogram(__sqlml_confusion_key(actual, predicted, pos_label, 'ml_business_impact')), pos_label, 'ml_business_impact')], lambda c_:
        list_transform([__sqlml_costs(fn_cost, fp_cost, tp_cost, tn_cost, 'ml_business_impact')], lambda k_:
            list_transform([{
                'with_': c_.fn * k_.fn + c_.fp * k_.fp + c_.tp * k_.tp + c_.tn * k_.tn,
                'without_': (c_.tp + c_.fn) * k_.fn + (c_.tn + c_.fp) * k_.tn
            }], lambda w_:
                CASE WHEN c_.n = 0 THEN NULL
                     ELSE {'cost_with_model': w_.with_, 'cost_without_model': w_.without_,
                           'savings': w_.without_ - w_.with_} END
            )[1])[1])[1];

-- ---------------------------------------------------------------------------------------------
-- Score-based metrics
-- ---------------------------------------------------------------------------------------------

-- A (score, label) pair, NULL when either is NULL. The raw label (v) rides along only with
-- pos_label, for the typo check. The CASE keeps checks away from rows that are ignored anyway.
-- Callers sort with ORDER BY on the two keys, not on the struct: sorting by a STRUCT key is
-- twice as slow in DuckDB.
CREATE OR REPLACE MACRO __sqlml_scored(actual, score, pos_label, fname) AS
    CASE WHEN actual IS NOT NULL AND score IS NOT NULL THEN
        {'s': __sqlml_score(score, fname),
         'y': __sqlml_is_pos(actual, pos_label, fname, 'actual'),
         'v': CASE WHEN pos_label IS NULL THEN NULL ELSE actual END}
    END;

-- The sort keys of a pair: score, then label (false before true). NULL for an ignored row, so
-- that its score or label is never checked (ORDER BY keys are computed before FILTER applies).
CREATE OR REPLACE MACRO __sqlml_score_key(actual, score, fname) AS
    CASE WHEN actual IS NOT NULL AND score IS NOT NULL THEN __sqlml_score(score, fname) END;

CREATE OR REPLACE MACRO __sqlml_label_key(actual, score, pos_label, fname) AS
    CASE WHEN actual IS NOT NULL AND score IS NOT NULL
         THEN __sqlml_is_pos(actual, pos_label, fname, 'actual') END;

-- Tie-exact ROC AUC from the pairs sorted by (score, label) ascending, so that within a run of
-- equal scores the negatives come first. With positives at positions i_1 < ... < i_P,
-- sum(i_j - j) counts, for every positive, the negatives scored below OR EQUAL to it. A tie
-- should count half, so half the number E of equal-score (negative, positive) pairs is taken
-- off. The result is the Mann-Whitney statistic with average ranks, which is what scikit-learn's
-- trapezoidal ROC area equals.
CREATE OR REPLACE MACRO __sqlml_auc_sorted(sorted, pos_label, fname) AS
    list_transform([coalesce(sorted, [])], lambda l_:
        list_transform([list_where(range(1, len(l_) + 1), list_transform(l_, lambda r_: r_.y))], lambda pp_:
            CASE
                WHEN len(l_) = 0 THEN NULL
                WHEN pos_label IS NOT NULL AND len(pp_) = 0
                     AND __sqlml_pos_label_typo(fname, pos_label, list_transform(l_, lambda r_: r_.v), 'actual')
                THEN NULL
                -- One class only: AUC is undefined (scikit-learn raises, SQL gives NULL).
                WHEN len(pp_) = 0 OR len(pp_) = len(l_) THEN NULL
                ELSE (list_sum(pp_) - len(pp_) * (len(pp_) + 1) / 2 - __sqlml_mixed_ties(l_) / 2)
                     / (len(pp_)::DOUBLE * (len(l_) - len(pp_)))
            END
        )[1]
    )[1];

-- E = sum over tied scores of (#negatives x #positives) for a list sorted by (score, label).
-- Most score columns have no tie between the classes, so a cheap scan decides whether the run
-- lengths are needed at all. A group with both classes is a run of negatives followed by a run
-- of positives: E adds up the products of the lengths of such adjacent runs.
CREATE OR REPLACE MACRO __sqlml_mixed_ties(sorted) AS
    CASE
        WHEN NOT coalesce(list_bool_or(list_transform(sorted, lambda x_, i_:
                 x_.s = sorted[i_ + 1].s AND x_.y <> sorted[i_ + 1].y)), false)
        THEN 0
        ELSE list_transform([list_where(range(1, len(sorted) + 1), list_transform(sorted, lambda x_, i_:
                 x_.s IS DISTINCT FROM sorted[i_ + 1].s OR x_.y IS DISTINCT FROM sorted[i_ + 1].y))], lambda ends_:
                 coalesce(list_sum(list_transform(ends_, lambda e_, i_:
                     CASE WHEN i_ < len(ends_) AND sorted[e_].s = sorted[ends_[i_ + 1]].s
                          THEN (e_ - coalesce(ends_[i_ - 1], 0)) * (ends_[i_ + 1] - e_)
                          ELSE 0 END)), 0)
             )[1]
    END;

CREATE OR REPLACE MACRO ml_roc_auc(actual, score, pos_label := NULL) AS
    __sqlml_auc_sorted(
        list(__sqlml_scored(actual, score, pos_label, 'ml_roc_auc')
             ORDER BY __sqlml_score_key(actual, score, 'ml_roc_auc'),
                      __sqlml_label_key(actual, score, pos_label, 'ml_roc_auc'))
            FILTER (WHERE actual IS NOT NULL AND score IS NOT NULL),
        pos_label, 'ml_roc_auc');

-- The shared core of average precision and every threshold function. Input: the pairs sorted
-- by score descending and, within a tie, negatives first; "flagged" means score >= threshold.
-- For each distinct score (a group of ties) we need TP and FP counted down to the group's last
-- row b. No running sums are needed: the last row of a group is a positive or a negative, and
-- its index among the positives (or among the negatives) is exactly TP (or FP) at b, the other
-- count being b minus it. Because negatives come first, a group holding positives always ends
-- with one, which average precision relies on.
-- Output: STRUCT(p, n, pos_groups, rows): class totals; (tp, b) per group holding positives, in
-- order; and one (threshold, tp, fp) per distinct score, in no particular order, plus the
-- threshold +infinity that flags nobody.
CREATE OR REPLACE MACRO __sqlml_curve(sorted, pos_label, fname) AS
    list_transform([coalesce(sorted, [])], lambda l_:
        list_transform([{
            'pp': list_where(range(1, len(l_) + 1), list_transform(l_, lambda r_: r_.y)),
            'nn': list_where(range(1, len(l_) + 1), list_transform(l_, lambda r_: NOT r_.y)),
            'ends': list_transform(l_, lambda x_, i_: x_.s IS DISTINCT FROM l_[i_ + 1].s)
        }], lambda g_:
            CASE
                WHEN pos_label IS NOT NULL AND len(g_.pp) = 0
                     AND __sqlml_pos_label_typo(fname, pos_label, list_transform(l_, lambda r_: r_.v), 'actual')
                THEN NULL
                ELSE list_transform([list_where(range(1, len(g_.pp) + 1), list_select(g_.ends, g_.pp))], lambda j_:
                    list_transform([list_where(range(1, len(g_.nn) + 1), list_select(g_.ends, g_.nn))], lambda k_: {
                        'p': len(g_.pp),
                        'n': len(g_.nn),
                        'pos_groups': list_transform(list_zip(j_, list_select(g_.pp, j_)), lambda z_: {'tp': z_[1], 'b': z_[2]}),
                        'rows': [{'threshold': 'infinity'::DOUBLE, 'tp': 0::BIGINT, 'fp': 0::BIGINT}]
                            || list_transform(list_zip(j_, list_select(g_.pp, j_)), lambda z_:
                                   {'threshold': l_[z_[2]].s, 'tp': z_[1], 'fp': z_[2] - z_[1]})
                            || list_transform(list_zip(k_, list_select(g_.nn, k_)), lambda z_:
                                   {'threshold': l_[z_[2]].s, 'tp': z_[2] - z_[1], 'fp': z_[1]})
                    })[1])[1]
            END
        )[1]
    )[1];

-- For the table macros, which never run as window functions.
CREATE OR REPLACE MACRO __sqlml_curve_of_table(actual, score, pos_label, fname) AS
    __sqlml_curve(list(__sqlml_scored(actual, score, pos_label, fname)
                       ORDER BY __sqlml_score_key(actual, score, fname) DESC,
                                __sqlml_label_key(actual, score, pos_label, fname))
                      FILTER (WHERE actual IS NOT NULL AND score IS NOT NULL),
                  pos_label, fname);

-- Average precision as scikit-learn defines it: sum over thresholds of
-- (recall gained) x (precision there). Only groups holding positives gain recall, and for those
-- the curve lists TP and the group end b (so precision = TP / b).
CREATE OR REPLACE MACRO ml_pr_auc(actual, score, pos_label := NULL) AS
    list_transform([__sqlml_curve(list(__sqlml_scored(actual, score, pos_label, 'ml_pr_auc')
                                       ORDER BY __sqlml_score_key(actual, score, 'ml_pr_auc') DESC,
                                                __sqlml_label_key(actual, score, pos_label, 'ml_pr_auc'))
                                      FILTER (WHERE actual IS NOT NULL AND score IS NOT NULL),
                                  pos_label, 'ml_pr_auc')], lambda c_:
        CASE
            WHEN c_.p + c_.n = 0 THEN NULL
            WHEN c_.p = 0 THEN 0.0
            ELSE list_sum(list_transform(c_.pos_groups, lambda z_, i_:
                     (z_.tp - coalesce(c_.pos_groups[i_ - 1].tp, 0)) * z_.tp / z_.b::DOUBLE)) / c_.p
        END)[1];

-- scikit-learn clips probabilities to [eps, 1 - eps] with eps the float64 machine epsilon.
-- A list (not avg) is aggregated so that the pos_label check and the mean come from one
-- aggregate.
CREATE OR REPLACE MACRO ml_log_loss(actual, probability, pos_label := NULL) AS
    list_transform([coalesce(list(CASE WHEN actual IS NOT NULL AND probability IS NOT NULL THEN {
        'y': __sqlml_is_pos(actual, pos_label, 'ml_log_loss', 'actual'),
        'q': least(greatest(__sqlml_probability(probability, 'ml_log_loss'), 2.220446049250313e-16),
                   1 - 2.220446049250313e-16),
        'v': CASE WHEN pos_label IS NULL THEN NULL ELSE actual END
    } END) FILTER (WHERE actual IS NOT NULL AND probability IS NOT NULL), [])], lambda l_:
        CASE
            WHEN len(l_) = 0 THEN NULL
            WHEN pos_label IS NOT NULL AND NOT list_bool_or(list_transform(l_, lambda r_: r_.y))
                 AND __sqlml_pos_label_typo('ml_log_loss', pos_label, list_transform(l_, lambda r_: r_.v), 'actual')
            THEN NULL
            ELSE -list_avg(list_transform(l_, lambda r_: CASE WHEN r_.y THEN ln(r_.q) ELSE ln(1 - r_.q) END))
        END)[1];

CREATE OR REPLACE MACRO ml_brier(actual, probability, pos_label := NULL) AS
    list_transform([coalesce(list(CASE WHEN actual IS NOT NULL AND probability IS NOT NULL THEN {
        'y': __sqlml_is_pos(actual, pos_label, 'ml_brier', 'actual'),
        'q': __sqlml_probability(probability, 'ml_brier'),
        'v': CASE WHEN pos_label IS NULL THEN NULL ELSE actual END
    } END) FILTER (WHERE actual IS NOT NULL AND probability IS NOT NULL), [])], lambda l_:
        CASE
            WHEN len(l_) = 0 THEN NULL
            WHEN pos_label IS NOT NULL AND NOT list_bool_or(list_transform(l_, lambda r_: r_.y))
                 AND __sqlml_pos_label_typo('ml_brier', pos_label, list_transform(l_, lambda r_: r_.v), 'actual')
            THEN NULL
            ELSE list_avg(list_transform(l_, lambda r_: (r_.y::DOUBLE - r_.q) ** 2))
        END)[1];

-- ---------------------------------------------------------------------------------------------
-- Thresholds
-- ---------------------------------------------------------------------------------------------

-- Every metric of one (threshold, tp, fp) row of a curve whose class totals are p and n, under
-- the checked costs k.
CREATE OR REPLACE MACRO __sqlml_threshold_metrics(r, p, n, k) AS {
    'threshold': r.threshold,
    'tp': r.tp, 'fp': r.fp, 'tn': n - r.fp, 'fn': p - r.tp,
    'precision': __sqlml_ratio(r.tp, r.tp + r.fp),
    'recall': __sqlml_ratio(r.tp, p),
    'f1': __sqlml_ratio(2 * r.tp, r.tp + r.fp + p),
    'fnr': __sqlml_ratio(p - r.tp, p),
    'fpr': __sqlml_ratio(r.fp, n),
    'accuracy': (r.tp + n - r.fp) / (p + n)::DOUBLE,
    'cost': (p - r.tp) * k.fn + r.fp * k.fp + r.tp * k.tp + (n - r.fp) * k.tn
};

-- Every metric at every threshold of a curve. Costs are checked here so that each caller
-- reports them under its own name.
CREATE OR REPLACE MACRO __sqlml_threshold_rows(curve, fn_cost, fp_cost, tp_cost, tn_cost, fname) AS
    list_transform([curve], lambda c_:
        list_transform([__sqlml_costs(fn_cost, fp_cost, tp_cost, tn_cost, fname)], lambda k_:
            CASE WHEN c_.p + c_.n = 0 THEN NULL
                 ELSE list_transform(c_.rows, lambda r_: __sqlml_threshold_metrics(r_, c_.p, c_.n, k_)) END
        )[1])[1];

-- The chosen (threshold, tp, fp) row of a curve, or NULL when no row meets the constraints.
-- Only the objective is computed per row (a curve can have a million rows), the full metrics
-- only for the winner. Ties go to the higher recall, then to the higher threshold: among equally
-- good thresholds, miss fewer positives, and among those, flag fewer rows.
-- A fixed threshold t instead picks the counts of the lowest distinct score >= t.
CREATE OR REPLACE MACRO __sqlml_choose(c, k, objective, min_recall, max_fnr, threshold, fname) AS
    list_transform([{
        'o': lower(objective),
        'min_recall': __sqlml_unit_arg(min_recall, fname, 'min_recall', 'the lowest acceptable recall', '0.85'),
        'max_fnr': __sqlml_unit_arg(max_fnr, fname, 'max_fnr', 'the highest acceptable false negative rate', '0.15')
    }], lambda a_:
        CASE
            WHEN a_.o IS NULL OR a_.o NOT IN ('cost', 'f1', 'youden')
            THEN error(fname || ': objective must be ''cost'', ''f1'' or ''youden'', got '
                       || __sqlml_show(objective) || '. ''cost'' minimises fn_cost * FN + fp_cost'
                        ' * FP (+ tp_cost * TP + tn_cost * TN), ''f1'' maximises F1, ''youden'''
                        ' maximises recall - false positive rate, e.g. objective := ''cost''.')
            WHEN threshold IS NOT NULL
            THEN list_min(list_transform(list_filter(c.rows, lambda r_: r_.threshold >= threshold),
                                         lambda r_: {'t': r_.threshold, 'row': r_})).row
            ELSE list_max(list_transform(
                list_filter(c.rows, lambda r_:
                    (a_.min_recall IS NULL OR __sqlml_ratio(r_.tp, c.p) >= a_.min_recall)
                    AND (a_.max_fnr IS NULL OR __sqlml_ratio(c.p - r_.tp, c.p) <= a_.max_fnr)),
                lambda r_: {
                    'o': CASE a_.o
                             WHEN 'cost' THEN -((c.p - r_.tp) * k.fn + r_.fp * k.fp + r_.tp * k.tp + (c.n - r_.fp) * k.tn)
                             WHEN 'f1' THEN __sqlml_ratio(2 * r_.tp, r_.tp + r_.fp + c.p)
                             ELSE __sqlml_ratio(r_.tp, c.p) - __sqlml_ratio(r_.fp, c.n)
                         END,
                    'tp': r_.tp,
                    'threshold': r_.threshold,
                    'row': r_
                })).row
        END)[1];

-- Raised by ml_best_threshold when no threshold meets min_recall / max_fnr: says how close the
-- data gets, which is what the user needs to pick a feasible bound.
CREATE OR REPLACE MACRO __sqlml_infeasible(c, min_recall, max_fnr, fname) AS
    list_transform([list_max(list_transform(c.rows, lambda r_: {'tp': r_.tp, 'threshold': r_.threshold}))], lambda b_:
        list_transform([__sqlml_ratio(b_.tp, c.p)], lambda best_:
            error(fname || ': no threshold meets '
                  || CASE WHEN min_recall IS NOT NULL THEN 'min_recall := ' || min_recall::VARCHAR ELSE '' END
                  || CASE WHEN min_recall IS NOT NULL AND max_fnr IS NOT NULL THEN ' and ' ELSE '' END
                  || CASE WHEN max_fnr IS NOT NULL THEN 'max_fnr := ' || max_fnr::VARCHAR ELSE '' END
                  || '. The best reachable recall is ' || round(best_, 4)::VARCHAR
                  || CASE WHEN c.p > 0
                          THEN ' (false negative rate ' || round(1 - best_, 4)::VARCHAR || ')'
                          ELSE '' END
                  || ' at threshold ' || b_.threshold::VARCHAR
                  || CASE WHEN c.p = 0
                          THEN ', because this data has no positive rows: check pos_label and the'
                                ' filter that selects the data'
                          ELSE '' END
                  || '. Relax the constraint, e.g. min_recall := ' || round(best_, 4)::VARCHAR || '.')
        )[1])[1];

CREATE OR REPLACE MACRO ml_best_threshold(actual, score, objective := 'cost', fn_cost := 1,
                                          fp_cost := 1, tp_cost := 0, tn_cost := 0,
                                          min_recall := NULL, max_fnr := NULL,
                                          pos_label := NULL) AS
    list_transform([__sqlml_curve(list(__sqlml_scored(actual, score, pos_label, 'ml_best_threshold')
                                       ORDER BY __sqlml_score_key(actual, score, 'ml_best_threshold') DESC,
                                                __sqlml_label_key(actual, score, pos_label, 'ml_best_threshold'))
                                      FILTER (WHERE actual IS NOT NULL AND score IS NOT NULL),
                                  pos_label, 'ml_best_threshold')], lambda c_:
        list_transform([__sqlml_costs(fn_cost, fp_cost, tp_cost, tn_cost, 'ml_best_threshold')], lambda k_:
            list_transform([__sqlml_choose(c_, k_, objective, min_recall, max_fnr, NULL, 'ml_best_threshold')], lambda b_:
                CASE
                    WHEN c_.p + c_.n = 0 THEN NULL
                    WHEN b_ IS NULL THEN __sqlml_infeasible(c_, min_recall, max_fnr, 'ml_best_threshold')
                    ELSE __sqlml_threshold_metrics(b_, c_.p, c_.n, k_)
                END)[1])[1])[1];

-- ---------------------------------------------------------------------------------------------
-- Regression and quantile forecasts
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE MACRO ml_mse(actual, predicted) AS
    avg((actual::DOUBLE - predicted::DOUBLE) ** 2);

CREATE OR REPLACE MACRO ml_rmse(actual, predicted) AS
    sqrt(avg((actual::DOUBLE - predicted::DOUBLE) ** 2));

CREATE OR REPLACE MACRO ml_mae(actual, predicted) AS
    avg(abs(actual::DOUBLE - predicted::DOUBLE));

-- A fraction, not a percentage; |actual| is floored at the float64 epsilon as in scikit-learn.
CREATE OR REPLACE MACRO ml_mape(actual, predicted) AS
    avg(abs(actual::DOUBLE - predicted::DOUBLE) / greatest(abs(actual::DOUBLE), 2.220446049250313e-16));

-- scikit-learn's conventions: NULL (scikit-learn: NaN) below two rows, and for a constant actual
-- 1 on a perfect fit, else 0.
CREATE OR REPLACE MACRO ml_r2(actual, predicted) AS
    list_transform([coalesce(list({'a': actual::DOUBLE, 'p': predicted::DOUBLE})
                                 FILTER (WHERE actual IS NOT NULL AND predicted IS NOT NULL), [])], lambda l_:
        list_transform([{
            'res': list_sum(list_transform(l_, lambda r_: (r_.a - r_.p) ** 2)),
            'tot': list_transform([list_avg(list_transform(l_, lambda r_: r_.a))], lambda m_:
                       list_sum(list_transform(l_, lambda r_: (r_.a - m_) ** 2)))[1]
        }], lambda s_:
            CASE
                WHEN len(l_) < 2 THEN NULL
                WHEN s_.tot = 0 THEN CASE WHEN s_.res = 0 THEN 1.0 ELSE 0.0 END
                ELSE 1 - s_.res / s_.tot
            END)[1])[1];

-- One row's pinball loss of a forecast of the q-quantile (fname: the metric, for messages).
CREATE OR REPLACE MACRO __sqlml_pinball(actual, predicted, q, fname) AS
    CASE
        WHEN q IS NULL OR __sqlml_unit_arg(q, fname, 'q', 'the quantile the forecast targets', '0.9') IS NULL
        THEN error(fname || ': q must be a number between 0 and 1, got NULL. Pass the'
                   ' quantile the forecast targets, e.g. q := 0.9.')
        WHEN actual::DOUBLE >= predicted::DOUBLE
        THEN __sqlml_unit_arg(q, fname, 'q', 'the quantile the forecast targets', '0.9')
             * (actual::DOUBLE - predicted::DOUBLE)
        ELSE (1 - __sqlml_unit_arg(q, fname, 'q', 'the quantile the forecast targets', '0.9'))
             * (predicted::DOUBLE - actual::DOUBLE)
    END;

CREATE OR REPLACE MACRO ml_pinball_loss(actual, predicted, q := 0.5) AS
    avg(__sqlml_pinball(actual, predicted, q, 'ml_pinball_loss'))
        FILTER (WHERE actual IS NOT NULL AND predicted IS NOT NULL);

CREATE OR REPLACE MACRO ml_interval_coverage(actual, lo, hi) AS
    avg(CASE
            WHEN actual IS NULL OR lo IS NULL OR hi IS NULL THEN NULL
            WHEN lo > hi
            THEN error('ml_interval_coverage: lo must not exceed hi, got lo = ' || __sqlml_show(lo)
                       || ' and hi = ' || __sqlml_show(hi) || '. Pass the lower bound first, e.g.'
                        ' ml_interval_coverage(actual, q10, q90).')
            WHEN actual BETWEEN lo AND hi THEN 1.0
            ELSE 0.0
        END) FILTER (WHERE actual IS NOT NULL AND lo IS NOT NULL AND hi IS NOT NULL);

-- Scaled forecast errors (docs/forecasting.md): scale is the series' in-sample seasonal naive
-- mean absolute error, scale_squared its mean squared error (ml_backtest's columns of those
-- names). Per series, GROUP BY the series; a model's stored figure is the mean over its series.
CREATE OR REPLACE MACRO ml_mase(actual, predicted, scale) AS
    avg(abs(actual::DOUBLE - predicted::DOUBLE) / scale::DOUBLE);

CREATE OR REPLACE MACRO ml_rmsse(actual, predicted, scale_squared) AS
    sqrt(avg((actual::DOUBLE - predicted::DOUBLE) ** 2 / scale_squared::DOUBLE));

-- In percent, from 0 to 200 (the M4 competition's definition); 0 where actual and forecast are 0.
CREATE OR REPLACE MACRO ml_smape(actual, predicted) AS
    avg(CASE WHEN abs(actual::DOUBLE) + abs(predicted::DOUBLE) = 0 THEN 0.0
             ELSE 200 * abs(actual::DOUBLE - predicted::DOUBLE)
                  / (abs(actual::DOUBLE) + abs(predicted::DOUBLE)) END);

-- The pinball loss of the q-quantile forecast divided by scale; over the rows of several
-- quantiles (ml_backtest: q := quantile) the mean over the quantiles, as the stored figure.
CREATE OR REPLACE MACRO ml_scaled_pinball_loss(actual, predicted, q, scale) AS
    avg(__sqlml_pinball(actual, predicted, q, 'ml_scaled_pinball_loss') / scale::DOUBLE)
        FILTER (WHERE actual IS NOT NULL AND predicted IS NOT NULL);

-- ---------------------------------------------------------------------------------------------
-- Ranking metrics
-- ---------------------------------------------------------------------------------------------
-- Row form: aggregate over one user's rows, one row per item, rank = 1 for the top
-- recommendation (NULL for a relevant item that was not recommended), relevance > 0 = relevant
-- (NULL = not relevant). List form: recommended items in rank order and the relevant items.
-- The list form is a typed overload (VARCHAR[] or BIGINT[] ids): DuckDB picks it by type.

-- The list form reduced to what every list metric needs: the gain of each of the top k
-- recommended items and the gains of all relevant items. gains (optional) grades the relevant
-- items, one gain per item of relevant.
CREATE OR REPLACE MACRO __sqlml_rank_lists(recommended, relevant, k, gains, fname) AS
    list_transform([{
        'k': __sqlml_k_arg(k, fname),
        'ideal': CASE
            WHEN gains IS NOT NULL AND len(gains) <> len(relevant)
            THEN error(fname || ': gains must hold one gain per item of relevant, got '
                       || len(gains)::VARCHAR || ' gains for ' || len(relevant)::VARCHAR
                       || ' relevant items. Pass lists of equal length, e.g. relevant := [10, 42],'
                        ' gains := [3, 1].')
            WHEN gains IS NULL THEN list_transform(list_distinct(relevant), lambda x_: 1.0::DOUBLE)
            ELSE list_transform(gains, lambda g_: __sqlml_gain(g_, fname))
        END
    }], lambda s_:
        CASE WHEN recommended IS NULL OR relevant IS NULL THEN NULL ELSE {
            'k': s_.k,
            'ideal': s_.ideal,
            'top': list_transform(recommended[1:s_.k], lambda x_:
                       CASE WHEN x_ IS NULL OR NOT list_contains(relevant, x_) THEN 0.0
                            WHEN gains IS NULL THEN 1.0
                            ELSE s_.ideal[list_position(relevant, x_)] END)
        } END)[1];

-- Shared finishers: t is STRUCT(k, ideal, top) as above.
CREATE OR REPLACE MACRO __sqlml_precision_at_k(t) AS
    list_transform([t], lambda t_: CASE WHEN t_ IS NULL THEN NULL ELSE
        len(list_filter(t_.top, lambda g_: g_ > 0)) / t_.k::DOUBLE END)[1];

CREATE OR REPLACE MACRO __sqlml_recall_at_k(t) AS
    list_transform([t], lambda t_:
        CASE WHEN t_ IS NULL OR len(list_filter(t_.ideal, lambda g_: g_ > 0)) = 0 THEN NULL
             ELSE len(list_filter(t_.top, lambda g_: g_ > 0)) / len(list_filter(t_.ideal, lambda g_: g_ > 0))::DOUBLE END)[1];

CREATE OR REPLACE MACRO __sqlml_hit_rate(t) AS
    list_transform([t], lambda t_:
        CASE WHEN t_ IS NULL OR len(list_filter(t_.ideal, lambda g_: g_ > 0)) = 0 THEN NULL
             WHEN list_bool_or(list_transform(t_.top, lambda g_: g_ > 0)) THEN 1.0::DOUBLE ELSE 0.0::DOUBLE END)[1];

-- Linear gains and log2(rank + 1) discounts, as scikit-learn's ndcg_score; 0 when the user has
-- nothing relevant, as scikit-learn gives.
CREATE OR REPLACE MACRO __sqlml_ndcg_at_k(t) AS
    list_transform([t], lambda t_:
        list_transform([coalesce(list_sum(list_transform(list_reverse_sort(t_.ideal)[1:t_.k], lambda g_, i_: g_ / log2(i_ + 1))), 0)], lambda idcg_:
            CASE WHEN t_ IS NULL THEN NULL WHEN idcg_ = 0 THEN 0.0 ELSE
                coalesce(list_sum(list_transform(t_.top, lambda g_, i_: g_ / log2(i_ + 1))), 0) / idcg_ END)[1])[1];

-- AP@k = sum over relevant items at rank i <= k of precision@i, divided by min(k, number of
-- relevant items).
CREATE OR REPLACE MACRO __sqlml_map_at_k(t) AS
    list_transform([t], lambda t_:
        list_transform([list_where(range(1, len(t_.top) + 1), list_transform(t_.top, lambda g_: g_ > 0))], lambda r_:
            CASE WHEN t_ IS NULL OR len(list_filter(t_.ideal, lambda g_: g_ > 0)) = 0 THEN NULL ELSE
                coalesce(list_sum(list_transform(r_, lambda x_, j_: j_ / x_::DOUBLE)), 0)
                / least(t_.k, len(list_filter(t_.ideal, lambda g_: g_ > 0))) END)[1])[1];

-- Row form reduced to the same STRUCT(k, ideal, top): one list aggregate, so that it works under
-- GROUP BY user and as a window function.
CREATE OR REPLACE MACRO __sqlml_rank_item(rank, relevance, fname) AS
    {'r': __sqlml_rank(rank, fname), 'g': __sqlml_gain(relevance, fname)};

CREATE OR REPLACE MACRO __sqlml_rank_rows(items, k, fname) AS
    list_transform([coalesce(items, [])], lambda l_:
        list_transform([__sqlml_k_arg(k, fname)], lambda k_:
            CASE
                WHEN len(l_) = 0 THEN NULL
                -- A repeated rank nearly always means the GROUP BY user is missing.
                WHEN len(list_distinct(list_transform(l_, lambda x_: x_.r)))
                     < len(list_filter(l_, lambda x_: x_.r IS NOT NULL))
                THEN error(fname || ': each rank may occur once per group, got '
                           || len(list_filter(l_, lambda x_: x_.r IS NOT NULL))::VARCHAR
                           || ' ranked rows but ' || len(list_distinct(list_transform(l_, lambda x_: x_.r)))::VARCHAR
                           || ' distinct ranks. Score each user separately, e.g. SELECT user_id, '
                           || fname || '(rank, relevance) FROM recs GROUP BY user_id.')
                ELSE {
                'k': k_,
                'ideal': list_transform(l_, lambda x_: x_.g),
                -- top holds the gains at ranks 1..k; a missing rank is a gap (gain 0).
                'top': list_transform(range(1, least(k_, coalesce(list_max(list_transform(l_, lambda x_: x_.r)), 0)::BIGINT) + 1), lambda i_:
                           coalesce(list_sum(list_transform(list_filter(l_, lambda x_: x_.r = i_), lambda x_: x_.g)), 0.0))
            } END)[1])[1];

CREATE OR REPLACE MACRO ml_precision_at_k(recommended VARCHAR[], relevant VARCHAR[], k := 10) AS
        __sqlml_precision_at_k(__sqlml_rank_lists(recommended, relevant, k, NULL, 'ml_precision_at_k')),
    (recommended BIGINT[], relevant BIGINT[], k := 10) AS
        __sqlml_precision_at_k(__sqlml_rank_lists(recommended, relevant, k, NULL, 'ml_precision_at_k')),
    (rank, relevance, k := 10) AS
        __sqlml_precision_at_k(__sqlml_rank_rows(list(__sqlml_rank_item(rank, relevance, 'ml_precision_at_k')), k, 'ml_precision_at_k'));

CREATE OR REPLACE MACRO ml_recall_at_k(recommended VARCHAR[], relevant VARCHAR[], k := 10) AS
        __sqlml_recall_at_k(__sqlml_rank_lists(recommended, relevant, k, NULL, 'ml_recall_at_k')),
    (recommended BIGINT[], relevant BIGINT[], k := 10) AS
        __sqlml_recall_at_k(__sqlml_rank_lists(recommended, relevant, k, NULL, 'ml_recall_at_k')),
    (rank, relevance, k := 10) AS
        __sqlml_recall_at_k(__sqlml_rank_rows(list(__sqlml_rank_item(rank, relevance, 'ml_recall_at_k')), k, 'ml_recall_at_k'));

CREATE OR REPLACE MACRO ml_ndcg_at_k(recommended VARCHAR[], relevant VARCHAR[], k := 10, gains := NULL) AS
        __sqlml_ndcg_at_k(__sqlml_rank_lists(recommended, relevant, k, gains, 'ml_ndcg_at_k')),
    (recommended BIGINT[], relevant BIGINT[], k := 10, gains := NULL) AS
        __sqlml_ndcg_at_k(__sqlml_rank_lists(recommended, relevant, k, gains, 'ml_ndcg_at_k')),
    (rank, relevance, k := 10) AS
        __sqlml_ndcg_at_k(__sqlml_rank_rows(list(__sqlml_rank_item(rank, relevance, 'ml_ndcg_at_k')), k, 'ml_ndcg_at_k'));

CREATE OR REPLACE MACRO ml_map_at_k(recommended VARCHAR[], relevant VARCHAR[], k := 10) AS
        __sqlml_map_at_k(__sqlml_rank_lists(recommended, relevant, k, NULL, 'ml_map_at_k')),
    (recommended BIGINT[], relevant BIGINT[], k := 10) AS
        __sqlml_map_at_k(__sqlml_rank_lists(recommended, relevant, k, NULL, 'ml_map_at_k')),
    (rank, relevance, k := 10) AS
        __sqlml_map_at_k(__sqlml_rank_rows(list(__sqlml_rank_item(rank, relevance, 'ml_map_at_k')), k, 'ml_map_at_k'));

CREATE OR REPLACE MACRO ml_hit_rate(recommended VARCHAR[], relevant VARCHAR[], k := 10) AS
        __sqlml_hit_rate(__sqlml_rank_lists(recommended, relevant, k, NULL, 'ml_hit_rate')),
    (recommended BIGINT[], relevant BIGINT[], k := 10) AS
        __sqlml_hit_rate(__sqlml_rank_lists(recommended, relevant, k, NULL, 'ml_hit_rate')),
    (rank, relevance, k := 10) AS
        __sqlml_hit_rate(__sqlml_rank_rows(list(__sqlml_rank_item(rank, relevance, 'ml_hit_rate')), k, 'ml_hit_rate'));

-- ---------------------------------------------------------------------------------------------
-- Table macros: multiclass report, confusion matrix, threshold table, model comparison
-- ---------------------------------------------------------------------------------------------
-- They read any table or view by name (query_table), including a pandas frame registered with
-- con.register(name, df). Columns are named by string, e.g. actual := 'churned'.

-- Returns tbl, unless a required column name is missing. The check wraps the argument of
-- query_table, which DuckDB evaluates while binding: a check in WHERE could be optimised away
-- (struct_extract with a NULL key yields a constant NULL, the plan becomes empty) and the call
-- would quietly return nothing.
CREATE OR REPLACE MACRO __sqlml_need(v, fname, name, example, tbl) AS
    CASE WHEN v IS NULL
         THEN error(fname || ': ' || name || ' is required: pass the name of the column as a'
                     ' string, e.g. ' || name || ' := ' || example || '.')
         ELSE tbl END;

CREATE OR REPLACE MACRO ml_confusion_matrix_table(tbl, actual := NULL, predicted := NULL) AS TABLE
    WITH pairs AS (
        SELECT struct_extract(q_, actual) AS a_, struct_extract(q_, predicted) AS p_
        FROM query_table(
            __sqlml_need(actual, 'ml_confusion_matrix_table', 'actual', '''tier''',
            __sqlml_need(predicted, 'ml_confusion_matrix_table', 'predicted', '''predicted_tier''',
                         tbl))) q_
    ),
    clean AS (SELECT a_, p_ FROM pairs WHERE a_ IS NOT NULL AND p_ IS NOT NULL),
    labels AS (SELECT a_ AS label_ FROM clean UNION SELECT p_ FROM clean),
    cells AS (SELECT a_, p_, count(*) AS n_ FROM clean GROUP BY a_, p_)
    SELECT la.label_ AS actual, lp.label_ AS predicted, coalesce(c.n_, 0)::BIGINT AS n
    FROM labels la CROSS JOIN labels lp
    LEFT JOIN cells c ON c.a_ = la.label_ AND c.p_ = lp.label_
    ORDER BY la.label_, lp.label_;

-- One row per class, then accuracy and the macro, micro and weighted averages, like
-- scikit-learn's classification_report. "accuracy" on a class row is its one-vs-rest accuracy.
CREATE OR REPLACE MACRO ml_classification_report(tbl, actual := NULL, predicted := NULL) AS TABLE
    WITH pairs AS (
        SELECT struct_extract(q_, actual) AS a_, struct_extract(q_, predicted) AS p_
        FROM query_table(
            __sqlml_need(actual, 'ml_classification_report', 'actual', '''tier''',
            __sqlml_need(predicted, 'ml_classification_report', 'predicted', '''predicted_tier''',
                         tbl))) q_
    ),
    clean AS (SELECT a_, p_ FROM pairs WHERE a_ IS NOT NULL AND p_ IS NOT NULL),
    total AS (SELECT count(*)::DOUBLE AS n_, count_if(a_ = p_) AS correct_ FROM clean),
    labels AS (SELECT a_ AS label_ FROM clean UNION SELECT p_ FROM clean),
    cells AS (SELECT a_, p_, count(*) AS n_ FROM clean GROUP BY a_, p_),
    counts AS (
        SELECT l.label_,
               coalesce(sum(c.n_) FILTER (WHERE c.a_ = l.label_ AND c.p_ = l.label_), 0) AS tp_,
               coalesce(sum(c.n_) FILTER (WHERE c.p_ = l.label_), 0) AS predicted_,
               coalesce(sum(c.n_) FILTER (WHERE c.a_ = l.label_), 0) AS support_
        FROM labels l CROSS JOIN cells c
        GROUP BY l.label_
    ),
    per_class AS (
        SELECT label_,
               __sqlml_ratio(tp_, predicted_) AS precision_,
               __sqlml_ratio(tp_, support_) AS recall_,
               __sqlml_ratio(2 * tp_, predicted_ + support_) AS f1_,
               (t.n_ - (predicted_ - tp_) - (support_ - tp_)) / t.n_ AS accuracy_,
               support_, tp_, predicted_
        FROM counts, total t
    ),
    rows_ AS (
        SELECT 0 AS section_, label_, label_::VARCHAR AS name_, precision_, recall_, f1_,
               accuracy_, support_::BIGINT AS support_
        FROM per_class
        UNION ALL
        SELECT 1, NULL, 'accuracy', NULL, NULL, NULL, correct_ / n_, n_::BIGINT FROM total
        UNION ALL
        SELECT 2, NULL, 'macro avg', avg(precision_), avg(recall_), avg(f1_), avg(accuracy_),
               sum(support_)::BIGINT
        FROM per_class
        UNION ALL
        SELECT 3, NULL, 'micro avg', __sqlml_ratio(sum(tp_), sum(predicted_)),
               __sqlml_ratio(sum(tp_), sum(support_)),
               __sqlml_ratio(2 * sum(tp_), sum(predicted_) + sum(support_)),
               avg(accuracy_), sum(support_)::BIGINT
        FROM per_class
        UNION ALL
        SELECT 4, NULL, 'weighted avg',
               sum(precision_ * support_) / sum(support_), sum(recall_ * support_) / sum(support_),
               sum(f1_ * support_) / sum(support_), sum(accuracy_ * support_) / sum(support_),
               sum(support_)::BIGINT
        FROM per_class
    )
    SELECT name_ AS label, precision_ AS "precision", recall_ AS recall, f1_ AS f1,
           accuracy_ AS accuracy, support_ AS support
    FROM rows_
    WHERE (SELECT n_ FROM total) > 0
    ORDER BY section_, label_;

CREATE OR REPLACE MACRO ml_threshold_table(tbl, actual := NULL, score := NULL, fn_cost := 1,
                                           fp_cost := 1, tp_cost := 0, tn_cost := 0,
                                           pos_label := NULL) AS TABLE
    SELECT * FROM (SELECT unnest(rows_, recursive := true)
    FROM (
        SELECT __sqlml_threshold_rows(
                   __sqlml_curve_of_table(struct_extract(q_, actual), struct_extract(q_, score), pos_label,
                                    'ml_threshold_table'),
                   fn_cost, fp_cost, tp_cost, tn_cost, 'ml_threshold_table') AS rows_
        FROM query_table(
            __sqlml_need(actual, 'ml_threshold_table', 'actual', '''churned''',
            __sqlml_need(score, 'ml_threshold_table', 'score', '''p_churn''', tbl))) q_
    ))
    ORDER BY threshold DESC;

-- One row per model: its best threshold under the costs and constraints (or its numbers at a
-- fixed threshold), ranked by cost. Models that cannot meet the constraints keep a row, flagged
-- meets_constraints = false and ranked after every model that meets them.
CREATE OR REPLACE MACRO ml_compare_models(tbl, actual := NULL, model := NULL, score := NULL,
                                          fn_cost := 1, fp_cost := 1, tp_cost := 0, tn_cost := 0,
                                          min_recall := NULL, max_fnr := NULL, threshold := NULL,
                                          pos_label := NULL) AS TABLE
    WITH per_model AS (
        SELECT struct_extract(q_, model) AS model_,
               __sqlml_curve_of_table(struct_extract(q_, actual), struct_extract(q_, score), pos_label,
                                      'ml_compare_models') AS curve_,
               ml_roc_auc(struct_extract(q_, actual), struct_extract(q_, score), pos_label := pos_label) AS auc_
        FROM query_table(
            __sqlml_need(actual, 'ml_compare_models', 'actual', '''churned''',
            __sqlml_need(model, 'ml_compare_models', 'model', '''model_name''',
            __sqlml_need(score, 'ml_compare_models', 'score', '''p_churn''',
            CASE WHEN threshold IS NULL OR __sqlml_is_number(threshold) THEN tbl
                 ELSE error('ml_compare_models: threshold must be a number or NULL, got '
                            || __sqlml_show(threshold) || '. Pass NULL to let each model choose'
                            ' its cheapest threshold, or a fixed cut-off, e.g. threshold := 0.5.')
            END)))) q_
        GROUP BY ALL
    ),
    costed AS (
        SELECT *, __sqlml_costs(fn_cost, fp_cost, tp_cost, tn_cost, 'ml_compare_models') AS k_
        FROM per_model
    ),
    chosen AS (
        -- A model that cannot meet the constraints still gets its cheapest threshold, flagged.
        SELECT model_, auc_,
               __sqlml_threshold_metrics(
                   coalesce(__sqlml_choose(curve_, k_, 'cost', min_recall, max_fnr,
                                           TRY_CAST(threshold AS DOUBLE), 'ml_compare_models'),
                            __sqlml_choose(curve_, k_, 'cost', NULL, NULL, NULL, 'ml_compare_models')),
                   curve_.p, curve_.n, k_) AS pick_
        FROM costed
    ),
    flagged AS (
        SELECT model_, auc_, pick_,
               coalesce(pick_.recall >= TRY_CAST(min_recall AS DOUBLE), true)
               AND coalesce(pick_.fnr <= TRY_CAST(max_fnr AS DOUBLE), true) AS meets_
        FROM chosen
    )
    SELECT row_number() OVER (ORDER BY meets_ DESC, pick_.cost, pick_.recall DESC, model_) AS rank,
           model_ AS model,
           meets_ AS meets_constraints,
           struct_extract(pick_, 'threshold') AS threshold,
           pick_.cost AS cost,
           pick_."precision" AS "precision",
           pick_.recall AS recall,
           pick_.f1 AS f1,
           pick_.fnr AS fnr,
           pick_.fpr AS fpr,
           pick_.accuracy AS accuracy,
           auc_ AS roc_auc,
           pick_.tp AS tp, pick_.fp AS fp, pick_.tn AS tn, pick_.fn AS fn
    FROM flagged
    ORDER BY rank;
