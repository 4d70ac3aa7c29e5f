"""sqlml.spec is the one declaration of ml_create_model's options: the installed macro, the
Python API, the Redshift mapping and the training registries must agree with it, and every
invalid option gets the validator's message (option, rule, value, remedy)."""

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import sqlml
from sqlml import api, spec, sqlfiles
from sqlml.catalog import generated
from sqlml.errors import TrainingError
from sqlml.recommend import fit as recommend_fit
from sqlml.recommend import train as recommend_train
from sqlml.redshift import mapping
from sqlml.train import estimators, evaluation, preprocessing, supervised, tuning

ROOT = Path(__file__).resolve().parents[1]


# -- the installed macro ------------------------------------------------------------------------
def _macro_row(con):
    return con.execute(
        "SELECT parameters, macro_definition FROM duckdb_functions() "
        "WHERE function_name = 'ml_create_model'").fetchall()


def test_installed_macro_has_the_spec_parameters_in_order(con):
    rows = _macro_row(con)
    assert len(rows) == 1
    parameters, definition = rows[0]
    assert parameters == list(spec.PARAM_NAMES)
    # ... and passes them on to the UDF in the same order.
    passed = definition[definition.index("(") + 1:definition.rindex(")")]
    assert [a.strip().strip('"') for a in passed.split(",")] == list(spec.PARAM_NAMES)


def test_stored_macro_read_back_read_only(tmp_path):
    path = tmp_path / "m.duckdb"
    sqlml.connect(path).close()
    con = sqlml.connect(path, read_only=True)
    try:
        assert _macro_row(con)[0][0] == list(spec.PARAM_NAMES)
    finally:
        con.close()


def test_macro_defaults_are_the_spec_defaults():
    """The generated macro, called with only the required arguments, passes the defaults."""
    con = duckdb.connect()
    con.create_function(spec.UDF, lambda *a: json.dumps(a, default=float), None, "VARCHAR",
                        null_handling="special")
    # The macro reaches the UDF through the dispatcher a sqlml session creates.
    con.execute(next(s for s in generated.python_only_statements(temp=True)
                     if "__sqlml_call_create_model" in s))
    con.execute(spec.create_model_macro())
    got = json.loads(con.execute("SELECT ml_create_model('m', 'src')").fetchall()[0][0])
    want = ["m", "src", *(p.default for p in spec.PARAMS if not p.required)]
    assert got == want
    named = json.loads(con.execute(
        "SELECT ml_create_model('m', 'src', function := 'f', min_recall := 0.5)").fetchall()[0][0])
    assert named[spec.PARAM_NAMES.index("function")] == "f"
    assert named[spec.PARAM_NAMES.index("min_recall")] == 0.5


def test_macros_sql_does_not_declare_ml_create_model_itself():
    text = (ROOT / "sql" / "macros.sql").read_text()
    assert "MACRO ml_create_model" not in text and "{{ml_create_model}}" in text
    assert spec.create_model_macro() in sqlfiles.read("macros.sql")


# -- what reads names from the spec ------------------------------------------------------------
def test_python_api_accepts_exactly_the_spec_options(con):
    assert api._OPTIONS == spec.PARAM_NAMES[2:]
    with pytest.raises(TypeError, match=r"unexpected option 'model'; options are target, "
                                        r"function, problem_type"):
        sqlml.create_model(con, "m", "t", model="logistic")


def test_model_type_registry_matches_the_spec():
    assert tuple(estimators.MODEL_TYPES) == spec.MODEL_TYPES
    for m in spec.MODEL_TYPE_SPECS:
        registered = estimators.MODEL_TYPES[m.name]
        fits = {*(spec.CLASSIFICATION if registered.classifier else ()),
                *(("regression",) if registered.regressor else ())}
        assert fits == set(m.problem_types), m.name
    for kind, names in estimators.AUTO_CANDIDATES.items():
        assert set(names) <= set(spec.MODEL_TYPES), kind


