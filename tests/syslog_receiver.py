"""A syslog-over-TLS receiver on loopback, and the certificates it needs, for tests.

`make_pki(folder)` writes a CA, a server certificate for 127.0.0.1 and
localhost, a client certificate, a second CA nobody trusts, and a server
certificate for another name, as PEM files. `SyslogReceiver` accepts TLS
(1.2 or later) on 127.0.0.1, reads RFC 5425 octet-counted frames and keeps
each message; it handles one connection at a time, as a sender keeps one.
"""

import datetime
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MAX_FRAME = 64 * 1024  # octets; a longer frame is a framing error here


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing the receiver uses
    wrong_name_cert: Path  # signed by `ca`, for receiver.example instead of 127.0.0.1
    wrong_name_key: Path


def make_pki(folder: Path) -> Pki:
    ca_key, ca_cert = _ca("Test syslog CA")
    other_key, other_cert = _ca("Untrusted CA")
    del other_key
    files = {
        "ca": _write(folder / "ca.pem", ca_cert),
        "other_ca": _write(folder / "other-ca.pem", other_cert),
    }
    for name, sans, usage in (
        (
            "server",
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
            ExtendedKeyUsageOID.SERVER_AUTH,
        ),
        ("client", [x509.DNSName("ehr-outbox.test")], ExtendedKeyUsageOID.CLIENT_AUTH),
        ("wrong_name", [x509.DNSName("receiver.example")], ExtendedKeyUsageOID.SERVER_AUTH),
    ):
        key, cert = _leaf(name, sans, usage, ca_key, ca_cert)
        files[f"{name}_cert"] = _write(folder / f"{name}.pem", cert)
        files[f"{name}_key"] = folder / f"{name}-key.pem"
        files[f"{name}_key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return Pki(**files)


def _ca(common_name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(common_name, sans, usage, ca_key, ca_cert):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        _builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _builder(subject, issuer, public_key):
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _write(path: Path, cert) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


class SyslogReceiver:
    """Receive RFC 5425 frames over TLS on 127.0.0.1 in a thread; use as a context manager.

    `client_ca`: require a client certificate signed by it (mutual TLS).
    `max_version`: the highest TLS version to speak (to test TLS 1.2 on its own).
    `close_after`: close each connection after this many messages.
    `port`: listen there (to come back where a sender expects it), else any free port.
    """

    def __init__(
        self,
        cert: Path,
        key: Path,
        *,
        client_ca: Path | None = None,
        max_version: ssl.TLSVersion | None = None,
        close_after: int | None = None,
        port: int = 0,
    ):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        if max_version is not None:
            self.context.maximum_version = max_version
        self.context.load_cert_chain(cert, key)
        if client_ca is not None:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(client_ca)
        self.close_after = close_after
        self.messages: list[bytes] = []
        self.connections = 0  # connections whose handshake succeeded
        self.closed = 0  # of those, how many ended
        self.handshake_errors: list[str] = []
        self.versions: list[str] = []
        self.framing_errors: list[str] = []
        self.peer_certificates: list[dict | None] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self.url = f"tls://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, name="syslog-receiver", daemon=True)

    def __enter__(self) -> "SyslogReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        if self._thread.is_alive():
            raise RuntimeError("the syslog receiver thread did not stop")

    def wait_for(self, condition, timeout: float = 5) -> bool:
        """Wait until `condition(self)` holds; return whether it did."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self), timeout=timeout)

    def wait_for_messages(self, count: int, timeout: float = 5) -> list[bytes]:
        self.wait_for(lambda receiver: len(receiver.messages) >= count, timeout)
        return list(self.messages)

    def _notify(self, change) -> None:
        with self._changed:
            change()
            self._changed.notify_all()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(2)
            try:
                conn = self.context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                raw.close()
                self._notify(lambda exc=exc: self.handshake_errors.append(str(exc)))
                continue
            with conn:

                def accepted(conn=conn):
                    self.connections += 1
                    self.versions.append(conn.version())
                    self.peer_certificates.append(conn.getpeercert())

                self._notify(accepted)
                self._read_frames(conn)

            def closed():
                self.closed += 1

            self._notify(closed)

    def _read_frames(self, conn: ssl.SSLSocket) -> None:
        conn.settimeout(0.05)
        buffer = b""
        received = 0
        while not self._stop.is_set():
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            except (ssl.SSLError, OSError):
                return
            if not chunk:
                return
            buffer += chunk
            while True:
                length, sep, rest = buffer.partition(b" ")
                if not sep:
                    break
                if not length.isdigit() or length.startswith(b"0") or int(length) > MAX_FRAME:
                    error = repr(buffer[:40])
                    self._notify(lambda error=error: self.framing_errors.append(error))
                    return
                if len(rest) < int(length):
                    break
                message, buffer = rest[: int(length)], rest[int(length) :]
                self._notify(lambda message=message: self.messages.append(message))
                received += 1
                if self.close_after is not None and received >= self.close_after:
                    return  # `with conn` closes it
