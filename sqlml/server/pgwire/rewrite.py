"""Postgres SQL that DuckDB cannot take, rewritten with sqlglot (read as Postgres, written as
DuckDB): ``OPERATOR(pg_catalog.~)``, ``::regclass`` and other reg* casts, ``COLLATE
pg_catalog.default``, schema-qualified ``pg_catalog.f(...)`` calls (so the session's TEMP macros
answer them), ``pg_catalog.X`` views the session supplies, ``current_user``, and
``current_setting`` of Postgres-only settings. Unaliased result columns keep Postgres' names."""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlglot
from sqlglot import exp

from sqlml.server.pgwire.catalog import INFORMATION_SCHEMA_VIEWS, SUPPLIED_VIEWS

# Annotations name exp.Expr, the base class of sqlglot's node types (its type hints use it; at
# run time every node is also an exp.Expression).


def rewrite(text: str, *, user: str, setting: Callable[[str], str | None],
            pg_settings: Callable[[], dict[str, str]] | None = None) -> str | None:
    """DuckDB SQL for a Postgres query, or None when sqlglot cannot read it. ``setting(name)``
    is the value of a Postgres-only setting, None for the others; ``pg_settings()`` all of them
    (for ``current_setting($1)``, whose name comes as a bind parameter)."""
    try:
        tree = sqlglot.parse_one(_quote_keyword_aliases(text), read="postgres")
    except sqlglot.errors.SqlglotError:
        return None
    if tree is None:
        return None
    _name_columns(tree)

    def transform(node: exp.Expr) -> exp.Expr:
        if pg_settings is not None and _is_setting_of_parameter(node):
            return _setting_of_parameter(node, pg_settings())
        return _transform(node, user, setting)

    # sqlglot's transform does not revisit what a replaced node contains, so repeat it until
    # nothing changes (catalog queries nest: pg_size_pretty(pg_catalog.pg_table_size(...))).
    out = tree.sql(dialect="duckdb")
    for _ in range(8):
        tree = tree.transform(transform)
        again = tree.sql(dialect="duckdb")
        if again == out:
            break
        out = again
    return out


def _transform(node: exp.Expr, user: str, setting) -> exp.Expr:
    if isinstance(node, exp.Dot) and _is_pg_catalog(node.this) and isinstance(
            node.expression, exp.Func):
        return node.expression
    if isinstance(node, exp.Operator):
        return _operator(node)
    if isinstance(node, exp.Collate):
        return node.this
    if isinstance(node, exp.Dot) and isinstance(node.this, exp.Identifier) and (
            node.this.name.lower() == "information_schema") and isinstance(
            node.expression, exp.Func) and node.expression.name.lower().startswith("_pg_"):
        return node.expression  # pgjdbc's information_schema._pg_expandarray(i.indkey)
    if isinstance(node, (exp.Like, exp.ILike)) and not isinstance(node.parent, exp.Escape) and (
            isinstance(node.expression, exp.Literal) and "\\" in node.expression.this):
        # Postgres' LIKE escapes with a backslash by default, DuckDB's with nothing: JDBC
        # sends getFunctions(null, "main", "ml\\_%") as proname LIKE 'ml\\_%'.
        return exp.Escape(this=node.copy(), expression=exp.Literal.string("\\"))
    if isinstance(node, exp.Cast) and _is_array_literal(node):
        return exp.Cast(this=_array_elements(node.this.this), to=node.to)
    if isinstance(node, exp.Cast):
        return _cast(node)
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.USERDEFINED:
        return _plain_type(node)
    if isinstance(node, exp.Table) and _information_schema_view(node):
        return exp.to_table(f"sqlml_information_schema_{node.name.lower()}").as_(
            node.alias_or_name)
    if isinstance(node, exp.Format):
        return _format(node)
    if isinstance(node, exp.Table):
        db = node.args.get("db")
        supplied = not isinstance(node.this, exp.Identifier) or (
            node.name.lower() in SUPPLIED_VIEWS)
        if db is not None and db.name.lower() == "pg_catalog" and supplied:
            node = node.copy()
            node.set("db", None)
            node.set("catalog", None)
        return node
    if isinstance(node, exp.Column) and _is_pg_catalog(node.args.get("db")):
        # pg_catalog.pg_class.oid: its table may have become this session's view pg_class
        node = node.copy()
        node.set("db", None)
        return node
    if isinstance(node, (exp.CurrentUser, exp.SessionUser)):
        return exp.Literal.string(user)
    if isinstance(node, exp.Anonymous) and node.name.lower() in _RENAMED_FUNCTIONS:
        return exp.Anonymous(this=_RENAMED_FUNCTIONS[node.name.lower()],
                             expressions=node.expressions)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "current_setting":
        args = node.expressions
        if args and isinstance(args[0], exp.Literal) and args[0].is_string:
            value = setting(args[0].this.lower())
            if value is not None:
                return exp.Literal.string(value)
    return node


