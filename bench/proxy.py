"""A TCP proxy on loopback that delays every chunk by a fixed time in each direction.

    python -m bench.proxy LISTEN_PORT TARGET_PORT DELAY_MS [SECONDS]

Stands in for the network between app servers and the database: each chunk is
forwarded DELAY_MS after it arrived, in order, without holding up the chunks
behind it (so the delay is latency, not a bandwidth limit). Listens and
connects on 127.0.0.1 only, and exits by itself after SECONDS (default 600).

Its CPU runs on the same two cores as the writers it delays and counts against
them, so it is kept small: one thread and one epoll loop for all connections.
The kernel stamps each read with the time its last data arrived (SO_TIMESTAMPNS),
so a chunk that comes in while the loop is busy or asleep still leaves DELAY_MS
after it arrived, not after the loop noticed it. (When several chunks of one
connection arrive while the loop is busy, they are read together and leave with
the last of them: the earlier ones up to the gap between them late. A database
client waits for each answer, so this is rare in the write benchmark.) epoll's
timeout is whole milliseconds, twice the delay a run uses, so the last stretch
before a chunk is due is slept with nanosleep. Not asyncio, whose timers go
through the same whole-millisecond epoll timeout. With 16 connections in
ping-pong this costs about 30 us of CPU a chunk; four threads a connection
handing chunks over through queues cost 153 (bench/README.md, "The delay
proxy"). A reset is passed on as a close after the data that came before it.
Nothing limits what it holds for a side that does not read.
"""

import contextlib
import heapq
import itertools
import select
import socket
import struct
import sys
import time

HOST = "127.0.0.1"
SO_TIMESTAMPNS = 35  # <asm-generic/socket.h>; the socket module does not name it
_TIMESPEC = struct.Struct("@ll")  # struct timespec: two C longs
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)
_CHUNK = 262144


class _Proxy:
    def __init__(self, listen: int, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.poll = select.epoll()
        self.server = socket.create_server((HOST, listen))
        self.server.setblocking(False)
        self.poll.register(self.server.fileno(), select.EPOLLIN)
        self.sockets: dict[int, socket.socket] = {}  # fd -> an open socket
        self.peer: dict[socket.socket, socket.socket] = {}  # where a socket's chunks go
        self.watched: dict[socket.socket, int] = {}  # what epoll waits for on each
        self.reading: set[socket.socket] = set()  # not yet at the end of what it sends
        self.last_due: dict[socket.socket, float] = {}  # of its latest chunk: order is kept
        self.unsent: dict[socket.socket, bytearray] = {}  # due, not yet taken by the kernel
        self.ending: set[socket.socket] = set()  # to shut for writing once `unsent` is gone
        self.ended: set[socket.socket] = set()  # shut for writing
        self.due: list[tuple[float, int, socket.socket, bytes]] = []  # (time, order, to, chunk)
        self.order = itertools.count()
        self.buffer = bytearray(_CHUNK)  # every read lands here first: no large allocation each
        self.view = memoryview(self.buffer)

    def accept(self) -> None:
        try:
            client, _ = self.server.accept()
        except OSError:  # the client gave up before it was taken
            return
        try:
            upstream = socket.create_connection((HOST, self.target_port))
        except OSError:  # the server is down: the client sees its connection closed
            client.close()
            return
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.setblocking(False)
            self.sockets[sock.fileno()] = sock
            self.reading.add(sock)
            self.last_due[sock] = 0.0
            self.watch(sock)
        self.peer[client], self.peer[upstream] = upstream, client

    def watch(self, sock: socket.socket) -> None:
        """Have epoll wait for what `sock` still needs: data to read, room to write."""
        mask = (select.EPOLLIN if sock in self.reading else 0) | (
            select.EPOLLOUT if sock in self.unsent else 0
        )
        before = self.watched.get(sock, 0)
        if mask == before:
            return
        if not before:
            self.poll.register(sock, mask)
        elif mask:
            self.poll.modify(sock, mask)
        else:
            self.poll.unregister(sock)
        self.watched[sock] = mask

    def receive(self, sock: socket.socket) -> None:
        """Read what has arrived on `sock`, each read stamped with its arrival time."""
        while True:
            try:
                size, ancillary, _flags, _address = sock.recvmsg_into([self.buffer], _ANCILLARY)
            except BlockingIOError:
                return
            except OSError:  # reset: end what it sends, after what it sent before
                size, ancillary = 0, []
            arrived = time.time()
            for level, kind, stamp in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = _TIMESPEC.unpack(stamp)
                    arrived = seconds + nanoseconds / 1e9
            # A read the kernel left unstamped took the time it was read, later than
            # the next one's stamp: never let a chunk overtake the one before it.
            due = self.last_due[sock] = max(arrived + self.delay, self.last_due[sock])
            heapq.heappush(
                self.due, (due, next(self.order), self.peer[sock], self.view[:size].tobytes())
            )
            if not size:  # the end of what it sends: pass the end on after what came before
                self.reading.discard(sock)
                self.watch(sock)
                return
            if size < _CHUNK:  # all there was; asking again would only fail
                return

    def deliver(self, sock: socket.socket, data: bytes) -> None:
        if sock.fileno() < 0:  # closed meanwhile
            return
        if not data:
            self.ending.add(sock)
        elif sock in self.unsent:
            self.unsent[sock] += data
        else:
            self.unsent[sock] = bytearray(data)
        self.flush(sock)

    def flush(self, sock: socket.socket) -> None:
        pending = self.unsent.get(sock)
        if pending:
            try:
                del pending[: sock.send(pending)]
            except BlockingIOError:
                pass
            except OSError:
                self.close(sock)
                return
            if not pending:
                del self.unsent[sock]
        if sock in self.ending and sock not in self.unsent:
            self.ending.discard(sock)
            self.ended.add(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
            if self.peer[sock] in self.ended:  # both ways are over
                self.close(sock)
                return
        self.watch(sock)

    def close(self, sock: socket.socket) -> None:
        for end in (sock, self.peer.get(sock)):
            if end is None or end.fileno() < 0:
                continue
            if self.watched.pop(end, 0):
                self.poll.unregister(end)
            self.sockets.pop(end.fileno(), None)
            for state in (self.peer, self.last_due, self.unsent):
                state.pop(end, None)
            for state in (self.reading, self.ending, self.ended):
                state.discard(end)
            end.close()

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        listener = self.server.fileno()
        while time.monotonic() < deadline:
            timeout = 0.5
            if self.due:
                wait = self.due[0][0] - time.time()
                if 0 < wait < 0.002:
                    # epoll would wait whole milliseconds; chunks that arrive meanwhile
                    # carry their own arrival times, so nothing is late for the sleep.
                    time.sleep(wait)
                # Whole milliseconds short of the next chunk's time (epoll rounds up).
                timeout = max(int(wait * 1000) - 1, 0) / 1000
            for fd, mask in self.poll.poll(timeout):
                if fd == listener:
                    self.accept()
                    continue
                sock = self.sockets.get(fd)
                if sock is not None and mask & (select.EPOLLOUT | select.EPOLLERR):
                    self.flush(sock)
                if sock is not None and sock in self.reading and mask & ~select.EPOLLOUT:
                    self.receive(sock)
            now = time.time()
            while self.due and self.due[0][0] <= now:
                _time, _order, sock, data = heapq.heappop(self.due)
                self.deliver(sock, data)
        self.server.close()


def serve(listen: int, target_port: int, delay: float, seconds: float) -> None:
    proxy = _Proxy(listen, target_port, delay)
    print("ready", flush=True)
    proxy.run(seconds)


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
