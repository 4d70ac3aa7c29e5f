"""COPY through `sqlml serve` against a plain SELECT and the in-process answer, over loopback.

One table of R rows (integer, double, text, date), served by ``sqlml.server.pgwire`` in this
process (threads). Printed, each as rows per second and as a ratio to psycopg's SELECT:

- psycopg ``SELECT * FROM t`` (fetchall, text results): the baseline;
- psycopg ``COPY t TO STDOUT`` in text and CSV (the bytes, not parsed);
- psycopg ``COPY t FROM STDIN`` (text), and asyncpg ``copy_records_to_table`` (binary rows);
- TLS: the SELECT again with ``sslmode=require`` (a self-signed certificate made with the
  ``openssl`` CLI, if present), to show what encryption costs.

Every copy is checked (row counts, and the loaded rows equal the source); exit 1 otherwise.

    python benchmarks/bench_copy.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlml
from sqlml.server.pgwire import start_in_thread

PASSWORD = "bench-copy"


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _psycopg_runs(port: int, rows: int) -> dict[str, float]:
    import psycopg

    out = {}
    with psycopg.connect(host="127.0.0.1", port=port, user="sqlml", password=PASSWORD,
                         autocommit=True) as conn:
        conn.execute("SELECT * FROM t").fetchall()              # warm-up
        seconds, got = _timed(lambda: conn.execute("SELECT * FROM t").fetchall())
        assert len(got) == rows
        out["psycopg SELECT * (fetchall)"] = seconds
        for fmt in ("text", "csv"):
            def copy_out(fmt=fmt):
                with conn.cursor().copy(f"COPY t TO STDOUT (FORMAT {fmt})") as copy:
                    return b"".join(bytes(chunk) for chunk in copy)
            seconds, data = _timed(copy_out)
            assert data.count(b"\n") == rows
            out[f"psycopg COPY TO STDOUT ({fmt})"] = seconds
            if fmt == "text":
                text = data
        conn.execute("CREATE OR REPLACE TABLE loaded AS FROM t LIMIT 0")

        def copy_in():
            with conn.cursor().copy("COPY loaded FROM STDIN") as copy:
                copy.write(text)
        out["psycopg COPY FROM STDIN (text)"] = _timed(copy_in)[0]
    return out


def _asyncpg_run(port: int, records: list) -> float | None:
    try:
        import asyncpg
    except ImportError:
        return None

    async def run():
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="sqlml",
                                     password=PASSWORD, database="shop")
        try:
            await conn.execute("CREATE OR REPLACE TABLE loaded2 AS FROM t LIMIT 0")
            start = time.perf_counter()
            await conn.copy_records_to_table("loaded2", records=records)
            return time.perf_counter() - start
        finally:
            await conn.close()

    return asyncio.run(run())


def _tls_select(con, rows: int) -> float | None:
    if shutil.which("openssl") is None:
        return None
    import psycopg

    from sqlml.server.pgwire.tls import server_context

    with tempfile.TemporaryDirectory() as folder:
        cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
        server = start_in_thread(con, password=PASSWORD, tls=server_context(cert, key))
    try:
        with psycopg.connect(host="127.0.0.1", port=server.port, user="sqlml",
                             password=PASSWORD, sslmode="require") as conn:
            seconds, got = _timed(lambda: conn.execute("SELECT * FROM t").fetchall())
            assert len(got) == rows
            return seconds
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    con = sqlml.connect()
    con.execute(f"CREATE TABLE t AS SELECT range::INTEGER AS id, range / 7 AS x, "
                f"'item ' || range AS name, DATE '2020-01-01' + (range % 1000)::INTEGER AS d "
                f"FROM range({args.rows})")
    server = start_in_thread(con, password=PASSWORD)
    try:
        seconds = _psycopg_runs(server.port, args.rows)
        records = con.execute("FROM t").fetchall()
        binary = _asyncpg_run(server.port, records)
        if binary is not None:
            seconds["asyncpg copy_records_to_table (binary)"] = binary
    finally:
        server.stop()
    tls = _tls_select(con, args.rows)
    if tls is not None:
        seconds["psycopg SELECT * over TLS (sslmode=require)"] = tls
    ok = all(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == args.rows
             for t in ("loaded", "loaded2" if binary is not None else "loaded")) and \
        con.execute("SELECT count(*) FROM (FROM loaded EXCEPT FROM t)").fetchone()[0] == 0
    base = seconds["psycopg SELECT * (fetchall)"]
    print(f"{args.rows} rows (INTEGER, DOUBLE, VARCHAR, DATE) over loopback")
    for name, s in seconds.items():
        print(f"  {name:46s} {s:7.3f} s  {args.rows / s:>10,.0f} rows/s  {base / s:5.2f}x "
              f"the SELECT")
    print("copies checked:", "ok" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
