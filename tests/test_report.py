"""The model report (sqlml/reporting): opened in headless Chromium, its numbers checked against
the catalog, the same document from SQL, the command line, REST and Python, and its errors.

The browser checks skip without Chromium (`.ci/run` installs Debian's). With
SQLML_WRITE_DOC_IMAGES=1 the browser test also writes the screenshots of docs/monitoring.md.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import browser
import clients
import duckdb
import httpx
import numpy as np
import pytest
from click.testing import CliRunner

import sqlml
from sqlml.cli.commands import main
from sqlml.datasets import make_customers, make_ratings
from sqlml.reporting import sections
from sqlml.server.rest import app as rest

MODELS = {"churn": "binary", "spend": "regression", "recs": "recommendation",
          "demand": "forecast"}
# Theta where the 'forecast' extra (statsforecast) is installed; the newest env has none.
FORECAST_METHOD = "theta" if importlib.util.find_spec("statsforecast") else "seasonal_naive"
DOC_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "img"
STAMP = re.compile(r'<time id="generated">[^<]*</time>')
FLOAT = re.compile(r'data-value="(-?\d+\.\d+(?:e[-+]?\d+)?)"')


def same_document(html: str) -> str:
    """The report without its generated-at stamp, each drawn number to 12 significant digits:
    a drift report's means are recomputed by DuckDB's parallel sums, whose last bit varies
    between runs (DuckDB 1.4)."""
    return FLOAT.sub(lambda m: f'data-value="{float(m.group(1)):.12g}"', STAMP.sub("", html))


def monthly_sales(n_series: int = 8, months: int = 48):
    """Seasonal monthly sales per item; item i3 mostly zero (flagged intermittent)."""
    rng = np.random.default_rng(3)
    t = np.arange(months)
    rows = []
    for i in range(n_series):
        level = 20.0 * (i + 1)
        y = level * (1 + 0.3 * np.sin(2 * np.pi * t / 12 + i)) + rng.normal(0, 2, months)
        if i == 3:
            y = np.where(rng.random(months) < 0.6, 0.0, rng.poisson(3, months))
        rows += [(f"i{i}", m, max(float(v), 0.0)) for m, v in zip(
            np.datetime64("2020-01", "M") + t, y, strict=True)]
    import pandas as pd

    return pd.DataFrame(rows, columns=["item", "month", "sales"]).assign(
        month=lambda d: d["month"].astype("datetime64[ns]"))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A file with a binary classifier (with costs and a learning curve), a regressor, a
    recommender and a forecast (8 monthly series, one intermittent), trained on small synthetic
    data."""
    path = tmp_path_factory.mktemp("report") / "shop.duckdb"
    con = sqlml.connect(path)
    customers = make_customers(1200)  # noqa: F841 (read by DuckDB)
    ratings = make_ratings(200, 300)  # noqa: F841
    con.execute("CREATE TABLE customers AS FROM customers")
    con.execute("CREATE TABLE ratings AS FROM ratings")
    con.execute("SELECT ml_create_model('churn', 'customers', target := 'churned', "
                "fn_cost := 20, fp_cost := 2, "
                "settings := {diagnose: true})")
    con.execute("SELECT ml_create_model('spend', 'SELECT * EXCLUDE (churned) FROM customers', "
                "target := 'monthly_charges', model_type := 'linear')")
    con.execute("SELECT ml_create_model('recs', 'ratings', problem_type := 'recommendation', "
                "settings := {user_col: 'user_id', item_col: 'movie_id', rating_col: 'rating'})")
    sales = monthly_sales()  # noqa: F841
    con.execute("CREATE TABLE sales AS FROM sales")
    con.execute("SELECT ml_create_model('demand', 'sales', target := 'sales', "
                "problem_type := 'forecast', function := 'forecast_demand', settings := "
                f"{{time_col: 'month', series_cols: ['item'], horizon: 6, "
                f"method: '{FORECAST_METHOD}'}})")
    reports = {}
    for name in MODELS:
        reports[name] = path.parent / f"{name}.html"
        sqlml.report(con, name, reports[name])
    yield con, path, reports
    con.close()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    exe = browser.find_chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does it)")
    b = browser.Browser(exe, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


class _Tables(HTMLParser):
    """Every <table id=...>'s cells, with data-value where a cell has one."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list]] = {}
        self._table: str | None = None
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = {"value": a.get("data-value"), "text": ""}

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append(self._cell)
            self._cell = None
        elif tag == "table":
            self._table = None


def tables(html: str) -> dict[str, list[list]]:
    p = _Tables()
    p.feed(html)
    return p.tables


# -- in the browser ------------------------------------------------------------------------------
CHART_SIZES = """[...document.querySelectorAll('[data-chart]')].map(f => {
    const r = f.querySelector('svg').getBoundingClientRect();
    return [f.dataset.chart, r.width, r.height]; })"""
EXPECTED_CHARTS = {
    "churn": {"roc", "pr", "cost", "calibration", "scores", "importance", "learning", "trials"},
    "spend": {"predicted", "residuals", "importance"},
    "recs": {"ratings", "popularity"},
    "demand": {"fan_1", "fan_2", "fan_3", "coverage", "pinball", "methods"},
}


@pytest.mark.parametrize("name", list(MODELS))
def test_report_renders_offline_in_chromium(db, chromium, tmp_path, name):
    _, _, reports = db
    url = reports[name].as_uri()
    seen = chromium.open(url)
    assert seen["errors"] == []
    assert seen["requests"] == [url]          # the document itself, nothing else
    charts = chromium.evaluate(CHART_SIZES)
    assert {c[0] for c in charts} == EXPECTED_CHARTS[name]
    assert all(w > 100 and h > 100 for _, w, h in charts), charts
    shot = chromium.screenshot(tmp_path / f"{name}.png")
    assert shot.stat().st_size > 10_000
    # On a phone's width the page fits: nothing scrolls sideways but inside a card.
    seen = chromium.open(url, width=390, height=844, mobile=True)
    assert seen["errors"] == []
    assert chromium.evaluate("document.documentElement.scrollWidth") <= 390
    assert all(w > 200 and h > 100 for _, w, h in chromium.evaluate(CHART_SIZES))
    chromium.screenshot(tmp_path / f"{name}_phone.png")
    if os.environ.get("SQLML_WRITE_DOC_IMAGES") == "1":
        _doc_images(chromium, url, name)


def _doc_images(chromium, url: str, name: str) -> None:
    """docs/img/report_<model>.png: the top of the report at a laptop's width, half size."""
    chromium.open(url, width=1100, height=900)
    top = chromium.evaluate("document.querySelector('main h2:nth-of-type(2)')"
                            ".getBoundingClientRect().top")
    DOC_IMAGES.mkdir(exist_ok=True)
    out = chromium.screenshot(DOC_IMAGES / f"report_{name}.png", scale=0.5,
                              height=int(top) + 1500)
    assert out.stat().st_size < 150_000, out.stat().st_size


# -- its numbers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_report_metrics_equal_ml_model_metrics(db, name):
    con, _, reports = db
    rows = tables(reports[name].read_text(encoding="utf-8"))["table-metrics"][1:]
    got = {(r[0]["text"], r[1]["text"]): float(r[2]["value"]) for r in rows}
    want = {(m, c or ""): v for m, c, v in con.execute(
        "SELECT metric, class_label, value FROM ml_model_metrics(?)", [name]).fetchall()}
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=0, abs=0) or (np.isnan(value) and
                                                                  np.isnan(got[key]))


