"""PIN validation under concurrent clients, against the app served by gunicorn on loopback.

    python -m bench.pins            (run by bench/run.py with BENCH_DATABASE_URL set)

Starts gunicorn on a free loopback port with the benchmark settings, signs in
8 client threads as a support agent, and in three alternating rounds of 20 seconds
(BENCH_PIN_ROUND_SECONDS) has them either
validate Support PINs through /support/validate/pin/ (a PIN check, an audit event
and its hash chain, a page) or request a trivial signed-in view (`/`, which
loads the session and the user and redirects). Prints requests/s of both and
the ratio. Wrong PINs are used, so lockout is switched off for the run
(BENCH_NO_LOCKOUT): every request does the full comparison and audit write.
"""

import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 8
ROUNDS = 3
# Each round runs one kind for this long; short rounds swung the ratio 0.23-1.19.
SECONDS = float(os.environ.get("BENCH_PIN_ROUND_SECONDS", "20"))
PASSWORD = "bench-password-0000"  # noqa: S105  (the generated benchmark accounts' password)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Session:
    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie(header)
            for key, morsel in cookie.items():
                self.cookies[key] = morsel.value
        return response.status, text

    def csrf(self, path: str) -> str:
        status, page = self.request("GET", path)
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if not match:
            raise SystemExit(f"no CSRF token on {path} ({status})")
        return match.group(1)


def sign_in(port: int, username: str) -> Session:
    """A client with a session that passed password and code (bench/signin.py)."""
    from django.conf import settings

    from accounts.models import User
    from bench.signin import session_key_for

    session = Session(port)
    key = session_key_for(User.objects.get(username=username))
    session.cookies[settings.SESSION_COOKIE_NAME] = key
    return session


def load(port: int, agent: str, accounts: list[int], mode: str) -> dict:
    from urllib.parse import urlencode

    sessions = [sign_in(port, agent) for _ in range(CLIENTS)]
    tokens = [s.csrf("/support/validate/") for s in sessions]
    counts = [0] * CLIENTS
    failures = []
    stop = time.perf_counter() + SECONDS

    def client(i: int) -> None:
        session, n = sessions[i], 0
        try:
            while time.perf_counter() < stop:
                if mode == "validate":
                    account = accounts[(i * 7919 + n) % len(accounts)]
                    body = urlencode(
                        {"csrfmiddlewaretoken": tokens[i], "account": account, "pin": "0000"}
                    )
                    status, page = session.request("POST", "/support/validate/pin/", body)
                    if status != 200 or "outcome" not in page:
                        raise RuntimeError(f"validate answered {status}")
                else:
                    status, _ = session.request("GET", "/")
                    if status != 302:
                        raise RuntimeError(f"/ answered {status}")
                n += 1
        except Exception as exc:
            failures.append(repr(exc))
        counts[i] = n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{mode}: {failures[0]}")
    return {"requests": sum(counts), "per_s": round(sum(counts) / elapsed, 1)}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    os.environ["BENCH_NO_LOCKOUT"] = "1"
    import django

    django.setup()
    from accounts.models import User
    from accounts.roles import Role
    from accounts.services import user_create

    agent = "bench_agent"
    if not User.objects.filter(username=agent).exists():
        user_create(
            username=agent,
            email="bench_agent@bench.example",
            password=PASSWORD,
            first_name="Bench",
            last_name="Agent",
            role=Role.SUPPORT_AGENT,
            practice=None,
            acting_user=None,
        )
    accounts = list(
        User.objects.filter(username__startswith="bench_user").values_list("pk", flat=True)
    )
    from django.db import connections

    connections.close_all()
    port = free_port()
    workers = str(2 * (os.cpu_count() or 1))
    server = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "gunicorn",
            "ehr.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            workers,
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ},
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        # Alternating rounds, so a slow spell of the machine weighs on both sides alike.
        trivial, validate = [], []
        for _ in range(ROUNDS):
            trivial.append(load(port, agent, accounts, "trivial")["per_s"])
            validate.append(load(port, agent, accounts, "validate")["per_s"])
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        json.dumps(
            {
                "clients": CLIENTS,
                "gunicorn_workers": int(workers),
                "seconds_per_round": SECONDS,
                "rounds": ROUNDS,
                "trivial_signed_in_per_s": statistics.median(trivial),
                "validate_per_s": statistics.median(validate),
                "ratio": round(statistics.median(validate) / statistics.median(trivial), 2),
                "round_ratios": [round(v / t, 2) for v, t in zip(validate, trivial, strict=True)],
            }
        )
    )


if __name__ == "__main__":
    main()
