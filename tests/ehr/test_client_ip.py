import ipaddress

import pytest
from django.test import RequestFactory
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr.client_ip import client_ip, parse_ip

rf = RequestFactory()


def request(remote="10.0.0.1", xff=None):
    meta = {"REMOTE_ADDR": remote}
    if xff is not None:
        meta["HTTP_X_FORWARDED_FOR"] = xff
    return rf.get("/", **meta)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("203.0.113.7:51234", "203.0.113.7"),
        ("2605:a601:ac72:c200:d5e7:5fe4:ad72:8204", "2605:a601:ac72:c200:d5e7:5fe4:ad72:8204"),
        ("2605:A601:AC72:C200:0:0:0:1", "2605:a601:ac72:c200::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("::ffff:198.51.100.4", "198.51.100.4"),
        ("fe80::1%eth0", None),
        ("unknown", None),
        ("", None),
        (None, None),
        ("999.1.1.1", None),
        ("1.2.3", None),
        ("<script>", None),
        ("[2001:db8::1", None),
        ("1" * 100, None),
    ],
)
def test_parse_ip(value, expected):
    assert parse_ip(value) == expected


def test_without_proxies_the_header_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request("10.0.0.1", "1.1.1.1")) == "10.0.0.1"


def test_one_proxy_takes_the_address_the_proxy_saw(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request("10.0.0.1", "198.51.100.4")) == "198.51.100.4"
    # The client sent its own X-Forwarded-For; the proxy appended the real address.
    assert client_ip(request("10.0.0.1", "6.6.6.6, 198.51.100.4")) == "198.51.100.4"
    assert client_ip(request("10.0.0.1", "2001:db8::7")) == "2001:db8::7"


def test_two_proxies(settings):
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip(request("10.0.0.2", "6.6.6.6, 198.51.100.4, 10.0.0.1")) == "198.51.100.4"


def test_missing_or_short_or_malformed_header_falls_back_to_the_peer(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request("10.0.0.1")) == "10.0.0.1"
    assert client_ip(request("10.0.0.1", "")) == "10.0.0.1"
    assert client_ip(request("10.0.0.1", "not-an-ip")) == "10.0.0.1"
    settings.TRUSTED_PROXY_COUNT = 3
    assert client_ip(request("10.0.0.1", "1.1.1.1")) == "10.0.0.1"


def test_no_address_at_all_is_none(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(rf.get("/", REMOTE_ADDR="")) is None


@settings(max_examples=300, deadline=None)
@given(header=st.text(max_size=200), proxies=st.integers(min_value=0, max_value=3))
def test_any_header_gives_a_valid_address_or_none(header, proxies):
    from django.test import override_settings

    with override_settings(TRUSTED_PROXY_COUNT=proxies):
        result = client_ip(request("192.0.2.10", header))
    if result is not None:
        ipaddress.ip_address(result)
    if proxies == 0:
        assert result == "192.0.2.10"


@settings(max_examples=300, deadline=None)
@given(
    spoofed=st.lists(st.one_of(st.ip_addresses().map(str), st.text(max_size=20)), max_size=5),
    real=st.ip_addresses(),
)
def test_a_client_cannot_choose_its_ip_by_sending_the_header(spoofed, real):
    """Whatever the client puts in front, one trusted proxy's entry decides."""
    from django.test import override_settings

    spoof = ", ".join(s.replace(",", "") for s in spoofed)
    header = f"{spoof}, {real}" if spoof else str(real)
    with override_settings(TRUSTED_PROXY_COUNT=1):
        assert client_ip(request("10.0.0.1", header)) == parse_ip(str(real))
