"""``sqlml serve``: the Postgres wire server and the REST endpoint over one connection."""
