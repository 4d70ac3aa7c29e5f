"""DuckDB values as Postgres sees them: type OIDs, text and binary encodings, parameter decoding.

Results go out in text format unless the client asks for binary. DuckDB types with no Postgres
counterpart (STRUCT, LIST, MAP, UNION, ENUM, BIT) are announced as ``text``; nested values are
written as JSON, which clients and BI tools can display and parse.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import struct
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

BOOL, BYTEA, INT8, INT2, INT4, TEXT, OID, JSON = 16, 17, 20, 21, 23, 25, 26, 114
FLOAT4, FLOAT8, UNKNOWN, VARCHAR, BPCHAR, DATE, TIME, TIMESTAMP = 700, 701, 705, 1043, 1042, 1082, \
    1083, 1114
TIMESTAMPTZ, INTERVAL, TIMETZ, NUMERIC, UUID, JSONB = 1184, 1186, 1266, 1700, 2950, 3802

# Parameters only: the array type of each element type (results send DuckDB lists as JSON text).
ARRAY_OF = {BOOL: 1000, BYTEA: 1001, INT2: 1005, INT4: 1007, INT8: 1016, TEXT: 1009,
            VARCHAR: 1015, BPCHAR: 1014, FLOAT4: 1021, FLOAT8: 1022, DATE: 1182, TIME: 1183,
            TIMESTAMP: 1115, TIMESTAMPTZ: 1185, INTERVAL: 1187, NUMERIC: 1231, UUID: 2951,
            JSON: 199, JSONB: 3807, OID: 1028, TIMETZ: 1270}
ELEMENT_OF = {array: element for element, array in ARRAY_OF.items()}

# Type names as a cast or PREPARE's type list writes them (lower case, single spaces).
_BY_NAME = {
    "bool": BOOL, "boolean": BOOL, "bytea": BYTEA, "blob": BYTEA, "int8": INT8, "bigint": INT8,
    "int2": INT2, "smallint": INT2, "int4": INT4, "int": INT4, "integer": INT4, "text": TEXT,
    "oid": OID, "json": JSON, "float4": FLOAT4, "real": FLOAT4, "float8": FLOAT8,
    "double precision": FLOAT8, "double": FLOAT8, "float": FLOAT8, "varchar": VARCHAR,
    "character varying": VARCHAR, "char": BPCHAR, "character": BPCHAR, "bpchar": BPCHAR,
    "date": DATE, "time": TIME, "time without time zone": TIME, "timestamp": TIMESTAMP,
    "timestamp without time zone": TIMESTAMP, "timestamptz": TIMESTAMPTZ,
    "timestamp with time zone": TIMESTAMPTZ, "interval": INTERVAL, "timetz": TIMETZ,
    "time with time zone": TIMETZ, "numeric": NUMERIC, "decimal": NUMERIC, "uuid": UUID,
    "jsonb": JSONB,
}
# One type name: optional pg_catalog., the words of multi-word names, (p, s), then [] pairs.
TYPE_NAME = (r'(?:pg_catalog\.)?"?[A-Za-z_]\w*"?(?:\s+(?:precision|varying|with(?:out)?\s+time'
             r'\s+zone))?(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?(?:\s*\[\s*\d*\s*\])*')
_CAST_PARAM = re.compile(r"\$(\d+)\s*::\s*(" + TYPE_NAME + r")|CAST\s*\(\s*\$(\d+)\s+AS\s+("
                         + TYPE_NAME + r")\s*\)", re.I)
_NOISE = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.S)


def oid_of_name(name: str) -> int:
    """The OID of a Postgres type name (``int``, ``timestamp with time zone``, ``text[]``);
    0 (unspecified) for a name this server does not map."""
    text = " ".join(name.lower().replace('"', "").split())
    text = text.removeprefix("pg_catalog.")
    dims = text.count("[")
    base = re.sub(r"\s*\(.*?\)|\s*\[.*", "", text).strip()
    oid = _BY_NAME.get(base, 0)
    if dims and oid:
        return ARRAY_OF.get(oid, 0)
    return oid


def cast_param_oids(sql: str) -> dict[int, int]:
    """``{n: oid}`` for the parameters the statement casts (``$1::int``, ``CAST($2 AS date)``):
    DuckDB does not report parameter types, and asyncpg encodes each value by the type the
    server describes."""
    out: dict[int, int] = {}
    for m in _CAST_PARAM.finditer(_NOISE.sub(" ", sql)):
        n, name = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        oid = oid_of_name(name)
        if oid:
            out.setdefault(int(n), oid)
    return out

SIZES = {BOOL: 1, INT2: 2, INT4: 4, INT8: 8, OID: 4, FLOAT4: 4, FLOAT8: 8, DATE: 4, TIME: 8,
         TIMESTAMP: 8, TIMESTAMPTZ: 8, INTERVAL: 16, UUID: 16, TIMETZ: 12}

_BY_DUCKDB_ID = {
    "boolean": BOOL, "tinyint": INT2, "utinyint": INT2, "smallint": INT2, "usmallint": INT4,
    "integer": INT4, "uinteger": INT8, "bigint": INT8, "ubigint": NUMERIC, "hugeint": NUMERIC,
    "uhugeint": NUMERIC, "decimal": NUMERIC, "bignum": NUMERIC, "varint": NUMERIC,
    "float": FLOAT4, "double": FLOAT8, "varchar": TEXT, "blob": BYTEA, "date": DATE,
    "time": TIME, "time with time zone": TIMETZ, "timestamp": TIMESTAMP, "timestamp_s": TIMESTAMP,
    "timestamp_ms": TIMESTAMP, "timestamp_ns": TIMESTAMP, "timestamp with time zone": TIMESTAMPTZ,
    "interval": INTERVAL, "uuid": UUID,
}

_PG_EPOCH = dt.datetime(2000, 1, 1)
_PG_EPOCH_DATE = _PG_EPOCH.date()
_PG_EPOCH_TZ = _PG_EPOCH.replace(tzinfo=dt.UTC)


def oid_of(duckdb_type) -> int:
    """The Postgres type OID for a DuckDB type (a DuckDBPyType, or its name)."""
    name = str(duckdb_type)
    if name == "JSON":
        return JSON
    type_id = getattr(duckdb_type, "id", name.lower())
    return _BY_DUCKDB_ID.get(type_id, TEXT)


def oid_of_value(value) -> int:
    """For results that come from Python (sqlml statements), not from a DuckDB description."""
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT8
    if isinstance(value, float):
        return FLOAT8
    if isinstance(value, Decimal):
        return NUMERIC
    if isinstance(value, dt.datetime):
        return TIMESTAMPTZ if value.tzinfo else TIMESTAMP
    if isinstance(value, dt.date):
        return DATE
    return TEXT


# -- text format ------------------------------------------------------------------------------
def _float_text(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


def _interval_text(v: dt.timedelta) -> str:
    seconds = v.seconds
    text = f"{v.days} days " if v.days else ""
    clock = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    if v.microseconds:
        clock += f".{v.microseconds:06d}".rstrip("0")
    if v.days < 0:
        clock = "+" + clock
    return text + clock


def _json_default(v):
    if isinstance(v, bytes):
        return "\\x" + v.hex()
    return str(v)


def to_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.timedelta):
        return _interval_text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    return str(value)


def encode_text(value) -> bytes | None:
    return None if value is None else to_text(value).encode("utf-8")


# -- binary format --------------------------------------------------------------------------------
def _numeric_binary(value) -> bytes:
    d = Decimal(value)
    if d.is_nan():
        return struct.pack("!hhHh", 0, 0, 0xC000, 0)
    sign, digits, exponent = d.as_tuple()
    if not isinstance(exponent, int):  # 'F': Infinity, which this wire form cannot carry
        raise TypeError(f"numeric {value} has no binary form")
    dscale = max(-exponent, 0)
    text = "".join(map(str, digits))
    # Place the decimal point, then cut into base-10000 groups aligned on it.
    if exponent >= 0:
        int_part, frac_part = text + "0" * exponent, ""
    else:
        int_part, frac_part = text[:exponent] or "0", text[exponent:].rjust(-exponent, "0")
    int_part = int_part.lstrip("0")
    int_groups = [int(int_part[max(i - 4, 0):i]) for i in range(len(int_part), 0, -4)][::-1]
    frac_part = frac_part + "0" * (-len(frac_part) % 4)
    frac_groups = [int(frac_part[i:i + 4]) for i in range(0, len(frac_part), 4)]
    groups = int_groups + frac_groups
    weight = len(int_groups) - 1
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    return struct.pack(f"!hhHh{len(groups)}H", len(groups), weight, 0x4000 if sign else 0,
                       dscale, *groups)


def _timetz_binary(v: dt.time) -> bytes:
    """Microseconds of the local time, then the zone's offset in seconds west of UTC."""
    offset = v.utcoffset() or dt.timedelta(0)
    micros = ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond
    return struct.pack("!qi", micros, -int(offset.total_seconds()))


