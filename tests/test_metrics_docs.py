"""Every public macro of sql/metrics.sql is documented in docs/metrics.md with an SQL example,
and that page is the one copy of the metrics reference."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MACRO = re.compile(r"^CREATE OR REPLACE MACRO (ml_\w+)", re.M)
SQL_BLOCK = re.compile(r"```sql\n(.*?)```", re.S)


def public_macros() -> list[str]:
    # Private helpers are named __sqlml_*; every ml_* macro is public.
    return sorted(set(MACRO.findall((ROOT / "sql" / "metrics.sql").read_text(encoding="utf-8"))))


def test_metrics_sql_defines_the_public_functions():
    names = public_macros()
    assert len(names) >= 30
    assert {"ml_roc_auc", "ml_best_threshold", "ml_compare_models", "ml_ndcg_at_k"} <= set(names)


def test_every_metric_macro_has_an_example_in_the_metrics_page():
    page = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    examples = "\n".join(SQL_BLOCK.findall(page))
    missing = [name for name in public_macros() if not re.search(rf"\b{name}\s*\(", examples)]
    assert not missing, (
        f"docs/metrics.md has no ```sql example calling {', '.join(missing)}. Document each "
        "function defined in sql/metrics.sql there, with an example.")


def test_the_metrics_reference_has_one_copy():
    # Other pages link to docs/metrics.md instead of repeating its sections.
    sections = re.compile(r"^#+ (Which label is positive|Classification metrics|Business costs)$",
                          re.M)
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    holders = [p.name for p in pages if sections.search(p.read_text(encoding="utf-8"))]
    assert holders == ["metrics.md"]
