"""What it costs to start parsing a statement, against starting sqlml whole, in one run.

``sqlml shell``, ``sqlml.execute`` and the Postgres server parse every statement a client sends
with ``sqlml.redshift.parser``; that path must not load training code or scikit-learn. Each side
runs in a fresh interpreter (imports are cached within a process), interleaved, and the best of
several repeats is kept, so that a busy machine slows both rather than one. Printed per side: the
sqlml modules loaded, whether scikit-learn was loaded, and the wall time of the interpreter.

    python benchmarks/bench_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

PARSE = ("from sqlml.redshift.parser import parse\n"
         "parse('CREATE MODEL m FROM customers TARGET churned FUNCTION predict_m "
         "SETTINGS (MAX_RUNTIME 60)')")
CONNECT = "import sqlml\nsqlml.connect().close()"
REPORT = ("import json, sys\n"
          "print(json.dumps([sorted(m for m in sys.modules if m.split('.')[0] == 'sqlml'),"
          " 'sklearn' in sys.modules]))")
EMPTY = "pass"


def run(code: str) -> tuple[float, list[str], bool]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", f"{code}\n{REPORT}"], capture_output=True,
                         text=True, check=True).stdout
    seconds = time.perf_counter() - start
    modules, sklearn = json.loads(out.splitlines()[-1])
    return seconds, modules, sklearn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sides = {"python only": EMPTY, "parse a statement": PARSE, "sqlml.connect()": CONNECT}
    best = {name: float("inf") for name in sides}
    seen: dict[str, tuple[list[str], bool]] = {}
    for _ in range(args.repeat):
        for name, code in sides.items():
            seconds, modules, sklearn = run(code)
            best[name] = min(best[name], seconds)
            seen[name] = (modules, sklearn)
    floor = best["python only"]
    print(f"{'':20} {'sqlml modules':>14} {'scikit-learn':>13} {'seconds':>8} "
          f"{'above python':>13}")
    for name in sides:
        modules, sklearn = seen[name]
        print(f"{name:20} {len(modules):14d} {'loaded' if sklearn else 'no':>13} "
              f"{best[name]:8.3f} {best[name] - floor:12.3f}s")
    parse_cost = best["parse a statement"] - floor
    connect_cost = best["sqlml.connect()"] - floor
    print(f"\nparsing costs {parse_cost / connect_cost:.2f}x of starting sqlml whole, above a bare "
          f"interpreter ({args.repeat} repeats, best of each)")


if __name__ == "__main__":
    main()
