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
def proxy_port(echo_port):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    proxy = subprocess.Popen(  # noqa: S603  (this interpreter, the project's module)
        [sys.executable, "-m", "bench.proxy", str(port), str(echo_port), str(DELAY_MS), "60"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proxy.stdout.readline().strip() == "ready"
        yield port
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


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


def test_chunks_sent_one_after_another_are_not_held_up_by_each_other(proxy_port):
    # 25 chunks 2 ms apart: a network delivers the last one delay after it was sent,
    # some 90 ms after the first; a proxy that waited the delay for each chunk in
    # turn would take at least 25 delays, a second.
    chunks = 25
    with socket.create_connection(("127.0.0.1", proxy_port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.monotonic()
        for i in range(chunks):
            sock.sendall(bytes([i]))
            time.sleep(0.002)
        assert _read(sock, chunks) == bytes(range(chunks))
        assert time.monotonic() - started < chunks * DELAY_MS / 1000


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
