"""EASE (Steck 2019), a closed-form item-item recommender, and BM25 confidence weighting.

EASE learns item-item weights ``B = I - P / diag(P)`` with ``P = (X'X + lambda I)^-1`` and a zero
diagonal, where X is the binary user x item matrix of positives; a user's score of item j is
``sum over the user's positive items i of B[i, j]``. It is often the strongest model on
MovieLens-sized data, and it costs one dense inverse of an items x items matrix, so sqlml fits it
only up to ``MAX_ITEMS`` items (after leaving out items with a single positive, which carry no
co-occurrence: their rows and columns of B are zero anyway but for the ridge).

What is stored and served is B kept to each source item's ``neighbors`` largest weights (by
absolute value), as a sparse matrix: the pure-SQL functions score by a join over it, and the Python
functions use the very same truncated matrix, so both give the same lists.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp

__all__ = ["MAX_ITEMS", "basis", "bm25", "fit_ease", "shared_basis"]

MAX_ITEMS = 20_000      # a dense float32 inverse of 20k x 20k items: 1.6 GB and minutes
NEIGHBORS = 200         # weights kept per source item (validation on ml-latest-small: 100-500
                        # lose 0.005-0.01 NDCG@10 against the full matrix, noisily)


class Basis:
    """The eigenvectors V and eigenvalues e of X'X over the items kept, from which EASE's weights
    follow for any lambda by one matrix product (so AUTO tries several lambdas for the price of
    one decomposition): ``P = (I - V diag(e / (e + lambda)) V') / lambda``, and with
    ``W = V diag(e / (e + lambda)) V'``, ``B[i, j] = W[i, j] / (1 - W[j, j])`` off the diagonal.
    With fewer users than items, V comes from the users' Gram matrix XX' (rank <= users), which
    makes EASE on a few hundred users and thousands of items cost seconds, not minutes."""

    def __init__(self, pu: np.ndarray, pi: np.ndarray, nu: int, ni: int) -> None:
        X = sp.csr_matrix((np.ones(len(pu), np.float32), (pu, pi)), shape=(nu, ni))
        keep = np.flatnonzero(np.bincount(pi, minlength=ni) >= 2)
        self.keep = keep if len(keep) >= 2 else np.arange(ni)
        self.ni = ni
        Xk = X[:, self.keep]
        small = nu * len(self.keep) <= 50_000_000   # dense BLAS beats sparse products here
        Xd = Xk.toarray() if small else Xk
        if len(self.keep) <= nu:
            G = Xd.T @ Xd
            e, V = np.linalg.eigh(G.toarray() if sp.issparse(G) else G)
        else:
            K = Xd @ Xd.T
            e, U = np.linalg.eigh(K.toarray() if sp.issparse(K) else K)
            pos = e > 1e-6 * max(float(e.max()), 1e-30)
            e, V = e[pos], np.asarray(Xd.T @ U[:, pos]) / np.sqrt(e[pos])
        self.e, self.V = np.maximum(e, 0).astype(np.float32), V.astype(np.float32)

    def weights(self, lam: float, neighbors: int = NEIGHBORS) -> sp.csr_matrix:
        """The truncated EASE weights (ni x ni CSR; row = source item) for ridge ``lam``."""
        f = self.e / (self.e + np.float32(lam))
        W = (self.V * f) @ self.V.T
        B = W / (1.0 - np.diag(W))[None, :]
        np.fill_diagonal(B, 0.0)
        keep = self.keep
        n = min(neighbors, len(keep) - 1)
        top = np.argpartition(-np.abs(B), n - 1, axis=1)[:, :n]
        vals = np.take_along_axis(B, top, 1).ravel().astype(float)
        rows, cols = np.repeat(keep, n), keep[top.ravel()]
        nz = vals != 0
        out = sp.csr_matrix((vals[nz], (rows[nz], cols[nz])), shape=(self.ni, self.ni))
        out.sort_indices()
        return out


_SHARED = threading.local()   # .cache: {key: Basis} while shared_basis() is open, else None


@contextmanager
def shared_basis() -> Iterator[None]:
    """Within it, fits on the same pairs in this thread (AUTO's lambdas, on one split) share one
    decomposition of X'X; after it the decomposition is dropped, since an items x items matrix
    is too large to keep. Per thread, so two trainings side by side never see each other's."""
    _SHARED.cache = {}
    try:
        yield
    finally:
        _SHARED.cache = None


def basis(pu: np.ndarray, pi: np.ndarray, nu: int, ni: int) -> Basis:
    """The Basis of these positive pairs: shared within ``shared_basis``, fresh otherwise."""
    cache = getattr(_SHARED, "cache", None)
    if cache is None:
        return Basis(pu, pi, nu, ni)
    key = (nu, ni, hash(np.asarray(pu, np.int64).tobytes()),
           hash(np.asarray(pi, np.int64).tobytes()))
    if key not in cache:
        cache.clear()
        cache[key] = Basis(pu, pi, nu, ni)
    return cache[key]


def fit_ease(pu: np.ndarray, pi: np.ndarray, nu: int, ni: int, lam: float,
             neighbors: int = NEIGHBORS) -> sp.csr_matrix:
    """The truncated EASE weights (ni x ni CSR; row = source item) from positive pairs."""
    return Basis(pu, pi, nu, ni).weights(lam, neighbors)


def bm25(pu: np.ndarray, pi: np.ndarray, w: np.ndarray, nu: int, ni: int, k1: float = 100.0,
         b: float = 0.8) -> np.ndarray:
    """BM25 weights of interaction strengths, users as documents and items as terms (the form
    ``implicit.nearest_neighbours.bm25_weight`` computes): an item many users share counts less
    (idf), and a long user history counts each interaction less (length normalisation)."""
    idf = np.log(nu / (1.0 + np.bincount(pi, minlength=ni)))
    length = np.bincount(pu, w, minlength=nu)
    norm = (1.0 - b) + b * length / max(length.mean(), 1e-300)
    # Clipped at 0: an item nearly every user has would get a negative idf, a confidence below 1.
    return np.maximum(w * (k1 + 1.0) / (k1 * norm[pu] + w) * idf[pi], 0.0)
