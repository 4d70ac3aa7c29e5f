"""Text columns compiled to plain SQL: sqlml's TextCleaner and TfidfVectorizer reproduced bit for
bit (real SMS messages and MovieLens titles, and a synthetic non-ASCII set that always runs), and
models with a text column publishing ``_sql`` functions that equal the Python-served ones, in
the session and in the duckdb CLI."""

from __future__ import annotations

import csv
import unicodedata

import numpy as np
import pandas as pd
import pytest
from conftest import shared_file
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline
from test_compile_sql import cli_rows

import sqlml
from sqlml.cli import demo
from sqlml.compile import text as compile_text
from sqlml.compile.expressions import NotCompilable
from sqlml.compile.params import Params
from sqlml.train import preprocessing
from sqlml.train.preprocessing import Feature, TextCleaner

# Accents, German sharp s, Greek with final sigmas, Turkish dotted I, CJK, emoji, HTML tags and
# entities, combining marks (not word characters in Python), non-ASCII digits and spaces, a
# letter of a Unicode newer than Python 3.11's tables, and the empty and missing text.
NON_ASCII = [
    "Café naïve résumé <b>CRÈME BRÛLÉE</b> café", "Straße STRASSE straße Groß",
    "ΟΔΟΣ ΣΑΣ Σ ΑΣ' ΑΣ\u0301 οδός σας", "İstanbul İSTANBUL istanbul",
    "東京タワー 東京 タワー 日本語のテキスト", "😀😀 great 👍🏽 great!! 😀",
    "&amp; &lt;tag&gt; <a href='x'>link</a> &nbsp;text", "e\u0301te\u0301 \u00e9t\u00e9 hi\u0307",
    "हिन्दी भाषा हिन्दी", "½ Ⅻ x² ٣٤٥ 123 ١٢٣", "wide\u3000space\xa0nbsp\x1cfs\u2028line",
    "under_score snake_case __dunder__", "\U0001e030\U0001e031 \u1c89\u1c89 ꟊꟊ", "", None,
    "Café STRAßE ΣΑΣ 東京 😀 <i>great</i> हिन्दी ½ under_score",
]


def _fit(docs, vectorizer) -> ColumnTransformer:
    pipe = Pipeline([("clean", TextCleaner()), ("tfidf", vectorizer)])
    ct = ColumnTransformer([("t", pipe, "t")])
    return ct.fit(_frame(docs))


def _frame(docs) -> pd.DataFrame:
    return pd.DataFrame({"t": np.array(docs, dtype=object)})


def assert_blocks_equal(docs, prep: ColumnTransformer, con=None) -> None:
    """Every compiled block's entries equal prep.transform's CSR rows, bit for bit."""
    con = con or sqlml.connect()
    store = Params("m", 1)
    blocks = compile_text.blocks("t", prep.transformers_[0][1], '"t"', 0, store)
    store.write(con)
    con.register("docs_frame", _frame(docs).assign(r=np.arange(len(docs))))
    want = prep.transform(_frame(docs))
    want = want.tocsr() if hasattr(want, "tocsr") else None
    assert want is not None or len(blocks) == 1
    for b in blocks:
        rows = con.execute(f"SELECT {b.values} FROM docs_frame ORDER BY r").fetchall()
        if want is not None:
            block = want[:, b.start:b.start + b.width].tocsr()
            block.sort_indices()
        else:
            from scipy import sparse
            block = sparse.csr_matrix(np.asarray(prep.transform(_frame(docs))))
        for r, (entries,) in enumerate(rows):
            got = [(e["i"], e["v"]) for e in entries]
            row = block[r]
            assert got == list(zip(row.indices.tolist(), row.data.tolist(), strict=True)), (
                f"row {r} {docs[r]!r}")


def sqlml_text_pipeline(docs, dense: bool) -> ColumnTransformer:
    f = [Feature("t", "VARCHAR", "text", "tfidf")]
    return preprocessing.build_transformer(f, dense=dense).fit(_frame(docs))


def test_synthetic_non_ascii_text_is_bit_for_bit():
    docs = NON_ASCII * 2 + [d.upper() for d in NON_ASCII if d] + [d[::-1] for d in NON_ASCII if d]
    for dense in (False, True):
        assert_blocks_equal(docs, sqlml_text_pipeline(docs, dense))