# Postgres functions DuckDB has under another name, same arguments.
_RENAMED_FUNCTIONS = {"json_build_object": "json_object", "jsonb_build_object": "json_object",
                      "json_build_array": "json_array", "jsonb_build_array": "json_array"}

_CATALOG_HINT = re.compile(r"\bpg_\w+|::\s*(?:pg_catalog\.)?reg\w+|\bOPERATOR\s*\(|"
                           r"\binformation_schema\s*\.|"
                           r"\bcurrent_setting\s*\(|\bversion\s*\(\s*\)|\bformat_type\b|"
                           r"\b(?:current|session)_user\b", re.I)


def touches_catalog(text: str) -> bool:
    return bool(_CATALOG_HINT.search(text))


def _pg_column_name(node: exp.Expr) -> str | None:
    """The name Postgres gives an unaliased select-list item (None: keep DuckDB's)."""
    if isinstance(node, (exp.Column, exp.Star, exp.Alias)):
        return None
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
        return _pg_column_name(node.expression)
    if isinstance(node, exp.Cast):
        inner = node.this
        if isinstance(inner, exp.Column):
            return inner.name
        if isinstance(inner, exp.Literal):
            return _type_name(node.to)
        return _pg_column_name(inner)
    if isinstance(node, exp.Case):
        return "case"
    if isinstance(node, exp.Subquery) and isinstance(node.this, exp.Select):
        first = node.this.expressions[0] if node.this.expressions else None
        return first.alias_or_name if first is not None else None
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return "?column?"


def _name_columns(tree: exp.Expr) -> None:
    """Rewriting must not rename result columns: clients read some of them by name."""
    selects = [tree] if isinstance(tree, exp.Select) else []
    if isinstance(tree, exp.SetOperation):
        selects = [tree.left] if isinstance(tree.left, exp.Select) else []
    for select in selects:
        for i, item in enumerate(select.expressions):
            name = _pg_column_name(item)
            if name:
                select.expressions[i].replace(exp.alias_(item.copy(), name, quoted=True))


def _is_pg_catalog(node) -> bool:
    return isinstance(node, exp.Identifier) and node.name.lower() == "pg_catalog"


_COMPARISONS = {"=": exp.EQ, "<>": exp.NEQ, "!=": exp.NEQ, "<": exp.LT, ">": exp.GT,
                "<=": exp.LTE, ">=": exp.GTE, "~": exp.RegexpLike, "~*": exp.RegexpILike,
                "~~": exp.Like, "~~*": exp.ILike}


def _operator(node: exp.Operator) -> exp.Expr:
    op = str(node.args.get("operator", "")).split(".")[-1].strip()
    negate = op.startswith("!") and op != "!="
    cls = _COMPARISONS.get(op[1:] if negate else op)
    if cls is None:
        return node
    out = cls(this=node.this, expression=node.expression)
    return exp.Not(this=out) if negate else out


def _type_name(to: exp.Expr) -> str:
    """The Postgres type name of a cast target, without its pg_catalog schema, lower-case."""
    if isinstance(to, exp.DataType) and to.this == exp.DataType.Type.USERDEFINED:
        kind = to.args.get("kind")
        if isinstance(kind, exp.Dot):
            kind = kind.expression
        return kind.name.lower() if kind is not None else ""
    this = to.this
    if isinstance(this, exp.DataType.Type):
        return this.value.lower()
    if isinstance(this, str):
        return this.lower()          # exp.ObjectIdentifier: REGCLASS, OID...
    return to.name.lower()


