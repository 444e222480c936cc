"""Syslog over TLS for copies of audit events: RFC 5424 messages, RFC 5425 frames, a sender.

Three layers, each usable alone:

1. `syslog_message(...)` builds one RFC 5424 message:
   `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG`.
   `atna_syslog_message(event, ...)` and `ecs_syslog_message(event, ...)` fill it
   for an audit event: facility 10 (authpriv, as IHE ATNA asks), a severity from
   the event's outcome (`SEVERITIES`), the event's own time as TIMESTAMP (a copy
   sent late still says when it happened), APP-NAME `ehr`, MSGID `IHE+RFC-3881`
   with the DICOM XML as MSG, UTF-8 after a BOM (RFC 5424 6.4), or `AUDIT` with
   the ECS JSON line (no BOM: JSON readers take UTF-8 as it is). STRUCTURED-DATA
   is `[ehr-audit@N chain="7" seq="42"]` when the operator has a private
   enterprise number N from IANA (RFC 5424 7.2.2 reserves SD-IDs without `@` to
   IANA), else `-`; the chain and position are inside MSG either way.
2. `octet_frame(message)` frames it for a stream: `LENGTH SP MESSAGE`, the
   length in octets (RFC 5425 4.3, octet counting).
3. `SyslogTlsSender(url, ca_file, cert_file, key_file, timeout)` writes frames
   to `tls://host:port` (port 6514 when left out, RFC 5425's). TLS 1.2 at
   least; the receiver's certificate must chain to `ca_file` (and only to it)
   and name the host; with `cert_file`/`key_file` it presents a client
   certificate (mutual TLS). There is no plain-TCP mode and no fallback to one.
   Any failure to connect, to complete the handshake, to verify, or to write
   raises `SyslogSendError`; the connection is dropped and the next `send`
   opens a new one. One connection serves many sends. Not thread-safe: one
   sender per worker.

What a successful `send` means: RFC 5425 has no acknowledgement, so it means
the frames were handed to the kernel on a connection that the receiver had not
closed when the writing began, after the receiver had accepted our certificate.
Before each write the sender looks for the receiver's close (a receiver never
sends data, so anything readable is a close or an alert) and reconnects, so
frames are not written into a connection already closed. A receiver that
fails after that point can still lose the last frames: the outbox must be
ready to send again, and a receiver can tell a gap from the chain and seq of
each event, and a repeat from the same two numbers.

With TLS 1.3 the client finishes its handshake before the server has checked
the client certificate; a server that refuses it says so one round trip later.
So on a new TLS 1.3 connection the sender waits (at most `VERDICT_WAIT`) for
the server's first word: its session ticket (accepted) or an alert (refused,
raised as `SyslogSendError`). A server that sends no tickets costs that wait
once per connection.
"""

import contextlib
import os
import re
import selectors
import socket
import ssl
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from audit import hashing
from audit.atna import Outcome, atna_message, event_outcome
from audit.ecs import ecs_line

FACILITY_AUTHPRIV = 10  # security/authorization messages, private (IHE ATNA's facility)
APP_NAME = "ehr"
ATNA_MSGID = "IHE+RFC-3881"  # what IHE ATNA (ITI-20) names DICOM audit XML messages
JSON_MSGID = "AUDIT"
SD_NAME = "ehr-audit"  # SD-ID `ehr-audit@<enterprise number>`
DEFAULT_PORT = 6514  # syslog over TLS (RFC 5425)
BOM = b"\xef\xbb\xbf"
NIL = "-"

# RFC 5424 severity per outcome: 5 notice (normal but significant), 4 warning, 3 error.
# A refused try against a standing lock (8) is a warning: the lock itself (12) was
# already reported as an error, once.
SEVERITIES = {
    Outcome.SUCCESS: 5,
    Outcome.MINOR_FAILURE: 4,
    Outcome.SERIOUS_FAILURE: 4,
    Outcome.MAJOR_FAILURE: 3,
}
UNKNOWN_SEVERITY = 5  # a kind this release does not know: no claim of failure


class SyslogSendError(Exception):
    """The frames could not be delivered: connection, TLS handshake, certificate or write."""


# Header fields (RFC 5424 6): printable US-ASCII without spaces, up to these lengths.
_FIELD_LIMITS = {"HOSTNAME": 255, "APP-NAME": 48, "PROCID": 128, "MSGID": 32}
_PRINTUSASCII = re.compile(r"[\x21-\x7e]+")
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})", re.ASCII
)
_SD_NAME = re.compile(r"[\x21-\x7e]{1,32}")
_SD_NAME_EXCLUDED = set('= ]"')


def event_severity(kind: str) -> int:
    outcome = event_outcome(kind)
    return UNKNOWN_SEVERITY if outcome is None else SEVERITIES[outcome]


