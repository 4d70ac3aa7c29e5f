"""Model artifacts: a fitted model as bytes for the catalog's BLOB column, and back.

A .duckdb file may come from anyone, so loading must never run code from it. An artifact is a
skops zip (schema.json plus .npy/.npz arrays, never a pickle). loads() first checks that every
type and skops node kind the file names is in sqlml's static allow-list (skops itself trusts every
scikit-learn estimator; sqlml trusts only what it writes), then lets skops build the object
trusting exactly those types, then checks the integer indices that scikit-learn's compiled code
follows without bounds checks (tree nodes, vocabulary, one-hot layout, stored neighbours, sparse
matrices), since a file that passes the type check can still crash the process through them.
Every refusal is an ArtifactError.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import io
import json
import zipfile
from typing import Any

import numpy as np
import scipy.sparse as sp
import skops
import skops.io as sio
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.tree._tree import Tree

from sqlml.errors import ArtifactError

FORMAT = "skops-" + ".".join(skops.__version__.split(".")[:2])
REMEDY = "Retrain the model with sqlml, or restore the file from a trusted copy."
REFUSAL = "sqlml refuses to load objects it did not write; nothing from the file was run."

# Found by fitting every model sqlml trains, inside its preprocessing pipeline, and listing the
# types in the artifacts (tests/test_artifacts.py repeats this). Written out, not computed, so
# that a new scikit-learn cannot widen it.
ALLOWED_TYPES = (
    "builtins.dict", "builtins.list", "builtins.slice", "builtins.str", "builtins.tuple",
    "numpy.dtype", "numpy.float64", "numpy.int64", "numpy.ndarray",
    "numpy.random._generator.Generator", "numpy.random.mtrand.RandomState",
    "numpy.uint64",
    "scipy.sparse._csr.csr_matrix",
    "sklearn._loss._loss.CyAbsoluteError", "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss._loss.CyHalfGammaLoss", "sklearn._loss._loss.CyHalfMultinomialLoss",
    "sklearn._loss._loss.CyHalfPoissonLoss", "sklearn._loss._loss.CyHalfSquaredError",
    "sklearn._loss._loss.CyPinballLoss", "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.Interval", "sklearn._loss.link.LogitLink", "sklearn._loss.link.LogLink",
    "sklearn._loss.link.MultinomialLogit", "sklearn._loss.loss.AbsoluteError",
    "sklearn._loss.loss.HalfBinomialLoss", "sklearn._loss.loss.HalfGammaLoss",
    "sklearn._loss.loss.HalfMultinomialLoss", "sklearn._loss.loss.HalfPoissonLoss",
    "sklearn._loss.loss.HalfSquaredError", "sklearn._loss.loss.PinballLoss",
    "sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.impute._base.MissingIndicator", "sklearn.impute._base.SimpleImputer",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.linear_model._base.LinearRegression",
    "sklearn.linear_model._coordinate_descent.ElasticNet",
    "sklearn.linear_model._coordinate_descent.Lasso",
    "sklearn.linear_model._logistic.LogisticRegression", "sklearn.linear_model._ridge.Ridge",
    "sklearn.neighbors._classification.KNeighborsClassifier",
    "sklearn.neighbors._regression.KNeighborsRegressor",
    "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
    "sklearn.neural_network._multilayer_perceptron.MLPRegressor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.pipeline.FeatureUnion", "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.MinMaxScaler", "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._encoders.OneHotEncoder",
    "sklearn.preprocessing._encoders.OrdinalEncoder", "sklearn.preprocessing._label.LabelBinarizer",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.tree._classes.DecisionTreeClassifier", "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._tree.Tree",
    "sqlml.train.scaled_mlp.ScaledTargetMLPRegressor",
)
# Types that only the older scikit-learn releases sqlml supports write (1.6: the list of a
# ColumnTransformer's remainder columns). Allowed only where the installed release has them.
OLDER_SKLEARN_TYPES = ("sklearn.compose._column_transformer._RemainderColsList",)
# The skops node kinds those types are written with. The kinds that call a function or
# constructor named in the file (FunctionNode, MethodNode, ConstructorFromReduceNode, ...) are out.
ALLOWED_NODE_KINDS = (
    "DTypeNode", "DictNode", "JsonNode", "ListNode", "LossNode", "NdArrayNode", "ObjectNode",
    "RandomGeneratorNode", "RandomStateNode", "SliceNode", "SparseMatrixNode", "TreeNode",
    "TupleNode", "TypeNode",
)
_REGISTERED: set[str] = set()  # sqlml's own transformer classes, added by register_type
_OWN_MODULE = "sqlml.train.preprocessing"
# skops names a type by its module path, so artifacts written before sqlml's modules moved into
# subpackages name the old paths. They are read as the new ones: a rename in schema.json only,
# before the audit, so the allow-list and every check apply to the renamed file unchanged.
MOVED_MODULES = {
    "sqlml.preprocessing": "sqlml.train.preprocessing",
    "sqlml.scaled_mlp": "sqlml.train.scaled_mlp",
}


def register_type(cls: type) -> type:
    """Class decorator: allow one of sqlml's own plain-data classes in artifacts."""
    if not isinstance(cls, type) or not cls.__module__.startswith("sqlml."):
        raise TypeError(f"register_type takes a class defined in sqlml, got {cls!r}")
    # skops names a type by module and __name__, and rebuilds an object with cls.__new__ then
    # __setstate__ (or a __dict__ update): those hooks see the file's data, so must be inert.
    setstate = getattr(cls, "__setstate__", None)
    if "." in cls.__qualname__ or cls.__new__ is not object.__new__ or setstate not in (
            None, BaseEstimator.__setstate__):
        raise TypeError(f"{cls.__qualname__} is nested or overrides __new__/__setstate__")
    _REGISTERED.add(f"{cls.__module__}.{cls.__qualname__}")
    return cls


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps(obj: Any) -> bytes:
    """Serialize a fitted model, refusing (ArtifactError) anything loads() would refuse."""
    try:
        data = sio.dumps(obj)
    except Exception as exc:
        raise ArtifactError(f"sqlml cannot serialize {type(obj).__name__}: skops raised "
                            f"{_brief(exc)}. This is a bug in sqlml.") from None
    try:
        _audit(data, "it")
        validate(obj, "it")
    except ArtifactError as exc:
        reason = str(exc).replace(f" {REFUSAL}", "").replace(f" {REMEDY}", "")
        raise ArtifactError(f"sqlml does not store this {type(obj).__name__}, as it would refuse "
                            f"to load it: {reason} Train with other hyperparameters, or report "
                            "this as a bug in sqlml.") from None
    return data


