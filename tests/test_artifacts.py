"""sqlml.catalog.artifacts: models round-trip, and a hand-tampered artifact is refused without
running."""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import subprocess
import sys
import types
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import (
    LabelEncoder,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)
from threadpoolctl import threadpool_limits

import sqlml
from sqlml.catalog import artifacts
from sqlml.errors import ArtifactError
from sqlml.train.scaled_mlp import ScaledTargetMLPRegressor

N = 160
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi".split()


# Tiny data: models do not converge, and threads cost more than they save.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module", autouse=True)
def _single_threaded():
    with threadpool_limits(limits=1):
        yield


def make_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "num": rng.normal(size=N),
        "amount": rng.exponential(size=N),
        "plan": rng.choice([f"p{i}" for i in range(12)], N).astype(object),
        "size": rng.choice(["small", "large"], N).astype(object),
        # the tokens a schema walk must not mistake for node fields
        "text": [" ".join(rng.choice(WORDS, 4)) + " file __module__ __class__ __loader__"
                 for _ in range(N)],
    })
    df.loc[::9, "num"] = np.nan
    df.loc[::11, "plan"] = np.nan
    return df


X = make_frame()
Y_BINARY = np.where(X["num"].fillna(0) + np.random.default_rng(1).normal(size=N) > 0, "yes", "no")
Y_MULTI = np.random.default_rng(2).choice(["a", "b", "c"], N)
Y_REG = X["amount"].to_numpy() * 3 + np.random.default_rng(3).normal(size=N)


def prep(dense: bool = True) -> ColumnTransformer:
    """The same transformer kinds as sqlml.train.preprocessing.build_transformer."""
    return ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True)),
                          ("scale", StandardScaler())]), ["num"]),
        ("amount", MinMaxScaler(), ["amount"]),
        ("plan", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
                           ("encode", OneHotEncoder(handle_unknown="infrequent_if_exist",
                                                    max_categories=6, sparse_output=not dense))]),
         ["plan"]),
        ("size", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["size"]),
        ("text", TfidfVectorizer(ngram_range=(1, 2), min_df=2) if dense else FeatureUnion([
            ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=2))]),
         "text"),
    ], sparse_threshold=0.0 if dense else 1.0)


def model(est, dense: bool = True) -> Pipeline:
    return Pipeline([("prep", prep(dense)), ("model", est)])


# name: (estimator, target, dense input)
MODELS = {
    "logistic_binary": (LogisticRegression(max_iter=500), Y_BINARY, True),
    "logistic_multiclass": (LogisticRegression(max_iter=500), Y_MULTI, False),
    "linear_regression": (LinearRegression(), Y_REG, True),
    "ridge": (Ridge(), Y_REG, False),
    "lasso": (Lasso(alpha=0.01), Y_REG, True),
    "elastic_net": (ElasticNet(alpha=0.01), Y_REG, True),
    "random_forest_classifier": (RandomForestClassifier(n_estimators=5, random_state=0), Y_MULTI,
                                 True),
    "random_forest_regressor": (RandomForestRegressor(n_estimators=5, random_state=0), Y_REG,
                                True),
    "hgb_binary": (HistGradientBoostingClassifier(max_iter=5), Y_BINARY, True),
    "hgb_multiclass": (HistGradientBoostingClassifier(max_iter=5), Y_MULTI, True),
    "hgb_regressor": (HistGradientBoostingRegressor(max_iter=5), Y_REG, True),
    **{f"hgb_{loss}": (HistGradientBoostingRegressor(max_iter=3, loss=loss, quantile=0.3),
                       Y_REG - Y_REG.min() + 0.1, True)
       for loss in ("absolute_error", "gamma", "poisson", "quantile")},
    "knn_classifier_sparse": (KNeighborsClassifier(algorithm="brute", weights="distance"), Y_MULTI,
                              False),
    "knn_regressor": (KNeighborsRegressor(algorithm="brute"), Y_REG, True),
    "mlp_classifier": (MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, early_stopping=True,
                                     random_state=0), Y_BINARY, True),
    "mlp_regressor_sgd": (MLPRegressor(hidden_layer_sizes=(8,), max_iter=30, solver="sgd",
                                       random_state=0), Y_REG, False),
    # What model_type 'mlp' trains for regression; plain MLPRegressor stays for older files.
    "mlp_regressor_scaled_target": (ScaledTargetMLPRegressor(hidden_layer_sizes=(8,), max_iter=30,
                                                             random_state=0), Y_REG, True),
    "calibrated_sigmoid": (CalibratedClassifierCV(LogisticRegression(), method="sigmoid", cv=3),
                           Y_BINARY, True),
    "calibrated_isotonic": (CalibratedClassifierCV(RandomForestClassifier(n_estimators=3,
                                                                          random_state=0),
                                                   method="isotonic", cv=3), Y_MULTI, True),
}


