"""A trained sqlml recommender: scoring, top-k, similar items and storage without pickle.

``score(u, i) = global_mean + user_bias[u] + item_bias[i] + user_factors[u] . item_factors[i]``,
float64 throughout, so a pure-SQL formula over the stored arrays gives the same numbers.
"""

from __future__ import annotations

import itertools
import numbers
import uuid

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from sqlml.errors import ArtifactError, PredictionInputError, TrainingError

__all__ = ["RecommenderModel"]

_CONTROLLER: list[ThreadpoolController] = []


def single_blas():
    """Context with one BLAS thread. This code makes thousands of small BLAS calls, where BLAS
    threads only wait on each other: 2-8x slower on a busy 2-core machine."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def _column(values, what):
    if isinstance(values, pd.Series | pd.Index):
        arr = values.to_numpy()
    elif isinstance(values, np.ndarray):
        arr = values
    else:  # a list: np.asarray would silently turn [1, "x"] into strings
        arr = pd.Series(list(values), dtype=None if len(values) else float).to_numpy()
    if arr.ndim != 1:
        raise TrainingError(f"{what} must be one-dimensional; got an array of shape {arr.shape}. "
                            "Pass one value per row.")
    null = pd.isna(arr)
    if null.any():
        raise TrainingError(
            f"{what}: {int(null.sum())} of {len(arr)} rows are NULL (first at row "
            f"{int(np.argmax(null))}); every row needs one. Filter them out first, e.g. "
            f"WHERE <{what} column> IS NOT NULL.")
    return arr


def _numeric(arr, what):
    if arr.dtype.kind in "biuf":
        out = arr.astype(float)
    else:
        bad = next((x for x in arr if not isinstance(x, numbers.Number)  # Decimal is no Real
                    or isinstance(x, complex)), None)
        if bad is not None:
            raise TrainingError(f"{what} must be numeric; got {bad!r} ({type(bad).__name__}). "
                                "Cast the column to a number, or map labels to numbers first.")
        out = arr.astype(float)
    if not np.isfinite(out).all():
        raise TrainingError(f"{what} must be finite; got {float(out[~np.isfinite(out)][0])!r}. "
                            "Remove or replace infinite values first.")
    return out


def _timestamps(values):
    arr = _column(values, "timestamps")
    if arr.dtype.kind in "biuf":
        return arr.astype(float)
    try:
        return pd.to_datetime(arr).to_numpy("datetime64[ns]").astype(np.int64).astype(float)
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"timestamps must be numbers or datetimes; got {arr[0]!r}. Cast the "
                            "column to TIMESTAMP or to a number (epoch seconds).") from exc


def _id_kind(arr, what, error=TrainingError):
    """('int' | 'str' | 'uuid', array of int64 or str) for an id column or query."""
    if arr.dtype.kind in "iu":
        return "int", arr.astype(np.int64)
    if arr.dtype.kind == "f" and np.all(np.mod(arr, 1) == 0):
        return "int", arr.astype(np.int64)
    if arr.dtype.kind == "U":
        return "str", arr
    if arr.dtype.kind == "O" and len(arr):
        if all(isinstance(x, str) for x in arr):
            return "str", arr.astype(str)
        if all(isinstance(x, uuid.UUID) for x in arr):
            return "uuid", np.array([str(x) for x in arr])
        if all(isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in arr):
            return "int", arr.astype(np.int64)
    kinds = sorted({type(x).__name__ for x in arr.tolist()}) or [str(arr.dtype)]
    raise error(f"{what} ids must all be integers, all strings or all UUIDs; got "
                f"{' and '.join(kinds)} values (first: {arr.tolist()[0] if len(arr) else None!r}). "
                "Cast the column to BIGINT or VARCHAR.")


_ARRAYS = ("user_ids", "item_ids", "user_bias", "item_bias", "user_factors", "item_factors",
           "popularity", "seen_indptr", "seen_items", "seen_values")
# EASE models (sqlml/recommend/ease.py) add their item-item weights as CSR rows by source item;
# their factors (a truncated SVD of the positives) serve only similar items and reasons.
_NEIGHBOR_ARRAYS = ("neighbor_indptr", "neighbor_items", "neighbor_weights")
FORMAT = "sqlml.recommender/1"


class RecommenderModel:
    """A trained recommender: plain float64 arrays plus small JSON-able metadata.

    ``score(u, i) = global_mean + user_bias[u] + item_bias[i] + user_factors[u] . item_factors[i]``
    for known users and items. Cold start: an unknown item scores ``global_mean + user_bias[u]``,
    an unknown user ``global_mean + item_bias[i]`` (both 0 for implicit models). ``recommend`` for
    an unknown user ranks items by popularity (implicit; score = number of users with a positive
    interaction) or by ``global_mean + item_bias`` (explicit), with source ``'popular'``; it has
    seen nothing, so ``exclude_seen`` is a no-op. An implicit user whose every interaction fell
    below the threshold also gets the popular list, minus the items they have seen.

    Arrays (``to_arrays``): ``user_ids``, ``item_ids`` (sorted; int64 or str, UUIDs as str), the
    biases and factors by dense index, ``popularity`` per item, and what each user has seen as
    CSR rows ``seen_indptr`` / ``seen_items`` (item indices) / ``seen_values`` (mean rating, or
    summed implicit weight: 0 for seen-but-not-positive). Reasons ("because you rated <item>")
    pick, among the user's rated (explicit) or positive (implicit) items other than the
    recommended one, the closest in cosine of item factors; the lower index wins ties.
    """

    # The arrays named in _ARRAYS, which __init__ sets by name.
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    popularity: np.ndarray
    seen_indptr: np.ndarray
    seen_items: np.ndarray
    seen_values: np.ndarray

    def __init__(self, *, feedback, user_kind, item_kind, global_mean, params, info, **arrays):
        self.feedback, self.user_kind, self.item_kind = feedback, user_kind, item_kind
        self.global_mean, self.params, self.info = float(global_mean), params, info
        for name in _ARRAYS:
            setattr(self, name, arrays[name])
        self.neighbors: sp.csr_matrix | None = None
        if "neighbor_indptr" in arrays:
            n = len(self.item_ids)
            self.neighbors = sp.csr_matrix((arrays["neighbor_weights"], arrays["neighbor_items"],
                                            arrays["neighbor_indptr"]), shape=(n, n))
        norms = np.linalg.norm(self.item_factors, axis=1, keepdims=True)
        self._unit = self.item_factors / np.where(norms > 0, norms, 1)
        # Reasons come from the items a user rated (explicit) or liked (implicit positives).
        ok = self.seen_values > 0 if feedback == "implicit" else np.ones(len(self.seen_items), bool)
        self._reason_items = self.seen_items[ok]
        owner = np.repeat(np.arange(len(self.user_ids)), np.diff(self.seen_indptr))
        self._reason_ptr = np.r_[0, np.cumsum(np.bincount(owner[ok], minlength=len(self.user_ids)))]
        # An implicit user with no positive interaction has a zero vector: rank by popularity.
        self._cold = np.diff(self._reason_ptr) == 0
        if self.neighbors is not None:   # EASE scores from each user's positive items
            owner = np.repeat(np.arange(len(self.user_ids)), np.diff(self._reason_ptr))
            self._liked = sp.csr_matrix((np.ones(len(owner)), (owner, self._reason_items)),
                                        shape=(len(self.user_ids), len(self.item_ids)))
        if self.seen_in_table:
            # The seen pairs are in the <model>_seen table, not in these arrays (engine
            # 'spark'): an implicit user with no positive pair is the one with no factors.
            self._cold = (~np.any(self.user_factors != 0, axis=1) if feedback == "implicit"
                          else np.zeros(len(self.user_ids), bool))

    @property
    def seen_in_table(self) -> bool:
        """True when the seen pairs live in the model's ``_seen`` table, not in the artifact
        (models trained on Spark, whose pairs may not fit in this process): serving loads the
        requested users' pairs from there (:meth:`with_seen`)."""
        return self.info.get("seen") == "table"

    def with_seen(self, users: np.ndarray, items: np.ndarray,
                  values: np.ndarray) -> RecommenderModel:
        """This model with the seen pairs (user codes, item codes, values) of some
        users, as read from its ``_seen`` table; the other users have seen nothing."""
        order = np.lexsort((items, users))
        arrays = self.to_arrays() | {
            "seen_indptr": np.r_[0, np.cumsum(np.bincount(users, minlength=len(self.user_ids)))],
            "seen_items": np.asarray(items, np.int64)[order],
            "seen_values": np.asarray(values, np.float64)[order]}
        return RecommenderModel(feedback=self.feedback, user_kind=self.user_kind,
                                item_kind=self.item_kind, global_mean=self.global_mean,
                                params=self.params, info=self.info, **arrays)

    @property
    def cold_users(self) -> np.ndarray:
        """Per known user, True where ``recommend`` serves the popular list (implicit users with
        no positive interaction); derived from ``seen_values``, so it is not stored."""
        return self._cold

    # -- storage without pickle
    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {name: getattr(self, name) for name in _ARRAYS}
        if self.neighbors is not None:
            out |= {"neighbor_indptr": self.neighbors.indptr.astype(np.int64),
                    "neighbor_items": self.neighbors.indices.astype(np.int64),
                    "neighbor_weights": self.neighbors.data.astype(float)}
        return out

    @property
    def algorithm(self) -> str:
        """'ease' (item-item weights) or 'als' (matrix factorization, explicit or implicit)."""
        return "ease" if self.neighbors is not None else "als"

    def to_metadata(self) -> dict:
        return {"format": FORMAT, "feedback": self.feedback, "user_kind": self.user_kind,
                "item_kind": self.item_kind, "global_mean": self.global_mean,
                "factors": int(self.user_factors.shape[1]), "params": self.params,
                "info": self.info}

    @classmethod
    def from_arrays(cls, arrays, metadata) -> RecommenderModel:
        if metadata.get("format") != FORMAT or set(arrays) - set(_NEIGHBOR_ARRAYS) != set(
                _ARRAYS) or len(set(arrays) & set(_NEIGHBOR_ARRAYS)) not in (0, 3):
            raise ArtifactError(f"Not a stored sqlml recommender (format {FORMAT!r} with arrays "
                                f"{list(_ARRAYS)}); got format {metadata.get('format')!r} with "
                                f"{sorted(arrays)}. Retrain the model.")
        a = {name: np.asarray(arrays[name]) for name in arrays}
        nu, ni, k = len(a["user_ids"]), len(a["item_ids"]), metadata.get("factors")
        shapes_ok = (a["user_factors"].shape == (nu, k) and a["item_factors"].shape == (ni, k)
                     and len(a["user_bias"]) == nu and len(a["item_bias"]) == ni
                     and len(a["popularity"]) == ni and len(a["seen_indptr"]) == nu + 1
                     and a["seen_indptr"][-1] == len(a["seen_items"]) == len(a["seen_values"])
                     and (len(a["seen_items"]) == 0 or (0 <= a["seen_items"].min()
                                                         and a["seen_items"].max() < ni))
                     and _neighbors_ok(a, ni))
        if not shapes_ok:
            raise ArtifactError(f"Stored recommender arrays are inconsistent ({nu} users, {ni} "
                                f"items, {k} factors); the artifact was altered. Retrain it.")
        return cls(**{key: metadata[key] for key in ("feedback", "user_kind", "item_kind",
                                                     "global_mean", "params", "info")}, **a)

    # -- ids
    def _codes(self, values, side):
        """Dense indices of ids (-1 where unknown); ids of another kind raise."""
        ids, kind = (self.user_ids, self.user_kind) if side == "user" else (
            self.item_ids, self.item_kind)
        arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
        arr = np.atleast_1d(arr)
        null = pd.isna(arr)
        codes = np.full(len(arr), -2)  # -2: NULL id, -1: unknown id
        arr = arr[~null]
        if kind == "uuid" and arr.dtype.kind in "OU":
            try:
                arr = np.array([str(uuid.UUID(str(x))) for x in arr])
            except ValueError as exc:
                raise PredictionInputError(f"The model's {side} ids are UUIDs; got {values!r}, "
                                           "which is not one.") from exc
        got, arr = _id_kind(arr, side, PredictionInputError) if len(arr) else (kind, arr)
        if got != kind and not (kind == "uuid" and got == "str"):
            raise PredictionInputError(f"The model's {side} ids are {kind}s; got {values!r} "
                                       f"({got}). Cast the {side} id to the training type.")
        pos = np.minimum(np.searchsorted(ids, arr), len(ids) - 1)
        codes[~null] = np.where(ids[pos] == arr, pos, -1)
        return codes

    def _id(self, code, side):
        ids, kind = (self.user_ids, self.user_kind) if side == "user" else (
            self.item_ids, self.item_kind)
        value = ids[code]
        return uuid.UUID(value) if kind == "uuid" else value.item()

    # -- scoring
    def predict(self, users, items) -> np.ndarray:
        """Score each (user, item) pair by the formula above; cold start as in the class doc."""
        u, i = self._codes(users, "user"), self._codes(items, "item")
        if len(u) != len(i):
            raise PredictionInputError(f"predict needs as many users as items; got {len(u)} "
                                       f"and {len(i)}.")
        ku, ki = u >= 0, i >= 0
        out = (self.global_mean + np.where(ku, self.user_bias[u], 0.0)
               + np.where(ki, self.item_bias[i], 0.0))
        both = ku & ki
        if self.neighbors is not None:
            out[both] += np.asarray(self._liked[u[both]].multiply(
                self.neighbors.T.tocsr()[i[both]]).sum(axis=1)).ravel()
        else:
            out[both] += np.einsum("nd,nd->n", self.user_factors[u[both]],
                                   self.item_factors[i[both]])
        out[(u == -2) | (i == -2)] = np.nan  # NULL in, NULL out
        return out

    def _cold_scores(self):
        if self.feedback == "implicit":
            return self.popularity.copy()
        return self.global_mean + self.item_bias

    def _check_k(self, k):
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k <= 0:
            raise PredictionInputError(f"k is the number of items to return and must be a "
                                       f"positive integer; got {k!r}. Use e.g. k := 10.")
        return int(k)

    def _block_scores(self, codes, out=None):
        if self.neighbors is not None:
            s = (self._liked[codes] @ self.neighbors).toarray()
            if out is not None:
                out[:len(codes)] = s
                s = out[:len(codes)]
            return s
        s = np.matmul(self.user_factors[codes], self.item_factors.T,
                      out=None if out is None else out[:len(codes)])
        if self.feedback == "explicit":
            s += (self.global_mean + self.user_bias[codes])[:, None]
            s += self.item_bias
        return s

    def _mask_seen(self, scores, codes):
        lo, hi = self.seen_indptr[codes], self.seen_indptr[codes + 1]
        rows = np.repeat(np.arange(len(codes)), hi - lo)
        scores[rows, self.seen_items[_ranges(lo, hi)]] = -np.inf

    def recommend(self, user, k=10, exclude_seen=True):
        """Top-k items for one user: a list of (rank, item, score, source, reason).

        A NULL user gets no rows; an unknown user gets the cold-start list (class doc)."""
        k = self._check_k(k)
        code = int(self._codes([user], "user")[0])
        if code == -2:
            return []
        if code < 0:
            scores = self._cold_scores()
            top = _top_k(scores[None, :], k)[0]
            return [(n + 1, self._id(j, "item"), float(scores[j]), "popular", None)
                    for n, j in enumerate(top)]
        rec = self.recommend_all(k, exclude_seen, users=np.array([code]))
        return list(zip(rec["rank"].tolist(), rec["item"].tolist(), rec["score"].tolist(),
                        rec["source"].tolist(), rec["reason"].tolist(), strict=True))

    def recommend_all(self, k=10, exclude_seen=True, *, reasons=True, users=None):
        """Top-k for every known user (or for the dense indices ``users``), as column arrays
        ``user, rank, item, score, source, reason``, ordered by user then rank.

        One matrix product per block of users, seen items masked to -inf, then an exact top-k;
        ties go to the lower item index. A user with fewer than k unseen items gets fewer rows.
        ``reasons=False`` skips the reason column (all None), which is most of the cost."""
        k = self._check_k(k)
        with single_blas():
            return self._recommend_all(k, exclude_seen, reasons, users)

    def _recommend_all(self, k, exclude_seen, reasons, users):
        codes = np.arange(len(self.user_ids)) if users is None else np.asarray(users)
        # 2 MB blocks of scores, reused: they stay in cache, and fresh pages cost more than math
        block = max(1, 2**18 // max(len(self.item_ids), 1))
        buffer = np.empty((min(block, len(codes)), len(self.item_ids)))
        cols = {"user": [], "rank": [], "item": [], "score": [], "reason": [], "cold": []}
        for start in range(0, len(codes), block):
            c = codes[start:start + block]
            s = self._block_scores(c, buffer)
            s[self._cold[c]] = self._cold_scores()
            if exclude_seen:
                self._mask_seen(s, c)
            top = _top_k(s, k)
            val = np.take_along_axis(s, top, 1)
            keep = np.isfinite(val)
            why = self._reasons(c, top, keep) if reasons else np.full(top.shape, -1)
            for key, part in (("user", np.repeat(c, keep.sum(1))), ("item", top[keep]),
                              ("cold", np.repeat(self._cold[c], keep.sum(1))),
                              ("rank", np.nonzero(keep)[1] + 1), ("score", val[keep]),
                              ("reason", why[keep])):
                cols[key].append(part)
        out = {key: np.concatenate(parts) for key, parts in cols.items()}
        out["user"] = self._ids_out(self.user_ids[out["user"]], self.user_kind)
        out["reason"] = np.array([None if j < 0 else f"because you rated {self.item_ids[j]}"
                                  for j in out["reason"].tolist()], dtype=object)
        out["item"] = self._ids_out(self.item_ids[out["item"]], self.item_kind)
        out["source"] = np.where(out.pop("cold"), "popular", "personalized").astype(object)
        return out

    def _ids_out(self, values, kind):
        if kind == "uuid":
            return np.array([uuid.UUID(v) for v in values], dtype=object)
        return values

    def _reasons(self, users, top, keep):
        """For each recommended item, the user's rated item closest in cosine (-1: none).

        Users are grouped by how many reason candidates they have, so each group is one batched
        product of (candidates x factors) by (factors x k)."""
        lo, hi = self._reason_ptr[users], self._reason_ptr[users + 1]
        out = np.full(top.shape, -1)
        unit = np.vstack([self._unit, np.zeros((1, self._unit.shape[1]))])
        pad = len(self.item_ids)
        n = hi - lo
        edges = np.unique(np.r_[0, np.ceil(1.3 ** np.arange(60)).astype(int)])
        for low, high in itertools.pairwise(edges):
            rows = np.flatnonzero((n > low) & (n <= high))
            if not len(rows):
                continue
            slot = np.arange(n[rows].max())
            cand = np.where(slot < n[rows, None],
                            self._reason_items[np.minimum(lo[rows, None] + slot,
                                                          len(self._reason_items) - 1)], pad)
            sims = np.take(unit, cand, axis=0) @ np.take(unit, top[rows], axis=0).transpose(0, 2, 1)
            sims[(cand[:, :, None] == pad) | (cand[:, :, None] == top[rows][:, None, :])] = -np.inf
            best = np.argmax(sims, axis=1)
            found = np.isfinite(np.take_along_axis(sims, best[:, None, :], 1)[:, 0])
            out[rows] = np.where(found, np.take_along_axis(cand, best, 1), -1)
        return out

    def similar_items(self, item, k=10):
        """The k items closest in cosine similarity: a list of (rank, item, score).

        An unknown (or NULL) item has no vector, so it has no similar items: an empty list."""
        k = self._check_k(k)
        code = int(self._codes([item], "item")[0])
        if code < 0:
            return []
        sims = self._unit @ self._unit[code]
        sims[code] = -np.inf
        top = _top_k(sims[None, :], k)[0]
        return [(n + 1, self._id(j, "item"), float(sims[j])) for n, j in enumerate(top)
                if np.isfinite(sims[j])]


def _neighbors_ok(a: dict, ni: int) -> bool:
    if "neighbor_indptr" not in a:
        return True
    ptr, items, w = a["neighbor_indptr"], a["neighbor_items"], a["neighbor_weights"]
    return (len(ptr) == ni + 1 and ptr[-1] == len(items) == len(w)
            and (len(items) == 0 or (0 <= items.min() and items.max() < ni)))


def _ranges(lo, hi):
    """Concatenated aranges lo[n]:hi[n]."""
    lens = hi - lo
    return np.repeat(lo - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())


def _top_k(scores, k):
    """Per row, indices of the k largest scores, best first; ties go to the lower index.

    Exact and faster than argpartition: the k-th largest of ~8k column-group maxima is a lower
    bound of each row's k-th best score, so only the few scores above it need sorting."""
    rows, n = scores.shape
    k = min(k, n)
    starts = np.arange(0, n, max(1, n // (8 * k)))
    if len(starts) > k:
        group_max = np.maximum.reduceat(scores, starts, axis=1)
        bound = np.partition(group_max, len(starts) - k, axis=1)[:, len(starts) - k]
        r, c = np.nonzero(scores >= bound[:, None])
    else:
        r, c = np.divmod(np.arange(rows * n), n)
    order = np.lexsort((c, -scores[r, c], r))
    r, c = r[order], c[order]
    rank = np.arange(len(r)) - np.searchsorted(r, r)
    return c[rank < k].reshape(rows, k)
