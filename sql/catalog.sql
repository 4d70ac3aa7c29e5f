-- The sqlml catalog: every model version, its metrics and its artifact live in the user's file.
-- Tables only grow by whole versions: training writes a version's rows in one transaction, so a
-- reader never sees a half-stored model.
CREATE SCHEMA IF NOT EXISTS sqlml;

CREATE TABLE IF NOT EXISTS sqlml.meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR
);

-- One row per model name: which version serves, and under which function name.
CREATE TABLE IF NOT EXISTS sqlml.models (
    name           VARCHAR PRIMARY KEY,
    active_version INTEGER NOT NULL,
    function_name  VARCHAR NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS sqlml.model_versions (
    name             VARCHAR NOT NULL,
    version          INTEGER NOT NULL,
    state            VARCHAR NOT NULL,      -- READY: completely stored and loadable
    problem_type     VARCHAR NOT NULL,      -- binary_classification | multiclass_classification | regression
    model_type       VARCHAR NOT NULL,
    target           VARCHAR NOT NULL,
    target_type      VARCHAR NOT NULL,      -- DuckDB type of the target column
    features         JSON NOT NULL,         -- [{name, type, kind, preprocessor}] in training order
    excluded         JSON NOT NULL,         -- [{name, reason}] columns left out of the model
    classes          JSON,                  -- class labels in the order of the probabilities
    positive_class   VARCHAR,
    function_name    VARCHAR NOT NULL,
    threshold        DOUBLE,
    threshold_reason VARCHAR,
    objective        VARCHAR NOT NULL,
    metrics          JSON NOT NULL,         -- headline validation metrics {metric: value}
    parameters       JSON NOT NULL,         -- estimator parameters and training settings
    training_rows    BIGINT NOT NULL,
    validation_rows  BIGINT NOT NULL,
    training_query   VARCHAR NOT NULL,
    data_fingerprint VARCHAR NOT NULL,
    library_versions JSON NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    training_seconds DOUBLE NOT NULL,
    artifact_format  VARCHAR NOT NULL,
    artifact_sha256  VARCHAR NOT NULL,
    artifact         BLOB NOT NULL,
    PRIMARY KEY (name, version)
);

-- Long-format validation metrics: per class where the metric has classes, NULL class otherwise.
CREATE TABLE IF NOT EXISTS sqlml.model_metrics (
    name        VARCHAR NOT NULL,
    version     INTEGER NOT NULL,
    metric      VARCHAR NOT NULL,
    class_label VARCHAR,
    value       DOUBLE
);

CREATE TABLE IF NOT EXISTS sqlml.confusion_matrices (
    name      VARCHAR NOT NULL,
    version   INTEGER NOT NULL,
    actual    VARCHAR NOT NULL,
    predicted VARCHAR NOT NULL,
    n         BIGINT NOT NULL
);

-- Candidates compared by model_type := 'auto' (and, later, tuning trials).
CREATE TABLE IF NOT EXISTS sqlml.trials (
    name        VARCHAR NOT NULL,
    version     INTEGER NOT NULL,
    trial       INTEGER NOT NULL,
    model_type  VARCHAR NOT NULL,
    parameters  JSON NOT NULL,
    objective   VARCHAR NOT NULL,
    score       DOUBLE,
    fold_scores JSON,
    seconds     DOUBLE NOT NULL,
    status      VARCHAR NOT NULL        -- completed | timed_out | failed | skipped
);

-- Every training call, failed ones included: the training history of the file.
CREATE TABLE IF NOT EXISTS sqlml.training_runs (
    name        VARCHAR NOT NULL,
    version     INTEGER,                -- NULL when the run failed before storing a version
    status      VARCHAR NOT NULL,       -- succeeded | failed
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    seconds     DOUBLE NOT NULL,
    error       VARCHAR
);

-- Precision, recall, cost... of a binary model at every distinct validation score, computed at
-- training time by ml_threshold_table with the model's costs.
CREATE TABLE IF NOT EXISTS sqlml.threshold_metrics (
    name      VARCHAR NOT NULL,
    version   INTEGER NOT NULL,
    threshold DOUBLE NOT NULL,
    tp        BIGINT NOT NULL,
    fp        BIGINT NOT NULL,
    tn        BIGINT NOT NULL,
    fn        BIGINT NOT NULL,
    "precision" DOUBLE,
    recall    DOUBLE,
    f1        DOUBLE,
    fnr       DOUBLE,
    fpr       DOUBLE,
    accuracy  DOUBLE,
    cost      DOUBLE
);

-- Tuning progress and per-epoch objective values: one row per trial per epoch, written while
-- training runs (so another connection can watch), kept with the version it produced.
CREATE TABLE IF NOT EXISTS sqlml.training_log (
    name              VARCHAR NOT NULL,
    version           INTEGER NOT NULL,
    trial             INTEGER NOT NULL,
    epoch             INTEGER NOT NULL,
    model_type        VARCHAR NOT NULL,
    resource          VARCHAR,             -- e.g. max_iter=50: the model's size after this epoch
    score             DOUBLE,              -- mean validation score over the folds (greater is better)
    running_average   DOUBLE,              -- this trial's mean score up to this epoch
    median_of_earlier DOUBLE,              -- median stopping rule: earlier trials' running averages
    event             VARCHAR NOT NULL,    -- epoch | completed | stopped_early | timed_out
    trials_planned    INTEGER,
    best_so_far       DOUBLE,
    elapsed_seconds   DOUBLE,
    remaining_seconds DOUBLE,
    logged_at         TIMESTAMP NOT NULL
);

-- Over/underfitting diagnosis (settings := {diagnose: true}): step 0 compares the training and
-- validation splits and holds the verdict; steps 1.. are the learning curve. Scores are in the
-- objective's own units; skills are 0 for a constant model, 1 for a perfect one (sqlml/diagnose.py).
CREATE TABLE IF NOT EXISTS sqlml.diagnosis (
    name             VARCHAR NOT NULL,
    version          INTEGER NOT NULL,
    step             INTEGER NOT NULL,
    kind             VARCHAR NOT NULL,     -- holdout | learning_curve
    train_rows       BIGINT,
    training_score   DOUBLE,
    validation_score DOUBLE,
    training_skill   DOUBLE,
    validation_skill DOUBLE,
    verdict          VARCHAR,              -- overfitting | underfitting | needs_more_data | good_fit | inconclusive
    remedy           VARCHAR
);

-- Reliability table of every binary model on its validation rows (10 equal-width bins of the
-- predicted probability; empty bins left out), with the Brier score on every row.
CREATE TABLE IF NOT EXISTS sqlml.calibration (
    name           VARCHAR NOT NULL,
    version        INTEGER NOT NULL,
    bin            INTEGER NOT NULL,
    lower_bound    DOUBLE NOT NULL,
    upper_bound    DOUBLE NOT NULL,
    mean_predicted DOUBLE NOT NULL,
    observed_rate  DOUBLE NOT NULL,
    n              BIGINT NOT NULL,
    brier_score    DOUBLE,
    method         VARCHAR NOT NULL        -- none | sigmoid | isotonic
);

-- Global explanations, computed at training time (sqlml/explain.py): permutation importance of
-- each input column on the validation rows, and the coefficients of linear models.
CREATE TABLE IF NOT EXISTS sqlml.feature_importance (
    name           VARCHAR NOT NULL,
    version        INTEGER NOT NULL,
    kind           VARCHAR NOT NULL,    -- permutation | coefficient | intercept
    rank           INTEGER,             -- 1 = most important (per kind and class)
    feature        VARCHAR,             -- the input column (NULL for an intercept)
    term           VARCHAR,             -- the transformed column a coefficient multiplies
    class_label    VARCHAR,             -- the class a coefficient pushes towards
    importance     DOUBLE,              -- mean drop of the objective when the column is shuffled
    importance_std DOUBLE,
    coefficient    DOUBLE
);

-- Per input column, the value it is replaced by to explain one prediction of a non-linear model.
CREATE TABLE IF NOT EXISTS sqlml.explain_baselines (
    name    VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    feature VARCHAR NOT NULL,
    value   VARCHAR              -- JSON: median, most frequent value, or null
);

-- The arrays a model compiled to SQL reads when it scores (sqlml/compile/params.py): tree node
-- arrays, coefficient vectors, vocabularies. Kept as data so that a generated function's SQL
-- stays small and of one shape whatever the model's size, and binds in milliseconds.
CREATE TABLE IF NOT EXISTS sqlml.model_params (
    name    VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    key     VARCHAR NOT NULL,     -- what the array is, e.g. 'trees.threshold'
    ints    BIGINT[],             -- exactly one of the three holds the array
    doubles DOUBLE[],
    texts   VARCHAR[]
);

-- Validation rows' actual and predicted values of binary and regression models (schema version
-- 5), from which the model report draws its curves (sqlml/report): actual is 1/0 (positive class
-- or not) and predicted P(positive) for a binary model; the values for a regression. At most
-- 20,000 rows per version (a seeded sample of a larger validation split).
CREATE TABLE IF NOT EXISTS sqlml.validation_predictions (
    name      VARCHAR NOT NULL,
    version   INTEGER NOT NULL,
    "row"     BIGINT NOT NULL,       -- position in the validation split
    actual    DOUBLE,
    predicted DOUBLE
);

