-- Macros that own the named arguments and defaults of sqlml's Python-backed functions, and
-- pure-SQL views of the catalog that work in any DuckDB client.

-- The dispatchers every generated function calls, and the functions only Python runs:
-- in a plain DuckDB client they return the compiled SQL passed to them or an error saying what
-- needs sqlml; a sqlml session shadows them with TEMP macros that call Python
-- (sqlml/catalog/generated.py explains why).
{{dispatchers}};

-- ml_create_model(name, source, target := NULL, ...): generated from sqlml/spec.py's PARAMS
-- (sqlml.spec.create_model_macro), so the macro, the Python API and the UDF agree on them.
{{ml_create_model}}

-- Raises the Python side's message when a model name is unknown: sqlml/sqlfiles.py puts the
-- catalog's one template (sqlml/catalog/store.py NOT_FOUND) in place of the placeholder.
CREATE OR REPLACE MACRO ml_require_model(model_name) AS
    CASE WHEN EXISTS (FROM sqlml.models m WHERE m.name = model_name) THEN model_name
         ELSE error({{model_not_found}}) END;

CREATE OR REPLACE MACRO ml_models() AS TABLE
    SELECT m.name, m.active_version AS version, v.state, v.problem_type, v.model_type,
           v.target, m.function_name AS "function", v.objective,
           v.metrics, v.threshold, v.training_rows, v.created_at, v.training_seconds,
           (SELECT count(*) FROM sqlml.model_versions w WHERE w.name = m.name) AS versions
    FROM sqlml.models m
    JOIN sqlml.model_versions v ON v.name = m.name AND v.version = m.active_version
    ORDER BY m.name;

-- SHOW MODEL: one (property, value) row per fact about the active version, like Redshift.
CREATE OR REPLACE MACRO ml_show_model(model_name) AS TABLE
    WITH v AS (
        SELECT v.*, m.active_version
        FROM sqlml.models m
        JOIN sqlml.model_versions v ON v.name = m.name AND v.version = m.active_version
        WHERE m.name = ml_require_model(model_name))
    SELECT property, value FROM (
        SELECT 1 AS o, 'model_name' AS property, name AS value FROM v
        UNION ALL SELECT 2, 'version', version::VARCHAR FROM v
        UNION ALL SELECT 3, 'versions', (SELECT string_agg(version::VARCHAR, ', ' ORDER BY version)
              FROM sqlml.model_versions w WHERE w.name = model_name) FROM v
        UNION ALL SELECT 4, 'state', state FROM v
        UNION ALL SELECT 5, 'problem_type', problem_type FROM v
        UNION ALL SELECT 6, 'model_type', model_type FROM v
        UNION ALL SELECT 7, 'target', target || ' ' || target_type FROM v
        UNION ALL SELECT 8, 'function', function_name FROM v
        UNION ALL SELECT 9, 'function_parameters', (SELECT string_agg(f.name || ' ' || f.type, ', ')
              FROM (SELECT unnest(from_json(features, '[{"name":"VARCHAR","type":"VARCHAR"}]'), recursive := true)) f) FROM v
        UNION ALL SELECT 10, 'excluded_columns', excluded::VARCHAR FROM v
        UNION ALL SELECT 11, 'classes', classes::VARCHAR FROM v
        UNION ALL SELECT 12, 'positive_class', positive_class FROM v
        UNION ALL SELECT 13, 'threshold', threshold::VARCHAR FROM v
        UNION ALL SELECT 14, 'threshold_reason', threshold_reason FROM v
        UNION ALL SELECT 15, 'objective', objective FROM v
        UNION ALL SELECT 16, 'validation_metrics', metrics::VARCHAR FROM v
        UNION ALL SELECT 17, 'parameters', parameters::VARCHAR FROM v
        UNION ALL SELECT 18, 'training_rows', training_rows::VARCHAR FROM v
        UNION ALL SELECT 19, 'validation_rows', validation_rows::VARCHAR FROM v
        UNION ALL SELECT 20, 'training_query', training_query FROM v
        UNION ALL SELECT 21, 'data_fingerprint', data_fingerprint FROM v
        UNION ALL SELECT 22, 'library_versions', library_versions::VARCHAR FROM v
        UNION ALL SELECT 23, 'created_at', created_at::VARCHAR FROM v
        UNION ALL SELECT 24, 'training_seconds', round(training_seconds, 3)::VARCHAR FROM v
        UNION ALL SELECT 25, 'artifact', artifact_format || ', ' || octet_length(artifact)::VARCHAR
              || ' bytes, sha256 ' || artifact_sha256 FROM v
        UNION ALL SELECT 26, 'compiled_sql', CASE WHEN problem_type = 'recommendation'
              THEN 'pure-SQL functions ' || function_name || '_sql, ' || function_name
                   || '_rating_sql over the stored factor tables'
              WHEN problem_type = 'forecast'
              THEN 'pure-SQL functions ' || function_name || '(horizon := n), ' || function_name
                   || '_backtest() over the stored forecasts'
              ELSE coalesce(parameters->>'$.compiled_sql.summary',
                            'not compiled to SQL: trained before sqlml compiled models') END FROM v
        UNION ALL   -- no rows; checks the name even when the catalog is empty
        SELECT 0, NULL, NULL WHERE ml_require_model(model_name) IS NULL
    ) ORDER BY o;

