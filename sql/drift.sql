-- Drift against the training data, in pure SQL over sqlml.training_profiles (docs/monitoring.md).
--
-- FROM ml_drift('model', 'SELECT ...') compares the query's rows with the stored profile of the
-- model's active version: one row per feature, and one for the model's scores when the query
-- has a column ml_score (sqlml.drift() and `sqlml drift` add it with the model's function).
-- FROM ml_drift_by('model', 'SELECT ...', 'region') does the same per value of the query's
-- column region (its first column, "group").
--
-- psi: population stability index over the training bins, sum((a - e) * ln(a / e)) with each
--   share floored at 0.0001 (an empty bin); ks: max |F_new - F_train| over the stored training
--   percentiles (an approximation of the two-sample KS distance from below, by at most the
--   largest step of the training CDF between two stored points: 0.01 for a continuous column).
-- hit_rate (text columns, on the text_length row): the share of the query's word tokens (runs of
--   a-z and 0-9 in the lowercased text) found in the training vocabulary (sqlml/train/profile.py:
--   the 2,000 most frequent training tokens); training_hit_rate is the training rows' own, and
--   hit_rate_change the difference (negative: more words the model never saw).
-- verdict: broken when psi > 0.25, the missing rate rose by more than 0.2, the hit rate fell by
--   more than 0.25, or every row is NULL (where training had values); shifted when psi >= 0.1,
--   the missing rate rose by more than 0.05 or the hit rate fell by more than 0.1; stable
--   otherwise.

