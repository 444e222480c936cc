"""The one way to learn a request's client IP (used by the audit log and sign-in lockout).

`X-Forwarded-For` is trusted only as far as the operator says: with
`TRUSTED_PROXY_COUNT = N`, the N proxies in front of the app each append the
address they received the request from, so the client is the N-th entry from
the right. Anything left of it was written by the client and is ignored, so a
client cannot choose its own IP by sending a header. With N = 0 (the default,
no proxy) the header is ignored entirely and the TCP peer is the client.
Malformed values are never returned: the function answers an address in
canonical form, or None.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def parse_ip(value: str | None) -> str | None:
    """Return `value` as a canonical IPv4/IPv6 address, or None if it is not one.

    Accepts the forms proxies write: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
    `[2001:db8::1]:443`. IPv4-mapped IPv6 addresses become plain IPv4.
    """
    if not value:
        return None
    text = value.strip()
    if len(text) > 64:
        return None
    if text.startswith("["):  # [v6] or [v6]:port
        end = text.find("]")
        if end == -1:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    if "%" in text:  # zone ids name an interface of the sender, not an address of ours
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.compressed


def client_ip(request: HttpRequest) -> str | None:
    """Return the client's IP address as far as the configured proxies can vouch for it."""
    peer = parse_ip(request.META.get("REMOTE_ADDR"))
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return peer
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    if len(hops) < proxies:
        # Fewer hops than proxies: the request did not come through all of them
        # (or the chain is misconfigured). The peer is the only address we saw.
        return peer
    return parse_ip(hops[-proxies]) or peer