@pytest.fixture(scope="module")
def fitted() -> dict[str, Pipeline]:
    return {name: model(est, dense).fit(X, y) for name, (est, y, dense) in MODELS.items()}


@pytest.fixture(scope="module")
def blobs(fitted) -> dict[str, bytes]:
    return {name: artifacts.dumps(m) for name, m in fitted.items()}


def outputs(m, x) -> list[np.ndarray]:
    return [m.predict(x)] + ([m.predict_proba(x)] if hasattr(m, "predict_proba") else [])


@pytest.mark.parametrize("name", MODELS)
def test_round_trip_predicts_identically(name, fitted, blobs):
    loaded = artifacts.loads(blobs[name])
    assert type(loaded) is Pipeline and loaded is not fitted[name]
    x = make_frame(seed=7)  # unseen rows, with unknown categories and words
    for before, after in zip(outputs(fitted[name], x), outputs(loaded, x), strict=True):
        np.testing.assert_array_equal(before, after)


def test_label_encoder_round_trips():
    enc = LabelEncoder().fit(Y_MULTI)
    loaded = artifacts.loads(artifacts.dumps(enc))
    np.testing.assert_array_equal(loaded.transform(Y_MULTI), enc.transform(Y_MULTI))


def test_allow_list_is_exactly_what_the_models_use(blobs):
    used = set().union(*(artifacts._audit(b, "test") for b in blobs.values()))
    used |= artifacts._audit(artifacts.dumps(LabelEncoder().fit(Y_MULTI)), "test")
    assert used == artifacts.installed_types()  # no type missing, no entry unused


def test_allow_list_is_a_sorted_literal_of_real_types():
    names = artifacts.ALLOWED_TYPES
    assert isinstance(names, tuple) and len(set(names)) == len(names)
    assert list(names) == sorted(names, key=str.lower)
    for name in names:
        module, _, attr = name.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), attr), type), name
    older = artifacts.OLDER_SKLEARN_TYPES
    assert isinstance(older, tuple) and not set(older) & set(names)
    assert list(older) == sorted(older, key=str.lower)


def test_sqlml_pipelines_round_trip():
    from sqlml.train import estimators, preprocessing

    feature = preprocessing.Feature
    frame = X.assign(day=pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(N), unit="D"))
    features = [feature("num", "DOUBLE", "numeric", "standard"),
                feature("amount", "DOUBLE", "numeric", "minmax"),
                feature("day", "DATE", "date", "date"),
                feature("plan", "VARCHAR", "categorical", "one_hot"),
                feature("size", "VARCHAR", "categorical", "ordinal"),
                feature("text", "VARCHAR", "text", "tfidf")]
    small = {"random_forest": {"n_estimators": 3, "n_jobs": 1},
             "gradient_boosting": {"max_iter": 3}, "mlp": {"max_iter": 5}}
    for mt in estimators.MODEL_TYPES.values():
        problem, y = ("regression", Y_REG) if mt.classifier is None else (
            "binary_classification", Y_BINARY)
        est = mt.make(problem, small.get(mt.name, {}), 0)
        pipe = Pipeline([("prep", preprocessing.build_transformer(features, not mt.sparse_ok)),
                         ("model", est)]).fit(frame, y)
        loaded = artifacts.loads(artifacts.dumps(pipe))
        np.testing.assert_array_equal(loaded.predict(frame), pipe.predict(frame))


