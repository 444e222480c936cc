"""bench/proxy.py stands in for a network: every chunk arrives late by the delay in each
direction, whole and in order, and a side that closes closes the other."""

import contextlib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DELAY_MS = 40  # far above this machine's loopback round trip, so the delay is what is measured


@pytest.fixture
def echo_port():
    """A loopback server that sends back what it reads, until its client closes."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        with contextlib.suppress(OSError):
            while True:
                client, _ = server.accept()
                threading.Thread(target=echo, args=(client,), daemon=True).start()

    def echo(client):
        with client:
            while data := client.recv(65536):
                client.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def start_proxy(echo_port):
    """Start bench/proxy.py in front of the echo server with a delay; return its port."""
    started = []

    def start(delay_ms: float) -> int:
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        proxy = subprocess.Popen(  # noqa: S603  (this interpreter, the project's module)
            [sys.executable, "-m", "bench.proxy", str(port), str(echo_port), str(delay_ms), "60"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proxy)
        assert proxy.stdout.readline().strip() == "ready"
        return port

    yield start
    for proxy in started:
        proxy.terminate()
        proxy.wait(timeout=10)


@pytest.fixture
def proxy_port(start_proxy):
    return start_proxy(DELAY_MS)


def _read(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "closed early"
        data += chunk
    return bytes(data)


def test_each_round_trip_waits_the_delay_both_ways(proxy_port):
    with socket.create_connection(("127.0.0.1", proxy_port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for message in (b"BEGIN", b"SELECT 1", b"COMMIT"):
            started = time.monotonic()
            sock.sendall(message)
            assert _read(sock, len(message)) == message
            assert time.monotonic() - started >= 2 * DELAY_MS / 1000


def test_each_chunk_is_delayed_from_its_own_arrival_not_held_up_by_the_one_before(
    start_proxy,
):
    # Chunks a fifth of the delay apart: each comes back two delays after it was sent.
    # A proxy that slept the delay after each read before reading again would hold
    # the second chunk until the first had gone, and return it near four delays late.
    delay = 0.2
    port = start_proxy(delay * 1000)
    sent, received = [], []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def receive():
            while len(received) < 5:
                data = sock.recv(16)
                assert data, "closed early"
                received.extend((byte, time.monotonic()) for byte in data)

        reader = threading.Thread(target=receive)
        reader.start()
        for i in range(5):
            sent.append(time.monotonic())
            sock.sendall(bytes([i]))
            time.sleep(delay / 5)
        reader.join(timeout=10)
    assert [byte for byte, _at in received] == list(range(5))
    waits = [at - sent[byte] for byte, at in received]
    assert all(wait >= 2 * delay for wait in waits)
    assert max(waits) < 3 * delay, waits


def test_a_large_stream_arrives_whole_and_in_order(proxy_port):
    payload = bytes(range(256)) * 8192  # 2 MiB, more than one read or one socket buffer
    with socket.create_connection(("127.0.0.1", proxy_port)) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        received = _read(sock, len(payload))
        sender.join()
    assert received == payload


def test_closing_one_side_closes_the_other(proxy_port):
    with socket.create_connection(("127.0.0.1", proxy_port)) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        assert _read(sock, 10) == b"last words"
        assert sock.recv(1) == b""
