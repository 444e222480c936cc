"""bench/proxy.py stands in for a network: every chunk arrives late by the delay in each
direction, counted from when it arrived, whole and in order, and a side that closes or
resets closes the other after what it sent before."""

import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DELAY_MS = 40  # far above this machine's loopback round trip, so the delay is what is measured
TIMEOUT = 10  # seconds: a proxy that loses a byte fails the test instead of hanging it


@pytest.fixture
def echo():
    """A loopback server that sends back what it reads; returns its port and what it read."""
    server = socket.create_server(("127.0.0.1", 0))
    received = bytearray()

    def serve():
        with contextlib.suppress(OSError):
            while True:
                client, _ = server.accept()
                threading.Thread(target=echo_back, args=(client,), daemon=True).start()

    def echo_back(client):
        with client, contextlib.suppress(OSError):
            while data := client.recv(65536):
                received.extend(data)
                client.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], received
    server.close()


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]  # nothing listens there once the probe closes


@pytest.fixture
def start_proxy(echo):
    """Start bench/proxy.py in front of the echo server; return its port and process."""
    started = []

    def start(delay_ms: float, target: int | None = None) -> tuple[int, subprocess.Popen]:
        port, target = _free_port(), target or echo[0]
        proxy = subprocess.Popen(  # noqa: S603  (this interpreter, the project's module)
            [sys.executable, "-m", "bench.proxy", str(port), str(target), str(delay_ms), "60"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proxy)
        assert proxy.stdout.readline().strip() == "ready"
        return port, proxy

    yield start
    for proxy in started:
        os.kill(proxy.pid, signal.SIGCONT)  # in case a test stopped it
        proxy.terminate()
        proxy.wait(timeout=TIMEOUT)


@pytest.fixture
def proxy_port(start_proxy):
    return start_proxy(DELAY_MS)[0]


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "closed early"
        data += chunk
    return bytes(data)


def test_each_round_trip_waits_the_delay_both_ways(proxy_port):
    with _connect(proxy_port) as sock:
        for message in (b"BEGIN", b"SELECT 1", b"COMMIT"):
            started = time.monotonic()
            sock.sendall(message)
            assert _read(sock, len(message)) == message
            assert time.monotonic() - started >= 2 * DELAY_MS / 1000


def test_a_chunk_is_not_held_up_by_the_one_before(start_proxy):
    # Two chunks a tenth of the delay apart come back that far apart. A proxy that
    # slept the delay after each read before reading again would send the second
    # only once the first had gone, a whole delay after it.
    delay = 0.5
    port, _proxy = start_proxy(delay * 1000)
    with _connect(port) as sock:
        started = time.monotonic()
        sock.sendall(b"1")
        time.sleep(delay / 10)
        sock.sendall(b"2")
        assert _read(sock, 1) == b"1"
        first = time.monotonic()
        assert _read(sock, 1) == b"2"
        second = time.monotonic()
    assert first - started >= 2 * delay
    assert second - first < delay / 2


def test_a_chunk_that_arrives_while_the_proxy_is_busy_counts_from_its_arrival(start_proxy):
    # The proxy is stopped when the byte arrives and resumes 0.4 s later. Counted from
    # its arrival the byte is due out at 0.5 s and back at 1.0 s; counted from when
    # the proxy read it, it would be back at 1.4 s.
    delay = 0.5
    port, proxy = start_proxy(delay * 1000)
    with _connect(port) as sock:
        sock.sendall(b"0")  # the connection is up and idle before the proxy stops
        assert _read(sock, 1) == b"0"
        os.kill(proxy.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            sock.sendall(b"1")
            time.sleep(0.4)
        finally:
            os.kill(proxy.pid, signal.SIGCONT)
        assert _read(sock, 1) == b"1"
        waited = time.monotonic() - started
    assert 2 * delay <= waited < 2 * delay + 0.2


def test_a_large_stream_arrives_whole_and_in_order(proxy_port):
    payload = bytes(range(256)) * 8192  # 2 MiB, more than one read or one socket buffer
    with _connect(proxy_port) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
        sender.start()
        received = _read(sock, len(payload))
        sender.join(timeout=TIMEOUT)
    assert received == payload


def test_closing_one_side_closes_the_other_after_what_it_sent(proxy_port):
    with _connect(proxy_port) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        assert _read(sock, 10) == b"last words"
        assert sock.recv(1) == b""


def test_a_reset_reaches_the_other_side_after_what_was_sent_before_it(echo, proxy_port):
    _port, received = echo
    sock = _connect(proxy_port)
    sock.sendall(b"last words")
    time.sleep(DELAY_MS / 4000)  # the proxy has read them and holds them for the delay
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # with linger 0: a reset, not a close
    deadline = time.monotonic() + TIMEOUT
    while bytes(received) != b"last words" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bytes(received) == b"last words"


def test_a_server_that_is_down_closes_the_client_and_the_proxy_serves_on(start_proxy):
    port, proxy = start_proxy(DELAY_MS, target=_free_port())
    for _attempt in range(2):
        with _connect(port) as sock:
            assert sock.recv(1) == b""
    assert proxy.poll() is None
