"""Redshift ML statements inside DuckDB scripts: splitting, parsing and compiling to SQL calls.

``CREATE MODEL``, ``SHOW MODEL``, ``DROP MODEL``, ``EXPLAIN_MODEL`` and ``SELECT FORECAST``
compile to the same ``ml_create_model(...)``, ``ml_show_model(...)``, ``ml_models()``,
``ml_drop_model(...)``, ``ml_explain_model(...)`` and ``ml_forecast(...)`` calls a user would
write, so there is one implementation of each.
Every other statement passes through to DuckDB untouched.

Scripts are cut with sqlglot's DuckDB tokenizer, so a ``;`` inside a string, a dollar-quoted
string, a comment or parentheses never ends a statement.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import NoReturn

from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from sqlml import spec
from sqlml.errors import SqlSyntaxError, closest
from sqlml.redshift import mapping as redshift

_STRINGS = {TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.BYTE_STRING,
            TokenType.HEREDOC_STRING, TokenType.RAW_STRING, TokenType.BIT_STRING,
            TokenType.HEX_STRING, TokenType.UNICODE_STRING}

# sqlml keeps every model of a database in one namespace (the sqlml catalog), and generated
# functions are not schema-qualified, so Redshift's schema before a model name cannot be honoured.
SCHEMA_NOTICE = ("Model {schema}.{name}: the schema {schema} is ignored, since sqlml keeps every "
                 "model in one namespace; this is model '{name}', and its functions are called "
                 "without a schema.")
_PARAMETER = re.compile(r"\$\d+|\?")
_QUALIFIED = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*")

# Clauses of CREATE MODEL after its FROM; Redshift documents this order, sqlml accepts any.
# ENGINE is sqlml's own (settings engine): ENGINE SPARK trains on Apache Spark (docs/spark.md).
CLAUSES = ("TARGET", "FUNCTION", "IAM_ROLE", "AUTO", "MODEL_TYPE", "PROBLEM_TYPE", "OBJECTIVE",
           "PREPROCESSORS", "HYPERPARAMETERS", "SETTINGS", "ENGINE")


@dataclass(frozen=True)
class Tok:
    kind: str       # word | ident (quoted) | string | number | punct
    text: str       # the value: a word as written, an identifier or string unquoted
    start: int      # offset of the first character in the script
    end: int        # offset after the last character

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


@dataclass
class Statement:
    """One statement of a script, with the SQL that runs it."""

    text: str                  # the statement as written, without the final ';'
    kind: str                  # sql | create_model | show_model | show_models | drop_model
    #                            | explain_model | forecast
    sql: str                   # what runs on the connection
    line: int                  # where it starts in the script
    model: str | None = None
    if_exists: bool = False
    notices: list[str] = field(default_factory=list)


# -- tokens -------------------------------------------------------------------------------------
def _tokenizer():
    return DuckDB.Tokenizer()


def _convert(raw) -> Tok:
    tt, text = raw.token_type, raw.text
    if tt in _STRINGS:
        kind = "string"
    elif tt == TokenType.IDENTIFIER:
        kind = "ident"
    elif tt == TokenType.NUMBER:
        kind = "number"
    elif text and (text[0].isalpha() or text[0] == "_") and all(
            c.isalnum() or c in "_$" for c in text):
        kind = "word"
    else:
        kind = "punct"
    return Tok(kind, text, raw.start, raw.end + 1)


def _position(script: str, offset: int) -> tuple[int, int]:
    line = script.count("\n", 0, offset) + 1
    return line, offset - (script.rfind("\n", 0, offset) + 1) + 1


def tokenize(script: str) -> list[Tok]:
    """Tokens of ``script``; an unterminated string, identifier or comment is a SqlSyntaxError."""
    tokenizer = _tokenizer()
    if script.startswith("\ufeff"):
        # A byte-order mark (editors on Windows save one) would stick to the first word, and
        # CREATE MODEL would reach DuckDB's parser; a space keeps every offset.
        script = " " + script[1:]
    try:
        return [_convert(t) for t in tokenizer.tokenize(script)]
    except TokenError:
        # sqlglot knows where the unterminated token began but keeps it private; fall back to the
        # end of the last complete token.
        core = getattr(tokenizer, "_core", tokenizer)
        start = getattr(core, "_start", None)
        if not isinstance(start, int) or not 0 <= start < len(script):
            done = getattr(core, "tokens", None) or []
            start = done[-1].end + 1 if done else 0
            while start < len(script) and script[start].isspace():
                start += 1
        line, col = _position(script, start)
        opening = script[start:start + 2] if script[start:start + 2] == "/*" else script[
            start:start + 1]
        raise SqlSyntaxError(
            "SQL", line, col, "a closing " + {"'": "quote '", '"': 'double quote "',
                                              "/*": "*/ for the comment",
                                              "$": "dollar quote"}.get(opening, "delimiter"),
            "the end of the script",
            f" The {'comment' if opening == '/*' else 'quoted text'} that starts here never "
            f"ends: close it.") from None


def _spans(tokens: list[Tok]) -> list[list[Tok]]:
    """Token lists of the statements: cut at ';' outside parentheses."""
    out: list[list[Tok]] = []
    cur: list[Tok] = []
    depth = 0
    for t in tokens:
        if t.kind == "punct" and t.text == ";" and depth == 0:
            if cur:
                out.append(cur)
            cur = []
            continue
        if t.kind == "punct" and t.text == "(":
            depth += 1
        elif t.kind == "punct" and t.text == ")":
            depth = max(depth - 1, 0)
        cur.append(t)
    if cur:
        out.append(cur)
    return out


def split(script: str) -> list[str]:
    """The statements of a script, each without its final ';' and without comments around it."""
    return [script[s[0].start:s[-1].end] for s in _spans(tokenize(script))]


def is_complete(text: str) -> bool:
    """True when ``text`` ends a statement: its last token is a ';' outside parentheses.

    A text inside an unterminated string, identifier or comment, or with no final ';', is not
    complete (a shell then asks for more lines).
    """
    try:
        tokens = tokenize(text)
    except SqlSyntaxError:
        return False
    if not tokens or tokens[-1].text != ";" or tokens[-1].kind != "punct":
        return False
    depth = 0
    for t in tokens:
        if t.kind == "punct" and t.text == "(":
            depth += 1
        elif t.kind == "punct" and t.text == ")":
            depth = max(depth - 1, 0)
    return depth == 0


# -- parsing --------------------------------------------------------------------------------------
def parse(script: str) -> list[Statement]:
    """Every statement of ``script``, Redshift ones compiled; raises SqlSyntaxError."""
    out = []
    for toks in _spans(tokenize(script)):
        text = script[toks[0].start:toks[-1].end]
        line = _position(script, toks[0].start)[0]
        stmt = _Parser(script, toks).statement()
        if stmt is None:
            out.append(Statement(text, "sql", text, line))
        else:
            stmt.text, stmt.line = text, line
            out.append(stmt)
    return out


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _ident_sql(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Parser:
    def __init__(self, script: str, toks: list[Tok]):
        self.script, self.toks, self.i = script, toks, 0
        self.what = "SQL"
        self.notices: list[str] = []

    # cursor ---------------------------------------------------------------------------------
    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> Tok | None:
        t = self.peek()
        self.i += 1
        return t

    def is_word(self, *words: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t is not None and t.upper in words

    def is_punct(self, text: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t is not None and t.kind == "punct" and t.text == text

    def fail(self, tok: Tok | None, expected: str, hint: str = "",
             got: str | None = None) -> NoReturn:
        if tok is None:
            offset = self.toks[-1].end if self.toks else 0
            got = got or "the end of the statement"
        else:
            offset = tok.start
            text = self.script[tok.start:tok.end]
            param = _PARAMETER.match(self.script, tok.start) if tok.kind == "punct" else None
            if param and got is None:
                # A driver binding values server-side (psycopg) sends %s as $1.
                got = f"the bind parameter {param.group(0)}"
                hint += (" Redshift ML statements take no bind parameters: write the value "
                         "itself into the statement.")
            got = got or (text if text[:1] in ("'", '"', "$") else f"'{text}'")
        line, col = _position(self.script, offset)
        raise SqlSyntaxError(self.what, line, col, expected, got, hint)

    def word(self, expected: str, *choices: str) -> Tok:
        t = self.take()
        if t is None or t.kind != "word" or (choices and t.upper not in choices):
            self.fail(t, expected, _suggest(t, choices))
        return t

    def punct(self, text: str, expected: str | None = None) -> Tok:
        t = self.take()
        if t is None or t.kind != "punct" or t.text != text:
            self.fail(t, expected or f"'{text}'")
        return t

    def name(self, expected: str) -> str:
        """An identifier: unquoted names fold to lower case (as in Redshift), quoted keep theirs."""
        t = self.take()
        if t is None or t.kind not in ("word", "ident"):
            self.fail(t, expected)
        return t.text if t.kind == "ident" else t.text.lower()

    def model_name(self, expected: str) -> str:
        """A model name; a schema before it (``demo_ml.churn``) is dropped with a notice."""
        name = self.name(expected)
        if not self.is_punct("."):
            return name
        self.take()
        return self._unqualified(name, self.name(f"a model name after '{name}.'"))

    def _unqualified(self, schema: str, name: str) -> str:
        self.notices.append(SCHEMA_NOTICE.format(schema=schema, name=name))
        return name

    def end(self) -> None:
        if self.peek() is not None:
            self.fail(self.peek(), "the end of the statement (a ';')")

    # statements -----------------------------------------------------------------------------
    def statement(self) -> Statement | None:
        if self.is_word("CREATE") and self.is_word("MODEL", k=1):
            self.what = "CREATE MODEL"
            self.i = 2
            return _CreateModel(self).parse()
        if self.is_word("SHOW") and self.is_word("MODEL", k=1):
            self.what = "SHOW MODEL"
            self.i = 2
            if self.is_word("ALL") and self.peek(1) is None:
                self.take()
                return Statement("", "show_models", "FROM ml_models()", 0)
            name = self.model_name("a model name or ALL")
            self.end()
            return Statement("", "show_model", f"FROM ml_show_model({quote(name)})", 0,
                             model=name, notices=self.notices)
        if self.is_word("DROP") and self.is_word("MODEL", k=1):
            self.what = "DROP MODEL"
            self.i = 2
            if_exists = False
            if self.is_word("IF"):
                self.take()
                self.word("EXISTS after IF", "EXISTS")
                if_exists = True
            name = self.model_name("a model name" if if_exists else "IF EXISTS or a model name")
            self.end()
            return Statement("", "drop_model", f"SELECT ml_drop_model({quote(name)}) AS dropped", 0,
                             model=name, if_exists=if_exists, notices=self.notices)
        if self.is_word("EXPLAIN_MODEL"):
            self.what = "EXPLAIN_MODEL"
            self.i = 1
            return self._explain()
        if (self.is_word("SELECT") and self.is_word("EXPLAIN_MODEL", k=1)
                and self.is_punct("(", k=2) and self.is_punct(")", k=4) and len(self.toks) == 5):
            self.what = "EXPLAIN_MODEL"
            self.i = 2
            return self._explain()
        if (self.is_word("SELECT") and self.is_word("FORECAST", k=1) and self.is_punct("(", k=2)
                and self.is_punct(")", k=len(self.toks) - 1)):
            self.what = "FORECAST"
            self.i = 3
            name = self.model_name("a model name, e.g. SELECT FORECAST(sales_forecast)")
            self.punct(")", "')' after the model name")
            self.end()
            return Statement("", "forecast", forecast_sql(name), 0, model=name,
                             notices=self.notices)
        return None

    def _explain(self) -> Statement:
        self.punct("(", "'(' after EXPLAIN_MODEL")
        t = self.peek()
        if t is not None and t.kind == "string":
            self.take()
            name = t.text
            # Redshift's documentation writes EXPLAIN_MODEL('public.customer_churn').
            if _QUALIFIED.fullmatch(name):
                name = self._unqualified(*name.split("."))
        else:
            name = self.model_name("a model name, e.g. EXPLAIN_MODEL(customer_churn)")
        self.punct(")", "')' after the model name")
        self.end()
        return Statement("", "explain_model", f"FROM ml_explain_model({quote(name)})", 0,
                         model=name, notices=self.notices)

    # literals -------------------------------------------------------------------------------
    def literal(self, expected: str) -> tuple[object, Tok]:
        """A number, string, TRUE/FALSE, ON/OFF, NULL or a bare word (taken as text)."""
        t = self.take()
        if t is None:
            self.fail(t, expected)
        if t.kind == "punct" and t.text in ("-", "+", "."):
            n = self.peek()
            if n is not None and n.kind == "number" and n.start == t.end:
                self.take()
                text = ("0." if t.text == "." else t.text) + n.text
                return _number(text), t
            self.fail(t, expected)
        if t.kind == "number":
            return _number(t.text), t
        if t.kind == "string":
            return t.text, t
        if t.kind == "word":
            u = t.upper
            if u in ("TRUE", "ON"):
                return True, t
            if u in ("FALSE", "OFF"):
                return False, t
            if u == "NULL":
                return None, t
            return t.text, t
        self.fail(t, expected)


def _number(text: str) -> int | float | str:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _suggest(tok: Tok | None, choices) -> str:
    if tok is None or not choices or tok.kind not in ("word", "ident"):
        return ""
    hits = closest(tok.text.upper(), choices, n=1)
    return f" Did you mean {' or '.join(hits)}?" if hits else ""


class _CreateModel:
    def __init__(self, p: _Parser):
        self.p = p
        self.seen: dict[str, Tok] = {}
        self.notices: list[str] = p.notices
        self.options: dict = {}
        self.settings: dict = {}
        self.settings_seen: set[str] = set()
        self.hyper: dict = {}
        self.hyper_toks: dict = {}
        self.model_type_tok: Tok | None = None
        self.auto: bool | None = None
        self.auto_tok: Tok | None = None
        self.objective_tok: Tok | None = None
        self.engine_tok: Tok | None = None

    def parse(self) -> Statement:
        p = self.p
        name = p.model_name("a model name after CREATE MODEL")
        p.word("FROM <table> or FROM (<query>)", "FROM")
        source = self._source()
        while (t := p.peek()) is not None:
            if t.kind != "word" or t.upper not in CLAUSES:
                if "TARGET" not in self.seen:
                    expected = "TARGET <column>"
                elif "FUNCTION" not in self.seen:
                    expected = "FUNCTION <name>"
                else:
                    expected = "a clause (" + ", ".join(
                        c for c in CLAUSES if c not in self.seen) + ") or the end of the statement"
                p.fail(t, expected, _suggest(t, CLAUSES))
            if t.upper in self.seen:
                first = self.seen[t.upper]
                line, col = _position(p.script, first.start)
                p.fail(t, f"each clause at most once ({t.upper} is already given at line "
                          f"{line}, column {col})", got=f"a second {t.upper}")
            self.seen[t.upper] = t
            p.take()
            getattr(self, "_" + t.upper.lower())(t)
        # A forecast's function is optional (Redshift's forecast models have none; sqlml names
        # it forecast_<model>), as SELECT FORECAST(model) reads the forecasts by the model.
        needed = ("TARGET",) if self.options.get("problem_type") == "forecast" else (
            "TARGET", "FUNCTION")
        for required in needed:
            if required not in self.seen:
                p.fail(None, f"{required} <{'column' if required == 'TARGET' else 'name'}>")
        return self._compile(name, source)

    def _source(self) -> str:
        p = self.p
        t = p.peek()
        if t is not None and t.kind == "punct" and t.text == "(":
            p.take()
            depth, first = 1, p.peek()
            while True:
                n = p.take()
                if n is None:
                    p.fail(None, "')' closing the training query")
                if n.kind == "punct" and n.text == "(":
                    depth += 1
                elif n.kind == "punct" and n.text == ")":
                    depth -= 1
                    if depth == 0:
                        break
                last = n
            # first is never None here (the loop fails at the end of the tokens); testing it
            # narrows its type.
            if first is None or first is n:
                p.fail(n, "a query inside FROM ( ... )")
            return p.script[first.start:last.end]
        if t is not None and t.kind == "string":
            p.fail(t, "a table name or a (query)", " Redshift's FROM 'job_name' (a SageMaker "
                   "job) is not supported; sqlml trains from a table or query.")
        parts, plain = [], True
        while True:
            n = p.take()
            if n is None or n.kind not in ("word", "ident"):
                p.fail(n, "a table name or a (query) after FROM")
            plain = plain and n.kind == "word"
            parts.append(n.text)
            if not p.is_punct("."):
                break
            p.take()
        if plain:
            return ".".join(parts)
        return "SELECT * FROM " + ".".join(_ident_sql(x) for x in parts)

    # clauses --------------------------------------------------------------------------------
    def _target(self, kw: Tok) -> None:
        self.options["target"] = self.p.name("a column name after TARGET")

    def _function(self, kw: Tok) -> None:
        self.options["function"] = self.p.name("a function name after FUNCTION")
        if self.p.is_punct("("):
            self.p.fail(self.p.peek(), "a clause after the function name", " Argument types "
                        "after FUNCTION belong to Redshift's bring-your-own-model form; sqlml "
                        "derives the arguments from the training columns, so leave them out.")

    def _iam_role(self, kw: Tok) -> None:
        t = self.p.take()
        if t is None or not (t.kind == "string" or t.upper == "DEFAULT"):
            self.p.fail(t, "DEFAULT or an ARN string after IAM_ROLE")
        self.notices.append(redshift.IGNORED_NOTICE.format(what="IAM_ROLE"))

    def _auto(self, kw: Tok) -> None:
        t = self.p.word("ON or OFF after AUTO", "ON", "OFF")
        self.auto, self.auto_tok = t.upper == "ON", kw

    def _model_type(self, kw: Tok) -> None:
        t = self.p.peek()
        if t is not None and t.kind in ("word", "string") and t.text.upper() == "FORECAST":
            # Redshift's MODEL_TYPE FORECAST is sqlml's problem type: AUTO picks the method.
            self.model_type_tok = self.p.take()
            self.options["problem_type"] = "forecast"
            return
        self.model_type_tok, self.options["model_type"] = self._mapped(
            "a model type after MODEL_TYPE", redshift.model_type)

    def _problem_type(self, kw: Tok) -> None:
        _, self.options["problem_type"] = self._mapped(
            "a problem type after PROBLEM_TYPE", redshift.problem_type)

    def _objective(self, kw: Tok) -> None:
        self.objective_tok, self.options["objective"] = self._mapped(
            "an objective string after OBJECTIVE, e.g. OBJECTIVE 'AUC'", redshift.objective)

    def _mapped(self, expected: str, mapping) -> tuple[Tok, object]:
        """The next word or string and what a sqlml.redshift.mapping mapping makes of it; a
        value the mapping refuses is a syntax error at that token, with the mapping's hint."""
        t = self.p.take()
        if t is None or t.kind not in ("word", "string"):
            self.p.fail(t, expected)
        try:
            return t, mapping(t.text)
        except redshift.MappingError as exc:
            self.p.fail(t, exc.expected, exc.hint)

    def _forecast_objective(self, opts: dict) -> None:
        """MODEL_TYPE FORECAST's OBJECTIVE goes with a notice; Amazon Forecast's metrics (WAPE,
        ...) are an error on any other model."""
        objective = opts.get("objective")
        if not isinstance(objective, str):
            return
        if opts.get("problem_type") == "forecast":
            del opts["objective"]
            name = objective.removeprefix(redshift.FORECAST_PREFIX)
            self.notices.append(redshift.FORECAST_OBJECTIVE_NOTICE.format(
                name="RMSE" if name == "rmse" else name))
        elif objective.startswith(redshift.FORECAST_PREFIX):
            name = objective.removeprefix(redshift.FORECAST_PREFIX)
            self.p.fail(self.objective_tok, "an objective such as 'AUC', 'F1', 'Accuracy' or "
                        "'MSE'", f" {name!r} is Amazon Forecast's: it applies with MODEL_TYPE "
                        f"FORECAST only.")

    def _preprocessors(self, kw: Tok) -> None:
        t = self.p.take()
        if t is None or t.kind != "string":
            self.p.fail(t, "a JSON string after PREPROCESSORS")
        try:
            mapped, notes = redshift.preprocessors(t.text)
        except redshift.MappingError as exc:
            self.p.fail(t, exc.expected, exc.hint, got=exc.got)
        self.notices += notes
        if mapped:
            self.options["preprocessors"] = mapped

    def _hyperparameters(self, kw: Tok) -> None:
        p = self.p
        p.word("DEFAULT after HYPERPARAMETERS", "DEFAULT")
        if not p.is_word("EXCEPT"):
            return
        p.take()
        p.punct("(", "'(' after EXCEPT")
        while True:
            t = p.take()
            if t is None or t.kind not in ("word", "ident"):
                p.fail(t, "a hyperparameter name")
            if t.text.lower() in {k.lower() for k in self.hyper_toks}:
                p.fail(t, "each hyperparameter at most once", got=f"a second {t.text}")
            value, vtok = p.literal(f"a value for hyperparameter {t.text}")
            self.hyper_toks[t.text] = (t, value, vtok)
            if p.is_punct(","):
                p.take()
                continue
            p.punct(")", "',' or ')' in HYPERPARAMETERS DEFAULT EXCEPT (...)")
            break

    def _engine(self, kw: Tok) -> None:
        t = self.p.take()
        engines = tuple(e.upper() for e in spec.ENGINES)
        if t is None or t.kind not in ("word", "string") or t.text.upper() not in engines:
            self.p.fail(t, f"{' or '.join(engines)} after ENGINE", _suggest(t, engines))
        self.engine_tok = t

    def _settings(self, kw: Tok) -> None:
        p = self.p
        p.punct("(", "'(' after SETTINGS")
        while True:
            t = p.take()
            if t is None or t.kind not in ("word", "ident"):
                p.fail(t, "a setting name")
            key = t.text.lower()
            if key in self.settings_seen:
                p.fail(t, "each setting at most once", got=f"a second {t.text}")
            self.settings_seen.add(key)
            value, vtok = p.literal(f"a value for setting {t.text}")
            try:
                value, note = redshift.setting(key, value)
            except redshift.MappingError as exc:
                p.fail(vtok if exc.at_value else t, exc.expected, exc.hint)
            if note:
                self.notices.append(note)
            else:
                self.settings[key] = value
            if p.is_punct(","):
                p.take()
                continue
            p.punct(")", "',' or ')' in SETTINGS (...)")
            break

    # compiling ------------------------------------------------------------------------------
    def _compile(self, name: str, source: str) -> Statement:
        p, opts = self.p, self.options
        if self.auto is False and "model_type" not in opts:
            p.fail(self.auto_tok, "MODEL_TYPE with AUTO OFF", " AUTO OFF trains one model type "
                   "with the hyperparameters given: add e.g. MODEL_TYPE XGBOOST, or use AUTO ON.",
                   got="AUTO OFF without MODEL_TYPE")
        if self.hyper_toks:
            mt = opts.get("model_type", "auto")
            if mt == "auto":
                first = next(iter(self.hyper_toks.values()))[0]
                p.fail(first, "MODEL_TYPE before naming hyperparameters",
                       " Hyperparameter names belong to one model type: add e.g. MODEL_TYPE "
                       "XGBOOST.", got=f"hyperparameter {first.text} with no MODEL_TYPE")
            for key, (t, value, vtok) in self.hyper_toks.items():
                try:
                    sk, sv, note = redshift.hyperparameter(mt, key, t.kind == "ident", value)
                except redshift.MappingError as exc:
                    p.fail(vtok if exc.at_value else t, exc.expected, exc.hint)
                if note:
                    self.notices.append(note)
                if sk is not None:
                    self.hyper.update(sk if isinstance(sk, dict) else {sk: sv})
        if self.hyper:
            opts["hyperparameters"] = self.hyper
        for top in ("fn_cost", "fp_cost", "min_recall"):
            if top in self.settings:
                opts[top] = self.settings.pop(top)
        if opts.get("problem_type") == "recommendation":
            self.settings.setdefault("rating_col", opts["target"])
        if self.engine_tok is not None:
            if "engine" in self.settings_seen:
                p.fail(self.engine_tok, "the engine once, in ENGINE or in SETTINGS",
                       got="ENGINE beside SETTINGS (ENGINE ...)")
            self.settings["engine"] = self.engine_tok.text.lower()
        self._forecast_objective(opts)
        if opts.get("problem_type") == "forecast":
            # Amazon Forecast's roles: the timestamp column (sqlml finds the one date or
            # timestamp column), the TARGET, and every other column identifies the item.
            self.settings.setdefault("series_cols", "*")
            if "percentiles" in self.settings:
                self.settings["quantiles"] = self.settings.pop("percentiles")
        if self.settings:
            opts["settings"] = self.settings
        args = [quote(name), quote(source)]
        for key in spec.PARAM_NAMES[2:]:   # the named options, after name and source
            if key not in opts:
                continue
            v = opts[key]
            if isinstance(v, dict):
                lit = quote(json.dumps(v))
            elif isinstance(v, str):
                lit = quote(v)
            else:
                lit = repr(float(v)) if isinstance(v, float) else str(v)
            args.append(f"{key} := {lit}")
        # Not unnest(...) or (...).*: DuckDB then evaluates the call once per struct field, which
        # trains the model once per field. sqlml.execute spreads the summary into columns.
        sql = f"SELECT ml_create_model({', '.join(args)}) AS model"
        return Statement("", "create_model", sql, 0, model=name, notices=self.notices)


def forecast_sql(name: str) -> str:
    """``SELECT FORECAST(name)`` as Redshift returns it: one row per item and period, columns
    ``id`` (the item: its series columns' values, comma-separated), ``time``, and one column per
    percentile (p10, p50, p90; p2_5 for 0.025), pivoted from ``ml_forecast``'s long rows."""
    m = quote(name)
    column = ("'p' || replace(rtrim(rtrim(printf('%.8f', round(f.quantile * 100, 8)), '0'), "
              "'.'), '.', '_')")
    return (f"PIVOT (SELECT coalesce(nullif(array_to_string(s.series, ', '), ''), f.series) "
            f"AS id, f.period AS \"time\", {column} AS forecast_type, f.forecast "
            f"FROM ml_forecast({m}) f JOIN sqlml.models v ON v.name = {m} "
            f"JOIN sqlml.forecast_series s ON s.name = v.name AND s.version = v.active_version "
            f"AND s.series_id = f.series) ON forecast_type USING first(forecast) "
            f"ORDER BY id, \"time\"")
