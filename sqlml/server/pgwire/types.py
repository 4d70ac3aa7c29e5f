"""DuckDB values as Postgres sees them: type OIDs, text and binary encodings, parameter decoding.

Results go out in text format unless the client asks for binary. DuckDB types with no Postgres
counterpart (STRUCT, LIST, MAP, UNION, ENUM, BIT) are announced as ``text``; nested values are
written as JSON, which clients and BI tools can display and parse.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import struct
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

BOOL, BYTEA, INT8, INT2, INT4, TEXT, OID, JSON = 16, 17, 20, 21, 23, 25, 26, 114
FLOAT4, FLOAT8, UNKNOWN, VARCHAR, BPCHAR, DATE, TIME, TIMESTAMP = 700, 701, 705, 1043, 1042, 1082, \
    1083, 1114
TIMESTAMPTZ, INTERVAL, TIMETZ, NUMERIC, UUID, JSONB = 1184, 1186, 1266, 1700, 2950, 3802

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
    return text


def _numeric_from_binary(data: bytes) -> Decimal:
    ndigits, weight, sign, dscale = struct.unpack_from("!hhHh", data)
    if sign == 0xC000:
        return Decimal("NaN")
    digits = struct.unpack_from(f"!{ndigits}H", data, 8)
    value = sum(Decimal(d) * Decimal(10000) ** (weight - i) for i, d in enumerate(digits))
    value = value.quantize(Decimal(1).scaleb(-dscale)) if dscale else value.to_integral_value()
    return -value if sign == 0x4000 else value


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
    if oid == UUID:
        return uuid.UUID(bytes=bytes(data))
    if oid == JSONB:
        return data[1:].decode("utf-8")
    if oid in (TEXT, VARCHAR, BPCHAR, UNKNOWN, JSON, 0):
        return data.decode("utf-8")
    raise ValueError(f"binary parameters of type OID {oid} are not supported; send this "
                     f"parameter in text format")


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
