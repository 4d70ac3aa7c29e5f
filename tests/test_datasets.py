import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sqlml.datasets import (
    CONTRACTS,
    PAYMENT_METHODS,
    PLANS,
    REFERENCE_DATE,
    REGIONS,
    make_customers,
    make_movies,
    make_new_customers,
    make_ratings,
)

CUSTOMER_COLUMNS = [
    "customer_id", "signup_date", "tenure_months", "plan", "contract", "region",
    "payment_method", "monthly_charges", "total_charges", "support_calls_90d",
    "avg_session_minutes", "autopay", "late_payments_12m", "last_nps", "support_notes", "churned",
]
CATEGORICAL = ["plan", "contract", "region", "payment_method"]


@pytest.fixture(scope="module")
def customers():
    return make_customers()


@pytest.fixture(scope="module")
def ratings():
    return make_ratings()


def test_customers_deterministic_per_seed():
    a = make_customers(300, seed=3)
    pd.testing.assert_frame_equal(a, make_customers(300, seed=3))
    assert not a.equals(make_customers(300, seed=4))
    pd.testing.assert_frame_equal(make_new_customers(), make_new_customers())


def test_include_target_false_is_the_same_rows_without_label():
    pd.testing.assert_frame_equal(
        make_customers(400, seed=5, include_target=False),
        make_customers(400, seed=5).drop(columns="churned"))


def test_customer_columns_and_dtypes(customers):
    df = customers
    assert list(df.columns) == CUSTOMER_COLUMNS
    assert len(df) == 5000
    assert df["customer_id"].dtype == np.int64
    assert df["signup_date"].dtype == "datetime64[ns]"
    for col in ["tenure_months", "support_calls_90d", "late_payments_12m"]:
        assert df[col].dtype == np.int64, col
    for col in ["monthly_charges", "total_charges", "avg_session_minutes"]:
        assert df[col].dtype == np.float64, col
    assert df["autopay"].dtype == bool
    assert df["churned"].dtype == bool
    assert df["last_nps"].dtype == "Int64"
    for col in [*CATEGORICAL, "support_notes"]:
        # pandas 2 keeps text in object columns, whose missing notes is_string_dtype counts as
        # not text
        texts = df[col].dropna()
        assert pd.api.types.is_string_dtype(df[col]) or (
            df[col].dtype == object and texts.map(type).eq(str).all()), col
    assert set(df["plan"]) == set(PLANS)
    assert set(df["contract"]) == set(CONTRACTS)
    assert set(df["region"]) == set(REGIONS)
    assert set(df["payment_method"]) == set(PAYMENT_METHODS)
    assert 6 <= len(REGIONS) <= 8


def test_customer_value_ranges(customers):
    df = customers
    assert df["last_nps"].dropna().between(0, 10).all()
    assert (df["support_calls_90d"] >= 0).all()
    assert (df["avg_session_minutes"] > 0).all()
    assert (df["monthly_charges"].dropna() > 0).all()
    # Mailed checks can't be on autopay.
    assert not df.loc[df["payment_method"] == "mailed check", "autopay"].any()
    shares = df["plan"].value_counts(normalize=True)
    assert shares["basic"] > shares["standard"] > shares["premium"] > shares["enterprise"] > 0.03
    medians = df.groupby("plan")["monthly_charges"].median()
    assert medians["basic"] < medians["standard"] < medians["premium"] < medians["enterprise"]


def test_null_shares(customers):
    df = customers
    assert 0.01 <= df["monthly_charges"].isna().mean() <= 0.035
    assert 0.07 <= df["last_nps"].isna().mean() <= 0.13
    # Total charges are missing exactly for customers who haven't been billed yet.
    assert (df["total_charges"].isna() == (df["tenure_months"] == 0)).all()
    assert 0.005 <= df["total_charges"].isna().mean() <= 0.06
    notes = df["support_notes"]
    blank = notes.isna() | (notes == "")
    assert 0.15 <= blank.mean() <= 0.25
    assert notes.isna().any() and (notes == "").any()


def test_total_charges_track_tenure_times_monthly(customers):
    df = customers.dropna(subset=["monthly_charges", "total_charges"])
    ratio = df["total_charges"] / (df["tenure_months"] * df["monthly_charges"])
    assert ratio.between(0.75, 1.3).all()


def test_support_notes_look_pasted_from_a_ticketing_system(customers):
    notes = customers["support_notes"].dropna()
    assert notes.str.contains("<br>", regex=False).mean() > 0.05
    assert notes.str.contains("<b>", regex=False).any()
    assert notes.str.contains("{", regex=False).sum() == 0  # every template slot was filled
    assert notes[notes != ""].nunique() > 100


def test_ids_unique_and_disjoint_from_new_customers(customers):
    assert customers["customer_id"].is_unique
    new = make_new_customers()
    assert len(new) == 20
    assert list(new.columns) == CUSTOMER_COLUMNS[:-1]
    assert new["customer_id"].is_unique
    assert not set(new["customer_id"]) & set(customers["customer_id"])
    bigger = make_new_customers(5000, seed=1)
    assert not set(bigger["customer_id"]) & set(customers["customer_id"])


