"""sqlml on other tools' connection objects (SQLAlchemy engines)."""
