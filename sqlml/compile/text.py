"""Free-text columns compiled to SQL: sqlml's TextCleaner then TfidfVectorizer (one, or a
FeatureUnion of them), equal bit for bit to ``prep.transform``.

A text block of the matrix is not one expression per vocabulary column: a row holds few of the
terms, so the block is one ``LIST(STRUCT(i BIGINT, v DOUBLE))`` per row, the row's non-zero
entries in column order (a CSR row), and a linear model adds ``sum(v * coef[i])`` over it.

What each step reproduces, and how:

- TextCleaner: NULL as '', every ``<[^>]+>`` replaced by a space (RE2 and Python's ``re`` find
  the same leftmost, non-overlapping matches for this pattern), then Python's ``str.lower``.
  DuckDB's ``lower`` maps every code point as Python does except two, which are fixed first:
  U+0130 (Python gives 'i' + U+0307) and the final sigma (Python lowers a capital sigma to 'ς'
  after a cased letter and not before one, skipping case-ignorable characters). The cased and
  case-ignorable classes are read from this Python's own ``str.lower`` and kept as a stored
  pattern, run only on rows holding a capital sigma.
- The word tokenizer ``(?u)\\b\\w\\w+\\b``: maximal runs of two or more word characters.
  Python's ``\\w`` is exactly Unicode letters, numbers and '_' (checked over every code point);
  RE2's ``[\\pL\\pN_]`` is the same class from a newer Unicode, so the few characters it adds
  (unassigned in this Python's tables) are turned into spaces first.
- char_wb: whitespace as ``str.split`` sees it (an explicit class: RE2's ``\\s`` is ASCII),
  each word padded with one space, its n-grams of code points (DuckDB's ``substring``).
- Counts, ``1 + ln(tf)``, the idf product and the l2 norm, as TfidfTransformer does them:
  ``log`` then ``+ 1``, times idf, then each value divided by the square root of the sum of
  squares added left to right in column order (``list_reduce`` from 0.0). numpy's ``log``
  differs from DuckDB's ``ln`` in the last bit for a few integers (9170 is the first here);
  those counts up to ``LN_CHECKED`` get numpy's value from a stored table (numpy 1.26
  differs on a third of the integers, numpy 2 on a few).

The vocabulary, idf weights and coefficients are arrays in sqlml.model_params (``Params``):
the macro text has one shape whatever the vocabulary's size. Terms are found by a hash join
of the row's n-grams with the vocabulary, in a correlated subquery that DuckDB decorrelates
into one join per query (a MAP or ``list_position`` would scan the vocabulary per n-gram).
"""

from __future__ import annotations

import functools
import re

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline

from sqlml.compile.expressions import NotCompilable, num, text
from sqlml.compile.params import TABLE
from sqlml.train.preprocessing import TextCleaner

DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
LN_CHECKED = 1 << 16          # counts whose ln is checked against numpy's
MAX_CODE_POINT = 0x110000


def _ranges(points: list[int]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for c in points:
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return [(a, b) for a, b in out]


def _re2_class(points: list[int], negate: bool = False) -> str:
    def one(c: int) -> str:
        return f"\\x{{{c:X}}}"
    body = "".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in _ranges(points))
    return f"[{'^' if negate else ''}{body}]"


def _scalar(sql: str, params: list | None = None):
    """One value computed by a private in-memory DuckDB: the engine the SQL will run on."""
    import duckdb
    con = duckdb.connect()
    try:
        row = con.execute(sql, params or []).fetchone()
    finally:
        con.close()
    assert row is not None   # every query here is an aggregate: one row
    return row[0]


@functools.lru_cache(maxsize=1)
def _code_points() -> str:
    """Every code point but the surrogates, as one string (4 MB, built once: the Unicode tables
    below each walk it, and building it took 0.7 s per table)."""
    return "".join(chr(c) for c in range(MAX_CODE_POINT) if not 0xD800 <= c <= 0xDFFF)