CREATE OR REPLACE MACRO ml_model_metrics(model_name) AS TABLE
    SELECT mm.name, mm.version, mm.metric, mm.class_label, mm.value
    FROM sqlml.model_metrics mm
    JOIN sqlml.models m ON m.name = mm.name AND m.active_version = mm.version
    WHERE mm.name = ml_require_model(model_name)
    UNION ALL SELECT NULL, NULL, NULL, NULL, NULL WHERE ml_require_model(model_name) IS NULL
    ORDER BY class_label NULLS FIRST, metric;

CREATE OR REPLACE MACRO ml_confusion_matrix(model_name) AS TABLE
    SELECT c.actual, c.predicted, c.n
    FROM sqlml.confusion_matrices c
    JOIN sqlml.models m ON m.name = c.name AND m.active_version = c.version
    WHERE c.name = ml_require_model(model_name)
    UNION ALL SELECT NULL, NULL, NULL WHERE ml_require_model(model_name) IS NULL
    ORDER BY actual, predicted;

CREATE OR REPLACE MACRO ml_trials(model_name) AS TABLE
    SELECT t.version, t.trial, t.model_type, t.objective, t.score, t.fold_scores, t.seconds,
           t.status,
           (SELECT max(l.epoch) FROM sqlml.training_log l WHERE l.name = t.name
              AND l.version = t.version AND l.trial = t.trial) AS epochs,
           t.parameters
    FROM sqlml.trials t
    WHERE t.name = ml_require_model(model_name)
    UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE ml_require_model(model_name) IS NULL
    ORDER BY version, trial;

CREATE OR REPLACE MACRO ml_training_history(model_name) AS TABLE
    SELECT version, status, started_at, finished_at, seconds, error
    FROM sqlml.training_runs WHERE name = model_name ORDER BY started_at;

CREATE OR REPLACE MACRO ml_threshold_metrics(model_name) AS TABLE
    SELECT t.threshold, t.tp, t.fp, t.tn, t.fn, t."precision", t.recall, t.f1, t.fnr, t.fpr,
           t.accuracy, t.cost, t.threshold = v.threshold AS chosen
    FROM sqlml.threshold_metrics t
    JOIN sqlml.models m ON m.name = t.name AND m.active_version = t.version
    JOIN sqlml.model_versions v ON v.name = t.name AND v.version = t.version
    WHERE t.name = ml_require_model(model_name)
    UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    WHERE ml_require_model(model_name) IS NULL
    ORDER BY threshold DESC;

-- Per-epoch objective values and progress of tuning runs (rows appear while training runs).
CREATE OR REPLACE MACRO ml_training_log(model_name) AS TABLE
    SELECT l.version, l.trial, l.epoch, l.model_type, l.resource, l.score, l.running_average,
           l.median_of_earlier, l.event, l.trials_planned, l.best_so_far, l.elapsed_seconds,
           l.remaining_seconds, l.logged_at
    FROM sqlml.training_log l
    WHERE l.name = model_name
    ORDER BY l.version, l.logged_at, l.trial, l.epoch;