def syslog_message(
    msg: bytes,
    *,
    severity: int,
    timestamp: str,
    hostname: str,
    msgid: str,
    app_name: str = APP_NAME,
    procid: str | None = None,
    structured_data: str = NIL,
    facility: int = FACILITY_AUTHPRIV,
    bom: bool = False,
) -> bytes:
    """Return one RFC 5424 message; `bom` marks MSG as UTF-8 (RFC 5424 6.4).

    Empty HOSTNAME, APP-NAME, PROCID or MSGID become `-`; a field with a space or
    a character outside printable US-ASCII, or too long, raises ValueError.
    """
    if not 0 <= facility <= 23 or not 0 <= severity <= 7:
        raise ValueError(f"syslog facility {facility} or severity {severity} out of range")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise ValueError(f"not an RFC 5424 timestamp: {timestamp!r}")
    fields = [
        _header_field("HOSTNAME", hostname),
        _header_field("APP-NAME", app_name),
        _header_field("PROCID", str(os.getpid()) if procid is None else procid),
        _header_field("MSGID", msgid),
    ]
    header = f"<{facility * 8 + severity}>1 {timestamp} {' '.join(fields)} {structured_data or NIL}"
    return header.encode("utf-8") + b" " + (BOM if bom else b"") + msg


def sd_element(sd_id: str, params: Iterable[tuple[str, str]]) -> str:
    """Return one STRUCTURED-DATA element, `[id name="value" ...]`, values escaped."""
    params = list(params)
    for name in (sd_id, *(name for name, _ in params)):
        if not _SD_NAME.fullmatch(name) or _SD_NAME_EXCLUDED & set(name):
            raise ValueError(f"not an RFC 5424 SD-NAME: {name!r}")
    rendered = "".join(f' {name}="{_sd_value(value)}"' for name, value in params)
    return f"[{sd_id}{rendered}]"


def audit_structured_data(event: dict, *, enterprise_number: int | None) -> str:
    """The event's chain and position as STRUCTURED-DATA, or `-` without an enterprise number."""
    if enterprise_number is None:
        return NIL
    if enterprise_number <= 0:
        raise ValueError("an IANA private enterprise number is a positive integer")
    return sd_element(
        f"{SD_NAME}@{enterprise_number}",
        [("chain", str(event["chain_id"])), ("seq", str(event["seq"]))],
    )


def atna_syslog_message(
    event: dict,
    *,
    hostname: str,
    procid: str | None = None,
    audit_source_id: str | None = None,
    enterprise_number: int | None = None,
) -> bytes:
    """The event's DICOM audit XML in an RFC 5424 message, as IHE ATNA sends it.

    The AuditSourceID is `audit_source_id`, or else `hostname`.
    """
    return syslog_message(
        atna_message(event, audit_source_id=audit_source_id or hostname),
        severity=event_severity(event["kind"]),
        timestamp=hashing.timestamp(event["occurred_at"]),
        hostname=hostname,
        procid=procid,
        msgid=ATNA_MSGID,
        structured_data=audit_structured_data(event, enterprise_number=enterprise_number),
        bom=True,
    )


def ecs_syslog_message(
    event: dict,
    *,
    hostname: str,
    procid: str | None = None,
    enterprise_number: int | None = None,
) -> bytes:
    """The event's ECS JSON line in an RFC 5424 message."""
    return syslog_message(
        ecs_line(event),
        severity=event_severity(event["kind"]),
        timestamp=hashing.timestamp(event["occurred_at"]),
        hostname=hostname,
        procid=procid,
        msgid=JSON_MSGID,
        structured_data=audit_structured_data(event, enterprise_number=enterprise_number),
    )


def octet_frame(message: bytes) -> bytes:
    """Frame one message for a stream: its length in octets, a space, the message (RFC 5425)."""
    return b"%d %s" % (len(message), message)


def _header_field(name: str, value: str) -> str:
    if not value:
        return NIL
    if len(value) > _FIELD_LIMITS[name] or not _PRINTUSASCII.fullmatch(value):
        raise ValueError(
            f"syslog {name} must be 1 to {_FIELD_LIMITS[name]} printable ASCII characters without spaces: {value!r}"
        )
    return value


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


# The sender