def test_curves_agree_with_the_stored_metrics(db):
    """The ROC AUC drawn from the stored validation scores is the stored roc_auc; the confusion
    matrix shown is the one stored at the threshold."""
    con, _, reports = db
    y, p = map(np.asarray, zip(*con.execute(
        "SELECT actual, predicted FROM sqlml.validation_predictions WHERE name = 'churn' "
        "ORDER BY \"row\"").fetchall(), strict=True))
    c = sections.curves(y, p)
    stored = dict(con.execute("SELECT metric, value FROM ml_model_metrics('churn')").fetchall())
    assert sections.auc(c["fpr"], c["tpr"]) == pytest.approx(stored["roc_auc"], abs=1e-12)
    html = reports["churn"].read_text(encoding="utf-8")
    assert f"ROC curve (AUC {stored['roc_auc']:.3f})" in html
    matrix = tables(html)["table-confusion"]
    shown = {(r[0]["text"], matrix[0][j]["text"]): int(r[j]["value"])
             for r in matrix[1:] for j in range(1, len(r))}
    assert shown == {(a, pr): n for a, pr, n in con.execute(
        "FROM ml_confusion_matrix('churn')").fetchall()}
    assert "Cost against threshold (fn_cost 20, fp_cost 2)" in html


def test_forecast_section_against_the_backtest_in_sql(db):
    """The forecast section's numbers, recomputed in SQL from ml_backtest and the stored scales:
    coverage per step, scaled pinball per quantile (their mean is the stored metric), the
    method counts, the ml_diagnose flags and the fan chart's P50 (the generated function)."""
    con, _, reports = db
    got = tables(reports["demand"].read_text(encoding="utf-8"))
    coverage = {int(r[0]["value"] or r[0]["text"]): float(r[1]["value"])
                for r in got["table-coverage"][1:]}
    want = dict(con.execute("""
        WITH w AS (SELECT series, "window", step, actual,
                          max(forecast) FILTER (WHERE quantile = 0.1) AS lo,
                          max(forecast) FILTER (WHERE quantile = 0.9) AS hi
                   FROM ml_backtest('demand') GROUP BY ALL)
        SELECT step, avg((lo <= actual AND actual <= hi)::INT) FROM w
        GROUP BY step ORDER BY step""").fetchall())
    assert coverage.keys() == want.keys()
    assert all(coverage[k] == pytest.approx(v, abs=1e-12) for k, v in want.items())
    pinball = {r[0]["text"]: float(r[1]["value"]) for r in got["table-pinball"][1:]}
    per_q = [v for (v,) in con.execute("""
        WITH per AS (SELECT series, quantile,
                            ml_pinball_loss(actual, forecast, quantile) / any_value(scale)
                                AS loss
                     FROM ml_backtest('demand') GROUP BY ALL)
        SELECT avg(loss) FROM per GROUP BY quantile ORDER BY quantile""").fetchall()]
    assert [pinball[c] for c in ("p10", "p50", "p90")] == pytest.approx(per_q, rel=1e-9)
    stored = con.execute("SELECT value FROM ml_model_metrics('demand') "
                         "WHERE metric = 'scaled_pinball'").fetchone()[0]
    assert np.mean(list(pinball.values())) == pytest.approx(stored, rel=1e-9)
    methods = {r[0]["text"]: float(r[1]["value"]) for r in got["table-methods"][1:]}
    assert methods == {FORECAST_METHOD: 8.0}
    flags = [(r[1]["text"]) for r in got["table-flags"][1:]]
    assert "intermittent" in flags
    assert len(flags) == con.execute("SELECT count(*) FROM ml_diagnose('demand') "
                                     "WHERE verdict <> 'no_flags'").fetchone()[0]
    fan = [r for r in got["table-fan_1"][1:] if r[3]["value"] is not None]
    label = got["table-fan_1"][0]
    assert [c["text"] for c in label] == ["period", "actual", "P10", "P50", "P90"]
    p50 = [float(r[3]["value"]) for r in fan]
    assert len(p50) == 6
    items = [i for (i,) in con.execute(
        "SELECT item FROM forecast_demand() GROUP BY item HAVING "
        "list(p50 ORDER BY month) = ?::DOUBLE[]", [p50]).fetchall()]
    assert len(items) == 1