@functools.lru_cache(maxsize=1)
def word_class() -> str:
    """The characters ``str.split()`` does not split on, as an RE2 class (RE2's ``\\S`` is
    ASCII only)."""
    return _re2_class([ord(c) for c in _code_points() if c.isspace()], negate=True)


@functools.lru_cache(maxsize=1)
def sigma_pattern() -> str:
    """A capital sigma in Python's Final_Sigma context, as an RE2 pattern whose groups 1 to 3
    are what surrounds it: ``(cased ignorable*) Σ (ignorable*) (neither | end)``.

    Python's tables are read through ``str.lower`` itself: c is case-ignorable when 'AcΣ'
    ends in 'ς' but 'cΣ' does not, and cased (and not ignorable) when 'cΣ' ends in 'ς'."""
    ignorable, cased = [], []
    for c in _code_points():
        after_cased = ("A" + c + "Σ").lower().endswith("ς")
        alone = (c + "Σ").lower().endswith("ς")
        if after_cased and not alone:
            ignorable.append(ord(c))
        if alone:
            cased.append(ord(c))
    ign, cas = _re2_class(ignorable), _re2_class(cased)
    neither = _re2_class(sorted(ignorable + cased), negate=True)
    return f"({cas}{ign}*)\\x{{3A3}}({ign}*)({neither}|$)"


@functools.lru_cache(maxsize=1)
def non_word_letters() -> str | None:
    """The characters RE2's ``[\\pL\\pN_]`` matches and Python's ``\\w`` does not (code points
    a newer Unicode assigned), as an RE2 class; None when there are none."""
    word = re.compile(r"(?u)\w")
    chars = _code_points()
    re2 = {chr(c) for c in _scalar(
        r"SELECT list(i) FILTER (WHERE regexp_matches(chr(i::INTEGER), '^[\pL\pN_]$')) "
        f"FROM range(1, {MAX_CODE_POINT}) t(i) WHERE i NOT BETWEEN 55296 AND 57343")}
    extra = sorted(ord(c) for c in re2 if not word.match(c))
    missing = [c for c in word.findall(chars) if c not in re2]
    if missing:
        raise NotCompilable(
            f"DuckDB's regular expressions do not see {len(missing)} of Python's word "
            f"characters (first U+{ord(missing[0]):04X}) as letters or numbers")
    return _re2_class(extra) if extra else None


@functools.lru_cache(maxsize=1)
def ln_exceptions() -> tuple[tuple[int, float], ...]:
    """(count, numpy's log) where DuckDB's ``ln`` of the count differs in the last bit."""
    x = np.arange(1, LN_CHECKED + 1, dtype=np.float64)
    got = _scalar(f"SELECT list(ln(i::DOUBLE) ORDER BY i) FROM range(1, {LN_CHECKED + 1}) t(i)")
    want = np.log(x)
    bad = np.flatnonzero(np.asarray(got, dtype=np.float64) != want)
    return tuple((int(x[i]), float(want[i])) for i in bad)


@functools.lru_cache(maxsize=1)
def reciprocal_norm() -> bool:
    """Whether scikit-learn's l2 normalisation of a CSR row multiplies by the reciprocal of
    the norm (its compiled loop ``x /= norm`` is built so) rather than dividing; asked of
    scikit-learn itself on a row where the two round differently."""
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize
    x = np.array([6.682146589020994, 24.845064523878072])   # the two differ in x[0]
    norm = np.sqrt(x[0] * x[0] + x[1] * x[1])
    got = normalize(sp.csr_matrix(x.reshape(1, -1)), norm="l2").toarray()[0]
    if np.array_equal(got, x * (1.0 / norm)):
        return True
    if np.array_equal(got, x / norm):
        return False
    raise NotCompilable("this scikit-learn's l2 row normalisation rounds as neither x / norm "
                        "nor x * (1 / norm)")


