"""Per-database-instance state shared by every connection sqlml is installed on.

DuckDB registers Python UDFs once per database instance, not per connection: two
``duckdb.connect(path)`` calls in one process share them. So the UDFs must not hold on to the
connection that registered them (it may be closed while others live on). They reach the database
through :meth:`Instance.cursor`, which picks any still-open connection of the instance.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from typing import TYPE_CHECKING

import duckdb

from sqlml.events import Hub

if TYPE_CHECKING:
    # Only for the annotation: importing sqlml.score at run time would load scikit-learn with
    # this module and close an import cycle (serving -> catalog -> context).
    from sqlml.score.serving import ModelCache

_INSTANCES: dict[str, Instance] = {}
_LOCK = threading.Lock()


class Instance:
    # Set by sqlml.functions.register, which runs before the instance can be looked up (its
    # __sqlml_instance function is registered last).
    models: ModelCache

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex
        self._connections: list[weakref.ref] = []
        # Serialises catalog writes (training, drop, rollback): DuckDB calls UDFs from several
        # threads, and two versions of one model must not be numbered concurrently.
        self.write_lock = threading.RLock()
        # Training reports progress here; the API and the command line listen (sqlml.progress).
        self.progress = Hub()

    def add(self, con: duckdb.DuckDBPyConnection) -> None:
        if not any(ref() is con for ref in self._connections):
            self._connections.append(weakref.ref(con))

    def cursor(self) -> duckdb.DuckDBPyConnection:
        for ref in list(self._connections):
            con = ref()
            if con is None:
                self._connections.remove(ref)
                continue
            try:
                return con.cursor()
            except duckdb.ConnectionException:
                self._connections.remove(ref)
        raise duckdb.ConnectionException(
            "sqlml has no open connection to this database; open one with sqlml.connect(path)."
        )


def lookup(con: duckdb.DuckDBPyConnection) -> Instance | None:
    """The Instance this connection's database belongs to, or None before the first install."""
    try:
        iid = con.execute("SELECT __sqlml_instance()").fetchall()[0][0]
    except duckdb.CatalogException:
        return None
    return _INSTANCES.get(iid)


def create() -> Instance:
    inst = Instance()
    with _LOCK:
        _INSTANCES[inst.id] = inst
    return inst
