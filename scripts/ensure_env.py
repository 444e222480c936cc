"""Create or complete the development `.env`: a random secret for every variable it lacks.

Existing values are never changed, so keys written on first use keep working
(sessions stay valid, encrypted data stays readable). Development only.
"""

import base64
import secrets
import sys
from pathlib import Path

ENV_FILE = Path(__file__).resolve().parent.parent / ".env"

DEFAULTS = {
    "DEBUG": lambda: "true",
    "SECRET_KEY": lambda: secrets.token_urlsafe(64),
    "AUDIT_HMAC_KEYS": lambda: "dev1:" + _key(),
    "FIELD_ENCRYPTION_KEYS": lambda: "dev1:" + _key(),
    "AUDIT_SIGNING_KEY": lambda: "dev1:" + _key(),
}


def _key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def main() -> int:
    existing = ENV_FILE.read_text() if ENV_FILE.exists() else ""
    present = {line.split("=", 1)[0].strip() for line in existing.splitlines() if "=" in line}
    missing = [name for name in DEFAULTS if name not in present]
    if not missing:
        return 0
    lines = [f"{name}={DEFAULTS[name]()}" for name in missing]
    prefix = "" if not existing or existing.endswith("\n") else "\n"
    header = (
        ""
        if existing
        else "# Development settings written by `make run`; never use in production.\n"
    )
    ENV_FILE.write_text(existing + prefix + header + "\n".join(lines) + "\n")
    ENV_FILE.chmod(0o600)
    print(f"{ENV_FILE.name}: added {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