def _store(store, key: str, values, kind: str) -> str:
    """The array's SQL: stored as data, or spelt out when there is no store (emitter tests)."""
    if store is not None:
        return store.add(key, values, kind)
    if kind == "texts":
        return f"[{', '.join(text(v) for v in values)}]::VARCHAR[]"
    if kind == "ints":
        return f"[{', '.join(str(int(v)) for v in values)}]::BIGINT[]"
    return f"[{', '.join(num(v) for v in values)}]::DOUBLE[]"


@functools.lru_cache(maxsize=1)
def lowering() -> tuple[tuple[tuple[str, str], ...], tuple[str, str], bool]:
    """How TextCleaner lowercases where DuckDB's ``lower`` does not, asked of TextCleaner
    itself over every code point: the code points it lowers to several (Python's
    ``str.lower``, as pandas 2 calls it, makes U+0130 'i' + U+0307), those it lowers to
    another single one (pandas 3's Arrow strings know letters of a newer Unicode than
    DuckDB's tables), and whether a capital sigma ending a word becomes 'ς' (Python does,
    Arrow does not). Each is applied before ``lower``, which then leaves it as it is."""
    cleaner = TextCleaner()
    # One string of every code point, space-separated (a space lowers to itself and gives a
    # sigma no cased neighbour); '<' and '>' would make tags.
    chars = [c for c in _code_points() if c not in "<> \x00"]
    want = str(cleaner.transform(np.array([" ".join(chars)], dtype=object))[0]).split(" ")
    got = str(_scalar("SELECT lower(?)", [" ".join(chars)])).split(" ")
    several: list[tuple[str, str]] = []
    one: list[tuple[str, str]] = []
    for c, w, g in zip(chars, want, got, strict=True):
        if w != g:
            (one if len(w) == 1 else several).append((c, w))
    targets = [w for _, w in several + one]
    kept = str(_scalar("SELECT lower(?)", [" ".join(targets)])).split(" ") if targets else []
    for (c, w), k in zip(several + one, kept, strict=True):
        if k != w:   # DuckDB's lower would change what the mapping put before it
            raise NotCompilable(f"DuckDB's lower() changes U+{ord(c):04X}'s lowercase form, "
                                f"which sqlml's text cleaning keeps")
    final = cleaner.transform(np.array(["A\u03a3"], dtype=object))[0] == "a\u03c2"
    return (tuple(several), ("".join(c for c, _ in one), "".join(w for _, w in one)), final)


def cleaned(p: str, store, key: str) -> str:
    """TextCleaner.transform as SQL: the lowered text with tags replaced by spaces."""
    s = f"regexp_replace(coalesce(CAST({p} AS VARCHAR), ''), '<[^>]+>', ' ', 'g')"
    several, (src, dst), final = lowering()
    for c, w in several:
        s = f"replace({s}, {text(c)}, {text(w)})"
    if src:
        s = f"translate({s}, {text(src)}, {text(dst)})"
    if not final:
        return f"lower({s})"
    pattern = f"({_store(store, f'{key}.final_sigma', [sigma_pattern()], 'texts')})[1]"
    # The pattern is bound with the text (a lambda cannot hold a subquery); it is compiled
    # only on the rows holding a capital sigma, which CASE alone evaluates.
    fixed = (f"list_transform([{{'s': {s}, 'p': {pattern}}}], lambda __sqlml_s: CASE WHEN "
             f"contains(__sqlml_s.s, '\u03a3') THEN regexp_replace(__sqlml_s.s, __sqlml_s.p, "
             f"'\\1\u03c2\\2\\3', 'g') ELSE __sqlml_s.s END)[1]")
    return f"lower({fixed})"


