"""A TCP proxy on loopback that delays every chunk by a fixed time in each direction.

    python -m bench.proxy LISTEN_PORT TARGET_PORT DELAY_MS [SECONDS]

Stands in for the network between app servers and the database: each chunk is
forwarded DELAY_MS after it arrived, in order, without holding up the chunks
behind it (so the delay is latency, not a bandwidth limit). Threads rather than
asyncio: the event loop's timers round up to whole milliseconds, and the delay
here is half of one. Listens and connects on 127.0.0.1 only, and exits by
itself after SECONDS (default 600).
"""

import contextlib
import queue
import socket
import sys
import threading
import time

HOST = "127.0.0.1"


def _forward(source: socket.socket, target: socket.socket, delay: float) -> None:
    pending: queue.Queue = queue.Queue()

    def receive():
        try:
            while data := source.recv(65536):
                pending.put((time.monotonic() + delay, data))
        except OSError:
            pass
        pending.put((0.0, b""))

    def send():
        try:
            while True:
                due, data = pending.get()
                if not data:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    threading.Thread(target=receive, daemon=True).start()
    threading.Thread(target=send, daemon=True).start()


def serve(listen: int, target_port: int, delay: float, seconds: float) -> None:
    server = socket.create_server((HOST, listen))
    server.settimeout(0.5)
    deadline = time.monotonic() + seconds
    print("ready", flush=True)
    while time.monotonic() < deadline:
        try:
            client, _ = server.accept()
        except TimeoutError:
            continue
        upstream = socket.create_connection((HOST, target_port))
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _forward(client, upstream, delay)
        _forward(upstream, client, delay)
    server.close()


@contextlib.contextmanager
def delayed_database(delay_ms: float):
    """Point Django's default database at a proxy adding `delay_ms` each way; yield the proxy.

    The proxy runs as its own process (its pid is `proxy.pid`); on leaving, every
    connection is closed, the database's own port is put back and the proxy stops.
    """
    import subprocess

    from django.db import connection, connections

    from bench.pins import free_port

    port = free_port()
    target = int(connection.settings_dict["PORT"] or 5432)
    proxy = subprocess.Popen(  # noqa: S603  (this interpreter, this module)
        [sys.executable, "-m", "bench.proxy", str(port), str(target), str(delay_ms), "900"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        proxy.stdout.readline()  # "ready"
        connections.close_all()
        connection.settings_dict["PORT"] = port
        yield proxy
    finally:
        connections.close_all()
        connection.settings_dict["PORT"] = target
        proxy.terminate()
        proxy.wait(timeout=10)


def main() -> None:
    listen, target, delay_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 600.0
    serve(listen, target, delay_ms / 1000, seconds)


if __name__ == "__main__":
    main()