def loads(data: bytes, *, name: str = "the model artifact") -> Any:
    """Load an artifact written by dumps(); `name` labels it in error messages."""
    if not isinstance(data, (bytes, bytearray, memoryview)) or not len(data):
        raise ArtifactError(f"{name} is empty or not bytes (got {type(data).__name__}). {REMEDY}")
    data = _renamed(bytes(data))
    trusted = _audit(data, name)
    try:
        obj = sio.loads(data, trusted=sorted(trusted))
    except Exception as exc:
        raise _unreadable(name, exc, data) from None
    validate(obj, name)
    return obj


def _renamed(data: bytes) -> bytes:
    """The artifact with moved module paths in schema.json replaced; unreadable data as is."""
    if not any(old.encode() in data for old in MOVED_MODULES):
        return data
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [(info, zf.read(info)) for info in zf.infolist()]
    except Exception:
        return data  # _audit reports it
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for info, content in members:
            if info.filename == "schema.json":
                for old, new in MOVED_MODULES.items():
                    content = content.replace(f'"{old}"'.encode(), f'"{new}"'.encode())
            zf.writestr(info, content)
    return out.getvalue()


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _unreadable(name: str, exc: BaseException, data: bytes) -> ArtifactError:
    hint = " It looks like a pickle, which sqlml never loads." if data[:1] == b"\x80" else ""
    return ArtifactError(f"{name} is not a readable sqlml artifact, which is a skops zip archive "
                         f"({_brief(exc)}).{hint} {REMEDY}")