class TextBlock:
    """One TfidfVectorizer's block of the matrix, columns ``start`` to ``start + width``."""

    def __init__(self, vec: TfidfVectorizer, column: str, clean: str, start: int, store,
                 key: str):
        _check(vec, column)
        self.vec, self.clean, self.start, self.store, self.key = vec, clean, start, store, key
        self.column = column
        vocab = vec.vocabulary_
        self.width = len(vocab)
        terms = [""] * self.width
        for t, j in vocab.items():
            terms[int(j)] = t
        if any(t == "" and vocab.get("") != j for j, t in enumerate(terms)):
            raise NotCompilable(f"text column {column}: its vocabulary's indices have gaps")
        self.terms = _store(store, f"{key}.terms", terms, "texts")
        # (column of the vocabulary table, its Params key and kind, its array's SQL)
        self.arrays = [("term", f"{key}.terms", "texts", self.terms)]
        idf = vec.idf_ if vec.use_idf else None
        self.idf = None if idf is None else _store(store, f"{key}.idf", idf, "doubles")
        if self.idf is not None:
            self.arrays.append(("idf", f"{key}.idf", "doubles", self.idf))
        self.grams = _grams(vec, self.clean)
        self.values = self._values()

    def _weight(self, count: str) -> str:
        """tf as TfidfTransformer transforms it: log then + 1 (sublinear), times idf; numpy's
        log where it differs from DuckDB's ln (x.ln, joined on the count)."""
        c = f"{count}::DOUBLE"
        if self.vec.sublinear_tf:
            ln = f"coalesce(x.ln, ln({c}))" if self._ln_table() else f"ln({c})"
            c = f"({ln} + 1.0e0)"
        return f"({c} * v.idf)" if self.idf is not None else c

    def _ln_table(self) -> str | None:
        """The counts whose ln DuckDB rounds differently from numpy, as a table (n, ln), one
        per model (its blocks share it); None when there are none."""
        bad = ln_exceptions() if self.vec.sublinear_tf else ()
        if not bad:
            return None
        counts, logs = [k for k, _ in bad], [v for _, v in bad]
        if self.store is None:
            return (f"SELECT unnest({_store(None, '', counts, 'ints')}) AS n, "
                    f"unnest({_store(None, '', logs, 'doubles')}) AS ln")
        if "text.ln.counts" not in self.store.arrays:
            self.store.add("text.ln.counts", counts, "ints")
            self.store.add("text.ln.values", logs, "doubles")
        where = [f"p{k}.name = {text(self.store.model)} AND p{k}.version = {self.store.version} "
                 f"AND p{k}.key = '{key}'" for k, key in enumerate(("text.ln.counts",
                                                                     "text.ln.values"))]
        return (f"SELECT unnest(p0.ints) AS n, unnest(p1.doubles) AS ln FROM {TABLE} p0, "
                f"{TABLE} p1 WHERE {' AND '.join(where)}")

    def entries(self, extra: dict[str, str]) -> str:
        """LIST(STRUCT(i, w, <extra>...)) of the row's terms in column order: i the column in
        the block (from 0), w the weighted count before normalisation, and per extra name the
        element i + 1 of that DOUBLE[] expression (joined with the vocabulary, not indexed)."""
        fields = ["'i': v.i", f"'w': {self._weight('t.c')}",
                  *(f"'{name}': v.{name}" for name in extra)]
        ln = self._ln_table()
        logs = f" LEFT JOIN ({ln}) x ON x.n = t.c" if ln else ""
        return (f"coalesce((SELECT list({{{', '.join(fields)}}} ORDER BY v.i) "
                f"FROM (SELECT g, count(*) AS c FROM (SELECT unnest({self.grams}) AS g) "
                f"GROUP BY g) t JOIN ({self._vocabulary(extra)}) v ON t.g = v.term{logs}), [])")

    def _vocabulary(self, extra: dict[str, str]) -> str:
        """The vocabulary as a table (term, i, idf, extra...). From the store it is one join
        of the arrays' rows of sqlml.model_params rather than a scalar subquery per array."""
        arrays = self.arrays + [(name, f"{self.key}.{name}", "doubles", sql)
                                for name, sql in extra.items()]
        if self.store is None:
            cols = [f"unnest({sql}) AS {name}" for name, _, _, sql in arrays]
            return f"SELECT {', '.join(cols)}, unnest(range({self.width})) AS i"
        cols = [f"unnest(p{k}.{kind}) AS {name}" for k, (name, _, kind, _) in enumerate(arrays)]
        tables = ", ".join(f"{TABLE} p{k}" for k in range(len(arrays)))
        where = " AND ".join(f"p{k}.name = {text(self.store.model)} AND p{k}.version = "
                             f"{self.store.version} AND p{k}.key = {text(key)}"
                             for k, (_, key, _, _) in enumerate(arrays))
        # The index from the terms' own array: unnest(range(n)) is a constant, which the
        # optimiser folds into an n-element list in every query (30 ms for 25,000 terms).
        return (f"SELECT {', '.join(cols)}, generate_subscripts(p0.texts, 1) - 1 AS i "
                f"FROM {tables} WHERE {where}")

    def _norm(self, e: str) -> str:
        """What each value is multiplied by: 1 / sqrt(sum of squares), as scikit-learn's
        compiled row normalisation computes it (see ``reciprocal_norm``)."""
        norm = (f"sqrt(list_reduce(list_transform({e}, lambda __sqlml_q: __sqlml_q.w * "
                f"__sqlml_q.w), lambda __sqlml_a, __sqlml_b: __sqlml_a + __sqlml_b, 0.0e0))")
        return f"(1.0e0 / {norm})" if reciprocal_norm() else norm

    def _scaled(self, w: str, n: str) -> str:
        return f"({w} * {n})" if reciprocal_norm() else f"({w} / {n})"

    def _values(self) -> str:
        e, n = "__sqlml_e", "__sqlml_n"
        if self.vec.norm is None:
            body = f"list_transform({e}, lambda __sqlml_q: {{'i': __sqlml_q.i, 'v': __sqlml_q.w}})"
        else:   # the norm bound once per row, not once per term
            body = (f"list_transform([{self._norm(e)}], lambda {n}: list_transform({e}, "
                    f"lambda __sqlml_q: {{'i': __sqlml_q.i, "
                    f"'v': {self._scaled('__sqlml_q.w', n)}}}))[1]")
        return f"list_transform([{self.entries({})}], lambda {e}: {body})[1]"

    def dots(self, coef: np.ndarray) -> str:
        """DOUBLE[] of sum_i x_i * coef[k, start + i], one per row k of ``coef``: each value
        x_i as the matrix holds it (w / norm), times its coefficient."""
        block = np.asarray(coef, dtype=np.float64)[:, self.start:self.start + self.width]
        # A fresh key per call: a calibrated model's folds each weigh the same block.
        keys = [f"{self.key}.coef{k + 1}" for k in range(block.shape[0])]
        if self.store is not None:
            keys = [self.store.fresh(key) for key in keys]
        extra = {f"coef{k + 1}": _store(self.store, key, block[k], "doubles")
                 for k, key in enumerate(keys)}
        e, n = "__sqlml_e", "__sqlml_n"
        value = self._scaled("__sqlml_q.w", n) if self.vec.norm is not None else "__sqlml_q.w"
        # list_sum of no terms is NULL: a row without vocabulary terms adds 0.
        sums = [f"coalesce(list_sum(list_transform({e}, lambda __sqlml_q: {value} * "
                f"__sqlml_q.{name})), 0.0e0)" for name in extra]
        body = f"[{', '.join(sums)}]"
        if self.vec.norm is not None:   # the norm bound once per row
            body = f"list_transform([{self._norm(e)}], lambda {n}: {body})[1]"
        return f"list_transform([{self.entries(extra)}], lambda {e}: {body})[1]"