@pytest.mark.parametrize("vectorizer", [
    TfidfVectorizer(lowercase=False, ngram_range=(1, 3), min_df=1, stop_words="english"),
    TfidfVectorizer(lowercase=False, norm=None, use_idf=False),
    TfidfVectorizer(lowercase=False, analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    TfidfVectorizer(lowercase=False, analyzer="char_wb", ngram_range=(5, 6)),
], ids=["words-1-3-stop-words", "no-norm-no-idf", "char_wb-2-5", "char_wb-5-6-short-words"])
def test_vectorizer_settings_are_bit_for_bit(vectorizer):
    docs = NON_ASCII * 2 + ["the cat sat on the mat", "a cat and a dog", "x y z", "ab cd ab"]
    assert_blocks_equal(docs, _fit(docs, vectorizer))


def test_unsupported_vectorizer_settings_say_which():
    docs = ["some text here", "more text here"]
    for vec, setting in ((TfidfVectorizer(lowercase=False, binary=True), "binary=True"),
                         (TfidfVectorizer(lowercase=False, token_pattern=r"\S+"),
                          "token_pattern='\\\\S+'"),
                         (TfidfVectorizer(), "lowercase=True")):
        prep = _fit(docs, vec)
        with pytest.raises(NotCompilable) as err:
            compile_text.blocks("t", prep.transformers_[0][1], '"t"', 0, None)
        assert f"text column t: TfidfVectorizer setting {setting} is not compiled" == \
            str(err.value)


def test_python_word_characters_are_letters_numbers_and_underscore():
    """The premise of the word tokenizer: Python's \\w is Unicode's L and N categories and '_'
    (RE2's [\\pL\\pN_], less the code points this Python's tables leave unassigned)."""
    import re
    w = re.compile(r"(?u)\w")
    for c in compile_text._code_points():
        assert bool(w.match(c)) == (unicodedata.category(c)[0] in "LN" or c == "_"), hex(ord(c))


def test_final_sigma_and_dotted_i_follow_python_lower(monkeypatch):
    """pandas 2 lowers with Python's str.lower (final sigma, U+0130 to two code points); the
    SQL then reproduces it: checked here whatever pandas this environment has."""
    monkeypatch.setattr(compile_text, "lowering",
                        lambda: ((("\u0130", "i\u0307"),), ("", ""), True))
    con = sqlml.connect()
    store = Params("m", 1)
    sql = compile_text.cleaned("s", store, "k")
    store.write(con)
    cases = ["ΟΔΟΣ", "ΣΑΣ ΣΑΣ.", "Σ", "ΑΣ'", "ΑΣ'Β", "ΑΣ\u0301", "ΑΣ\u0301Β", "ΑΣΣ", "ΑΣ ΣΑ",
             "1Σ", "ΑΣ1", "Α\u0301Σ", "'Σ", "ΑΣ\u0345", "AΣ.Σ", "İΣ", "ΣİΣ", "ΑΣ😀", "東Σ", "ǅΣ"]
    for s in cases:
        got = con.execute(f"SELECT {sql} FROM (SELECT ? AS s)", [s]).fetchone()[0]
        assert got == s.lower(), s


def test_sms_spam_messages_are_bit_for_bit():
    path = shared_file("text", "SMSSpamCollection")
    docs = [line.split("\t", 1)[1] for line in path.read_text(encoding="utf-8").splitlines()]
    docs = docs[:3000]
    assert_blocks_equal(docs, sqlml_text_pipeline(docs, dense=False))


def test_movielens_titles_are_bit_for_bit():
    path = shared_file("ratings", "movies.csv")
    with open(path, encoding="utf-8") as fh:
        titles = [r["title"] for r in csv.DictReader(fh)]
    assert any(not t.isascii() for t in titles)
    for dense in (False, True):
        assert_blocks_equal(titles, sqlml_text_pipeline(titles, dense))


# -- models with a text column --------------------------------------------------------------------
@pytest.fixture
def tickets(con):
    rng = np.random.default_rng(3)
    words = ["refund", "late", "broken", "thanks", "great", "cancel", "Straße", "café",
             "ΣΑΣ", "東京", "😀", "<br>", "price", "outage", "help", "ok"]
    rows = []
    for i in range(400):
        body = " ".join(rng.choice(words, 6))
        rows.append({"id": i, "note": None if i % 37 == 0 else body, "calls": i % 5,
                     "label": ["stay", "churn", "pause"][int(("cancel" in body) + (i % 3 == 0))]})
    con.register("tickets_frame", pd.DataFrame(rows))
    con.execute("CREATE TABLE tickets AS FROM tickets_frame")
    return con


@pytest.mark.parametrize(("model_type", "target", "tol"), [
    ("logistic", "label = 'churn'", 1e-12),
    ("logistic", "label", 1e-12),
    ("gradient_boosting", "label = 'churn'", 1e-12),
], ids=["binary-logistic", "multiclass-logistic", "boosting"])
def test_models_with_a_text_column_compile_and_equal_python(tickets, model_type, target, tol):
    con = tickets
    s = sqlml.create_model(con, "tk", f"SELECT id, note, calls, {target} AS y FROM tickets",
                           target="y", model_type=model_type, function="tk",
                           hyperparameters={"max_iter": 20} if model_type != "logistic" else None,
                           progress=False)
    assert "not compiled" not in (s["notes"] or ""), s["notes"]
    m = sqlml.load_model(con, "tk")
    frame = con.execute("SELECT id, note, calls FROM tickets ORDER BY id").df()
    want = np.asarray(m.predict_proba(frame[["note", "calls"]]))
    got = con.execute("SELECT (tk_probabilities_sql(t)).probabilities FROM tickets t "
                      "ORDER BY id").fetchall()
    assert np.max(np.abs(np.array([r[0] for r in got]) - want)) <= tol


def test_macro_stays_small_with_a_10000_term_vocabulary(con):
    rng = np.random.default_rng(0)
    vocab = [f"term{i}" for i in range(10_000)]
    docs = [" ".join(rng.choice(vocab, 30)) for _ in range(2000)]
    con.register("big_frame", pd.DataFrame({"doc": docs, "y": rng.random(2000) < 0.5}))
    con.execute("CREATE TABLE big AS FROM big_frame")
    s = sqlml.create_model(con, "big", "big", target="y", model_type="logistic",
                           function="big", progress=False)
    assert "not compiled" not in (s["notes"] or ""), s["notes"]
    terms = con.execute("SELECT max(len(texts)) FROM sqlml.model_params WHERE name = 'big'"
                        ).fetchone()[0]
    assert terms >= 10_000
    sizes = dict(con.execute("SELECT function_name, max(length(macro_definition)) FROM "
                             "duckdb_functions() WHERE function_name LIKE 'big%_sql' "
                             "GROUP BY ALL").fetchall())
    assert sizes and max(sizes.values()) < 20_000, sizes


# -- the demo, in the session and in the duckdb CLI -----------------------------------------------
@pytest.mark.slow
def test_demo_churn_model_compiles_and_the_cli_scores_it_like_python(tmp_path):
    path = tmp_path / "demo.duckdb"
    demo.run(path, rows=1500, echo=lambda _: None)
    con = sqlml.connect(path)
    shown = con.execute("SELECT value FROM ml_show_model('customer_churn') "
                        "WHERE property = 'compiled_sql'").fetchall()[0][0]
    assert shown.startswith("pure-SQL functions predict_churn_sql"), shown
    con.execute("""CREATE TABLE py_scores AS SELECT customer_id,
                   predict_churn_probability(c) AS p, predict_churn_probability_sql(c) AS q
                   FROM new_customers c""")
    assert con.execute("SELECT max(abs(p - q)) FROM py_scores").fetchone()[0] <= 1e-12
    assert con.execute("SELECT count(*) FROM new_customers WHERE support_notes <> ''"
                       ).fetchone()[0] > 0
    con.close()
    # The CLI's exp() may differ from this DuckDB's in the last bit: compared with Python's.
    row = cli_rows(path, """SELECT count(*) AS n, max(abs(s.p - predict_churn_probability_sql(c)))
                            AS err FROM new_customers c JOIN py_scores s USING (customer_id)""")[0]
    assert int(row["n"]) == 20 and float(row["err"]) <= 1e-12


def test_cli_scores_a_text_model_bit_for_bit_like_the_session(tmp_path):
    """Same DuckDB functions (lower, regexp, ln, sqrt) in the 1.5 CLI: same bits as the session,
    text blocks and probabilities alike."""
    path = tmp_path / "tickets.duckdb"
    con = sqlml.connect(path)
    rows = [{"id": i, "note": t, "y": "refund" in t} for i, t in enumerate(
        [f"{d} refund {i % 7}" if i % 3 == 0 else f"{d} thanks" for i, d in
         enumerate(NON_ASCII[:-3] * 30)])]
    con.register("frame", pd.DataFrame(rows))
    con.execute("CREATE TABLE notes AS FROM frame")
    s = sqlml.create_model(con, "nt", "SELECT note, y FROM notes", target="y",
                           model_type="logistic", function="nt", progress=False)
    assert "not compiled" not in (s["notes"] or ""), s["notes"]
    con.execute("CREATE TABLE session AS SELECT id, nt_probability_sql(note) AS q, "
                "nt_probability(note) AS p FROM notes")
    assert con.execute("SELECT max(abs(p - q)) FROM session").fetchone()[0] <= 1e-12
    con.close()
    row = cli_rows(path, "SELECT count(*) AS n, count(*) FILTER (WHERE s.q <> "
                         "nt_probability_sql(c.note)) AS differ FROM notes c JOIN session s "
                         "USING (id)")[0]
    assert int(row["n"]) == len(rows) and int(row["differ"]) == 0
