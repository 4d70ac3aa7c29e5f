"""benchmarks/bench_serving.py --mixed, shortened: it runs against a real `sqlml serve`, prints
its figures for every kind of request, and has no errors. No timing is asserted."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("psycopg")
pytest.importorskip("httpx")
if not Path("/proc/self/status").exists():
    pytest.skip("the benchmark reads the server's peak RSS from /proc (Linux only)",
                allow_module_level=True)

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_serving.py"
KINDS = ["sql score", "sql group by", "sql catalog", "rest predict", "rest model", "train",
         "overall"]
NUMBER = r"(\d+(?:\.\d+)?|nan)"


def test_mixed_run_prints_every_figure_and_has_no_errors():
    run = subprocess.run([sys.executable, str(SCRIPT), "--mixed", "--duration", "3",
                          "--repeats", "3"], capture_output=True, text=True, timeout=600)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert re.search(r"^kind\s+requests\s+req/s\s+p50 ms\s+p99 ms\s+errors$", out, re.M), out
    rows = {}
    for kind in KINDS:
        m = re.search(rf"^{kind}\s+(\d+)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+(\d+)$", out, re.M)
        assert m, f"no figures for {kind!r} in:\n{out}"
        rows[kind] = m.groups()
    assert all(int(errors) == 0 for *_, errors in rows.values()), out
    assert int(rows["train"][0]) == 1, out
    for kind in ("sql score", "rest predict", "overall"):
        requests, rps, p50, p99, _ = rows[kind]
        assert int(requests) > 0 and float(rps) > 0 and float(p99) >= float(p50) > 0, out
    assert re.search(r"^server process: peak RSS [\d,]+ MiB \(VmHWM", out, re.M), out
    for kind in ("sql score", "sql group by", "sql catalog"):
        assert re.search(rf"^  {kind}\s+\d+ requests\s+in-process\s+[\d.]+ ms\s+Postgres wire"
                         rf"\s+[\d.]+ ms\s+ratio\s+[\d.]+x$", out, re.M), out
    assert re.search(r"^PASS: 0 errors in \d+ requests$", out, re.M), out