-- The training data's profile, one row per feature (and one for the model's scores), written with
-- the version it describes; ml_drift (sql/drift.sql) compares a query's rows with it.
-- kind numeric | text_length | score: decile bins (bin_upper: each bin's upper edge, the last
-- +inf; bin_share: training share per bin) and the training CDF at up to 99 percentiles (cdf_at,
-- cdf) for the Kolmogorov-Smirnov distance. kind category: the 50 most frequent values and their
-- shares, other_share for the rest; complete when the column had no more distinct values.
CREATE TABLE IF NOT EXISTS sqlml.training_profiles (
    name           VARCHAR NOT NULL,
    version        INTEGER NOT NULL,
    feature        VARCHAR NOT NULL,    -- the input column ('ml_score' for the model's scores)
    kind           VARCHAR NOT NULL,    -- numeric | category | text_length | score
    column_type    VARCHAR,             -- DuckDB type at training
    rows           BIGINT NOT NULL,     -- rows profiled (validation rows for kind score)
    missing_rate   DOUBLE NOT NULL,
    mean           DOUBLE,
    std            DOUBLE,
    bin_upper      DOUBLE[],
    bin_share      DOUBLE[],
    cdf_at         DOUBLE[],
    cdf            DOUBLE[],
    categories     VARCHAR[],
    category_share DOUBLE[],
    other_share    DOUBLE,
    complete       BOOLEAN
);

-- Forecast models (problem_type := 'forecast', schema version 7). One row per series: its
-- values of the series columns (as text, in settings series_cols' order; the generated functions
-- cast them back), the method chosen and the seasonality used, the observed and filled periods,
-- the scales of the scaled metrics (the seasonal naive in-sample mean absolute and squared
-- errors; NULL for a constant history) and the series' backtest metrics.
CREATE TABLE IF NOT EXISTS sqlml.forecast_series (
    name           VARCHAR NOT NULL,
    version        INTEGER NOT NULL,
    series_id      VARCHAR NOT NULL,    -- 'store=1, dept=A'; the target's name for one series
    series         VARCHAR[] NOT NULL,
    method         VARCHAR,
    season_length  INTEGER,
    points         BIGINT NOT NULL,     -- observed periods
    filled         BIGINT NOT NULL,     -- missing periods and NULL targets filled (settings fill)
    first_period   TIMESTAMP NOT NULL,
    last_period    TIMESTAMP NOT NULL,
    scale          DOUBLE,              -- seasonal naive in-sample mean absolute error
    scale_squared  DOUBLE,              -- seasonal naive in-sample mean squared error
    mase           DOUBLE,
    smape          DOUBLE,
    rmsse          DOUBLE,
    coverage       DOUBLE,
    scaled_pinball DOUBLE,
    notes          VARCHAR
);

-- The stored forecasts: one row per series and horizon step, the quantiles' values in the order
-- of the version's quantiles (parameters $.settings.quantiles), non-decreasing. period is the
-- time column's value as a TIMESTAMP (a TIMESTAMPTZ's in UTC).
CREATE TABLE IF NOT EXISTS sqlml.forecasts (
    name      VARCHAR NOT NULL,
    version   INTEGER NOT NULL,
    series_id VARCHAR NOT NULL,
    step      INTEGER NOT NULL,
    period    TIMESTAMP NOT NULL,
    "values"  DOUBLE[] NOT NULL
);