def test_objectives_problem_types_and_preprocessors_match_the_spec():
    assert tuple(evaluation.OBJECTIVES) == spec.OBJECTIVES
    assert set(evaluation.DEFAULT_OBJECTIVE) == set(spec.SUPERVISED_PROBLEM_TYPES)
    for problem, objective in evaluation.DEFAULT_OBJECTIVE.items():
        kind = spec.OBJECTIVE_SPECS[spec.OBJECTIVES.index(objective)].applies
        assert supervised._fits(evaluation.OBJECTIVES[objective][1], problem), (problem, kind)
    assert estimators.PROBLEM_TYPES == spec.SUPERVISED_PROBLEM_TYPES
    assert set(spec.PROBLEM_TYPES) == {*spec.SUPERVISED_PROBLEM_TYPES, "recommendation",
                                       "forecast"}
    assert preprocessing.PREPROCESSORS == spec.PREPROCESSORS
    assert set(preprocessing.KIND_OF) == set(spec.PREPROCESSORS) - {"drop"}


def test_settings_registries_match_the_spec():
    assert supervised.DEFAULT_SETTINGS == spec.defaults(spec.SUPERVISED)
    assert recommend_train.SETTINGS == spec.defaults(spec.RECOMMENDATION)
    for key, default in tuning.SETTINGS.items():
        assert spec.SETTING[key].default == default
    # Every tuning setting of fit_recommender is a recommendation setting of the spec.
    kwargs = [p for p, v in inspect.signature(recommend_fit.fit_recommender).parameters.items()
              if v.kind is v.KEYWORD_ONLY]
    assert set(kwargs) <= set(spec.defaults(spec.RECOMMENDATION))
    for feedback in recommend_fit.DEFAULTS.values():
        assert set(feedback) <= set(spec.defaults(spec.RECOMMENDATION))


def test_redshift_mapping_reads_the_spec():
    assert set(mapping.MODEL_TYPES.values()) == {*spec.MODEL_TYPES, "auto"}
    assert set(mapping.PROBLEM_TYPES.values()) == {*spec.PROBLEM_TYPES, "auto"}
    # MODEL_TYPE FORECAST's objectives (Amazon Forecast's metrics) are accepted with a notice,
    # so those without a sqlml objective of the same name carry the forecast prefix instead.
    forecast = {v for v in mapping.OBJECTIVES.values() if v.startswith(mapping.FORECAST_PREFIX)}
    assert forecast <= {mapping.FORECAST_PREFIX + o for o in mapping.FORECAST_OBJECTIVES}
    assert {"forecast:MASE", "forecast:WAPE", "forecast:AverageWeightedQuantileLoss"} <= forecast
    objectives = set(mapping.OBJECTIVES.values()) - forecast
    assert set(spec.OBJECTIVES) <= objectives <= set(spec.OBJECTIVES)
    assert mapping.SETTINGS == (*(s.name for s in spec.SETTINGS), "fn_cost", "fp_cost",
                                "min_recall")
    assert mapping.SETTING_TYPES["max_cells"] == "an integer"
    assert mapping.SETTING_TYPES["median_stopping"] == "ON/OFF or TRUE/FALSE"


_HEAVY = ("sklearn", "numpy", "pandas", "duckdb", "pyarrow", "sqlml.train", "sqlml.recommend",
          "sqlml.score", "sqlml.compile")


def _imports(path: Path) -> list[str]:
    """Modules a file imports at its top level (not inside functions)."""
    out = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return out


@pytest.mark.parametrize("module", ["sqlml/spec.py", "sqlml/redshift/mapping.py",
                                    "sqlml/redshift/parser.py"])
def test_spec_and_statement_parser_import_no_training_code(module):
    heavy = [m for m in _imports(ROOT / module) if m.startswith(_HEAVY)]
    assert heavy == [], f"{module} imports {heavy}"


