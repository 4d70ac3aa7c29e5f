"""Free text: word and character n-gram TF-IDF for sparse models, stored compactly."""

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

import sqlml
from sqlml.score import explain
from sqlml.train import preprocessing


@pytest.fixture
def messages(con):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(400)]
    rows = []
    for i in range(300):
        spam = i % 3 == 0
        body = " ".join(rng.choice(words, 8))
        # The signal is spelt in ways word tokens miss (digits, signs): character n-grams see it.
        extra = rng.choice(["fr33 £100", "FREE!!", "win £50 now"]) if spam else "see you"
        rows.append({"text": f"{body} {extra}", "label": "spam" if spam else "ham"})
    con.register("messages_frame", pd.DataFrame(rows))
    con.execute("CREATE TABLE messages AS FROM messages_frame")
    return con


def test_sparse_models_get_word_and_character_ngrams_dense_ones_words():
    f = [preprocessing.Feature("text", "VARCHAR", "text", "tfidf")]
    sparse = preprocessing.build_transformer(f, dense=False).transformers[0][1].steps[-1][1]
    words, chars = (t for _, t in sparse.transformer_list)
    assert (words.analyzer, words.ngram_range) == ("word", (1, 2))
    assert (chars.analyzer, chars.ngram_range, chars.min_df) == ("char_wb", (1, 4), 2)
    dense = preprocessing.build_transformer(f, dense=True).transformers[0][1].steps[-1][1]
    assert isinstance(dense, TfidfVectorizer) and dense.max_features == 300


def test_stored_vocabularies_are_plain_ints_and_predictions_unchanged(messages):
    messages.execute("""SELECT ml_create_model('spam', 'messages', target := 'label',
                        model_type := 'logistic')""").fetchall()
    model = sqlml.load_model(messages, "spam")
    union = model.pipeline.named_steps["prep"].named_transformers_["text"].steps[-1][1]
    for _, vec in union.transformer_list:
        assert vec.vocabulary_ and all(type(v) is int for v in vec.vocabulary_.values())
    served = messages.execute("SELECT predict_spam(text) FROM messages").fetchall()
    frame = pd.DataFrame({"text": messages.execute("SELECT text FROM messages").df()["text"]})
    assert [r[0] for r in served] == list(model.pipeline.predict(frame.astype(object)))
    # A character n-gram of the obfuscated signal is among the strongest spam terms.
    terms = [t for (t,) in messages.execute(
        "SELECT term FROM ml_explain_model('spam') WHERE kind = 'coefficient' ORDER BY rank "
        "LIMIT 20").fetchall()]
    assert any(t.startswith("chars__") for t in terms)


def test_text_terms_are_capped_across_words_and_characters(messages):
    messages.execute("""SELECT ml_create_model('spam2', 'messages', target := 'label',
                        model_type := 'logistic')""").fetchall()
    n = messages.execute("SELECT count(*) FROM ml_explain_model('spam2') "
                         "WHERE kind = 'coefficient'").fetchall()[0][0]
    assert n == explain.TEXT_TERMS