def test_tenure_consistent_with_signup_date(customers):
    df = customers
    assert (df["signup_date"] <= REFERENCE_DATE).all()
    assert (df["signup_date"] > REFERENCE_DATE - pd.DateOffset(years=4, days=1)).all()
    assert (df["signup_date"] == df["signup_date"].dt.normalize()).all()
    for signup, tenure in zip(df["signup_date"][:1500], df["tenure_months"][:1500], strict=True):
        assert signup + pd.DateOffset(months=tenure) <= REFERENCE_DATE
        assert signup + pd.DateOffset(months=tenure + 1) > REFERENCE_DATE
    assert df["tenure_months"].between(0, 48).all()


def test_churn_base_rate(customers):
    assert 0.15 <= customers["churned"].mean() <= 0.21


def _features(df: pd.DataFrame) -> pd.DataFrame:
    x = df.drop(columns=["customer_id", "signup_date", "support_notes", "churned"])
    x = pd.get_dummies(x, columns=CATEGORICAL, dtype=float)
    return x.astype({"autopay": float, "last_nps": "float64"}).astype(float)


def test_gradient_boosting_learns_and_beats_logistic_regression(customers):
    x, y = _features(customers), customers["churned"].to_numpy()
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    # On a busy machine OpenMP threads spin against each other: 0.3 s single-threaded, 15 s not.
    with threadpool_limits(1):
        gb = HistGradientBoostingClassifier(random_state=0).fit(x_tr, y_tr)
    auc_gb = roc_auc_score(y_te, gb.predict_proba(x_te)[:, 1])
    medians = x_tr.median()
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    lr.fit(x_tr.fillna(medians), y_tr)
    auc_lr = roc_auc_score(y_te, lr.predict_proba(x_te.fillna(medians))[:, 1])
    assert 0.80 <= auc_gb <= 0.95
    # The churn drivers are thresholds and interactions that a linear model can't express.
    assert auc_lr < auc_gb - 0.01


def test_support_notes_carry_churn_signal(customers):
    df = customers
    leaving = df["support_notes"].str.contains(
        "cancel|close the account|switching providers|termination", na=False)
    happy = df["support_notes"].str.contains("thanked|happy|great|Praised|Satisfied", na=False)
    assert leaving.sum() > 50 and happy.sum() > 50
    assert df.loc[leaving, "churned"].mean() > 1.5 * df["churned"].mean()
    assert df.loc[happy, "churned"].mean() < df["churned"].mean()


def test_ratings_columns_and_values(ratings):
    r = ratings
    assert list(r.columns) == ["user_id", "movie_id", "rating", "rated_at"]
    assert r["user_id"].dtype == np.int64 and r["movie_id"].dtype == np.int64
    assert r["rating"].dtype == np.float64
    assert r["rated_at"].dtype == "datetime64[ns]"
    assert set(r["rating"].unique()) <= set(np.arange(1, 11) / 2)
    assert not r.duplicated(["user_id", "movie_id"]).any()
    assert abs(len(r) - 0.04 * 500 * 800) <= 0.01 * len(r)
    assert r["user_id"].between(1, 500).all() and r["movie_id"].between(1, 800).all()
    assert r["user_id"].nunique() == 500  # every user rated something
    assert (r["rated_at"] <= REFERENCE_DATE).all()


def test_ratings_deterministic_and_popularity_skewed(ratings):
    pd.testing.assert_frame_equal(make_ratings(50, 80, seed=9), make_ratings(50, 80, seed=9))
    assert not make_ratings(50, 80, seed=9).equals(make_ratings(50, 80, seed=10))
    counts = ratings["movie_id"].value_counts()
    # Zipf-like: the top 10% of movies collect a large share of all ratings.
    assert counts.head(80).sum() > 0.3 * len(ratings)


def test_biased_baseline_beats_global_mean(ratings):
    r = ratings
    test = np.random.default_rng(0).random(len(r)) < 0.2
    train, hold = r[~test], r[test]
    mu = train["rating"].mean()
    shrink = 5.0
    user_dev = train.groupby("user_id")["rating"].agg(lambda s: (s - mu).sum() / (len(s) + shrink))
    resid = train["rating"] - mu - train["user_id"].map(user_dev)
    item_dev = resid.groupby(train["movie_id"]).agg(lambda s: s.sum() / (len(s) + shrink))
    pred = (mu + hold["user_id"].map(user_dev).fillna(0.0)
            + hold["movie_id"].map(item_dev).fillna(0.0))
    rmse_global = np.sqrt(np.mean((hold["rating"] - mu) ** 2))
    rmse_baseline = np.sqrt(np.mean((hold["rating"] - pred) ** 2))
    assert rmse_baseline < 0.92 * rmse_global


def test_movies_match_ratings(ratings):
    movies = make_movies()
    assert list(movies.columns) == ["movie_id", "title", "genre"]
    assert movies["movie_id"].tolist() == list(range(1, 801))
    assert movies["title"].is_unique
    assert movies["title"].str.fullmatch(r"[A-Z][A-Za-z' -]+ \((19[5-9]\d|20[0-2]\d)\)").all()
    assert 8 <= movies["genre"].nunique() <= 15
    assert set(ratings["movie_id"]) <= set(movies["movie_id"])
    pd.testing.assert_frame_equal(movies, make_movies(800, 42))
    # Nobody rates a movie before the year it came out.
    year = ratings["movie_id"].map(movies.set_index("movie_id")["title"].str[-5:-1].astype(int))
    assert (ratings["rated_at"].dt.year >= year).all()


def test_invalid_arguments():
    with pytest.raises(ValueError):
        make_ratings(density=0.9)
    with pytest.raises(ValueError):
        make_customers(-1)