class SyslogTlsSender:
    """Send RFC 5425 frames to one receiver over TLS, keeping the connection between sends."""

    VERDICT_WAIT = 2.0  # seconds, at most, for a TLS 1.3 server to accept our certificate

    def __init__(
        self,
        url: str,
        ca_file: str | os.PathLike,
        cert_file: str | os.PathLike | None = None,
        key_file: str | os.PathLike | None = None,
        timeout: float = 10,
    ):
        self.url = url
        self.host, self.port = parse_tls_url(url)
        self.timeout = timeout
        if key_file is not None and cert_file is None:
            raise ValueError("a client key needs its certificate (cert_file)")
        self.context = ssl_client_context(ca_file, cert_file, key_file)
        self._sock: ssl.SSLSocket | None = None

    def send(self, frames: Iterable[bytes]) -> None:
        """Write the frames, in order, on the open connection or a new one.

        Raises SyslogSendError when it cannot; the connection is then closed and
        the next call starts a new one. Part of the frames may have been written
        before a failure: send them all again.
        """
        data = b"".join(frames)
        if not data:
            return
        if self._sock is not None and not self._still_open(self._sock):
            self.close()
        if self._sock is None:
            self._sock = self._connect()
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self.close()
            raise SyslogSendError(f"writing to syslog receiver {self.url} failed: {exc}") from exc

    def close(self) -> None:
        """Close the connection, if one is open; the next send opens another."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):  # already broken: nothing left to tell anyone
            sock.close()

    def __enter__(self) -> "SyslogTlsSender":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _connect(self) -> ssl.SSLSocket:
        try:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise SyslogSendError(f"cannot connect to syslog receiver {self.url}: {exc}") from exc
        try:
            sock = self.context.wrap_socket(raw, server_hostname=self.host)
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            raise SyslogSendError(
                f"syslog receiver {self.url} failed certificate verification: {exc.verify_message}"
            ) from exc
        except OSError as exc:
            raw.close()
            raise SyslogSendError(
                f"TLS handshake with syslog receiver {self.url} failed: {exc}"
            ) from exc
        try:
            self._await_verdict(sock)
        except OSError as exc:
            sock.close()
            raise SyslogSendError(
                f"syslog receiver {self.url} refused the connection after the handshake: {exc}"
            ) from exc
        return sock

    def _await_verdict(self, sock: ssl.SSLSocket) -> None:
        """On TLS 1.3, wait for the server's session ticket or alert (see the module docstring)."""
        if sock.version() != "TLSv1.3":
            return  # up to TLS 1.2 the server's Finished came after its check
        deadline = time.monotonic() + min(self.VERDICT_WAIT, self.timeout)
        sock.setblocking(False)
        try:
            while not _has_ticket(sock):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                if not _readable(sock, remaining):
                    return
                _drain(sock)  # raises on an alert or a close
        finally:
            sock.settimeout(self.timeout)

    def _still_open(self, sock: ssl.SSLSocket) -> bool:
        """Whether the receiver has not closed the connection (nor sent an alert)."""
        if not sock.pending() and not _readable(sock, 0):
            return True
        sock.setblocking(False)
        try:
            _drain(sock)
        except OSError:
            return False
        finally:
            sock.settimeout(self.timeout)
        return True


def parse_tls_url(url: str) -> tuple[str, int]:
    """Return the host and port of `tls://host:port` (`tls://[ipv6]:port`; port 6514 if left out)."""
    parts = urlsplit(url)
    if parts.scheme != "tls":
        raise ValueError(f"syslog receiver URL must start with tls:// (no plain TCP): {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"syslog receiver URL is tls://host:port, nothing else: {url!r}")
    if not parts.hostname:
        raise ValueError(f"syslog receiver URL has no host: {url!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"syslog receiver URL has a bad port: {url!r}") from exc
    return parts.hostname, port or DEFAULT_PORT


def ssl_client_context(
    ca_file: str | os.PathLike,
    cert_file: str | os.PathLike | None = None,
    key_file: str | os.PathLike | None = None,
) -> ssl.SSLContext:
    """A client context: TLS 1.2 or later, the server verified against `ca_file` only, by name."""
    if not Path(ca_file).is_file():
        raise ValueError(f"syslog CA file not found: {ca_file}")
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert_file is not None:
            context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the syslog TLS certificates: {exc}") from exc
    # create_default_context requires a verified certificate naming the host; every
    # send's security rests on that default, so it is checked rather than assumed.
    if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
        raise RuntimeError("the TLS client context does not verify the receiver")
    return context


def _readable(sock: ssl.SSLSocket, timeout: float) -> bool:
    """Whether the socket has something to read within `timeout` seconds (epoll, not select:
    a worker may hold more than 1024 descriptors)."""
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def _has_ticket(sock: ssl.SSLSocket) -> bool:
    session = sock.session
    return session is not None and session.has_ticket


def _drain(sock: ssl.SSLSocket) -> None:
    """Read what a non-blocking connection has: TLS records for the library, data discarded.

    Raises ConnectionError when the receiver closed the connection, ssl.SSLError on
    an alert. A syslog receiver sends no data (RFC 5425), so data is ignored.
    """
    while True:
        try:
            if not sock.recv(4096):
                raise ConnectionError("the receiver closed the connection")
        except ssl.SSLWantReadError:
            return