# reg* type: (catalog view, its name column), or None when no view here lists its objects.
_REG: dict[str, tuple[str, str] | None] = {
    "regclass": ("pg_class", "relname"), "regtype": ("pg_type", "typname"),
    "regproc": ("pg_proc", "proname"), "regprocedure": ("pg_proc", "proname"),
    "regnamespace": ("pg_namespace", "nspname"), "regrole": None, "regconfig": None,
    "regoper": None}
_PLAIN = {"oid": "BIGINT", "name": "VARCHAR", "char": "VARCHAR", "text": "VARCHAR",
          "int2vector": "VARCHAR", "oidvector": "VARCHAR", "xid": "BIGINT", "regrole": "BIGINT",
          "pg_node_tree": "VARCHAR", "aclitem": "VARCHAR"}


def _plain_type(node: exp.DataType) -> exp.Expr:
    """pg_catalog.int2 is int2; Postgres-only types become the DuckDB type closest to them."""
    name = _type_name(node)
    if name in _PLAIN:
        return exp.DataType.build(_PLAIN[name])
    if name in _REG:
        return exp.DataType.build("BIGINT")
    try:
        return exp.DataType.build(name, dialect="postgres")
    except sqlglot.errors.SqlglotError:
        return node


def _lookup(table: str, column: str, key: str, value: exp.Expr) -> exp.Expr:
    return exp.Subquery(this=exp.select(column).from_(f"pg_catalog.{table}")
                        .where(exp.EQ(this=exp.column(key), expression=value)).limit(1))


def _cast(node: exp.Cast) -> exp.Expr:
    target = _type_name(node.to)
    inner = node.this
    if target in _REG:
        view = _REG[target]
        if target == "regclass" and isinstance(inner, (exp.Format, exp.DPipe, exp.Concat)):
            return _regclass_of_text(inner)
        if isinstance(inner, exp.Literal) and inner.is_string:
            if view is None:
                return exp.Literal.number(0)
            table, column = view
            name = inner.this.split(".")[-1].strip('"')
            return _lookup(table, "oid", column, exp.Literal.string(name))
        return inner
    if isinstance(inner, exp.Cast) and _type_name(inner.to) in _REG:
        # oid::regclass::text is the relation's name; the inner cast already became the oid.
        reg = _type_name(inner.to)
        view = _REG[reg]
        if target in ("text", "varchar", "name") and view is not None:
            table, column = view
            if reg == "regtype":
                return exp.Anonymous(this="format_type",
                                     expressions=[inner.this, exp.Null()])
            return _lookup(table, column, "oid", inner.this)
    if target in _PLAIN:
        return exp.Cast(this=inner, to=exp.DataType.build(_PLAIN[target]))
    return node


# Keywords Postgres takes as a column alias after AS (Metabase's privileges query names its
# columns select, insert, update, delete and table); sqlglot reads `AS select` as a new query.
_ALIAS_END = {"COMMA", "FROM", "R_PAREN", "SEMICOLON"}
# (statement keywords only: `CAST(x AS date)` has the same tokens as an alias named date)
_KEYWORD_ALIASES = {"SELECT", "INSERT", "UPDATE", "DELETE", "TABLE"}


def _quote_keyword_aliases(text: str) -> str:
    try:
        tokens = sqlglot.tokenize(text, read="postgres")
    except sqlglot.errors.SqlglotError:
        return text
    spans = []
    for i in range(len(tokens) - 1):
        word = tokens[i + 1]
        after = tokens[i + 2].token_type.name if i + 2 < len(tokens) else "SEMICOLON"
        if (tokens[i].token_type.name == "ALIAS" and word.token_type.name in _KEYWORD_ALIASES
                and after in _ALIAS_END
                and text[word.start:word.end + 1] == word.text):
            spans.append((word.start, word.end + 1, f'"{word.text.lower()}"'))
    for start, end, quoted in reversed(spans):
        text = text[:start] + quoted + text[end:]
    return text


def _information_schema_view(node: exp.Table) -> bool:
    db = node.args.get("db")
    return (db is not None and db.name.lower() == "information_schema"
            and node.name.lower() in INFORMATION_SCHEMA_VIEWS)


_QUOTE = "'"


