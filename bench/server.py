"""The app served by gunicorn on loopback, for benchmark steps that time whole requests.

The server inherits the step's environment (DJANGO_SETTINGS_MODULE=bench.settings,
BENCH_DATABASE_URL), so it serves the benchmark database, and reads gunicorn.conf.py
from the project's root like a deployment does.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.pins import free_port

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def gunicorn(*, workers: int, env: dict[str, str] | None = None) -> Iterator[int]:
    """Serve the app with `workers` gunicorn workers on a free loopback port; yield the port.

    `env` adds to (or replaces in) the step's environment, for example another
    BENCH_DATABASE_URL.
    """
    port = free_port()
    server = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "gunicorn",
            "ehr.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    try:
        for _ in range(100):
            if server.poll() is not None:
                raise SystemExit(f"gunicorn exited with {server.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