def _check(vec, column: str) -> None:
    if not isinstance(vec, TfidfVectorizer):
        raise NotCompilable(f"text column {column} is vectorised by {type(vec).__name__}, "
                            f"not TfidfVectorizer")
    unsupported = {
        "input": vec.input != "content", "strip_accents": vec.strip_accents is not None,
        "lowercase": vec.lowercase, "preprocessor": vec.preprocessor is not None,
        "tokenizer": vec.tokenizer is not None, "binary": vec.binary,
        "dtype": np.dtype(vec.dtype) != np.float64,
        "analyzer": vec.analyzer not in ("word", "char_wb"),
        "norm": vec.norm not in (None, "l2"),
        "token_pattern": vec.analyzer == "word" and vec.token_pattern != DEFAULT_TOKEN_PATTERN,
    }
    bad = [k for k, v in unsupported.items() if v]
    if bad:
        raise NotCompilable(f"text column {column}: TfidfVectorizer setting "
                            f"{bad[0]}={getattr(vec, bad[0])!r} is not compiled")


def _grams(vec: TfidfVectorizer, clean: str) -> str:
    lo, hi = vec.ngram_range
    if vec.analyzer == "word":
        return _word_grams(vec, clean, lo, hi)
    return _char_wb_grams(clean, lo, hi)