def test_parsing_a_statement_loads_no_training_code():
    code = ("import sys, sqlml.redshift.parser as p; "
            "p.parse(\"CREATE MODEL m FROM t TARGET y FUNCTION f IAM_ROLE default "
            "SETTINGS (S3_BUCKET 'b', MAX_RUNTIME 60)\"); "
            "print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    loaded = out.stdout.split()
    assert "sqlml.spec" in loaded
    assert [m for m in loaded if m.startswith(_HEAVY)] == []


def test_option_tables_markdown_lists_every_option():
    md = spec.option_tables_markdown()
    for name in (*spec.PARAM_NAMES, *spec.SETTING, *spec.PROBLEM_TYPES, *spec.MODEL_TYPES,
                 *spec.OBJECTIVES, *spec.PREPROCESSORS):
        assert f"| `{name}` |" in md, name
    out = subprocess.run([sys.executable, "-m", "sqlml.spec"], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout == md


# -- the validator: every invalid option, by its message ----------------------------------------
FN = "ml_create_model: "
BAD_SETTINGS = [
    ("test_size", 1.5, "setting test_size must be a fraction strictly between 0 and 1, got 1.5. "
                       "Use e.g. settings := {test_size: 0.2}."),
    ("random_state", -1, "setting random_state must be a non-negative integer, got -1. Use e.g. "
                         "settings := {random_state: 42}."),
    ("max_runtime", -1, "setting max_runtime must be a positive number, got -1. Use e.g. "
                        "settings := {max_runtime: 60}."),
    ("max_runtime", "60", "setting max_runtime must be a positive number, got '60'."),
    ("cv_folds", 1, "setting cv_folds must be a whole number of at least 2, got 1. Use e.g. "
                    "settings := {cv_folds: 3}."),
    ("split", "", "setting split must be text, got ''."),
    ("strategy", "grdi", "setting strategy 'grdi' is unknown. Did you mean 'grid'? Use one of: "
                         "'random', 'bayesian', 'grid', e.g. settings := {strategy: 'random'}."),
    ("max_trials", 0, "setting max_trials must be a whole number of at least 1, got 0. Use e.g. "
                      "settings := {max_trials: 4}."),
    ("max_parallel_trials", 1.5, "setting max_parallel_trials must be a whole number of at least "
                                 "1, got 1.5."),
    ("median_stopping", "yes", "setting median_stopping must be true or false, got 'yes'."),
    ("diagnose", "yes", "setting diagnose must be true or false, got 'yes'. Use e.g. settings := "
                        "{diagnose: true}."),
    ("calibrate", "platt", "setting calibrate 'platt' is unknown. Use one of: 'sigmoid', "
                           "'isotonic', e.g. settings := {calibrate: 'sigmoid'}."),
    ("max_cells", "abc", "setting max_cells (rows x columns to train on at most) must be a "
                         "positive integer, got 'abc'. Use e.g. settings := {max_cells: 1000000}."),
    ("feedback", "stars", "setting feedback 'stars' is unknown. Use one of: 'explicit', "
                          "'implicit', e.g. settings := {feedback: 'explicit'}."),
    ("factors", 0, "setting factors must be a positive integer, got 0. Use e.g. settings := "
                   "{factors: 10}."),
    ("recency_half_life", -1, "setting recency_half_life must be a non-negative number, got -1."),
    ("k", 0, "setting k (the cut-off of the stored ranking metrics) must be a positive integer, "
             "got 0. Use e.g. settings := {k: 10}."),
]


BAD_PARAMS = [
    ("problem_type", "regresion", "problem_type 'regresion' is unknown. Did you mean "
                                  "'regression' or 'recommendation'? Use 'auto' or one of: "
                                  "'binary_classification', 'multiclass_classification', "
                                  "'regression', 'recommendation', 'forecast'."),
    ("model_type", "xgboots", "model_type 'xgboots' is unknown."),
    ("model_type", "randomforest", "model_type 'randomforest' is unknown. Did you mean "
                                   "'random_forest'? Use 'auto' or one of: 'logistic', "),
    ("objective", "acuracy", "objective 'acuracy' is unknown. Did you mean 'accuracy' or 'auc'?"),
    ("objective", 3, "objective 3 is unknown. Use 'auto' or one of: 'auc', "),
    ("fn_cost", -3, "fn_cost must be a non-negative number (the cost of one missed positive), "
                    "got -3. Pass e.g. fn_cost := 3."),
    ("fp_cost", "x", "fp_cost must be a non-negative number (the cost of one false alarm), got "
                     "'x'. Pass e.g. fp_cost := 1."),
    ("fp_cost", float("nan"), "fp_cost must be a non-negative number"),
    ("min_recall", 1.5, "min_recall must be a number in [0, 1], got 1.5. Pass e.g. "
                        "min_recall := 0.85."),
]


BAD_OPTIONS = ([(spec.SETTING[key], value, message) for key, value, message in BAD_SETTINGS]
               + [(spec.PARAM[key], value, message) for key, value, message in BAD_PARAMS])


@pytest.mark.parametrize(("option", "value", "message"), BAD_OPTIONS,
                         ids=[f"{o.name}={v!r}" for o, v, _ in BAD_OPTIONS])
def test_each_invalid_option_names_rule_value_and_remedy(option, value, message):
    with pytest.raises(TrainingError) as info:
        spec.check(option, value)
    assert str(info.value).startswith(FN + message)


def test_valid_values_come_back_normalised():
    assert spec.check(spec.PARAM["model_type"], "Random_Forest") == "random_forest"
    assert spec.check(spec.PARAM["problem_type"], None) == "auto"
    assert spec.check(spec.PARAM["fn_cost"], None) is None
    assert spec.check(spec.SETTING["calibrate"], False) is None
    assert spec.check(spec.SETTING["calibrate"], "Sigmoid") == "sigmoid"
    assert spec.check(spec.SETTING["diagnose"], None) is False
    assert spec.check_settings({"max_runtime": 5})["max_runtime"] == 5
    assert spec.check_settings({}) == supervised.DEFAULT_SETTINGS


def test_unknown_setting_names_suggest_the_closest():
    with pytest.raises(TrainingError, match=r"setting 'max_runtme' is unknown\. Did you mean "
                                            r"'max_runtime' or .*\? Known settings: test_size, "):
        spec.check_settings({"max_runtme": 5})
    with pytest.raises(TrainingError, match=r"setting 'user_column' is unknown for recommendation "
                                            r"models\. Did you mean 'user_col'"):
        spec.check_settings({"user_column": "u"}, spec.RECOMMENDATION)
    # A recommender's setting is not one of a supervised model's, and the other way round.
    with pytest.raises(TrainingError, match=r"setting 'user_col' is unknown\."):
        spec.check_settings({"user_col": "u"})
    with pytest.raises(TrainingError, match=r"'cv_folds' is unknown for recommendation"):
        spec.check_settings({"cv_folds": 3}, spec.RECOMMENDATION)


def test_preprocessor_choice_suggests_the_closest():
    with pytest.raises(TrainingError, match=r"preprocessor 'onehot' for column 'plan' is unknown\. "
                                            r"Did you mean 'one_hot'\? Use one of: 'standard'"):
        spec.check_choice("preprocessor", "onehot", spec.PREPROCESSORS, about="for column 'plan'")


def test_bind_maps_positional_arguments_by_name():
    args = list(range(len(spec.PARAMS)))
    bound = spec.bind(args)
    assert list(bound) == list(spec.PARAM_NAMES) and bound["min_recall"] == 12
    with pytest.raises(TrainingError, match=r"expected 13 arguments"):
        spec.bind(args[:-1])


# -- the same messages through SQL (they are raised before any data is read) -------------------
@pytest.mark.parametrize(("option", "message"), [
    ("model_type := 'xgboots'", "model_type 'xgboots' is unknown."),
    ("problem_type := 'clasification'", "problem_type 'clasification' is unknown."),
    ("objective := 'acuracy'", "objective 'acuracy' is unknown. Did you mean 'accuracy'"),
    ("settings := {cv_folds: 1}", "setting cv_folds must be a whole number of at least 2, got 1."),
    ("settings := {max_runtme: 1}", "setting 'max_runtme' is unknown. Did you mean "
                                    "'max_runtime'"),
    ("settings := '{\"strategy\": \"baysian\"}'", "setting strategy 'baysian' is unknown. Did you "
                                                   "mean 'bayesian'?"),
    ("min_recall := 2", "min_recall must be a number in [0, 1], got 2."),
])
def test_sql_call_reports_the_validator_message(con, option, message):
    with pytest.raises(duckdb.Error) as info:
        con.execute(f"SELECT ml_create_model('m', 'no_such_table', target := 'y', {option})")
    assert FN + message in str(info.value)


def test_recommender_settings_are_checked_by_the_spec(con):
    with pytest.raises(duckdb.Error) as info:
        con.execute("SELECT ml_create_model('r', 'no_such_table', problem_type := "
                    "'recommendation', settings := {user_col: 'u', item_col: 'i', k: 0})")
    assert FN + "setting k (the cut-off of the stored ranking metrics) must be a positive " \
                "integer, got 0." in str(info.value)
