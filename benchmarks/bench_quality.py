"""Quality of model_type := 'auto' with tuning on public data sets, by 5-fold cross-validation.

The model is trained by ``ml_create_model`` (auto, tuning settings below); the pipeline it chose
(preprocessing and tuned estimator, unfitted again) is then cross-validated, 5 stratified folds
over every row, next to a hand-built baseline on the same folds.

    python benchmarks/bench_quality.py [--max-trials 20] [--max-runtime 120]

Targets (issue 5): churn ROC AUC >= 0.92 (hand-built logistic regression: 0.82);
SMS spam F1 >= 0.95 (plain TF-IDF + logistic regression: 0.94).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, make_scorer
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import sqlml
from sqlml.train.preprocessing import to_frame

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CHURN = DATA / "churn" / "mlc_churn.csv"
SMS = DATA / "text" / "SMSSpamCollection"


def cv_of_model(con, name: str, query: str, target: str, scoring) -> tuple[float, object]:
    model = sqlml.load_model(con, name)
    table = con.sql(query).to_arrow_table()
    X = to_frame([table.column(f.name) for f in model.features], model.features, "bench")
    y = np.array([str(v) for v in table.column(target).to_pylist()])
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    scores = cross_val_score(clone(model.pipeline), X, y, cv=cv, scoring=scoring)
    return float(np.mean(scores)), (X, y, cv)


def train(con, name, query, target, objective, args) -> dict:
    t0 = time.perf_counter()
    s = con.execute(
        f"SELECT ml_create_model('{name}', $$ {query} $$, target := '{target}', "
        f"objective := '{objective}', settings := {{strategy: '{args.strategy}', "
        f"max_trials: {args.max_trials}, max_runtime: {args.max_runtime}}})").fetchall()[0][0]
    s["wall"] = time.perf_counter() - t0
    return s


def churn(con, args) -> bool:
    con.execute(f"CREATE OR REPLACE TABLE churn AS SELECT * EXCLUDE (rownames) "
                f"FROM read_csv('{CHURN}')")
    query = "SELECT * FROM churn"
    s = train(con, "churn_tuned", query, "churn", "auc", args)
    auc, (X, y, cv) = cv_of_model(con, "churn_tuned", query, "churn", "roc_auc")
    num = [c for c in X.columns if X[c].dtype.kind == "f"]
    cat = [c for c in X.columns if c not in num]
    base = make_pipeline(ColumnTransformer([("n", StandardScaler(), num),
                                            ("c", OneHotEncoder(handle_unknown="ignore"), cat)]),
                         LogisticRegression(max_iter=2000))
    base_auc = float(np.mean(cross_val_score(base, X, y, cv=cv, scoring="roc_auc")))
    print(f"churn: model {s['model_type']}, {s['wall']:.1f} s to train; 5-fold ROC AUC "
          f"{auc:.4f} (target >= 0.92; hand-built logistic {base_auc:.4f})")
    print(f"   notes: {s['notes']}")
    return auc >= 0.92


def spam(con, args) -> bool:
    con.execute(f"""CREATE OR REPLACE TABLE sms AS SELECT * FROM read_csv('{SMS}', delim='\t',
        header=false, quote='', escape='', columns={{'label':'VARCHAR','text':'VARCHAR'}})""")
    query = "SELECT * FROM sms"
    s = train(con, "spam_tuned", query, "label", "f1", args)
    f1 = make_scorer(f1_score, pos_label="spam")
    score, (X, y, cv) = cv_of_model(con, "spam_tuned", query, "label", f1)
    base = make_pipeline(ColumnTransformer([("t", TfidfVectorizer(), "text")]),
                         LogisticRegression(max_iter=2000))
    base_f1 = float(np.mean(cross_val_score(base, X, y, cv=cv, scoring=f1)))
    print(f"sms spam: model {s['model_type']}, {s['wall']:.1f} s to train; 5-fold spam F1 "
          f"{score:.4f} (target >= 0.95; plain TF-IDF + logistic {base_f1:.4f})")
    print(f"   notes: {s['notes']}")
    return score >= 0.95


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-trials", type=int, default=20)
    ap.add_argument("--max-runtime", type=float, default=120)
    ap.add_argument("--strategy", default="bayesian")
    args = ap.parse_args()
    con = sqlml.connect()
    ok = [churn(con, args), spam(con, args)]
    print("PASS" if all(ok) else "FAIL")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