def test_recommender_coverage_and_example(db):
    _, _, reports = db
    html = reports["recs"].read_text(encoding="utf-8")
    cov = {r[0]["text"]: r[1] for r in tables(html)["table-coverage"][1:]}
    coverage = float(cov["catalog coverage (distinct items recommended / items)"]["value"])
    head = float(next(v for k, v in cov.items() if k.startswith("share from"))["value"])
    assert 0 < coverage <= 1 and 0 < head <= 1
    example = tables(html)["table-example"][1:]
    assert len(example) == 10 and all(r[4]["text"].startswith("because") for r in example)


def _copy(con, path: Path, folder: Path) -> Path:
    """The module's file as of now, for the command line (DuckDB lets one process open a file
    with one configuration: the module's connection writes it)."""
    con.execute("CHECKPOINT")
    copy = folder / "copy.duckdb"
    shutil.copyfile(path, copy)
    return copy


# -- one document, four ways -------------------------------------------------------------------
def test_sql_cli_rest_and_python_give_the_same_document(db, tmp_path):
    con, path, _ = db
    via_python = sqlml.report(con, "churn")
    via_sql = con.execute("SELECT ml_report('churn')").fetchall()[0][0]
    app = rest.build_app(con, token=None)
    handle = rest.start_in_thread(app, "127.0.0.1", 0)
    try:
        r = httpx.get(handle.url + "/v1/models/churn/report", timeout=60)
    finally:
        handle.stop()
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    out = tmp_path / "cli.html"
    result = CliRunner().invoke(main, ["report", str(_copy(con, path, tmp_path)), "churn",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}" in result.output
    docs = [STAMP.sub("", d) for d in (via_python, via_sql, r.text,
                                       out.read_text(encoding="utf-8"))]
    assert docs[0].startswith("<!DOCTYPE html>") and all(d == docs[0] for d in docs[1:])
    for forbidden in ("<script", "http://", "https://", "@import", "url(h", "src="):
        assert forbidden not in docs[0].replace("http://www.w3.org", "")


# -- errors --------------------------------------------------------------------------------------
def test_unknown_model_named_with_the_remedy(db, tmp_path):
    con, path, _ = db
    with pytest.raises(duckdb.Error) as exc:
        con.execute("SELECT ml_report('chrun')").fetchall()
    message = str(exc.value)
    assert "ml_report: model 'chrun' does not exist" in message
    assert "Did you mean 'churn'?" in message and "Models in this database: churn" in message
    result = CliRunner().invoke(main, ["report", str(_copy(con, path, tmp_path)), "chrun", "-o",
                                       str(tmp_path / "x.html")])
    assert result.exit_code == 1 and "model 'chrun' does not exist" in result.output
    assert not (tmp_path / "x.html").exists()
    handle = rest.start_in_thread(rest.build_app(con, token=None), "127.0.0.1", 0)
    try:
        r = httpx.get(handle.url + "/v1/models/chrun/report", timeout=60)
    finally:
        handle.stop()
    assert r.status_code == 404 and "model 'chrun' does not exist" in r.json()["error"]["message"]


def test_bad_output_path(db, tmp_path):
    con, path, _ = db
    missing = tmp_path / "no" / "such" / "report.html"
    result = CliRunner().invoke(main, ["report", str(_copy(con, path, tmp_path)), "churn",
                                       "-o", str(missing)])
    assert result.exit_code == 1
    assert (f"sqlml report: cannot write the report to {str(missing)!r}: folder "
            f"{str(missing.parent)!r} does not exist. Create it first") in result.output
    with pytest.raises(sqlml.SqlmlError, match=r"it is a folder\. Name a file, e\.g\."):
        sqlml.report(con, "churn", tmp_path)


def test_plain_duckdb_client_is_told_it_needs_python(db, tmp_path):
    con, path, _ = db
    out = clients.cli_json(_copy(con, path, tmp_path), "SELECT ml_report('churn')")
    assert isinstance(out, str)
    assert "ml_report needs sqlml's Python package" in out
    assert "draws the report's charts in Python" in out


def test_model_without_stored_predictions_says_retrain(db):
    con, _, _ = db
    con.execute("CREATE TABLE kept AS FROM sqlml.validation_predictions WHERE name = 'churn'")
    con.execute("DELETE FROM sqlml.validation_predictions WHERE name = 'churn'")
    try:
        html = sqlml.report(con, "churn")
    finally:
        con.execute("INSERT INTO sqlml.validation_predictions FROM kept")
        con.execute("DROP TABLE kept")
    assert "trained before sqlml stored validation predictions" in html
    assert "Retrain the model" in html and 'data-chart="roc"' not in html
    assert 'data-chart="calibration"' in html      # stored since earlier versions


# -- the drift section ---------------------------------------------------------------------------
DRIFT_QUERY = "SELECT * FROM this_month"


@pytest.fixture(scope="module")
def drifted(db):
    """The churn report with a drift section over a month whose tenure moved by two years."""
    con, path, _ = db
    month = make_customers(800, seed=7)
    month["tenure_months"] += 24
    con.execute("CREATE OR REPLACE TABLE this_month AS FROM month")
    out = path.parent / "churn_drift.html"
    sqlml.report(con, "churn", out, drift=DRIFT_QUERY)
    return out


def test_drift_report_renders_offline_in_chromium(db, drifted, chromium, tmp_path):
    url = drifted.as_uri()
    seen = chromium.open(url)
    assert seen["errors"] == []
    assert seen["requests"] == [url]
    charts = chromium.evaluate(CHART_SIZES)
    assert {"drift_psi", "drift_ks"} <= {c[0] for c in charts}
    assert all(w > 100 and h > 100 for _, w, h in charts), charts
    assert chromium.screenshot(tmp_path / "churn_drift.png").stat().st_size > 10_000
    if os.environ.get("SQLML_WRITE_DOC_IMAGES") == "1":
        chromium.open(url, width=1100, height=900)
        top = chromium.evaluate("document.getElementById('chart-drift_psi')"
                                ".getBoundingClientRect().top")
        out = chromium.screenshot(DOC_IMAGES / "report_drift.png", scale=0.5,
                                  top=int(top) - 80, height=1300)
        assert out.stat().st_size < 150_000, out.stat().st_size


def test_drift_section_numbers_equal_ml_drift(db, drifted):
    con, _, _ = db
    html = drifted.read_text(encoding="utf-8")
    got = tables(html)
    want = sqlml.drift(con, "churn", DRIFT_QUERY)
    heads = [c["text"] for c in got["table-drift"][0]]
    shown = {r[0]["text"]: {h: c for h, c in zip(heads, r, strict=True)}
             for r in got["table-drift"][1:]}
    assert set(shown) == {r["feature"] for r in want}
    for row in want:
        cells = shown[row["feature"]]
        for head, col in (("PSI", "psi"), ("KS", "ks"), ("missing rate change",
                                                          "missing_rate_change")):
            value = cells[head]["value"]
            assert (None if value is None else float(value)) == row[col], (row["feature"], col)
        assert cells["verdict"]["text"] == row["verdict"]
    # The feature rows are FROM ml_drift's, in SQL; its prediction row is the one scored here.
    sql = {r[0]: r[1:] for r in con.execute(
        f"SELECT feature, psi, ks, verdict FROM ml_drift('churn', '{DRIFT_QUERY}')").fetchall()}
    for row in want:
        if row["kind"] != "prediction":
            assert sql[row["feature"]] == (row["psi"], row["ks"], row["verdict"])
    assert shown["ml_score"]["PSI"]["value"] is not None
    bars = {r[0]["text"]: float(r[1]["value"]) for r in got["table-drift_psi"][1:]}
    assert bars["tenure_months"] == by_name(want)["tenure_months"]["psi"] > 0.25
    counts = {v: sum(r["verdict"] == v for r in want) for v in ("stable", "shifted", "broken")}
    assert (f"{counts['stable']} stable, {counts['shifted']} shifted, {counts['broken']} broken"
            in html)
    assert 'stroke-dasharray' in html.split('id="chart-drift_psi"')[1].split("</svg>")[0]


def by_name(rows: list[dict]) -> dict[str, dict]:
    return {r["feature"]: r for r in rows}


def test_drift_report_from_sql_cli_rest_and_python(db, drifted, tmp_path):
    con, path, _ = db
    want = same_document(drifted.read_text(encoding="utf-8"))
    via_sql = con.execute(f"SELECT ml_report('churn', drift := '{DRIFT_QUERY}')").fetchall()[0][0]
    handle = rest.start_in_thread(rest.build_app(con, token=None), "127.0.0.1", 0)
    try:
        r = httpx.get(handle.url + "/v1/models/churn/report", params={"drift": DRIFT_QUERY},
                      timeout=300)
        bad = httpx.get(handle.url + "/v1/models/churn/report",
                        params={"drift": "SELECT * FROM this_month WHERE last_nps > 100"},
                        timeout=300)
        write = httpx.get(handle.url + "/v1/models/churn/report",
                          params={"drift": "DELETE FROM this_month"}, timeout=300)
        trains = httpx.get(handle.url + "/v1/models/churn/report",
                           params={"drift": "SELECT ml_drop_model('spend')"}, timeout=300)
    finally:
        handle.stop()
    assert r.status_code == 200 and same_document(r.text) == want
    assert same_document(via_sql) == want
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "DriftError"
    assert "the query returned no rows" in bad.json()["error"]["message"]
    for refused in (write, trains):
        assert refused.status_code == 403, refused.text
        assert "the drift query is refused" in refused.json()["error"]["message"]
    assert con.execute("SELECT count(*) FROM this_month").fetchall()[0][0] == 800
    assert "spend" in {m for m, in con.execute("SELECT name FROM ml_models()").fetchall()}
    out = tmp_path / "cli.html"
    result = CliRunner().invoke(main, ["report", str(_copy(con, path, tmp_path)), "churn",
                                       "-o", str(out), "--drift", DRIFT_QUERY])
    assert result.exit_code == 0, result.output
    assert same_document(out.read_text(encoding="utf-8")) == want


def test_a_bad_drift_query_says_what_ml_drift_says(db, drifted, tmp_path):
    con, path, _ = db
    query = "SELECT * EXCLUDE (autopay) FROM this_month"
    with pytest.raises(duckdb.Error) as sql_exc:
        con.execute(f"FROM ml_drift('churn', '{query}')").fetchall()
    said = "the query has no column 'autopay', a feature of model 'churn'"
    assert said in str(sql_exc.value)
    with pytest.raises(duckdb.Error) as exc:
        sqlml.report(con, "churn", drift=query)
    assert f"DriftError: ml_drift: {said}" in str(exc.value)
    result = CliRunner().invoke(main, ["report", str(_copy(con, path, tmp_path)), "churn",
                                       "-o", str(tmp_path / "x.html"), "--drift", query])
    assert result.exit_code == 1 and said in result.output
    with pytest.raises(duckdb.Error, match=r"ml_report: the drift query 'SELECT \* FROM nowhere' "
                                           r"of model 'churn' failed: .*nowhere.* Check that it "
                                           r"runs on its own"):
        sqlml.report(con, "churn", drift="SELECT * FROM nowhere")


def test_a_file_whose_ml_report_predates_drift_still_reports(db, tmp_path):
    """A read-only file written before ml_report took drift := keeps its one-argument macro:
    sqlml.report, the command line and REST without a drift query still work on it."""
    con, path, _ = db
    copy = _copy(con, path, tmp_path)
    plain = duckdb.connect(str(copy))
    plain.execute("CREATE OR REPLACE MACRO ml_report(model_name) AS "
                  "__sqlml_call_report(model_name)")
    plain.close()
    old = sqlml.connect(str(copy), read_only=True)
    try:
        assert sqlml.report(old, "churn").startswith("<!DOCTYPE html>")
        handle = rest.start_in_thread(rest.build_app(old, token=None), "127.0.0.1", 0)
        try:
            r = httpx.get(handle.url + "/v1/models/churn/report", timeout=300)
        finally:
            handle.stop()
        assert r.status_code == 200 and 'data-chart="roc"' in r.text
    finally:
        old.close()
