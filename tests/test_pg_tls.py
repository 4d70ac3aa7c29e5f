"""TLS for `sqlml serve`: the Postgres server answers SSLRequest with S and refuses plain text
once it has a certificate, the REST endpoint serves HTTPS, and a non-loopback host needs TLS or
--insecure. The self-signed certificate is made at test time (cryptography, or openssl)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
import shutil
import ssl
import subprocess
import threading
import time

import pytest
from click.testing import CliRunner

import sqlml
from sqlml.cli.commands import main
from sqlml.errors import ServeError
from sqlml.server import serve
from sqlml.server.pgwire import start_in_thread
from sqlml.server.pgwire.tls import server_context

psycopg = pytest.importorskip("psycopg")

PASSWORD = "tls-secret"


def _with_cryptography(cert, key) -> bool:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return False
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(private.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return True


@pytest.fixture(scope="module")
def pem(tmp_path_factory):
    """(cert, key): a self-signed certificate for localhost and 127.0.0.1."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    if not _with_cryptography(cert, key):
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor openssl is available")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key),
                        "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def servers(pem):
    """(TLS server, plain server) on one database."""
    con = sqlml.connect()
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(5)")
    tls = start_in_thread(con, password=PASSWORD, tls=server_context(*pem))
    plain = start_in_thread(con, password=PASSWORD)
    yield tls, plain
    tls.stop()
    plain.stop()
    con.close()


def connect(server, **kwargs):
    return psycopg.connect(host="127.0.0.1", port=server.port, user="sqlml", password=PASSWORD,
                           dbname="shop", autocommit=True, connect_timeout=10, **kwargs)


def test_psycopg_sslmode_require_and_verify_full(servers, pem):
    tls, _ = servers
    with connect(tls, sslmode="require") as conn:
        assert conn.execute("SELECT sum(x) FROM t").fetchone() == (10,)
        assert conn.execute("SHOW ssl").fetchone() == ("on",)
        assert conn.pgconn.ssl_in_use
    with connect(tls, sslmode="verify-full", sslrootcert=str(pem[0])) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (5,)


def test_psql_over_tls(servers, pem):
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed (Debian: postgresql-client)")
    done = subprocess.run([psql, "-X", "-At", "-c", "SELECT sum(x) FROM t", "-c", "SHOW ssl",
                           f"host=127.0.0.1 port={servers[0].port} user=sqlml dbname=shop "
                           f"sslmode=verify-ca sslrootcert={pem[0]}"], capture_output=True,
                          text=True, timeout=60, env={"PGPASSWORD": PASSWORD, "PATH": "/usr/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10", "on"]


def test_a_tls_server_refuses_plain_text_and_names_the_remedy(servers):
    with pytest.raises(psycopg.OperationalError,
                       match=r"requires TLS \(it was started with --tls-cert\)"):
        connect(servers[0], sslmode="disable")


def test_sslmode_require_fails_cleanly_against_a_server_without_tls(servers):
    with pytest.raises(psycopg.OperationalError, match="server does not support SSL"):
        connect(servers[1], sslmode="require")
    with connect(servers[1], sslmode="prefer") as conn:      # goes on in plain text
        assert conn.execute("SHOW ssl").fetchone() == ("off",)


def test_asyncpg_and_pg8000_over_tls(servers, pem):
    context = ssl.create_default_context(cafile=str(pem[0]))
    pg8000 = pytest.importorskip("pg8000.native")
    conn = pg8000.Connection("sqlml", host="127.0.0.1", port=servers[0].port,
                             password=PASSWORD, database="shop", ssl_context=context)
    try:
        assert conn.run("SELECT max(x) FROM t") == [[4]]
    finally:
        conn.close()
    asyncpg = pytest.importorskip("asyncpg")

    async def run():
        c = await asyncpg.connect(host="127.0.0.1", port=servers[0].port, user="sqlml",
                                  password=PASSWORD, database="shop", ssl=context)
        try:
            return await c.fetchval("SELECT min(x) FROM t WHERE x > $1::int", 2)
        finally:
            await c.close()

    assert asyncio.run(run()) == 3


def test_serve_runs_postgres_over_tls_and_rest_over_https(pem, tmp_path):
    lines: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=serve.run, args=(":memory:",), kwargs=dict(
        port=0, http_port=0, password=PASSWORD, token="tls-token", tls_cert=str(pem[0]),
        tls_key=str(pem[1]), echo=lines.append, stop=stop))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not any("Ctrl-C" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        text = "\n".join(lines)
        assert "(TLS): psql -h 127.0.0.1" in text and "sslmode=require" in text
        pg_port = int(re.search(r"protocol on 127\.0\.0\.1:(\d+)", text).group(1))
        with psycopg.connect(host="127.0.0.1", port=pg_port, user="sqlml", password=PASSWORD,
                             sslmode="require") as conn:
            assert conn.execute("SELECT 42").fetchone() == (42,)
        httpx = pytest.importorskip("httpx")
        https = re.search(r"REST endpoint on (https://127\.0\.0\.1:\d+)", text).group(1)
        got = httpx.get(f"{https}/v1/models", verify=ssl.create_default_context(
            cafile=str(pem[0])), headers={"Authorization": "Bearer tls-token"})
        assert got.status_code == 200
    finally:
        stop.set()
        thread.join(30)


def test_beyond_loopback_needs_tls_or_insecure(tmp_path, pem):
    db = str(tmp_path / "x.duckdb")
    result = CliRunner().invoke(main, ["serve", db, "--host", "0.0.0.0", "--allow-remote"])
    assert result.exit_code == 1
    assert result.output.startswith(
        "sqlml serve: --host 0.0.0.0 without TLS would send queries, results and the REST token "
        "over the network in plain text; a non-loopback host needs TLS. Give --tls-cert "
        "CERT.pem --tls-key KEY.pem (clients then connect with sslmode=require), or add "
        "--insecure to serve plain text on a network you trust.")
    serve.check_host("0.0.0.0", True, insecure=True)
    serve.check_host("0.0.0.0", True, tls=True)
    serve.check_host("127.0.0.1", False)                        # loopback: no TLS needed
    with pytest.raises(ServeError, match="needs --allow-remote"):
        serve.check_host("0.0.0.0", False, tls=True)
    result = CliRunner().invoke(main, ["serve", db, "--tls-cert", str(pem[0])])
    assert result.exit_code == 1 and "--tls-cert was given without --tls-key" in result.output
    result = CliRunner().invoke(main, ["serve", db, "--tls-cert", str(tmp_path / "no.pem"),
                                       "--tls-key", str(pem[1])])
    assert result.exit_code == 1 and f"--tls-cert {tmp_path / 'no.pem'}: no such file" in \
        result.output
    with pytest.raises(ServeError, match="cannot load them"):
        server_context(pem[1], pem[0])                          # swapped: not a certificate
    assert not (tmp_path / "x.duckdb").exists()