def test_format_and_sha256():
    assert artifacts.FORMAT.startswith("skops-") and artifacts.FORMAT.count(".") == 1
    assert artifacts.sha256(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


# -- tampering helpers: an artifact is a zip of schema.json and .npy files ----------------------

def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def rezip(files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def nodes(tree, predicate) -> list[dict]:
    """skops nodes matching predicate, in document order (the order of the model's lists)."""
    found = []

    def visit(x):
        if isinstance(x, dict):
            if isinstance(x.get("__loader__"), str) and predicate(x):
                found.append(x)
            for v in x.values():
                visit(v)
        elif isinstance(x, list):
            for v in x:
                visit(v)

    visit(tree)
    return found


def tamper(data: bytes, edit) -> bytes:
    """Apply edit(schema, files) to the unpacked artifact and pack it again."""
    files = unzip(data)
    schema = json.loads(files["schema.json"])
    edit(schema, files)
    files["schema.json"] = json.dumps(schema).encode()
    return rezip(files)


def edit_npy(files: dict[str, bytes], name: str, change) -> None:
    array = np.load(io.BytesIO(files[name]), allow_pickle=False)
    change(array)
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    files[name] = buf.getvalue()


def json_node(value) -> dict:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True}


def tuple_node(*items) -> dict:
    return {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
            "content": list(items)}


def refuses(data: bytes, *fragments: str, remedy: str = artifacts.REMEDY) -> str:
    with pytest.raises(ArtifactError) as info:
        artifacts.loads(data)
    message = str(info.value)
    for fragment in (*fragments, remedy):
        assert fragment in message
    return message


# -- (1) a schema that names code to run --------------------------------------------------------

def calls(module: str, function: str, args: dict) -> dict:
    # skops calls module.function(*args) to build this node
    return {"__class__": function, "__module__": module, "__loader__": "ConstructorFromReduceNode",
            "content": args}


def popen_via_array(marker, files) -> dict:
    # an allowed node kind: skops builds subprocess.Popen(array) from an array of strings
    buf = io.BytesIO()
    np.save(buf, np.array([sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]))
    files["argv.npy"] = buf.getvalue()
    return {"__class__": "Popen", "__module__": "subprocess", "__loader__": "NdArrayNode",
            "type": "numpy", "file": "argv.npy"}


PAYLOADS = {
    "os.system": lambda marker, files: calls("os", "system", tuple_node(json_node(
        f"touch {marker}"))),
    "builtins.eval": lambda marker, files: calls("builtins", "eval", tuple_node(json_node(
        f"open({str(marker)!r}, 'w').close()"))),
    "subprocess.Popen": popen_via_array,
}


@pytest.mark.parametrize("target", PAYLOADS)
def test_code_named_in_the_schema_never_runs(target, blobs, tmp_path):
    marker = tmp_path / "pwned"

    def plant(schema, files):  # as the pipeline's `memory` parameter
        schema["content"]["content"]["memory"] = PAYLOADS[target](marker, files)

    data = tamper(blobs["logistic_binary"], plant)
    # the payload is live: plain skops, told to trust what the file names, runs it (skops 0.11,
    # the oldest supported, has no loader for that node kind, so there it cannot run at all)
    try:
        loaded = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    except TypeError as exc:
        assert "Can't find loader ConstructorFromReduceNode" in str(exc)
    else:
        if target == "subprocess.Popen":
            loaded.memory.wait()
        assert marker.exists()
        marker.unlink()

    message = refuses(data, target, "refuses to load objects it did not write")
    assert not marker.exists()
    if target != "subprocess.Popen":
        assert "ConstructorFromReduceNode" in message


def test_an_allowed_type_through_a_calling_node_kind_is_refused(blobs):
    def plant(schema, files):
        schema["content"]["content"]["memory"] = calls("sklearn.pipeline", "Pipeline",
                                                       tuple_node(json_node([])))

    refuses(tamper(blobs["ridge"], plant), "node kinds sqlml never writes",
            "ConstructorFromReduceNode")


def test_a_type_skops_trusts_by_default_but_sqlml_does_not_write_is_refused(blobs):
    def plant(schema, files):  # FunctionTransformer is a scikit-learn estimator, so skops-trusted
        (est,) = nodes(schema, lambda n: n["__class__"] == "Ridge")
        est["__module__"], est["__class__"] = ("sklearn.preprocessing._function_transformer",
                                               "FunctionTransformer")

    data = tamper(blobs["ridge"], plant)
    assert "FunctionTransformer" not in str(sio.get_untrusted_types(data=data))
    refuses(data, "sklearn.preprocessing._function_transformer.FunctionTransformer")


# -- (2) pickles --------------------------------------------------------------------------------

class Exploit:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickles_are_refused(fitted, tmp_path):
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    joblib.dump(fitted["ridge"], buf)
    for data in (pickle.dumps(fitted["ridge"]), buf.getvalue(), pickle.dumps(Exploit(marker))):
        refuses(data, "not a readable sqlml artifact", "pickle")
    assert not marker.exists()
    files = unzip(artifacts.dumps(fitted["ridge"]))
    files["schema.json"] = pickle.dumps(Exploit(marker))
    refuses(rezip(files), "not a readable sqlml artifact")
    assert not marker.exists()


# -- (3) damaged files --------------------------------------------------------------------------

def test_garbage_and_truncated_bytes_are_refused(blobs):
    data = blobs["random_forest_classifier"]
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    for bad in (np.random.default_rng(0).bytes(5000), data[: len(data) // 2], data[:-30],
                bytes(flipped), b"PK\x03\x04" + b"\x00" * 100):
        refuses(bad)
    for bad in (b"", None, "schema.json"):
        refuses(bad, "empty or not bytes")


def test_broken_schemas_are_refused(blobs):
    files = unzip(blobs["ridge"])
    refuses(rezip({k: v for k, v in files.items() if k != "schema.json"}), "schema.json")
    refuses(rezip({**files, "schema.json": b"{not json"}), "JSONDecodeError")
    deep = b"[" * 100_000 + b"]" * 100_000
    refuses(rezip({**files, "schema.json": deep}), "not a readable sqlml artifact")

    def drop_loader(schema, files):
        del nodes(schema, lambda n: n["__class__"] == "Ridge")[0]["__loader__"]

    refuses(tamper(blobs["ridge"], drop_loader), "KeyError")


@pytest.mark.parametrize(("protocol", "fragment"), [
    (99, "newer than protocol"), ("2", "invalid skops protocol"), (-1, "invalid skops protocol"),
    (True, "invalid skops protocol")])
def test_unknown_protocols_are_refused(blobs, protocol, fragment):
    def set_protocol(schema, files):
        schema["protocol"] = protocol

    remedy = "Upgrade sqlml and skops" if protocol == 99 else artifacts.REMEDY
    refuses(tamper(blobs["ridge"], set_protocol), fragment, remedy=remedy)


def test_memory_bombs_are_refused(blobs):
    refuses(rezip(unzip(blobs["ridge"]), zipfile.ZIP_DEFLATED), "compressed members")

    def repeat_an_array(schema, files):  # 20 loads of one 800 kB array
        buf = io.BytesIO()
        np.save(buf, np.zeros(100_000))
        files["zeros.npy"] = buf.getvalue()
        array = {"__class__": "ndarray", "__module__": "numpy", "__loader__": "NdArrayNode",
                 "type": "numpy", "file": "zeros.npy"}
        schema["content"]["content"]["memory"] = {
            "__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
            "content": [array] * 20}

    refuses(tamper(blobs["ridge"], repeat_an_array), "unpacks to")
    # while one array object named 20 times is stored once and loaded once
    enc = LabelEncoder().fit(Y_MULTI)
    enc.shared_ = [np.zeros(100_000)] * 20
    assert len(artifacts.loads(artifacts.dumps(enc)).shared_) == 20


# -- (4, 5) trees whose indices point out of bounds or backwards ---------------------------------

def forest_tree_nodes(schema, i: int) -> str:
    tree = nodes(schema, lambda n: n["__loader__"] == "TreeNode")[i]
    return tree["content"]["content"]["nodes"]["file"]


def predictor_nodes(schema, i: int) -> str:
    tree = nodes(schema, lambda n: n["__class__"] == "TreePredictor")[i]
    return tree["content"]["content"]["nodes"]["file"]


def root(array, is_leaf) -> int:
    assert not is_leaf(array)[0], "this tamper needs a tree with splits"
    return 0


def first_split(array, is_leaf) -> int:
    return int(np.flatnonzero(~is_leaf(array))[1])  # a split node below the root


def set_field(file_of, i, field, value, is_leaf, at=root):
    def edit(schema, files):
        def change(array):
            array[field][at(array, is_leaf)] = value(array, at(array, is_leaf))
        edit_npy(files, file_of(schema, i), change)
    return edit


def tree_leaf(array):
    return array["left_child"] == -1


def predictor_leaf(array):
    return array["is_leaf"] == 1


TREE_CASES = {
    # name: (model, edit, expected fragments)
    "forest child out of range": ("random_forest_classifier",
        set_field(forest_tree_nodes, 2, "left_child", lambda a, j: 10**9, tree_leaf),
        ["tree 2 of RandomForestClassifier", "left child", "1000000000 at node 0"]),
    "forest child points to an ancestor": ("random_forest_regressor",
        set_field(forest_tree_nodes, 1, "right_child", lambda a, j: 0, tree_leaf, first_split),
        ["tree 1 of RandomForestRegressor", "right child must come after it"]),
    "forest child points to itself": ("random_forest_classifier",
        set_field(forest_tree_nodes, 0, "left_child", lambda a, j: j, tree_leaf, first_split),
        ["tree 0 of RandomForestClassifier", "left child must come after it"]),
    "forest leaf with one child": ("random_forest_classifier",
        set_field(forest_tree_nodes, 0, "right_child", lambda a, j: 1, tree_leaf,
                  lambda a, is_leaf: int(np.flatnonzero(is_leaf(a))[0])),
        ["tree 0 of RandomForestClassifier", "a leaf's right child must be -1"]),
    "forest feature out of range": ("random_forest_classifier",
        set_field(forest_tree_nodes, 3, "feature", lambda a, j: 10**6, tree_leaf),
        ["tree 3 of RandomForestClassifier", "feature must be in [0,", "1000000 at node 0"]),
    "hgb child out of range": ("hgb_binary",
        set_field(predictor_nodes, 1, "left", lambda a, j: 4_000_000_000, predictor_leaf),
        ["tree 0 of iteration 1 of HistGradientBoostingClassifier", "left child"]),
    "hgb child points to an ancestor": ("hgb_regressor",
        set_field(predictor_nodes, 2, "right", lambda a, j: 0, predictor_leaf, first_split),
        ["tree 0 of iteration 2 of HistGradientBoostingRegressor", "must come after it"]),
    "hgb feature out of range": ("hgb_multiclass",
        set_field(predictor_nodes, 4, "feature_idx", lambda a, j: 10**6, predictor_leaf),
        ["tree 1 of iteration 1 of HistGradientBoostingClassifier", "feature must be in"]),
    "hgb categorical split": ("hgb_binary",
        set_field(predictor_nodes, 0, "is_categorical", lambda a, j: 1, predictor_leaf),
        ["tree 0 of iteration 0", "sqlml never stores categorical splits"]),
}


@pytest.mark.parametrize("case", TREE_CASES)
def test_tampered_trees_are_refused(case, blobs):
    name, edit, fragments = TREE_CASES[case]
    refuses(tamper(blobs[name], edit), "failed validation", *fragments)


def test_tree_node_count_must_match_the_stored_nodes(blobs):
    def shrink(schema, files):
        tree = nodes(schema, lambda n: n["__loader__"] == "TreeNode")[1]
        count = tree["content"]["content"]["node_count"]
        count.update(content=str(int(json.loads(count["content"])) - 2), __id__=None)

    refuses(tamper(blobs["random_forest_classifier"], shrink), "tree 1 of RandomForestClassifier",
            "node_count must equal the number of stored nodes")


def test_hgb_iterations_must_hold_one_tree_per_class(blobs):
    def drop_one(schema, files):
        (predictors,) = nodes(schema, lambda n: n["__class__"] == "HistGradientBoostingClassifier")
        predictors["content"]["content"]["_predictors"]["content"][3]["content"].pop()

    refuses(tamper(blobs["hgb_multiclass"], drop_one), "iteration 3 of HistGradientBoosting",
            "n_trees_per_iteration_ = 3 trees", "got 2")


def test_the_tree_check_prevents_a_real_crash(tmp_path):
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(
        np.c_[np.arange(N), np.arange(N) % 7], np.arange(N) % 2)
    edit = set_field(forest_tree_nodes, 0, "left_child", lambda a, j: 10**9, tree_leaf)
    path = tmp_path / "tampered.skops"
    path.write_bytes(tamper(artifacts.dumps(forest), edit))
    refuses(path.read_bytes(), "tree 0 of RandomForestClassifier")
    script = (  # what loading it without sqlml's checks does
        "import sys, numpy as np, skops.io as sio\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "sio.loads(data, trusted=sio.get_untrusted_types(data=data)).predict(np.ones((9, 2)))\n")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          timeout=120)
    assert done.returncode < 0, done.stderr.decode()[-500:]  # killed by a signal (SIGSEGV)


# -- (6) KNN with a stored search tree, and other indices scikit-learn trusts -------------------

def test_knn_with_a_kd_tree_is_refused():
    knn = model(KNeighborsClassifier(algorithm="kd_tree")).fit(X, Y_MULTI)
    with pytest.raises(ArtifactError, match="does not store this Pipeline, as it would refuse"):
        artifacts.dumps(knn)
    refuses(sio.dumps(knn), "sklearn.neighbors._kd_tree.KDTree")


def _step(m, name):
    return m.named_steps["prep"].named_transformers_[name]


IN_MEMORY_CASES = {
    "vocabulary index": ("logistic_binary",
                         lambda m: _step(m, "text").vocabulary_.update(alpha=10**8),
                         "vocabulary_ columns must be integers in [0,"),
    "one-hot output width": ("logistic_binary",
                             lambda m: setattr(_step(m, "plan")[-1], "_n_features_outs", [2]),
                             "codes must be in [0, _n_features_outs[0] = 2)"),
    "one-hot infrequent mapping": ("logistic_binary",
                                   lambda m: _step(m, "plan")[-1]
                                   ._default_to_infrequent_mappings[0].__setitem__(0, 10**7),
                                   "feature 0 of OneHotEncoder"),
    "one-hot unsorted numbers": ("logistic_binary",
                                 lambda m: _step(m, "plan")[-1].categories_.__setitem__(
                                     0, np.array([3.0, 1.0, 2.0])),
                                 "numeric categories must be sorted"),
    "knn stored data width": ("knn_regressor",
                              lambda m: setattr(m[-1], "_fit_X", m[-1]._fit_X[:, :2].copy()),
                              "the stored data must have n_samples_fit_ rows"),
    "knn search method": ("knn_regressor", lambda m: setattr(m[-1], "_fit_method", "kd_tree"),
                          "the search must be 'brute'"),
    "sparse indices": ("knn_classifier_sparse",
                       lambda m: m[-1]._fit_X.indices.__setitem__(0, 10**6),
                       "the sparse matrix is malformed"),
    "missing n_features_in_": ("random_forest_classifier",
                               lambda m: delattr(m[-1], "n_features_in_"),
                               "n_features_in_ must be >= 1"),
    "hgb internal preprocessor": ("hgb_binary",
                                  lambda m: setattr(m[-1], "_preprocessor", StandardScaler()),
                                  "never stores an internal preprocessor"),
    "stray tree": ("ridge",
                   lambda m: setattr(m[-1], "extra", RandomForestRegressor(n_estimators=1)
                                     .fit([[0], [1]], [0, 1]).estimators_[0].tree_),
                   "a tree must belong to a tree model"),
}


@pytest.mark.parametrize("case", IN_MEMORY_CASES)
def test_other_trusted_indices_are_checked(case, blobs):
    name, corrupt, fragment = IN_MEMORY_CASES[case]
    m = artifacts.loads(blobs[name])
    artifacts.validate(m)  # intact
    corrupt(m)
    with pytest.raises(ArtifactError, match="Retrain the model") as info:
        artifacts.validate(m, "model 'churn'")
    assert fragment in str(info.value) and str(info.value).startswith("model 'churn'")
    with pytest.raises(ArtifactError, match="would refuse to load"):
        artifacts.dumps(m)


def test_a_gradient_boosting_model_with_categorical_features_is_not_stored():
    hgb = HistGradientBoostingClassifier(max_iter=2, categorical_features=[True, False])
    hgb.fit(np.c_[np.arange(N) % 4, X["amount"]], Y_BINARY)
    with pytest.raises(ArtifactError, match="FunctionTransformer"):
        artifacts.dumps(hgb)


# -- sqlml's own transformer classes ------------------------------------------------------------

@pytest.fixture
def plain_module(monkeypatch):
    module = types.ModuleType("sqlml._test_plain")

    class Plain(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None):
            self.offset_ = 1.5
            return self

        def transform(self, X):
            return np.asarray(X, dtype=float) + self.offset_

    Plain.__module__, Plain.__qualname__ = module.__name__, "Plain"
    module.Plain = Plain
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(artifacts, "_REGISTERED", set())
    return module


def test_registered_types_round_trip(plain_module):
    data = sio.dumps(plain_module.Plain().fit([[1.0]]))
    refuses(data, "sqlml._test_plain.Plain")
    assert artifacts.register_type(plain_module.Plain) is plain_module.Plain
    assert artifacts.loads(data).transform([[1.0]])[0, 0] == 2.5


def test_register_type_takes_only_plain_sqlml_classes(plain_module):
    class Hooked(plain_module.Plain):
        def __setstate__(self, state):
            self.__dict__.update(state)

    Hooked.__module__, Hooked.__qualname__ = plain_module.__name__, "Hooked"
    for bad in (Hooked, LogisticRegression, len):
        with pytest.raises(TypeError):
            artifacts.register_type(bad)
    assert not artifacts._REGISTERED


def test_sqlml_preprocessing_is_imported_to_register_its_types(monkeypatch):
    from sqlml.train import preprocessing

    monkeypatch.setattr(sqlml.train, "preprocessing", preprocessing)  # restored after the re-import
    data = sio.dumps(preprocessing.TextCleaner().fit(["<b>Hi</b>"]))
    # as in a process that only predicts: sqlml.train.preprocessing not imported, nothing registered
    monkeypatch.setattr(artifacts, "_REGISTERED", set())
    monkeypatch.delitem(sys.modules, "sqlml.train.preprocessing")
    loaded = artifacts.loads(data)
    assert loaded.transform(["<b>Hi</b>"])[0].strip() == "hi"
    assert "sqlml.train.preprocessing.TextCleaner" in artifacts._REGISTERED
