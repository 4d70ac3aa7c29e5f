"""The model report: one self-contained HTML page of a model's charts and tables.

``gather`` reads what the catalog stores, ``sections`` turns it into charts (``charts``,
matplotlib to inline SVG) and tables, ``page`` writes the HTML. ``build`` is what
``SELECT ml_report('model')``, ``sqlml report``, the REST endpoint and ``sqlml.report`` call.
"""

from __future__ import annotations

from sqlml.catalog import store as catalog
from sqlml.reporting import gather, page, sections


def build(cur, inst, name: str, drift: str | None = None) -> str:
    """The HTML report of the active version of model ``name``; with a ``drift`` query, also
    its drift against the training data (``sqlml.drift(cur, name, drift)``)."""
    facts = gather.gather(cur, inst, name)
    if drift is not None:
        facts.drift = gather.drift(cur, name, drift)
    return page.render(facts, sections.sections(facts), catalog.now())