def _format_arg(piece: str, arg: exp.Expr) -> str:
    value = f"CAST({arg.sql(dialect='duckdb')} AS VARCHAR)"
    if piece == "%I":
        return (f"CASE WHEN regexp_full_match({value}, '[a-z_][a-z0-9_$]*') THEN {value} "
                f"ELSE '\"' || replace({value}, '\"', '\"\"') || '\"' END")
    if piece == "%L":
        q, qq = _QUOTE * 4, _QUOTE * 6
        return f"coalesce({q} || replace({value}, {q}, {qq}) || {q}, 'NULL')"
    return value


def _format(node: exp.Format) -> exp.Expr:
    """Postgres' format() with %I (identifier) or %L (literal), which DuckDB's lacks, as a
    concatenation; sqlglot itself turns %s into DuckDB's {}."""
    pattern = node.this
    if not (isinstance(pattern, exp.Literal) and pattern.is_string) or not re.search(
            r"%[IL]", pattern.this):
        return node
    args = iter(node.expressions)
    parts = []
    for piece in re.split(r"(%[sIL%])", pattern.this):
        if piece in ("%s", "%I", "%L"):
            arg = next(args, None)
            if arg is None:
                return node
            parts.append(_format_arg(piece, arg))
        elif piece:
            text = piece.replace("%%", "%").replace(_QUOTE, _QUOTE * 2)
            parts.append(f"{_QUOTE}{text}{_QUOTE}")
    return exp.Paren(this=sqlglot.parse_one(" || ".join(parts) or "''", read="duckdb"))


def _regclass_of_text(text: exp.Expr) -> exp.Expr:
    """'schema.table'::regclass of a computed name: the relation's oid, looked up by name (the
    schema too when the name has one), without the double quotes %I or quote_ident add."""
    parts = f"string_split({text.sql(dialect='duckdb')}, '.')"
    return sqlglot.parse_one(
        f"(SELECT sqlml_c.oid FROM pg_catalog.pg_class sqlml_c JOIN pg_catalog.pg_namespace "
        f"sqlml_n ON sqlml_n.oid = sqlml_c.relnamespace WHERE sqlml_c.relname = "
        f"trim({parts}[-1], '\"') AND (len({parts}) = 1 OR sqlml_n.nspname = "
        f"trim({parts}[1], '\"')) LIMIT 1)", read="duckdb")


def _is_setting_of_parameter(node: exp.Expr) -> bool:
    if not (isinstance(node, exp.Anonymous) and node.name.lower() == "current_setting"
            and node.expressions):
        return False
    name = node.expressions[0]
    if isinstance(name, exp.Cast):        # current_setting($1::VARCHAR)
        name = name.this
    return isinstance(name, (exp.Parameter, exp.Placeholder))


def _setting_of_parameter(node: exp.Expr, settings: dict[str, str]) -> exp.Expr:
    """current_setting($1) (SQLAlchemy 2.1 over psycopg 3 binds the name of
    default_table_access_method): the Postgres-only settings by name, DuckDB's from
    duckdb_settings() (DuckDB's own current_setting would refuse a Postgres-only name)."""
    name = f"lower({node.expressions[0].sql(dialect='duckdb')})"
    cases = " ".join(f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in settings.items())
    fallback = f"(SELECT any_value(value) FROM duckdb_settings() WHERE lower(name) = {name})"
    return sqlglot.parse_one(f"CASE {name} {cases} ELSE {fallback} END" if cases else fallback,
                             read="duckdb")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
def _is_array_literal(node: exp.Cast) -> bool:
    """'{a,b}'::text[], Postgres' text form of an array (pgjdbc's getSQLKeywords sends one)."""
    inner = node.this
    return (isinstance(inner, exp.Literal) and inner.is_string and inner.this.startswith("{")
            and inner.this.endswith("}") and isinstance(node.to, exp.DataType)
            and node.to.this == exp.DataType.Type.ARRAY)


def _array_elements(text: str) -> exp.Expr:
    """The list of an array literal's elements, as strings (cast to the element type after);
    double-quoted elements lose their quotes, as Postgres reads them."""
    body = text[1:-1].strip()
    items = re.findall(r'"((?:[^"\\]|\\.)*)"|([^,]+)', body) if body else []
    return exp.Array(expressions=[
        exp.Literal.string(quoted.replace('\\"', '"')) if quoted or not bare
        else exp.Null() if bare.strip().upper() == "NULL" else exp.Literal.string(bare.strip())
        for quoted, bare in items])