def _word_grams(vec: TfidfVectorizer, clean: str, lo: int, hi: int) -> str:
    extra = non_word_letters()
    s = f"regexp_replace({clean}, '{extra}', ' ', 'g')" if extra else clean
    tokens = f"regexp_extract_all({s}, '[\\pL\\pN_]{{2,}}')"
    stop = vec.get_stop_words()
    if stop:
        words = _store(None, "", sorted(stop), "texts")   # a fixed list, not the model's size
        tokens = (f"list_filter({tokens}, lambda __sqlml_w: NOT list_contains({words}, "
                  f"__sqlml_w))")
    t = "__sqlml_t"
    parts = []
    for n in range(lo, hi + 1):
        if n == 1:
            parts.append(t)
            continue
        joined = " || ' ' || ".join(f"{t}[__sqlml_i + {k}]" for k in range(n))
        parts.append(f"list_transform(range(1, len({t}) + {2 - n}), lambda __sqlml_i: {joined})")
    body = parts[0] if len(parts) == 1 else f"flatten([{', '.join(parts)}])"
    return f"list_transform([{tokens}], lambda {t}: {body})[1]"


def _char_wb_grams(clean: str, lo: int, hi: int) -> str:
    words = f"regexp_extract_all({clean}, '{word_class()}+')"
    p = "__sqlml_p"
    # Python's loop: for n from lo, every substring of n, stopping after the n that covers
    # the padded word; a padded word shorter than lo counts once, whole.
    grams = (f"flatten(list_transform(range({lo}, least({hi}, length({p})) + 1), lambda __sqlml_n:"
             f" list_transform(range(1, length({p}) - __sqlml_n + 2), lambda __sqlml_i: "
             f"substring({p}, __sqlml_i, __sqlml_n))))")
    if lo > 3:
        grams = f"CASE WHEN length({p}) < {lo} THEN [{p}] ELSE {grams} END"
    return (f"flatten(list_transform(list_transform({words}, lambda __sqlml_w: ' ' || __sqlml_w"
            f" || ' '), lambda {p}: {grams}))")


def blocks(name: str, trans: Pipeline, p: str, start: int, store) -> list[TextBlock]:
    """The text column's blocks: one per TfidfVectorizer, in the matrix's order."""
    steps = [s for _, s in trans.steps]
    if len(steps) != 2 or not isinstance(steps[0], TextCleaner):
        raise NotCompilable(f"preprocessing of text column {name} is not TextCleaner then TF-IDF")
    vecs = ([t for _, t in steps[1].transformer_list] if isinstance(steps[1], FeatureUnion)
            else [steps[1]])
    if isinstance(steps[1], FeatureUnion) and steps[1].transformer_weights:
        raise NotCompilable(f"text column {name}: weighted feature union")
    clean = cleaned(p, store, f"text.{name}")
    out = []
    for k, vec in enumerate(vecs):
        b = TextBlock(vec, name, clean, start, store, f"text.{name}.{k + 1}")
        out.append(b)
        start += b.width
    return out


def warm() -> None:
    """Build the Unicode tables a text column's SQL needs (about 3 s in a fresh process), so
    that training can do it in a thread while it fits; a table DuckDB cannot match is left for
    the compile step to report."""
    for table in (word_class, sigma_pattern, non_word_letters, lowering, ln_exceptions):
        try:
            table()
        except NotCompilable:
            pass
