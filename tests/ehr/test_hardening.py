"""Production headers, the Content Security Policy, and Django's deploy checks."""

import re
from pathlib import Path

from tests.ehr.test_settings import STRONG, _start

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_pages_carry_the_security_headers(provider_client):
    response = provider_client.get("/account/settings/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


def test_the_sign_in_page_too(client, db):
    response = client.get("/accounts/login/")
    assert "Content-Security-Policy" in response and response["X-Frame-Options"] == "DENY"


def test_templates_have_no_inline_script_or_style():
    """The CSP forbids inline code; a template that used some would break in production."""
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert "<style" not in text, template
        assert not re.search(r"\sstyle=", text), template
        assert not re.search(r"\son[a-z]+=", text), template  # onclick= and friends


def test_deploy_check_has_no_warnings_with_production_settings():
    result = _start(
        {
            "DEBUG": "false",
            "SECRET_KEY": STRONG,
            "ALLOWED_HOSTS": "ehr.example.org",
            "SITE_URL": "https://ehr.example.org",
            "SECURE_COOKIES": "",
            "SECURE_SSL_REDIRECT": "",
        },
        code=(
            "from django.core.management import call_command; "
            "call_command('check', deploy=True, fail_level='WARNING')"
        ),
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr


def test_production_defaults_are_https_only():
    result = _start(
        {"DEBUG": "false", "SECRET_KEY": STRONG, "SECURE_COOKIES": "", "SECURE_SSL_REDIRECT": ""},
        code=(
            "from django.conf import settings as s; "
            "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
            "s.SESSION_COOKIE_HTTPONLY, s.SECURE_HSTS_SECONDS >= 31536000, "
            "s.SECURE_HSTS_INCLUDE_SUBDOMAINS)"
        ),
    )
    assert result.stdout.split() == ["True"] * 6, result.stderr


def test_the_documented_production_server_does_not_name_itself():
    """`gunicorn ehr.wsgi` from the project folder, as the README says to run it."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DATABASE_URL"}}
    env.update(
        {
            "ENV_FILE": "",
            "DJANGO_SETTINGS_MODULE": "ehr.settings",
            "SECRET_KEY": "production-like-secret-key-for-this-test-0123456789-abcdefgh",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
        }
    )
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "ehr.wsgi", "--bind", f"127.0.0.1:{port}"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        assert response.status == 200
        assert "gunicorn" not in response.headers.get("Server", "").lower()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_site_url_is_a_bare_address_and_production_is_told_to_set_it(settings):
    from ehr.checks import check_site_url, check_site_url_set

    settings.SITE_URL = ""
    assert [w.id for w in check_site_url_set(None)] == ["ehr.W001"]
    for bad in ("ehr.example.org", "ftp://ehr.example.org", "https://ehr.example.org/app"):
        settings.SITE_URL = bad
        assert [e.id for e in check_site_url(None)] == ["ehr.E005"], bad
    settings.SITE_URL = "https://ehr.example.org:8443"
    assert check_site_url(None) == [] and check_site_url_set(None) == []