-- The checks every drift query passes before it compares anything: an error() naming the
-- object, the rule, the value and the remedy, or true.
CREATE OR REPLACE MACRO __sqlml_drift_check(model_name, problem, has_profile, query_rows,
                                            missing_feature, type_change) AS
    CASE
    WHEN problem = 'recommendation' THEN error(
        'DriftError: ml_drift: model ''' || model_name || ''' is a recommender, which reads '
        || 'no feature columns whose drift could be compared with its training data. Check '
        || 'the drift of user and item activity with FROM ml_drift(''<a classifier or '
        || 'regression model>'', ...), or retrain the recommender on recent ratings.')
    WHEN NOT has_profile THEN error(
        'DriftError: ml_drift: model ''' || model_name || ''' has no training profile: it was '
        || 'trained before sqlml stored one (sqlml.training_profiles). Retrain to enable drift '
        || 'checks, e.g. SELECT ml_create_model(''' || model_name || ''', <its training '
        || 'query>, ...).')
    WHEN query_rows = 0 THEN error(
        'DriftError: ml_drift: the query returned no rows, so there is nothing to compare with '
        || 'the training data of model ''' || model_name || '''. Check its FROM and WHERE '
        || 'clauses.')
    WHEN missing_feature IS NOT NULL THEN error(
        'DriftError: ml_drift: the query has no column ''' || missing_feature || ''', a '
        || 'feature of model ''' || model_name || '''; drift is checked on every feature. Add '
        || 'it to the query''s SELECT list (e.g. SELECT * FROM ...).')
    WHEN type_change IS NOT NULL THEN error(
        'DriftError: ml_drift: ' || type_change || ' for model ''' || model_name || ''': the '
        || 'values cannot be compared with the training data. Cast the column back in the '
        || 'query, or retrain on the new type.')
    ELSE true END;

-- The family of a DuckDB type, for the type-change check: a DOUBLE column that arrives as
-- DECIMAL(10,2) is the same numbers; a VARCHAR is not.
CREATE OR REPLACE MACRO __sqlml_type_family(t) AS
    CASE WHEN t IS NULL THEN NULL
         WHEN regexp_matches(upper(t), '^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL.*)$') THEN 'number'
         WHEN upper(t) = 'BOOLEAN' THEN 'boolean'
         WHEN upper(t) = 'VARCHAR' OR upper(t) LIKE 'ENUM%' THEN 'text'
         ELSE upper(t) END;

CREATE OR REPLACE MACRO ml_drift_by(model_name, query_text, group_column) AS TABLE
WITH
model AS (
    SELECT m.name, m.active_version AS version, m.function_name, v.problem_type, v.features
    FROM sqlml.models m JOIN sqlml.model_versions v
      ON v.name = m.name AND v.version = m.active_version
    WHERE m.name = ml_require_model(model_name)),
prof AS (
    SELECT p.* FROM sqlml.training_profiles p JOIN model m
      ON p.name = m.name AND p.version = m.version
    WHERE p.kind <> 'text_vocabulary'),
vocab AS (   -- a text column's training vocabulary; none for models trained before it was kept
    SELECT p.feature, p.mean AS training_hit_rate, p.categories AS words
    FROM sqlml.training_profiles p JOIN model m
      ON p.name = m.name AND p.version = m.version
    WHERE p.kind = 'text_vocabulary'),
wide AS (SELECT row_number() OVER () AS __sqlml_row, COLUMNS(*)::VARCHAR FROM query(query_text)),
long AS (FROM wide UNPIVOT INCLUDE NULLS (v FOR feature IN (COLUMNS(* EXCLUDE __sqlml_row)))),
types AS (
    SELECT unnest(json_keys(j)) AS feature, json_extract_string(j, unnest(json_keys(j))) AS type
    FROM (SELECT to_json(t) AS j FROM (SELECT typeof(COLUMNS(*)) FROM query(query_text) LIMIT 1) t)),
trained AS (
    SELECT f.name AS feature, f.type
    FROM (SELECT unnest(from_json((SELECT features FROM model),
                                  '[{"name":"VARCHAR","type":"VARCHAR","kind":"VARCHAR"}]'),
                        recursive := true)) f
    WHERE f.kind <> 'date'),
ok AS (
    SELECT __sqlml_drift_check(
        model_name, (SELECT problem_type FROM model), EXISTS (FROM prof),
        (SELECT count(*) FROM wide),
        (SELECT min(t.feature) FROM trained t WHERE t.feature NOT IN (SELECT feature FROM types)),
        (SELECT min('column ''' || t.feature || ''' is ' || q.type || ' in the query but was '
                    || t.type || ' at training')
         FROM trained t JOIN types q USING (feature)
         WHERE __sqlml_type_family(t.type) <> __sqlml_type_family(q.type))) AS ok),
groups AS (SELECT __sqlml_row, v AS grp FROM long WHERE feature = group_column),
vals AS (
    -- gk: the group as an ASOF join key (the duckdb CLI 1.5 matches no NULL in an ASOF join's
    -- equality, even under IS NOT DISTINCT FROM).
    SELECT g.grp, coalesce(g.grp, chr(0)) AS gk, p.feature, p.kind, l.v,
           CASE p.kind WHEN 'category' THEN NULL
                       WHEN 'text_length' THEN length(l.v)::DOUBLE
                       ELSE TRY_CAST(l.v AS DOUBLE) END AS x
    FROM prof p JOIN long l ON l.feature = p.feature
    LEFT JOIN groups g ON g.__sqlml_row = l.__sqlml_row),
summary AS (
    SELECT grp, feature, count(*) AS rows, count(*) FILTER (v IS NULL) / count(*) AS missing_rate,
           avg(x) AS mean, count(x) AS n_x, count(v) AS n_v
    FROM vals GROUP BY grp, feature),
cells AS (   -- per group: every training bin (numeric kinds) or stored category and "other"
    SELECT s.grp, coalesce(s.grp, chr(0)) AS gk, p.feature, b.i AS cell,
           p.bin_upper[b.i] AS upper, p.bin_share[b.i] AS e
    FROM prof p JOIN summary s ON s.feature = p.feature,
         LATERAL (SELECT unnest(range(1, len(p.bin_upper) + 1)) AS i) b
    WHERE p.kind <> 'category'
    UNION ALL
    SELECT s.grp, coalesce(s.grp, chr(0)), p.feature, c.i, NULL,
           coalesce(p.category_share[c.i], p.other_share)
    FROM prof p JOIN summary s ON s.feature = p.feature,
         LATERAL (SELECT unnest(range(1, len(p.categories) + 2)) AS i) c
    WHERE p.kind = 'category'),
binned AS (
    SELECT x.grp, x.feature, c.cell, count(*) AS n
    FROM vals x ASOF JOIN cells c
      ON c.gk = x.gk AND c.feature = x.feature AND c.upper >= x.x
    WHERE x.x IS NOT NULL GROUP BY ALL
    UNION ALL
    SELECT x.grp, x.feature,
           coalesce(list_position(p.categories, x.v), len(p.categories) + 1), count(*)
    FROM vals x JOIN prof p ON p.feature = x.feature
    WHERE p.kind = 'category' AND x.v IS NOT NULL GROUP BY ALL),
psi AS (
    SELECT c.grp, c.feature,
           sum((greatest(coalesce(b.n, 0) / s.denominator, 0.0001) - greatest(c.e, 0.0001))
               * ln(greatest(coalesce(b.n, 0) / s.denominator, 0.0001) / greatest(c.e, 0.0001)))
               AS psi
    FROM cells c
    JOIN (SELECT grp, feature, greatest(CASE WHEN n_x > 0 THEN n_x ELSE n_v END, 1) AS denominator
          FROM summary) s ON s.grp IS NOT DISTINCT FROM c.grp AND s.feature = c.feature
    LEFT JOIN binned b ON b.grp IS NOT DISTINCT FROM c.grp AND b.feature = c.feature
                      AND b.cell = c.cell
    GROUP BY c.grp, c.feature),
points AS (
    SELECT s.grp, coalesce(s.grp, chr(0)) AS gk, p.feature, k.i, p.cdf_at[k.i] AS at,
           p.cdf[k.i] AS cdf
    FROM prof p JOIN summary s ON s.feature = p.feature,
         LATERAL (SELECT unnest(range(1, len(p.cdf_at) + 1)) AS i) k
    WHERE p.kind <> 'category'),
below AS (
    SELECT x.grp, x.feature, pt.i, count(*) AS n
    FROM vals x ASOF JOIN points pt
      ON pt.gk = x.gk AND pt.feature = x.feature AND pt.at >= x.x
    WHERE x.x IS NOT NULL GROUP BY ALL),
ks AS (
    SELECT grp, feature, max(abs(f_new - cdf)) AS ks FROM (
        SELECT pt.grp, pt.feature, pt.cdf,
               sum(coalesce(b.n, 0)) OVER (PARTITION BY pt.grp, pt.feature ORDER BY pt.i)
                   / greatest(s.n_x, 1) AS f_new
        FROM points pt
        JOIN summary s ON s.grp IS NOT DISTINCT FROM pt.grp AND s.feature = pt.feature
        LEFT JOIN below b ON b.grp IS NOT DISTINCT FROM pt.grp AND b.feature = pt.feature
                         AND b.i = pt.i)
    GROUP BY grp, feature),
words AS (SELECT feature, unnest(words) AS word FROM vocab),
tokens AS (
    SELECT x.grp, x.feature, unnest(regexp_extract_all(lower(x.v), '[a-z0-9]+')) AS tok
    FROM vals x WHERE x.kind = 'text_length' AND x.v IS NOT NULL),
hits AS (
    SELECT s.grp, s.feature, vb.training_hit_rate,
           count(w.word) / nullif(count(t.tok), 0) AS hit_rate
    FROM summary s JOIN vocab vb ON vb.feature = s.feature
    LEFT JOIN tokens t ON t.grp IS NOT DISTINCT FROM s.grp AND t.feature = s.feature
    LEFT JOIN words w ON w.feature = t.feature AND w.word = t.tok
    GROUP BY s.grp, s.feature, vb.training_hit_rate),
unseen AS (
    SELECT x.grp, x.feature, count(DISTINCT x.v) AS n, list(DISTINCT x.v ORDER BY x.v)[1:5] AS examples
    FROM vals x JOIN prof p ON p.feature = x.feature
    WHERE p.kind = 'category' AND p.complete AND x.v IS NOT NULL
      AND list_position(p.categories, x.v) IS NULL
    GROUP BY ALL),
rows_out AS (
    SELECT s.grp, p.feature, CASE p.kind WHEN 'score' THEN 'prediction' ELSE p.kind END AS kind,
           s.rows, round(ps.psi, 6) AS psi, round(k.ks, 6) AS ks,
           p.missing_rate AS training_missing_rate, s.missing_rate,
           s.missing_rate - p.missing_rate AS missing_rate_change,
           p.mean AS training_mean, s.mean,
           CASE WHEN p.kind = 'category' THEN
                CASE WHEN p.complete THEN coalesce(u.n, 0) END END AS unseen_categories,
           u.examples AS unseen_examples,
           round(h.training_hit_rate, 6) AS training_hit_rate, round(h.hit_rate, 6) AS hit_rate,
           round(h.hit_rate - h.training_hit_rate, 6) AS hit_rate_change,
           CASE WHEN s.missing_rate = 1 AND p.missing_rate < 1 THEN 'broken'
                WHEN ps.psi > 0.25 OR s.missing_rate - p.missing_rate > 0.2
                     OR h.hit_rate - h.training_hit_rate < -0.25 THEN 'broken'
                WHEN ps.psi >= 0.1 OR s.missing_rate - p.missing_rate > 0.05
                     OR h.hit_rate - h.training_hit_rate < -0.1 THEN 'shifted'
                ELSE 'stable' END AS verdict,
           CASE WHEN s.missing_rate = 1 AND p.missing_rate < 1 THEN 'every value is NULL'
                WHEN s.missing_rate - p.missing_rate > 0.05 THEN 'missing rate rose by '
                     || round(100 * (s.missing_rate - p.missing_rate), 1) || ' points'
                WHEN coalesce(u.n, 0) > 0 THEN u.n || ' value(s) unseen at training'
                WHEN h.hit_rate - h.training_hit_rate < -0.1 THEN 'vocabulary hit rate fell by '
                     || round(100 * (h.training_hit_rate - h.hit_rate), 1) || ' points'
                WHEN ps.psi >= 0.1 THEN 'distribution moved' END AS note,
           CASE p.kind WHEN 'score' THEN 2 ELSE 1 END AS o
    FROM prof p JOIN summary s ON s.feature = p.feature
    LEFT JOIN psi ps ON ps.grp IS NOT DISTINCT FROM s.grp AND ps.feature = s.feature
    LEFT JOIN ks k ON k.grp IS NOT DISTINCT FROM s.grp AND k.feature = s.feature
    LEFT JOIN unseen u ON u.grp IS NOT DISTINCT FROM s.grp AND u.feature = s.feature
    LEFT JOIN hits h ON h.grp IS NOT DISTINCT FROM s.grp AND h.feature = s.feature),
no_scores AS (   -- the prediction row, when the query brought no ml_score column
    SELECT s.grp, 'ml_score' AS feature, 'prediction' AS kind, max(s.rows) AS rows,
           p.missing_rate AS training_missing_rate, p.mean AS training_mean,
           'not computed: the query has no ml_score column; add ' || m.function_name
           || CASE WHEN m.problem_type = 'binary_classification' THEN '_probability' ELSE '' END
           || '(<features>) AS ml_score to it, or use sqlml.drift() / sqlml drift' AS note, 2 AS o
    FROM prof p, model m, summary s
    WHERE p.kind = 'score' AND NOT EXISTS (FROM summary z WHERE z.feature = 'ml_score')
    GROUP BY s.grp, p.missing_rate, p.mean, m.function_name, m.problem_type)
SELECT r.grp AS "group", r.feature, r.kind, r.rows, r.psi, r.ks, r.training_missing_rate,
       r.missing_rate, r.missing_rate_change, r.training_mean, r.mean, r.unseen_categories,
       r.unseen_examples, r.training_hit_rate, r.hit_rate, r.hit_rate_change, r.verdict, r.note
FROM (FROM rows_out UNION ALL BY NAME FROM no_scores) r, ok
WHERE ok.ok
ORDER BY r."grp" NULLS FIRST, r.o, r.feature;

CREATE OR REPLACE MACRO ml_drift(model_name, query_text) AS TABLE
    SELECT * EXCLUDE ("group") FROM ml_drift_by(model_name, query_text, NULL);