-- The model's name when it is a recommender; otherwise the Python side's error.
CREATE OR REPLACE MACRO __sqlml_require_recommender(model_name, caller) AS
    CASE WHEN (SELECT v.problem_type FROM sqlml.models m JOIN sqlml.model_versions v
               ON v.name = m.name AND v.version = m.active_version
               WHERE m.name = ml_require_model(model_name)) = 'recommendation' THEN model_name
         ELSE error(caller || ': model ''' || model_name || ''' is ' || (SELECT v.problem_type
              || ', not a recommender. Score it with ' || m.function_name || '(...), or train '
              || 'one with problem_type := ''recommendation''.' FROM sqlml.models m
              JOIN sqlml.model_versions v ON v.name = m.name AND v.version = m.active_version
              WHERE m.name = model_name)) END;

-- Items closest to an item in a recommender's factor space (cosine similarity; ties to the
-- lower item). In SQL over sqlml.recommender_items in any client; through Python in a sqlml
-- session (the same items, similarities to 1e-12). Every column is qualified: a macro's
-- parameter (item) replaces any unqualified column of its name.
CREATE OR REPLACE MACRO ml_similar_items(model_name, item, k := 10) AS TABLE
    SELECT * FROM (
        SELECT r.rank, r.item, r.similarity
        FROM (SELECT unnest(__sqlml_serve_similar(model_name, item, k, [])) AS r)
        WHERE __sqlml_serve_session()
        UNION ALL
        SELECT s.rank, s.item, s.similarity FROM (
            SELECT (row_number() OVER (ORDER BY list_cosine_similarity(o.factors, me.factors)
                    DESC, o.ordinal))::INTEGER AS rank, o.item AS item,
                   list_cosine_similarity(o.factors, me.factors) AS similarity
            FROM sqlml.recommender_items o, sqlml.recommender_items me
            WHERE o.model = __sqlml_require_recommender(model_name, 'ml_similar_items')
              AND me.model = o.model AND me.item = item::VARCHAR AND o.item <> me.item) s
        WHERE s.rank <= k AND NOT __sqlml_serve_session()
    ) ORDER BY rank;

-- Over/underfitting verdict and learning curve of the active version (settings := {diagnose: true}).
-- A forecast model's rows are the engine's flags per series (kind 'forecast'; verdict: the flag,
-- too_short_for_seasonality | intermittent | flat_forecast; remedy: the series and the detail),
-- or one row with verdict 'no_flags' when it raised none.
CREATE OR REPLACE MACRO ml_diagnose(model_name) AS TABLE
    SELECT d.step, d.kind, v.objective, d.train_rows, d.training_score, d.validation_score,
           d.training_skill, d.validation_skill, d.verdict, d.remedy
    FROM sqlml.diagnosis d
    JOIN sqlml.models m ON m.name = d.name AND m.active_version = d.version
    JOIN sqlml.model_versions v ON v.name = d.name AND v.version = d.version
    WHERE d.name = ml_require_model(model_name)
    UNION ALL
    SELECT (row_number() OVER (ORDER BY f.series_id, f.flag))::INTEGER, 'forecast',
           v.objective, s.points, NULL, s.scaled_pinball, NULL, NULL, f.flag,
           'series ''' || f.series_id || ''': ' || f.detail
    FROM sqlml.forecast_diagnostics f
    JOIN sqlml.models m ON m.name = f.name AND m.active_version = f.version
    JOIN sqlml.model_versions v ON v.name = f.name AND v.version = f.version
    JOIN sqlml.forecast_series s ON s.name = f.name AND s.version = f.version
         AND s.series_id = f.series_id
    WHERE f.name = ml_require_model(model_name)
    UNION ALL
    SELECT 0, CASE WHEN k.forecast THEN 'forecast' ELSE 'not_computed' END,
           NULL, NULL, NULL, NULL, NULL, NULL,
           CASE WHEN k.forecast THEN 'no_flags' ELSE 'not_computed' END,
           CASE WHEN k.forecast
                THEN 'no series of model ''' || model_name || ''' is too short for its '
                     || 'seasonality, intermittent or forecast as a flat line'
                ELSE 'the active version of model ''' || model_name || ''' was trained without a '
                     || 'diagnosis; retrain it with settings := {diagnose: true}' END
    FROM (SELECT coalesce((SELECT v.problem_type = 'forecast' FROM sqlml.models m
                           JOIN sqlml.model_versions v
                           ON v.name = m.name AND v.version = m.active_version
                           WHERE m.name = model_name), false) AS forecast) k
    WHERE ml_require_model(model_name) = model_name
      AND NOT EXISTS (FROM sqlml.diagnosis d JOIN sqlml.models m
                      ON m.name = d.name AND m.active_version = d.version
                      WHERE d.name = model_name)
      AND NOT EXISTS (FROM sqlml.forecast_diagnostics d JOIN sqlml.models m
                      ON m.name = d.name AND m.active_version = d.version
                      WHERE d.name = model_name)
    ORDER BY step;

-- Reliability table (mean predicted vs observed rate per bin) and Brier score of a binary model.
CREATE OR REPLACE MACRO ml_calibration(model_name) AS TABLE
    SELECT c.bin, c.lower_bound, c.upper_bound, c.mean_predicted, c.observed_rate, c.n,
           c.brier_score, c.method
    FROM sqlml.calibration c
    JOIN sqlml.models m ON m.name = c.name AND m.active_version = c.version
    WHERE c.name = ml_require_model(model_name)
    UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE ml_require_model(model_name) IS NULL
    ORDER BY bin;

-- Global explanations of the active version (sqlml/explain.py): permutation importance per
-- input column on the validation rows, then coefficients of linear models (0 where L1 zeroed).
-- A recommender has no input columns to rank: say so rather than return no rows.
CREATE OR REPLACE MACRO ml_require_explainable(model_name) AS
    CASE WHEN EXISTS (FROM sqlml.models m JOIN sqlml.model_versions v
                      ON v.name = m.name AND v.version = m.active_version
                      WHERE m.name = model_name AND v.problem_type = 'recommendation')
         THEN error('ml_explain_model: model ''' || model_name || ''' is a recommender, which '
              || 'has no feature importance: factors explain its users and items. Use '
              || 'FROM ml_similar_items(''' || model_name || ''', item, k := 10) for the items '
              || 'closest to one, and the reason column of its recommend function.')
         ELSE model_name END;

-- The UNION sits in FROM: DuckDB before 2.0 orders a UNION only by columns it selects.
-- A forecast model has no feature importance: its rows are the method chosen per series (kind
-- 'method'; feature: the series, term: the method, importance: the season length used).
CREATE OR REPLACE MACRO ml_explain_model(model_name) AS TABLE
    FROM (
        SELECT f.kind, f.rank, f.feature, f.term, f.class_label, f.importance, f.importance_std,
               f.coefficient
        FROM sqlml.feature_importance f
        JOIN sqlml.models m ON m.name = f.name AND m.active_version = f.version
        WHERE f.name = ml_require_explainable(ml_require_model(model_name))
        UNION ALL
        SELECT 'method', (row_number() OVER (ORDER BY s.series_id))::INTEGER, s.series_id,
               s.method, NULL, s.season_length::DOUBLE, NULL, NULL
        FROM sqlml.forecast_series s
        JOIN sqlml.models m ON m.name = s.name AND m.active_version = s.version
        WHERE s.name = model_name
        UNION ALL   -- no rows; checks the name even when the tables are empty
        SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
        WHERE ml_require_explainable(ml_require_model(model_name)) IS NULL
    )
    ORDER BY CASE kind WHEN 'permutation' THEN 0 WHEN 'intercept' THEN 1 WHEN 'method' THEN 3
                  ELSE 2 END,
             class_label NULLS FIRST, rank NULLS FIRST;

-- Scores of a model for every row of a table or query, written to sqlml_scores.<model> for
-- clients without Python (sqlml/refresh_scores.py); returns the number of rows written.
CREATE OR REPLACE MACRO ml_refresh_scores(model_name, source, "key" := NULL) AS
    __sqlml_call_refresh_scores(model_name, source, "key");

-- The model report (sqlml/report): one self-contained HTML document of the active version's
-- charts and tables, drawn in Python; a plain client's dispatcher says it needs sqlml. With
-- drift := 'SELECT ...' it also has a drift section: FROM ml_drift(model_name, drift), drawn.
CREATE OR REPLACE MACRO ml_report(model_name, drift := NULL) AS
    __sqlml_call_report_drift(model_name, drift);

-- Forecast models (docs/forecasting.md): the model's name when it is a forecast, otherwise an
-- error naming what it is.
CREATE OR REPLACE MACRO __sqlml_require_forecast(model_name, caller) AS
    CASE WHEN (SELECT v.problem_type FROM sqlml.models m JOIN sqlml.model_versions v
               ON v.name = m.name AND v.version = m.active_version
               WHERE m.name = ml_require_model(model_name)) = 'forecast' THEN model_name
         ELSE error(caller || ': model ''' || model_name || ''' is ' || (SELECT v.problem_type
              || ', not a forecast, so it has no backtest or forecast series. Train one with '
              || 'problem_type := ''forecast'' and settings := {time_col: ..., horizon: ...}.'
              FROM sqlml.models m JOIN sqlml.model_versions v
              ON v.name = m.name AND v.version = m.active_version WHERE m.name = model_name)) END;

-- The rolling-origin backtest of a forecast model's active version: per series, window, horizon
-- step and quantile, the actual and the forecast made before it, with the series' scale (the
-- seasonal naive in-sample mean absolute error) and scale_squared for the scaled metrics.
-- The model's <function>_backtest() gives the same rows with one column per quantile.
CREATE OR REPLACE MACRO ml_backtest(model_name) AS TABLE
    SELECT b.series_id AS series, b."window", b.step, b.period, b.actual, b.quantile,
           b.forecast, s.scale, s.scale_squared
    FROM sqlml.forecast_backtest b
    JOIN sqlml.models m ON m.name = b.name AND m.active_version = b.version
    JOIN sqlml.forecast_series s ON s.name = b.name AND s.version = b.version
         AND s.series_id = b.series_id
    WHERE b.name = __sqlml_require_forecast(model_name, 'ml_backtest')
    UNION ALL   -- no rows; checks the name even when the tables are empty
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    WHERE __sqlml_require_forecast(model_name, 'ml_backtest') IS NULL
    ORDER BY series, "window", step, quantile;

-- Per series of a forecast model's active version: the method, the season length used, the
-- periods observed and filled, the scales and the backtest metrics.
CREATE OR REPLACE MACRO ml_forecast_series(model_name) AS TABLE
    SELECT s.series_id AS series, s.method, s.season_length, s.points, s.filled,
           s.first_period, s.last_period, s.scale, s.mase, s.smape, s.rmsse, s.coverage,
           s.scaled_pinball, s.notes
    FROM sqlml.forecast_series s
    JOIN sqlml.models m ON m.name = s.name AND m.active_version = s.version
    WHERE s.name = __sqlml_require_forecast(model_name, 'ml_forecast_series')
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    WHERE __sqlml_require_forecast(model_name, 'ml_forecast_series') IS NULL
    ORDER BY series;

-- Redshift's SELECT FORECAST(model): the stored forecasts of a forecast model's active version,
-- one row per series, horizon step and quantile (the model's own function gives the same values
-- with the series columns under their names and one column per quantile).
CREATE OR REPLACE MACRO ml_forecast(model_name) AS TABLE
    SELECT series, period, step, quantiles[i] AS quantile, vals[i] AS forecast FROM (
        SELECT f.series_id AS series, f.period, f.step, f."values" AS vals,
               from_json(v.parameters->'$.quantiles', '["DOUBLE"]') AS quantiles,
               unnest(generate_series(1, len(f."values"))) AS i
        FROM sqlml.forecasts f
        JOIN sqlml.models m ON m.name = f.name AND m.active_version = f.version
        JOIN sqlml.model_versions v ON v.name = f.name AND v.version = f.version
        WHERE f.name = __sqlml_require_forecast(model_name, 'FORECAST'))
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL WHERE __sqlml_require_forecast(model_name, 'FORECAST') IS NULL
    ORDER BY series, step, quantile;