@functools.cache
def installed_types() -> frozenset[str]:
    """The allowed types under the names skops writes them with in this installation.

    scikit-learn 1.6 reports its Cython losses under module "_loss", not "sklearn._loss._loss":
    the listed classes, named as they name themselves, so no type is added.
    """
    names: set[str] = set()
    for name in ALLOWED_TYPES + OLDER_SKLEARN_TYPES:
        module, _, attr = name.rpartition(".")
        if module == "sklearn._loss._loss" or name in OLDER_SKLEARN_TYPES:
            cls = getattr(importlib.import_module(module), attr, None)
            if isinstance(cls, type):
                names.add(f"{cls.__module__}.{cls.__qualname__}")
        else:
            names.add(name)
    return frozenset(names)


def _refused(types: set[str]) -> list[str]:
    refused = types - installed_types() - _REGISTERED
    if any(t.startswith(_OWN_MODULE + ".") for t in refused):
        try:  # a process that only predicts may not have imported (so registered) them yet
            importlib.import_module(_OWN_MODULE)
        except ImportError:
            pass
    return sorted(refused - _REGISTERED)


@functools.cache
def _newest_protocol() -> int:
    with zipfile.ZipFile(io.BytesIO(sio.dumps(None))) as zf:
        return json.loads(zf.read("schema.json"))["protocol"]


def _audit(data: bytes, name: str) -> set[str]:
    """The types the artifact names, once all are allowed. Builds no object from the file."""
    members, schema, inner = _archive(data, name)
    types, kinds, unpacked = _schema_types(schema, members, inner)
    # so one array named by many nodes is loaded many times: a memory bomb
    if unpacked > 4 * len(data) + 2**20:
        raise ArtifactError(f"{name} unpacks to {unpacked} bytes from {len(data)}; sqlml "
                            f"artifacts never repeat arrays like that. {REMEDY}")
    refused = _refused(types)
    refused_kinds = sorted(kinds - set(ALLOWED_NODE_KINDS))
    if not refused and not refused_kinds:
        try:  # adds the names skops reads from strings (bit generators, bound methods)
            types |= set(sio.get_untrusted_types(data=data))
        except Exception as exc:
            raise _unreadable(name, exc, data) from None
        refused = _refused(types)
    if refused or refused_kinds:
        listed = [f"{label}: {', '.join(items)}" for label, items in (
            ("types sqlml does not write", refused),
            ("skops node kinds sqlml never writes", refused_kinds)) if items]
        raise ArtifactError(f"{name} contains {'; and '.join(listed)}. {REFUSAL} {REMEDY}")
    return types