# Each encoder takes the Python value DuckDB returns for that column's type (hence Any).
def _binary_encoder(oid: int) -> Callable[[Any], bytes]:
    if oid == BOOL:
        return lambda v: b"\x01" if v else b"\x00"
    if oid in (INT2, INT4, INT8):
        fmt = {INT2: "!h", INT4: "!i", INT8: "!q"}[oid]
        return lambda v: struct.pack(fmt, v)
    if oid == FLOAT4:
        return lambda v: struct.pack("!f", v)
    if oid == FLOAT8:
        return lambda v: struct.pack("!d", v)
    if oid == NUMERIC:
        return _numeric_binary
    if oid == BYTEA:
        return bytes
    if oid == DATE:
        return lambda v: struct.pack("!i", (v - _PG_EPOCH_DATE).days)
    if oid == TIMESTAMP:
        return lambda v: struct.pack("!q", (v - _PG_EPOCH) // dt.timedelta(microseconds=1))
    if oid == TIMESTAMPTZ:
        return lambda v: struct.pack("!q", (v - _PG_EPOCH_TZ) // dt.timedelta(microseconds=1))
    if oid == TIME:
        return lambda v: struct.pack("!q", ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000
                                     + v.microsecond)
    if oid == TIMETZ:
        return _timetz_binary
    if oid == INTERVAL:
        return lambda v: struct.pack("!qii", v.seconds * 1_000_000 + v.microseconds, v.days, 0)
    if oid == UUID:
        return lambda v: uuid.UUID(str(v)).bytes
    if oid == JSONB:
        return lambda v: b"\x01" + to_text(v).encode("utf-8")
    return lambda v: to_text(v).encode("utf-8")


def _null_passing(enc: Callable[[Any], bytes]) -> Callable[[Any], bytes | None]:
    """``enc``, except that SQL NULL stays None (sent as a -1 length, not encoded)."""
    return lambda v: None if v is None else enc(v)


def encoders(oids: list[int], formats: list[int]) -> list[Callable[[Any], bytes | None]]:
    """One encoder per column: text, or binary where the client asked for it."""
    out: list[Callable[[Any], bytes | None]] = []
    for oid, fmt in zip(oids, formats, strict=True):
        if fmt == 1:
            out.append(_null_passing(_binary_encoder(oid)))
        else:
            out.append(encode_text)
    return out


# -- parameters ----------------------------------------------------------------------------------
_TRUE = {"t", "true", "1", "y", "yes", "on"}


def _text_param(oid: int, text: str):
    if oid == BOOL:
        return text.strip().lower() in _TRUE
    if oid in (INT2, INT4, INT8, OID):
        return int(text)
    if oid in (FLOAT4, FLOAT8):
        return float(text)
    if oid == NUMERIC:
        return Decimal(text)
    if oid == DATE:
        return dt.date.fromisoformat(text)
    if oid in (TIMESTAMP, TIMESTAMPTZ):
        return dt.datetime.fromisoformat(text)
    if oid == BYTEA:
        return bytes.fromhex(text[2:]) if text.startswith("\\x") else text.encode()
    if oid == UUID:
        return uuid.UUID(text)
    if oid in ELEMENT_OF:
        return _array_from_text(text)
    return text


def _numeric_from_binary(data: bytes) -> Decimal:
    ndigits, weight, sign, dscale = struct.unpack_from("!hhHh", data)
    if sign == 0xC000:
        return Decimal("NaN")
    digits = struct.unpack_from(f"!{ndigits}H", data, 8)
    value = sum(Decimal(d) * Decimal(10000) ** (weight - i) for i, d in enumerate(digits))
    value = value.quantize(Decimal(1).scaleb(-dscale)) if dscale else value.to_integral_value()
    return -value if sign == 0x4000 else value


def _time_from_micros(micros: int) -> dt.time:
    seconds, us = divmod(micros, 1_000_000)
    return dt.time(seconds // 3600 % 24, seconds // 60 % 60, seconds % 60, us)


def _interval_from_binary(data: bytes):
    micros, days, months = struct.unpack("!qii", data)
    if not months:
        return dt.timedelta(days=days, microseconds=micros)
    # timedelta has no months: DuckDB reads this text when the statement casts it (::interval).
    return f"{months} months {days} days {micros} microseconds"


def _array_from_binary(data: bytes) -> list:
    """Postgres' binary array: ndim, has-null flag, element OID, (size, lower bound) per
    dimension, then each element as int32 length and bytes (-1: NULL)."""
    ndim, _, element = struct.unpack_from("!iiI", data)
    sizes = [struct.unpack_from("!ii", data, 12 + 8 * d)[0] for d in range(ndim)]
    pos = 12 + 8 * ndim
    flat = []
    for _ in range(math.prod(sizes) if ndim else 0):
        (n,) = struct.unpack_from("!i", data, pos)
        pos += 4
        flat.append(None if n == -1 else _binary_param(element, data[pos:pos + n]))
        pos += max(n, 0)
    for size in reversed(sizes[1:]):
        flat = [flat[i:i + size] for i in range(0, len(flat), size)]
    return flat


def _binary_scalar(oid: int, data: bytes):
    if oid == TIME:
        return _time_from_micros(struct.unpack("!q", data)[0])
    if oid == TIMETZ:
        micros, west = struct.unpack("!qi", data)
        return _time_from_micros(micros).replace(
            tzinfo=dt.timezone(dt.timedelta(seconds=-west)))
    if oid == INTERVAL:
        return _interval_from_binary(data)
    if oid == UUID:
        return uuid.UUID(bytes=bytes(data))
    if oid == JSONB:
        return data[1:].decode("utf-8")
    if oid in ELEMENT_OF:
        return _array_from_binary(data)
    if oid in (TEXT, VARCHAR, BPCHAR, UNKNOWN, JSON, 0):
        return data.decode("utf-8")
    raise ValueError(f"binary parameters of type OID {oid} are not supported; send this "
                     f"parameter in text format")


def _binary_param(oid: int, data: bytes):
    if oid == BOOL:
        return data != b"\x00"
    if oid in (INT2, INT4, INT8, OID):
        return int.from_bytes(data, "big", signed=oid != OID)
    if oid == FLOAT4:
        return struct.unpack("!f", data)[0]
    if oid == FLOAT8:
        return struct.unpack("!d", data)[0]
    if oid == NUMERIC:
        return _numeric_from_binary(data)
    if oid == BYTEA:
        return bytes(data)
    if oid == DATE:
        return _PG_EPOCH_DATE + dt.timedelta(days=struct.unpack("!i", data)[0])
    if oid == TIMESTAMP:
        return _PG_EPOCH + dt.timedelta(microseconds=struct.unpack("!q", data)[0])
    if oid == TIMESTAMPTZ:
        return _PG_EPOCH_TZ + dt.timedelta(microseconds=struct.unpack("!q", data)[0])
    return _binary_scalar(oid, data)


def _array_from_text(text: str) -> list:
    """A Postgres array literal (``{1,2,NULL}``, ``{{1,2},{3,4}}``, ``{"a b","c\\"d"}``) as
    nested lists of strings (None for NULL); DuckDB casts them to the element type."""
    stack: list[list] = []
    out: list = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "{":
            stack.append([])
            i += 1
        elif ch == "}":
            done = stack.pop()
            (stack[-1] if stack else out).append(done)
            i += 1
        elif ch in ", \t\n":
            i += 1
        elif ch == '"':
            j, buf = i + 1, []
            while text[j] != '"':
                if text[j] == "\\":
                    j += 1
                buf.append(text[j])
                j += 1
            stack[-1].append("".join(buf))
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in ",}":
                j += 1
            item = text[i:j].strip()
            stack[-1].append(None if item.upper() == "NULL" else item)
            i = j
    if stack or len(out) != 1:
        raise ValueError(f"malformed array literal {text!r}")
    return out[0]


def decode_param(oid: int, fmt: int, data: bytes | None):
    """A Python value for DuckDB from one Bind parameter; ValueError names what was wrong."""
    if data is None:
        return None
    try:
        if fmt == 1:
            return _binary_param(oid, data)
        return _text_param(oid, data.decode("utf-8"))
    except (ValueError, struct.error, ArithmeticError) as exc:
        raise ValueError(f"parameter of type OID {oid} in {'binary' if fmt else 'text'} format "
                         f"could not be read ({exc})") from exc