-- The rolling-origin backtest AUTO chose by and the intervals were calibrated on: per series,
-- window, horizon step and quantile, the actual and the forecast made before it.
CREATE TABLE IF NOT EXISTS sqlml.forecast_backtest (
    name      VARCHAR NOT NULL,
    version   INTEGER NOT NULL,
    series_id VARCHAR NOT NULL,
    "window"  INTEGER NOT NULL,
    step      INTEGER NOT NULL,
    period    TIMESTAMP NOT NULL,
    actual    DOUBLE,
    quantile  DOUBLE NOT NULL,
    forecast  DOUBLE
);

-- Flags the forecasting engine raised per series: too_short_for_seasonality, intermittent,
-- flat_forecast (FROM ml_diagnose(...)).
CREATE TABLE IF NOT EXISTS sqlml.forecast_diagnostics (
    name      VARCHAR NOT NULL,
    version   INTEGER NOT NULL,
    series_id VARCHAR NOT NULL,
    flag      VARCHAR NOT NULL,
    detail    VARCHAR
);

-- Every recommender's active item factors by model name, for pure-SQL ml_similar_items; rebuilt
-- by sqlml/catalog/store.py refresh_recommender_items whenever an active version changes.
CREATE VIEW IF NOT EXISTS sqlml.recommender_items AS
    SELECT NULL::VARCHAR AS model, NULL::VARCHAR AS item, NULL::BIGINT AS ordinal,
           NULL::DOUBLE[] AS factors WHERE false;