def _archive(data: bytes, name: str) -> tuple[dict[str, zipfile.ZipInfo], Any, dict[str, int]]:
    """The zip's members, its schema.json and the inflated size of each .npz inside, once the
    archive is uncompressed and of a skops protocol this installation reads."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = {i.filename: i for i in zf.infolist()}
            schema = json.loads(zf.read("schema.json"))
            packed = [n for n, i in members.items() if i.compress_type != zipfile.ZIP_STORED]
            # An .npz inside may be compressed: count what it inflates to (zipfile stops
            # reading a member at its declared size).
            inner = {n: sum(i.file_size for i in zipfile.ZipFile(zf.open(n)).infolist())
                     for n in members if n.endswith(".npz")}
        protocol = schema.get("protocol")
    except Exception as exc:
        raise _unreadable(name, exc, data) from None
    if packed:  # skops writes uncompressed; inflating is how a small file exhausts memory
        raise ArtifactError(f"{name} has compressed members ({packed[0]}), which sqlml never "
                            f"writes. {REMEDY}")
    if type(protocol) is not int or protocol < 0:
        raise ArtifactError(f"{name} has an invalid skops protocol {protocol!r}. {REMEDY}")
    if protocol > _newest_protocol():
        raise ArtifactError(
            f"{name} was written with skops protocol {protocol}, newer than protocol "
            f"{_newest_protocol()}, the newest this installation (skops {skops.__version__}) "
            "reads. Upgrade sqlml and skops (pip install -U sqlml skops) to load it.")
    return members, schema, inner


def _schema_types(schema: Any, members: dict[str, zipfile.ZipInfo],
                  inner: dict[str, int]) -> tuple[set[str], set[str], int]:
    """The types and node kinds the schema names, and the bytes its arrays unpack to."""
    types, kinds, unpacked, loaded = set(), set(), 0, set()
    stack: list[Any] = [schema]
    while stack:  # iterative: the nesting depth is the file's choice
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
            # Only a node has a string __loader__; other dicts map keys (words like "file" or
            # "__class__" in a vocabulary) to nodes.
            if isinstance(node.get("__loader__"), str):
                kinds.add(node["__loader__"])
                types.add(f"{node.get('__module__')}.{node.get('__class__')}")
                # skops builds the nodes that share an __id__ once, and every other node anew
                key = node.get("__id__")
                key = key if type(key) is int and key else id(node)
                file = node.get("file")
                if isinstance(file, str) and file in members and key not in loaded:
                    loaded.add(key)
                    unpacked += members[file].file_size + inner.get(file, 0)
    return types, kinds, unpacked


class _Bad(Exception):
    pass


def _require(ok: Any, where: str, rule: str, got: Any) -> None:
    if not ok:
        raise _Bad(f"{where}: {rule}, got {got}")


def _describe(a: Any) -> str:  # cheap: messages are built before knowing they are needed
    return f"{a.dtype.str} array of shape {a.shape}" if isinstance(a, np.ndarray) else str(type(a))


def _first_bad(bad: np.ndarray, where: str, rule: str, values: np.ndarray) -> None:
    if bad.any():
        i = int(np.argmax(bad))
        raise _Bad(f"{where}: {rule}, got {values[i]} at node {i}")


def validate(obj: Any, name: str = "the model") -> None:
    """Check, everywhere in obj, the indices scikit-learn follows blindly; ArtifactError if bad."""
    try:
        _walk(obj)
    except _Bad as exc:
        raise ArtifactError(f"{name} failed validation: {exc}. scikit-learn follows these "
                            f"indices without bounds checks, so sqlml refuses it. {REMEDY}") \
            from None
    except Exception as exc:
        raise ArtifactError(f"{name} is malformed: checking it raised {_brief(exc)}. {REMEDY}") \
            from None


def _walk(root: Any) -> None:
    seen: set[int] = set()  # by id: each object is visited once, and cycles end
    # id of a checked tree -> (1 + its largest split feature, that node), so that a tree or
    # vocabulary a file shares among many owners costs one check, not one per owner
    memo: dict[int, tuple[int, int]] = {}
    stack = [root]
    while stack:
        obj = stack.pop()
        if obj is None or isinstance(obj, (str, bytes, int, float, np.generic)) or id(obj) in seen:
            continue
        seen.add(id(obj))
        where = type(obj).__name__
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
        elif isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set)):
            stack.extend(obj)
        elif sp.issparse(obj):
            _require(type(obj) is sp.csr_matrix, where, "sparse data must be CSR", where)
            try:
                obj.check_format(full_check=True)  # includes the bounds of the indices
            except ValueError as exc:
                raise _Bad(f"{where}: the sparse matrix is malformed, got {exc}") from None
        elif isinstance(obj, (Tree, TreePredictor)):  # its owner, met first, put it in memo
            _require(id(obj) in memo, where, "a tree must belong to a tree model", "a stray tree")
        else:
            for kinds, check in _CHECKS:
                if isinstance(obj, kinds):
                    check(obj, where, memo)
            stack.extend(getattr(obj, "__dict__", {}).values())


def _n_features(est: Any, where: str) -> int:
    # scikit-learn compares the input's width with n_features_in_ only if the attribute exists
    n: Any = getattr(est, "n_features_in_", None)
    _require(isinstance(n, (int, np.integer)) and n >= 1, where, "n_features_in_ must be >= 1", n)
    return int(n)


def _check_links(where, leaf, left, right, feature) -> tuple[int, int]:
    """Check the child links; return 1 + the largest feature a split uses, and its node."""
    # Nodes are numbered in build order, so a child always comes after its parent: that bounds
    # every walk from the root and rules out cycles.
    n, idx, split = len(left), np.arange(len(left)), ~leaf
    for side, child in (("left", left.astype(np.int64)), ("right", right.astype(np.int64))):
        _first_bad(split & ((child <= idx) | (child >= n)), where,
                   f"a split node's {side} child must come after it and be below {n}", child)
    _first_bad(split & (feature < 0), where, "a split node's feature must be >= 0", feature)
    used = np.where(split, feature, -1)
    node = int(np.argmax(used))
    return int(used[node]) + 1, node


def _check_width(tree: Any, where: str, n_features: int, memo: dict) -> None:
    width, node = memo[id(tree)]
    _require(width <= n_features, where, f"a split node's feature must be in [0, {n_features})",
             f"{width - 1} at node {node}")


def _check_tree(tree: Any, where: str, n_features: int, memo: dict) -> None:
    _require(isinstance(tree, Tree), where, "tree_ must be a scikit-learn Tree", type(tree))
    _require(tree.n_features == n_features, where,
             f"n_features must equal the model's n_features_in_ {n_features}", tree.n_features)
    if id(tree) not in memo:
        n = tree.node_count
        # first, as the node arrays below are views of node_count nodes of the stored memory
        _require(1 <= n == tree.capacity, where,
                 "node_count must equal the number of stored nodes",
                 f"node_count {n} with {tree.capacity} stored")
        left, right = tree.children_left, tree.children_right
        _first_bad((left == -1) & (right != -1), where, "a leaf's right child must be -1", right)
        shape = (n, tree.n_outputs, tree.max_n_classes)
        _require(tree.value.shape == shape, where, f"value must have shape {shape}",
                 tree.value.shape)
        memo[id(tree)] = _check_links(where, left == -1, left, right, tree.feature)
    _check_width(tree, where, n_features, memo)


def _check_decision_tree(est: Any, where: str, memo: dict) -> None:
    if hasattr(est, "tree_"):  # an unfitted template (a forest's estimator_) has none
        _check_tree(est.tree_, where, _n_features(est, where), memo)


def _check_forest(forest: Any, where: str, memo: dict) -> None:
    if not hasattr(forest, "estimators_"):
        return
    n_features = _n_features(forest, where)
    for i, est in enumerate(forest.estimators_):
        at = f"tree {i} of {where}"
        _require(isinstance(est, (DecisionTreeClassifier, DecisionTreeRegressor)), at,
                 "must be a DecisionTree", type(est))
        # the forest checks the input's width and passes it on to every tree unchecked
        _require(_n_features(est, at) == n_features, at,
                 f"n_features_in_ must equal the forest's {n_features}", est.n_features_in_)
        _check_decision_tree(est, at, memo)


def _check_hist_gradient_boosting(est: Any, where: str, memo: dict) -> None:
    if not hasattr(est, "_predictors"):
        return
    n_features = _n_features(est, where)
    # With an internal preprocessor (made for categorical features), scikit-learn skips its own
    # check of the input's width. Without one, no split is categorical.
    _require(est._preprocessor is None, where, "sqlml never stores an internal preprocessor",
             type(est._preprocessor))
    n_iter, per_iter = est.n_iter_, est.n_trees_per_iteration_
    _require(isinstance(est._predictors, list) and len(est._predictors) == n_iter, where,
             f"there must be n_iter_ = {n_iter} iterations", len(est._predictors))
    for i, trees in enumerate(est._predictors):
        _require(isinstance(trees, list) and len(trees) == per_iter, f"iteration {i} of {where}",
                 f"there must be n_trees_per_iteration_ = {per_iter} trees", len(trees))
        for k, tree in enumerate(trees):
            _check_predictor(tree, f"tree {k} of iteration {i} of {where}", n_features, memo)


def _check_predictor(tree: Any, where: str, n_features: int, memo: dict) -> None:
    _require(isinstance(tree, TreePredictor), where, "must be a TreePredictor", type(tree))
    if id(tree) not in memo:
        nodes = tree.nodes
        _require(isinstance(nodes, np.ndarray) and nodes.dtype == PREDICTOR_RECORD_DTYPE
                 and nodes.ndim == 1 and len(nodes) > 0, where,
                 "nodes must be a non-empty 1-D array of node records", _describe(nodes))
        split = nodes["is_leaf"] == 0
        # a categorical split indexes bitset arrays; sqlml's models have no categorical features
        _first_bad(split & (nodes["is_categorical"] != 0), where,
                   "sqlml never stores categorical splits", nodes["is_categorical"])
        memo[id(tree)] = _check_links(where, ~split, nodes["left"], nodes["right"],
                                      nodes["feature_idx"])
    _check_width(tree, where, n_features, memo)


def _check_vocabulary(vec: Any, where: str, memo: dict) -> None:
    vocab = getattr(vec, "vocabulary_", None)
    if vocab is None or id(vocab) in memo:
        return
    # its values become column indices of a sparse matrix
    _require(isinstance(vocab, dict) and vocab, where, "vocabulary_ must be a non-empty dict",
             _describe(vocab))
    cols = np.array(list(vocab.values()))
    _require(cols.dtype.kind in "iu" and cols.min() >= 0 and cols.max() < len(cols), where,
             f"vocabulary_ columns must be integers in [0, {len(cols)})", cols.max())
    memo[id(vocab)] = (0, 0)


def _check_one_hot(enc: Any, where: str, memo: dict) -> None:
    if not hasattr(enc, "categories_"):
        return
    # transform() turns feature i's codes into sparse column indices (offset by the previous
    # features' _n_features_outs), which scipy does not bounds-check.
    cats, outs, drop = enc.categories_, enc._n_features_outs, enc._drop_idx_after_grouping
    n = _n_features(enc, where)
    rare = enc._infrequent_indices if enc._infrequent_enabled else [None] * n
    maps = enc._default_to_infrequent_mappings if enc._infrequent_enabled else [None] * n
    _require(len(cats) == len(outs) == len(rare) == len(maps) == n, where,
             f"there must be n_features_in_ = {n} features", len(cats))
    for i, c in enumerate(cats):
        at = f"feature {i} of {where}"
        if c.dtype.kind in "biuf":  # numbers are coded by binary search: sorted, NaN last
            nan = np.isnan(c) if c.dtype.kind == "f" else np.zeros(len(c), bool)
            known = c[~nan]
            _require((known[1:] > known[:-1]).all() and nan[len(known):].all(), at,
                     "numeric categories must be sorted, NaN last", c[:5])
        # unmapped, a rare category keeps its raw index
        _require((rare[i] is None) == (maps[i] is None), at,
                 "infrequent categories need a mapping", maps[i])
        mapping = maps[i]
        low, top = (0, len(c) - 1) if mapping is None else (mapping.min(), mapping.max())
        d = None if drop is None else drop[i]
        if d is not None and d <= top:  # codes above the dropped one move down by one
            top -= 1
        _require(low >= 0 and (d is None or d >= 0) and top < outs[i], at,
                 f"codes must be in [0, _n_features_outs[{i}] = {outs[i]})", (low, top))


def _check_neighbors(est: Any, where: str, memo: dict) -> None:
    if not hasattr(est, "_fit_X"):
        return
    n, fit_x = _n_features(est, where), est._fit_X
    # sqlml fits with algorithm='brute': a KD or ball tree is an index a file could corrupt
    _require(est._fit_method == "brute", where, "the search must be 'brute'", est._fit_method)
    _require((isinstance(fit_x, np.ndarray) or sp.issparse(fit_x)) and fit_x.ndim == 2
             and fit_x.shape[1] == n and fit_x.shape[0] == est.n_samples_fit_ >= 1, where,
             f"the stored data must have n_samples_fit_ rows and {n} columns", fit_x.shape)


_CHECKS = (
    ((DecisionTreeClassifier, DecisionTreeRegressor), _check_decision_tree),
    ((RandomForestClassifier, RandomForestRegressor), _check_forest),
    ((HistGradientBoostingClassifier, HistGradientBoostingRegressor),
     _check_hist_gradient_boosting),
    (CountVectorizer, _check_vocabulary),
    (OneHotEncoder, _check_one_hot),
    ((KNeighborsClassifier, KNeighborsRegressor), _check_neighbors),
)
