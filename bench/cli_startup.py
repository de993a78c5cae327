"""How long an ``evershell`` command takes to start, against what it cannot avoid.

Real processes on a scratch instance directory (SQLite, schema upgraded first), each
command run N times, medians printed with their ratio to the baseline measured in the
same run: ``python -c "import flask.cli"``, the floor of any Flask command line. For
comparison, building the whole web app (``create_app()``), which every command did
before the admin commands got an app without the HTTP side.

    .venv/bin/python bench/cli_startup.py [N]

Prints the ratios; no thresholds, no assertions.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def median_seconds(argv: list[str], env: dict[str, str], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(EVERSHELL_INSTANCE_DIR=tmp, SECRET_KEY="bench")
        evershell = str(BIN / "evershell")
        subprocess.run([evershell, "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([evershell, "org", "create", "--name", "Bench", "--slug", "bench"],
                       env=env, check=True, capture_output=True)
        cases = {
            "baseline: import flask.cli": [sys.executable, "-c", "import flask.cli"],
            "evershell config": [evershell, "config"],
            "evershell org set-billing": [evershell, "org", "set-billing", "bench", "active"],
            "create_app() (the whole app)": [
                sys.executable, "-c", "from evershell import create_app; create_app()"],
        }
        for argv in cases.values():  # warm the bytecode caches
            subprocess.run(argv, env=env, check=True, capture_output=True)
        results = {name: median_seconds(argv, env, n) for name, argv in cases.items()}
    baseline = results["baseline: import flask.cli"]
    for name, seconds in results.items():
        print(f"{name:32s} {seconds:6.3f} s  {seconds / baseline:5.1f}x baseline")


if __name__ == "__main__":
    main()
